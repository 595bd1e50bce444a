//! Where exported contacts go: one writer interface ([`writer`]: contacts in, in listing order, a
//! finished temporary file out) over the three formats of `doto-bulk export` ([`csv`], [`jsonl`],
//! [`xlsx`], [`parquet`]; CSV, XLSX and Parquet spool the contacts first, because their columns are only known after the
//! last one), the column layout they share ([`columns`]), the formula guard of spreadsheet cells
//! ([`guard`]), the write-to-a-temporary-then-rename discipline every output follows ([`atomic`]),
//! the per-contact tables of `--notes` and `--conversations` ([`related`], [`notes`],
//! [`conversations`], written by [`table`]) and the manifest that describes a finished export
//! ([`manifest`]).
use std::path::Path;
use std::str::FromStr;

pub mod atomic;
pub mod columns;
pub mod conversations;
pub mod csv;
pub mod guard;
pub mod jsonl;
pub mod manifest;
pub mod notes;
pub mod parquet;
pub mod related;
pub mod roundtrip;
pub mod table;
pub mod writer;
pub mod xlsx;

use columns::Timestamps;

/// An export file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
    Xlsx,
    Parquet,
}

impl Format {
    /// The formats by name, as `--format` takes them.
    pub const NAMES: [&'static str; 4] = ["csv", "jsonl", "xlsx", "parquet"];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Xlsx => "xlsx",
            Format::Parquet => "parquet",
        }
    }

    /// The format an extension names (`.csv`, `.jsonl`/`.ndjson`, `.xlsx`), any case.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "ndjson" => Some(Format::Jsonl),
            other => other.parse().ok(),
        }
    }

    /// How timestamps are written unless told: as the API sends them in JSONL, readable in a
    /// spreadsheet.
    pub fn default_timestamps(self) -> Timestamps {
        match self {
            Format::Jsonl => Timestamps::Epoch,
            _ => Timestamps::Iso,
        }
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "csv" => Ok(Format::Csv),
            "jsonl" => Ok(Format::Jsonl),
            "xlsx" => Ok(Format::Xlsx),
            "parquet" => Ok(Format::Parquet),
            _ => Err(format!(
                "{s:?} is not an export format (one of {})",
                Format::NAMES.join(", ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_names_the_format_in_any_case() {
        assert_eq!(Format::from_path(Path::new("a.CSV")), Some(Format::Csv));
        assert_eq!(
            Format::from_path(Path::new("a.ndjson")),
            Some(Format::Jsonl)
        );
        assert_eq!(Format::from_path(Path::new("a.xlsx")), Some(Format::Xlsx));
        assert_eq!(
            Format::from_path(Path::new("a.Parquet")),
            Some(Format::Parquet)
        );
        assert_eq!(Format::from_path(Path::new("a.txt")), None);
        assert_eq!(Format::from_path(Path::new("csv")), None);
        for name in Format::NAMES {
            assert_eq!(name.parse::<Format>().unwrap().as_str(), name);
        }
    }
}
