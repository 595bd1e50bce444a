//! Binding a mapping to one file's headers: every column the mapping names (template placeholders
//! and `region_from` included) is looked up once; the ones that are missing fail together, each
//! with its mapping line and the closest real headers. Headers starting with `_` (the report
//! columns of a fed-back `failures.csv`) are never mapped.
use std::collections::HashMap;

use anyhow::anyhow;

use super::suggest::closest;
use super::value::{ColRef, Compiled, SourceDef, Src, TplPart, ValueDef};
use super::{Mapping, Resolved};

/// Header name → index, built once.
struct Lookup<'h> {
    exact: HashMap<&'h str, usize>,
    /// Headers with stray spaces (`"Email "`): matched when exactly one trims to the name.
    trimmed: HashMap<&'h str, Option<usize>>,
}

impl<'h> Lookup<'h> {
    fn new(headers: &'h [String]) -> Self {
        let mut exact = HashMap::with_capacity(headers.len());
        let mut trimmed: HashMap<&str, Option<usize>> = HashMap::with_capacity(headers.len());
        for (i, h) in headers.iter().enumerate() {
            if is_report_column(h) {
                continue;
            }
            // A duplicated header: the first one wins (the source reports the duplicate).
            exact.entry(h.as_str()).or_insert(i);
            trimmed
                .entry(h.trim())
                .and_modify(|e| *e = None)
                .or_insert(Some(i));
        }
        Lookup { exact, trimmed }
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.exact
            .get(name)
            .copied()
            .or_else(|| self.trimmed.get(name.trim()).copied().flatten())
    }
}

/// `_row`, `_error_code`, …: columns a report added, never data.
pub fn is_report_column(header: &str) -> bool {
    header.trim_start_matches('\u{feff}').starts_with('_')
}

/// A report of this tool (`failures.csv`, `warnings.csv`), whose cells carry the formula guard.
fn is_guarded_report(headers: &[String]) -> bool {
    headers
        .iter()
        .any(|h| h == "_error_code" || h == "_warning_code")
}

pub fn resolve(m: &Mapping, headers: &[String]) -> anyhow::Result<Resolved> {
    let lookup = Lookup::new(headers);
    check_columns(m, headers, &lookup)?;
    let col = |c: &ColRef| lookup.find(&c.name).expect("checked above");
    let compile = |d: &ValueDef| compile(d, &col);
    let f = &m.fields;
    let mut used: Vec<usize> = m.defs().flat_map(|d| d.columns().map(col)).collect();
    used.sort_unstable();
    used.dedup();

    Ok(Resolved {
        headers: headers.to_vec().into(),
        used: used.into(),
        fields: {
            let mut fields: Vec<_> = f.0.iter().map(|(f, d)| (*f, compile(d))).collect();
            fields.sort_by_key(|(f, _)| super::apply::read_order(*f));
            fields.into()
        },
        region_col: f
            .0
            .iter()
            .find_map(|(_, d)| d.region_from.as_ref())
            .map(col),
        custom_attributes: m
            .custom_attributes
            .iter()
            .map(|(k, d)| (k.clone(), compile(d)))
            .collect(),
        additional_attributes: m
            .additional_attributes
            .iter()
            .map(|(k, d)| (k.clone(), compile(d)))
            .collect(),
        notes: m.notes.iter().map(compile).collect(),
        default_region: m.default_region,
        match_keys: m.match_keys.clone(),
        existing: m.existing,
        missing: m.missing,
        blank: m.blank,
        name_required: m.name_required,
        unguard: is_guarded_report(headers),
    })
}

/// Every column the mapping names is in the headers; the missing ones fail together, in
/// mapping order, each once.
fn check_columns(m: &Mapping, headers: &[String], lookup: &Lookup<'_>) -> anyhow::Result<()> {
    let mut seen: HashMap<&str, ()> = HashMap::new();
    let mut missing: Vec<&ColRef> = Vec::new();
    for def in m.defs() {
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
        .map(|c| missing_message(&m.origin, c, &usable))
        .collect();
    Err(if lines.len() == 1 {
        anyhow!("{}", lines[0])
    } else {
        anyhow!(
            "{} columns named in the mapping are not in the file:\n{}",
            lines.len(),
            lines.join("\n")
        )
    })
}

/// A value definition with its columns as header indices (`col` finds one).
fn compile(d: &ValueDef, col: &impl Fn(&ColRef) -> usize) -> Compiled {
    let src = match &d.source {
        SourceDef::Columns(cs) if cs.len() == 1 => Src::Col(col(&cs[0])),
        SourceDef::Columns(cs) => Src::First(cs.iter().map(col).collect()),
        SourceDef::Template(parts) => Src::Template(
            parts
                .iter()
                .map(|p| match p {
                    TplPart::Lit(s) => TplPart::Lit(s.clone()),
                    TplPart::Col(c) => TplPart::Col(col(c)),
                })
                .collect(),
        ),
        SourceDef::Const(s) => Src::Const(s.as_str().into()),
    };
    let mut cols: Vec<usize> = match &d.source {
        SourceDef::Columns(cs) => cs.iter().map(col).collect(),
        SourceDef::Template(parts) => parts
            .iter()
            .filter_map(|p| match p {
                TplPart::Col(c) => Some(col(c)),
                TplPart::Lit(_) => None,
            })
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

fn missing_message(origin: &str, c: &ColRef, headers: &[&str]) -> String {
    let mut msg = format!(
        "{origin}:{}: column {:?} is not in the file's headers",
        c.line, c.name
    );
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
