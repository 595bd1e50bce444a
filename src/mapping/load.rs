//! Loading: YAML text → [`spec`](super::spec) structs → a checked [`Mapping`]. Everything that can
//! be known without the data file is checked here (version, policies, regions, encodings, types,
//! date formats, templates, constants), and every error names the mapping file and line.
use std::collections::HashMap;

use anyhow::anyhow;
use serde_saphyr::{MessageFormatter, Spanned};

use super::spec::{self, FullSpec, KeySpec, MappingSpec, TypeSpec, ValueSpec};
use super::types::{Formats, ValueType};
use super::value::{Case, ColRef, Modifiers, SourceDef, ValueDef, parse_template};
use super::{BlankPolicy, ExistingPolicy, FieldDefs, Mapping, MatchKey, MissingPolicy};
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

/// A YAML or shape error as `file:line:column: message`.
fn yaml_error(origin: &str, e: &serde_saphyr::Error) -> anyhow::Error {
    let msg = serde_saphyr::DefaultMessageFormatter.format_message(e.without_snippet());
    match e.location() {
        Some(l) if l.line() > 0 => anyhow!(
            "{origin}:{}:{}: {}",
            l.line(),
            l.column(),
            msg.escape_debug()
        ),
        _ => anyhow!("{origin}: {}", msg.escape_debug()),
    }
}

pub fn parse(text: &str, origin: &str) -> anyhow::Result<Mapping> {
    if text.trim_start_matches('\u{feff}').trim().is_empty() {
        anyhow::bail!(
            "{origin}: the mapping file is empty (it needs at least `version: 1` and `fields:`)"
        );
    }
    let spec: MappingSpec = serde_saphyr::from_str(text).map_err(|e| yaml_error(origin, &e))?;
    let cx = Ctx { origin, text };

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

    let default_region = match spec.defaults.and_then(|d| d.phone_region) {
        Some(r) => Some(Region::parse(&r.value).ok_or_else(|| {
            cx.err(
                line_of(&r),
                format!(
                    "defaults.phone_region: {:?} is not a country (an ISO code such as GB, or an English name)",
                    r.value
                ),
            )
        })?),
        None => None,
    };

    let (fields_line, fields_spec) = match spec.fields {
        Some(f) => (line_of(&f), f.value),
        None => (0, spec::FieldsSpec::default()),
    };
    let fields = FieldDefs(
        fields_spec
            .0
            .into_iter()
            .map(|(f, s)| Ok((f, value_def(&cx, s, format!("fields.{f}"), Slot::Field(f))?)))
            .collect::<anyhow::Result<_>>()?,
    );

    let (match_line, m) = match spec.matching {
        Some(m) => (line_of(&m), m.value),
        None => (0, spec::MatchSpec::default()),
    };
    let existing = m.existing.unwrap_or(ExistingPolicy::Update);
    let missing = m.missing.unwrap_or(MissingPolicy::Create);
    let blank = m.blank.unwrap_or(BlankPolicy::Keep);
    let mapped = |k: MatchKey| fields.get(k.field()).is_some();
    let match_keys: Vec<MatchKey> = match m.on {
        Some(on) => {
            let line = line_of(&on);
            if on.value.is_empty() {
                return Err(cx.err(line, "match.on: list at least one key (identifier, email)"));
            }
            let mut keys = Vec::new();
            for k in on.value {
                let k = match k {
                    KeySpec::Email => MatchKey::Email,
                    KeySpec::Identifier => MatchKey::Identifier,
                };
                if keys.contains(&k) {
                    return Err(cx.err(line, format!("match.on: {} is listed twice", key_name(k))));
                }
                if !mapped(k) {
                    return Err(cx.err(
                        line,
                        format!(
                            "match.on: {} is a match key but fields.{} is not mapped",
                            key_name(k),
                            key_name(k)
                        ),
                    ));
                }
                keys.push(k);
            }
            keys
        }
        None => {
            let keys: Vec<MatchKey> = [MatchKey::Identifier, MatchKey::Email]
                .into_iter()
                .filter(|&k| mapped(k))
                .collect();
            if keys.is_empty() {
                return Err(cx.err(
                    fields_line.max(match_line),
                    "map fields.email or fields.identifier: rows are matched to contacts by them",
                ));
            }
            keys
        }
    };
    // A row that may create a contact needs a name; an update-only mapping does not.
    let name_required = missing == MissingPolicy::Create;
    if name_required && fields.get(Field::Name).is_none() {
        return Err(cx.err(
            fields_line,
            "fields.name is not mapped: a contact needs a name (or set match.missing: skip)",
        ));
    }

    let attrs = |map: Option<spec::OrderedMap>, section: &str| -> anyhow::Result<_> {
        let mut out: Vec<(String, ValueDef)> = Vec::new();
        for (key, v) in map.unwrap_or_default().0 {
            if key.value.trim().is_empty() {
                return Err(cx.err(line_of(&key), format!("{section}: an empty key")));
            }
            let target = format!("{section}.{}", key.value);
            out.push((key.value, value_def(&cx, v, target, Slot::Attribute)?));
        }
        Ok(out)
    };
    let custom_attributes = attrs(spec.custom_attributes, "custom_attributes")?;
    let additional_attributes = attrs(spec.additional_attributes, "additional_attributes")?;
    let notes = spec
        .notes
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, v)| value_def(&cx, v, format!("notes[{}]", i + 1), Slot::Note))
        .collect::<anyhow::Result<Vec<_>>>()?;

    Ok(Mapping {
        origin: origin.to_owned(),
        source,
        default_region,
        match_keys,
        existing,
        missing,
        blank,
        name_required,
        fields,
        custom_attributes,
        additional_attributes,
        notes,
    })
}

fn key_name(k: MatchKey) -> &'static str {
    match k {
        MatchKey::Email => "email",
        MatchKey::Identifier => "identifier",
    }
}

fn source_options(cx: &Ctx, s: spec::SourceSpec) -> anyhow::Result<SourceOptions> {
    let mut o = SourceOptions::default();
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
            return Ok(ValueDef {
                target,
                source: SourceDef::Columns(vec![ColRef { name, line }]),
                modifiers: Modifiers {
                    trim: true,
                    case: Case::Keep,
                    map: None,
                    default: None,
                    prefix: None,
                    suffix: None,
                    ty: default_ty,
                },
                region_from: None,
            });
        }
        ValueSpec::Full(f) => *f,
    };
    let FullSpec {
        from,
        template,
        constant,
        prefix,
        suffix,
        lowercase,
        uppercase,
        trim,
        map,
        default,
        ty,
        formats,
        region_from,
    } = full;
    let e = |msg: String| cx.err(line, format!("{target}: {msg}"));

    let source = match (from, template, constant) {
        (Some(from), None, None) => {
            let from_line = line_of(&from);
            let inferred = from.value.1;
            let first_written = inferred.then(|| cx.written(&from, String::new()));
            let cols: Vec<ColRef> = from
                .value
                .0
                .into_iter()
                .map(|mut c| {
                    if let Some(w) = first_written.as_ref().filter(|w| !w.is_empty()) {
                        c.value = w.clone();
                    }
                    c
                })
                .map(|c| ColRef {
                    line: match line_of(&c) {
                        0 => from_line,
                        l => l,
                    },
                    name: c.value,
                })
                .collect();
            if cols.is_empty() {
                return Err(e("`from:` lists no column".into()));
            }
            SourceDef::Columns(cols)
        }
        (None, Some(t), None) => {
            let parts = parse_template(&t.value, line_of(&t)).map_err(e)?;
            SourceDef::Template(parts)
        }
        (None, None, Some(c)) => SourceDef::Const(c.value),
        (None, None, None) => {
            return Err(e(
                "say where the value comes from: `from:`, `template:` or `const:`".into(),
            ));
        }
        _ => {
            return Err(e("use only one of `from:`, `template:` and `const:`".into()));
        }
    };

    let ty = match ty.map(|t| t.value) {
        None => default_ty.clone(),
        Some(t) => {
            let fs: Vec<String> = formats
                .iter()
                .flat_map(|f| f.0.iter().map(|f| f.value.clone()))
                .collect();
            match t {
                TypeSpec::String => ValueType::String,
                TypeSpec::Integer => ValueType::Integer,
                TypeSpec::Number => ValueType::Number,
                TypeSpec::Bool => ValueType::Bool,
                TypeSpec::Date => ValueType::Date(Formats::parse(&fs).map_err(e)?),
                TypeSpec::Datetime => ValueType::Datetime(Formats::parse(&fs).map_err(e)?),
                TypeSpec::RubyHash => ValueType::RubyHash,
            }
        }
    };
    if formats.is_some() && !matches!(ty, ValueType::Date(_) | ValueType::Datetime(_)) {
        return Err(e(
            "`formats:` only applies to `type: date` or `type: datetime`".into(),
        ));
    }
    match slot {
        Slot::Field(f) if f.kind() == FieldKind::Bool && !matches!(ty, ValueType::Bool) => {
            return Err(e(format!("must be `type: bool`, not {}", ty.name())));
        }
        Slot::Field(f) if f.kind() != FieldKind::Bool && !matches!(ty, ValueType::String) => {
            return Err(e(format!(
                "is text: `type: {}` only applies to attributes",
                ty.name()
            )));
        }
        Slot::Note if !matches!(ty, ValueType::String) => {
            return Err(e("notes are text: `type:` does not apply".into()));
        }
        _ => {}
    }
    if (prefix.is_some() || suffix.is_some()) && !matches!(ty, ValueType::String) {
        return Err(e(format!(
            "`prefix:`/`suffix:` make text, but the type is {}",
            ty.name()
        )));
    }
    let case = match (lowercase.unwrap_or(false), uppercase.unwrap_or(false)) {
        (true, true) => return Err(e("choose `lowercase:` or `uppercase:`, not both".into())),
        (true, false) => Case::Lower,
        (false, true) => Case::Upper,
        _ => Case::Keep,
    };
    let region_from = match region_from {
        Some(r) if slot.kind() == Some(FieldKind::Phone) => Some(ColRef {
            line: line_of(&r),
            name: r.value,
        }),
        Some(_) => {
            return Err(e(
                "`region_from:` only applies to fields.phone_number".into()
            ));
        }
        None => None,
    };

    // Constants, defaults and table values are checked now, not on every row.
    let check = |what: &str, v: &str| -> anyhow::Result<()> {
        if v.trim().is_empty() {
            return Ok(());
        }
        ty.convert(v.trim())
            .map_err(|m| e(format!("{what} {v:?} {m}")))?;
        match slot {
            Slot::Field(f) if f.kind() == FieldKind::Email => {
                Email::parse(v).map_err(|r| e(format!("{what}: {}", r.message)))?;
            }
            Slot::Field(f) if f.kind() == FieldKind::Identifier => {
                Identifier::parse(v).map_err(|r| e(format!("{what}: {}", r.message)))?;
            }
            _ => {}
        }
        Ok(())
    };
    if let SourceDef::Const(c) = &source {
        if c.trim().is_empty() {
            return Err(e("`const:` is blank".into()));
        }
        check("const", c)?;
    }
    if let Some(d) = &default {
        check("default", &d.value)?;
    }
    let map = match map {
        None => None,
        Some(table) => {
            let table_line = line_of(&table);
            let mut out: HashMap<String, String> = HashMap::with_capacity(table.value.0.len());
            for (from, to) in table.value.0 {
                check("map value", &to)?;
                let key = from.trim().to_lowercase();
                if out.insert(key, to).is_some() {
                    return Err(cx.err(
                        table_line,
                        format!(
                            "{target}: map: {from:?} is listed twice (keys match case-insensitively)"
                        ),
                    ));
                }
            }
            Some(out)
        }
    };

    Ok(ValueDef {
        target,
        source,
        modifiers: Modifiers {
            trim: trim.unwrap_or(true),
            case,
            map,
            default: default
                .map(|d| d.value.trim().to_owned())
                .filter(|d| !d.is_empty()),
            prefix: prefix.filter(|p| !p.is_empty()),
            suffix: suffix.filter(|s| !s.is_empty()),
            ty,
        },
        region_from,
    })
}
