//! Identifiers and other plain values.
use serde::Serialize;

use crate::model::{ErrorCode, RowError};

/// A non-empty, case-sensitive external identifier of at most 255 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Identifier(String);

impl Identifier {
    /// An empty or blank identifier is absent (`Ok(None)`): the server crashes on two empty ones.
    pub fn parse(raw: &str) -> Result<Option<Identifier>, RowError> {
        let s = raw.trim();
        if s.is_empty() {
            return Ok(None);
        }
        if s.chars().count() > 255 {
            return Err(RowError::new(
                ErrorCode::TooLong,
                Some("identifier"),
                format!(
                    "identifier is {} characters long (at most 255)",
                    s.chars().count()
                ),
            ));
        }
        Ok(Some(Identifier(s.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Refuse text that a spreadsheet or an encoding round trip damaged: mojibake (`JosÃ©`) and
/// invisible or control characters. `column` names the source column for the message.
/// (Interim: control characters only; the normalisation issue completes it.)
pub fn check_text(column: &str, value: &str) -> Result<(), RowError> {
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() && *c != '\n' && *c != '\t')
    {
        return Err(RowError::new(
            ErrorCode::InvisibleCharacters,
            Some(column),
            format!(
                "column {column:?}: {value:?} contains the invisible character U+{:04X}",
                c as u32
            ),
        ));
    }
    Ok(())
}
