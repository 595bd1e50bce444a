//! Header names and where the header is: how a name in a mapping finds its column (repeated
//! headers addressed as `email#2`), how column `i` is spelled so that it can be found again, and
//! the rule that finds the header row when the mapping does not say where it is (the first row,
//! among the first [`SEARCH_ROWS`] with a value, that holds every column the mapping needs).
use std::collections::HashMap;

/// Rows with a value searched for the header (title rows above it are skipped).
pub const SEARCH_ROWS: usize = 20;

/// `_row`, `_error_code`, …: columns a report added, never data.
pub fn is_report_column(header: &str) -> bool {
    header.trim_start_matches('\u{feff}').starts_with('_')
}

/// The name a mapping uses for column `i` (0-based) of `headers`: the header itself for its
/// first occurrence, `"email#2"` for the second column named `email`, and so on.
pub fn column_name(headers: &[String], i: usize) -> String {
    let h = headers[i].trim();
    let k = headers[..i].iter().filter(|o| o.trim() == h).count();
    if k == 0 {
        h.to_owned()
    } else {
        format!("{h}#{}", k + 1)
    }
}

/// [`column_name`] of every column at once, in linear time (for a draft of a wide file).
pub fn column_names(headers: &[String]) -> Vec<String> {
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(headers.len());
    headers
        .iter()
        .map(|h| {
            let h = h.trim();
            let k = seen.entry(h).or_insert(0);
            *k += 1;
            if *k == 1 {
                h.to_owned()
            } else {
                format!("{h}#{k}")
            }
        })
        .collect()
}

/// Split `"email#2"` into `("email", 2)`; `None` when the name has no `#N` suffix.
pub fn split_occurrence(name: &str) -> Option<(&str, usize)> {
    let (base, n) = name.rsplit_once('#')?;
    let n: usize = n.trim().parse().ok()?;
    (!base.trim().is_empty()).then_some((base.trim(), n))
}

/// Header name → column, built once per header row.
pub struct HeaderIndex<'h> {
    exact: HashMap<&'h str, usize>,
    /// Every column of each trimmed name, in order (report columns left out).
    all: HashMap<&'h str, Vec<usize>>,
}

impl<'h> HeaderIndex<'h> {
    pub fn new(headers: &'h [String]) -> Self {
        let mut exact = HashMap::with_capacity(headers.len());
        let mut all: HashMap<&str, Vec<usize>> = HashMap::with_capacity(headers.len());
        for (i, h) in headers.iter().enumerate() {
            if is_report_column(h) {
                continue;
            }
            exact.entry(h.as_str()).or_insert(i);
            all.entry(h.trim()).or_default().push(i);
        }
        HeaderIndex { exact, all }
    }

    /// The column a mapping name denotes: the header written exactly so (a repeated header: its
    /// first column), a header that differs only by stray spaces when exactly one does, or, for
    /// `name#N`, the N-th column named `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        if let Some(&i) = self.exact.get(name) {
            return Some(i);
        }
        if let Some(&[i]) = self.all.get(name.trim()).map(Vec::as_slice) {
            return Some(i);
        }
        let (base, n) = split_occurrence(name)?;
        self.all.get(base)?.get(n.checked_sub(1)?).copied()
    }

    /// The columns named `name` (trimmed), in order.
    pub fn columns_named(&self, name: &str) -> &[usize] {
        self.all.get(name.trim()).map_or(&[], Vec::as_slice)
    }
}

/// A header name without what no one types: invisible characters anywhere (a zero-width space,
/// a byte-order mark, a soft hyphen, bidi marks; not the joiners some scripts need) and
/// no-break or other Unicode spaces read as plain spaces, trimmed. `None` when the name has none
/// of them; else the clean name and what was fixed, for the warning.
pub(crate) fn clean_name(name: &str) -> Option<(String, String)> {
    use crate::normalise::is_invisible;
    let odd_space = |c: char| c.is_whitespace() && c != ' ' && !matches!(c, '\t' | '\n' | '\r');
    if !name.contains(|c: char| is_invisible(c) || odd_space(c)) {
        return None;
    }
    let mut found: Vec<String> = Vec::new();
    let mut clean = String::with_capacity(name.len());
    for c in name.chars() {
        if is_invisible(c) || odd_space(c) {
            let code = format!("U+{:04X}", c as u32);
            if !found.contains(&code) {
                found.push(code);
            }
        }
        if odd_space(c) {
            clean.push(' ');
        } else if !is_invisible(c) {
            clean.push(c);
        }
    }
    Some((clean.trim().to_owned(), found.join(", ")))
}

/// The row holds every name of `want` as a header (cleaned as headers are: trimmed, invisible
/// characters dropped, odd spaces read as spaces; see [`clean_name`]).
pub fn holds_all(row: &[String], want: &[String]) -> bool {
    let cleaned: Vec<String> = row
        .iter()
        .map(|c| clean_name(c).map_or_else(|| c.trim().to_owned(), |(n, _)| n))
        .collect();
    let index = HeaderIndex::new(&cleaned);
    want.iter().all(|w| index.find(w).is_some())
}

/// The columns the header search looked for, for messages: `"Email", "Name"`.
pub fn shown_columns(want: &[String]) -> String {
    const SHOW: usize = 6;
    let mut list: Vec<String> = want.iter().take(SHOW).map(|w| format!("{w:?}")).collect();
    if want.len() > SHOW {
        list.push(format!("… ({} in all)", want.len()));
    }
    list.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn repeated_headers_are_spelled_and_found_by_occurrence() {
        let hs = h(&["email", "Name", "email", "_row", "email"]);
        let names: Vec<String> = (0..hs.len()).map(|i| column_name(&hs, i)).collect();
        assert_eq!(names, ["email", "Name", "email#2", "_row", "email#3"]);
        assert_eq!(column_names(&hs), names);
        let ix = HeaderIndex::new(&hs);
        for (i, n) in names.iter().enumerate().filter(|(i, _)| *i != 3) {
            assert_eq!(ix.find(n), Some(i), "{n}");
        }
        assert_eq!(ix.find("email#1"), Some(0));
        assert_eq!(ix.find("email#4"), None);
        assert_eq!(ix.find("email#0"), None);
        assert_eq!(ix.find("_row"), None);
        assert_eq!(ix.columns_named("email"), [0, 2, 4]);
    }

    #[test]
    fn a_literal_header_with_a_hash_wins() {
        let hs = h(&["Tag#2", "Tag", "Tag"]);
        let ix = HeaderIndex::new(&hs);
        assert_eq!(ix.find("Tag#2"), Some(0));
        assert_eq!(ix.find("Tag"), Some(1));
        assert_eq!(ix.find("Tag#3"), None);
    }

    #[test]
    fn stray_spaces_match_one_header_only() {
        let hs = h(&["Email ", "Name"]);
        let ix = HeaderIndex::new(&hs);
        assert_eq!(ix.find("Email"), Some(0));
        assert!(holds_all(
            &h(&["\u{feff}Name", " Email"]),
            &h(&["Email", "Name"])
        ));
        assert!(!holds_all(&h(&["Report", "", ""]), &h(&["Email"])));
    }
}
