//! The stages of an import that are not the write phase itself ([`super::engine`]):
//! - [`read_rows`]: every row of the file mapped, in file order, the valid ones made [`Row`]s for
//!   the engine (their keys taken once, their in-file duplicates found);
//! - [`Writes`]: the write phase set up around the [`Engine`] (journal, `--max-errors` counting
//!   the invalid rows, progress);
//! - [`ImportReports`]: the engine's results, which arrive in completion order, written to the
//!   shared [`Reports`] (and `plan.jsonl` in a dry run) in file order as soon as every earlier
//!   row is done, so that a stopped run has flushed every row it finished.
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::api::{Client, Metrics};
use crate::exit::Stop;
use crate::mapping::{MatchKey, Resolved};
use crate::model::{Outcome, RowError, RowWarning};
use crate::normalise::Region;
use crate::progress::{Pace, Progress};
use crate::report::{Reports, RequestStats, RowAction, RowReport, RunDir, Summary};
use crate::source::{ReadError, Source};

use super::dupes::DupeTracker;
use super::engine::{Engine, EngineOptions, Row, RowResult, groups};
use super::journal::{Journal, Ledger, row_hash};
use super::lookup::{self, Key, Known, Strategy};
use super::{Mapped, PipelineOptions};

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

impl Slot {
    /// Invalid already (counts towards `--max-errors`).
    fn is_invalid(&self) -> bool {
        matches!(self.state, SlotState::Invalid(_))
    }
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
    let mut dupes = DupeTracker::new();
    let mut out = FileRows {
        slots: Vec::new(),
        rows: Vec::new(),
        read_error: None,
    };
    let mut mapped = super::map_rows(source, resolved, &PipelineOptions::default());
    for m in mapped.by_ref() {
        tick();
        let idx = out.slots.len();
        let mut warnings = Vec::new();
        let mut read_as = None;
        let (state, duplicate_of) = match m.mapped {
            Mapped::Valid(mut draft) => {
                warnings = std::mem::take(&mut draft.warnings);
                read_as = draft.phone_read_as;
                let duplicate_of = dupes.check(m.line, &draft).first().map(|d| d.first_line);
                let keys = lookup::match_keys(match_keys, &draft);
                let key = keys
                    .first()
                    .or(lookup::all_keys(&draft).first())
                    .map(Key::label);
                out.rows.push(Row {
                    idx,
                    line: m.line,
                    hash: row_hash(&m.fields),
                    keys,
                    draft: *draft,
                });
                (SlotState::Pending { key }, duplicate_of)
            }
            Mapped::Skipped(e) => (SlotState::Skipped(e), None),
            Mapped::Invalid(errs) => (SlotState::Invalid(errs), None),
        };
        out.slots.push(Slot {
            line: m.line,
            fields: m.fields,
            duplicate_of,
            warnings,
            read_as,
            state,
        });
    }
    if let Err(e) = mapped.finish() {
        // A file read only in part is not imported: no lookup, no writes.
        out.rows.clear();
        out.read_error = Some(e);
    }
    out
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
    /// Write every row (unless the invalid rows alone exceed `--max-errors`), each result to
    /// `out` as it finishes, the journal beside the reports; returns why the run stopped early.
    pub async fn run(
        mut self,
        client: &Client,
        file: FileRows,
        out: &mut ImportReports,
    ) -> Result<Option<Stop>> {
        let FileRows { slots, rows, .. } = file;
        let invalid = slots.iter().filter(|s| s.is_invalid()).count() as u64;
        out.expect(slots)?;
        if self.opts.max_errors.is_some_and(|m| invalid > m) {
            return Ok(Some(Stop::MaxErrors));
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
        let writing = Progress::new(self.quiet, Some(rows.len() as u64), label)
            .with_pace(pace(client), "rows");
        let groups = groups(&rows, &self.known);
        let engine = Engine::new(client.clone(), self.known, journal, self.ledger, self.opts);
        engine
            .run(&rows, groups, |r| {
                writing.inc(1);
                out.done(r)
            })
            .await;
        out.note_checks = engine.note_checks();
        Ok(engine.stopped())
    }
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
        "  lookup: {}{}\n  requests: {} ({} retries, {} rate limited, {} server errors, {} \
         without a response, {} writes of unknown outcome)\n",
        lookup.as_str(),
        if auto {
            " (chosen by --lookup auto)"
        } else {
            ""
        },
        m.total_requests(),
        m.retries,
        m.rate_limited,
        m.server_errors,
        m.transport_errors,
        m.outcome_unknown
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
    slots: Vec<Slot>,
    /// Results that came before an earlier row's, by slot.
    waiting: Vec<Option<RowResult>>,
    /// The first slot not written yet.
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
            slots: Vec::new(),
            waiting: Vec::new(),
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
        self.waiting = (0..slots.len()).map(|_| None).collect();
        self.slots = slots;
        self.write_ready(false)
    }

    /// One row's result (in any order): written with every row after it that is ready.
    pub fn done(&mut self, r: RowResult) -> Result<()> {
        let idx = r.idx;
        self.waiting[idx] = Some(r);
        self.write_ready(false)
    }

    /// Write the rows in file order up to the first valid row with no result yet; at the end
    /// (`all`), valid rows with no result (the run stopped before them) are passed over: not
    /// counted as read.
    fn write_ready(&mut self, all: bool) -> Result<()> {
        while self.next < self.slots.len() {
            let i = self.next;
            let slot = &self.slots[i];
            let result = self.waiting[i].take();
            let mut warnings = Cow::Borrowed(slot.warnings.as_slice());
            let (outcome, contact_id, errors, key) = match (&slot.state, &result) {
                (SlotState::Pending { .. }, None) if !all => break,
                (SlotState::Pending { .. }, None) => {
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
