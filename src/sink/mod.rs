//! Where exported contacts go: the file formats of `doto-bulk export` ([`csv`], [`jsonl`],
//! [`xlsx`]), the column layout they share ([`columns`]), the formula guard of spreadsheet cells
//! ([`guard`]), the write-to-a-temporary-then-rename discipline every output follows ([`atomic`]),
//! and the manifest that describes a finished export ([`manifest`]).
pub mod atomic;
pub mod columns;
pub mod csv;
pub mod guard;
pub mod jsonl;
pub mod manifest;
pub mod xlsx;

pub use atomic::AtomicFile;
pub use columns::{Column, ColumnSet, Layout, Timestamps};
pub use manifest::Manifest;
