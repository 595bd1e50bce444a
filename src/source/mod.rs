//! Sources: CSV and XLSX files read into raw [`Record`]s that keep their physical line numbers.
//! Problems with one row are [`RowIssue`]s (reported, never a crash, never a silent shift of
//! columns); problems with the whole file are fatal errors naming the file.
//!
//! (Interface laid down by the foundation; the sources issue fills it in.)
use std::path::Path;

use crate::model::{Outcome, RowError};

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
    /// The fields as read, for the failure report.
    pub raw: Vec<String>,
    /// `Skipped` for rows with nothing in them (blank or delimiter-only), `Invalid` otherwise.
    pub outcome: Outcome,
    pub error: RowError,
}

/// Where and how to read (from the mapping's `source:` section; detection fills the gaps).
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    /// Encoding label (`utf-8`, `utf-16`, `windows-1252`); `None` detects it.
    pub encoding: Option<String>,
    /// Delimiter byte; `None` detects it among `,` `;` TAB `|`.
    pub delimiter: Option<u8>,
    /// XLSX sheet by name or 1-based index; `None` is the first sheet.
    pub sheet: Option<String>,
    /// 1-based row of the header; rows above it are skipped. `None` is 1.
    pub header_row: Option<u64>,
}

/// A stream of rows from one file.
pub trait Source: Iterator<Item = Result<Record, RowIssue>> + Send {
    /// The header names, in column order.
    fn headers(&self) -> &[String];
}

/// Open a CSV or XLSX file (by extension, then by content).
pub fn open(path: &Path, _opts: &SourceOptions) -> anyhow::Result<Box<dyn Source>> {
    anyhow::bail!("{}: reading files is not built yet", path.display())
}
