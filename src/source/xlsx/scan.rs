//! A second, plain look at a workbook's XML for what calamine refuses: error cells whose text it
//! does not know (`#SPILL!`, `#CALC!`, `#GETTING_DATA`, Google's `#ERROR!`…). calamine stops the
//! cell stream on those with an error that names the text but not the cell; this finds the
//! cells, in sheet order, so the reader can put each one back where it was.
//!
//! The scan reads tags one at a time from the decompressed part and keeps nothing but the odd
//! cells it finds, so it costs one more pass over the sheet (only when such a cell exists) and
//! no memory in proportion to it.
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// Error texts calamine reads (anything else stops its cell stream).
const KNOWN: [&str; 7] = [
    "#DIV/0!", "#N/A", "#NAME?", "#NULL!", "#NUM!", "#REF!", "#VALUE!",
];

/// An error cell calamine does not read: its 0-based position (`None` when the cell had no
/// `r=` and its place depends on counting) and its text.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct OddError {
    pub row: u32,
    pub col: u32,
    pub placed: bool,
    pub text: String,
}

/// One tag: its name and raw attribute text, and whether it closes itself or is an end tag.
struct Tag {
    name: Vec<u8>,
    attrs: Vec<u8>,
    end: bool,
    empty: bool,
}

impl Tag {
    /// The local name (without a namespace prefix).
    fn is(&self, local: &[u8]) -> bool {
        let n = &self.name[..];
        n == local
            || (n.len() > local.len() && n.ends_with(local) && n[n.len() - local.len() - 1] == b':')
    }

    /// The unescaped value of attribute `key` (exact, prefix included).
    fn attr(&self, key: &str) -> Option<String> {
        let a = &self.attrs[..];
        let mut i = 0;
        while i < a.len() {
            while i < a.len() && a[i].is_ascii_whitespace() {
                i += 1;
            }
            let k0 = i;
            while i < a.len() && a[i] != b'=' && !a[i].is_ascii_whitespace() {
                i += 1;
            }
            let k = &a[k0..i];
            while i < a.len() && (a[i] == b'=' || a[i].is_ascii_whitespace()) {
                i += 1;
            }
            let q = *a.get(i)?;
            if q != b'"' && q != b'\'' {
                return None;
            }
            let v0 = i + 1;
            let v1 = v0 + memchr::memchr(q, &a[v0..])?;
            if k == key.as_bytes() {
                return Some(unescape(&String::from_utf8_lossy(&a[v0..v1])));
            }
            i = v1 + 1;
        }
        None
    }
}

fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Reads tags in order, skipping text (and comments, processing instructions) without keeping it.
struct Tags<R> {
    r: R,
    buf: Vec<u8>,
}

impl<R: BufRead> Tags<R> {
    fn new(r: R) -> Self {
        Tags { r, buf: Vec::new() }
    }

    /// The next tag, or `None` at the end of the input.
    fn next(&mut self) -> std::io::Result<Option<Tag>> {
        loop {
            self.r.skip_until(b'<')?;
            self.buf.clear();
            if self.r.read_until(b'>', &mut self.buf)? == 0 {
                return Ok(None);
            }
            let raw = self.buf.strip_suffix(b">").unwrap_or(&self.buf);
            if raw.first().is_some_and(|c| *c == b'?' || *c == b'!') {
                continue;
            }
            let end = raw.first() == Some(&b'/');
            let raw = if end { &raw[1..] } else { raw };
            let empty = raw.last() == Some(&b'/');
            let raw = if empty { &raw[..raw.len() - 1] } else { raw };
            let cut = raw
                .iter()
                .position(|c| c.is_ascii_whitespace())
                .unwrap_or(raw.len());
            return Ok(Some(Tag {
                name: raw[..cut].to_vec(),
                attrs: raw[cut..].to_vec(),
                end,
                empty,
            }));
        }
    }

    /// The text up to the next tag (which is consumed), at most `max` bytes kept.
    fn text(&mut self, max: usize) -> std::io::Result<String> {
        self.buf.clear();
        self.r.read_until(b'<', &mut self.buf)?;
        self.r.skip_until(b'>')?;
        let t = self.buf.strip_suffix(b"<").unwrap_or(&self.buf);
        Ok(unescape(&String::from_utf8_lossy(&t[..t.len().min(max)])))
    }
}

/// 0-based (row, column) of a cell reference such as `AB12`.
fn position(r: &str) -> Option<(u32, u32)> {
    let split = r.find(|c: char| c.is_ascii_digit())?;
    let (letters, digits) = r.split_at(split);
    let mut col: u32 = 0;
    for c in letters.bytes() {
        if !c.is_ascii_alphabetic() {
            return None;
        }
        col = col
            .checked_mul(26)?
            .checked_add(u32::from(c.to_ascii_uppercase() - b'A') + 1)?;
    }
    let row: u32 = digits.parse().ok()?;
    Some((row.checked_sub(1)?, col.checked_sub(1)?))
}

/// The error cells of a worksheet part that calamine does not read, in sheet order. Positions
/// are counted as calamine counts them (a row or cell without `r=` follows the one before).
fn odd_errors(part: impl Read) -> std::io::Result<VecDeque<OddError>> {
    let mut tags = Tags::new(BufReader::new(part));
    let mut out = VecDeque::new();
    let (mut row, mut col) = (0u32, 0u32);
    let mut cell: Option<(u32, u32, bool, bool)> = None;
    while let Some(t) = tags.next()? {
        if t.is(b"row") {
            if !t.end
                && let Some(r) = t.attr("r").and_then(|r| r.parse::<u32>().ok())
            {
                row = r.saturating_sub(1);
            }
            if t.end || t.empty {
                (row, col) = (row + 1, 0);
            }
        } else if t.is(b"c") && !t.end {
            let (r, c, placed) = match t.attr("r").as_deref().and_then(position) {
                Some((r, c)) => (r, c, true),
                None => (row, col, false),
            };
            col = c + 1;
            if !t.empty {
                cell = Some((r, c, placed, t.attr("t").as_deref() == Some("e")));
            }
        } else if t.is(b"c") {
            cell = None;
        } else if t.is(b"v") && !t.end && !t.empty {
            if let Some((r, c, placed, true)) = cell {
                let text = tags.text(64)?;
                if !KNOWN.contains(&text.as_str()) {
                    out.push_back(OddError {
                        row: r,
                        col: c,
                        placed,
                        text,
                    });
                }
            }
        } else if t.is(b"sheetData") && t.end {
            break;
        }
    }
    Ok(out)
}

/// The ZIP path of the worksheet named `sheet`, from `workbook.xml` and its relationships
/// (absolute targets such as `/xl/worksheets/sheet1.xml` included).
fn sheet_part(zip: &mut zip::ZipArchive<BufReader<File>>, sheet: &str) -> Option<String> {
    let id = {
        let mut tags = Tags::new(BufReader::new(zip.by_name("xl/workbook.xml").ok()?));
        loop {
            let t = tags.next().ok()??;
            if t.is(b"sheet") && t.attr("name").as_deref() == Some(sheet) {
                break t.attr("r:id")?;
            }
        }
    };
    let mut tags = Tags::new(BufReader::new(
        zip.by_name("xl/_rels/workbook.xml.rels").ok()?,
    ));
    while let Some(t) = tags.next().ok()? {
        if t.is(b"Relationship") && t.attr("Id").as_deref() == Some(&id) {
            let target = t.attr("Target")?;
            return Some(match target.strip_prefix('/') {
                Some(abs) => abs.to_owned(),
                None => format!("xl/{target}"),
            });
        }
    }
    None
}

/// The odd error cells of sheet `sheet` of the workbook at `path`, or why they cannot be found.
pub(super) fn odd_error_cells(path: &Path, sheet: &str) -> Result<VecDeque<OddError>, String> {
    let f = File::open(path).map_err(|e| e.to_string())?;
    let mut zip = zip::ZipArchive::new(BufReader::new(f)).map_err(|e| e.to_string())?;
    let part = sheet_part(&mut zip, sheet)
        .ok_or_else(|| format!("the part of sheet {sheet:?} was not found"))?;
    let entry = zip.by_name(&part).map_err(|e| format!("{part}: {e}"))?;
    odd_errors(entry).map_err(|e| format!("{part}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_errors_are_found_with_their_places() {
        let xml = r#"<worksheet><sheetData><row r="2"><c r="A2" t="e"><f>X</f><v>#SPILL!</v></c><c r="C2" t="e"><v>#N/A</v></c></row><row><c t="inlineStr"><is><t>a</t></is></c><c s="1"/><c t="e"><v>#CALC!</v></c></row><row/><row r="9"><c r="AB9" t='e'><v>#ERROR!</v></c></row></sheetData></worksheet>"#;
        let got: Vec<(u32, u32, bool, String)> = odd_errors(xml.as_bytes())
            .unwrap()
            .into_iter()
            .map(|e| (e.row, e.col, e.placed, e.text))
            .collect();
        assert_eq!(
            got,
            [
                (1, 0, true, "#SPILL!".to_owned()),
                (2, 2, false, "#CALC!".to_owned()),
                (8, 27, true, "#ERROR!".to_owned()),
            ]
        );
    }

    #[test]
    fn cell_references_are_zero_based() {
        assert_eq!(position("A1"), Some((0, 0)));
        assert_eq!(position("AB12"), Some((11, 27)));
        assert_eq!(position("12"), None);
        assert_eq!(position("A0"), None);
    }
}
