//! Loading: YAML text → [`spec`](super::spec) structs → a checked [`Mapping`]. Everything that can
//! be known without the data file is checked here (version, policies, regions, encodings, types,
//! date formats, templates, constants), and every error names the mapping file and line.
use std::collections::HashMap;

use anyhow::anyhow;
use serde_saphyr::{MessageFormatter, Spanned};

use super::spec::{self, KeySpec, MappingSpec, TypeSpec, ValueSpec};
use super::types::{Formats, ValueType};
use super::value::{Case, ColRef, Modifiers, SourceDef, ValueDef, parse_template};
use super::{
    AttrPrefix, BlankPolicy, ExistingPolicy, FieldDefs, IdentifierChange, IdentityPolicy, Mapping,
    MatchKey, MissingPolicy, PhoneInUse,
};
use crate::model::{Field, FieldKind};
use crate::normalise::{Email, Identifier, Region};
use crate::source::SourceOptions;

/// Where a spec sits, for the checks that depend on it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Field(Field),
    Attribute,
    Note,
}

impl Slot {
    /// The kind of the field the value goes to (`None` for an attribute or a note).
    fn kind(self) -> Option<FieldKind> {
        match self {
            Slot::Field(f) => Some(f.kind()),
            Slot::Attribute | Slot::Note => None,
        }
    }
}

struct Ctx<'a> {
    origin: &'a str,
    text: &'a str,
    /// `defaults.required`: what a value spec without `required:` says.
    required: bool,
}

impl Ctx<'_> {
    /// The text of a plain scalar as written (`N`, `00123`), where YAML inferred another type.
    fn written<T>(&self, s: &Spanned<T>, fallback: String) -> String {
        let span = s.referenced.span();
        match (span.byte_offset(), span.byte_len()) {
            (Some(o), Some(l)) if l > 0 => self
                .text
                .get(o as usize..(o + l) as usize)
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .unwrap_or(fallback),
            _ => fallback,
        }
    }

    fn err(&self, line: u64, msg: impl std::fmt::Display) -> anyhow::Error {
        if line == 0 {
            anyhow!("{}: {msg}", self.origin)
        } else {
            anyhow!("{}:{line}: {msg}", self.origin)
        }
    }
}

fn line_of<T>(s: &Spanned<T>) -> u64 {
    s.referenced.line()
}

/// A YAML or shape error as `file:line:column: message`, in the mapping's words: a syntax error
/// says it is one; a value of the wrong kind names its key, what it expects and what it found.
fn yaml_error(origin: &str, text: &str, e: &serde_saphyr::Error) -> anyhow::Error {
    let e = e.without_snippet();
    let at = e
        .location()
        .filter(|l| l.line() > 0)
        .map(|l| (l.line(), l.column()));
    let msg = printable(&yaml_message(text, at, e));
    match at {
        Some((line, col)) => anyhow!("{origin}:{line}:{col}: {msg}"),
        None => anyhow!("{origin}: {msg}"),
    }
}

/// Control characters shown escaped (a message must not drive the terminal); the rest as is.
fn printable(msg: &str) -> String {
    msg.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn yaml_message(text: &str, at: Option<(u64, u64)>, e: &serde_saphyr::Error) -> String {
    use serde_saphyr::Error as E;
    let (key, value) = at.map_or((None, String::new()), |(l, c)| key_value_at(text, l, c));
    let subject = key.map_or("the value".to_owned(), |k| format!("`{k}:`"));
    let found = if value.is_empty() {
        "nothing".to_owned()
    } else {
        format!("`{value}`")
    };
    match e {
        E::ExternalMessage { msg, .. } => format!("YAML syntax error: {}", syntax_hint(msg)),
        E::Eof { .. } => {
            "YAML syntax error: the file ends inside a value (a quote or bracket left open?)"
                .to_owned()
        }
        E::IndentationError { .. }
        | E::ContainerEndMismatch { .. }
        | E::MultipleDocuments { .. } => {
            let m = serde_saphyr::DefaultMessageFormatter.format_message(e);
            format!("YAML syntax error: {m}")
        }
        E::DuplicateMappingKey { key, .. } => format!(
            "duplicate key `{}`: it is written twice in the same section; write each key once",
            key.as_deref().unwrap_or("a key")
        ),
        E::InvalidScalar { ty, .. } => format!("{subject} expects {}, found {found}", expects(ty)),
        E::InvalidBooleanStrict { .. } => format!("{subject} expects true or false, found {found}"),
        E::Unexpected { expected, .. } => {
            let what = if value.starts_with('-') {
                "a list"
            } else if value.is_empty() {
                "nothing"
            } else {
                "a single value"
            };
            let want = match *expected {
                "mapping start" => "`key: value` lines (a map)",
                "sequence start" => "a list (`[a, b]` or `- a` lines)",
                other => other,
            };
            format!("{subject} expects {want}, found {what}")
        }
        E::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => {
            let unexpected = match unexpected.as_str() {
                "sequence" | "seq" => "a list".to_owned(),
                "map" => "a map".to_owned(),
                "unit value" | "null" => "nothing".to_owned(),
                u => u.to_owned(),
            };
            format!("{subject} expects {expected}, found {unexpected}")
        }
        E::SerdeUnknownField {
            field, expected, ..
        } => format!(
            "`{field}` is not a key here; the keys are: {}",
            expected.join(", ")
        ),
        E::SerdeUnknownVariant {
            variant, expected, ..
        } => format!(
            "{subject} `{variant}` is not one of: {}",
            expected.join(", ")
        ),
        E::SerdeMissingField {
            field: "version", ..
        } => "`version: 1` is missing (it starts every mapping file)".to_owned(),
        E::SerdeMissingField { field, .. } => format!("`{field}:` is missing"),
        _ => serde_saphyr::DefaultMessageFormatter
            .format_message(e)
            .into_owned(),
    }
}

/// What a scalar of Rust type `ty` is, in the mapping's words.
fn expects(ty: &str) -> &'static str {
    match ty {
        "bool" | "boolean" => "true or false",
        "f32" | "f64" | "floating point" => "a number",
        "char" => "one character",
        t if t.starts_with('u') => "a whole number (1, 2, …)",
        t if t.starts_with('i') => "a whole number",
        _ => "another kind of value",
    }
}

/// The parser's message with what to do about it.
fn syntax_hint(msg: &str) -> String {
    let m = msg.to_lowercase();
    let hint = if m.contains("tab") {
        "a tab character where YAML allows only spaces (indent with spaces)"
    } else if m.contains("unclosed quote") || m.contains("quoted scalar") {
        "a quote opened here is never closed"
    } else if m.contains("mapping values are not allowed") {
        "a `key: value` where none can start: check this line's indentation, or put a value holding \": \" in quotes"
    } else if m.contains("flow mapping") {
        "a `{ … }` map is not closed with `}` (or a `,` is missing between its entries)"
    } else if m.contains("flow sequence") {
        "a `[ … ]` list is not closed with `]` (or a `,` is missing between its items)"
    } else if m.contains("block mapping") || m.contains("block sequence") {
        "this line does not line up with the lines before it: check its indentation"
    } else {
        return msg.to_owned();
    };
    format!("{hint} ({msg})")
}

/// The key of the `key: value` pair at 1-based `line`, `col` (pointing at its value, block or
/// flow style, or at the key itself; a value on lines of its own takes the key above it), and
/// the value as written.
fn key_value_at(text: &str, line: u64, col: u64) -> (Option<String>, String) {
    let lines: Vec<&str> = text.lines().collect();
    let Some(l) = lines.get(line.saturating_sub(1) as usize) else {
        return (None, String::new());
    };
    let split = l
        .char_indices()
        .nth(col.saturating_sub(1) as usize)
        .map_or(l.len(), |(i, _)| i);
    let (before, mut after) = l.split_at(split);
    let mut key = before.trim_end().strip_suffix(':').map(|b| {
        let start = b
            .char_indices()
            .rev()
            .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        b[start..].to_owned()
    });
    if key.is_none() {
        // At the key: `name: [A` → `name`, `[A`.
        let at = after.trim_start();
        let word = at.split(':').next().unwrap_or("");
        let is_key = word.len() < at.len() && !word.is_empty();
        if is_key && word.chars().all(|c| c.is_alphanumeric() || c == '_') {
            key = Some(word.to_owned());
            after = &at[word.len() + 1..];
        } else if before.trim().is_empty() {
            key = key_above(&lines[..line.saturating_sub(1) as usize], before.len());
        }
    }
    let value = after
        .split([',', '}', ']', '#'])
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    (key.filter(|k| !k.is_empty()), value)
}

/// The key of a block value that starts on its own line indented by `indent`: the nearest line
/// above with less indentation that ends with `key:`.
fn key_above(above: &[&str], indent: usize) -> Option<String> {
    let l = above.iter().rev().find(|l| {
        let t = l.trim_start();
        !t.is_empty() && !t.starts_with('#') && l.len() - t.len() < indent
    })?;
    let t = l.split('#').next().unwrap_or("").trim();
    t.strip_suffix(':')
        .map(|k| k.trim_start_matches("- ").trim().to_owned())
}

pub fn parse(text: &str, origin: &str) -> anyhow::Result<Mapping> {
    parse_with(text, origin, None)
}

/// [`parse`], with `region` (`--phone-region`) given: it stands in for `mapping init`'s
/// undecided placeholder, which is refused only when no region is given.
pub fn parse_with(text: &str, origin: &str, region: Option<Region>) -> anyhow::Result<Mapping> {
    if text.trim_start_matches('\u{feff}').trim().is_empty() {
        anyhow::bail!(
            "{origin}: the mapping file is empty (it needs at least `version: 1` and `fields:`)"
        );
    }
    let spec: MappingSpec =
        serde_saphyr::from_str(text).map_err(|e| yaml_error(origin, text, &e))?;
    let defaults = spec.defaults.unwrap_or_default();
    let cx = Ctx {
        origin,
        text,
        required: defaults.required.unwrap_or(false),
    };

    if spec.version.value != 1 {
        return Err(cx.err(
            line_of(&spec.version),
            format!(
                "version {} is not supported (this program reads version 1)",
                spec.version.value
            ),
        ));
    }
    let source = match spec.source {
        Some(s) => source_options(&cx, s.value)?,
        None => SourceOptions::default(),
    };
    let default_region = default_region(&cx, defaults.phone_region, region)?;
    let (fields_line, fields_spec) = match spec.fields {
        Some(f) => (line_of(&f), f.value),
        None => (0, spec::FieldsSpec::default()),
    };
    let fields = field_defs(&cx, fields_spec)?;

    let (match_line, m) = match spec.matching {
        Some(m) => (line_of(&m), m.value),
        None => (0, spec::MatchSpec::default()),
    };
    let existing = m.existing.unwrap_or(ExistingPolicy::Update);
    let missing = m.missing.unwrap_or(MissingPolicy::Create);
    let blank = m.blank.unwrap_or(BlankPolicy::Keep);
    let identity = IdentityPolicy {
        identifier_change: m.identifier_change.unwrap_or(IdentifierChange::Conflict),
        phone_in_use: m.on_phone_in_use.unwrap_or(PhoneInUse::Drop),
    };
    let match_keys = match m.on {
        Some(on) => listed_keys(&cx, on, &fields)?,
        None => default_keys(&fields).ok_or_else(|| {
            cx.err(
                fields_line.max(match_line),
                "map fields.email or fields.identifier: rows are matched to contacts by them",
            )
        })?,
    };
    // A row that may create a contact needs a name; an update-only mapping does not.
    let name_required = missing == MissingPolicy::Create;
    if name_required && fields.get(Field::Name).is_none() {
        return Err(cx.err(
            fields_line,
            "fields.name is not mapped: a contact needs a name (or set match.missing: skip)",
        ));
    }
    let notes = spec
        .notes
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, v)| value_def(&cx, v, format!("notes[{}]", i + 1), Slot::Note))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let (custom_attributes, custom_prefix) =
        attributes(&cx, spec.custom_attributes, "custom_attributes")?;
    let (additional_attributes, additional_prefix) =
        attributes(&cx, spec.additional_attributes, "additional_attributes")?;
    Ok(Mapping {
        origin: origin.to_owned(),
        source,
        default_region,
        match_keys,
        existing,
        missing,
        blank,
        identity,
        name_required,
        fields,
        custom_attributes,
        additional_attributes,
        attribute_prefixes: [custom_prefix, additional_prefix],
        notes,
    })
}

/// `defaults.phone_region`: a country code or English name.
fn default_region(
    cx: &Ctx,
    r: Option<spec::Str>,
    given: Option<Region>,
) -> anyhow::Result<Option<Region>> {
    let Some(r) = r else { return Ok(None) };
    // `mapping init`'s placeholder: refused with the sentence init printed, unless the region
    // is given on the command line.
    if r.value.trim() == super::guess::UNDECIDED_REGION {
        return match given {
            Some(g) => Ok(Some(g)),
            None => Err(cx.err(line_of(&r), super::guess::ASK_REGION)),
        };
    }
    let region = Region::parse(&r.value).ok_or_else(|| {
        cx.err(
            line_of(&r),
            format!(
                "defaults.phone_region: {:?} is not a country (an ISO code such as GB, or an English name)",
                r.value
            ),
        )
    })?;
    Ok(Some(region))
}

/// The `fields:` section, each value checked for its field.
fn field_defs(cx: &Ctx, f: spec::FieldsSpec) -> anyhow::Result<FieldDefs> {
    let defs =
        f.0.into_iter()
            .map(|(f, s)| Ok((f, value_def(cx, s, format!("fields.{f}"), Slot::Field(f))?)))
            .collect::<anyhow::Result<_>>()?;
    Ok(FieldDefs(defs))
}

fn is_mapped(fields: &FieldDefs, k: MatchKey) -> bool {
    fields.get(k.field()).is_some()
}

/// `match.on` as listed: at least one key, none twice, each one mapped.
fn listed_keys(
    cx: &Ctx,
    on: Spanned<Vec<KeySpec>>,
    fields: &FieldDefs,
) -> anyhow::Result<Vec<MatchKey>> {
    let line = line_of(&on);
    if on.value.is_empty() {
        return Err(cx.err(
            line,
            "match.on: list at least one key (identifier, email, phone_number)",
        ));
    }
    let mut keys = Vec::new();
    for k in on.value {
        let k = match k {
            KeySpec::Email => MatchKey::Email,
            KeySpec::Identifier => MatchKey::Identifier,
            KeySpec::PhoneNumber => MatchKey::Phone,
        };
        let name = key_name(k);
        if keys.contains(&k) {
            return Err(cx.err(line, format!("match.on: {name} is listed twice")));
        }
        if !is_mapped(fields, k) {
            return Err(cx.err(
                line,
                format!("match.on: {name} is a match key but fields.{name} is not mapped"),
            ));
        }
        keys.push(k);
    }
    Ok(keys)
}

/// Without `match.on`: identifier then email, those mapped; `None` when neither is.
fn default_keys(fields: &FieldDefs) -> Option<Vec<MatchKey>> {
    let keys: Vec<MatchKey> = [MatchKey::Identifier, MatchKey::Email]
        .into_iter()
        .filter(|&k| is_mapped(fields, k))
        .collect();
    (!keys.is_empty()).then_some(keys)
}

/// An attribute section's keys and their values, in file order.
type AttrDefs = Vec<(String, ValueDef)>;

/// `custom_attributes` or `additional_attributes`, in file order, and its `from_prefix`.
fn attributes(
    cx: &Ctx,
    map: Option<spec::OrderedMap>,
    section: &str,
) -> anyhow::Result<(AttrDefs, Option<AttrPrefix>)> {
    let map = map.unwrap_or_default();
    let mut out: AttrDefs = Vec::new();
    for (key, v) in map.entries {
        if key.value.trim().is_empty() {
            return Err(cx.err(line_of(&key), format!("{section}: an empty key")));
        }
        let target = format!("{section}.{}", key.value);
        out.push((key.value, value_def(cx, v, target, Slot::Attribute)?));
    }
    let prefix = match map.from_prefix {
        Some(p) if p.value.trim().is_empty() => {
            return Err(cx.err(
                line_of(&p),
                format!(
                    "{section}.from_prefix: give the text the columns start with, such as \"{section}.\""
                ),
            ));
        }
        Some(p) => Some(AttrPrefix {
            line: line_of(&p),
            prefix: p.value,
        }),
        None => None,
    };
    Ok((out, prefix))
}

fn key_name(k: MatchKey) -> &'static str {
    match k {
        MatchKey::Email => "email",
        MatchKey::Identifier => "identifier",
        MatchKey::Phone => "phone_number",
    }
}

fn source_options(cx: &Ctx, s: spec::SourceSpec) -> anyhow::Result<SourceOptions> {
    let mut o = SourceOptions {
        unguard: s.unguard.unwrap_or(false),
        ..SourceOptions::default()
    };
    if let Some(sheet) = s.sheet {
        let v = sheet.value.trim();
        if v.is_empty() || v == "0" {
            return Err(cx.err(
                line_of(&sheet),
                "source.sheet: give a sheet name or a 1-based index",
            ));
        }
        o.sheet = Some(v.to_owned());
    }
    if let Some(h) = s.header_row {
        if h.value == 0 {
            return Err(cx.err(line_of(&h), "source.header_row: rows are counted from 1"));
        }
        o.header_row = Some(h.value);
    }
    if let Some(d) = s.delimiter {
        let b = match d.value.as_str() {
            "tab" | "\t" | "\\t" => b'\t',
            "comma" => b',',
            "semicolon" => b';',
            "pipe" => b'|',
            one if one.len() == 1
                && one.is_ascii()
                && !one.as_bytes()[0].is_ascii_alphanumeric()
                && !matches!(one.as_bytes()[0], b'"' | b'\n' | b'\r') =>
            {
                one.as_bytes()[0]
            }
            other => {
                return Err(cx.err(
                    line_of(&d),
                    format!(
                        "source.delimiter: {other:?} is not a delimiter (one character such as \",\" \";\" \"|\", or tab)"
                    ),
                ));
            }
        };
        o.delimiter = Some(b);
    }
    if let Some(e) = s.encoding {
        if encoding_rs::Encoding::for_label(e.value.trim().as_bytes()).is_none() {
            return Err(cx.err(
                line_of(&e),
                format!(
                    "source.encoding: {:?} is not an encoding (utf-8, utf-16, windows-1252, …)",
                    e.value
                ),
            ));
        }
        o.encoding = Some(e.value.trim().to_owned());
    }
    Ok(o)
}

/// One value spec checked for where it sits (`slot`); `target` names it in messages.
fn value_def(
    cx: &Ctx,
    spec: Spanned<ValueSpec>,
    target: String,
    slot: Slot,
) -> anyhow::Result<ValueDef> {
    let line = line_of(&spec);
    let default_ty = if slot.kind() == Some(FieldKind::Bool) {
        ValueType::Bool
    } else {
        ValueType::String
    };
    let as_written = match &spec.value {
        ValueSpec::Column { inferred: true, .. } => Some(cx.written(&spec, String::new())),
        _ => None,
    };
    let full = match spec.value {
        ValueSpec::Column { name, .. } => {
            let name = as_written.filter(|w| !w.is_empty()).unwrap_or(name);
            let mut def = column_def(target, ColRef { name, line }, default_ty);
            def.modifiers.required = cx.required;
            return Ok(def);
        }
        ValueSpec::Full(f) => *f,
    };
    let d = Def {
        cx,
        line,
        target: &target,
        slot,
    };
    let source = d.source(full.from, full.template, full.constant)?;
    let ty = d.value_type(full.ty, full.formats, default_ty)?;
    d.check_type_fits(&ty, full.prefix.is_some() || full.suffix.is_some())?;
    let case = match (
        full.lowercase.unwrap_or(false),
        full.uppercase.unwrap_or(false),
    ) {
        (true, true) => return Err(d.err("choose `lowercase:` or `uppercase:`, not both")),
        (true, false) => Case::Lower,
        (false, true) => Case::Upper,
        _ => Case::Keep,
    };
    let region_from = d.region_from(full.region_from)?;
    let split = d.split(full.split, &source)?;
    let international = d.international(full.international)?;
    // Constants, defaults and table values are checked now, not on every row.
    if let SourceDef::Const(c) = &source {
        if c.trim().is_empty() {
            return Err(d.err("`const:` is blank"));
        }
        d.check_value(&ty, "const", c)?;
    }
    if let Some(v) = &full.default {
        d.check_value(&ty, "default", &v.value)?;
    }
    let map = full.map.map(|t| d.map_table(&ty, t)).transpose()?;

    Ok(ValueDef {
        target,
        source,
        modifiers: Modifiers {
            trim: full.trim.unwrap_or(true),
            case,
            map,
            default: full
                .default
                .map(|d| d.value.trim().to_owned())
                .filter(|d| !d.is_empty()),
            prefix: full.prefix.filter(|p| !p.is_empty()),
            suffix: full.suffix.filter(|s| !s.is_empty()),
            ty,
            required: full.required.unwrap_or(cx.required),
            split,
            international,
        },
        region_from,
        optional: full.optional.unwrap_or(false),
    })
}

/// A value that is just a column name: trimmed text (or a bool, for `blocked`).
pub(super) fn column_def(target: String, col: ColRef, ty: ValueType) -> ValueDef {
    ValueDef {
        target,
        source: SourceDef::Columns(vec![col]),
        modifiers: Modifiers {
            trim: true,
            case: Case::Keep,
            map: None,
            default: None,
            prefix: None,
            suffix: None,
            ty,
            required: false,
            split: None,
            international: false,
        },
        region_from: Vec::new(),
        optional: false,
    }
}

/// Where a full value spec sits, for its checks and messages.
struct Def<'a, 'c> {
    cx: &'a Ctx<'c>,
    line: u64,
    target: &'a str,
    slot: Slot,
}

impl Def<'_, '_> {
    fn err(&self, msg: impl std::fmt::Display) -> anyhow::Error {
        self.cx.err(self.line, format!("{}: {msg}", self.target))
    }

    /// Exactly one of `from:`, `template:` and `const:` (a `template:` may have a `from:`
    /// fallback).
    fn source(
        &self,
        from: Option<Spanned<spec::Columns>>,
        template: Option<spec::Str>,
        constant: Option<spec::Str>,
    ) -> anyhow::Result<SourceDef> {
        match (from, template, constant) {
            (Some(from), None, None) => self.columns(from),
            (from, Some(t), None) => {
                let parts = parse_template(&t.value, line_of(&t)).map_err(|m| self.err(m))?;
                // `from:` with a template: the columns tried when the template is blank.
                let or = match from.map(|f| self.columns(f)).transpose()? {
                    Some(SourceDef::Columns(cols)) => cols,
                    _ => Vec::new(),
                };
                Ok(SourceDef::Template(parts, or))
            }
            (None, None, Some(c)) => Ok(SourceDef::Const(c.value)),
            (None, None, None) => {
                Err(self.err("say where the value comes from: `from:`, `template:` or `const:`"))
            }
            _ => Err(self.err("use only one of `from:`, `template:` and `const:`")),
        }
    }

    /// `from:` one column or a list; a single name YAML read as a number is taken as written.
    fn columns(&self, from: Spanned<spec::Columns>) -> anyhow::Result<SourceDef> {
        let cols = self.column_refs(from);
        if cols.is_empty() {
            return Err(self.err("`from:` lists no column"));
        }
        Ok(SourceDef::Columns(cols))
    }

    /// The columns of a `from:`-style list, each with its line.
    fn column_refs(&self, from: Spanned<spec::Columns>) -> Vec<ColRef> {
        let from_line = line_of(&from);
        let first_written = from.value.1.then(|| self.cx.written(&from, String::new()));
        from.value
            .0
            .into_iter()
            .map(|c| ColRef {
                line: match line_of(&c) {
                    0 => from_line,
                    l => l,
                },
                name: match first_written.as_ref().filter(|w| !w.is_empty()) {
                    Some(w) => w.clone(),
                    None => c.value,
                },
            })
            .collect()
    }

    /// `type:` (with its `formats:`), or the slot's default type.
    fn value_type(
        &self,
        ty: Option<Spanned<TypeSpec>>,
        formats: Option<spec::Columns>,
        default_ty: ValueType,
    ) -> anyhow::Result<ValueType> {
        let given = formats.is_some();
        let fs: Vec<String> = formats
            .iter()
            .flat_map(|f| f.0.iter().map(|f| f.value.clone()))
            .collect();
        let formats = || Formats::parse(&fs).map_err(|m| self.err(m));
        let ty = match ty.map(|t| t.value) {
            None => default_ty,
            Some(TypeSpec::String) => ValueType::String,
            Some(TypeSpec::Integer) => ValueType::Integer,
            Some(TypeSpec::Number) => ValueType::Number,
            Some(TypeSpec::Bool) => ValueType::Bool,
            Some(TypeSpec::Date) => ValueType::Date(formats()?),
            Some(TypeSpec::Datetime) => ValueType::Datetime(formats()?),
            Some(TypeSpec::RubyHash) => ValueType::RubyHash,
        };
        let dated = matches!(ty, ValueType::Date(_) | ValueType::Datetime(_));
        if given && !dated {
            return Err(self.err("`formats:` only applies to `type: date` or `type: datetime`"));
        }
        Ok(ty)
    }

    /// The type suits the slot: `blocked` is a bool, other fields and notes are text, and
    /// `prefix:`/`suffix:` make text.
    fn check_type_fits(&self, ty: &ValueType, affixed: bool) -> anyhow::Result<()> {
        match self.slot {
            Slot::Field(f) if f.kind() == FieldKind::Bool && !matches!(ty, ValueType::Bool) => {
                return Err(self.err(format!("must be `type: bool`, not {}", ty.name())));
            }
            Slot::Field(f) if f.kind() != FieldKind::Bool && !matches!(ty, ValueType::String) => {
                return Err(self.err(format!(
                    "is text: `type: {}` only applies to attributes",
                    ty.name()
                )));
            }
            Slot::Note if !matches!(ty, ValueType::String) => {
                return Err(self.err("notes are text: `type:` does not apply"));
            }
            _ => {}
        }
        if affixed && !matches!(ty, ValueType::String) {
            return Err(self.err(format!(
                "`prefix:`/`suffix:` make text, but the type is {}",
                ty.name()
            )));
        }
        Ok(())
    }

    /// `region_from:` (one column or a list), which only the phone number has.
    fn region_from(&self, r: Option<Spanned<spec::Columns>>) -> anyhow::Result<Vec<ColRef>> {
        match r {
            Some(r) if self.slot.kind() == Some(FieldKind::Phone) => {
                let cols = self.column_refs(r);
                if cols.is_empty() {
                    return Err(self.err("`region_from:` lists no column"));
                }
                Ok(cols)
            }
            Some(_) => Err(self.err("`region_from:` only applies to fields.phone_number")),
            None => Ok(Vec::new()),
        }
    }

    /// `international:`, which only the phone number has.
    fn international(&self, i: Option<bool>) -> anyhow::Result<bool> {
        match i {
            Some(_) if self.slot.kind() != Some(FieldKind::Phone) => Err(self.err(
                "`international:` only applies to fields.phone_number (numbers whose digits start with the country code)",
            )),
            i => Ok(i.unwrap_or(false)),
        }
    }

    /// `split:` a separator, for values read from `from:` columns (a template's fallback
    /// columns included; never the template's placeholders or a constant).
    fn split(&self, s: Option<spec::Str>, source: &SourceDef) -> anyhow::Result<Option<String>> {
        let Some(s) = s else { return Ok(None) };
        if s.value.trim().is_empty() {
            return Err(self.err("`split:` is blank: give the separator, such as \":::\""));
        }
        match source {
            SourceDef::Columns(_) => Ok(Some(s.value)),
            SourceDef::Template(_, or) if !or.is_empty() => Ok(Some(s.value)),
            _ => Err(self.err("`split:` applies to the values of `from:` columns")),
        }
    }

    /// A constant, default or table value converts to the type and, for the email and the
    /// identifier, is one.
    fn check_value(&self, ty: &ValueType, what: &str, v: &str) -> anyhow::Result<()> {
        if v.trim().is_empty() {
            return Ok(());
        }
        ty.convert(v.trim())
            .map_err(|m| self.err(format!("{what} {v:?} {m}")))?;
        match self.slot {
            Slot::Field(f) if f.kind() == FieldKind::Email => {
                Email::parse(v).map_err(|r| self.err(format!("{what}: {}", r.message)))?;
            }
            Slot::Field(f) if f.kind() == FieldKind::Identifier => {
                Identifier::parse(v).map_err(|r| self.err(format!("{what}: {}", r.message)))?;
            }
            _ => {}
        }
        Ok(())
    }

    /// `map:`, keyed case-insensitively; each value checked.
    fn map_table(
        &self,
        ty: &ValueType,
        table: Spanned<spec::MapTable>,
    ) -> anyhow::Result<HashMap<String, String>> {
        let table_line = line_of(&table);
        let mut out: HashMap<String, String> = HashMap::with_capacity(table.value.0.len());
        for (from, to) in table.value.0 {
            self.check_value(ty, "map value", &to)?;
            let key = from.trim().to_lowercase();
            if out.insert(key, to).is_some() {
                return Err(self.cx.err(
                    table_line,
                    format!(
                        "{}: map: {from:?} is listed twice (keys match case-insensitively)",
                        self.target
                    ),
                ));
            }
        }
        Ok(out)
    }
}
