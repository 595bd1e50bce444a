//! `journal.jsonl`, the durable ledger of a run: one JSON line per completed write, appended and
//! synced to disk before the write counts as done ([`Journal`], [`GroupJournal`]), read back with
//! a line torn by a kill ignored ([`read_lines`]). Import and revert both keep one; the lines
//! below are the import's ([`Entry`]): `--resume` reads them to skip finished rows and to
//! recognise rows that were in flight; `revert` reads them to undo a run.
//!
//! Lines (`op`):
//! - `begin`: a row with notes is about to write; `intent` says `create` or `update` (so that,
//!   after a kill, its notes are checked on the server before any is sent again, and its outcome
//!   is known even if its write landed without a line);
//! - `create`: `contact_id` created;
//! - `update`: `contact_id` updated; `before` holds the stored values the update replaced (field →
//!   value, attribute keys as `custom_attributes.k`), `after` the values written;
//! - `note`: note number `note` (0-based, mapping order) added to `contact_id`, as note `note_id`
//!   (when an earlier attempt's outcome was unknown, the id of the note found on the contact;
//!   absent in journals of older versions); `revert` deletes the note by this id;
//! - `done`: the row's last write (for rows with notes).
//!
//! A `create`/`update` line also keeps the warnings the write itself raised (`warnings`, e.g. a
//! phone left out as `phone_in_use`), so that a resumed run reports a finished row as the run
//! that wrote it did.
//!
//! Every line names its row by `row` (line in the source) and `hash` (of the row's fields), since
//! concurrent rows finish out of order and a different file must not be mistaken for this one.
//! `done: true` on a `create`/`update` line marks a row with nothing after it. A line cut short by
//! a kill is ignored when reading.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::model::{Outcome, RowWarning};

/// What a journal line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Begin,
    Create,
    Update,
    Note,
    Done,
}

/// One line of `journal.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub row: u64,
    pub hash: String,
    pub op: Op,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<usize>,
    /// `note`: the id the server gave the note (what revert lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note_id: Option<u64>,
    /// `begin`: the write the row is about to make (`create` or `update`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<Op>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub done: bool,
    /// `create`/`update`: the warnings of the write (the draft's own are the file's to say).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<RowWarning>,
    /// UTC time of the write.
    pub at: String,
}

impl Entry {
    pub fn new(row: u64, hash: &str, op: Op) -> Entry {
        Entry {
            row,
            hash: hash.to_owned(),
            op,
            contact_id: None,
            before: None,
            after: None,
            note: None,
            note_id: None,
            intent: None,
            done: false,
            warnings: Vec::new(),
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }
}

/// The identity of a row across runs: its line and the hash of its fields.
pub fn row_hash(fields: &[String]) -> String {
    let mut h = Sha256::new();
    for f in fields {
        h.update((f.len() as u64).to_le_bytes());
        h.update(f.as_bytes());
    }
    hex::encode(&h.finalize()[..12])
}

/// The journal being written. Each [`Journal::record`] appends one line and syncs the file.
pub struct Journal {
    file: File,
    path: String,
}

impl Journal {
    /// Open (create or append to) the journal at `path`.
    pub fn open(path: &Path) -> Result<Journal> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .with_context(|| format!("{}: cannot open the journal", path.display()))?;
        let mut j = Journal {
            path: path.display().to_string(),
            file: file.try_clone()?,
        };
        // A kill can leave half a line: end it, so the next entry starts on a line of its own.
        let len = file.metadata()?.len();
        if len > 0 {
            use std::io::{Read, Seek, SeekFrom};
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                j.file
                    .write_all(b"\n")
                    .and_then(|()| j.file.sync_data())
                    .with_context(|| format!("{}: cannot write the journal", j.path))?;
            }
        }
        Ok(j)
    }

    /// Append `e` and make it durable before returning.
    pub fn record<T: Serialize>(&mut self, e: &T) -> Result<()> {
        self.record_all(&[e])
    }

    /// Append `entries` (one write) and make them durable with one sync.
    fn record_all<T: Serialize>(&mut self, entries: &[&T]) -> Result<()> {
        let mut buf = Vec::with_capacity(entries.len() * 160);
        for e in entries {
            serde_json::to_writer(&mut buf, e)?;
            buf.push(b'\n');
        }
        self.file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("{}: cannot write the journal", self.path))
    }
}

/// A [`Journal`] on a thread of its own that commits in groups: entries sent while a sync is
/// under way are written together and made durable by one sync, and every sender is answered only
/// after its entry is on disk. With many rows in flight this turns one sync per write into one
/// per batch, while keeping "journaled before counted".
pub struct GroupJournal<T = Entry> {
    tx: std::sync::mpsc::Sender<(T, Ack)>,
}

type Ack = tokio::sync::oneshot::Sender<Result<(), String>>;

impl<T> Clone for GroupJournal<T> {
    fn clone(&self) -> Self {
        GroupJournal {
            tx: self.tx.clone(),
        }
    }
}

impl<T: Serialize + Send + 'static> GroupJournal<T> {
    pub fn start(mut journal: Journal) -> GroupJournal<T> {
        let (tx, rx) = std::sync::mpsc::channel::<(T, Ack)>();
        std::thread::Builder::new()
            .name("doto-journal".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while let Ok(more) = rx.try_recv() {
                        batch.push(more);
                    }
                    let entries: Vec<&T> = batch.iter().map(|(e, _)| e).collect();
                    let r = journal.record_all(&entries).map_err(|e| format!("{e:#}"));
                    for (_, ack) in batch {
                        let _ = ack.send(r.clone());
                    }
                }
            })
            .expect("spawn journal thread");
        GroupJournal { tx }
    }

    /// Append `e`; returns once it is durable.
    pub async fn record(&self, e: T) -> Result<()> {
        let (ack, done) = tokio::sync::oneshot::channel();
        self.tx
            .send((e, ack))
            .map_err(|_| anyhow::anyhow!("the journal writer stopped"))?;
        done.await
            .map_err(|_| anyhow::anyhow!("the journal writer stopped"))?
            .map_err(|m| anyhow::anyhow!(m))
    }
}

/// The lines of a journal, read back.
#[derive(Debug, Clone)]
pub struct Lines<T> {
    pub entries: Vec<T>,
    /// Lines cut short by a kill (ignored: their write was not acknowledged).
    pub torn: u64,
}

/// Read the journal at `path`: a missing file has no lines, a line a kill cut short (the next run
/// ended it with a newline) is counted in `torn` and skipped; any other bad line is an error
/// naming it.
pub fn read_lines<T: DeserializeOwned>(path: &Path) -> Result<Lines<T>> {
    let mut lines = Lines {
        entries: Vec::new(),
        torn: 0,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(lines),
        Err(e) => {
            return Err(e).with_context(|| format!("{}: cannot read the journal", path.display()));
        }
    };
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(e) => lines.entries.push(e),
            Err(err) if err.is_eof() => lines.torn += 1,
            Err(err) => anyhow::bail!(
                "{}: line {}: not a journal entry: {err}",
                path.display(),
                i + 1
            ),
        }
    }
    Ok(lines)
}

/// What an earlier run's journal says about one row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowState {
    /// The row started writing (a `begin` or any write line).
    pub begun: bool,
    pub done: bool,
    /// The outcome of its create or update, with the contact.
    pub outcome: Option<Outcome>,
    pub contact_id: Option<u64>,
    /// What its `begin` line said it was about to do (`created` or `updated`).
    pub intent: Option<Outcome>,
    /// Notes already added (by number).
    pub notes: BTreeSet<usize>,
    /// The warnings its create or update raised.
    pub warnings: Vec<RowWarning>,
}

impl RowState {
    /// What one more line of the row says.
    fn add(&mut self, e: &Entry) {
        self.begun = true;
        self.done |= e.done || e.op == Op::Done;
        match e.op {
            Op::Create => {
                self.outcome = Some(Outcome::Created);
                self.contact_id = e.contact_id;
                self.warnings.clone_from(&e.warnings);
            }
            Op::Update => {
                // A row's create stays its outcome if it also updated.
                self.outcome.get_or_insert(Outcome::Updated);
                self.contact_id = e.contact_id;
                self.warnings.clone_from(&e.warnings);
            }
            Op::Note => {
                if let Some(n) = e.note {
                    self.notes.insert(n);
                }
                if self.contact_id.is_none() {
                    self.contact_id = e.contact_id;
                }
            }
            Op::Begin => {
                self.intent = match e.intent {
                    Some(Op::Create) => Some(Outcome::Created),
                    Some(Op::Update) => Some(Outcome::Updated),
                    _ => self.intent,
                };
            }
            Op::Done => {}
        }
    }
}

/// An earlier run's journal, by row.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    rows: HashMap<(u64, String), RowState>,
    pub entries: u64,
    /// Lines cut short by a kill (ignored).
    pub torn: u64,
}

impl Ledger {
    /// Read `path`; a missing file is an empty ledger, a torn last line is ignored.
    pub fn read(path: &Path) -> Result<Ledger> {
        let lines = read_lines::<Entry>(path)?;
        let mut ledger = Ledger {
            torn: lines.torn,
            ..Ledger::default()
        };
        for e in lines.entries {
            ledger.entries += 1;
            ledger
                .rows
                .entry((e.row, e.hash.clone()))
                .or_default()
                .add(&e);
        }
        Ok(ledger)
    }

    /// The rows an earlier invocation finished, by outcome (as the engine reports them again).
    pub fn done_outcomes(&self) -> BTreeMap<String, u64> {
        let mut n = BTreeMap::new();
        for s in self.rows.values().filter(|s| s.done) {
            let o = s.outcome.or(s.intent).unwrap_or(Outcome::Unchanged);
            *n.entry(o.as_str().to_owned()).or_insert(0) += 1;
        }
        n
    }

    pub fn row(&self, line: u64, hash: &str) -> Option<&RowState> {
        self.rows.get(&(line, hash.to_owned()))
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_journal_reads_back_by_row_and_ignores_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("journal.jsonl");
        let mut j = Journal::open(&p).unwrap();
        let h = row_hash(&["a".into(), "b".into()]);
        let mut e = Entry::new(2, &h, Op::Create);
        e.contact_id = Some(9);
        j.record(&e).unwrap();
        let mut n = Entry::new(2, &h, Op::Note);
        n.note = Some(0);
        n.contact_id = Some(9);
        j.record(&n).unwrap();
        let mut u = Entry::new(3, &h, Op::Update);
        u.done = true;
        u.contact_id = Some(4);
        j.record(&u).unwrap();
        drop(j);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{\"row\":4,\"ha")
            .unwrap();
        let l = Ledger::read(&p).unwrap();
        assert_eq!(l.torn, 1);
        // The next run ends the torn line before appending.
        let mut j = Journal::open(&p).unwrap();
        j.record(&Entry::new(9, &h, Op::Done)).unwrap();
        let l = Ledger::read(&p).unwrap();
        assert_eq!((l.torn, l.entries), (1, 4));
        assert!(l.row(9, &h).unwrap().done);
        let r2 = l.row(2, &h).unwrap();
        assert!(r2.begun && !r2.done);
        assert_eq!(r2.outcome, Some(Outcome::Created));
        assert!(r2.notes.contains(&0));
        let r3 = l.row(3, &h).unwrap();
        assert!(r3.done);
        assert_eq!(r3.outcome, Some(Outcome::Updated));
        // Same line, other content: not the same row.
        assert!(l.row(3, &row_hash(&["x".into()])).is_none());
    }

    #[test]
    fn the_hash_tells_field_boundaries_apart() {
        assert_ne!(
            row_hash(&["ab".into(), "c".into()]),
            row_hash(&["a".into(), "bc".into()])
        );
    }
}
