//! The mapping file: a YAML spec (`version`, `source`, `defaults`, `match`, `fields`,
//! `custom_attributes`, `additional_attributes`, `notes`) loaded strictly, resolved against the
//! file's headers once, then applied to every record.
//!
//! (Interface laid down by the foundation; the mapping issue fills it in.)
use std::path::Path;

use crate::model::{ContactDraft, RowError};
use crate::source::{Record, SourceOptions};

/// A mapping file as loaded (not yet checked against any headers).
#[derive(Debug, Clone)]
pub struct Mapping {}

/// The dedupe keys a mapping matches on, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchKey {
    /// Case-insensitive.
    Email,
    /// Case-sensitive.
    Identifier,
}

impl Mapping {
    /// Read and parse a mapping file. Unknown keys, bad values: an error naming the file and line.
    pub fn load(path: &Path) -> anyhow::Result<Mapping> {
        anyhow::bail!("{}: mapping files are not supported yet", path.display())
    }

    /// How to open the source file.
    pub fn source_options(&self) -> SourceOptions {
        SourceOptions::default()
    }

    /// The match keys, in order (`match.on`).
    pub fn match_keys(&self) -> &[MatchKey] {
        &[]
    }

    /// Check every column the mapping names against the headers; a missing one fails naming the
    /// file, the mapping line and the closest real headers.
    pub fn resolve(&self, headers: &[String]) -> anyhow::Result<Resolved> {
        let _ = headers;
        anyhow::bail!("not built yet")
    }
}

/// A mapping bound to one file's columns: applies to records with no further lookups by name.
#[derive(Debug, Clone)]
pub struct Resolved {}

impl Resolved {
    /// Map and normalise one record. All the row's problems are returned, not only the first.
    pub fn apply(&self, record: &Record) -> Result<ContactDraft, Vec<RowError>> {
        let _ = record;
        Err(Vec::new())
    }
}
