//! Applying a resolved mapping to one record: the hot path, run for every row. Columns are
//! indices (bound by `resolve`), date formats and tables were prepared at load, and nothing is
//! allocated beyond the draft's own values unless a modifier or a problem needs it.
//!
//! A bad value fails its field, not the row: the field is left out and the problem becomes a
//! [`RowWarning`] on the draft (code, field, column, original value). The row fails only when it
//! cannot be imported correctly: no usable match key left, no name for a contact it may create,
//! or a value spec marked `required: true` whose value cannot be used. A failed row carries every
//! problem as a [`RowError`], the one that failed it first.
use serde_json::Value;

use super::draft::FieldValue;
use super::types::ValueType;
use super::value::{Compiled, Got, Origin};
use super::{BlankPolicy, ContactDraft, Resolved};
use crate::model::{ErrorCode, Field, FieldKind, RowError, RowWarning};
use crate::normalise::{Email, Identifier, PhoneE164, Region, check_text};
use crate::sink::guard::{formula_like, unguard};
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

/// `v` cut to `max` characters (at a character boundary) when it is longer; with its length.
fn cut(v: &str, max: usize) -> Option<(&str, usize)> {
    // Byte length bounds the character count: most values skip the count.
    if v.len() <= max {
        return None;
    }
    let (end, _) = v.char_indices().nth(max)?;
    Some((&v[..end], v.chars().count()))
}

/// What the candidates of a value spec gave.
enum Pick<T> {
    /// Every candidate blank (and no `default`).
    Blank,
    Value(T),
    /// Every non-blank candidate refused: reported as the field's failure.
    Refused,
}

/// What a scalar field gave, for the match-key check.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Gave {
    Blank,
    Value,
    Refused,
}

/// A problem that did not stop the row; `dropped`: the field was left out (not a repair).
struct Warned {
    w: RowWarning,
    dropped: bool,
}

struct Row<'a> {
    r: &'a Resolved,
    rec: &'a Record,
    errors: Vec<RowError>,
    warnings: Vec<Warned>,
    /// Damaged columns, their problem, and whether a value read from them reported it.
    bad: Vec<(usize, RowError, bool)>,
}

impl<'a> Row<'a> {
    /// How a message names the source of a value (the column, or the mapping entry), and the
    /// name `RowError::field` gives it.
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
        let e = self.located(e, c, o);
        self.errors.push(e);
    }

    /// `e` with the value's source put first in its message and as its field.
    fn located(&self, e: RowError, c: &Compiled, o: Origin) -> RowError {
        let (label, field) = self.label(c, o);
        let message = if e.message.starts_with("column ") || e.message.starts_with(&label) {
            e.message
        } else {
            format!("{label}: {}", e.message)
        };
        RowError {
            code: e.code,
            field: Some(field),
            message,
        }
    }

    /// The value as read for a warning's `original`: the cell for a column, else the text.
    fn original(&self, g: &Got) -> String {
        match g.origin {
            Origin::Column(i) => cell(self.rec, i).to_owned(),
            _ => g.text.clone().into_owned(),
        }
    }

    fn warning(&mut self, c: &Compiled, g: &Got, code: ErrorCode, message: String, dropped: bool) {
        let original = self.original(g);
        self.push_warning(c, g.origin, original, code, message, dropped);
    }

    /// A warning on value `original` of mapping entry `c`, read from `o`.
    fn push_warning(
        &mut self,
        c: &Compiled,
        o: Origin,
        original: String,
        code: ErrorCode,
        message: String,
        dropped: bool,
    ) {
        let column = match o {
            Origin::Column(i) => Some(self.r.headers[i].clone()),
            _ => None,
        };
        let w = RowWarning {
            code,
            field: Some(field_name(c).to_owned()),
            column,
            original,
            message,
        };
        self.warnings.push(Warned { w, dropped });
    }

    /// The damage of the columns a candidate comes from, if any (marked as reported).
    fn damage(&mut self, c: &Compiled, o: Origin) -> Option<RowError> {
        if self.bad.is_empty() {
            return None;
        }
        let hit = |i: usize| match o {
            Origin::Column(j) => i == j,
            Origin::Template => c.cols.contains(&i),
            Origin::Const | Origin::Default => false,
        };
        let (_, e, seen) = self.bad.iter_mut().find(|(i, _, _)| hit(*i))?;
        *seen = true;
        Some(e.clone())
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

/// The contact field a value spec fills: `name`, `custom_attributes.plan`, `notes[1]`.
fn field_name(c: &Compiled) -> &str {
    c.target.strip_prefix("fields.").unwrap_or(&c.target)
}

/// What a spreadsheet error cell holds once read: calamine's names for them, and the newer
/// errors of Excel 365 and Google Sheets that the XLSX source reads itself.
const CELL_ERRORS: [&str; 19] = [
    "#DIV/0!",
    "#N/A",
    "#NAME?",
    "#NULL!",
    "#NUM!",
    "#REF!",
    "#VALUE!",
    "#DATA!",
    "#SPILL!",
    "#CALC!",
    "#GETTING_DATA",
    "#FIELD!",
    "#BLOCKED!",
    "#CONNECT!",
    "#BUSY!",
    "#UNKNOWN!",
    "#PYTHON!",
    "#EXTERNAL!",
    "#ERROR!",
];

/// Map and normalise one record: every scalar field by its kind, the attribute objects, the
/// notes, then the check that a match key has a value. A re-fed report's guarded cells
/// (`'=…`, see `sink::guard`) are read without their guard. `cell_errors`: the row's
/// spreadsheet error cells hold their error text, and are damage.
pub(super) fn apply(
    r: &Resolved,
    rec: &Record,
    cell_errors: bool,
) -> Result<ContactDraft, Vec<RowError>> {
    let unguarded;
    let rec = if r.unguard {
        unguarded = Record {
            line: rec.line,
            fields: rec.fields.iter().map(|f| unguard(f).to_owned()).collect(),
            numeric: rec.numeric.clone(),
        };
        &unguarded
    } else {
        rec
    };
    let mut row = Row {
        r,
        rec,
        errors: Vec::new(),
        warnings: Vec::new(),
        bad: Vec::new(),
    };
    row.check_damage(cell_errors);
    let mut d = ContactDraft::default();
    // What each field gave, by table position (no allocation).
    let mut got = [Gave::Blank; Field::ALL.len()];
    for &(f, ref c) in r.fields.iter() {
        got[f as usize] = row.field(&mut d, f, c);
    }
    for f in Field::attribute_maps() {
        row.attributes(&mut d, f);
    }
    row.notes(&mut d);
    row.unread_damage();
    row.check_match_key(&got);
    row.finish(d)
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
    /// Each column read by the mapping is checked for damage once, whatever reads it; the values
    /// read from a damaged column fail (see [`Row::pick`]).
    fn check_damage(&mut self, cell_errors: bool) {
        for &i in self.r.used.iter() {
            let v = cell(self.rec, i).trim();
            let h = &self.r.headers[i];
            if cell_errors && CELL_ERRORS.contains(&v) {
                let msg = format!("column {h:?}: the spreadsheet shows the error {v}, not a value");
                let e = RowError::new(ErrorCode::CellError, Some(h), msg);
                self.bad.push((i, e, false));
            } else if !v.is_empty()
                && let Err(e) = check_text(h, v)
            {
                // The phone normaliser removes these itself, and reports it (`phone_cleaned`).
                if e.code == ErrorCode::InvisibleCharacters && self.phone_only(i) {
                    continue;
                }
                self.bad.push((i, e, false));
            }
        }
    }

    /// Damage in a column no value reported (a `region_from` column): a warning of its own.
    fn unread_damage(&mut self) {
        let unread: Vec<(usize, RowError)> = self
            .bad
            .iter()
            .filter(|(_, _, seen)| !seen)
            .map(|(i, e, _)| (*i, e.clone()))
            .collect();
        for (i, e) in unread {
            let w = RowWarning {
                code: e.code,
                field: None,
                column: Some(self.r.headers[i].clone()),
                original: cell(self.rec, i).to_owned(),
                message: e.message,
            };
            self.warnings.push(Warned { w, dropped: false });
        }
    }

    /// The first candidate of `c` (see [`Compiled::text_from`]) that `parse` accepts. A refused
    /// candidate (damaged column, invalid value) is a warning naming it when a later one is
    /// used, and the field's failure when none is: a row error if `required`, else a warning
    /// and the field left out.
    fn pick<T>(
        &mut self,
        c: &Compiled,
        required: bool,
        mut parse: impl FnMut(&mut Self, &Got) -> Result<T, RowError>,
    ) -> Pick<T> {
        let rec = self.rec;
        let mut refused: Vec<(RowError, Got)> = Vec::new();
        let mut start = 0;
        while let Some((g, next)) = c.text_from(rec, start) {
            start = next;
            let parsed = match self.damage(c, g.origin) {
                Some(e) => Err(e),
                None => parse(self, &g),
            };
            match parsed {
                Ok(v) => {
                    if refused.is_empty() {
                        return Pick::Value(v);
                    }
                    let (used, _) = self.label(c, g.origin);
                    for (e, skipped) in refused {
                        let e = self.located(e, c, skipped.origin);
                        let msg = if skipped.origin == g.origin {
                            // `split:`: another value of the same cell.
                            format!(
                                "{}; the next value in that cell was used instead",
                                e.message
                            )
                        } else {
                            format!("{}; {used} was used instead", e.message)
                        };
                        self.warning(c, &skipped, e.code, msg, false);
                    }
                    return Pick::Value(v);
                }
                Err(e) => refused.push((e, g)),
            }
        }
        if refused.is_empty() {
            return Pick::Blank;
        }
        for (e, g) in refused {
            let e = self.located(e, c, g.origin);
            if required {
                self.errors.push(e);
            } else {
                let msg = format!("{} (left out: the row is imported without it)", e.message);
                self.warning(c, &g, e.code, msg, true);
            }
        }
        Pick::Refused
    }

    /// Whether column `i` is read by phone fields only.
    fn phone_only(&self, i: usize) -> bool {
        let r = self.r;
        let reads = |c: &Compiled| c.cols.contains(&i);
        let attrs =
            Field::attribute_maps().any(|f| attribute_defs(r, f).iter().any(|(_, c)| reads(c)));
        !r.region_cols.contains(&i)
            && !attrs
            && !r.notes.iter().any(reads)
            && r.fields
                .iter()
                .all(|(f, c)| f.kind() == FieldKind::Phone || !reads(c))
    }

    /// Scalar field `f`, parsed by its kind into the draft (or blank: see [`Row::blank`]).
    fn field(&mut self, d: &mut ContactDraft, f: Field, c: &Compiled) -> Gave {
        // A contact it may create needs its name: a name that cannot be used fails the row.
        let required = c.m.required || (f == Field::Name && self.r.name_required);
        let picked = if f.kind() == FieldKind::Bool {
            self.pick(c, required, |row, g| row.flag(c, g).map(Some))
        } else {
            self.pick(c, required, |row, g| row.parse(d, f, c, g))
        };
        match picked {
            Pick::Value(Some(v)) => {
                d.set(f, v);
                Gave::Value
            }
            Pick::Value(None) => Gave::Blank,
            Pick::Refused => Gave::Refused,
            Pick::Blank => {
                self.blank(d, f, c);
                Gave::Blank
            }
        }
    }

    /// A blank field: the name is required (a contact needs one, so it is never cleared); any
    /// other field is cleared with `blank: clear` and kept otherwise. A field left out for a bad
    /// value is not blank: it never clears the stored value.
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

    /// The text of field `f` parsed by the field's kind. A name over the server's limit is cut
    /// (a `truncated` warning); an email, phone or identifier over it is refused (cut, it would
    /// be another value).
    fn parse(
        &mut self,
        d: &mut ContactDraft,
        f: Field,
        c: &Compiled,
        g: &Got,
    ) -> Result<Option<FieldValue>, RowError> {
        let text = &g.text;
        if let Some((head, n)) = cut(text, MAX_FIELD_CHARS) {
            if f.kind() != FieldKind::Text {
                let msg = format!(
                    "{} is {n} characters long (at most {MAX_FIELD_CHARS})",
                    shown(text)
                );
                return Err(RowError::new(ErrorCode::TooLong, None, msg));
            }
            let (label, _) = self.label(c, g.origin);
            let msg = format!(
                "{label}: {} is {n} characters long; cut to the server's limit of {MAX_FIELD_CHARS}",
                shown(text)
            );
            self.warning(c, g, ErrorCode::Truncated, msg, false);
            let head = head.to_owned();
            self.check_formula(c, g, &head);
            return Ok(Some(FieldValue::Text(head)));
        }
        match f.kind() {
            FieldKind::Text => {
                self.check_formula(c, g, text);
                Ok(Some(FieldValue::Text(text.to_string())))
            }
            FieldKind::Email => {
                let read = Email::read(text)?;
                for rep in read.repairs {
                    self.warn(rep.code, c, g.origin, text, rep.message);
                }
                Ok(Some(FieldValue::Email(read.email)))
            }
            FieldKind::Identifier => {
                let Some((id, repairs)) = Identifier::read(text)? else {
                    return Ok(None);
                };
                for rep in repairs {
                    self.warn(rep.code, c, g.origin, text, rep.message);
                }
                Ok(Some(FieldValue::Identifier(id)))
            }
            FieldKind::Phone => {
                // `phone` reports its own refusal: taken back here as the candidate's.
                let mark = self.errors.len();
                match self.phone(d, c, g.origin, text) {
                    Some(p) => Ok(Some(FieldValue::Phone(p))),
                    None => Err(self.errors.drain(mark..).next().unwrap_or_else(|| {
                        RowError::new(ErrorCode::InvalidPhone, None, "not a phone number")
                    })),
                }
            }
            // Not text: never parsed here.
            FieldKind::Bool | FieldKind::Attributes => Ok(None),
        }
    }

    /// A text that a spreadsheet would run as a formula: imported as given, with a warning.
    fn check_formula(&mut self, c: &Compiled, g: &Got, text: &str) {
        if formula_like(text) {
            let (label, _) = self.label(c, g.origin);
            let msg = format!(
                "{label}: {} starts like a spreadsheet formula (imported as given)",
                shown(text)
            );
            self.warning(c, g, ErrorCode::FormulaLike, msg, false);
        }
    }

    /// A boolean field (`type: bool`, checked at load).
    fn flag(&mut self, c: &Compiled, g: &Got) -> Result<FieldValue, RowError> {
        match self.convert(c, g)? {
            Value::Bool(b) => Ok(FieldValue::Bool(b)),
            _ => unreachable!("a bool field is checked to be type: bool at load"),
        }
    }

    /// `g` converted to the spec's `type`.
    fn convert(&self, c: &Compiled, g: &Got) -> Result<Value, RowError> {
        c.m.ty.convert(&g.text).map_err(|why| {
            let (label, field) = self.label(c, g.origin);
            let msg = format!("{label}: {} {why}", shown(&g.text));
            RowError::new(ErrorCode::InvalidValue, Some(&field), msg)
        })
    }

    /// Attribute object `f`: each mapped key converted to its `type`.
    fn attributes(&mut self, d: &mut ContactDraft, f: Field) {
        let clear = self.r.blank == BlankPolicy::Clear;
        let Some(out) = d.attributes_mut(f) else {
            return;
        };
        for (key, c) in attribute_defs(self.r, f) {
            let picked = self.pick(c, c.m.required, |row, g| {
                let v = row.convert(c, g)?;
                if let Value::String(s) = &v {
                    row.check_formula(c, g, s);
                }
                Ok(v)
            });
            match picked {
                // `type: ruby_hash`, the only type that makes an object: its keys are spread.
                Pick::Value(Value::Object(m)) => out.extend(m),
                Pick::Value(v) => {
                    out.insert(key.clone(), v);
                }
                // The API cannot remove a key; null is how a stored value is cleared. A blank
                // Ruby hash names no keys, so there is nothing to clear.
                Pick::Blank if clear && !matches!(c.m.ty, ValueType::RubyHash) => {
                    out.insert(key.clone(), Value::Null);
                }
                Pick::Blank | Pick::Refused => {}
            }
        }
    }

    /// The notes; one over the server's limit is cut, with a `truncated` warning.
    fn notes(&mut self, d: &mut ContactDraft) {
        for c in self.r.notes.iter() {
            let picked = self.pick(c, c.m.required, |row, g| {
                let Some((head, n)) = cut(&g.text, MAX_NOTE_CHARS) else {
                    return Ok(g.text.to_string());
                };
                let (label, _) = row.label(c, g.origin);
                let msg = format!(
                    "{label}: the note is {n} characters long; cut to the server's limit of {MAX_NOTE_CHARS}"
                );
                row.warning(c, g, ErrorCode::Truncated, msg, false);
                Ok(head.to_owned())
            });
            // A blank note is no note.
            if let Pick::Value(text) = picked {
                d.notes.push(text);
            }
        }
    }

    /// A row that cannot be matched to a contact: none of the keys has a usable value. When a
    /// key's value was refused, that refusal is the row's error; else `missing_key`.
    fn check_match_key(&mut self, got: &[Gave]) {
        let r = self.r;
        let gave = |g: Gave| r.match_keys.iter().any(|k| got[k.field() as usize] == g);
        if gave(Gave::Value) {
            return;
        }
        let refused = gave(Gave::Refused);
        let is_key = |w: &RowWarning| {
            r.match_keys
                .iter()
                .any(|k| w.field.as_deref() == Some(k.field().as_str()))
        };
        let (keys, rest): (Vec<Warned>, Vec<Warned>) = std::mem::take(&mut self.warnings)
            .into_iter()
            .partition(|w| w.dropped && is_key(&w.w));
        self.warnings = rest;
        self.errors
            .extend(keys.into_iter().map(|w| into_error(w.w)));
        if refused {
            // Reported as invalid (a `required` key's error is in already), not also as missing.
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

    /// The draft with its warnings, or, when the row cannot be imported, its errors followed by
    /// the fields it would have left out.
    fn finish(self, mut d: ContactDraft) -> Result<ContactDraft, Vec<RowError>> {
        if self.errors.is_empty() {
            d.warnings.extend(self.warnings.into_iter().map(|w| w.w));
            return Ok(d);
        }
        let mut errors = self.errors;
        errors.extend(
            self.warnings
                .into_iter()
                .filter(|w| w.dropped)
                .map(|w| into_error(w.w)),
        );
        // A damaged column read by several values is one problem.
        let mut seen = std::collections::HashSet::new();
        errors.retain(|e| seen.insert((e.code, e.message.clone())));
        Err(errors)
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
            RowRegion::Row(rr, _) => Some(rr.region),
            _ => self.r.default_region,
        };
        let intl = international_digits(c, text);
        let region = if intl.is_some() { None } else { region };
        let read = match PhoneE164::read(intl.as_deref().unwrap_or(text), region, numeric) {
            Ok(read) => read,
            Err(mut e) => {
                if intl.is_some() {
                    e.message = format!(
                        "{} (`international: true`: its digits must start with the country code)",
                        e.message
                    );
                } else if let RowRegion::Unknown(rc, country) = row {
                    e.message = format!("{} ({})", e.message, self.unknown_region(rc, country));
                }
                self.push_parser_error(e, c, o);
                return None;
            }
        };
        for rep in read.repairs {
            self.warn(rep.code, c, o, text, rep.message);
        }
        if read.national {
            let other = match row {
                RowRegion::Row(rr, rc) => rr.other.map(|x| (x, self.region_column_says(rc))),
                RowRegion::Unknown(rc, country) => {
                    let msg = self.unknown_region(rc, country);
                    self.warn(ErrorCode::UnknownRegion, c, o, text, msg);
                    None
                }
                RowRegion::Default => None,
            };
            // Read with the default region: counted, and checked against the email's country.
            let other = match (row, region) {
                (RowRegion::Row(..), _) | (_, None) => other,
                (_, Some(def)) => {
                    d.phone_read_as = Some(def);
                    let email = d.email.as_ref().map(|e| e.as_str());
                    email.and_then(|e| Region::of_email(e).map(|x| (x, format!("the email {e:?}"))))
                }
            };
            if let (Some((other, why)), Some(region)) = (other, region) {
                self.region_doubt(c, o, (text, numeric), (region, &read.phone), (other, why));
            }
        }
        let column = match o {
            Origin::Column(i) => Some(self.r.headers[i].clone()),
            _ => None,
        };
        d.phone_cell = Some((column, text.to_owned()));
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

    /// What the `region_from` column `rc` says on this row.
    fn region_column_says(&self, rc: usize) -> String {
        let h = &self.r.headers[rc];
        format!("column {h:?}: {}", shown(cell(self.rec, rc).trim()))
    }

    /// `RegionDoubt`: the number, read nationally in `region`, is a valid and different number in
    /// `other`, which `why` (the email's domain, the region column's other meaning) points to.
    fn region_doubt(
        &mut self,
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
                self.warn(ErrorCode::RegionDoubt, c, o, text, msg);
            }
            _ => {}
        }
    }

    /// A repair (or doubt) on value `original` of mapping entry `c`, with the column first in
    /// its message.
    fn warn(&mut self, code: ErrorCode, c: &Compiled, o: Origin, original: &str, message: String) {
        let (label, _) = self.label(c, o);
        let message = format!("{label}: {message}");
        self.push_warning(c, o, original.to_owned(), code, message, false);
    }
}

impl<'a> Row<'a> {
    /// The row's `region_from` value (its first non-blank column), read.
    fn row_region(&self) -> RowRegion<'a> {
        let found = self.r.region_cols.iter().find_map(|&rc| {
            let country = cell(self.rec, rc).trim();
            (!country.is_empty()).then_some((rc, country))
        });
        let Some((rc, country)) = found else {
            return RowRegion::Default;
        };
        match Region::from_row(&self.r.headers[rc], country) {
            Some(rr) => RowRegion::Row(rr, rc),
            None => RowRegion::Unknown(rc, country),
        }
    }
}

/// A field left out, as the error of a row that fails.
fn into_error(w: RowWarning) -> RowError {
    let message = match w
        .message
        .strip_suffix(" (left out: the row is imported without it)")
    {
        Some(m) => m.to_owned(),
        None => w.message,
    };
    RowError {
        code: w.code,
        field: w.column.or(w.field),
        message,
    }
}

/// Where a row's phone region comes from.
#[derive(Clone, Copy)]
enum RowRegion<'a> {
    /// No `region_from`, or a blank one: the mapping's default region.
    Default,
    /// A region read from the `region_from` column `usize`.
    Row(crate::normalise::RowRegion, usize),
    /// (column, value): not a country; the default region is used.
    Unknown(usize, &'a str),
}

/// `international: true`: a number that starts with a digit is its country code and number
/// without the `+` (or after the `00` international prefix): it is read with a `+` instead.
fn international_digits(c: &Compiled, text: &str) -> Option<String> {
    let t = text.trim_start();
    let digits = t.strip_prefix("00").unwrap_or(t);
    let digit_led = digits.starts_with(|ch: char| ch.is_ascii_digit());
    (c.m.international && digit_led).then(|| format!("+{digits}"))
}
