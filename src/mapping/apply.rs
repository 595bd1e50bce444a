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
use crate::model::{ErrorCode, Field, FieldKind, RowError, RowWarning};
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
                // The phone normaliser removes these itself, and reports it (`phone_cleaned`).
                if e.code == ErrorCode::InvisibleCharacters && self.phone_only(i) {
                    continue;
                }
                self.errors.push(e);
                self.bad.push(i);
            }
        }
    }

    /// Whether column `i` is read by phone fields only.
    fn phone_only(&self, i: usize) -> bool {
        let r = self.r;
        let reads = |c: &Compiled| c.cols.contains(&i);
        let attrs =
            Field::attribute_maps().any(|f| attribute_defs(r, f).iter().any(|(_, c)| reads(c)));
        r.region_col != Some(i)
            && !attrs
            && !r.notes.iter().any(reads)
            && r.fields
                .iter()
                .all(|(f, c)| f.kind() == FieldKind::Phone || !reads(c))
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
            && let Some(v) = self.parse(d, f, c, g.origin, g.text)
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
    fn parse(
        &mut self,
        d: &mut ContactDraft,
        f: Field,
        c: &Compiled,
        o: Origin,
        text: Cow<str>,
    ) -> Option<FieldValue> {
        let parsed = match f.kind() {
            FieldKind::Text => Ok(Some(FieldValue::Text(text.into_owned()))),
            FieldKind::Email => Email::parse(&text).map(|e| Some(FieldValue::Email(e))),
            FieldKind::Identifier => {
                Identifier::parse(&text).map(|i| i.map(FieldValue::Identifier))
            }
            FieldKind::Phone => return self.phone(d, c, o, &text).map(FieldValue::Phone),
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

    /// The phone number, with the row's region (`region_from`) or the mapping's default. What
    /// the normaliser repaired, an unknown country and a number another region reads differently
    /// are reported as warnings; a number read with the default region is marked on the draft.
    fn phone(
        &mut self,
        d: &mut ContactDraft,
        c: &Compiled,
        o: Origin,
        text: &str,
    ) -> Option<PhoneE164> {
        let numeric = match o {
            Origin::Column(i) => self.rec.is_numeric(i),
            _ => false,
        };
        let row = self.row_region();
        let region = match row {
            RowRegion::Row(rr) => Some(rr.region),
            _ => self.r.default_region,
        };
        let read = match PhoneE164::read(text, region, numeric) {
            Ok(read) => read,
            Err(mut e) => {
                if let RowRegion::Unknown(rc, country) = row {
                    e.message = format!("{} ({})", e.message, self.unknown_region(rc, country));
                }
                self.push_parser_error(e, c, o);
                return None;
            }
        };
        for rep in read.repairs {
            self.warn(d, rep.code, c, o, text, rep.message);
        }
        if read.national {
            let other = match row {
                RowRegion::Row(rr) => rr.other.map(|x| (x, self.region_column_says())),
                RowRegion::Unknown(rc, country) => {
                    let msg = self.unknown_region(rc, country);
                    self.warn(d, ErrorCode::UnknownRegion, c, o, text, msg);
                    None
                }
                RowRegion::Default => None,
            };
            // Read with the default region: counted, and checked against the email's country.
            let other = match (row, region) {
                (RowRegion::Row(_), _) | (_, None) => other,
                (_, Some(def)) => {
                    d.phone_read_as = Some(def);
                    let email = d.email.as_ref().map(|e| e.as_str());
                    email.and_then(|e| Region::of_email(e).map(|x| (x, format!("the email {e:?}"))))
                }
            };
            if let (Some((other, why)), Some(region)) = (other, region) {
                self.region_doubt(
                    d,
                    c,
                    o,
                    (text, numeric),
                    (region, &read.phone),
                    (other, why),
                );
            }
        }
        Some(read.phone)
    }

    fn unknown_region(&self, rc: usize, country: &str) -> String {
        let used = match self.r.default_region {
            Some(def) => format!("the default region {def} was used"),
            None => "and the mapping has no default region".to_owned(),
        };
        format!(
            "column {:?}: {} is not a country (ISO code or English name), {used}",
            self.r.headers[rc],
            shown(country)
        )
    }

    fn region_column_says(&self) -> String {
        let rc = self
            .r
            .region_col
            .expect("a row region comes from region_from");
        let h = &self.r.headers[rc];
        format!("column {h:?}: {}", shown(cell(self.rec, rc).trim()))
    }

    /// `RegionDoubt`: the number, read nationally in `region`, is a valid and different number in
    /// `other`, which `why` (the email's domain, the region column's other meaning) points to.
    fn region_doubt(
        &mut self,
        d: &mut ContactDraft,
        c: &Compiled,
        o: Origin,
        (text, numeric): (&str, bool),
        (region, read): (Region, &PhoneE164),
        (other, why): (Region, String),
    ) {
        match PhoneE164::parse(text, Some(other), numeric) {
            Ok(alt) if alt != *read => {
                let msg = format!(
                    "read as {region} ({read}); {why} points to {other}, where it is {alt}"
                );
                self.warn(d, ErrorCode::RegionDoubt, c, o, text, msg);
            }
            _ => {}
        }
    }

    /// A warning on value `original` of mapping entry `c`, with the column first in its message.
    fn warn(
        &self,
        d: &mut ContactDraft,
        code: ErrorCode,
        c: &Compiled,
        o: Origin,
        original: &str,
        message: String,
    ) {
        let (label, _) = self.label(c, o);
        d.warnings.push(RowWarning {
            code,
            field: Some(
                c.target
                    .strip_prefix("fields.")
                    .unwrap_or(&c.target)
                    .to_owned(),
            ),
            column: match o {
                Origin::Column(i) => Some(self.r.headers[i].clone()),
                _ => None,
            },
            original: original.to_owned(),
            message: format!("{label}: {message}"),
        });
    }
}

impl<'a> Row<'a> {
    /// The row's `region_from` value, read.
    fn row_region(&self) -> RowRegion<'a> {
        let Some(rc) = self.r.region_col else {
            return RowRegion::Default;
        };
        let country = cell(self.rec, rc).trim();
        if country.is_empty() {
            return RowRegion::Default;
        }
        match Region::from_row(&self.r.headers[rc], country) {
            Some(rr) => RowRegion::Row(rr),
            None => RowRegion::Unknown(rc, country),
        }
    }
}

/// Where a row's phone region comes from.
#[derive(Clone, Copy)]
enum RowRegion<'a> {
    /// No `region_from`, or a blank one: the mapping's default region.
    Default,
    Row(crate::normalise::RowRegion),
    /// (column, value): not a country; the default region is used.
    Unknown(usize, &'a str),
}
