//! A run directory bound to its run: `run.json` ([`RunRecord`]) says which server, account, file
//! and mapping the run is about (never the token), so that `--resume` refuses to continue it with
//! anything else ([`RunRecord::check_resume`]); `run.lock` ([`RunLock`]) keeps two processes out
//! of one run directory; [`check_done_contacts`] makes sure the contacts a journal says were
//! written exist on the server before a resume counts them again.
//!
//! The lock is an advisory lock (`flock` on unix) on `run.lock`, which holds the pid of its
//! holder. The kernel releases it when the process ends however it ends; a clean end also
//! removes the file, so a `run.lock` found with a pid in it and nobody holding it is the stale
//! lock of a process that was killed: it is taken over and said so.
use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::{ApiError, Client, ClientConfig};
use crate::pipeline::journal::{Entry, Op, read_lines};

/// The name of the binding record in a run directory.
pub const RUN_JSON: &str = "run.json";
/// The name of the lock file in a run directory.
pub const RUN_LOCK: &str = "run.lock";
/// Contacts checked on resume without `--verify`.
pub const SAMPLE: usize = 20;

/// A file a run is about: where it was and what it held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The absolute path when it could be resolved, else the path as given.
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

impl Fingerprint {
    /// Hash the file at `path` (streamed, whatever its size).
    pub fn of(path: &Path) -> Result<Fingerprint> {
        let mut f = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut bytes = 0u64;
        loop {
            let n = f
                .read(&mut buf)
                .with_context(|| format!("{}: cannot read", path.display()))?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
            h.update(&buf[..n]);
        }
        let shown = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(Fingerprint {
            path: shown.display().to_string(),
            sha256: hex::encode(h.finalize()),
            bytes,
        })
    }

    fn short(&self) -> String {
        format!(
            "{} (sha256 {}…, {} bytes)",
            self.path,
            &self.sha256[..12.min(self.sha256.len())],
            self.bytes
        )
    }
}

/// `run.json`: what a run is about. Written when the run starts, read by `--resume`; each
/// `--resume` is appended to `resumes`, and each invocation that ends (not killed) records its
/// end and exit code: the first's at the top, a resume's in its entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub command: String,
    pub tool_version: String,
    pub command_line: Vec<String>,
    pub base_url: String,
    pub account_id: u64,
    /// The imported file (import), or the import's journal (revert).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<Fingerprint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<Fingerprint>,
    /// The import run a revert undoes (absolute when it could be resolved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_run_dir: Option<String>,
    /// `--phone-region` (import): it decides the numbers written, so a resume must use the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_region: Option<String>,
    pub started_at: String,
    /// When the first invocation ended, and its exit code (absent: killed, still running, or
    /// stopped by an error before its summary was written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<u8>,
    /// The `--resume` invocations that continued the run, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumes: Vec<Invocation>,
}

/// One `--resume` of a run (in `run.json`); `finished_at` and `exit_code` as the first
/// invocation's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<u8>,
    pub tool_version: String,
    pub command_line: Vec<String>,
}

impl RunRecord {
    /// The record of a run of `command` against `config`'s account (the token is not kept).
    pub fn new(command: &str, config: &ClientConfig) -> RunRecord {
        RunRecord {
            command: command.to_owned(),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            command_line: std::env::args().collect(),
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            account_id: config.account_id,
            file: None,
            mapping: None,
            import_run_dir: None,
            phone_region: None,
            started_at: crate::report::now(),
            finished_at: None,
            exit_code: None,
            resumes: Vec::new(),
        }
    }

    /// With the import run a revert undoes.
    pub fn reverting(mut self, import_dir: &Path) -> RunRecord {
        let shown = fs::canonicalize(import_dir).unwrap_or_else(|_| import_dir.to_path_buf());
        self.import_run_dir = Some(shown.display().to_string());
        self
    }

    /// With the file and the mapping it reads, hashed.
    pub fn reading(mut self, file: &Path, mapping: Option<&Path>) -> Result<RunRecord> {
        self.file = Some(Fingerprint::of(file)?);
        self.mapping = mapping.map(Fingerprint::of).transpose()?;
        Ok(self)
    }

    /// With the `--phone-region` the run reads numbers with (none: the mapping's).
    pub fn with_phone_region(mut self, region: Option<&str>) -> RunRecord {
        self.phone_region = region.map(str::to_owned);
        self
    }

    /// Write `run.json` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        crate::report::write_json_atomic(dir, RUN_JSON, self)
    }

    /// `self` (checked by [`RunRecord::check_resume`]) continues the run in `dir` (locked): its
    /// `run.json` gets this invocation appended (a directory without one, resumed with
    /// `--force`, gets `self`). Returns the invocation's number (the first run is 1).
    pub fn resume(&self, dir: &Path) -> Result<usize> {
        let Some(mut old) = RunRecord::read(dir)? else {
            self.write(dir)?;
            return Ok(1);
        };
        old.resumes.push(Invocation {
            started_at: self.started_at.clone(),
            finished_at: None,
            exit_code: None,
            tool_version: self.tool_version.clone(),
            command_line: self.command_line.clone(),
        });
        old.write(dir)?;
        Ok(old.resumes.len() + 1)
    }

    /// The invocation running in `dir` (the latest) ended at `finished_at` with `exit_code`.
    pub fn ended(dir: &Path, finished_at: &str, exit_code: u8) -> Result<()> {
        let Some(mut r) = RunRecord::read(dir)? else {
            return Ok(());
        };
        let (at, code) = match r.resumes.last_mut() {
            Some(i) => (&mut i.finished_at, &mut i.exit_code),
            None => (&mut r.finished_at, &mut r.exit_code),
        };
        (*at, *code) = (Some(finished_at.to_owned()), Some(exit_code));
        r.write(dir)
    }

    /// The record of the run in `dir`; `None` when it has none (written by an older version).
    pub fn read(dir: &Path) -> Result<Option<RunRecord>> {
        let path = dir.join(RUN_JSON);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
        };
        serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("{}: not a run record", path.display()))
    }

    /// Whether the run recorded in `dir` may be continued by `self`. The account, the file's
    /// content and the mapping's content must be the same; a renamed file (same content) and a
    /// base URL spelled differently are accepted only with `force`. A directory without
    /// `run.json` (an older version's) is resumed only with `force`. The error names every
    /// difference; nothing in `dir` is touched either way.
    pub fn check_resume(&self, dir: &Path, force: bool) -> Result<()> {
        let Some(old) = RunRecord::read(dir)? else {
            if force {
                return Ok(());
            }
            bail!(
                "{}: refusing to resume: the run directory has no {RUN_JSON} (written by an older \
                 version), so nothing says it belongs to this server, file and mapping; pass \
                 --force to resume it anyway",
                dir.display()
            );
        };
        let (hard, soft) = self.differences(&old);
        if hard.is_empty() && (soft.is_empty() || force) {
            return Ok(());
        }
        let all: Vec<String> = hard
            .iter()
            .chain(&soft)
            .map(|d| format!("\n  - {d}"))
            .collect();
        let hint = if hard.is_empty() {
            "if it is the same server and the same file under another name, pass --force"
        } else {
            "start a new run (without --resume) for a different server, file or mapping"
        };
        let what = if hard.is_empty() {
            "the run's server or file has another name here"
        } else {
            "the run directory belongs to another run"
        };
        bail!(
            "{}: refusing to resume: {what}:{}\nnothing in the run directory was changed; {hint}",
            dir.display(),
            all.concat()
        )
    }

    /// What differs from `old`: (never accepted, accepted with `--force`).
    fn differences(&self, old: &RunRecord) -> (Vec<String>, Vec<String>) {
        let (mut hard, mut soft) = (vec![], vec![]);
        if old.command != self.command {
            hard.push(format!(
                "it is a run of `{}`, not `{}`",
                old.command, self.command
            ));
        }
        if old.account_id != self.account_id {
            hard.push(format!(
                "the account differs: the run wrote to account {}, this is account {}",
                old.account_id, self.account_id
            ));
        }
        if old.base_url != self.base_url {
            soft.push(format!(
                "the server differs: the run wrote to {}, this is {}",
                old.base_url, self.base_url
            ));
        }
        if let (Some(a), Some(b)) = (&old.file, &self.file) {
            if a.sha256 != b.sha256 {
                hard.push(format!(
                    "the file differs: the run read {}, this is {}",
                    a.short(),
                    b.short()
                ));
            } else if a.path != b.path {
                soft.push(format!(
                    "the file was renamed: the run read {}, this is {} (same content)",
                    a.path, b.path
                ));
            }
        }
        if let (Some(a), Some(b)) = (&old.import_run_dir, &self.import_run_dir)
            && a != b
        {
            hard.push(format!(
                "the import run differs: the run reverted {a}, this is {b}"
            ));
        }
        if old.phone_region != self.phone_region {
            let shown = |r: &Option<String>| match r {
                Some(r) => format!("--phone-region {r}"),
                None => "the mapping's default region".to_owned(),
            };
            hard.push(format!(
                "the phone region differs: the run read numbers without a country code with {}, \
                 this is {}",
                shown(&old.phone_region),
                shown(&self.phone_region)
            ));
        }
        if let (Some(a), Some(b)) = (&old.mapping, &self.mapping)
            && a.sha256 != b.sha256
        {
            hard.push(format!(
                "the mapping differs: the run used {}, this is {}",
                a.short(),
                b.short()
            ));
        }
        (hard, soft)
    }
}

/// An advisory lock on a run directory, held until dropped (see the module documentation).
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
    /// The pid of a killed process whose lock was taken over.
    pub took_over: Option<u32>,
}

impl RunLock {
    /// Lock `dir` or say which process holds it. Only `run.lock` is created or written, and only
    /// once the lock is ours.
    pub fn acquire(dir: &Path) -> Result<RunLock> {
        let path = dir.join(RUN_LOCK);
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| format!("{}: cannot open the lock file", path.display()))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => bail!(held_by(dir, holder(&file))),
                Err(std::fs::TryLockError::Error(e)) => {
                    // No advisory locks here (some network filesystems): go by the pid.
                    match holder(&file) {
                        Some(pid) if pid != std::process::id() && is_alive(pid) => {
                            bail!(held_by(dir, Some(pid)))
                        }
                        _ => log_unsupported(&path, &e),
                    }
                }
            }
            // The holder we waited for may have removed the file meanwhile: lock the one there.
            if !same_file(&file, &path) {
                continue;
            }
            return RunLock::claim(file, path);
        }
    }

    /// Lock the run directory of another run this one reads (a revert's import): like
    /// [`RunLock::acquire`], but a directory that cannot be written to needs no lock, since no
    /// run can write into it either.
    pub fn acquire_to_read(dir: &Path) -> Result<Option<RunLock>> {
        let probe = OpenOptions::new()
            .append(true)
            .create(true)
            .open(dir.join(RUN_LOCK));
        match probe {
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                Ok(None)
            }
            _ => RunLock::acquire(dir).map(Some),
        }
    }

    /// Write our pid into the lock we hold; a pid already there is a killed process's.
    fn claim(mut file: File, path: PathBuf) -> Result<RunLock> {
        let took_over = holder(&file).filter(|p| *p != std::process::id());
        let pid = std::process::id().to_string();
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(drop))
            .and_then(|()| file.write_all(pid.as_bytes()))
            .and_then(|()| file.sync_data())
            .with_context(|| format!("{}: cannot write the lock file", path.display()))?;
        Ok(RunLock {
            file,
            path,
            took_over,
        })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Remove before unlocking: a process waiting on this file sees it gone and retries.
        let _ = fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

fn held_by(dir: &Path, pid: Option<u32>) -> String {
    let who = match pid {
        Some(p) => format!("another doto-bulk process (pid {p})"),
        None => "another doto-bulk process".to_owned(),
    };
    format!(
        "{}: {who} is using this run directory; wait for it to end (or stop it) and try again",
        dir.display()
    )
}

fn log_unsupported(path: &Path, e: &std::io::Error) {
    eprintln!(
        "warning: {}: cannot take an advisory lock ({e}); going by the pid in it",
        path.display()
    );
}

/// The pid written in a lock file, if any.
fn holder(mut file: &File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

/// Whether a process `pid` runs (unknown on platforms without `/proc`: assumed alive).
fn is_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

/// The contacts the journal at `journal` says its run created or updated, by id.
pub fn journaled_contacts(journal: &Path) -> Result<Vec<u64>> {
    let ids: BTreeSet<u64> = read_lines::<Entry>(journal)?
        .entries
        .into_iter()
        .filter(|e| matches!(e.op, Op::Create | Op::Update))
        .filter_map(|e| e.contact_id)
        .collect();
    Ok(ids.into_iter().collect())
}

/// `n` of `ids` evenly spread (all of them when there are fewer).
pub fn spread(ids: &[u64], n: usize) -> Vec<u64> {
    if ids.len() <= n {
        return ids.to_vec();
    }
    (0..n).map(|i| ids[i * ids.len() / n]).collect()
}

/// Check that the contacts the journal in `dir` says were written exist on the server: a sample
/// of [`SAMPLE`] of them, or all with `all`. Missing ones stop the resume before anything is
/// written, with a message saying how many and which.
pub async fn check_done_contacts(
    client: &Client,
    dir: &Path,
    all: bool,
    concurrency: usize,
) -> Result<usize> {
    let ids = journaled_contacts(&dir.join("journal.jsonl"))?;
    let checked = if all {
        ids.clone()
    } else {
        spread(&ids, SAMPLE)
    };
    let mut found = futures::stream::iter(checked.iter().copied())
        .map(|id| async move { (id, client.contacts().get(id).await) })
        .buffer_unordered(concurrency.max(1));
    let mut missing = vec![];
    while let Some((id, r)) = found.next().await {
        match r {
            Ok(_) => {}
            Err(ApiError::NotFound { .. }) => missing.push(id),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot check that contact {id} of the journal exists")
                });
            }
        }
    }
    if missing.is_empty() {
        return Ok(checked.len());
    }
    missing.sort_unstable();
    let shown: Vec<String> = missing.iter().take(10).map(u64::to_string).collect();
    bail!(
        "{}: refusing to resume: {} of the {} checked that the journal says this run \
         created or updated {} missing on this server (ids {}{}): the run directory belongs to \
         another server or account, or the contacts were deleted since. Nothing was written; \
         start a new run (without --resume) to import the file again",
        dir.display(),
        missing.len(),
        crate::words::count(checked.len() as u64, "contact"),
        crate::words::agree(missing.len() as u64, "is", "are"),
        shown.join(", "),
        if missing.len() > shown.len() {
            ", …"
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(url: &str, acc: u64) -> RunRecord {
        RunRecord {
            command: "import".into(),
            tool_version: "0".into(),
            command_line: vec![],
            base_url: url.into(),
            account_id: acc,
            file: Some(Fingerprint {
                path: "/a/f.csv".into(),
                sha256: "aa".repeat(32),
                bytes: 3,
            }),
            mapping: None,
            import_run_dir: None,
            phone_region: None,
            started_at: String::new(),
            finished_at: None,
            exit_code: None,
            resumes: vec![],
        }
    }

    #[test]
    fn another_phone_region_is_always_refused() {
        let dir = tempfile::tempdir().unwrap();
        let old = record("http://h", 1).with_phone_region(Some("DE"));
        old.write(dir.path()).unwrap();
        old.check_resume(dir.path(), false).unwrap();
        for other in [Some("FR"), None] {
            let e = record("http://h", 1).with_phone_region(other);
            let e = format!("{:#}", e.check_resume(dir.path(), true).unwrap_err());
            assert!(
                e.contains("the phone region differs") && e.contains("--phone-region DE"),
                "{e}"
            );
        }
        // A record written before the field existed reads as "the mapping's region".
        let text = fs::read_to_string(dir.path().join(RUN_JSON)).unwrap();
        let older = text.replace("\"phone_region\": \"DE\",", "");
        assert_ne!(older, text);
        fs::write(dir.path().join(RUN_JSON), older).unwrap();
        record("http://h", 1)
            .check_resume(dir.path(), false)
            .unwrap();
    }

    #[test]
    fn a_renamed_file_needs_force_a_changed_one_is_always_refused() {
        let dir = tempfile::tempdir().unwrap();
        let old = record("http://h", 1);
        old.write(dir.path()).unwrap();
        old.check_resume(dir.path(), false).unwrap();
        let mut renamed = old.clone();
        renamed.file.as_mut().unwrap().path = "/b/g.csv".into();
        let e = renamed.check_resume(dir.path(), false).unwrap_err();
        assert!(format!("{e:#}").contains("renamed"), "{e:#}");
        renamed.check_resume(dir.path(), true).unwrap();
        let mut changed = renamed.clone();
        changed.file.as_mut().unwrap().sha256 = "bb".repeat(32);
        let e = format!("{:#}", changed.check_resume(dir.path(), true).unwrap_err());
        assert!(
            e.contains("the file differs") && e.contains("/b/g.csv"),
            "{e}"
        );
        let other = record("http://h", 2);
        let e = format!("{:#}", other.check_resume(dir.path(), true).unwrap_err());
        assert!(e.contains("account 1, this is account 2"), "{e}");
    }

    #[test]
    fn a_directory_without_run_json_is_resumed_only_with_force() {
        let dir = tempfile::tempdir().unwrap();
        let r = record("http://h", 1);
        assert!(r.check_resume(dir.path(), false).is_err());
        r.check_resume(dir.path(), true).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_held_lock_names_its_pid_and_a_released_one_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(dir.path()).unwrap();
        assert_eq!(lock.took_over, None);
        let e = RunLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(lock);
        assert!(!dir.path().join(RUN_LOCK).exists());
        let again = RunLock::acquire(dir.path()).unwrap();
        assert_eq!(again.took_over, None);
    }

    #[test]
    fn a_stale_lock_file_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(RUN_LOCK), "4194999").unwrap();
        let lock = RunLock::acquire(dir.path()).unwrap();
        assert_eq!(lock.took_over, Some(4194999));
        let pid = fs::read_to_string(dir.path().join(RUN_LOCK)).unwrap();
        assert_eq!(pid, std::process::id().to_string());
    }

    #[test]
    fn spread_takes_evenly_spaced_ids() {
        let ids: Vec<u64> = (0..100).collect();
        assert_eq!(spread(&ids, 4), [0, 25, 50, 75]);
        assert_eq!(spread(&ids[..3], 4), [0, 1, 2]);
    }
}
