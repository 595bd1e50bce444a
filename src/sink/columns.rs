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
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

use serde_json::Value;

use crate::api::Contact;
use crate::model::{Field, FieldKind, Scalar};

/// The contact's own columns, in file order: `id`, the scalar fields of the field table
/// ([`Field::scalars`]), then the read-only ones the server keeps.
pub const CORE: [&str; 1 + Field::SCALAR_COUNT + READ_ONLY.len()] = core_columns();

/// Columns of what the server keeps about a contact that no import writes.
const READ_ONLY: [&str; 3] = ["availability_status", "created_at", "last_activity_at"];

const fn core_columns() -> [&'static str; 1 + Field::SCALAR_COUNT + READ_ONLY.len()] {
    let mut out = [""; 1 + Field::SCALAR_COUNT + READ_ONLY.len()];
    out[0] = "id";
    let n = 1 + Field::SCALAR_COUNT;
    let mut i = 0;
    while i < Field::SCALAR_COUNT {
        out[1 + i] = Field::SCALAR_NAMES[i];
        i += 1;
    }
    let mut j = 0;
    while j < READ_ONLY.len() {
        out[n + j] = READ_ONLY[j];
        j += 1;
    }
    out
}

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
        // An empty key is an attribute an account can hold (`{"": ...}`): its column,
        // `custom_attributes.`, must read back from the manifest like any other.
        if let Some(k) = name.strip_prefix(CUSTOM_PREFIX) {
            return Some(Column::Custom(k.to_owned()));
        }
        if let Some(k) = name.strip_prefix(ADDITIONAL_PREFIX) {
            return Some(Column::Additional(k.to_owned()));
        }
        (name == CONTACT_INBOXES).then_some(Column::ContactInboxes)
    }

    /// Whether the cell is a phone or an identifier: always text in XLSX (no scientific notation,
    /// no lost `+`).
    pub fn is_textual_key(&self) -> bool {
        match self {
            Column::Core(c) => Field::from_name(c)
                .is_some_and(|f| matches!(f.kind(), FieldKind::Phone | FieldKind::Identifier)),
            _ => false,
        }
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

/// The JSON type of an attribute's values over all contacts (blank values aside): what an
/// import needs to read the column back as it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrKind {
    Int,
    /// Numbers, some not integers.
    Number,
    Bool,
    Text,
    /// Objects, arrays, or values of more than one type: written as text, read back as text.
    Other,
}

impl AttrKind {
    fn of(v: &Value) -> Option<AttrKind> {
        Some(match v {
            Value::Null => return None,
            Value::String(s) if s.is_empty() => return None,
            Value::String(_) => AttrKind::Text,
            Value::Bool(_) => AttrKind::Bool,
            Value::Number(n) if n.is_i64() || n.is_u64() => AttrKind::Int,
            Value::Number(_) => AttrKind::Number,
            _ => AttrKind::Other,
        })
    }

    fn merge(self, other: AttrKind) -> AttrKind {
        use AttrKind::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Int | Number, Int | Number) => Number,
            _ => Other,
        }
    }
}

/// The attribute keys seen over all contacts (the full pass column discovery needs), and the
/// type of each column's values.
#[derive(Debug, Clone, Default)]
pub struct ColumnSet {
    pub custom: BTreeSet<String>,
    pub additional: BTreeSet<String>,
    /// By column name (`custom_attributes.seats`); a column of blank values only has none.
    pub kinds: HashMap<String, AttrKind>,
    /// Columns a typed format (Parquet) keeps as text whatever their kind: a string that is not
    /// an ISO date (`YYYY-MM-DD`), or a number beyond 64 bits.
    pub loose: HashSet<String>,
    /// Columns with an integer a double cannot hold exactly (beyond 2^53): text in Parquet if
    /// they also hold fractions (an integer column stays INT64).
    pub wide: HashSet<String>,
}

impl ColumnSet {
    pub fn observe(&mut self, c: &Contact) {
        for (k, v) in &c.custom_attributes {
            if !self.custom.contains(k) {
                self.custom.insert(k.clone());
            }
            self.observe_kind(CUSTOM_PREFIX, k, v);
        }
        for (k, v) in &c.additional_attributes {
            if !self.additional.contains(k) {
                self.additional.insert(k.clone());
            }
            self.observe_kind(ADDITIONAL_PREFIX, k, v);
        }
    }

    fn observe_kind(&mut self, prefix: &str, key: &str, v: &Value) {
        let Some(kind) = AttrKind::of(v) else { return };
        let name = format!("{prefix}{key}");
        let loose = match v {
            Value::String(s) => super::parquet::iso_date(s).is_none(),
            Value::Number(n) => n.is_u64() && !n.is_i64(),
            _ => false,
        };
        if loose && !self.loose.contains(&name) {
            self.loose.insert(name.clone());
        }
        let wide = v.as_i64().is_some_and(|i| i.unsigned_abs() > 1 << 53);
        if wide && !self.wide.contains(&name) {
            self.wide.insert(name.clone());
        }
        let k = self.kinds.get(&name).map_or(kind, |k| k.merge(kind));
        self.kinds.insert(name, k);
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

    /// The columns `s` keeps, in this layout's order: those `--select` names (all, without it),
    /// less those `--exclude` names. A name without `*` or `?` that is no column of the layout
    /// is an error naming the columns there are.
    pub fn select(mut self, s: &Selection) -> anyhow::Result<Layout> {
        if s.select.is_empty() && s.exclude.is_empty() {
            return Ok(self);
        }
        let headers = self.headers();
        for (flag, pats) in [("--select", &s.select), ("--exclude", &s.exclude)] {
            for p in pats.iter().filter(|p| !is_glob(p)) {
                if !headers.contains(p) {
                    anyhow::bail!(
                        "{flag}: {p:?} is not a column of this export (columns: {}); `*` and `?` \
                         match any text and any one character",
                        headers.join(", ")
                    );
                }
            }
        }
        let any = |pats: &[String], h: &str| pats.iter().any(|p| glob_match(p, h));
        let keep: Vec<bool> = headers
            .iter()
            .map(|h| (s.select.is_empty() || any(&s.select, h)) && !any(&s.exclude, h))
            .collect();
        let mut keep = keep.into_iter();
        self.columns.retain(|_| keep.next().unwrap_or(false));
        self.added
            .retain(|a| headers.contains(a) && self.columns.iter().any(|c| c.to_string() == *a));
        Ok(self)
    }
}

/// `--select` and `--exclude`: column names or globs (`custom_attributes.*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub select: Vec<String>,
    pub exclude: Vec<String>,
}

fn is_glob(p: &str) -> bool {
    p.contains(['*', '?'])
}

/// `*` matches any text (none included), `?` any one character; the rest matches itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Classic two-pointer match with backtracking to the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
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

fn text(v: Option<&str>) -> Cell {
    match v {
        Some(s) if !s.is_empty() => Cell::Text(s.to_owned()),
        _ => Cell::Empty,
    }
}

fn scalar(v: Scalar) -> Cell {
    match v {
        Scalar::Null => Cell::Empty,
        Scalar::Text(s) => text(Some(s)),
        Scalar::Bool(b) => Cell::Bool(b),
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
            // Beyond i64: its digits, which a double would round.
            None if n.is_u64() => Cell::Text(n.to_string()),
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
            "availability_status" => text(contact.availability_status.as_deref()),
            "created_at" => timestamp(contact.created_at, ts),
            "last_activity_at" => timestamp(contact.last_activity_at, ts),
            field => Field::from_name(field).map_or(Cell::Empty, |f| scalar(contact.scalar(f))),
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
    fn globs_select_and_exclude_columns() {
        assert!(glob_match("custom_attributes.*", "custom_attributes.plan"));
        assert!(glob_match(
            "additional_attributes.c*",
            "additional_attributes.city"
        ));
        assert!(!glob_match(
            "additional_attributes.c*",
            "additional_attributes.zip"
        ));
        assert!(glob_match("?d", "id") && !glob_match("?d", "ids") && glob_match("*", ""));
        let mut set = ColumnSet::default();
        set.observe(&contact(
            json!({"plan": 1, "seats": 2}),
            json!({"city": "Lyon", "zip": "1"}),
        ));
        let l = Layout::build(&set, false, None);
        let s = Selection {
            select: vec![
                "id".into(),
                "custom_attributes.*".into(),
                "additional_attributes.c*".into(),
            ],
            exclude: vec!["custom_attributes.seats".into()],
        };
        let h = l.clone().select(&s).unwrap().headers();
        assert_eq!(
            h,
            ["id", "custom_attributes.plan", "additional_attributes.city"]
        );
        let bad = Selection {
            select: vec!["custom_attributes.nope".into()],
            exclude: vec![],
        };
        let e = l.select(&bad).unwrap_err().to_string();
        assert!(
            e.contains("\"custom_attributes.nope\"") && e.contains("custom_attributes.plan"),
            "{e}"
        );
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
