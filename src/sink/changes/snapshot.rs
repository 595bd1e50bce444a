//! The snapshot sidecar: every contact of one export as one line `ID<TAB>HASH<TAB>JSON`, sorted
//! by id, in the snappy frame format. `HASH` is 128 bits of the sha256 of the contact's compared
//! fields ([`fields`]); `JSON` is the contact as the API gave it, less `thumbnail` (a signed URL
//! that changes on every request), so that the next export can name the fields that changed and
//! give a removed contact's last values, `contact_inboxes` included when the listing had them
//! (`--include-contact-inboxes`; they are kept, not compared).
//!
//! Sorting stays flat in memory: contacts are gathered in runs of a bounded size
//! ([`RUN_SIZE`]), each run is sorted and spilled to a compressed temporary file, and
//! [`SnapshotWriter::finish`] merges the runs (a k-way merge over a heap) into the sidecar. More
//! than [`FAN_IN`] runs (about 5M contacts) are merged in levels, [`FAN_IN`] at a time into
//! longer runs, so that no more than [`FAN_IN`] run files are ever open at once.
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::api::Contact;
use crate::sink::columns::{CORE, Cell, Column, Timestamps, cell};

/// Contacts sorted in memory at a time.
pub const RUN_SIZE: usize = 20_000;

const BUFFER: usize = 256 * 1024;

/// The read buffer of each run while merging (one per [`RUN_SIZE`] contacts).
const RUN_BUFFER: usize = 64 * 1024;

/// Runs merged at once, at most (each an open file and a [`RUN_BUFFER`]): well under the usual
/// limit of 1,024 open files.
pub const FAN_IN: usize = 256;

/// The compared fields of `c`, by export column name (the CSV layout's names, timestamps in epoch
/// seconds), blank ones left out, sorted by name: the core columns, `custom_attributes.<key>` and
/// `additional_attributes.<key>`.
pub(crate) fn fields(c: &Contact) -> Vec<(String, Cell)> {
    let core = CORE.iter().map(|n| Column::Core(n));
    let custom = c.custom_attributes.keys().cloned().map(Column::Custom);
    let additional = c.additional_attributes.keys().cloned();
    let mut out: Vec<(String, Cell)> = core
        .chain(custom)
        .chain(additional.map(Column::Additional))
        .filter_map(|col| match cell(c, &col, Timestamps::Epoch) {
            Cell::Empty => None,
            v => Some((col.to_string(), v)),
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// 128 bits of the sha256 of `fields`, in hex: equal exactly when no compared field differs.
pub(crate) fn hash(fields: &[(String, Cell)]) -> String {
    let mut h = Sha256::new();
    for (name, v) in fields {
        let tag: &[u8] = match v {
            Cell::Empty => b"e",
            Cell::Text(_) => b"t",
            Cell::Int(_) => b"i",
            Cell::Float(_) => b"f",
            Cell::Bool(_) => b"b",
        };
        h.update(name.as_bytes());
        h.update([0x1f]);
        h.update(tag);
        h.update(v.to_text().as_bytes());
        h.update([0x1e]);
    }
    hex::encode(&h.finalize()[..16])
}

/// The names of the fields that differ between `old` and `new` (both as [`fields`] gives them),
/// sorted.
pub(crate) fn changed_fields(old: &[(String, Cell)], new: &[(String, Cell)]) -> Vec<String> {
    let (mut i, mut j, mut out) = (0, 0, vec![]);
    while i < old.len() || j < new.len() {
        let ord = match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) => a.0.cmp(&b.0),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match ord {
            std::cmp::Ordering::Less => (out.push(old[i].0.clone()), i += 1).1,
            std::cmp::Ordering::Greater => (out.push(new[j].0.clone()), j += 1).1,
            std::cmp::Ordering::Equal => {
                if old[i].1 != new[j].1 {
                    out.push(old[i].0.clone());
                }
                (i, j) = (i + 1, j + 1);
            }
        }
    }
    out
}

/// The sidecar line of `c` (newline included).
pub fn line(c: &Contact) -> String {
    line_keeping(c, true)
}

/// The sidecar line of `c`, its `contact_inboxes` kept only when `inboxes`.
fn line_keeping(c: &Contact, inboxes: bool) -> String {
    let mut kept = c.clone();
    kept.thumbnail = None;
    if !inboxes {
        kept.contact_inboxes = None;
    }
    let json = serde_json::to_string(&kept).expect("a contact serializes");
    format!("{}\t{}\t{json}\n", c.id, hash(&fields(c)))
}

/// Builds a sidecar from contacts in any order (an external sort).
pub struct SnapshotWriter {
    run: Vec<(u64, String)>,
    run_size: usize,
    fan_in: usize,
    runs: Vec<File>,
    dir: PathBuf,
    inboxes: bool,
}

impl SnapshotWriter {
    /// A writer whose sorted runs go to temporary files in `dir`.
    pub fn new(dir: &Path) -> SnapshotWriter {
        SnapshotWriter {
            run: vec![],
            run_size: RUN_SIZE,
            fan_in: FAN_IN,
            runs: vec![],
            dir: dir.to_path_buf(),
            inboxes: false,
        }
    }

    /// Keep each contact's `contact_inboxes` (when the export does: a removed contact then
    /// carries them into the changes file).
    pub fn with_contact_inboxes(mut self, keep: bool) -> SnapshotWriter {
        self.inboxes = keep;
        self
    }

    /// Merge `n` runs at once at most (at least 2).
    pub fn with_fan_in(mut self, n: usize) -> SnapshotWriter {
        self.fan_in = n.max(2);
        self
    }

    /// Sort `n` contacts in memory at a time (at least 1).
    pub fn with_run_size(mut self, n: usize) -> SnapshotWriter {
        self.run_size = n.max(1);
        self
    }

    pub fn add(&mut self, c: &Contact) -> anyhow::Result<()> {
        self.run.push((c.id, line_keeping(c, self.inboxes)));
        if self.run.len() >= self.run_size {
            self.spill()?;
        }
        Ok(())
    }

    /// The run, sorted, to a compressed temporary file.
    fn spill(&mut self) -> anyhow::Result<()> {
        const WHY: &str = "cannot write a snapshot run file";
        self.run.sort_by_key(|r| r.0);
        let mut w = self.run_file()?;
        for (_, l) in self.run.drain(..) {
            w.write_all(l.as_bytes()).context(WHY)?;
        }
        let f = rewound(w)?;
        self.runs.push(f);
        Ok(())
    }

    /// A new temporary run file, compressed.
    fn run_file(&self) -> anyhow::Result<RunFile> {
        let f = tempfile::tempfile_in(&self.dir).with_context(|| {
            format!(
                "cannot create a snapshot run file in {}",
                self.dir.display()
            )
        })?;
        Ok(snap::write::FrameEncoder::new(BufWriter::with_capacity(
            BUFFER, f,
        )))
    }

    /// Merge the runs into `out` (the sidecar's bytes, compressed), one line an id (a repeated id
    /// keeps its first line); the number of contacts written. Beyond [`FAN_IN`] runs, groups of
    /// them are first merged into longer runs, level by level.
    pub fn finish(mut self, out: impl Write) -> anyhow::Result<u64> {
        if !self.run.is_empty() {
            self.spill()?;
        }
        while self.runs.len() > self.fan_in {
            let mut next = vec![];
            let mut runs = std::mem::take(&mut self.runs).into_iter().peekable();
            while runs.peek().is_some() {
                let group: Vec<File> = runs.by_ref().take(self.fan_in).collect();
                let mut w = self.run_file()?;
                merge(group, &mut w)?;
                next.push(rewound(w)?);
            }
            self.runs = next;
        }
        let mut w = snap::write::FrameEncoder::new(BufWriter::with_capacity(BUFFER, out));
        let n = merge(std::mem::take(&mut self.runs), &mut w)?;
        w.into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write the snapshot: {}", e.error()))?
            .flush()
            .context("cannot write the snapshot")?;
        Ok(n)
    }
}

/// A run file being written.
type RunFile = snap::write::FrameEncoder<BufWriter<File>>;

/// The run file `w`, flushed and back at its start.
fn rewound(w: RunFile) -> anyhow::Result<File> {
    const WHY: &str = "cannot write a snapshot run file";
    let mut f = w
        .into_inner()
        .map_err(|e| anyhow::anyhow!("{WHY}: {}", e.error()))?
        .into_inner()
        .map_err(|e| anyhow::anyhow!("{WHY}: {}", e.error()))?;
    f.seek(SeekFrom::Start(0)).context(WHY)?;
    Ok(f)
}

/// The lines of the sorted `runs` into `w` in id order (a k-way merge over a heap), one line an
/// id: of a repeated id, the line of the earliest run; the lines written.
fn merge(runs: Vec<File>, w: &mut impl Write) -> anyhow::Result<u64> {
    let mut readers: Vec<_> = runs
        .into_iter()
        .map(|f| BufReader::with_capacity(RUN_BUFFER, snap::read::FrameDecoder::new(f)))
        .collect();
    let mut heads = vec![String::new(); readers.len()];
    let mut heap = BinaryHeap::new();
    for (i, r) in readers.iter_mut().enumerate() {
        if let Some(id) = next_line(r, &mut heads[i])? {
            heap.push(Reverse((id, i)));
        }
    }
    let (mut last, mut n) = (None, 0u64);
    while let Some(Reverse((id, i))) = heap.pop() {
        if last != Some(id) {
            w.write_all(heads[i].as_bytes())
                .context("cannot write the snapshot")?;
            (last, n) = (Some(id), n + 1);
        }
        if let Some(id) = next_line(&mut readers[i], &mut heads[i])? {
            heap.push(Reverse((id, i)));
        }
    }
    Ok(n)
}

/// The next line of a run into `buf`, and its id; `None` at the end.
fn next_line(r: &mut impl BufRead, buf: &mut String) -> anyhow::Result<Option<u64>> {
    buf.clear();
    if r.read_line(buf)
        .context("cannot read a snapshot run file")?
        == 0
    {
        return Ok(None);
    }
    let id = buf.split('\t').next().and_then(|s| s.parse().ok());
    id.map(Some)
        .ok_or_else(|| anyhow::anyhow!("a snapshot run line without an id"))
}

/// Reads a sidecar line by line, checking that the ids go up.
pub struct SnapshotReader<R: Read> {
    r: BufReader<snap::read::FrameDecoder<R>>,
    buf: String,
    line: u64,
    id: u64,
    /// Where the hash and the JSON start in `buf`.
    tabs: (usize, usize),
    what: String,
}

impl<R: Read> SnapshotReader<R> {
    /// A reader of the sidecar bytes `r`; `what` names it in errors.
    pub fn new(r: R, what: &str) -> SnapshotReader<R> {
        SnapshotReader {
            r: BufReader::with_capacity(BUFFER, snap::read::FrameDecoder::new(r)),
            buf: String::new(),
            line: 0,
            id: 0,
            tabs: (0, 0),
            what: what.to_owned(),
        }
    }

    /// Move to the next contact; false at the end.
    pub fn advance(&mut self) -> anyhow::Result<bool> {
        self.buf.clear();
        let n = self
            .r
            .read_line(&mut self.buf)
            .with_context(|| format!("{}: cannot read the snapshot", self.what))?;
        if n == 0 {
            return Ok(false);
        }
        self.line += 1;
        let damaged = || anyhow::anyhow!("{}: snapshot line {} is damaged", self.what, self.line);
        let t1 = self.buf.find('\t').ok_or_else(damaged)?;
        let t2 = t1 + 1 + self.buf[t1 + 1..].find('\t').ok_or_else(damaged)?;
        let id: u64 = self.buf[..t1].parse().map_err(|_| damaged())?;
        if self.line > 1 && id <= self.id {
            anyhow::bail!(
                "{}: snapshot line {} is out of id order",
                self.what,
                self.line
            );
        }
        (self.id, self.tabs) = (id, (t1 + 1, t2 + 1));
        Ok(true)
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn hash(&self) -> &str {
        &self.buf[self.tabs.0..self.tabs.1 - 1]
    }

    /// The current contact, parsed.
    pub fn contact(&self) -> anyhow::Result<Contact> {
        serde_json::from_str(self.buf[self.tabs.1..].trim_end()).with_context(|| {
            format!(
                "{}: snapshot line {} is not a contact",
                self.what, self.line
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contact(id: u64, email: &str) -> Contact {
        serde_json::from_value(
            json!({"id": id, "email": email, "thumbnail": "https://x/sig",
            "custom_attributes": {"plan": "gold"}, "created_at": 1711000000}),
        )
        .unwrap()
    }

    #[test]
    fn the_external_sort_merges_several_runs_into_id_order() {
        let dir = tempfile::tempdir().unwrap();
        let ids = [9u64, 3, 7, 1, 12, 5, 3, 8, 2, 11, 4, 10, 6];
        let mut w = SnapshotWriter::new(dir.path()).with_run_size(3);
        for id in ids {
            w.add(&contact(id, &format!("c{id}@x.test"))).unwrap();
        }
        assert_eq!(w.runs.len(), 4, "runs spilled while adding");
        let mut out = vec![];
        assert_eq!(
            w.finish(&mut out).unwrap(),
            12,
            "the repeated id is kept once"
        );
        let mut r = SnapshotReader::new(&out[..], "test");
        let mut seen = vec![];
        while r.advance().unwrap() {
            let c = r.contact().unwrap();
            assert_eq!(c.id, r.id());
            assert_eq!(c.thumbnail, None);
            assert_eq!(
                r.hash(),
                hash(&fields(&contact(c.id, &format!("c{}@x.test", c.id))))
            );
            seen.push(r.id());
        }
        assert_eq!(seen, (1..=12).collect::<Vec<_>>());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "run files are anonymous"
        );
    }

    /// The ids and emails of a sidecar, in order.
    fn read_back(out: &[u8]) -> Vec<(u64, String)> {
        let mut r = SnapshotReader::new(out, "test");
        let mut seen = vec![];
        while r.advance().unwrap() {
            let c = r.contact().unwrap();
            seen.push((c.id, c.email.unwrap()));
        }
        seen
    }

    #[test]
    fn many_runs_are_merged_in_levels_of_the_fan_in() {
        let dir = tempfile::tempdir().unwrap();
        // 40 contacts (ids 0..37, two repeated) in runs of 2: 20 runs, merged 3 at a time.
        let mut ids: Vec<u64> = (0..38).map(|i| (i * 17) % 38).collect();
        ids.insert(5, 9);
        ids.push(30);
        let mut w = SnapshotWriter::new(dir.path())
            .with_run_size(2)
            .with_fan_in(3);
        for (n, id) in ids.iter().enumerate() {
            w.add(&contact(*id, &format!("{n}@x.test"))).unwrap();
        }
        assert_eq!(w.runs.len(), 20);
        let mut out = vec![];
        assert_eq!(w.finish(&mut out).unwrap(), 38);
        let seen = read_back(&out);
        assert_eq!(
            seen.iter().map(|s| s.0).collect::<Vec<_>>(),
            (0..38).collect::<Vec<_>>()
        );
        // A repeated id keeps the line added first, whatever level merged it.
        let first = |id: u64| format!("{}@x.test", ids.iter().position(|i| *i == id).unwrap());
        assert!(
            seen.iter().all(|(id, email)| *email == first(*id)),
            "{seen:?}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn contact_inboxes_are_kept_when_asked() {
        let mut c = contact(1, "a@x.test");
        c.contact_inboxes = Some(vec![json!({"source_id": "s1", "inbox": {"id": 2}})]);
        for keep in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let mut w = SnapshotWriter::new(dir.path()).with_contact_inboxes(keep);
            w.add(&c).unwrap();
            let mut out = vec![];
            w.finish(&mut out).unwrap();
            let mut r = SnapshotReader::new(&out[..], "test");
            assert!(r.advance().unwrap());
            let back = r.contact().unwrap();
            assert_eq!(back.contact_inboxes.is_some(), keep);
            assert_eq!(r.hash(), hash(&fields(&c)), "inboxes are not compared");
        }
    }

    #[test]
    fn changed_fields_name_what_differs_blank_and_missing_alike() {
        let a = contact(1, "a@x.test");
        let mut b = a.clone();
        b.email = Some("b@x.test".into());
        b.custom_attributes.remove("plan");
        b.additional_attributes.insert("city".into(), json!("Lyon"));
        b.custom_attributes.insert("empty".into(), json!(""));
        b.thumbnail = Some("https://x/other-sig".into());
        let (fa, fb) = (fields(&a), fields(&b));
        assert_eq!(
            changed_fields(&fa, &fb),
            [
                "additional_attributes.city",
                "custom_attributes.plan",
                "email"
            ]
        );
        assert_ne!(hash(&fa), hash(&fb));
        let mut c = a.clone();
        c.thumbnail = None;
        c.custom_attributes
            .insert("gone".into(), serde_json::Value::Null);
        assert_eq!(
            hash(&fields(&c)),
            hash(&fa),
            "thumbnail and blanks are not compared"
        );
    }

    #[test]
    fn a_sidecar_out_of_order_is_refused() {
        let mut out = vec![];
        let mut w = snap::write::FrameEncoder::new(&mut out);
        w.write_all(line(&contact(2, "a@x")).as_bytes()).unwrap();
        w.write_all(line(&contact(1, "b@x")).as_bytes()).unwrap();
        drop(w);
        let mut r = SnapshotReader::new(&out[..], "s");
        assert!(r.advance().unwrap());
        let e = r.advance().unwrap_err();
        assert!(e.to_string().contains("out of id order"), "{e}");
    }
}
