//! Sources: CSV and XLSX files read into raw [`Record`]s that keep their physical line numbers.
//! Problems with one row are [`RowIssue`]s (reported, never a crash, never a silent shift of
//! columns); problems with the whole file are fatal errors naming the file.
//!
//! Every physical data row after the header ends as exactly one item of the stream: a `Record`, or
//! a `RowIssue` (`blank_row` and `report_footer` are `Skipped`; `ragged_row`, `encoding` and
//! `cell_error` are `Invalid`). So the counts of a run add up to the rows of the file.
//!
//! Header clean-up, the same for both formats: names are trimmed; a byte-order mark left on the
//! first name (a stray U+FEFF, or the UTF-8 BOM decoded as Windows-1252, `ï»¿`) is **removed with
//! a warning** rather than refused, because the data rows are intact and refusing would only make
//! the user strip three invisible bytes by hand; blank and duplicate names are kept and listed in
//! [`Source::warnings`] (see [`duplicate_headers`] to make them fatal where a mapping would be
//! ambiguous). A CSV row may omit the unnamed columns at the end of the header, or add empty
//! fields past it (a trailing delimiter): neither shifts a value, so neither is a ragged row.
use std::collections::VecDeque;
use std::io::Read;
use std::path::Path;

use anyhow::Context;

use crate::model::{ErrorCode, Outcome, RowError};

mod csv;
pub mod detect;
mod encoding;
mod quote;
mod xlsx;

pub use self::csv::CsvSource;
pub use self::detect::{column_name, column_names};
use self::xlsx::XlsxSource;

/// One data row, as read: fields in header order, decoded to text.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Physical line (CSV) or sheet row (XLSX), 1-based, where the record starts.
    pub line: u64,
    pub fields: Vec<String>,
    /// Per field: the cell was a spreadsheet number (XLSX). Empty for CSV (all text).
    pub numeric: Vec<bool>,
}

impl Record {
    /// The cell at `col` was a number in the spreadsheet (it may have lost a leading zero or `+`).
    pub fn is_numeric(&self, col: usize) -> bool {
        self.numeric.get(col).copied().unwrap_or(false)
    }
}

/// A row that cannot become a record: blank, ragged, a footer, an error cell…
#[derive(Debug, Clone, PartialEq)]
pub struct RowIssue {
    pub line: u64,
    /// The fields as read, for the failure report (empty for a blank line).
    pub raw: Vec<String>,
    /// `Skipped` for rows that are not data (blank, delimiters only, a trailing report footer),
    /// `Invalid` otherwise.
    pub outcome: Outcome,
    pub error: RowError,
}

/// A read that failed part-way through the file: every row before `at` was handed out, nothing
/// at or after it was. The run must stop on it: the file is not shorter, it is unreadable there.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{file}: reading failed at {unit} {at}: {cause} (the rows before {unit} {at} were read, none after)"
)]
pub struct ReadError {
    /// The file (and the sheet, for a workbook), as the other messages name it.
    pub file: String,
    /// `line` (CSV: a physical line) or `row` (XLSX: a sheet row).
    pub unit: &'static str,
    /// 1-based line or row where reading failed.
    pub at: u64,
    /// What failed (the I/O or XML error).
    pub cause: String,
}

impl ReadError {
    /// Where and why, without the file (for messages that name it already).
    pub fn where_and_why(&self) -> String {
        format!(
            "reading failed at {} {}: {}",
            self.unit, self.at, self.cause
        )
    }
}

/// Where and how to read (from the mapping's `source:` section; detection fills the gaps).
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// Encoding label (`utf-8`, `utf-16`, `windows-1252`); `None` detects it. A BOM in the file
    /// wins over a label that disagrees (with a warning).
    pub encoding: Option<String>,
    /// Delimiter byte; `None` detects it among `,` `;` TAB `|`.
    pub delimiter: Option<u8>,
    /// XLSX sheet by name or 1-based index; `None` is the first sheet.
    pub sheet: Option<String>,
    /// 1-based row of the header (a physical line for CSV, a sheet row for XLSX); rows above it
    /// (report titles) are skipped and not counted. `None` is the first line (CSV) or the first
    /// sheet row with a value in it (XLSX), unless `header_columns` finds it.
    pub header_row: Option<u64>,
    /// The columns the header must hold (a mapping's required columns; `email#2` names the
    /// second `email`). When `header_row` (or, for a workbook, `sheet`) is not set, the header is
    /// the first row among the first [`detect::SEARCH_ROWS`] with a value that holds them all,
    /// on the first sheet that has one; rows above it are skipped with a warning. Empty: no
    /// search.
    pub header_columns: Vec<String>,
    /// A CSV field or XLSX cell longer than this (bytes of UTF-8 text) makes its row invalid
    /// (`field_too_large`); only its first bytes are kept in memory.
    pub max_field_bytes: usize,
    /// An XLSX part read whole into memory (the shared strings, the styles…) whose uncompressed
    /// size is over this stops the run before it is read; the sheet, which is streamed, may be
    /// [`SHEET_PART_FACTOR`] times as large.
    pub max_part_bytes: u64,
    /// `source.unguard`: CSV cells lose the formula guard doto-bulk's export put before them
    /// (`sink::guard`); a workbook's cells are never guarded, so nothing is removed there.
    pub unguard: bool,
}

/// Default [`SourceOptions::max_field_bytes`]: 1 MiB.
pub const DEFAULT_MAX_FIELD_BYTES: usize = 1 << 20;
/// Default [`SourceOptions::max_part_bytes`]: 256 MiB.
pub const DEFAULT_MAX_PART_BYTES: u64 = 256 << 20;
/// How many times [`SourceOptions::max_part_bytes`] a worksheet part may be (2 GiB by default).
pub const SHEET_PART_FACTOR: u64 = 8;

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            encoding: None,
            delimiter: None,
            sheet: None,
            header_row: None,
            header_columns: Vec::new(),
            max_field_bytes: DEFAULT_MAX_FIELD_BYTES,
            max_part_bytes: DEFAULT_MAX_PART_BYTES,
            unguard: false,
        }
    }
}

/// A stream of rows from one file.
pub trait Source: Iterator<Item = Result<Record, RowIssue>> + Send {
    /// The header names, in column order.
    fn headers(&self) -> &[String];

    /// Problems with the file as a whole that did not stop the read: header names fixed, blank or
    /// duplicated; an encoding label overridden by a BOM. Each names the file.
    fn warnings(&self) -> &[String] {
        &[]
    }

    /// After the iterator returned `None`: the fatal error (an I/O error, a corrupt workbook) that
    /// ended the read before the end of the file, if any. The caller must check it, or a truncated
    /// read would look like a complete one.
    fn take_error(&mut self) -> Option<ReadError> {
        None
    }

    /// How the file is being read, for the run summary: `CSV, UTF-8 (BOM), delimiter ';' (detected)`.
    fn describe(&self) -> String {
        String::new()
    }

    /// Whether the file is a workbook (typed cells, never formula-guarded text).
    fn is_workbook(&self) -> bool {
        false
    }

    /// Before the first row: the 0-based columns the mapping reads. A value over
    /// [`SourceOptions::max_field_bytes`] in any other column is cut to its start rather than
    /// failing its row (nothing reads it); by default every column counts.
    fn read_columns(&mut self, _columns: &[usize]) {}

    /// Lines of notes or a title above the header were found and skipped without being asked
    /// (LinkedIn's `Connections.csv`); not a `sep=` line, not `header_row`.
    fn skipped_preamble(&self) -> bool {
        false
    }
}

/// Open a CSV or workbook file: by extension (`.csv`, `.tsv`, `.txt`; `.xlsx`, `.xlsm`; `.ods`,
/// `.xls`, `.xlsb`, a sheet read whole by calamine), otherwise by content (a ZIP archive is a
/// workbook, anything else is tried as CSV text).
pub fn open(path: &Path, opts: &SourceOptions) -> anyhow::Result<Box<dyn Source>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "csv" | "tsv" | "txt" => Ok(Box::new(CsvSource::open(path, opts)?)),
        "xlsx" | "xlsm" => Ok(Box::new(XlsxSource::open(path, opts)?)),
        "ods" => Ok(Box::new(XlsxSource::open_other(path, "ODS", opts)?)),
        "xls" => Ok(Box::new(XlsxSource::open_other(path, "XLS", opts)?)),
        "xlsb" => Ok(Box::new(XlsxSource::open_other(path, "XLSB", opts)?)),
        "numbers" => anyhow::bail!(
            "{}: .{ext} files are not supported; save the sheet as .xlsx or .csv",
            path.display()
        ),
        _ => {
            let mut magic = [0u8; 4];
            let n = std::fs::File::open(path)
                .and_then(|mut f| read_up_to(&mut f, &mut magic))
                .with_context(|| format!("{}: cannot open", path.display()))?;
            if magic[..n] == *b"PK\x03\x04" {
                Ok(Box::new(XlsxSource::open(path, opts)?))
            } else {
                Ok(Box::new(CsvSource::open(path, opts)?))
            }
        }
    }
}

/// Header names that occur more than once: each name with its 0-based columns. Blank names are
/// not included (they are reported separately and no mapping can name them).
pub fn duplicate_headers(headers: &[String]) -> Vec<(String, Vec<usize>)> {
    // One pass with a map from name to its columns: linear in the number of columns (a header
    // of 100,000 columns was quadratic here).
    let mut cols: std::collections::HashMap<&str, Vec<usize>> = Default::default();
    let mut order = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        if h.is_empty() {
            continue;
        }
        let seen = cols.entry(h).or_default();
        if seen.is_empty() {
            order.push(h.as_str());
        }
        seen.push(i);
    }
    order
        .into_iter()
        .filter_map(|h| {
            let c = cols.remove(h)?;
            (c.len() > 1).then(|| (h.to_owned(), c))
        })
        .collect()
}

/// Read until `buf` is full or the end of the input; returns the bytes read.
pub(crate) fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Clean the header row in place and say what was fixed or looks wrong. `col_name` renders a
/// 0-based column for messages (`3` for CSV, `C` for a sheet).
pub(crate) fn clean_headers(
    file: &str,
    headers: &mut [String],
    col_name: impl Fn(usize) -> String,
    warnings: &mut Vec<String>,
) {
    for h in headers.iter_mut() {
        let t = h.trim();
        if t.len() != h.len() {
            *h = t.to_owned();
        }
    }
    if let Some(first) = headers.first_mut() {
        let orig = first.clone();
        let mut name = orig.as_str();
        let mut what = None;
        loop {
            if let Some(rest) = name.strip_prefix('\u{FEFF}') {
                name = rest;
                what.get_or_insert("a stray byte-order mark (U+FEFF)");
            } else if let Some(rest) = name.strip_prefix("ï»¿") {
                name = rest;
                what = Some(
                    "a damaged byte-order mark (the UTF-8 BOM decoded as Windows-1252: the file was re-encoded once too often, so values may hold mojibake too)",
                );
            } else if let Some(rest) = name.strip_prefix("ÿþ").or_else(|| name.strip_prefix("þÿ"))
            {
                name = rest;
                what = Some("a damaged byte-order mark (a UTF-16 BOM decoded as Windows-1252)");
            } else {
                break;
            }
        }
        if let Some(what) = what {
            let fixed = name.trim().to_owned();
            warnings.push(format!(
                "{file}: the first header {orig:?} starts with {what}; read as {fixed:?}"
            ));
            *first = fixed;
        }
    }
    for (i, h) in headers.iter_mut().enumerate() {
        if let Some((clean, what)) = detect::clean_name(h) {
            warnings.push(format!(
                "{file}: the header of column {} {h:?} holds invisible characters or odd spaces ({what}); read as {clean:?}",
                col_name(i)
            ));
            *h = clean;
        }
    }
    for (i, h) in headers.iter().enumerate() {
        if h.is_empty() {
            warnings.push(format!(
                "{file}: column {} has a blank header name; a mapping cannot name it",
                col_name(i)
            ));
        }
    }
    for (name, cols) in duplicate_headers(headers) {
        let cols: Vec<String> = cols.into_iter().map(&col_name).collect();
        warnings.push(format!(
            "{file}: header {name:?} appears {} times (columns {}); a mapping reads the first as {name:?}, the second as \"{name}#2\", and so on",
            cols.len(),
            cols.join(", ")
        ));
    }
}

pub(crate) type Item = Result<Record, RowIssue>;

pub(crate) fn blank_issue(line: u64, raw: Vec<String>, what: &str) -> Item {
    Err(RowIssue {
        line,
        raw,
        outcome: Outcome::Skipped,
        error: RowError::new(ErrorCode::BlankRow, None, what),
    })
}

/// Text that reads like the footer a reporting tool appends (`Total: 1,234`, `Generated by …`,
/// `Report generated on …`, `Page 1 of 3`), as opposed to a contact value.
pub(crate) fn looks_like_footer(text: &str) -> bool {
    let t = text.trim().to_lowercase();
    if t.contains('@') && !t.contains(' ') {
        return false; // an email address such as total@example.com
    }
    const WORDS: &[&str] = &[
        "total",
        "totals",
        "grand total",
        "subtotal",
        "sum",
        "count",
        "rows",
        "records",
        "generated",
        "report",
        "exported",
        "export",
        "printed",
        "created",
        "downloaded",
        "page",
        "end of",
        "copyright",
        "©",
        "(c)",
        "confidential",
        "source:",
        "filter",
        "filtered",
    ];
    WORDS.iter().any(|w| {
        t.strip_prefix(w)
            .is_some_and(|rest| rest.chars().next().is_none_or(|c| !c.is_alphanumeric()))
    })
}

/// An entry of the output queue: one item, or a run of blank lines kept as a range so that a
/// million empty lines cost no memory.
pub(crate) enum Pending {
    Item(Item),
    /// Lines `from..to` (1-based, `to` exclusive), each a `blank_row` issue.
    Blanks {
        from: u64,
        to: u64,
        what: &'static str,
    },
}

/// Items ready to be handed out, in file order.
#[derive(Default)]
pub(crate) struct Queue(pub VecDeque<Pending>);

impl Queue {
    pub fn push(&mut self, p: Pending) {
        match p {
            Pending::Blanks { from, to, .. } if from >= to => {}
            p => self.0.push_back(p),
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn pop(&mut self) -> Option<Item> {
        match self.0.front_mut()? {
            Pending::Blanks { from, to, what } => {
                let (line, what) = (*from, *what);
                *from += 1;
                if *from >= *to {
                    self.0.pop_front();
                }
                Some(blank_issue(line, Vec::new(), what))
            }
            Pending::Item(_) => match self.0.pop_front() {
                Some(Pending::Item(item)) => Some(item),
                _ => unreachable!("the front entry was an item"),
            },
        }
    }
}

/// Holds trailing rows that may be a report footer until the file shows whether they are really
/// at its end: a normal row after them releases them as ordinary rows; the end of the file makes
/// them `report_footer` issues. At most [`Trailer::MAX`] candidate rows are held (blank runs are
/// ranges), so memory stays flat.
#[derive(Default)]
pub(crate) struct Trailer {
    held: VecDeque<(Pending, Option<RowIssue>)>,
    candidates: usize,
}

impl Trailer {
    const MAX: usize = 8;

    /// A blank row or run of rows: it neither starts nor ends a footer block.
    pub fn blank(&mut self, p: Pending, out: &mut Queue) {
        if self.held.is_empty() {
            out.push(p);
        } else {
            self.held.push_back((p, None));
        }
    }

    /// A row that is a footer if nothing but footers and blanks follow it; `p` is what it is
    /// otherwise.
    pub fn candidate(&mut self, p: Pending, footer: RowIssue, out: &mut Queue) {
        self.held.push_back((p, Some(footer)));
        self.candidates += 1;
        if self.candidates > Self::MAX {
            self.release(out);
        }
    }

    pub fn normal(&mut self, p: Pending, out: &mut Queue) {
        self.release(out);
        out.push(p);
    }

    /// Hand the held rows on as ordinary rows (a normal row followed them, or the read failed).
    pub fn release(&mut self, out: &mut Queue) {
        for (p, _) in self.held.drain(..) {
            out.push(p);
        }
        self.candidates = 0;
    }

    /// The end of the file: the held rows were the footer.
    pub fn finish(&mut self, out: &mut Queue) {
        for (p, footer) in self.held.drain(..) {
            out.push(footer.map_or(p, |f| Pending::Item(Err(f))));
        }
        self.candidates = 0;
    }
}

/// The `field_too_large` issue of a row whose value `what` (`column "Notes"`, `cell C3 (column
/// "Notes")`) holds `bytes` bytes, over `limit`; the field in `raw` holds only its start.
pub(crate) fn too_large_issue(
    line: u64,
    raw: Vec<String>,
    name: &str,
    what: String,
    bytes: u64,
    limit: usize,
) -> RowIssue {
    RowIssue {
        line,
        raw,
        outcome: Outcome::Invalid,
        error: RowError::new(
            ErrorCode::FieldTooLarge,
            Some(name),
            format!(
                "{what}: the value is {bytes} bytes, over the limit of {limit} bytes for one field (max_field_bytes); only its start is kept"
            ),
        ),
    }
}

/// The `report_footer` issue for a row whose only text is `text`.
pub(crate) fn footer_issue(line: u64, raw: Vec<String>, text: &str) -> RowIssue {
    RowIssue {
        line,
        raw,
        outcome: Outcome::Skipped,
        error: RowError::new(
            ErrorCode::ReportFooter,
            None,
            format!("{text:?} looks like a report footer, not a contact"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_text_is_recognised_but_emails_and_names_are_not() {
        for t in [
            "Total: 1,234",
            "Generated by HubSpot",
            "Report generated on 2024-03-05",
            "Page 1 of 3",
            "TOTAL",
        ] {
            assert!(looks_like_footer(t), "{t}");
        }
        for t in ["total@example.com", "Totalenergies", "Reporter Jane", "Ann"] {
            assert!(!looks_like_footer(t), "{t}");
        }
    }

    #[test]
    fn duplicate_headers_lists_every_column_of_each_name() {
        let h: Vec<String> = ["Email", "Name", "Email", "", "", "Name", "Email"]
            .map(String::from)
            .into();
        assert_eq!(
            duplicate_headers(&h),
            vec![
                ("Email".to_owned(), vec![0, 2, 6]),
                ("Name".to_owned(), vec![1, 5])
            ]
        );
    }
}
