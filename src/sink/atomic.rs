//! Atomic output: every file an export writes goes to a temporary file beside its target (same
//! directory, so the final rename cannot cross filesystems), is flushed and synced, and only then
//! renamed over the target; the directory is synced after the rename. An export that fails or is
//! interrupted drops its [`AtomicFile`], which removes the temporary file: the previous file at the
//! target is never touched, and a half-written file never appears under the target's name.
//!
//! A target that is not a regular file is never renamed over ([`Dest::resolve`]): a character
//! device or a FIFO (`/dev/stdout`, a named pipe) and standard output (`-o -`) get the finished
//! bytes written straight into them at the commit; a directory or any other kind is refused; a
//! symlink to a regular file has the file it points to replaced, the link staying a link.
//!
//! A temporary file is locked (advisory lock) for as long as its export runs, so that the next
//! export of the same target can tell the leftovers of a killed export (nobody holds their lock)
//! from the file of an export still running, and remove them ([`remove_leftovers`]).
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

/// A temporary file that becomes `target` on [`AtomicFile::commit`] (or is copied into it, for a
/// stream).
pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    target: PathBuf,
    /// Written into at the commit rather than renamed over.
    stream: Option<Dest>,
}

/// Where an export's bytes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// A regular file, or nothing yet: a temporary file beside it is renamed over it.
    File(PathBuf),
    /// Standard output (`-o -`).
    Stdout,
    /// A character device or a FIFO (`/dev/stdout`, `/dev/null`, a named pipe), written into.
    Stream(PathBuf),
}

impl Dest {
    /// What `path` is: `-` is standard output; a symlink is followed (the link is never
    /// replaced); a character device or a FIFO is a stream; a directory or any other kind that
    /// is not a regular file is refused.
    pub fn resolve(path: &Path) -> anyhow::Result<Dest> {
        if path.as_os_str() == "-" {
            return Ok(Dest::Stdout);
        }
        let link = match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Dest::File(path.to_path_buf()));
            }
            r => r.with_context(|| format!("{}: cannot look at it", path.display()))?,
        };
        let real = if link.file_type().is_symlink() {
            std::fs::canonicalize(path).with_context(|| {
                format!(
                    "{}: a symlink to nothing that can be written",
                    path.display()
                )
            })?
        } else {
            path.to_path_buf()
        };
        let meta = std::fs::metadata(&real)
            .with_context(|| format!("{}: cannot look at it", real.display()))?;
        let t = meta.file_type();
        if t.is_file() {
            return Ok(Dest::File(real));
        }
        if is_stream(&t) {
            return Ok(Dest::Stream(path.to_path_buf()));
        }
        let what = if t.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        anyhow::bail!(
            "{}: {what}; export writes a regular file (replaced whole), a character device or a \
             pipe (written into), or `-` (standard output)",
            path.display()
        )
    }

    /// The regular file, when it is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Dest::File(p) => Some(p),
            _ => None,
        }
    }

    /// As messages name it.
    pub fn shown(&self) -> String {
        match self {
            Dest::File(p) | Dest::Stream(p) => p.display().to_string(),
            Dest::Stdout => "standard output".into(),
        }
    }
}

#[cfg(unix)]
fn is_stream(t: &std::fs::FileType) -> bool {
    use std::os::unix::fs::FileTypeExt;
    t.is_char_device() || t.is_fifo()
}

#[cfg(not(unix))]
fn is_stream(_: &std::fs::FileType) -> bool {
    false
}

/// The directory a target lives in (`.` for a bare file name).
pub fn parent_dir(target: &Path) -> PathBuf {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

impl AtomicFile {
    /// A temporary file for `dest`: beside a regular file (see [`AtomicFile::create`]), in the
    /// system's temporary directory for a stream.
    pub fn for_dest(dest: &Dest) -> anyhow::Result<AtomicFile> {
        if let Dest::File(p) = dest {
            return AtomicFile::create(p);
        }
        let tmp = tempfile::NamedTempFile::new()
            .context("cannot create a temporary file in the system's temporary directory")?;
        let target = match dest {
            Dest::Stream(p) => p.clone(),
            _ => PathBuf::from("-"),
        };
        Ok(AtomicFile {
            tmp,
            target,
            stream: Some(dest.clone()),
        })
    }

    /// A temporary file `.<name>.<random>.tmp` beside `target`.
    pub fn create(target: &Path) -> anyhow::Result<AtomicFile> {
        let dir = parent_dir(target);
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "export".into());
        remove_leftovers(&dir, &name);
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(&dir)
            .with_context(|| {
                format!(
                    "{}: cannot create a temporary file in {}",
                    target.display(),
                    dir.display()
                )
            })?;
        // Ours while the export runs (a filesystem without advisory locks just cannot tell).
        let _ = tmp.as_file().try_lock();
        // A temporary file is private (0600); the export should look like any file the user
        // writes: the previous file's permissions, else the usual 0644.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(target)
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap_or(0o644);
            let _ = tmp
                .as_file()
                .set_permissions(std::fs::Permissions::from_mode(mode));
        }
        Ok(AtomicFile {
            tmp,
            target: target.to_path_buf(),
            stream: None,
        })
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Whether the commit writes into a stream (standard output, a device, a FIFO).
    pub fn is_stream(&self) -> bool {
        self.stream.is_some()
    }

    /// The temporary file, to write into.
    pub fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// A buffered writer over the temporary file.
    pub fn writer(&mut self) -> BufWriter<&mut File> {
        BufWriter::with_capacity(256 * 1024, self.tmp.as_file_mut())
    }

    /// The sha256 (hex) of what was written so far.
    pub fn sha256(&mut self) -> anyhow::Result<String> {
        let shown = self.tmp.path().display().to_string();
        let f = self.tmp.as_file_mut();
        f.flush()?;
        f.seek(SeekFrom::Start(0))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = f
                .read(&mut buf)
                .with_context(|| format!("cannot read back {shown}"))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        f.seek(SeekFrom::End(0))?;
        Ok(hex::encode(h.finalize()))
    }

    /// Sync the data, rename it over the target, sync the directory; for a stream, write the
    /// bytes into it.
    pub fn commit(mut self) -> anyhow::Result<()> {
        if let Some(dest) = self.stream.take() {
            return self.copy_into(&dest);
        }
        let target = self.target;
        self.tmp
            .as_file()
            .sync_all()
            .with_context(|| format!("{}: cannot sync the temporary file", target.display()))?;
        self.tmp
            .persist(&target)
            .map_err(|e| e.error)
            .with_context(|| {
                format!(
                    "{}: cannot rename the temporary file over it",
                    target.display()
                )
            })?;
        // The rename is durable only once the directory entry is (best effort: not every
        // platform can open a directory).
        if let Ok(dir) = File::open(parent_dir(&target)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl AtomicFile {
    /// The finished bytes into standard output or a device / FIFO (opened for writing only now:
    /// a FIFO's open waits for its reader).
    fn copy_into(mut self, dest: &Dest) -> anyhow::Result<()> {
        let shown = dest.shown();
        let f = self.tmp.as_file_mut();
        f.seek(SeekFrom::Start(0))?;
        let copied = match dest {
            Dest::Stdout => {
                let mut out = std::io::stdout().lock();
                std::io::copy(f, &mut out).and_then(|_| out.flush())
            }
            _ => std::fs::OpenOptions::new()
                .write(true)
                .open(&self.target)
                .and_then(|mut out| std::io::copy(f, &mut out).and_then(|_| out.flush())),
        };
        copied.with_context(|| format!("{shown}: cannot write"))
    }
}

/// Remove the temporary files `.<name>.<random>.tmp` in `dir` that an earlier export of `name`
/// left behind when it was killed: those nobody holds the lock of (an export still running
/// holds its own). Best effort: what cannot be removed stays.
pub fn remove_leftovers(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.");
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(n) = file_name.to_str() else {
            continue;
        };
        let Some(middle) = n.strip_prefix(&prefix).and_then(|m| m.strip_suffix(".tmp")) else {
            continue;
        };
        if middle.is_empty() || middle.contains('.') || !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let Ok(f) = File::open(e.path()) else {
            continue;
        };
        if f.try_lock().is_ok() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Write `bytes` to `target` atomically.
pub fn write_atomic(target: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = AtomicFile::create(target)?;
    f.file()
        .write_all(bytes)
        .with_context(|| format!("{}: cannot write", target.display()))?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_file_leaves_the_target_alone_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.csv");
        std::fs::write(&target, "old").unwrap();
        {
            let mut f = AtomicFile::create(&target).unwrap();
            f.file().write_all(b"half of the new").unwrap();
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_killed_exports_leftovers_go_a_running_exports_file_stays() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.csv");
        let leftover = dir.path().join(".out.csv.Ab12Cd.tmp");
        std::fs::write(&leftover, "").unwrap();
        // Not ours: another target's, a name of another shape.
        let other = dir.path().join(".other.csv.Ab12Cd.tmp");
        std::fs::write(&other, "").unwrap();
        let running = AtomicFile::create(&target).unwrap();
        assert!(!leftover.exists(), "the leftover was removed");
        assert!(other.exists());
        let second = AtomicFile::create(&target).unwrap();
        assert!(running.tmp.path().exists(), "a running export's file stays");
        drop((running, second));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn commit_replaces_the_target_and_hash_matches() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.csv");
        std::fs::write(&target, "old").unwrap();
        let mut f = AtomicFile::create(&target).unwrap();
        f.file().write_all(b"new").unwrap();
        let sha = f.sha256().unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(sha, hex::encode(Sha256::digest(b"new")));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
