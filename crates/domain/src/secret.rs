//! Strings that must never be printed: the [`secrecy`] crate's types, re-exported so every crate
//! names them through the domain. `Debug` of a [`SecretString`] or [`SecretBox`] prints
//! `SecretBox<str>([REDACTED])`; the value is read only through [`ExposeSecret::expose_secret`],
//! and the memory is zeroed on drop.

pub use secrecy::{ExposeSecret, SecretBox, SecretString};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts() {
        let s = SecretString::from("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose_secret(), "hunter2");
    }
}
