//! Email addresses: trimmed, lower-cased, checked.
use serde::Serialize;

use crate::model::{ErrorCode, RowError};

/// A trimmed, lower-cased email address that a mail system would accept.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Parse a raw cell. `Ok(None)` is never returned for a non-blank cell: blank handling is the
    /// mapping's job, this is called with non-blank text.
    pub fn parse(raw: &str) -> Result<Email, RowError> {
        let s = raw.trim().to_lowercase();
        let ok = s.matches('@').count() == 1
            && !s.starts_with('@')
            && !s.ends_with('@')
            && !s.chars().any(char::is_whitespace);
        if ok {
            Ok(Email(s))
        } else {
            Err(RowError::new(
                ErrorCode::InvalidEmail,
                Some("email"),
                format!("{raw:?} is not a valid email address"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
