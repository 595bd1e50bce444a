//! Applying a resolved mapping to one record: the hot path, run for every row. Columns are
//! indices (bound by `resolve`), date formats and tables were prepared at load, and nothing is
//! allocated beyond the draft's own values unless a modifier or an error needs it. Every problem
//! of the row is collected, each naming the column and the value.
use serde_json::Value;

use super::value::{Compiled, Origin};
use super::{BlankPolicy, MatchKey, Resolved};
use super::ContactDraft;
use crate::model::{ErrorCode, Field, RowError};
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

/// Per-key outcome, for the "no match key" check.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyState {
    /// Not mapped, or blank.
    Absent,
    /// The row had a value (valid, or already reported as invalid).
    Present,
}

pub fn apply(r: &Resolved, rec: &Record) -> Result<ContactDraft, Vec<RowError>> {
    let mut row = Row {
        r,
        rec,
        errors: Vec::new(),
        bad: Vec::new(),
    };
    // Each column read by the mapping is checked for damage once, whatever reads it.
    for &i in r.used.iter() {
        let v = cell(rec, i).trim();
        if !v.is_empty()
            && let Err(e) = check_text(&r.headers[i], v)
        {
            row.errors.push(e);
            row.bad.push(i);
        }
    }
    let clear = r.blank == BlankPolicy::Clear;
    let mut d = ContactDraft::default();

    if let Some(c) = &r.name
        && !row.damaged(c)
    {
        match c.text(rec) {
            Some(g) if !row.too_long(c, g.origin, &g.text, MAX_FIELD_CHARS) => {
                d.name = Some(g.text.into_owned());
            }
            Some(_) => {}
            None if r.name_required => {
                let msg = format!("no name: {}", row.blank_columns(c));
                row.push(ErrorCode::MissingName, "name", msg);
            }
            None => {}
        }
    }

    let mut email_key = KeyState::Absent;
    if let Some(c) = &r.email {
        if row.damaged(c) {
            email_key = KeyState::Present;
        } else {
            match c.text(rec) {
                Some(g) => {
                    email_key = KeyState::Present;
                    if !row.too_long(c, g.origin, &g.text, MAX_FIELD_CHARS) {
                        match Email::parse(&g.text) {
                            Ok(e) => d.email = Some(e),
                            Err(e) => row.push_parser_error(e, c, g.origin),
                        }
                    }
                }
                None if clear => d.clear.push(Field::Email),
                None => {}
            }
        }
    }

    let mut id_key = KeyState::Absent;
    if let Some(c) = &r.identifier {
        if row.damaged(c) {
            id_key = KeyState::Present;
        } else {
            match c.text(rec) {
                Some(g) => {
                    id_key = KeyState::Present;
                    if !row.too_long(c, g.origin, &g.text, MAX_FIELD_CHARS) {
                        match Identifier::parse(&g.text) {
                            Ok(id) => d.identifier = id,
                            Err(e) => row.push_parser_error(e, c, g.origin),
                        }
                    }
                }
                None if clear => d.clear.push(Field::Identifier),
                None => {}
            }
        }
    }

    if let Some(c) = &r.phone_number
        && !row.damaged(c)
    {
        match c.text(rec) {
            Some(g) if !row.too_long(c, g.origin, &g.text, MAX_FIELD_CHARS) => {
                phone(&mut row, &mut d, c, g.origin, &g.text);
            }
            Some(_) => {}
            None if clear => d.clear.push(Field::PhoneNumber),
            None => {}
        }
    }

    if let Some(c) = &r.blocked
        && !row.damaged(c)
    {
        match c.json(rec) {
            Some((Ok(Value::Bool(b)), _)) => d.blocked = Some(b),
            Some((Ok(_), _)) => unreachable!("blocked is checked to be type: bool at load"),
            Some((Err(m), g)) => {
                let (label, field) = row.label(c, g.origin);
                row.push(
                    ErrorCode::InvalidValue,
                    &field,
                    format!("{label}: {} {m}", shown(&g.text)),
                );
            }
            None if clear => d.clear.push(Field::Blocked),
            None => {}
        }
    }

    for (attrs, out) in [
        (&r.custom_attributes, &mut d.custom_attributes),
        (&r.additional_attributes, &mut d.additional_attributes),
    ] {
        for (key, c) in attrs.iter() {
            if row.damaged(c) {
                continue;
            }
            match c.json(rec) {
                // `type: ruby_hash`, the only type that makes an object: its keys are spread.
                Some((Ok(Value::Object(m)), _)) => out.extend(m),
                Some((Ok(v), _)) => {
                    out.insert(key.clone(), v);
                }
                Some((Err(m), g)) => {
                    let (label, field) = row.label(c, g.origin);
                    row.push(
                        ErrorCode::InvalidValue,
                        &field,
                        format!("{label}: {} {m}", shown(&g.text)),
                    );
                }
                // The API cannot remove a key; null is how a stored value is cleared. A blank Ruby
                // hash names no keys, so there is nothing to clear.
                None if clear && !matches!(c.m.ty, super::types::ValueType::RubyHash) => {
                    out.insert(key.clone(), Value::Null);
                }
                None => {}
            }
        }
    }

    for c in r.notes.iter() {
        if row.damaged(c) {
            continue;
        }
        // A blank note is no note.
        if let Some(g) = c.text(rec)
            && !row.too_long(c, g.origin, &g.text, MAX_NOTE_CHARS)
        {
            d.notes.push(g.text.into_owned());
        }
    }

    // A row that cannot be matched to a contact: none of the keys has a value.
    let key_present = r.match_keys.iter().any(|k| match k {
        MatchKey::Email => email_key == KeyState::Present,
        MatchKey::Identifier => id_key == KeyState::Present,
    });
    if !key_present {
        let parts: Vec<String> = r
            .match_keys
            .iter()
            .filter_map(|k| {
                let (c, name) = match k {
                    MatchKey::Email => (r.email.as_ref()?, "email"),
                    MatchKey::Identifier => (r.identifier.as_ref()?, "identifier"),
                };
                Some(format!("{name}: {}", row.blank_columns(c)))
            })
            .collect();
        let msg = format!("no match key ({})", parts.join("; "));
        // The field is the first key tried (`match.on`).
        let field = match r.match_keys.first() {
            Some(MatchKey::Identifier) => Field::Identifier.as_str(),
            _ => Field::Email.as_str(),
        };
        row.push(ErrorCode::MissingKey, field, msg);
    }

    if row.errors.is_empty() {
        Ok(d)
    } else {
        Err(row.errors)
    }
}

/// The phone number, with the row's region (`region_from`) or the mapping's default.
fn phone(row: &mut Row, d: &mut ContactDraft, c: &Compiled, o: Origin, text: &str) {
    let r = row.r;
    let region = match r.region_col {
        Some(rc) => {
            let country = cell(row.rec, rc).trim();
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
            let (label, field) = row.label(c, o);
            let rc = r.region_col.expect("region came from region_from");
            let msg = format!(
                "{label}: {} has no country code and column {:?}: {} is not a country (ISO code or English name)",
                shown(text),
                r.headers[rc],
                shown(country)
            );
            row.push(ErrorCode::InvalidPhone, &field, msg);
            return;
        }
    };
    let numeric = match o {
        Origin::Column(i) => row.rec.is_numeric(i),
        _ => false,
    };
    match PhoneE164::parse(text, region, numeric) {
        Ok(p) => d.phone_number = Some(p),
        Err(e) => row.push_parser_error(e, c, o),
    }
}
