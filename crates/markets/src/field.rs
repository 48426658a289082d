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

    /// `field` holds a card number ([`crate::find_card_number`]); reason
    /// [`crate::CARD_NUMBER_IN_TEXT`].
    pub const fn card_number_in_text(field: &'static str) -> Self {
        Self::new(field, crate::text::CARD_NUMBER_IN_TEXT)
    }

    /// Whether this is [`FieldError::card_number_in_text`], which the API answers with its own
    /// code.
    pub fn is_card_number_in_text(&self) -> bool {
        self.reason == crate::text::CARD_NUMBER_IN_TEXT
    }

    /// The API's stable error code for it: `card_number_in_text`, else `validation_error`.
    pub fn code(&self) -> &'static str {
        if self.is_card_number_in_text() {
            "card_number_in_text"
        } else {
            "validation_error"
        }
    }
}
