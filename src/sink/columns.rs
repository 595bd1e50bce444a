//! The column layout of CSV and XLSX exports, and how one contact becomes the cells of a row.
//!
//! Columns: the core fields ([`CORE`]: `id`, `name`, `email`, `phone_number`, `identifier`,
//! `blocked`, `availability_status`, `created_at`, `last_activity_at`; `thumbnail` is left out on
//! purpose: it is a signed avatar URL that changes between requests and would make every export
//! differ), then `custom_attributes.<key>` and `additional_attributes.<key>`, each sorted, then
//! `contact_inboxes` (JSON) when asked for. When a previous layout is given (the manifest of the
//! last export at the same path, or `--columns`), its columns keep their place, even the ones no
//! contact has any more, and columns seen for the first time go at the end, in the order above.
//!
//! Attribute values become text: a string as is, a number or boolean as JSON writes it, null as
//! an empty cell, an object or array as compact JSON.
use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use crate::api::Contact;

/// The contact's own fields, in file order.
pub const CORE: [&str; 9] = [
    "id",
    "name",
    "email",
    "phone_number",
    "identifier",
    "blocked",
    "availability_status",
    "created_at",
    "last_activity_at",
];

pub const CUSTOM_PREFIX: &str = "custom_attributes.";
pub const ADDITIONAL_PREFIX: &str = "additional_attributes.";
pub const CONTACT_INBOXES: &str = "contact_inboxes";

/// How `created_at` and `last_activity_at` are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Timestamps {
    /// RFC 3339 in UTC, `2024-03-21T05:46:40Z`.
    Iso,
    /// Epoch seconds, as the API sends them.
    Epoch,
}

impl Timestamps {
    /// `iso` or `epoch` (the flag's values and the manifest's).
    pub fn as_str(self) -> &'static str {
        match self {
            Timestamps::Iso => "iso",
            Timestamps::Epoch => "epoch",
        }
    }
}

impl std::str::FromStr for Timestamps {
    type Err = String;

    fn from_str(s: &str) -> Result<Timestamps, String> {
        match s {
            "iso" => Ok(Timestamps::Iso),
            "epoch" => Ok(Timestamps::Epoch),
            _ => Err(format!("{s:?} is not a timestamp style (iso or epoch)")),
        }
    }
}

/// One column of the layout.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Column {
    Core(&'static str),
    Custom(String),
    Additional(String),
    ContactInboxes,
}

impl Column {
    /// Parse a header name; `None` for a name that is none of the above.
    pub fn parse(name: &str) -> Option<Column> {
        if let Some(c) = CORE.iter().find(|c| **c == name) {
            return Some(Column::Core(c));
        }
        if let Some(k) = name.strip_prefix(CUSTOM_PREFIX).filter(|k| !k.is_empty()) {
            return Some(Column::Custom(k.to_owned()));
        }
        if let Some(k) = name
            .strip_prefix(ADDITIONAL_PREFIX)
            .filter(|k| !k.is_empty())
        {
            return Some(Column::Additional(k.to_owned()));
        }
        (name == CONTACT_INBOXES).then_some(Column::ContactInboxes)
    }

    /// Whether the cell is an id or phone: always text in XLSX (no scientific notation, no lost `+`).
    pub fn is_textual_key(&self) -> bool {
        matches!(self, Column::Core("id" | "phone_number" | "identifier"))
    }

    /// Whether the column is a timestamp.
    pub fn is_timestamp(&self) -> bool {
        matches!(self, Column::Core("created_at" | "last_activity_at"))
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Column::Core(c) => f.write_str(c),
            Column::Custom(k) => write!(f, "{CUSTOM_PREFIX}{k}"),
            Column::Additional(k) => write!(f, "{ADDITIONAL_PREFIX}{k}"),
            Column::ContactInboxes => f.write_str(CONTACT_INBOXES),
        }
    }
}

/// The attribute keys seen over all contacts (the full pass column discovery needs).
#[derive(Debug, Clone, Default)]
pub struct ColumnSet {
    pub custom: BTreeSet<String>,
    pub additional: BTreeSet<String>,
}

impl ColumnSet {
    pub fn observe(&mut self, c: &Contact) {
        for k in c.custom_attributes.keys() {
            if !self.custom.contains(k) {
                self.custom.insert(k.clone());
            }
        }
        for k in c.additional_attributes.keys() {
            if !self.additional.contains(k) {
                self.additional.insert(k.clone());
            }
        }
    }

    /// The default order: core, custom sorted, additional sorted, contact inboxes if asked.
    pub fn default_order(&self, contact_inboxes: bool) -> Vec<Column> {
        let mut out: Vec<Column> = CORE.iter().map(|c| Column::Core(c)).collect();
        out.extend(self.custom.iter().cloned().map(Column::Custom));
        out.extend(self.additional.iter().cloned().map(Column::Additional));
        if contact_inboxes {
            out.push(Column::ContactInboxes);
        }
        out
    }
}

/// The final column list of one export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub columns: Vec<Column>,
    /// Columns that were not in the previous layout (appended at the end).
    pub added: Vec<String>,
}

impl Layout {
    /// `previous` (pinned) columns first, in their order; then every discovered column not among
    /// them, in the default order.
    pub fn build(
        discovered: &ColumnSet,
        contact_inboxes: bool,
        previous: Option<&[Column]>,
    ) -> Layout {
        let default = discovered.default_order(contact_inboxes);
        let Some(prev) = previous else {
            return Layout {
                columns: default,
                added: vec![],
            };
        };
        let mut columns: Vec<Column> = vec![];
        for c in prev {
            if !columns.contains(c) {
                columns.push(c.clone());
            }
        }
        let mut added = vec![];
        for c in default {
            if !columns.contains(&c) {
                added.push(c.to_string());
                columns.push(c);
            }
        }
        Layout { columns, added }
    }

    pub fn headers(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.to_string()).collect()
    }
}

/// Parse a list of header names (`--columns`, a previous manifest); an unknown one is an error
/// naming it and `origin`.
pub fn parse_columns(names: &[String], origin: &str) -> anyhow::Result<Vec<Column>> {
    names
        .iter()
        .map(|n| {
            let n = n.trim();
            Column::parse(n).ok_or_else(|| {
                anyhow::anyhow!(
                    "{origin}: column {n:?} is not an export column (one of {}, \
                     {CUSTOM_PREFIX}<key>, {ADDITIONAL_PREFIX}<key>, {CONTACT_INBOXES})",
                    CORE.join(", ")
                )
            })
        })
        .collect()
}

/// One cell before formatting.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    /// Epoch seconds (with `--timestamps epoch`) or a JSON integer attribute.
    Int(i64),
    /// A JSON number attribute that is not an integer.
    Float(f64),
    Bool(bool),
}

impl Cell {
    /// The cell as CSV text (before the formula guard).
    pub fn to_text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(s) => s.clone(),
            Cell::Int(i) => i.to_string(),
            Cell::Float(f) => serde_json::Number::from_f64(*f)
                .map(|n| n.to_string())
                .unwrap_or_default(),
            Cell::Bool(b) => b.to_string(),
        }
    }
}

fn timestamp(t: Option<i64>, ts: Timestamps) -> Cell {
    match (t, ts) {
        (None, _) => Cell::Empty,
        (Some(t), Timestamps::Epoch) => Cell::Int(t),
        (Some(t), Timestamps::Iso) => match chrono::DateTime::from_timestamp(t, 0) {
            Some(d) => Cell::Text(d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            None => Cell::Int(t),
        },
    }
}

fn text(v: &Option<String>) -> Cell {
    match v {
        Some(s) if !s.is_empty() => Cell::Text(s.clone()),
        _ => Cell::Empty,
    }
}

/// An attribute value as a cell (see the module doc).
pub fn attribute(v: Option<&Value>) -> Cell {
    match v {
        None | Some(Value::Null) => Cell::Empty,
        Some(Value::String(s)) if s.is_empty() => Cell::Empty,
        Some(Value::String(s)) => Cell::Text(s.clone()),
        Some(Value::Bool(b)) => Cell::Bool(*b),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Cell::Int(i),
            None => Cell::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Some(other) => Cell::Text(other.to_string()),
    }
}

/// The cell of `contact` in `column`.
pub fn cell(contact: &Contact, column: &Column, ts: Timestamps) -> Cell {
    match column {
        Column::Core(name) => match *name {
            "id" => Cell::Text(contact.id.to_string()),
            "name" => text(&contact.name),
            "email" => text(&contact.email),
            "phone_number" => text(&contact.phone_number),
            "identifier" => text(&contact.identifier),
            "blocked" => Cell::Bool(contact.blocked),
            "availability_status" => text(&contact.availability_status),
            "created_at" => timestamp(contact.created_at, ts),
            "last_activity_at" => timestamp(contact.last_activity_at, ts),
            _ => Cell::Empty,
        },
        Column::Custom(k) => attribute(contact.custom_attributes.get(k)),
        Column::Additional(k) => attribute(contact.additional_attributes.get(k)),
        Column::ContactInboxes => match &contact.contact_inboxes {
            Some(v) => Cell::Text(Value::Array(v.clone()).to_string()),
            None => Cell::Empty,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contact(custom: Value, additional: Value) -> Contact {
        serde_json::from_value(json!({"id": 7, "name": "Ann", "created_at": 1711000000,
            "custom_attributes": custom, "additional_attributes": additional}))
        .unwrap()
    }

    #[test]
    fn default_layout_is_core_then_sorted_attributes() {
        let mut set = ColumnSet::default();
        set.observe(&contact(json!({"z": 1, "a": 2}), json!({"city": "Lyon"})));
        set.observe(&contact(json!({"m": 1}), json!({"b": 1})));
        let l = Layout::build(&set, false, None);
        let h = l.headers();
        assert_eq!(&h[..CORE.len()], &CORE.map(String::from)[..]);
        assert_eq!(
            &h[CORE.len()..],
            [
                "custom_attributes.a",
                "custom_attributes.m",
                "custom_attributes.z",
                "additional_attributes.b",
                "additional_attributes.city"
            ]
        );
    }

    #[test]
    fn previous_columns_keep_their_place_and_new_ones_go_last() {
        let mut set = ColumnSet::default();
        set.observe(&contact(json!({"a": 1, "new": 1}), json!({})));
        let prev = parse_columns(
            &[
                "email".into(),
                "custom_attributes.gone".into(),
                "id".into(),
                "custom_attributes.a".into(),
            ],
            "test",
        )
        .unwrap();
        let l = Layout::build(&set, false, Some(&prev));
        let h = l.headers();
        assert_eq!(
            &h[..4],
            [
                "email",
                "custom_attributes.gone",
                "id",
                "custom_attributes.a"
            ]
        );
        assert_eq!(h.last().unwrap(), "custom_attributes.new");
        assert_eq!(h.len(), 4 + CORE.len() - 2 + 1);
        assert!(l.added.contains(&"custom_attributes.new".to_string()));
        assert!(!l.added.contains(&"email".to_string()));
    }

    #[test]
    fn unknown_column_names_are_refused_by_name() {
        let e = parse_columns(&["emial".into()], "--columns").unwrap_err();
        assert!(e.to_string().contains("\"emial\""), "{e}");
        assert!(e.to_string().starts_with("--columns"), "{e}");
    }

    #[test]
    fn cells_render_values_and_timestamps() {
        let c = contact(
            json!({"n": 42, "f": 1.5, "b": true, "o": {"x": 1}, "nul": null}),
            json!({}),
        );
        assert_eq!(
            cell(&c, &Column::Core("created_at"), Timestamps::Iso),
            Cell::Text("2024-03-21T05:46:40Z".into())
        );
        assert_eq!(
            cell(&c, &Column::Core("created_at"), Timestamps::Epoch),
            Cell::Int(1711000000)
        );
        assert_eq!(
            cell(&c, &Column::Core("last_activity_at"), Timestamps::Iso),
            Cell::Empty
        );
        assert_eq!(
            cell(&c, &Column::Custom("n".into()), Timestamps::Iso).to_text(),
            "42"
        );
        assert_eq!(
            cell(&c, &Column::Custom("f".into()), Timestamps::Iso).to_text(),
            "1.5"
        );
        assert_eq!(
            cell(&c, &Column::Custom("b".into()), Timestamps::Iso).to_text(),
            "true"
        );
        assert_eq!(
            cell(&c, &Column::Custom("o".into()), Timestamps::Iso).to_text(),
            r#"{"x":1}"#
        );
        assert_eq!(
            cell(&c, &Column::Custom("nul".into()), Timestamps::Iso),
            Cell::Empty
        );
        assert_eq!(
            cell(&c, &Column::Custom("absent".into()), Timestamps::Iso),
            Cell::Empty
        );
        assert_eq!(
            cell(&c, &Column::Core("id"), Timestamps::Iso),
            Cell::Text("7".into())
        );
    }
}
