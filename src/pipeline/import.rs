//! The stages of an import that are not the write phase itself ([`super::engine`]). The file is
//! read twice, so that memory does not grow with its rows beyond a few bytes each:
//! - [`scan_rows`] (pass 1): every row mapped, keeping a [`Scan`]: the distinct match keys (for
//!   the lookup), and per row a hash, whether a later row shares a key and its in-file duplicate;
//! - [`Feed`] (pass 2): the file read again, each row checked against the first pass (a changed
//!   file stops the run) and streamed to the reports and the engine;
//! - [`read_rows`]: the same rows held in memory at once (small files: tests, tools);
//! - [`Writes`]: the write phase set up around the [`Engine`] (journal, `--max-errors` counting
//!   the invalid rows, progress);
//! - [`ImportReports`]: the engine's results, which arrive in completion order, written to the
//!   shared [`Reports`] (and `plan.jsonl` in a dry run) in file order as soon as every earlier
//!   row is done, so that a stopped run has flushed every row it finished.
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufWriter, Write};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use futures::StreamExt;

use crate::api::{Client, Metrics};
use crate::exit::Stop;
use crate::mapping::{ContactDraft, MatchKey, Resolved};
use crate::model::{Outcome, RowError, RowWarning};
use crate::normalise::Region;
use crate::progress::{Pace, Progress};
use crate::report::{Reports, RequestStats, RowAction, RowReport, RunDir, Summary};
use crate::source::{ReadError, Source};
use crate::words::count;

use super::dupes::{KeyIndex, RowPrints};
use super::engine::{Engine, EngineOptions, Row, RowResult};
use super::journal::{Journal, Ledger, row_hash};
use super::lookup::{self, Key, Known, Strategy};
use super::{Mapped, MappedRow, PipelineOptions};

/// One row of the file, in file order, as the reports need it.
pub struct Slot {
    line: u64,
    /// The fields as read (`failures.csv`).
    fields: Vec<String>,
    /// The earlier line of the file with one of this row's keys.
    duplicate_of: Option<u64>,
    /// What mapping repaired or left out (the writing adds its own, `RowResult::warnings`).
    warnings: Vec<RowWarning>,
    /// The phone had no country code and was read as this region.
    read_as: Option<Region>,
    state: SlotState,
}

/// Where a row of the file stands.
enum SlotState {
    /// Valid: handed to the engine; `key` is the key the reports name it by.
    Pending {
        key: Option<String>,
    },
    Skipped(RowError),
    Invalid(Vec<RowError>),
}

/// The file read: every row in file order, and the valid ones ready for the engine (each
/// [`Row::idx`] is its slot).
pub struct FileRows {
    pub slots: Vec<Slot>,
    pub rows: Vec<Row>,
    /// Reading stopped before the end of the file: nothing of it is to be imported.
    pub read_error: Option<ReadError>,
}

impl FileRows {
    /// The distinct keys the valid rows match on.
    pub fn keys(&self) -> BTreeSet<Key> {
        self.rows
            .iter()
            .flat_map(|r| r.keys.iter().cloned())
            .collect()
    }
}

/// Read, map and check every row of `source` (blocking: run it off the async threads); `tick`
/// counts rows.
pub fn read_rows(
    source: Box<dyn Source>,
    resolved: Resolved,
    match_keys: &[MatchKey],
    mut tick: impl FnMut(),
) -> FileRows {
    let mut index = KeyIndex::default();
    let mut out = FileRows {
        slots: Vec::new(),
        rows: Vec::new(),
        read_error: None,
    };
    let mut mapped = super::map_rows(source, resolved, &PipelineOptions::default());
    for m in mapped.by_ref() {
        tick();
        let idx = out.slots.len();
        let row = u32::try_from(idx).unwrap_or(u32::MAX);
        let shared = |line, draft: &_| {
            let held = index.hold(row, line, &RowPrints::of(draft), match_keys);
            (held.duplicate_of, held.phone_of)
        };
        let fed = to_fed(idx, m, match_keys, true, shared);
        out.rows.extend(fed.row);
        out.slots.push(fed.slot);
    }
    if let Err(e) = mapped.finish() {
        // A file read only in part is not imported: no lookup, no writes.
        out.rows.clear();
        out.read_error = Some(e);
    }
    out
}

/// Distinct match keys kept by [`scan_rows`] at most; beyond, only counted (a search of that
/// many keys is never cheaper than the index, and `--lookup search` reads them again).
pub const KEEP_KEYS: usize = 100_000;

/// The first pass over a file: what the lookup needs (the distinct match keys), what the write
/// phase needs to check the second pass against (a hash per row), and per row only what cannot
/// be known when it is read again (an in-file duplicate's first line, whether a later row shares
/// a key). A few bytes per row; the rows themselves are read again by [`Feed`].
pub struct Scan {
    /// Rows read (valid, skipped or invalid).
    pub rows: u64,
    pub valid: u64,
    pub invalid: u64,
    /// Distinct keys the valid rows match on.
    pub key_count: u64,
    /// Those keys, unless there are more than [`KEEP_KEYS`].
    pub keys: Option<BTreeSet<Key>>,
    /// Reading stopped before the end of the file: nothing of it is to be imported.
    pub read_error: Option<ReadError>,
    marks: Marks,
}

/// Per row of the first pass, by position: what [`Feed`] checks and hands on.
#[derive(Default)]
struct Marks {
    /// A hash of each row's line and fields.
    hashes: Vec<u64>,
    /// One bit per row: a later valid row shares one of its keys.
    later: Vec<u64>,
    /// The first line of the file with one of this row's keys (in-file duplicates only).
    duplicate_of: HashMap<u32, u64>,
    /// The first line of the file with this row's phone, when it is an earlier one.
    phone_of: HashMap<u32, u64>,
    /// The first pass ended on a read error.
    read_error: bool,
}

impl Marks {
    fn later(&self, row: usize) -> bool {
        self.later
            .get(row / 64)
            .is_some_and(|w| w & (1 << (row % 64)) != 0)
    }
    fn set_later(&mut self, row: usize) {
        self.later[row / 64] |= 1 << (row % 64);
    }
}

/// What the mapping threads hand the passes per row.
struct Pass<T> {
    row: MappedRow,
    hash: u64,
    extra: T,
}

/// The hash [`Feed`] compares to the first pass's.
fn line_hash(line: u64, fields: &[String]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    line.hash(&mut h);
    fields.hash(&mut h);
    h.finish()
}

/// Pass 1: read, map and check every row of `source` (blocking: run it off the async threads),
/// keeping only a [`Scan`]; `tick` counts rows.
pub fn scan_rows(
    source: Box<dyn Source>,
    resolved: Resolved,
    match_keys: &[MatchKey],
    mut tick: impl FnMut(),
) -> Scan {
    let wanted = match_keys.to_vec();
    let work = move |item| {
        let row = super::map_one(&resolved, item);
        let hash = line_hash(row.line, &row.fields);
        let extra = match &row.mapped {
            Mapped::Valid(d) => Some((RowPrints::of(d), lookup::match_keys(&wanted, d))),
            _ => None,
        };
        Pass { row, hash, extra }
    };
    let mut mapped = super::map_rows_with(source, work, &PipelineOptions::default());
    let mut index = KeyIndex::default();
    let mut scan = Scan {
        rows: 0,
        valid: 0,
        invalid: 0,
        key_count: 0,
        keys: Some(BTreeSet::new()),
        read_error: None,
        marks: Marks::default(),
    };
    for p in mapped.by_ref() {
        tick();
        let pos = scan.marks.hashes.len();
        scan.marks.hashes.push(p.hash);
        if pos.is_multiple_of(64) {
            scan.marks.later.push(0);
        }
        scan.rows += 1;
        let Some((prints, keys)) = p.extra else {
            scan.invalid += u64::from(matches!(p.row.mapped, Mapped::Invalid(_)));
            continue;
        };
        scan.valid += 1;
        let row = u32::try_from(pos).unwrap_or(u32::MAX);
        let held = index.hold(row, p.row.line, &prints, match_keys);
        for e in held.earlier {
            scan.marks.set_later(e as usize);
        }
        if let Some(first) = held.duplicate_of {
            scan.marks.duplicate_of.insert(row, first);
        }
        if let Some(first) = held.phone_of {
            scan.marks.phone_of.insert(row, first);
        }
        scan.key_count += u64::from(held.new_match_keys);
        if let Some(k) = scan.keys.as_mut() {
            k.extend(keys);
            if k.len() > KEEP_KEYS {
                scan.keys = None;
            }
        }
    }
    if let Err(e) = mapped.finish() {
        scan.read_error = Some(e);
        scan.marks.read_error = true;
    }
    scan
}

/// The distinct match keys of the valid rows of `source` (blocking): the keys a [`Scan`] did not
/// keep, for `--lookup search`.
pub fn collect_keys(
    source: Box<dyn Source>,
    resolved: Resolved,
    match_keys: &[MatchKey],
) -> BTreeSet<Key> {
    valid_rows(source, resolved, match_keys)
        .flat_map(|(_, keys)| keys)
        .collect()
}

/// The valid rows of `source` (blocking), in file order, each as its draft and match keys,
/// none kept: for a pass that decides every row once (the confirmation's plan).
pub fn valid_rows(
    source: Box<dyn Source>,
    resolved: Resolved,
    match_keys: &[MatchKey],
) -> impl Iterator<Item = (ContactDraft, Vec<Key>)> {
    let wanted = match_keys.to_vec();
    let work = move |item| match super::map_one(&resolved, item).mapped {
        Mapped::Valid(d) => {
            let keys = lookup::match_keys(&wanted, &d);
            Some((*d, keys))
        }
        _ => None,
    };
    super::map_rows_with(source, work, &PipelineOptions::default()).flatten()
}

/// One row of the second pass: its slot in the reports and, valid, the row for the engine.
struct Fed {
    slot: Slot,
    row: Option<Row>,
}

/// Rows of the second pass read ahead of the write phase at most.
const FEED_AHEAD: usize = 512;

/// Pass 2: the file read again, in file order, on its own thread, checked row by row against the
/// first pass (a row that differs ends it with an error naming the line: the file changed).
pub struct Feed {
    rx: tokio::sync::mpsc::Receiver<Result<Fed, String>>,
}

impl Feed {
    /// Read `source` again (opened anew, with the same mapping) against `scan`.
    pub fn start(
        source: Box<dyn Source>,
        resolved: Resolved,
        match_keys: &[MatchKey],
        scan: Scan,
    ) -> Feed {
        let (tx, rx) = tokio::sync::mpsc::channel(FEED_AHEAD);
        let keys = match_keys.to_vec();
        std::thread::Builder::new()
            .name("doto-feed".into())
            .spawn(move || feed_rows(source, resolved, &keys, &scan.marks, &tx))
            .expect("spawn the feed thread");
        Feed { rx }
    }

    async fn next(&mut self) -> Option<Result<Fed, String>> {
        self.rx.recv().await
    }
}

/// The feed thread: every row mapped again, made a [`Slot`] (and a [`Row`]), checked against
/// `marks`, sent in file order until the receiver is gone.
fn feed_rows(
    source: Box<dyn Source>,
    resolved: Resolved,
    match_keys: &[MatchKey],
    marks: &Marks,
    tx: &tokio::sync::mpsc::Sender<Result<Fed, String>>,
) {
    let work = move |item| {
        let row = super::map_one(&resolved, item);
        let hash = line_hash(row.line, &row.fields);
        Pass {
            row,
            hash,
            extra: (),
        }
    };
    let mut mapped = super::map_rows_with(source, work, &PipelineOptions::default());
    let mut pos = 0;
    for p in mapped.by_ref() {
        if marks.hashes.get(pos) != Some(&p.hash) {
            let _ = tx.blocking_send(Err(format!(
                "line {} is not what it was when the file was first read",
                p.row.line
            )));
            return;
        }
        let r = u32::try_from(pos).ok();
        let dupe = r.and_then(|r| marks.duplicate_of.get(&r)).copied();
        let phone = r.and_then(|r| marks.phone_of.get(&r)).copied();
        let fed = to_fed(pos, p.row, match_keys, marks.later(pos), |_, _| {
            (dupe, phone)
        });
        if tx.blocking_send(Ok(fed)).is_err() {
            return;
        }
        pos += 1;
    }
    let ended_early = mapped.finish().is_err();
    if pos != marks.hashes.len() || ended_early != marks.read_error {
        let _ = tx.blocking_send(Err(format!("it now ends after {pos} rows")));
    }
}

/// Row `idx` of the file as the reports (its slot) and the engine (valid: its row) take it;
/// `later`: a later row shares one of its keys; `shared` names the first line with one of a valid
/// row's keys and the first line with its phone.
fn to_fed(
    idx: usize,
    m: MappedRow,
    match_keys: &[MatchKey],
    later: bool,
    shared: impl FnOnce(u64, &ContactDraft) -> (Option<u64>, Option<u64>),
) -> Fed {
    let (mut warnings, mut read_as, mut row, mut dupe) = (Vec::new(), None, None, None);
    let state = match m.mapped {
        Mapped::Valid(mut draft) => {
            warnings = std::mem::take(&mut draft.warnings);
            read_as = draft.phone_read_as;
            let phone_of;
            (dupe, phone_of) = shared(m.line, &draft);
            let keys = lookup::match_keys(match_keys, &draft);
            let key = keys
                .first()
                .or(lookup::all_keys(&draft).first())
                .map(Key::label);
            row = Some(Row {
                idx,
                line: m.line,
                hash: row_hash(&m.fields),
                keys,
                draft: *draft,
                later,
                phone_of,
            });
            SlotState::Pending { key }
        }
        Mapped::Skipped(e) => SlotState::Skipped(e),
        Mapped::Invalid(errs) => SlotState::Invalid(errs),
    };
    let slot = Slot {
        line: m.line,
        fields: m.fields,
        duplicate_of: dupe,
        warnings,
        read_as,
        state,
    };
    Fed { slot, row }
}

/// The write phase: what it needs besides the client and the rows.
pub struct Writes {
    pub known: Known,
    /// What an earlier run (`--resume`) finished.
    pub ledger: Ledger,
    /// `max_errors` counts the file's invalid rows too.
    pub opts: EngineOptions,
    pub quiet: bool,
}

impl Writes {
    /// Write every row `feed` reads (unless the invalid rows alone, `invalid`, exceed
    /// `--max-errors`; `valid`: rows to write, for the progress bar), each result to `out` as it
    /// finishes, the journal beside the reports; returns why the run stopped early. Every row of
    /// the file reaches the reports, those not written passed over.
    pub async fn run(
        mut self,
        client: &Client,
        (valid, invalid): (u64, u64),
        mut feed: Feed,
        out: &mut ImportReports,
    ) -> Result<Option<Stop>> {
        if self.opts.max_errors.is_some_and(|m| invalid > m) {
            return Ok(out.drain(&mut feed).await?.or(Some(Stop::MaxErrors)));
        }
        self.opts.max_errors = self.opts.max_errors.map(|m| m - invalid);
        let journal = match self.opts.dry_run {
            true => None,
            false => Some(Journal::open(&out.dir().file("journal.jsonl"))?),
        };
        let label = if self.opts.dry_run {
            "planning"
        } else {
            "importing"
        };
        let writing = Progress::new(self.quiet, Some(valid), label).with_pace(pace(client), "rows");
        let engine = Engine::new(client.clone(), self.known, journal, self.ledger, self.opts);
        let shared = Mutex::new((&mut *out, None::<anyhow::Error>, None::<Stop>));
        let rows = futures::stream::unfold(&mut feed, |f| async {
            let next = f.next().await?;
            Some((next, f))
        })
        .filter_map(|fed| {
            let mut guard = shared.lock().unwrap();
            let s = &mut *guard;
            let row = match fed {
                Ok(Fed { slot, row }) => match s.0.push(slot) {
                    Ok(()) => row,
                    Err(e) => {
                        s.1.get_or_insert(e);
                        None
                    }
                },
                Err(why) => {
                    let stop = changed(s.0, &why);
                    s.2.get_or_insert(stop);
                    None
                }
            };
            std::future::ready(row)
        });
        engine
            .run_stream(rows, |r| {
                writing.inc(1);
                shared.lock().unwrap().0.done(r)
            })
            .await;
        let (out, report_error, changed) = shared.into_inner().unwrap();
        if let Some(e) = report_error {
            return Err(e);
        }
        out.note_checks = engine.note_checks();
        let stop = changed.or(engine.stopped());
        // The rows not taken (the run stopped): reported as passed over, invalid ones as such.
        let drained = out.drain(&mut feed).await?;
        Ok(stop.or(drained))
    }
}

/// Why the run stops when the second pass finds the file changed (`why`).
fn changed(out: &mut ImportReports, why: &str) -> Stop {
    Stop::ReadError(format!(
        "{} changed during the import: {why}; the rows before it were imported, the rest were \
         not (import the file again once it no longer changes)",
        out.reports.summary_mut().file
    ))
}

/// What the bar of the write phase reads from the client: requests sent, the rate limit, and
/// what it is waiting on.
fn pace(client: &Client) -> Pace {
    let (a, b, c, d) = (
        client.clone(),
        client.clone(),
        client.clone(),
        client.clone(),
    );
    Pace {
        concurrency: Arc::new(move || d.limit().describe()),
        requests: Arc::new(move || a.metrics().attempts),
        limit_per_s: Arc::new(move || b.metrics().rate.rate_per_sec),
        waiting_on: Arc::new(move || c.waiting_on()),
    }
}

/// The terminal summary of an import: the table, the lookup (`auto`: it chose) and the requests
/// made.
pub fn end_text(s: &Summary, lookup: Strategy, auto: bool, m: &Metrics, dry_run: bool) -> String {
    let mut text = s.table();
    text.push_str(&format!(
        "  lookup: {}{}\n  requests: {} ({}, {} rate limited, {}, {} \
         without a response, {} of unknown outcome)\n",
        lookup.as_str(),
        if auto {
            " (chosen by --lookup auto)"
        } else {
            ""
        },
        m.total_requests(),
        count(m.retries, "retry"),
        m.rate_limited,
        count(m.server_errors, "server error"),
        m.transport_errors,
        count(m.outcome_unknown, "write")
    ));
    if dry_run {
        let plan = std::path::Path::new(&s.run_dir).join("plan.jsonl");
        text.push_str(&format!("  plan: {}\n", plan.display()));
    }
    text
}

/// The rows an import can end in.
pub const ACTIONS: [RowAction; 6] = [
    RowAction::Outcome(Outcome::Created),
    RowAction::Outcome(Outcome::Updated),
    RowAction::Outcome(Outcome::Unchanged),
    RowAction::Outcome(Outcome::Skipped),
    RowAction::Outcome(Outcome::Failed),
    RowAction::Outcome(Outcome::Invalid),
];

/// The reports of an import, fed the engine's results as they come and writing them in file
/// order.
pub struct ImportReports {
    reports: Reports,
    /// `plan.jsonl` (dry run).
    plan: Option<BufWriter<File>>,
    /// The rows from the first not written yet to the latest read, and their results (those
    /// that came before an earlier row's).
    slots: VecDeque<(Slot, Option<RowResult>)>,
    /// Position in the file of the first of `slots`.
    next: usize,
    /// Reads of contacts' notes made so that none is added twice.
    note_checks: u64,
}

impl ImportReports {
    /// `failures.csv` and `results.csv` for a source with these headers, and `plan.jsonl` for a
    /// dry run.
    pub fn create(
        dir: RunDir,
        headers: &[String],
        summary: Summary,
        dry_run: bool,
    ) -> Result<ImportReports> {
        let plan = match dry_run {
            true => {
                let p = dir.file("plan.jsonl");
                let f =
                    File::create(&p).with_context(|| format!("{}: cannot create", p.display()))?;
                Some(BufWriter::new(f))
            }
            false => None,
        };
        Ok(ImportReports {
            reports: Reports::create(dir, headers, summary)?,
            plan,
            slots: VecDeque::new(),
            next: 0,
            note_checks: 0,
        })
    }

    pub fn dir(&self) -> &RunDir {
        self.reports.dir()
    }

    /// Reading the file failed: said in `summary.json`.
    pub fn read_failed(&mut self, e: &ReadError) {
        self.reports.summary_mut().read_error = Some(e.to_string());
    }

    /// The file's rows, whose results are to come; the invalid and skipped ones at the head
    /// are written at once.
    pub fn expect(&mut self, slots: Vec<Slot>) -> Result<()> {
        slots.into_iter().try_for_each(|s| self.push(s))
    }

    /// The next row of the file, whose result (valid) is to come; written at once when every
    /// row before it is.
    fn push(&mut self, slot: Slot) -> Result<()> {
        self.slots.push_back((slot, None));
        self.write_ready(false)
    }

    /// Every row `feed` has left, none of them written (the run stopped, or never started);
    /// returns why the run stops if the file changed.
    pub async fn drain(&mut self, feed: &mut Feed) -> Result<Option<Stop>> {
        while let Some(fed) = feed.next().await {
            match fed {
                Ok(f) => self.push(f.slot)?,
                Err(why) => return Ok(Some(changed(self, &why))),
            }
        }
        Ok(None)
    }

    /// One row's result (in any order): written with every row after it that is ready.
    pub fn done(&mut self, r: RowResult) -> Result<()> {
        let i = r.idx - self.next;
        self.slots[i].1 = Some(r);
        self.write_ready(false)
    }

    /// Write the rows in file order up to the first valid row with no result yet; at the end
    /// (`all`), valid rows with no result (the run stopped before them) are passed over: not
    /// counted as read.
    fn write_ready(&mut self, all: bool) -> Result<()> {
        while let Some((slot, result)) = self.slots.front() {
            let mut warnings = Cow::Borrowed(slot.warnings.as_slice());
            let (outcome, contact_id, errors, key) = match (&slot.state, result) {
                (SlotState::Pending { .. }, None) if !all => break,
                (SlotState::Pending { .. }, None) => {
                    self.slots.pop_front();
                    self.next += 1;
                    continue;
                }
                (SlotState::Pending { key }, Some(r)) => {
                    if let (Some(p), Some(line)) = (self.plan.as_mut(), &r.plan) {
                        serde_json::to_writer(&mut *p, line)?;
                        p.write_all(b"\n")?;
                    }
                    if !r.warnings.is_empty() {
                        warnings.to_mut().extend(r.warnings.iter().cloned());
                    }
                    (r.outcome, r.contact_id, r.errors.as_slice(), key.as_deref())
                }
                (SlotState::Skipped(e), _) => {
                    (Outcome::Skipped, None, std::slice::from_ref(e), None)
                }
                (SlotState::Invalid(errs), _) => (Outcome::Invalid, None, errs.as_slice(), None),
            };
            self.reports.row(&RowReport {
                line: slot.line,
                fields: &slot.fields,
                action: RowAction::Outcome(outcome),
                errors,
                contact_id,
                key,
                duplicate_of: slot.duplicate_of,
                warnings: &warnings,
                read_as: slot.read_as,
            })?;
            self.slots.pop_front();
            self.next += 1;
        }
        Ok(())
    }

    /// Write what is left, the requests made and `summary.json` (a dry run's counts say
    /// `would_create` / `would_update`); returns the summary.
    pub fn finish(mut self, stop: Option<Stop>, mut requests: RequestStats) -> Result<Summary> {
        requests.note_checks = self.note_checks;
        self.write_ready(true)?;
        if let Some(mut p) = self.plan.take() {
            p.flush().context("cannot write plan.jsonl")?;
            let s = self.reports.summary_mut();
            for (from, to) in [("created", "would_create"), ("updated", "would_update")] {
                let n = s.outcomes.remove(from).unwrap_or(0);
                s.outcomes.insert(to.into(), n);
            }
            s.command = "import --dry-run".into();
        }
        self.reports.summary_mut().requests = Some(requests);
        self.reports.finish(stop)
    }
}

/// The requests of a run as `summary.json` counts them (the kinds sent at all).
pub fn request_stats(metrics: &Metrics) -> RequestStats {
    RequestStats {
        by_kind: metrics
            .requests
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (k.to_string(), *n))
            .collect(),
        attempts: metrics.attempts,
        retries: metrics.retries,
        retries_by_reason: metrics
            .retries_by_reason
            .iter()
            .map(|(k, n)| (k.to_string(), *n))
            .collect(),
        rate_limited: metrics.rate_limited,
        note_checks: 0,
        server_errors: metrics.server_errors,
        transport_errors: metrics.transport_errors,
        outcome_unknown: metrics.outcome_unknown,
        concurrency: metrics.concurrency.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ErrorCode;

    fn slot(line: u64, state: SlotState) -> Slot {
        Slot {
            line,
            fields: vec![format!("f{line}")],
            duplicate_of: None,
            warnings: vec![],
            read_as: None,
            state,
        }
    }

    fn done(idx: usize, id: u64) -> RowResult {
        RowResult {
            idx,
            outcome: Outcome::Created,
            contact_id: Some(id),
            errors: vec![],
            warnings: vec![],
            plan: None,
        }
    }

    #[test]
    fn results_are_written_in_file_order_as_soon_as_every_earlier_row_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(Some(&dir.path().join("run")), "import").unwrap();
        let summary = Summary::new("import", "f.csv".as_ref(), "m.yaml".as_ref(), &ACTIONS);
        let mut out = ImportReports::create(run, &["a".into()], summary, false).unwrap();
        let bad = RowError::new(ErrorCode::InvalidEmail, Some("email"), "bad");
        let pending = || SlotState::Pending { key: None };
        out.expect(vec![
            slot(2, SlotState::Invalid(vec![bad.clone()])),
            slot(3, pending()),
            slot(4, SlotState::Skipped(bad)),
            slot(5, pending()),
            slot(6, pending()),
        ])
        .unwrap();
        let read = |o: &mut ImportReports| o.reports.summary_mut().rows_read;
        // The invalid row ahead of the first valid one goes at once.
        assert_eq!(read(&mut out), 1);
        out.done(done(4, 40)).unwrap();
        assert_eq!(read(&mut out), 1, "line 6 waits for lines 3 and 5");
        out.done(done(1, 10)).unwrap();
        assert_eq!(read(&mut out), 3, "lines 3 and 4 follow line 2");
        // Stopped before line 5 started: it is passed over, line 6 still reported.
        let s = out
            .finish(Some(Stop::Interrupted), RequestStats::default())
            .unwrap();
        assert_eq!(s.rows_read, 4);
        let csv = std::fs::read_to_string(dir.path().join("run/results.csv")).unwrap();
        let lines: Vec<&str> = csv.lines().map(|l| l.split(',').next().unwrap()).collect();
        assert_eq!(lines, ["_row", "2", "3", "4", "6"]);
        let failures = std::fs::read_to_string(dir.path().join("run/failures.csv")).unwrap();
        assert_eq!(failures.lines().count(), 2, "{failures}");
    }
}
