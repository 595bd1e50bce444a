//! Binding a mapping to one file's headers: every column the mapping names (template placeholders
//! and `region_from` included) is looked up once (`email#2` is the second `email` column:
//! [`HeaderIndex`]); the ones that are missing fail together, each with its mapping line and the
//! closest real headers, except those of an `optional` value, which are skipped with a notice.
//! `from_prefix` turns the matching headers into attributes here. Headers starting with `_` (the
//! report columns of a fed-back `failures.csv`) are never mapped.
use std::collections::{HashMap, HashSet};

use anyhow::anyhow;

use super::load::column_def;
use super::suggest::{closest, same_spelling};
use super::types::ValueType;
use super::value::{ColRef, Compiled, SourceDef, Src, TplPart, ValueDef};
use super::{AttrPrefix, Mapping, Resolved};
use crate::source::detect::{HeaderIndex, is_report_column, split_occurrence};

/// A report of this tool (`failures.csv`, `warnings.csv`), whose cells carry the formula guard.
fn is_guarded_report(headers: &[String]) -> bool {
    headers
        .iter()
        .any(|h| h == "_error_code" || h == "_warning_code")
}

pub fn resolve(m: &Mapping, headers: &[String]) -> anyhow::Result<Resolved> {
    let lookup = HeaderIndex::new(headers);
    check_columns(m, headers, &lookup)?;
    let mut notices = absent_notices(m, headers, &lookup);
    let col = |c: &ColRef| lookup.find(&c.name);
    let compile = |d: &ValueDef| compile(d, &col);
    let [custom_prefix, additional_prefix] = m.attribute_prefixes.each_ref();
    let custom = with_prefix(
        m,
        "custom_attributes",
        &m.custom_attributes,
        custom_prefix.as_ref(),
        headers,
        &mut notices,
    );
    let additional = with_prefix(
        m,
        "additional_attributes",
        &m.additional_attributes,
        additional_prefix.as_ref(),
        headers,
        &mut notices,
    );
    let f = &m.fields;
    let mut used: Vec<usize> = m
        .defs()
        .chain(custom.iter().chain(&additional).map(|(_, d)| d))
        .flat_map(|d| d.columns().filter_map(col))
        .collect();
    used.sort_unstable();
    used.dedup();
    let attrs = |a: &[(String, ValueDef)]| -> Box<[(String, Compiled)]> {
        a.iter().map(|(k, d)| (k.clone(), compile(d))).collect()
    };

    Ok(Resolved {
        headers: headers.to_vec().into(),
        used: used.into(),
        fields: {
            let mut fields: Vec<_> = f.0.iter().map(|(f, d)| (*f, compile(d))).collect();
            fields.sort_by_key(|(f, _)| super::apply::read_order(*f));
            fields.into()
        },
        region_cols: f
            .0
            .iter()
            .flat_map(|(_, d)| &d.region_from)
            .filter_map(col)
            .collect(),
        custom_attributes: attrs(&custom),
        additional_attributes: attrs(&additional),
        notes: m.notes.iter().map(compile).collect(),
        default_region: m.default_region,
        match_keys: m.match_keys.clone(),
        existing: m.existing,
        missing: m.missing,
        blank: m.blank,
        name_required: m.name_required,
        unguard: is_guarded_report(headers),
        notices,
    })
}

/// An attribute section: its explicit keys, then those `from_prefix` adds (a notice when it adds
/// none).
fn with_prefix(
    m: &Mapping,
    section: &str,
    explicit: &[(String, ValueDef)],
    p: Option<&AttrPrefix>,
    headers: &[String],
    notices: &mut Vec<String>,
) -> Vec<(String, ValueDef)> {
    let mut all = explicit.to_vec();
    if let Some(p) = p {
        let added = prefixed(section, p, explicit, headers);
        if added.is_empty() {
            notices.push(format!(
                "{}:{}: {section}.from_prefix: no column of the file starts with {:?}; no attribute is read from it",
                m.origin, p.line, p.prefix
            ));
        }
        all.extend(added);
    }
    all
}

/// The attributes `from_prefix` adds: one per column whose header starts with the prefix, named
/// by the rest of the header (trimmed), read as text. A key the section maps itself is left to
/// it (explicit wins); a repeated header gives its first column.
fn prefixed(
    section: &str,
    p: &AttrPrefix,
    explicit: &[(String, ValueDef)],
    headers: &[String],
) -> Vec<(String, ValueDef)> {
    let mut taken: HashSet<&str> = explicit.iter().map(|(k, _)| k.as_str()).collect();
    let mut out = Vec::new();
    for h in headers {
        let Some(key) = h.strip_prefix(p.prefix.as_str()).map(str::trim) else {
            continue;
        };
        if key.is_empty() || is_report_column(h) || !taken.insert(key) {
            continue;
        }
        let col = ColRef {
            name: h.clone(),
            line: p.line,
        };
        let def = column_def(format!("{section}.{key}"), col, ValueType::String);
        out.push((key.to_owned(), def));
    }
    out
}

/// Values whose absent columns are named one notice each; above this many, the values that still
/// read from other columns are summed up in one notice (a mapping that reads several layouts,
/// such as Outlook's in three languages, lacks most of its columns in any one file) and named
/// one by one with `-v`.
const ABSENT_IN_DETAIL: usize = 3;

/// One notice per `optional` value that names columns the file lacks: they are skipped, and a
/// value left with none is blank on every row. A header that is an absent column written
/// another way (`Record Id` for `Record ID`) is named: it is likely the column meant. Values
/// that still read from other columns are summed up when there are many (`ABSENT_IN_DETAIL`).
fn absent_notices(m: &Mapping, headers: &[String], lookup: &HeaderIndex<'_>) -> Vec<String> {
    let all = absent_values(m, headers, lookup);
    if all.iter().filter(|v| !v.2).count() <= ABSENT_IN_DETAIL {
        return all.into_iter().map(|v| v.0).collect();
    }
    let (mut out, mut partial) = (Vec::new(), Vec::new());
    for (notice, columns, blank) in all {
        match blank {
            true => out.push(notice),
            false => partial.push((notice, columns)),
        }
    }
    let columns: usize = partial.iter().map(|(_, c)| c).sum();
    for (notice, _) in &partial {
        tracing::info!("{notice}");
    }
    out.push(format!(
        "{}: {columns} optional columns of {} values are not in the file: skipped, those values \
         come from their other columns (`-v` names them)",
        m.origin,
        partial.len()
    ));
    out
}

/// [`absent_notices`] one by one: each value's notice, how many of its columns are absent, and
/// whether none is left (the value is then blank or its default on every row) or the file has
/// one written another way.
fn absent_values(
    m: &Mapping,
    headers: &[String],
    lookup: &HeaderIndex<'_>,
) -> Vec<(String, usize, bool)> {
    let usable: Vec<&str> = headers
        .iter()
        .map(String::as_str)
        .filter(|h| !is_report_column(h))
        .collect();
    let mut out = Vec::new();
    for d in m.defs().filter(|d| d.optional) {
        let absent: Vec<&ColRef> = d
            .columns()
            .filter(|c| lookup.find(&c.name).is_none())
            .collect();
        let Some(first) = absent.first() else {
            continue;
        };
        let names: Vec<String> = absent.iter().map(|c| format!("{:?}", c.name)).collect();
        let partial = absent.len() < d.columns().count();
        let what = if partial {
            "skipped; the value comes from the other columns".to_owned()
        } else {
            match &d.modifiers.default {
                Some(v) => format!("the value is its default {v:?} on every row"),
                None => "the value is blank on every row".to_owned(),
            }
        };
        let respelt: Vec<String> = absent
            .iter()
            .filter_map(|c| same_spelling(&c.name, &usable).map(|h| (c, h)))
            .map(|(c, h)| {
                format!(
                    "; the file has {h:?}: write it so for {:?} to read it",
                    c.name
                )
            })
            .collect();
        let notice = format!(
            "{}:{}: {}: optional column{} {} not in the file: {what}{}",
            m.origin,
            first.line,
            d.target,
            if names.len() == 1 { "" } else { "s" },
            names.join(", "),
            respelt.concat()
        );
        out.push((notice, absent.len(), !partial || !respelt.is_empty()));
    }
    out
}

/// Every column the mapping names is in the headers; the missing ones fail together, in
/// mapping order, each once.
fn check_columns(m: &Mapping, headers: &[String], lookup: &HeaderIndex<'_>) -> anyhow::Result<()> {
    let mut seen: HashMap<&str, ()> = HashMap::new();
    let mut missing: Vec<&ColRef> = Vec::new();
    for def in m.defs().filter(|d| !d.optional) {
        for c in def.columns() {
            if seen.insert(c.name.as_str(), ()).is_none() && lookup.find(&c.name).is_none() {
                missing.push(c);
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let usable: Vec<&str> = headers
        .iter()
        .map(String::as_str)
        .filter(|h| !is_report_column(h))
        .collect();
    let lines: Vec<String> = missing
        .iter()
        .map(|c| missing_message(&m.origin, c, &usable, lookup))
        .collect();
    Err(if lines.len() == 1 {
        anyhow!("{}", lines[0])
    } else {
        anyhow!(
            "{} named in the mapping are not in the file:\n{}",
            crate::words::count(lines.len() as u64, "column"),
            lines.join("\n")
        )
    })
}

/// A value definition with its columns as header indices (`col` finds one; the absent columns
/// of an `optional` value are left out: a `from:` list skips them, a template reads them blank).
fn compile(d: &ValueDef, col: &impl Fn(&ColRef) -> Option<usize>) -> Compiled {
    let src = match &d.source {
        SourceDef::Columns(cs) => match cs.iter().filter_map(col).collect::<Vec<_>>()[..] {
            [one] => Src::Col(one),
            ref several => Src::First(several.into()),
        },
        SourceDef::Template(parts, or) => Src::Template(
            parts
                .iter()
                .filter_map(|p| match p {
                    TplPart::Lit(s) => Some(TplPart::Lit(s.clone())),
                    TplPart::Col(c) => col(c).map(TplPart::Col),
                })
                .collect(),
            or.iter().filter_map(col).collect(),
        ),
        SourceDef::Const(s) => Src::Const(s.as_str().into()),
    };
    let mut cols: Vec<usize> = match &d.source {
        SourceDef::Columns(cs) => cs.iter().filter_map(col).collect(),
        SourceDef::Template(parts, or) => parts
            .iter()
            .filter_map(|p| match p {
                TplPart::Col(c) => col(c),
                TplPart::Lit(_) => None,
            })
            .chain(or.iter().filter_map(col))
            .collect(),
        SourceDef::Const(_) => Vec::new(),
    };
    cols.dedup();
    Compiled {
        target: d.target.as_str().into(),
        src,
        m: d.modifiers.clone(),
        cols: cols.into(),
    }
}

fn missing_message(origin: &str, c: &ColRef, headers: &[&str], lookup: &HeaderIndex) -> String {
    let mut msg = format!(
        "{origin}:{}: column {:?} is not in the file's headers",
        c.line, c.name
    );
    if let Some((base, n)) = split_occurrence(&c.name) {
        let cols = lookup.columns_named(base);
        if !cols.is_empty() {
            let at: Vec<String> = cols.iter().map(|i| (i + 1).to_string()).collect();
            let counted = if n == 0 {
                "; occurrences are counted from 1"
            } else {
                ""
            };
            msg.push_str(&format!(
                ": the file has {} column{} named {base:?} (column{} {}){counted}",
                cols.len(),
                if cols.len() == 1 { "" } else { "s" },
                if cols.len() == 1 { "" } else { "s" },
                at.join(", ")
            ));
            return msg;
        }
    }
    if is_report_column(&c.name) {
        msg.push_str(" (columns starting with `_` are report columns and are never mapped)");
    }
    let near = closest(&c.name, headers, 3);
    if near.is_empty() {
        const SHOW: usize = 12;
        let list: Vec<String> = headers
            .iter()
            .take(SHOW)
            .map(|h| format!("{h:?}"))
            .collect();
        msg.push_str(&format!("; the headers are: {}", list.join(", ")));
        if headers.len() > SHOW {
            msg.push_str(&format!(", … ({} in all)", headers.len()));
        }
    } else {
        let list: Vec<String> = near.iter().map(|h| format!("{h:?}")).collect();
        msg.push_str(&format!("; closest: {}", list.join(", ")));
    }
    msg
}
