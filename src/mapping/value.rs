//! Value specs in their two checked forms: a [`ValueDef`] (loaded and checked, columns still by
//! name, each with its mapping line) and a [`Compiled`] value (columns bound to indices by
//! `resolve`), which is what runs for every row. Evaluation order, as documented in
//! `docs/mapping.md`: pick (column / first non-blank / template / constant) → trim →
//! lowercase/uppercase → `map` → `default` if blank → `prefix`/`suffix` (not on the default) →
//! `type`.
use std::borrow::Cow;
use std::collections::HashMap;

use super::types::ValueType;
use crate::source::Record;

/// A column named in the mapping, with the 1-based mapping line that names it.
#[derive(Debug, Clone)]
pub struct ColRef {
    pub name: String,
    pub line: u64,
}

/// Where a value comes from, columns still by name.
#[derive(Debug, Clone)]
pub enum SourceDef {
    /// One column, or several where the first non-blank wins.
    Columns(Vec<ColRef>),
    /// A template, then (`template:` with `from:`) the columns tried when it is blank.
    Template(Vec<TplPart<ColRef>>, Vec<ColRef>),
    Const(String),
}

/// A piece of a template: literal text or a column placeholder.
#[derive(Debug, Clone)]
pub enum TplPart<C> {
    Lit(String),
    Col(C),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Keep,
    Lower,
    Upper,
}

/// The modifiers shared by both forms.
#[derive(Debug, Clone)]
pub struct Modifiers {
    pub trim: bool,
    pub case: Case,
    /// Keys lower-cased: the table matches case-insensitively.
    pub map: Option<HashMap<String, String>>,
    pub default: Option<String>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
    pub ty: ValueType,
    /// `required: true`: a value that cannot be used fails the row instead of leaving the field
    /// out with a warning.
    pub required: bool,
    /// `split:`: the separator between the several values a cell holds; each is a candidate.
    pub split: Option<String>,
    /// `international: true` (phone only): digits without `+` start with the country code.
    pub international: bool,
}

/// A checked value spec.
#[derive(Debug, Clone)]
pub struct ValueDef {
    /// Where in the mapping: `fields.name`, `custom_attributes.plan`, `notes[2]`.
    pub target: String,
    pub source: SourceDef,
    pub modifiers: Modifiers,
    /// `region_from` (phone_number only): the first non-blank of these columns.
    pub region_from: Vec<ColRef>,
    /// `optional: true`: the columns may be absent from the file.
    pub optional: bool,
}

impl ValueDef {
    /// Every column this spec reads, in the order written.
    pub fn columns(&self) -> impl Iterator<Item = &ColRef> {
        let src: Box<dyn Iterator<Item = &ColRef>> = match &self.source {
            SourceDef::Columns(c) => Box::new(c.iter()),
            SourceDef::Template(parts, or) => Box::new(
                parts
                    .iter()
                    .filter_map(|p| match p {
                        TplPart::Col(c) => Some(c),
                        TplPart::Lit(_) => None,
                    })
                    .chain(or),
            ),
            SourceDef::Const(_) => Box::new(std::iter::empty()),
        };
        src.chain(self.region_from.iter())
    }
}

/// Split `"{First Name} {Last Name}"` into parts. `{{` and `}}` are literal braces.
pub fn parse_template(text: &str, line: u64) -> Result<Vec<TplPart<ColRef>>, String> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                lit.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some('{') | None => {
                            return Err(format!(
                                "template {text:?}: a `{{` is not closed (write `{{{{` for a literal brace)"
                            ));
                        }
                        Some(c) => name.push(c),
                    }
                }
                if name.trim().is_empty() {
                    return Err(format!("template {text:?}: an empty placeholder `{{}}`"));
                }
                if !lit.is_empty() {
                    parts.push(TplPart::Lit(std::mem::take(&mut lit)));
                }
                parts.push(TplPart::Col(ColRef { name, line }));
            }
            '}' => {
                return Err(format!(
                    "template {text:?}: a `}}` with no `{{` (write `}}}}` for a literal brace)"
                ));
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        parts.push(TplPart::Lit(lit));
    }
    if !parts.iter().any(|p| matches!(p, TplPart::Col(_))) {
        return Err(format!(
            "template {text:?} has no {{Column}} placeholder (for a fixed value use `const:`)"
        ));
    }
    Ok(parts)
}

/// Where a value is taken from, columns bound to indices.
#[derive(Debug, Clone)]
pub enum Src {
    Col(usize),
    First(Box<[usize]>),
    /// The template, then its fallback columns (candidates 1, 2, …).
    Template(Box<[TplPart<usize>]>, Box<[usize]>),
    Const(Box<str>),
}

/// A value spec bound to one file's columns.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub target: Box<str>,
    pub src: Src,
    pub m: Modifiers,
    /// Every column the value reads (for "blank" messages and damaged-cell checks).
    pub cols: Box<[usize]>,
}

/// What produced a value, for messages and for the spreadsheet-number flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Column(usize),
    Template,
    Const,
    Default,
}

/// A non-blank value and where it came from.
#[derive(Debug)]
pub struct Got<'r> {
    pub text: Cow<'r, str>,
    pub origin: Origin,
}

fn cell(rec: &Record, i: usize) -> &str {
    rec.fields.get(i).map(String::as_str).unwrap_or("")
}

fn has_upper(s: &str) -> bool {
    if s.is_ascii() {
        s.bytes().any(|b| b.is_ascii_uppercase())
    } else {
        s.chars().any(char::is_uppercase)
    }
}

fn has_lower(s: &str) -> bool {
    if s.is_ascii() {
        s.bytes().any(|b| b.is_ascii_lowercase())
    } else {
        s.chars().any(char::is_lowercase)
    }
}

impl Compiled {
    /// The first non-blank value from candidate `start` on, with the candidate to try next if
    /// this one is refused: a `from:` list has one candidate per column (so a column whose value
    /// is invalid falls through to the next, as a blank one does); any other source has one.
    /// The `default` is the value only when every candidate is blank (`start` 0 and nothing
    /// found): a list whose non-blank values were all refused has no value.
    pub fn text_from<'r>(&'r self, rec: &'r Record, start: usize) -> Option<(Got<'r>, usize)> {
        let m = &self.m;
        let picked = match &self.src {
            Src::Col(i) => self.first_in_cols(rec, std::slice::from_ref(i), start),
            Src::First(cols) => self.first_in_cols(rec, cols, start),
            Src::Template(parts, or) => (start == 0)
                .then(|| render(parts, rec))
                .flatten()
                .and_then(|s| self.modified(Cow::Owned(s), Origin::Template))
                .map(|g| (g, 1))
                .or_else(|| {
                    let (g, next) = self.first_in_cols(rec, or, start.saturating_sub(1))?;
                    Some((g, next + 1))
                }),
            Src::Const(c) if start == 0 => self
                .modified(Cow::Borrowed(&**c), Origin::Const)
                .map(|g| (g, 1)),
            _ => None,
        };
        match picked {
            Some(p) => Some(p),
            None if start == 0 => m.default.as_deref().map(|d| {
                let g = Got {
                    text: Cow::Borrowed(d),
                    origin: Origin::Default,
                };
                (g, usize::MAX)
            }),
            None => None,
        }
    }

    /// The first non-blank value of `cols` from candidate `skip` on, and the candidate after it.
    /// A candidate is a column's cell, or with `split:` each value the cell holds, in order.
    fn first_in_cols<'r>(
        &'r self,
        rec: &'r Record,
        cols: &[usize],
        skip: usize,
    ) -> Option<(Got<'r>, usize)> {
        let sep = self.m.split.as_deref();
        // No allocation on the way: the whole cell, or its `split:` values.
        let values = |i: usize| {
            let raw = cell(rec, i);
            let (whole, parts) = match sep {
                Some(sep) => (None, Some(raw.split(sep))),
                None => (Some(raw), None),
            };
            (whole.into_iter().chain(parts.into_iter().flatten())).map(move |p| (i, p))
        };
        (cols.iter().flat_map(|&i| values(i)).enumerate())
            .skip(skip)
            .find_map(|(k, (i, raw))| {
                if raw.trim().is_empty() {
                    return None;
                }
                let v = if self.m.trim { raw.trim() } else { raw };
                let g = self.modified(Cow::Borrowed(v), Origin::Column(i))?;
                Some((g, k + 1))
            })
    }

    /// Case, `map`, then `prefix`/`suffix` applied to a picked text; `None` when blank after them.
    fn modified<'r>(&'r self, mut text: Cow<'r, str>, origin: Origin) -> Option<Got<'r>> {
        let m = &self.m;
        match m.case {
            Case::Keep => {}
            Case::Lower if has_upper(&text) => text = Cow::Owned(text.to_lowercase()),
            Case::Upper if has_lower(&text) => text = Cow::Owned(text.to_uppercase()),
            _ => {}
        }
        if let Some(table) = &m.map {
            // Keys were trimmed and lower-cased at load.
            let key = text.trim();
            let hit = if has_upper(key) {
                table.get(&key.to_lowercase())
            } else {
                table.get(key)
            };
            if let Some(to) = hit {
                text = Cow::Borrowed(to.as_str());
            }
        }
        if text.trim().is_empty() {
            return None;
        }
        let text = match (&m.prefix, &m.suffix) {
            (None, None) => text,
            (p, s) => {
                let p = p.as_deref().unwrap_or("");
                let s = s.as_deref().unwrap_or("");
                let mut out = String::with_capacity(p.len() + text.len() + s.len());
                out.push_str(p);
                out.push_str(&text);
                out.push_str(s);
                Cow::Owned(out)
            }
        };
        Some(Got { text, origin })
    }
}

/// Render a template. Blank placeholders vanish and the whitespace around them collapses: no
/// leading, trailing or doubled spaces at the joins. All placeholders blank → blank.
fn render(parts: &[TplPart<usize>], rec: &Record) -> Option<String> {
    let mut any = false;
    let mut out = String::with_capacity(48);
    for p in parts {
        let piece = match p {
            TplPart::Lit(s) => s.as_str(),
            TplPart::Col(i) => {
                let v = cell(rec, *i).trim();
                if v.is_empty() {
                    continue;
                }
                any = true;
                v
            }
        };
        let piece = if out.is_empty() || out.ends_with(char::is_whitespace) {
            piece.trim_start()
        } else {
            piece
        };
        out.push_str(piece);
    }
    if !any {
        return None;
    }
    out.truncate(out.trim_end().len());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_placeholders_and_escapes() {
        let p = parse_template("{{id}} {First Name}-{Last}", 3).unwrap();
        let shape: Vec<String> = p
            .iter()
            .map(|p| match p {
                TplPart::Lit(s) => format!("L{s}"),
                TplPart::Col(c) => format!("C{}@{}", c.name, c.line),
            })
            .collect();
        assert_eq!(shape, ["L{id} ", "CFirst Name@3", "L-", "CLast@3"]);
        assert!(
            parse_template("{Open", 1)
                .unwrap_err()
                .contains("not closed")
        );
        assert!(parse_template("no placeholder", 1).is_err());
        assert!(parse_template("a } b {X}", 1).is_err());
        assert!(parse_template("{}", 1).is_err());
    }
}
