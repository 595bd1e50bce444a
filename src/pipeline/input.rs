//! Opening an input: the mapping loaded, the file opened with the mapping's source options and the
//! mapping resolved against its headers, before the first row. `validate`, `import` and
//! `mapping init` (which has no mapping yet: [`open_source`]) all start here.
use std::path::Path;

use anyhow::{Context, Result};

use crate::mapping::{Mapping, MatchKey, Resolved};
use crate::normalise::Region;
use crate::source::{self, Source, SourceOptions};

/// A data file opened with its mapping, resolved before the first row.
pub struct Input {
    pub mapping: Mapping,
    pub source: Box<dyn Source>,
    pub headers: Vec<String>,
    pub resolved: Resolved,
}

impl Input {
    /// Load the mapping, open the file with its source options and resolve the mapping against
    /// the headers; every failure names the file or the mapping.
    pub fn open(file: &Path, mapping_path: &Path) -> Result<Input> {
        Input::open_with(file, mapping_path, None, None)
    }

    /// [`Input::open`], with `phone_region` (`--phone-region`) overriding the mapping's
    /// `defaults.phone_region` when given.
    pub fn open_with_region(
        file: &Path,
        mapping_path: &Path,
        phone_region: Option<Region>,
    ) -> Result<Input> {
        Input::open_with(file, mapping_path, phone_region, None)
    }

    /// [`Input::open_with_region`], and a field size limit other than the default
    /// (`--max-field-bytes`) when given.
    pub fn open_with(
        file: &Path,
        mapping_path: &Path,
        phone_region: Option<Region>,
        max_field_bytes: Option<usize>,
    ) -> Result<Input> {
        let mut mapping = Mapping::load_with_region(mapping_path, phone_region)?;
        if let Some(r) = phone_region {
            mapping.set_default_region(r);
        }
        let mut opts = mapping.source_options();
        opts.max_field_bytes = max_field_bytes.unwrap_or(opts.max_field_bytes);
        let mut source = open_source(file, &opts)?;
        let headers = source.headers().to_vec();
        let mut resolved = mapping.resolve(&headers).with_context(|| {
            format!(
                "mapping {} does not fit {}",
                mapping_path.display(),
                file.display()
            )
        })?;
        source.read_columns(resolved.used_columns());
        if opts.unguard && !source.is_workbook() {
            resolved.unguard_cells();
        }
        Ok(Input {
            mapping,
            source,
            headers,
            resolved,
        })
    }

    /// The source's warnings about the file as a whole (repaired BOM, blank or duplicate
    /// headers, title rows or sheets skipped to find the header) and the mapping's notices about
    /// it (absent optional columns), printed on stderr (even with `-q`: they speak of the data)
    /// and handed back for `summary.json`.
    pub fn header_warnings(&self) -> Vec<String> {
        let mut warnings = self.source.warnings().to_vec();
        warnings.extend_from_slice(self.resolved.notices());
        for w in &warnings {
            eprintln!("warning: {w}");
        }
        warnings
    }

    /// The keys rows are matched on, in the mapping's order (the mapping always names one).
    pub fn match_keys(&self) -> &[MatchKey] {
        self.mapping.match_keys()
    }
}

/// Open `file` as a CSV or XLSX source; the error names the file.
pub fn open_source(file: &Path, opts: &SourceOptions) -> Result<Box<dyn Source>> {
    source::open(file, opts).with_context(|| format!("cannot read {}", file.display()))
}
