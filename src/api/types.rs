//! The values the contacts API sends and receives: [`Contact`] (tolerant: unknown keys ignored,
//! optional fields optional), the bodies we send ([`NewContact`], [`ContactPatch`]), [`Note`],
//! [`Conversation`] and [`Page`]. Decoding of whole bodies (wrappers of both flavours) lives in
//! `decode.rs`, the one place that knows them.
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::ContactDraft;

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

impl From<&ContactDraft> for NewContact {
    fn from(d: &ContactDraft) -> Self {
        NewContact {
            name: d.name.clone(),
            email: d.email.as_ref().map(|e| e.as_str().to_owned()),
            phone_number: d.phone_number.as_ref().map(|p| p.as_str().to_owned()),
            identifier: d.identifier.as_ref().map(|i| i.as_str().to_owned()),
            blocked: d.blocked,
            custom_attributes: d.custom_attributes.clone(),
            additional_attributes: d.additional_attributes.clone(),
        }
    }
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

/// An integer that may arrive as a number (`1`, `1.0`) or a numeric string (`"2"`), or null.
pub(crate) fn flex_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
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
