//! `FILE.manifest.json`: what one export wrote and how (rows, columns, account, base URL, sort,
//! start and end, the sha256 of the file, whether pages drifted and whether that was repaired).
//! It never holds the token. The next export to the same path reads it back to keep the columns
//! where they were.
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::writer::{Settings, Written};
use crate::api::{Client, ListSummary};

/// Pages moving while the export ran (the pager's account of it).
pub use crate::api::Drift;

/// The manifest beside an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always 1.
    pub version: u32,
    /// The export's file name (not its directory: the pair may be moved together).
    pub file: String,
    /// `csv`, `jsonl` or `xlsx`.
    pub format: String,
    /// Data rows written (contacts, header excluded).
    pub rows: u64,
    /// Header of a CSV/XLSX export, in order; empty for JSONL.
    pub columns: Vec<String>,
    /// Columns that were not in the previous layout.
    #[serde(default)]
    pub columns_added: Vec<String>,
    pub account_id: u64,
    pub base_url: String,
    /// The listing's sort (`created_at`, `-name`, …).
    pub sort: String,
    /// `iso` or `epoch` (text or numbers); `timestamp` for Parquet's typed TIMESTAMP columns.
    pub timestamps: String,
    pub include_contact_inboxes: bool,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: String,
    /// Hex sha256 of the file's bytes.
    pub sha256: String,
    /// The server's total at the start and on the last page fetched.
    pub server_total_start: u64,
    pub server_total_end: u64,
    pub listing: Listing,
    pub drift: Drift,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversations: Option<RelatedTable>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<RelatedTable>,
    /// The snapshot sidecar the next `--changes-since` compares with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<super::changes::Snapshot>,
    /// With `--changes-since`: the change set written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<super::changes::Changes>,
}

impl Manifest {
    /// The manifest of the export to `target` that wrote `written` from the listing `listed`
    /// (sorted by `sort`) through `client`, finished now. The requests made (`listing.attempts`,
    /// `listing.rate_limited`) and the per-contact tables are the caller's to fill in.
    pub fn of_export(
        settings: &Settings,
        target: &Path,
        sort: &str,
        written: &Written,
        listed: &ListSummary,
        client: &Client,
        started_at: String,
    ) -> Manifest {
        let cfg = client.config();
        Manifest {
            version: 1,
            file: file_name(target),
            format: settings.format.as_str().into(),
            rows: written.rows,
            columns: written.columns.clone(),
            columns_added: written.columns_added.clone(),
            account_id: cfg.account_id,
            base_url: cfg.base_url.clone(),
            sort: sort.into(),
            timestamps: match settings.format {
                super::Format::Parquet => TYPED_TIMESTAMPS.into(),
                _ => settings.timestamps.as_str().into(),
            },
            include_contact_inboxes: settings.include_contact_inboxes,
            started_at,
            finished_at: now_rfc3339(),
            sha256: written.sha256.clone(),
            server_total_start: listed.total_start.unwrap_or(0),
            server_total_end: listed.total.unwrap_or(0),
            listing: Listing {
                pages_fetched: listed.pages,
                duplicates: listed.duplicates,
                attempts: 0,
                rate_limited: 0,
            },
            drift: listed.drift.clone(),
            conversations: None,
            notes: None,
            snapshot: None,
            changes: None,
        }
    }
}

/// The manifest's `timestamps` of a Parquet export: its typed columns, whatever `--timestamps`.
pub const TYPED_TIMESTAMPS: &str = "timestamp";

/// The paging work.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    /// List requests made (pages fetched).
    pub pages_fetched: u64,
    /// Rows that repeated an id already exported (pages overlapping), dropped.
    pub duplicates: u64,
    /// All HTTP attempts, retries included, and the 429s received.
    pub attempts: u64,
    pub rate_limited: u64,
}

/// A per-contact table (`--conversations`, `--notes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelatedTable {
    pub file: String,
    /// `jsonl`, `csv`, `xlsx` or `parquet` (absent from older manifests: JSONL).
    #[serde(default = "jsonl")]
    pub format: String,
    /// Conversations or notes written (one a row).
    pub rows: u64,
    /// Contacts that were gone (404) by the time their rows were asked for.
    pub contacts_gone: u64,
    pub sha256: String,
}

fn jsonl() -> String {
    "jsonl".into()
}

/// Now, as the manifest writes times (RFC 3339, UTC, milliseconds).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The last part of `path`, as the manifest names files (`""` when there is none).
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `out.csv` → `out.csv.manifest.json`.
pub fn manifest_path(target: &Path) -> PathBuf {
    let mut s = target.as_os_str().to_owned();
    s.push(".manifest.json");
    PathBuf::from(s)
}

/// The previous export's manifest at `path`, if there is one. A manifest that exists but
/// cannot be read is an error (silently changing the column layout of a cron export is worse).
pub fn read_previous(path: &Path) -> anyhow::Result<Option<Manifest>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
    };
    let m = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a manifest of doto-bulk export (delete it to start a fresh column layout)",
            path.display()
        )
    })?;
    Ok(Some(m))
}

/// Write the manifest to `path`, atomically.
pub fn write(path: PathBuf, m: &Manifest) -> anyhow::Result<PathBuf> {
    let mut text = serde_json::to_string_pretty(m).expect("serializable");
    text.push('\n');
    super::atomic::write_atomic(&path, text.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_path_appends_to_the_full_name() {
        assert_eq!(
            manifest_path(Path::new("/x/out.csv")),
            PathBuf::from("/x/out.csv.manifest.json")
        );
    }

    #[test]
    fn a_damaged_manifest_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.csv");
        std::fs::write(manifest_path(&target), "{nope").unwrap();
        let e = read_previous(&manifest_path(&target)).unwrap_err();
        assert!(format!("{e:#}").contains("a.csv.manifest.json"), "{e:#}");
        assert!(
            read_previous(&dir.path().join("b.csv.manifest.json"))
                .unwrap()
                .is_none()
        );
    }
}
