//! The error every field rule of this crate reports.

/// A request field's value broke a market rule. `field` is the JSON field name the API uses
/// (`street`, `zip_code`, `card_number`…); `reason` says what is wrong, in English, without
/// repeating the value (so card numbers and other secrets never reach logs or responses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FieldError {
    /// `field` is wrong because of `reason`.
    pub const fn new(field: &'static str, reason: &'static str) -> Self {
        Self { field, reason }
    }
}
