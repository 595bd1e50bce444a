//! [`ContactDraft`]: the contact a mapped, normalised row becomes, and its accessors by
//! [`Field`] (exhaustive matches: a field added to the table and not here does not compile).
use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::{Field, RowWarning, Scalar};
use crate::normalise::{Email, Identifier, PhoneE164, Region};

/// What one valid row wants the contact to look like: every value already parsed, so nothing
/// downstream checks it again. `None` / an absent attribute key means "the row says nothing"
/// (a blank cell keeps the stored value); fields listed in `clear` were blank and the mapping says
/// `blank: clear`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ContactDraft {
    pub name: Option<String>,
    pub email: Option<Email>,
    pub phone_number: Option<PhoneE164>,
    pub identifier: Option<Identifier>,
    pub blocked: Option<bool>,
    pub custom_attributes: Map<String, Value>,
    pub additional_attributes: Map<String, Value>,
    /// Fields to clear on the stored contact (blank cell with `blank: clear`).
    pub clear: Vec<Field>,
    /// Notes to add after the create/update, in mapping order.
    pub notes: Vec<String>,
    /// Values of this row that were repaired or left out (the row is imported with the rest).
    #[serde(skip)]
    pub warnings: Vec<RowWarning>,
    /// The phone had no country code and was read with the default region (`--phone-region` or
    /// `defaults.phone_region`): counted in the summary ("412 phones ... were read as DE").
    #[serde(skip)]
    pub phone_read_as: Option<Region>,
    /// Where the phone came from: its column (none for a template or a constant) and the text
    /// as read (what a warning about the phone shows as the original value).
    #[serde(skip)]
    pub phone_cell: Option<(Option<String>, String)>,
}

/// One parsed value of a scalar field, of the field's kind.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum FieldValue {
    Text(String),
    Email(Email),
    Phone(PhoneE164),
    Identifier(Identifier),
    Bool(bool),
}

impl ContactDraft {
    /// What the row says for scalar field `f`; `None`: nothing (and always for attributes).
    pub fn scalar(&self, f: Field) -> Option<Scalar<'_>> {
        match f {
            Field::Name => self.name.as_deref().map(Scalar::Text),
            Field::Email => self.email.as_ref().map(|v| Scalar::Text(v.as_str())),
            Field::PhoneNumber => self.phone_number.as_ref().map(|v| Scalar::Text(v.as_str())),
            Field::Identifier => self.identifier.as_ref().map(|v| Scalar::Text(v.as_str())),
            Field::Blocked => self.blocked.map(Scalar::Bool),
            Field::CustomAttributes | Field::AdditionalAttributes => None,
        }
    }

    /// The attribute object `f` (`None` for a scalar field).
    pub fn attributes(&self, f: Field) -> Option<&Map<String, Value>> {
        f.pick_attributes(&self.custom_attributes, &self.additional_attributes)
    }

    pub(super) fn attributes_mut(&mut self, f: Field) -> Option<&mut Map<String, Value>> {
        f.pick_attributes(&mut self.custom_attributes, &mut self.additional_attributes)
    }

    /// Set scalar field `f`. A value of another kind than the field's (which `apply`, parsing by
    /// the field's kind, never makes) leaves it as it is.
    pub(super) fn set(&mut self, f: Field, v: FieldValue) {
        use FieldValue as V;
        match (f, v) {
            (Field::Name, V::Text(s)) => self.name = Some(s),
            (Field::Email, V::Email(e)) => self.email = Some(e),
            (Field::PhoneNumber, V::Phone(p)) => self.phone_number = Some(p),
            (Field::Identifier, V::Identifier(i)) => self.identifier = Some(i),
            (Field::Blocked, V::Bool(b)) => self.blocked = Some(b),
            // Every field named, so that a new one does not compile until it has its arm above.
            // The attribute objects are set key by key, through `attributes_mut`.
            (
                Field::Name
                | Field::Email
                | Field::PhoneNumber
                | Field::Identifier
                | Field::Blocked
                | Field::CustomAttributes
                | Field::AdditionalAttributes,
                _,
            ) => {}
        }
    }
}
