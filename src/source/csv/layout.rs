//! Where the header is and what splits the fields, decided from the decoded start of the file:
//! Excel's `sep=;` first line, the header search by the mapping's columns, a preamble of notes or
//! title lines above the header (LinkedIn's `Connections.csv`, report titles), and the delimiter
//! sniffed from the structure of the rows.
use anyhow::bail;

use super::{DELIMITERS, RawReader, SAMPLE, SAMPLE_RECORDS};
use crate::source::SourceOptions;
use crate::source::detect::{SEARCH_ROWS, holds_all, shown_columns};
use crate::source::encoding::{self, Detected};

/// The decoded start of the file, as the stream will read it.
pub(super) struct Sample {
    text: Vec<u8>,
    /// The sample stops before the end of the file (its last record may be cut).
    cut: bool,
    newline: u8,
}

impl Sample {
    pub(super) fn new(prefix: &[u8], truncated: bool, det: &Detected, newline: u8) -> Sample {
        let end = (det.bom_len + SAMPLE).min(prefix.len());
        let cut = truncated || end < prefix.len();
        Sample {
            text: encoding::decode_sample(det, &prefix[..end], cut),
            cut,
            newline,
        }
    }

    fn reader(&self, delimiter: u8) -> RawReader<&[u8]> {
        let mut r = RawReader::new(&self.text[..], delimiter);
        r.newline = self.newline;
        r
    }
}

/// How the file is laid out.
pub(super) struct Layout {
    /// 1-based physical line of the header.
    pub header_line: u64,
    pub delimiter: u8,
    /// How the delimiter was chosen, for the run summary.
    pub how: &'static str,
    /// Lines of notes or a title above the header were skipped (see [`below_preamble`]).
    pub preamble: bool,
}

/// Decide the header line and the delimiter: `header_row` and `delimiter` when set, else a
/// `sep=` first line, the line holding the mapping's columns, a header below a preamble, and
/// the sniffed delimiter. Warnings about lines skipped name the file.
pub(super) fn decide(
    file: &str,
    sample: &Sample,
    opts: &SourceOptions,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Layout> {
    let sep = sep_line(&sample.text);
    if let (Some(s), Some(d)) = (sep, opts.delimiter)
        && s != d
    {
        warnings.push(format!(
            "{file}: the first line says the delimiter is {} (sep=), the mapping sets {}; read with {}",
            super::show_delimiter(s),
            super::show_delimiter(d),
            super::show_delimiter(d)
        ));
    }
    let first = 1 + u64::from(sep.is_some());
    let found = find_header(file, sample, opts, first);
    let header_line = found
        .as_ref()
        .map_or(opts.header_row.unwrap_or(first), |f| f.0);
    if header_line == 0 {
        bail!("{file}: header_row is 1-based; 0 is not a row");
    }
    let set = match opts.delimiter {
        Some(d @ (b'"' | b'\n' | b'\r')) => {
            bail!("{file}: the delimiter cannot be {:?}", d as char)
        }
        Some(d) => Some((d, "set")),
        None => sep.map(|s| (s, "sep= line")),
    };
    if found.is_none() && opts.header_row.is_none() {
        let candidates = set.map_or(DELIMITERS.to_vec(), |(d, _)| vec![d]);
        if let Some(p) = below_preamble(sample, &candidates, first) {
            warnings.push(format!(
                "{file}: the header is on line {}: the {} line(s) of text above it have fewer columns than the rows below (notes or a title, not data) and were skipped",
                p.line, p.skipped
            ));
            let (delimiter, how) = set.unwrap_or((p.delimiter, "detected"));
            return Ok(Layout {
                header_line: p.line,
                delimiter,
                how,
                preamble: true,
            });
        }
    }
    let (delimiter, how) = match (set, &found) {
        (Some(s), _) => s,
        (None, found) => {
            let sniffed = match sniff(sample, header_line) {
                Some((_, _, d)) => (d, "detected"),
                None => (b',', "default: one column"),
            };
            // A delimiter that splits the found header into the mapping's columns wins.
            match found {
                Some(f) if !f.1.contains(&sniffed.0) => (f.1[0], "detected"),
                _ => sniffed,
            }
        }
    };
    warnings.extend(found.and_then(|f| f.2));
    Ok(Layout {
        header_line,
        delimiter,
        how,
        preamble: false,
    })
}

/// Excel's `sep=;` first line (also `sep=,`, `sep=|`, `sep=` and a TAB or a written `\t`,
/// quoted or not): the delimiter it names.
pub(super) fn sep_line(text: &[u8]) -> Option<u8> {
    let end = text
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .unwrap_or(text.len());
    let line = text[..end]
        .strip_prefix("\u{FEFF}".as_bytes())
        .unwrap_or(&text[..end]);
    let line = line
        .strip_prefix(b"\"")
        .and_then(|l| l.strip_suffix(b"\""))
        .unwrap_or(line);
    if line.len() < 5 || !line[..4].eq_ignore_ascii_case(b"sep=") {
        return None;
    }
    let d = match &line[4..] {
        [d] => *d,
        b"\\t" => b'\t',
        _ => return None,
    };
    (d.is_ascii() && !matches!(d, b'"' | b'\n' | b'\r' | b'\0') && !d.is_ascii_alphanumeric())
        .then_some(d)
}

/// A record of the sample, as the layout rules see it.
struct Rec {
    line: u64,
    width: usize,
    /// Fields with text.
    filled: usize,
    /// Every field has text and none reads as a value (an email, a number).
    names: bool,
}

/// A field that reads as a contact's value rather than a column name: an email, or digits.
fn reads_as_value(f: &[u8]) -> bool {
    let f = f.trim_ascii();
    f.contains(&b'@')
        || (f.iter().any(u8::is_ascii_digit)
            && f.iter()
                .all(|b| b.is_ascii_digit() || b" +-().,/:".contains(b)))
}

/// The records of `sample` split by `delimiter` from line `from` on, blank ones left out, at
/// most `max`; a last record cut by the end of the sample is dropped.
fn records(sample: &Sample, delimiter: u8, from: u64, max: usize) -> Vec<Rec> {
    let mut r = sample.reader(delimiter);
    let mut out = Vec::new();
    while out.len() < max && r.read().unwrap_or(false) {
        if r.start_line >= from && !r.is_blank() {
            let texts = (0..r.len()).map(|i| r.field(i).trim_ascii());
            let filled = texts.clone().filter(|f| !f.is_empty()).count();
            out.push(Rec {
                line: r.start_line,
                width: r.len(),
                filled,
                names: filled == r.len() && !texts.clone().any(reads_as_value),
            });
        }
    }
    if sample.cut && r.done && out.len() > 1 {
        out.pop(); // probably cut by the end of the sample
    }
    out
}

/// How well `delimiter` splits the rows from `header_line` on: the share of rows as wide as the
/// header, and the header's width; `None` when it does not split the header.
fn structure(sample: &Sample, delimiter: u8, header_line: u64) -> Option<(f64, usize)> {
    let widths = records(sample, delimiter, header_line, SAMPLE_RECORDS + 1);
    let head = widths.first()?.width;
    if head < 2 {
        return None;
    }
    let fit = widths.iter().filter(|w| w.width == head).count() as f64 / widths.len() as f64;
    Some((fit, head))
}

/// Pick the delimiter from the structure of a sample: parse it with each candidate, with real CSV
/// quoting, and keep the one whose header has more than one field and whose rows most often have
/// as many fields as the header (ties: the wider header, then the order of [`DELIMITERS`]).
/// `None` when no candidate splits the header: a one-column file.
fn sniff(sample: &Sample, header_line: u64) -> Option<(f64, usize, u8)> {
    let mut best: Option<(f64, usize, u8)> = None;
    for d in DELIMITERS {
        let Some((fit, head)) = structure(sample, d, header_line) else {
            continue;
        };
        if best.is_none_or(|(f, h, _)| fit > f || (fit == f && head > h)) {
            best = Some((fit, head, d));
        }
    }
    best
}

/// [`sniff`] on raw text (unit tests).
#[cfg(test)]
pub(super) fn sniff_delimiter(text: &[u8], cut: bool, header_line: u64) -> Option<u8> {
    let sample = Sample {
        text: text.to_vec(),
        cut,
        newline: b'\n',
    };
    sniff(&sample, header_line).map(|b| b.2)
}

/// A header found below a preamble.
#[derive(Debug, PartialEq)]
struct Preamble {
    line: u64,
    skipped: usize,
    delimiter: u8,
}

/// Rows above the header that are not data: notes or a title (LinkedIn's `Notes:` and its
/// quoted paragraph; `Contacts report, March 2026`). Found only when the file does not read well
/// from line `first` with any candidate (the first line does not split, or the rows are not as
/// wide as it) and, with one of them, at least three rows in four below some line are as wide
/// as it (the most common width, two or more) while every line above it is narrower and at most
/// half filled.
fn below_preamble(sample: &Sample, candidates: &[u8], first: u64) -> Option<Preamble> {
    let plain = candidates
        .iter()
        .filter_map(|&d| structure(sample, d, first))
        .any(|(fit, _)| fit >= 0.75);
    if plain {
        return None;
    }
    let mut best: Option<(f64, usize, Preamble)> = None;
    for &d in candidates {
        let recs = records(sample, d, first, 64);
        let Some(width) = modal_width(&recs) else {
            continue;
        };
        let Some(h) = recs.iter().position(|r| r.width == width) else {
            continue;
        };
        // A header names its columns; the lines above it are narrower and mostly empty.
        let above_ok = recs[..h]
            .iter()
            .all(|r| r.width < width && r.filled * 2 <= width);
        let named = recs[h].names;
        let below = &recs[h..];
        let fit = below.iter().filter(|r| r.width == width).count() as f64 / below.len() as f64;
        if h == 0 || !above_ok || !named || below.len() < 2 || fit < 0.75 {
            continue;
        }
        let p = Preamble {
            line: recs[h].line,
            skipped: h,
            delimiter: d,
        };
        if best
            .as_ref()
            .is_none_or(|(f, w, _)| fit > *f || (fit == *f && width > *w))
        {
            best = Some((fit, width, p));
        }
    }
    best.map(|b| b.2)
}

/// The most common number of fields (ties: the wider), when it is two or more.
fn modal_width(recs: &[Rec]) -> Option<usize> {
    let mut counts = std::collections::BTreeMap::new();
    for r in recs {
        *counts.entry(r.width).or_insert(0usize) += 1;
    }
    let (&w, _) = counts.iter().max_by_key(|&(w, n)| (*n, *w))?;
    (w >= 2).then_some(w)
}

/// The first record among the first [`SEARCH_ROWS`] with text from line `first` on that holds
/// every column of `want` when split by `delimiter`: its line, and the records with text above
/// it.
fn header_holding(
    sample: &Sample,
    delimiter: u8,
    want: &[String],
    first: u64,
) -> Option<(u64, usize)> {
    let mut r = sample.reader(delimiter);
    let mut seen = 0;
    while seen < SEARCH_ROWS && r.read().unwrap_or(false) {
        if r.is_blank() || r.start_line < first {
            continue;
        }
        let row: Vec<String> = (0..r.len())
            .map(|i| String::from_utf8_lossy(r.field(i)).into_owned())
            .collect();
        if holds_all(&row, want) {
            return Some((r.start_line, seen));
        }
        seen += 1;
    }
    None
}

/// The header searched for by [`SourceOptions::header_columns`] when `header_row` is not set:
/// its line, the delimiters that split it into those columns (in the order of preference), and
/// the warning about the lines skipped above it. `None`: no search, or no line holds them.
fn find_header(
    file: &str,
    sample: &Sample,
    opts: &SourceOptions,
    first: u64,
) -> Option<(u64, Vec<u8>, Option<String>)> {
    if opts.header_row.is_some() || opts.header_columns.is_empty() {
        return None;
    }
    let candidates = opts.delimiter.map_or(DELIMITERS.to_vec(), |d| vec![d]);
    let found: Vec<(u64, usize, u8)> = candidates
        .into_iter()
        .filter_map(|d| {
            header_holding(sample, d, &opts.header_columns, first).map(|(line, n)| (line, n, d))
        })
        .collect();
    let &(line, skipped, _) = found.iter().min_by_key(|&&(line, _, _)| line)?;
    let fits: Vec<u8> = found.iter().filter(|f| f.0 == line).map(|f| f.2).collect();
    let note = (skipped > 0).then(|| {
        format!(
            "{file}: the header is on line {line}, the first line holding the mapping's columns ({}); the {skipped} line(s) of text above it are not data and were skipped",
            shown_columns(&opts.header_columns)
        )
    });
    Some((line, fits, note))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str) -> Sample {
        Sample {
            text: text.as_bytes().to_vec(),
            cut: false,
            newline: b'\n',
        }
    }

    #[test]
    fn sep_lines_name_their_delimiter() {
        assert_eq!(sep_line(b"sep=;\nName;Email\n"), Some(b';'));
        assert_eq!(sep_line(b"SEP=,\r\nName,Email\r\n"), Some(b','));
        assert_eq!(sep_line(b"sep=\t\nName\tEmail\n"), Some(b'\t'));
        assert_eq!(sep_line(b"sep=\\t\nName\tEmail\n"), Some(b'\t'));
        assert_eq!(sep_line("\u{FEFF}\"sep=|\"\n".as_bytes()), Some(b'|'));
        for no in [
            "sep=\nName\n",
            "sep=ab\n",
            "sep=x\n",
            "separator,x\n",
            "Name;Email\n",
        ] {
            assert_eq!(sep_line(no.as_bytes()), None, "{no}");
        }
    }

    #[test]
    fn a_preamble_of_notes_is_skipped_but_a_short_header_is_not() {
        let linkedin = "Notes:\n\"When exporting, you may notice, that some, addresses are missing.\"\n\nFirst Name,Last Name,URL,Email Address,Company,Position,Connected On\nAnn,Lee,u,a@x.com,Acme,CEO,1 Dec\nBob,Ray,u,,Acme,CTO,2 Dec\n";
        let p = below_preamble(&sample(linkedin), &DELIMITERS, 1);
        assert_eq!(
            p,
            Some(Preamble {
                line: 4,
                skipped: 2,
                delimiter: b','
            })
        );
        let title = "Contacts report, March 2026\nName;Email;Phone;City\nAnn;a@x.com;1;P\nBob;b@x.com;2;Q\n";
        let p = below_preamble(&sample(title), &DELIMITERS, 1).unwrap();
        assert_eq!((p.line, p.delimiter), (2, b';'));
        // A header that leaves out the unnamed columns of a trailing delimiter is the header.
        let short = "Name,Email,Phone\nAnn,a@x.com,1,,\nBob,b@x.com,2,,\n";
        assert_eq!(below_preamble(&sample(short), &DELIMITERS, 1), None);
        let short = "Name,Email\nAnn,a@x.com,,,,\nBob,b@x.com,,,,\n";
        assert_eq!(below_preamble(&sample(short), &DELIMITERS, 1), None);
        // Nor is a first data row taken for the header below a one-column one.
        let one = "Email\nann@x.com,1\nbob@x.com,2\n";
        assert_eq!(below_preamble(&sample(one), &DELIMITERS, 1), None);
        let one = "Name\nAnn,+44 7911 123456\nBob,07911 123457\n";
        assert_eq!(below_preamble(&sample(one), &DELIMITERS, 1), None);
        // A plain file has no preamble.
        let plain = "Name,Email\nAnn,a@x.com\nBob,b@x.com\n";
        assert_eq!(below_preamble(&sample(plain), &DELIMITERS, 1), None);
    }
}
