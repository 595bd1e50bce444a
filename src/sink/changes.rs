//! Change sets: `export -o FILE --changes-since PREVIOUS_MANIFEST` also writes
//! `FILE.changes.<ext>`, one row per contact added, changed or removed since the export that
//! wrote PREVIOUS_MANIFEST.
//!
//! Every export with a manifest writes a snapshot sidecar beside it ([`snapshot`]: every contact,
//! sorted by id, with a hash of its compared fields; the manifest's `snapshot` entry names it with
//! its sha256), because the typical cron job overwrites FILE and the previous file is gone. With
//! `--changes-since`, the previous sidecar is opened (and checked) before any request, and once
//! the listing is done the two sidecars are merge-joined ([`diff`]) into the changes file
//! (`out`). What is compared: the full contact (every core column, every custom and additional
//! attribute, whatever `--select`/`--exclude` keep), blank and missing alike; `thumbnail` and
//! `contact_inboxes` are not. `last_activity_at` is compared: it moves without a field change, so
//! a contact whose only change is activity is `changed` with `changed_fields` `last_activity_at`,
//! and a reader filters it out if it wants.
//!
//! The sidecar, the changes file and the export are committed together: anything failing before
//! leaves every previous file as it was. The previous sidecar is held open from the start, so a
//! PREVIOUS_MANIFEST that is the one of the FILE being overwritten is read as it was.
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Format;
use super::atomic::{AtomicFile, Dest, parent_dir};
use super::columns::{ColumnSet, parse_columns};
use super::manifest::{self, Manifest, file_name};
use super::parquet::split_selection;
use super::writer::{ContactWriter, Settings, Written};
use crate::api::{ClientConfig, Contact};

pub mod diff;
mod out;
pub mod snapshot;

use diff::{Counts, Diff};
use snapshot::{SnapshotReader, SnapshotWriter};

/// The manifest's `snapshot` entry: the sidecar the next `--changes-since` compares with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// File name, in the manifest's directory.
    pub file: String,
    pub contacts: u64,
    pub sha256: String,
}

/// The manifest's `changes` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    /// The previous export's `started_at`.
    pub since: String,
    /// The previous manifest, as given.
    pub base_manifest: String,
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
    /// File name of the changes file, beside the export.
    pub file: String,
    pub sha256: String,
}

impl Changes {
    /// `+120 added, 37 changed, 4 removed since 2026-12-01T02:00:00.000Z`
    pub fn summary(&self) -> String {
        format!(
            "+{} added, {} changed, {} removed since {}",
            self.added, self.changed, self.removed, self.since
        )
    }
}

/// `X.manifest.json` → `X.snapshot.sz` (any other manifest name gets `.snapshot.sz` appended).
pub fn snapshot_path(manifest: &Path) -> PathBuf {
    let s = manifest.as_os_str().to_string_lossy();
    let stem = s.strip_suffix(".manifest.json").unwrap_or(&s);
    PathBuf::from(format!("{stem}.snapshot.sz"))
}

/// `dir/out.csv` → `dir/out.changes.csv` (the format's extension when the file has none).
pub fn changes_path(target: &Path, format: super::Format) -> PathBuf {
    let stem = target.file_stem().unwrap_or_default().to_string_lossy();
    let ext = target
        .extension()
        .map_or(format.as_str().into(), |e| e.to_string_lossy());
    target.with_file_name(format!("{stem}.changes.{ext}"))
}

/// `--changes-since` needs a regular file to write the changes file beside.
pub fn check_flag(changes_since: Option<&Path>, dest: &Dest) -> anyhow::Result<()> {
    if changes_since.is_some() && dest.file().is_none() {
        bail!(
            "--changes-since writes FILE.changes.<ext> beside the export: -o must name a regular \
             file, not {}",
            dest.shown()
        );
    }
    Ok(())
}

/// The previous export a change set is computed from: its manifest and its sidecar, open.
pub struct Base {
    manifest: Manifest,
    shown: String,
    sidecar: File,
}

fn no_base(path: &Path, why: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "--changes-since {}: {why}; run one export without --changes-since first (it writes the \
         snapshot the next export compares with), then pass its manifest",
        path.display()
    )
}

impl Base {
    /// Open and check PREVIOUS_MANIFEST for an export through `cfg`: it must exist, be of the same
    /// account and base URL, and name a sidecar whose sha256 matches.
    pub fn open(path: &Path, cfg: &ClientConfig) -> anyhow::Result<Base> {
        let m = match manifest::read_previous(path)? {
            Some(m) => m,
            None => return Err(no_base(path, "no such manifest")),
        };
        let Some(snap) = &m.snapshot else {
            let why = "that export has no snapshot sidecar (it predates change sets)";
            return Err(no_base(path, why));
        };
        let url = |u: &str| u.trim_end_matches('/').to_owned();
        if m.account_id != cfg.account_id || url(&m.base_url) != url(&cfg.base_url) {
            bail!(
                "--changes-since {}: that export is of account {} at {}, this one of account {} \
                 at {}; compare exports of the same account",
                path.display(),
                m.account_id,
                m.base_url,
                cfg.account_id,
                cfg.base_url
            );
        }
        let file = parent_dir(path).join(&snap.file);
        let mut sidecar = File::open(&file).map_err(|e| {
            no_base(
                path,
                &format!("its snapshot {} cannot be read ({e})", file.display()),
            )
        })?;
        let sha = sha256_of(&mut sidecar).with_context(|| format!("{}", file.display()))?;
        if sha != snap.sha256 {
            bail!(
                "--changes-since {}: the snapshot {} does not match its manifest (sha256 {sha}, \
                 the manifest says {}): it was changed or damaged; run one export without \
                 --changes-since to start afresh",
                path.display(),
                file.display(),
                snap.sha256
            );
        }
        Ok(Base {
            manifest: m,
            shown: path.display().to_string(),
            sidecar,
        })
    }
}

/// The sha256 (hex) of what `f` holds, read from the start; left at the start.
fn sha256_of(f: &mut File) -> anyhow::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    f.seek(SeekFrom::Start(0))?;
    loop {
        let n = f.read(&mut buf).context("cannot read")?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    f.seek(SeekFrom::Start(0))?;
    Ok(hex::encode(h.finalize()))
}

/// An export's change tracking: the sidecar being built (when the export has a manifest) and
/// the previous export to compare with (with `--changes-since`).
pub struct Tracker {
    base: Option<Base>,
    snap: Option<(SnapshotWriter, PathBuf)>,
    /// With a base: what the exported contacts' attributes hold, which types the columns of a
    /// Parquet changes file as the export's own.
    set: Option<ColumnSet>,
}

impl Tracker {
    /// Start before any request: `manifest` is where this export's manifest goes (none: no
    /// sidecar); `changes_since` the previous manifest, opened and checked now.
    pub fn start(
        manifest: Option<&Path>,
        changes_since: Option<&Path>,
        cfg: &ClientConfig,
    ) -> anyhow::Result<Tracker> {
        let base = changes_since.map(|p| Base::open(p, cfg)).transpose()?;
        let snap = manifest.map(|m| (SnapshotWriter::new(&parent_dir(m)), snapshot_path(m)));
        if base.is_some() && snap.is_none() {
            bail!("--changes-since needs this export's manifest (a regular file, or --manifest)");
        }
        let set = base.as_ref().map(|_| ColumnSet::default());
        Ok(Tracker { base, snap, set })
    }

    /// Keep each contact's `contact_inboxes` in the sidecar (the export keeps them), so that a
    /// contact removed by the next export carries them into its changes file.
    pub fn with_contact_inboxes(mut self, keep: bool) -> Tracker {
        self.snap = self.snap.map(|(w, p)| (w.with_contact_inboxes(keep), p));
        self
    }

    /// `out`, every contact also going into the sidecar.
    pub fn tee<'a>(&'a mut self, out: &'a mut dyn ContactWriter) -> Tee<'a> {
        Tee {
            out,
            snap: self.snap.as_mut().map(|s| &mut s.0),
            set: self.set.as_mut(),
        }
    }

    /// Once the export file is written (not yet committed): write the sidecar and the changes
    /// file (`target`'s, in `settings.format`), both temporary.
    pub fn prepare(
        self,
        target: &Path,
        settings: &Settings,
        written: &Written,
    ) -> anyhow::Result<Pending> {
        let Some((writer, path)) = self.snap else {
            return Ok(Pending::default());
        };
        let mut file = AtomicFile::create(&path)?;
        let contacts = writer
            .finish(file.file())
            .with_context(|| format!("{}: cannot write the snapshot", path.display()))?;
        let entry = Snapshot {
            file: file_name(&path),
            contacts,
            sha256: file.sha256()?,
        };
        let changes = match (self.base, self.set) {
            (Some(base), Some(set)) => {
                let export = Export {
                    target,
                    settings,
                    written,
                    set,
                };
                Some(write_changes(base, &mut file, export)?)
            }
            _ => None,
        };
        Ok(Pending {
            snapshot: Some((file, entry)),
            changes,
        })
    }
}

/// The export a change set is written beside.
struct Export<'a> {
    target: &'a Path,
    settings: &'a Settings,
    written: &'a Written,
    /// What its contacts' attributes hold.
    set: ColumnSet,
}

/// The merge-join of the sidecars `old` and `new`, both read from their start.
fn diff_of(
    old: &mut File,
    new: &mut File,
    (old_name, new_name): (&str, &str),
) -> anyhow::Result<Diff<File, File>> {
    old.seek(SeekFrom::Start(0))?;
    new.seek(SeekFrom::Start(0))?;
    let old = SnapshotReader::new(old.try_clone()?, old_name);
    let new = SnapshotReader::new(new.try_clone()?, new_name);
    Ok(Diff::new(old, new))
}

/// The changes from `base` to the new sidecar `new` into `FILE.changes.<ext>`, temporary. A
/// Parquet changes file types its columns from the export's contacts and the removed ones, which
/// a first pass over the change set observes.
fn write_changes(
    mut base: Base,
    new: &mut AtomicFile,
    mut export: Export,
) -> anyhow::Result<(AtomicFile, Changes)> {
    let shown = new.target().display().to_string();
    let mut reader = new
        .file()
        .try_clone()
        .context("cannot reopen the new snapshot")?;
    let names = (base.shown.as_str(), shown.as_str());
    let format = export.settings.format;
    if format == Format::Parquet {
        for ch in diff_of(&mut base.sidecar, &mut reader, names)? {
            let ch = ch?;
            if ch.kind == diff::Kind::Removed {
                export.set.observe(&ch.contact);
            }
        }
    }
    let mut diff = diff_of(&mut base.sidecar, &mut reader, names)?;
    let path = changes_path(export.target, format);
    let mut file = AtomicFile::create(&path)?;
    let columns = parse_columns(&export.written.columns, "the export's columns")?;
    let (raw, _) = split_selection(&export.settings.selection);
    let spec = out::Spec {
        format,
        ts: export.settings.timestamps,
        export: &columns,
        raw: &raw,
        set: &export.set,
        contact_inboxes: export.settings.include_contact_inboxes,
    };
    out::write(&mut file, spec, diff.by_ref())?;
    let Counts {
        added,
        changed,
        removed,
    } = diff.counts();
    let entry = Changes {
        since: base.manifest.started_at.clone(),
        base_manifest: base.shown.clone(),
        added,
        changed,
        removed,
        file: file_name(&path),
        sha256: file.sha256()?,
    };
    Ok((file, entry))
}

/// The sidecar and the changes file, written, waiting for the export's commit.
#[derive(Default)]
pub struct Pending {
    snapshot: Option<(AtomicFile, Snapshot)>,
    changes: Option<(AtomicFile, Changes)>,
}

impl Pending {
    /// Rename both into place (after the export file); the manifest's entries.
    pub fn commit(self) -> anyhow::Result<(Option<Snapshot>, Option<Changes>)> {
        let changes = match self.changes {
            Some((f, c)) => f.commit().map(|()| Some(c))?,
            None => None,
        };
        let snapshot = match self.snapshot {
            Some((f, s)) => f.commit().map(|()| Some(s))?,
            None => None,
        };
        Ok((snapshot, changes))
    }
}

/// An export writer that also feeds the sidecar.
pub struct Tee<'a> {
    out: &'a mut dyn ContactWriter,
    snap: Option<&'a mut SnapshotWriter>,
    set: Option<&'a mut ColumnSet>,
}

impl ContactWriter for Tee<'_> {
    fn write(&mut self, c: Contact) -> anyhow::Result<()> {
        if let Some(s) = self.snap.as_mut() {
            s.add(&c)?;
        }
        if let Some(set) = self.set.as_mut() {
            set.observe(&c);
        }
        self.out.write(c)
    }

    fn finish(self: Box<Self>) -> anyhow::Result<(AtomicFile, Written)> {
        bail!("a tee is not finished itself: finish the export writer and the tracker")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::Format;

    #[test]
    fn the_sidecar_and_the_changes_file_are_named_after_the_export() {
        assert_eq!(
            snapshot_path(Path::new("/x/out.csv.manifest.json")),
            PathBuf::from("/x/out.csv.snapshot.sz")
        );
        assert_eq!(
            snapshot_path(Path::new("/x/m.json")),
            PathBuf::from("/x/m.json.snapshot.sz")
        );
        assert_eq!(
            changes_path(Path::new("/x/out.csv"), Format::Csv),
            PathBuf::from("/x/out.changes.csv")
        );
        assert_eq!(
            changes_path(Path::new("out"), Format::Jsonl),
            PathBuf::from("out.changes.jsonl")
        );
        let c = Changes {
            since: "2026-12-01T02:00:00.000Z".into(),
            base_manifest: "out.csv.manifest.json".into(),
            added: 120,
            changed: 37,
            removed: 4,
            file: "out.changes.csv".into(),
            sha256: String::new(),
        };
        assert_eq!(
            c.summary(),
            "+120 added, 37 changed, 4 removed since 2026-12-01T02:00:00.000Z"
        );
    }
}
