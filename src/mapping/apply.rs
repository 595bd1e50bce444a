//! Applying a resolved mapping to one record: the hot path, run for every row. Columns are
//! indices (bound by `resolve`), date formats and tables were prepared at load, and nothing is
//! allocated beyond the draft's own values unless a modifier or an error needs it. Every problem
//! of the row is collected, each naming the column and the value.
use std::borrow::Cow;

use serde_json::Value;

use super::draft::FieldValue;
use super::types::ValueType;
use super::value::{Compiled, Got, Origin};
use super::{BlankPolicy, ContactDraft, Resolved};
use crate::model::{ErrorCode, Field, FieldKind, RowError};
use crate::normalise::{Email, Identifier, PhoneE164, Region, check_text};
use crate::source::Record;

/// The server's limit on name, email, phone and identifier.
const MAX_FIELD_CHARS: usize = 255;
/// The server's limit on a note.
const MAX_NOTE_CHARS: usize = 20_000;

fn cell(rec: &Record, i: usize) -> &str {
    rec.fields.get(i).map(String::as_str).unwrap_or("")
}

/// A value shortened for a message.
fn shown(v: &str) -> String {
    const MAX: usize = 60;
    if v.chars().count() <= MAX {
        format!("{v:?}")
    } else {
        let head: String = v.chars().take(MAX).collect();
        format!("{head:?}…")
    }
}

struct Row<'a> {
    r: &'a Resolved,
    rec: &'a Record,
    errors: Vec<RowError>,
    /// Columns whose text is damaged: the values built from them are not checked further.
    bad: Vec<usize>,
}

impl<'a> Row<'a> {
    /// How a message names the source of a value: the column, or the mapping entry.
    fn label(&self, c: &Compiled, o: Origin) -> (String, String) {
        match o {
            Origin::Column(i) => {
                let h = &self.r.headers[i];
                (format!("column {h:?}"), h.clone())
            }
            Origin::Template => (format!("{} (template)", c.target), c.target.to_string()),
            Origin::Const => (format!("{} (const)", c.target), c.target.to_string()),
            Origin::Default => (format!("{} (default)", c.target), c.target.to_string()),
        }
    }

    fn push(&mut self, code: ErrorCode, field: &str, message: String) {
        self.errors.push(RowError {
            code,
            field: Some(field.to_owned()),
            message,
        });
    }

    /// A normaliser's error, with the column put first in its message.
    fn push_parser_error(&mut self, e: RowError, c: &Compiled, o: Origin) {
        let (label, field) = self.label(c, o);
        let message = if e.message.starts_with("column ") {
            e.message
        } else {
            format!("{label}: {}", e.message)
        };
        self.errors.push(RowError {
            code: e.code,
            field: Some(field),
            message,
        });
    }

    fn damaged(&self, c: &Compiled) -> bool {
        !self.bad.is_empty() && c.cols.iter().any(|x| self.bad.contains(x))
    }

    fn too_long(&mut self, c: &Compiled, o: Origin, v: &str, max: usize) -> bool {
        // Byte length bounds the character count: most values skip the count.
        if v.len() <= max {
            return false;
        }
        let n = v.chars().count();
        if n <= max {
            return false;
        }
        let (label, field) = self.label(c, o);
        self.push(
            ErrorCode::TooLong,
            &field,
            format!(
                "{label}: {} is {n} characters long (at most {max})",
                shown(v)
            ),
        );
        true
    }

    /// "column "A" is blank" / "columns "A", "B" are blank" for the columns a value looked at.
    fn blank_columns(&self, c: &Compiled) -> String {
        let names: Vec<String> = c
            .cols
            .iter()
            .map(|&i| format!("{:?}", self.r.headers[i]))
            .collect();
        match names.len() {
            0 => format!("{} is blank", c.target),
            1 => format!("column {} is blank", names[0]),
            _ => format!("columns {} are all blank", names.join(", ")),
        }
    }
}

/// Map and normalise one record: every scalar field by its kind, the attribute objects, the
/// notes, then the check that a match key has a value. All the row's problems are collected.
pub(super) fn apply(r: &Resolved, rec: &Record) -> Result<ContactDraft, Vec<RowError>> {
    let mut row = Row {
        r,
        rec,
        errors: Vec::new(),
        bad: Vec::new(),
    };
    row.check_damage();
    let mut d = ContactDraft::default();
    // Which fields the row has a value for, by table position (no allocation on the hot path).
    let mut with_value = [false; Field::ALL.len()];
    for &(f, ref c) in r.fields.iter() {
        with_value[f as usize] = row.field(&mut d, f, c);
    }
    for f in Field::attribute_maps() {
        row.attributes(&mut d, f);
    }
    row.notes(&mut d);
    row.check_match_key(&with_value);
    if row.errors.is_empty() {
        Ok(d)
    } else {
        Err(row.errors)
    }
}

/// The order `apply` reads scalar fields in, and so reports their problems and lists the blank
/// ones to clear: the name, then the fields rows are matched by, then the rest, each group in the
/// table's order.
pub(super) fn read_order(f: Field) -> (u8, Field) {
    let group = match f.kind() {
        _ if f == Field::Name => 0,
        FieldKind::Email | FieldKind::Identifier => 1,
        FieldKind::Text | FieldKind::Phone | FieldKind::Bool | FieldKind::Attributes => 2,
    };
    (group, f)
}

/// The mapping's entries for attribute object `f`.
fn attribute_defs(r: &Resolved, f: Field) -> &[(String, Compiled)] {
    f.pick_attributes(&r.custom_attributes[..], &r.additional_attributes[..])
        .unwrap_or(&[])
}

impl Row<'_> {
    /// Each column read by the mapping is checked for damage once, whatever reads it.
    fn check_damage(&mut self) {
        for &i in self.r.used.iter() {
            let v = cell(self.rec, i).trim();
            if !v.is_empty()
                && let Err(e) = check_text(&self.r.headers[i], v)
            {
                self.errors.push(e);
                self.bad.push(i);
            }
        }
    }

    /// Scalar field `f`, parsed by its kind into the draft (or blank: see [`Row::blank`]).
    /// Whether the row has a value for it, valid or not (for the match-key check).
    fn field(&mut self, d: &mut ContactDraft, f: Field, c: &Compiled) -> bool {
        if self.damaged(c) {
            return true;
        }
        if f.kind() == FieldKind::Bool {
            return self.flag(d, f, c);
        }
        let Some(g) = c.text(self.rec) else {
            self.blank(d, f, c);
            return false;
        };
        if !self.too_long(c, g.origin, &g.text, MAX_FIELD_CHARS)
            && let Some(v) = self.parse(f, c, g.origin, g.text)
        {
            d.set(f, v);
        }
        true
    }

    /// A blank field: the name is required (a contact needs one, so it is never cleared); any
    /// other field is cleared with `blank: clear` and kept otherwise.
    fn blank(&mut self, d: &mut ContactDraft, f: Field, c: &Compiled) {
        if f == Field::Name {
            if self.r.name_required {
                let msg = format!("no name: {}", self.blank_columns(c));
                self.push(ErrorCode::MissingName, f.as_str(), msg);
            }
        } else if self.r.blank == BlankPolicy::Clear {
            d.clear.push(f);
        }
    }

    /// The text of field `f` parsed by the field's kind; a refused value is reported.
    fn parse(&mut self, f: Field, c: &Compiled, o: Origin, text: Cow<str>) -> Option<FieldValue> {
        let parsed = match f.kind() {
            FieldKind::Text => Ok(Some(FieldValue::Text(text.into_owned()))),
            FieldKind::Email => Email::parse(&text).map(|e| Some(FieldValue::Email(e))),
            FieldKind::Identifier => {
                Identifier::parse(&text).map(|i| i.map(FieldValue::Identifier))
            }
            FieldKind::Phone => return self.phone(c, o, &text).map(FieldValue::Phone),
            // Not text: never parsed here.
            FieldKind::Bool | FieldKind::Attributes => Ok(None),
        };
        parsed.unwrap_or_else(|e| {
            self.push_parser_error(e, c, o);
            None
        })
    }

    /// A boolean field (`type: bool`, checked at load). Whether the row has a value for it.
    fn flag(&mut self, d: &mut ContactDraft, f: Field, c: &Compiled) -> bool {
        match c.json(self.rec) {
            Some((Ok(Value::Bool(b)), _)) => d.set(f, FieldValue::Bool(b)),
            Some((Ok(_), _)) => unreachable!("a bool field is checked to be type: bool at load"),
            Some((Err(m), g)) => self.invalid_value(c, &g, &m),
            None => {
                self.blank(d, f, c);
                return false;
            }
        }
        true
    }

    fn invalid_value(&mut self, c: &Compiled, g: &Got, why: &str) {
        let (label, field) = self.label(c, g.origin);
        self.push(
            ErrorCode::InvalidValue,
            &field,
            format!("{label}: {} {why}", shown(&g.text)),
        );
    }

    /// Attribute object `f`: each mapped key converted to its `type`.
    fn attributes(&mut self, d: &mut ContactDraft, f: Field) {
        let clear = self.r.blank == BlankPolicy::Clear;
        let Some(out) = d.attributes_mut(f) else {
            return;
        };
        for (key, c) in attribute_defs(self.r, f) {
            if self.damaged(c) {
                continue;
            }
            match c.json(self.rec) {
                // `type: ruby_hash`, the only type that makes an object: its keys are spread.
                Some((Ok(Value::Object(m)), _)) => out.extend(m),
                Some((Ok(v), _)) => {
                    out.insert(key.clone(), v);
                }
                Some((Err(m), g)) => self.invalid_value(c, &g, &m),
                // The API cannot remove a key; null is how a stored value is cleared. A blank Ruby
                // hash names no keys, so there is nothing to clear.
                None if clear && !matches!(c.m.ty, ValueType::RubyHash) => {
                    out.insert(key.clone(), Value::Null);
                }
                None => {}
            }
        }
    }

    fn notes(&mut self, d: &mut ContactDraft) {
        for c in self.r.notes.iter() {
            if self.damaged(c) {
                continue;
            }
            // A blank note is no note.
            if let Some(g) = c.text(self.rec)
                && !self.too_long(c, g.origin, &g.text, MAX_NOTE_CHARS)
            {
                d.notes.push(g.text.into_owned());
            }
        }
    }

    /// A row that cannot be matched to a contact: none of the keys has a value.
    fn check_match_key(&mut self, with_value: &[bool]) {
        let r = self.r;
        if r.match_keys.iter().any(|k| with_value[k.field() as usize]) {
            return;
        }
        let parts: Vec<String> = r
            .match_keys
            .iter()
            .filter_map(|k| {
                let f = k.field();
                Some(format!("{f}: {}", self.blank_columns(r.field(f)?)))
            })
            .collect();
        let msg = format!("no match key ({})", parts.join("; "));
        // The field is the first key tried (`match.on`).
        let field = r.match_keys.first().map_or(Field::Email, |k| k.field());
        self.push(ErrorCode::MissingKey, field.as_str(), msg);
    }

    /// The phone number, with the row's region (`region_from`) or the mapping's default.
    fn phone(&mut self, c: &Compiled, o: Origin, text: &str) -> Option<PhoneE164> {
        let r = self.r;
        let region = match r.region_col {
            Some(rc) => {
                let country = cell(self.rec, rc).trim();
                if country.is_empty() {
                    Ok(r.default_region)
                } else {
                    Region::parse(country).map(Some).ok_or(country)
                }
            }
            None => Ok(r.default_region),
        };
        let region = match region {
            Ok(reg) => reg,
            // An unknown country does not matter for a number written with its country code;
            // for any other number it would be a guess.
            Err(_) if text.trim_start().starts_with('+') => None,
            Err(country) => {
                let (label, field) = self.label(c, o);
                let rc = r.region_col.expect("region came from region_from");
                let msg = format!(
                    "{label}: {} has no country code and column {:?}: {} is not a country (ISO code or English name)",
                    shown(text),
                    r.headers[rc],
                    shown(country)
                );
                self.push(ErrorCode::InvalidPhone, &field, msg);
                return None;
            }
        };
        let numeric = match o {
            Origin::Column(i) => self.rec.is_numeric(i),
            _ => false,
        };
        match PhoneE164::parse(text, region, numeric) {
            Ok(p) => Some(p),
            Err(e) => {
                self.push_parser_error(e, c, o);
                None
            }
        }
    }
}
