//! The values the contacts API sends and receives: [`Contact`] (tolerant: unknown keys ignored,
//! optional fields optional), the bodies we send ([`NewContact`], [`ContactPatch`]), [`Note`],
//! [`Conversation`] and [`Page`]. Decoding of whole bodies (wrappers of both flavours) lives in
//! `decode.rs`, the one place that knows them.
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::{Field, Scalar};

/// Contacts per page of `GET /contacts` and of search; there is no per-page parameter.
pub const PAGE_SIZE: usize = 15;

/// A contact as the server returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub id: u64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub identifier: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub blocked: bool,
    #[serde(default)]
    pub thumbnail: Option<String>,
    #[serde(default)]
    pub availability_status: Option<String>,
    /// Never null on the server; may hold keys the server added itself (avatar sync, company).
    #[serde(default, deserialize_with = "null_as_default")]
    pub additional_attributes: Map<String, Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub custom_attributes: Map<String, Value>,
    /// Epoch seconds; omitted by the server when null.
    #[serde(default, deserialize_with = "flex_opt_i64")]
    pub last_activity_at: Option<i64>,
    /// Epoch seconds.
    #[serde(default, deserialize_with = "flex_opt_i64")]
    pub created_at: Option<i64>,
    /// Present only when the server includes contact inboxes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_inboxes: Option<Vec<Value>>,
}

/// The body of `POST /contacts`. Empty fields are not sent; an empty identifier is refused before
/// sending (two of them crash the server).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NewContact {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<bool>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub custom_attributes: Map<String, Value>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub additional_attributes: Map<String, Value>,
}

/// The body of `PATCH /contacts/{id}`: only the fields set are sent. `Some(None)` sends `null`
/// (clears the field). The attribute maps are shallow-merged by the server into what it stores,
/// so only the keys given change; a key cannot be removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ContactPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_attributes: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_attributes: Option<Map<String, Value>>,
}

impl ContactPatch {
    /// Nothing to send.
    pub fn is_empty(&self) -> bool {
        *self == ContactPatch::default()
    }
}

/// A note on a contact (the bare object `POST /notes` returns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub id: u64,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default, deserialize_with = "flex_opt_i64")]
    pub created_at: Option<i64>,
    /// Everything else the server sends (`user`, `contact`, …), kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A conversation of a contact; `id` is the per-account display id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: u64,
    /// Everything else the server sends, kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One page of a listing or a search.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The page number the server says it served (the one asked for when it says nothing).
    pub current_page: u32,
    /// `meta.count`: the total for a listing and for old searches; the rows on this page for
    /// current searches (see `has_more`). `None` when absent or null.
    pub count: Option<u64>,
    /// `meta.has_more` (current searches only).
    pub has_more: Option<bool>,
    /// `meta.total_pages` (documented by Doto, never required).
    pub total_pages: Option<u32>,
}

impl<T> Page<T> {
    /// Whether another page may exist: `has_more` when the server says, else a full page.
    pub fn may_have_more(&self) -> bool {
        match self.has_more {
            Some(b) => b && !self.items.is_empty(),
            None => self.items.len() >= PAGE_SIZE,
        }
    }
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

// The contact's fields by `Field`. Every match lists every field: a field added to the table
// fails to compile here until the structs above hold it. The scalar accessors give nothing for
// (and ignore) an attribute object, which is read and written key by key.

fn text(v: &Option<String>) -> Scalar<'_> {
    v.as_deref().map_or(Scalar::Null, Scalar::Text)
}

fn patched(v: &Option<Option<String>>) -> Option<Scalar<'_>> {
    v.as_ref().map(text)
}

impl Contact {
    /// Scalar field `f` as stored.
    pub fn scalar(&self, f: Field) -> Scalar<'_> {
        match f {
            Field::Name => text(&self.name),
            Field::Email => text(&self.email),
            Field::PhoneNumber => text(&self.phone_number),
            Field::Identifier => text(&self.identifier),
            Field::Blocked => Scalar::Bool(self.blocked),
            Field::CustomAttributes | Field::AdditionalAttributes => Scalar::Null,
        }
    }

    pub fn set_scalar(&mut self, f: Field, v: Scalar) {
        match f {
            Field::Name => self.name = v.text(),
            Field::Email => self.email = v.text(),
            Field::PhoneNumber => self.phone_number = v.text(),
            Field::Identifier => self.identifier = v.text(),
            Field::Blocked => self.blocked = v.flag(),
            Field::CustomAttributes | Field::AdditionalAttributes => {}
        }
    }

    /// Attribute object `f` (`None` for a scalar field).
    pub fn attributes(&self, f: Field) -> Option<&Map<String, Value>> {
        f.pick_attributes(&self.custom_attributes, &self.additional_attributes)
    }

    pub fn attributes_mut(&mut self, f: Field) -> Option<&mut Map<String, Value>> {
        f.pick_attributes(&mut self.custom_attributes, &mut self.additional_attributes)
    }
}

impl NewContact {
    /// What the create sends for scalar field `f` (`None`: not sent).
    pub fn scalar(&self, f: Field) -> Option<Scalar<'_>> {
        match f {
            Field::Name => self.name.as_deref().map(Scalar::Text),
            Field::Email => self.email.as_deref().map(Scalar::Text),
            Field::PhoneNumber => self.phone_number.as_deref().map(Scalar::Text),
            Field::Identifier => self.identifier.as_deref().map(Scalar::Text),
            Field::Blocked => self.blocked.map(Scalar::Bool),
            Field::CustomAttributes | Field::AdditionalAttributes => None,
        }
    }

    pub fn set_scalar(&mut self, f: Field, v: Scalar) {
        match f {
            Field::Name => self.name = v.text(),
            Field::Email => self.email = v.text(),
            Field::PhoneNumber => self.phone_number = v.text(),
            Field::Identifier => self.identifier = v.text(),
            Field::Blocked => self.blocked = Some(v.flag()),
            Field::CustomAttributes | Field::AdditionalAttributes => {}
        }
    }

    /// Attribute object `f` (`None` for a scalar field).
    pub fn attributes(&self, f: Field) -> Option<&Map<String, Value>> {
        f.pick_attributes(&self.custom_attributes, &self.additional_attributes)
    }

    pub fn attributes_mut(&mut self, f: Field) -> Option<&mut Map<String, Value>> {
        f.pick_attributes(&mut self.custom_attributes, &mut self.additional_attributes)
    }
}

impl ContactPatch {
    /// What the patch does to scalar field `f`: `None` leaves it, `Some(Scalar::Null)` clears it.
    pub fn scalar(&self, f: Field) -> Option<Scalar<'_>> {
        match f {
            Field::Name => patched(&self.name),
            Field::Email => patched(&self.email),
            Field::PhoneNumber => patched(&self.phone_number),
            Field::Identifier => patched(&self.identifier),
            Field::Blocked => self.blocked.map(Scalar::Bool),
            Field::CustomAttributes | Field::AdditionalAttributes => None,
        }
    }

    /// Make the patch write `v` to scalar field `f` (`Scalar::Null` clears a text field).
    pub fn set_scalar(&mut self, f: Field, v: Scalar) {
        match f {
            Field::Name => self.name = Some(v.text()),
            Field::Email => self.email = Some(v.text()),
            Field::PhoneNumber => self.phone_number = Some(v.text()),
            Field::Identifier => self.identifier = Some(v.text()),
            Field::Blocked => self.blocked = Some(v.flag()),
            Field::CustomAttributes | Field::AdditionalAttributes => {}
        }
    }

    /// The keys the patch merges into attribute object `f` (`None`: none, or a scalar field).
    pub fn attributes(&self, f: Field) -> Option<&Map<String, Value>> {
        f.pick_attributes(
            self.custom_attributes.as_ref(),
            self.additional_attributes.as_ref(),
        )
        .flatten()
    }

    /// The keys the patch merges into attribute object `f` (`None` for a scalar field).
    pub fn attributes_mut(&mut self, f: Field) -> Option<&mut Option<Map<String, Value>>> {
        f.pick_attributes(&mut self.custom_attributes, &mut self.additional_attributes)
    }
}

/// An integer that may arrive as a number (`1`, `1.0`) or a numeric string (`"2"`), or null.
fn flex_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(v) => value_to_i64(&v).map(Some).ok_or_else(|| {
            de::Error::custom(format!("expected an integer or a numeric string, got {v}"))
        }),
    }
}

pub(crate) fn value_to_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}
