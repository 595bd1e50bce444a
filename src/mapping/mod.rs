//! The mapping file: a YAML spec (`version`, `source`, `defaults`, `match`, `fields`,
//! `custom_attributes`, `additional_attributes`, `notes`) loaded strictly (`spec` → checked in
//! `load`), resolved against the file's headers once (`resolve`: names become indices, a missing
//! column fails naming the mapping line and the closest headers), then applied to every record
//! (`apply`: the hot path). The user-facing grammar is `docs/mapping.md`; its examples are tests.
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use crate::model::{Field, RowError};
use crate::normalise::Region;
use crate::source::{Record, SourceOptions};

mod apply;
mod draft;
pub mod guess;
mod load;
mod resolve;
mod ruby_hash;
mod spec;
mod suggest;
mod types;
mod value;

pub use draft::ContactDraft;
use value::{Compiled, ValueDef};

/// A mapping file as loaded (not yet checked against any headers).
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The file the mapping came from, as given (for messages).
    origin: String,
    source: SourceOptions,
    default_region: Option<Region>,
    match_keys: Vec<MatchKey>,
    existing: ExistingPolicy,
    missing: MissingPolicy,
    blank: BlankPolicy,
    identity: IdentityPolicy,
    name_required: bool,
    fields: FieldDefs,
    custom_attributes: Vec<(String, ValueDef)>,
    additional_attributes: Vec<(String, ValueDef)>,
    /// `from_prefix` of `custom_attributes` and `additional_attributes`, in that order.
    attribute_prefixes: [Option<AttrPrefix>; 2],
    notes: Vec<ValueDef>,
}

/// `from_prefix:` in an attribute section: every column whose header starts with `prefix`
/// becomes the attribute named by the rest of the header (text; an explicit key wins).
#[derive(Debug, Clone)]
struct AttrPrefix {
    prefix: String,
    /// The mapping line, for messages.
    line: u64,
}

/// `fields:` the scalar fields mapped, in the field table's order.
#[derive(Debug, Clone, Default)]
struct FieldDefs(Vec<(Field, ValueDef)>);

impl FieldDefs {
    fn get(&self, f: Field) -> Option<&ValueDef> {
        self.0.iter().find(|(g, _)| *g == f).map(|(_, d)| d)
    }
}

/// The dedupe keys a mapping matches on, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchKey {
    /// Case-insensitive.
    Email,
    /// Case-sensitive.
    Identifier,
    /// As stored (E.164 after normalising).
    Phone,
}

impl MatchKey {
    /// The field the key is read from.
    pub fn field(self) -> Field {
        match self {
            MatchKey::Email => Field::Email,
            MatchKey::Identifier => Field::Identifier,
            MatchKey::Phone => Field::PhoneNumber,
        }
    }
}

/// `match.existing`: what to do with a row whose contact already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExistingPolicy {
    /// Write the row's values onto the contact (the default).
    Update,
    /// Leave the contact alone; the row ends as `skipped`.
    Skip,
    /// The row fails (`policy_rejected`).
    Fail,
}

/// `match.missing`: what to do with a row that matches no contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingPolicy {
    /// Create the contact (the default).
    Create,
    /// Leave it; the row ends as `skipped`. An update-only mapping need not map a name.
    Skip,
}

/// `match.blank`: what a blank cell means for a stored value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlankPolicy {
    /// A blank cell says nothing: the stored value stays (the default).
    Keep,
    /// A blank cell clears the stored value (`ContactDraft::clear`, or a null attribute).
    Clear,
}

/// `match.identifier_change`: a row matched (by email) to a contact whose identifier is set and
/// differs from the row's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierChange {
    /// The row fails (`identifier_conflict`): an identifier is a person (the default).
    Conflict,
    /// The row's identifier replaces the stored one.
    Overwrite,
}

/// `match.on_phone_in_use`: the row's phone is held by another contact (phones are unique).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneInUse {
    /// Import the row without the phone, with a `phone_in_use` warning (the default).
    Drop,
    /// The row fails (`phone_in_use`).
    Fail,
}

/// The `match` policies on identity: identifier changes and phones held by another contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdentityPolicy {
    pub identifier_change: IdentifierChange,
    pub phone_in_use: PhoneInUse,
}

impl Default for IdentityPolicy {
    fn default() -> Self {
        IdentityPolicy {
            identifier_change: IdentifierChange::Conflict,
            phone_in_use: PhoneInUse::Drop,
        }
    }
}

impl Mapping {
    /// Read and parse a mapping file. Unknown keys, bad values: an error naming the file and line.
    pub fn load(path: &Path) -> anyhow::Result<Mapping> {
        Mapping::load_with_region(path, None)
    }

    /// [`Mapping::load`] with `--phone-region` given (it also fills `mapping init`'s undecided
    /// region placeholder, which is refused without it).
    pub fn load_with_region(path: &Path, region: Option<Region>) -> anyhow::Result<Mapping> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the mapping file", path.display()))?;
        load::parse_with(&text, &path.display().to_string(), region)
    }

    /// Parse mapping text; `origin` names it in messages (a path, or `<inline>`).
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Mapping> {
        load::parse(text, origin)
    }

    /// How to open the source file: the mapping's `source:` section, and the columns the header
    /// must hold (those of every value that is not `optional`) for the header search.
    pub fn source_options(&self) -> SourceOptions {
        let mut o = self.source.clone();
        let mut want: Vec<String> = Vec::new();
        for c in self
            .defs()
            .filter(|d| !d.optional)
            .flat_map(|d| d.columns())
        {
            if !want.contains(&c.name) {
                want.push(c.name.clone());
            }
        }
        o.header_columns = want;
        o
    }

    /// Override `defaults.phone_region` (`--phone-region`).
    pub fn set_default_region(&mut self, region: Region) {
        self.default_region = Some(region);
    }

    /// The match keys, in order (`match.on`; by default those of identifier, email that are
    /// mapped).
    pub fn match_keys(&self) -> &[MatchKey] {
        &self.match_keys
    }

    /// `match.existing` (default `update`).
    pub fn existing_policy(&self) -> ExistingPolicy {
        self.existing
    }

    /// `match.missing` (default `create`).
    pub fn missing_policy(&self) -> MissingPolicy {
        self.missing
    }

    /// `match.blank` (default `keep`).
    pub fn blank_policy(&self) -> BlankPolicy {
        self.blank
    }

    /// `match.identifier_change` and `match.on_phone_in_use`.
    pub fn identity_policy(&self) -> IdentityPolicy {
        self.identity
    }

    fn defs(&self) -> impl Iterator<Item = &ValueDef> {
        self.fields
            .0
            .iter()
            .map(|(_, d)| d)
            .chain(self.custom_attributes.iter().map(|(_, d)| d))
            .chain(self.additional_attributes.iter().map(|(_, d)| d))
            .chain(self.notes.iter())
    }

    /// Check every column the mapping names against the headers; a missing one fails naming the
    /// file, the mapping line and the closest real headers.
    pub fn resolve(&self, headers: &[String]) -> anyhow::Result<Resolved> {
        resolve::resolve(self, headers)
    }
}

/// A mapping bound to one file's columns: applies to records with no further lookups by name.
#[derive(Debug, Clone)]
pub struct Resolved {
    headers: Box<[String]>,
    /// Every column read, once (for the damaged-text check).
    used: Box<[usize]>,
    /// The scalar fields mapped, in the order `apply` reads them (`apply::read_order`).
    fields: Box<[(Field, Compiled)]>,
    /// The phone number's `region_from` columns found in the file (the first non-blank one
    /// gives a row's region).
    region_cols: Box<[usize]>,
    custom_attributes: Box<[(String, Compiled)]>,
    additional_attributes: Box<[(String, Compiled)]>,
    notes: Box<[Compiled]>,
    default_region: Option<Region>,
    match_keys: Vec<MatchKey>,
    existing: ExistingPolicy,
    missing: MissingPolicy,
    blank: BlankPolicy,
    name_required: bool,
    /// The file is an earlier run's report (`failures.csv`, `warnings.csv`) or a CSV export read
    /// with `source.unguard`: its cells are read without the formula guard the tool added.
    unguard: bool,
    /// What binding to the headers noticed (optional columns absent, a prefix that matched
    /// nothing), each naming the mapping line.
    notices: Vec<String>,
}

impl Resolved {
    /// Notices about the binding, for the header warnings: absent `optional` columns, a
    /// `from_prefix` no column starts with.
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// Read every cell without the formula guard of doto-bulk's CSV export (`source.unguard`).
    pub fn unguard_cells(&mut self) {
        self.unguard = true;
    }

    /// How scalar field `f` is mapped, if it is.
    fn field(&self, f: Field) -> Option<&Compiled> {
        self.fields.iter().find(|(g, _)| *g == f).map(|(_, c)| c)
    }

    /// Map and normalise one record. All the row's problems are returned, not only the first.
    pub fn apply(&self, record: &Record) -> Result<ContactDraft, Vec<RowError>> {
        apply::apply(self, record, false)
    }

    /// [`Resolved::apply`] on a spreadsheet row whose error cells hold their error text
    /// (`#N/A`, `#REF!`, …): those cells fail the values read from them, like damaged text.
    pub fn apply_with_cell_errors(&self, record: &Record) -> Result<ContactDraft, Vec<RowError>> {
        apply::apply(self, record, true)
    }

    /// The match keys, in order (same as [`Mapping::match_keys`]).
    pub fn match_keys(&self) -> &[MatchKey] {
        &self.match_keys
    }

    pub fn existing_policy(&self) -> ExistingPolicy {
        self.existing
    }

    pub fn missing_policy(&self) -> MissingPolicy {
        self.missing
    }

    pub fn blank_policy(&self) -> BlankPolicy {
        self.blank
    }

    /// The 0-based columns the mapping reads (each once).
    pub fn used_columns(&self) -> &[usize] {
        &self.used
    }

    /// The headers this mapping was resolved against.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }
}
