//! Run reports: the run directory ([`RunDir`], shared by `validate`, `import` and `revert`),
//! `failures.csv`, `results.csv` and `summary.json` ([`Summary`]) of the commands over rows,
//! driven together by [`Reports`], which the one loop owning the side effects feeds row by row,
//! in file order, and the one atomic JSON writer every `summary.json` goes through
//! ([`write_json_atomic`]).
//!
//! `failures.csv` and `warnings.csv` keep the source's own columns and text so that a user can fix
//! them in a spreadsheet and feed them back with the same mapping: the report columns all start
//! with `_`, a fed-back file's old report columns are replaced, not repeated (its first line is
//! kept as `_source_row`), and a cell a spreadsheet would run as a formula gets the export's guard
//! (`'`), which the mapping removes again when the report is read back.
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::exit::Stop;
use crate::model::{Outcome, RowError, RowWarning};
use crate::normalise::Region;
use crate::pipeline::rundir::{RUN_JSON, RUN_LOCK, RunLock};
use crate::sink::guard::{guard, unguard};

/// The columns `failures.csv` adds after the source's own.
const FAILURE_COLUMNS: [&str; 4] = ["_row", "_error_code", "_error_field", "_error_message"];
/// The columns `warnings.csv` adds after the source's own.
const WARNING_COLUMNS: [&str; 5] = [
    "_row",
    "_warning_code",
    "_warning_field",
    "_warning_message",
    "_original_value",
];
/// The column a report of a fed-back report adds: the line in the file first read.
const SOURCE_ROW: &str = "_source_row";
/// The columns of `results.csv`.
const RESULT_COLUMNS: [&str; 6] = [
    "_row",
    "action",
    "contact_id",
    "key",
    "duplicate_of",
    "_warnings",
];

/// Where a run writes its reports: `doto-runs/<UTC time>-<command>/` or the `--out` directory.
/// It is locked ([`RunLock`]) for as long as a clone of it lives.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
    lock: Arc<RunLock>,
    /// The directory was made by this run (not an empty `--out` given by the user).
    made: bool,
}

impl RunDir {
    /// Create the directory fresh and lock it. `--out` may name a missing or empty directory; a
    /// non-empty one is refused (a run never overwrites another run's reports, nor writes into a
    /// directory that is not a run's). The default name carries the UTC time to the second; two
    /// runs in the same second get `-2`, `-3`….
    pub fn create(out: Option<&Path>, command: &str) -> Result<RunDir> {
        let Some(dir) = out else {
            return RunDir::create_default(command);
        };
        let made = !dir.exists();
        if made {
            fs::create_dir_all(dir)
                .with_context(|| format!("{}: cannot create the run directory", dir.display()))?;
        } else {
            refuse_non_empty(dir, &[])?;
        }
        let lock = RunLock::acquire(dir)?;
        // Another run may have started in it between the look and the lock.
        refuse_non_empty(dir, &[RUN_LOCK])?;
        Ok(RunDir {
            path: dir.to_path_buf(),
            lock: Arc::new(lock),
            made,
        })
    }

    fn create_default(command: &str) -> Result<RunDir> {
        let base = Path::new("doto-runs");
        fs::create_dir_all(base)
            .with_context(|| format!("{}: cannot create the directory", base.display()))?;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        for n in 1.. {
            let name = if n == 1 {
                format!("{stamp}-{command}")
            } else {
                format!("{stamp}-{command}-{n}")
            };
            let path = base.join(name);
            // create_dir (not _all) fails if it exists: no two runs share a directory.
            match fs::create_dir(&path) {
                Ok(()) => {
                    let lock = Arc::new(RunLock::acquire(&path)?);
                    return Ok(RunDir {
                        path,
                        lock,
                        made: true,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("{}: cannot create the run directory", path.display())
                    });
                }
            }
        }
        unreachable!()
    }

    /// The directory of an earlier run to continue, locked: it must hold the journal `--resume`
    /// reads. `what` names the kind of run in the error (`a run`, `a revert run`).
    pub fn resume(dir: &Path, what: &str) -> Result<RunDir> {
        if !dir.join("journal.jsonl").is_file() {
            bail!(
                "{}: not {what} directory to resume (no journal.jsonl in it)",
                dir.display()
            );
        }
        Ok(RunDir {
            path: dir.to_path_buf(),
            lock: Arc::new(RunLock::acquire(dir)?),
            made: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A file inside the run directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The pid of a killed process whose stale lock this run took over.
    pub fn took_over(&self) -> Option<u32> {
        self.lock.took_over
    }

    /// Whether the run wrote anything worth keeping: a journal line, a row in a report, a plan
    /// line or a summary.
    fn holds_results(&self) -> bool {
        let lines = |name: &str| {
            fs::read(self.file(name)).map_or(0, |b| b.iter().filter(|c| **c == b'\n').count())
        };
        let non_empty = |name: &str| fs::metadata(self.file(name)).is_ok_and(|m| m.len() > 0);
        non_empty("journal.jsonl")
            || non_empty("plan.jsonl")
            || self.file("summary.json").exists()
            || lines("results.csv") > 1
            || lines("failures.csv") > 1
    }

    /// After a failed start of a fresh run: remove what it wrote, and the directory if the run
    /// made it, when it holds no result yet (nothing in it is worth keeping). Returns whether
    /// it did.
    pub fn discard_if_unused(&self) -> bool {
        if self.holds_results() || self.lock.took_over.is_some() {
            return false;
        }
        let Ok(entries) = fs::read_dir(&self.path) else {
            return false;
        };
        for e in entries.flatten() {
            if e.file_name() != RUN_LOCK {
                let _ = fs::remove_file(e.path());
            }
        }
        // The lock file goes with the lock; an empty directory of our own goes now (the
        // lock's removal of a file in a removed directory is a no-op).
        if self.made {
            let _ = fs::remove_file(self.file(RUN_LOCK));
            let _ = fs::remove_dir(&self.path);
        }
        true
    }
}

/// Refuse a directory holding anything but `allowed`, saying whether it is another run's.
fn refuse_non_empty(dir: &Path, allowed: &[&str]) -> Result<()> {
    let entries = fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read the run directory", dir.display()))?;
    let mut names = entries.flatten().map(|e| e.file_name());
    if !names.any(|n| !allowed.iter().any(|a| n == *a)) {
        return Ok(());
    }
    let is_run = ["journal.jsonl", RUN_JSON, "summary.json"]
        .iter()
        .any(|f| dir.join(f).exists());
    if is_run {
        bail!(
            "{}: the run directory is not empty: it holds another run's reports; refusing to \
             overwrite them (give a new --out, or --resume it to continue that run)",
            dir.display()
        );
    }
    bail!(
        "{}: the directory is not empty and is not a run directory; refusing to write the \
         reports into it (give a new or empty --out)",
        dir.display()
    )
}

/// What `results.csv` says a row became.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RowAction {
    /// `validate`: the row would be imported (no account was asked what it would become).
    Valid,
    /// Every other case, including `invalid` and `skipped` in `validate`.
    Outcome(Outcome),
}

impl RowAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RowAction::Valid => "valid",
            RowAction::Outcome(o) => o.as_str(),
        }
    }
    /// Goes to `failures.csv` and makes the exit code 3.
    pub fn is_failure(self) -> bool {
        matches!(self, RowAction::Outcome(o) if o.is_failure())
    }
}

/// One row's entry in the reports.
#[derive(Debug, Clone, Copy)]
pub struct RowReport<'a> {
    /// Line of the row in the source file.
    pub line: u64,
    /// The fields exactly as read.
    pub fields: &'a [String],
    pub action: RowAction,
    /// Why it failed (or was skipped); the first is the row's `_error_code`.
    pub errors: &'a [RowError],
    /// Contact id (import).
    pub contact_id: Option<u64>,
    /// The match key the row goes by, e.g. `email:ann@x.com`.
    pub key: Option<&'a str>,
    /// The earlier line of the same file that has one of this row's keys.
    pub duplicate_of: Option<u64>,
    /// What was repaired or left out of the row (mapping and writing).
    pub warnings: &'a [RowWarning],
    /// The phone had no country code and was read as this region.
    pub read_as: Option<Region>,
}

/// The source's columns as a report writes them: all but an earlier report's own columns, each
/// cell guarded; and, for a fed-back report, its `_source_row` (or `_row`) carried on.
struct SourceColumns {
    /// Indices of the source columns written.
    keep: Vec<usize>,
    /// The fed-back report's `_source_row`, else its `_row`: the line in the file first read.
    source_row: Option<usize>,
    /// Number of source columns (the header's width).
    width: usize,
}

impl SourceColumns {
    fn new(headers: &[String]) -> SourceColumns {
        let ours = |h: &str| {
            h == SOURCE_ROW || FAILURE_COLUMNS.contains(&h) || WARNING_COLUMNS.contains(&h)
        };
        let find = |name: &str| headers.iter().position(|h| h == name);
        SourceColumns {
            keep: (0..headers.len()).filter(|&i| !ours(&headers[i])).collect(),
            source_row: find(SOURCE_ROW).or_else(|| find("_row")),
            width: headers.len(),
        }
    }

    /// The header: the kept columns, `_source_row` when fed back, then `extra`.
    fn header<'h>(&self, headers: &'h [String], extra: &[&'h str]) -> Vec<&'h str> {
        let mut out: Vec<&str> = self.keep.iter().map(|&i| headers[i].as_str()).collect();
        if self.source_row.is_some() {
            out.push(SOURCE_ROW);
        }
        out.extend(extra);
        out
    }

    /// A row's source cells (guarded, a cell that came in guarded not twice), with its
    /// `_source_row` when fed back.
    fn cells<'f>(&self, fields: &'f [String]) -> Vec<Cow<'f, str>> {
        let at = |i: usize| guard(unguard(fields.get(i).map_or("", String::as_str)));
        let mut out: Vec<Cow<str>> = Vec::with_capacity(self.keep.len() + 6);
        out.extend(self.keep.iter().map(|&i| at(i)));
        if let Some(i) = self.source_row {
            out.push(at(i));
        }
        out
    }
}

/// `failures.csv`: the source's columns, then [`FAILURE_COLUMNS`].
struct FailureWriter {
    out: csv::Writer<BufWriter<File>>,
    cols: SourceColumns,
}

/// A report file with its header written.
fn report_file(path: &Path, header: &[&str]) -> Result<csv::Writer<BufWriter<File>>> {
    let file = File::create(path).with_context(|| format!("{}: cannot create", path.display()))?;
    let mut out = csv::WriterBuilder::new().from_writer(BufWriter::with_capacity(1 << 16, file));
    out.write_record(header)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(out)
}

impl FailureWriter {
    pub fn create(path: &Path, headers: &[String]) -> Result<FailureWriter> {
        let cols = SourceColumns::new(headers);
        let out = report_file(path, &cols.header(headers, &FAILURE_COLUMNS))?;
        Ok(FailureWriter { out, cols })
    }

    /// Write one failed row. A ragged row is fitted to the header (missing cells empty, extra
    /// fields listed in the message) so that every column stays under its own header.
    pub fn write(&mut self, line: u64, fields: &[String], errors: &[RowError]) -> Result<()> {
        let first = errors.first();
        let mut message = errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        if !fields.is_empty() && fields.len() != self.cols.width {
            message.push_str(&ragged_note(fields, self.cols.width));
        }
        let mut rec = self.cols.cells(fields);
        rec.push(Cow::Owned(line.to_string()));
        rec.push(Cow::Borrowed(first.map_or("", |e| e.code.as_str())));
        rec.push(guard(first.and_then(|e| e.field.as_deref()).unwrap_or("")));
        rec.push(guard(&message));
        self.out.write_record(rec.iter().map(|c| c.as_bytes()))?;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }
}

/// `warnings.csv`: one line per warning, the source's columns then [`WARNING_COLUMNS`].
struct WarningWriter {
    out: csv::Writer<BufWriter<File>>,
    cols: SourceColumns,
}

impl WarningWriter {
    pub fn create(path: &Path, headers: &[String]) -> Result<WarningWriter> {
        let cols = SourceColumns::new(headers);
        let out = report_file(path, &cols.header(headers, &WARNING_COLUMNS))?;
        Ok(WarningWriter { out, cols })
    }

    pub fn write(&mut self, line: u64, fields: &[String], warnings: &[RowWarning]) -> Result<()> {
        let line = line.to_string();
        for w in warnings {
            let mut rec = self.cols.cells(fields);
            rec.push(Cow::Borrowed(&line));
            rec.push(Cow::Borrowed(w.code.as_str()));
            rec.push(guard(w.field.as_deref().unwrap_or("")));
            rec.push(guard(&w.message));
            rec.push(guard(&w.original));
            self.out.write_record(rec.iter().map(|c| c.as_bytes()))?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }
}

fn ragged_note(fields: &[String], width: usize) -> String {
    if fields.len() < width {
        format!(
            " (failures.csv: the row has {} for {}; the missing ones are left empty)",
            crate::words::count(fields.len() as u64, "field"),
            crate::words::count(width as u64, "column")
        )
    } else {
        let extra: Vec<String> = fields[width..].iter().map(|f| format!("{f:?}")).collect();
        format!(
            " (failures.csv: the row has {} for {}; the extra ones are not in the \
             columns: {})",
            crate::words::count(fields.len() as u64, "field"),
            crate::words::count(width as u64, "column"),
            extra.join(", ")
        )
    }
}

/// `results.csv`: one line per row, [`RESULT_COLUMNS`].
struct ResultsWriter {
    out: csv::Writer<BufWriter<File>>,
}

impl ResultsWriter {
    pub fn create(path: &Path) -> Result<ResultsWriter> {
        Ok(ResultsWriter {
            out: report_file(path, &RESULT_COLUMNS)?,
        })
    }

    pub fn write(&mut self, r: &RowReport<'_>) -> Result<()> {
        let line = r.line.to_string();
        let id = r.contact_id.map(|i| i.to_string()).unwrap_or_default();
        let dup = r.duplicate_of.map(|l| l.to_string()).unwrap_or_default();
        let codes: Vec<&str> = r.warnings.iter().map(|w| w.code.as_str()).collect();
        self.out.write_record([
            line.as_str(),
            r.action.as_str(),
            id.as_str(),
            r.key.unwrap_or(""),
            dup.as_str(),
            codes.join(";").as_str(),
        ])?;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }
}

/// API traffic of a run (import, revert); absent from `validate`'s summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RequestStats {
    /// Calls by kind (`search`, `create`, `update`, `list`, …), each counted once whatever its
    /// retries.
    pub by_kind: BTreeMap<String, u64>,
    /// HTTP attempts, retries included.
    pub attempts: u64,
    /// Attempts that repeated an earlier one, all reasons together.
    pub retries: u64,
    /// `retries` by reason: `rate_limited`, `server_error`, `connect_failed`, `timeout`,
    /// `connection_closed`, `transport_error`.
    pub retries_by_reason: BTreeMap<String, u64>,
    /// Responses with status 429.
    pub rate_limited: u64,
    /// Of the `notes` requests: reads of a contact's notes so that none is added twice (once
    /// per contact the run updates and gives a note; none for the contacts it creates).
    pub note_checks: u64,
    /// Responses with a 5xx status.
    pub server_errors: u64,
    /// Attempts that got no response (refused, reset, timed out).
    pub transport_errors: u64,
    /// Writes whose outcome was unknown (a 5xx or lost connection on a create or note): each
    /// was looked up, then sent again only if it had not landed.
    pub outcome_unknown: u64,
    /// Rows in flight: the sizes used (min / median / max, weighted by time) and what bound the
    /// run (`rate_limit`, `latency`, `server_errors`, `input`).
    pub concurrency: crate::api::ConcurrencyStats,
}

/// `summary.json`; also what the terminal table is drawn from.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub command: String,
    pub file: String,
    pub mapping: String,
    pub run_dir: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// Every row read, blank and damaged ones included: the sum of `outcomes`.
    pub rows_read: u64,
    /// Rows per action (`valid`, `invalid`, `skipped` for validate).
    pub outcomes: BTreeMap<String, u64>,
    /// Failed or invalid rows by their first error code: sums to the failures.
    pub failures_by_code: BTreeMap<String, u64>,
    /// Every error of every row (a row may have several; skipped rows' reasons included).
    pub errors_by_code: BTreeMap<String, u64>,
    /// Rows (counted in `outcomes` as usual) that repeat a key of an earlier row.
    pub duplicates_in_file: u64,
    /// Every warning (a value repaired or left out, the row imported) by code; `warnings.csv`
    /// lists them.
    pub warnings: BTreeMap<String, u64>,
    /// Phones with no country code, read with the default region: how many per region.
    pub phones_read_as: BTreeMap<String, u64>,
    pub elapsed_s: f64,
    pub rows_per_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<RequestStats>,
    /// Why the run ended before the end of the file, if it did.
    pub stopped: Option<Stop>,
    /// The source's warnings about the file as a whole (header names repaired, blank or
    /// duplicated; an encoding label overridden by a BOM), each naming the file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub header_warnings: Vec<String>,
    /// Where and why reading the file failed, when it did (`stopped` is then `read_error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_error: Option<String>,
    /// After `--resume`: `outcomes` are the whole run's; this says which of them earlier
    /// invocations finished and which this one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed: Option<Resumed>,
}

/// The counts of a resumed run split by invocation (each sums to `outcomes` with the other).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Resumed {
    /// This invocation's number (the first run is 1; `run.json`'s `resumes` has the others).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invocation: Option<usize>,
    pub earlier_invocations: BTreeMap<String, u64>,
    pub this_invocation: BTreeMap<String, u64>,
}

impl Resumed {
    /// Earlier invocations finished `earlier`; this one's counts are known at the end.
    pub fn after(earlier: BTreeMap<String, u64>) -> Resumed {
        Resumed {
            invocation: None,
            earlier_invocations: earlier,
            this_invocation: BTreeMap::new(),
        }
    }

    /// Earlier invocations finished `earlier` of the whole run's `outcomes`.
    pub fn split_of(earlier: BTreeMap<String, u64>, outcomes: &BTreeMap<String, u64>) -> Resumed {
        let mut r = Resumed::after(earlier);
        r.split(outcomes);
        r
    }

    /// This invocation's share of the whole run's `outcomes`.
    fn split(&mut self, outcomes: &BTreeMap<String, u64>) {
        self.this_invocation = outcomes
            .iter()
            .map(|(k, n)| {
                let before = self.earlier_invocations.get(k).copied().unwrap_or(0);
                (k.clone(), n.saturating_sub(before))
            })
            .collect();
    }

    /// `created 3, updated 1` (the non-zero counts), or `nothing`.
    fn line(counts: &BTreeMap<String, u64>) -> String {
        let parts: Vec<String> = counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k} {}", num(*n)))
            .collect();
        match parts.is_empty() {
            true => "nothing".to_owned(),
            false => parts.join(", "),
        }
    }

    /// The lines under the table (`what`: `run`, `revert`).
    pub fn text(&self, what: &str) -> String {
        format!(
            "  resumed {what}: the counts above are the whole {what}'s\n    this invocation: {}\n    \
             earlier invocations: {}\n",
            Resumed::line(&self.this_invocation),
            Resumed::line(&self.earlier_invocations)
        )
    }
}

impl Summary {
    /// Count one row: its outcome, its error codes, a duplicate, a failure's first code.
    fn count_row(&mut self, r: &RowReport<'_>) {
        self.rows_read += 1;
        bump(&mut self.outcomes, r.action.as_str());
        for e in r.errors {
            bump(&mut self.errors_by_code, e.code.as_str());
        }
        for w in r.warnings {
            bump(&mut self.warnings, w.code.as_str());
        }
        if let Some(region) = r.read_as {
            bump(&mut self.phones_read_as, region.as_str());
        }
        if r.duplicate_of.is_some() {
            self.duplicates_in_file += 1;
        }
        if r.action.is_failure() {
            let code = r.errors.first().map_or("unknown", |e| e.code.as_str());
            bump(&mut self.failures_by_code, code);
        }
    }

    /// A summary with a zero count for each of `actions` (so that every expected key is present).
    pub fn new(command: &str, file: &Path, mapping: &Path, actions: &[RowAction]) -> Summary {
        Summary {
            command: command.to_owned(),
            file: file.display().to_string(),
            mapping: mapping.display().to_string(),
            run_dir: String::new(),
            started_at: now(),
            finished_at: None,
            rows_read: 0,
            outcomes: actions.iter().map(|a| (a.as_str().to_owned(), 0)).collect(),
            failures_by_code: BTreeMap::new(),
            errors_by_code: BTreeMap::new(),
            duplicates_in_file: 0,
            warnings: BTreeMap::new(),
            phones_read_as: BTreeMap::new(),
            elapsed_s: 0.0,
            rows_per_s: 0.0,
            requests: None,
            stopped: None,
            header_warnings: Vec::new(),
            read_error: None,
            resumed: None,
        }
    }

    pub fn count(&self, action: RowAction) -> u64 {
        self.outcomes.get(action.as_str()).copied().unwrap_or(0)
    }

    /// Rows that failed or were invalid.
    pub fn failures(&self) -> u64 {
        self.failures_by_code.values().sum()
    }

    /// The table printed on the terminal at the end of a run.
    pub fn table(&self) -> String {
        // Good news first, then failures with their codes, then what was left alone.
        const ORDER: [&str; 7] = [
            "valid",
            "created",
            "updated",
            "unchanged",
            "failed",
            "invalid",
            "skipped",
        ];
        let rank = |a: &str| ORDER.iter().position(|o| *o == a).unwrap_or(ORDER.len());
        let mut actions: Vec<(&String, &u64)> = self.outcomes.iter().collect();
        actions.sort_by_key(|(a, _)| rank(a));
        let mut rows: Vec<(String, String)> = vec![("rows read".into(), num(self.rows_read))];
        let has_valid = self.outcomes.contains_key("valid");
        let last_failure = actions
            .iter()
            .rposition(|(a, _)| *a == "failed" || *a == "invalid");
        for (i, (action, n)) in actions.iter().enumerate() {
            rows.push(((*action).clone(), num(**n)));
            // validate's duplicates are valid rows: shown as a part of them.
            if *action == "valid" {
                rows.push(("  duplicates in file".into(), num(self.duplicates_in_file)));
            }
            if Some(i) == last_failure {
                for (code, n) in &self.failures_by_code {
                    rows.push((format!("  {code}"), num(*n)));
                }
            }
        }
        if !has_valid {
            rows.push(("duplicates in file".into(), num(self.duplicates_in_file)));
        }
        if !self.warnings.is_empty() {
            let n = self.warnings.values().sum();
            rows.push(("warnings (warnings.csv)".into(), num(n)));
            for (code, n) in &self.warnings {
                rows.push((format!("  {code}"), num(*n)));
            }
        }
        rows.push((
            "rate".into(),
            format!(
                "{} rows/s ({:.1} s)",
                num(self.rows_per_s as u64),
                self.elapsed_s
            ),
        ));
        if let Some(why) = &self.stopped {
            rows.push(("stopped".into(), why.as_str().to_owned()));
        }
        rows.push(("run directory".into(), self.run_dir.clone()));
        let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut s = format!("doto-bulk {}: {}\n", self.command, self.file);
        for (k, v) in rows {
            s.push_str(&format!("  {k:<w$}  {v:>12}\n"));
        }
        for (region, n) in &self.phones_read_as {
            let (what, were) = if *n == 1 {
                ("phone", "was")
            } else {
                ("phones", "were")
            };
            s.push_str(&format!(
                "  {} {what} had no country code and {were} read as {region}\n",
                num(*n)
            ));
        }
        if let Some(r) = &self.resumed {
            s.push_str(&r.text("run"));
        }
        s
    }
}

/// The UTC time now, as the reports write it (RFC 3339, milliseconds).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Write `value` as pretty JSON to `dir/name`, through a temporary file of a unique name in
/// `dir` renamed over it, so a reader never sees half of it and two writers (two processes on one
/// run directory) never write into one temporary file: the last rename wins, whole. Every run's
/// `summary.json` goes through here.
pub fn write_json_atomic(dir: &Path, name: &str, value: &impl Serialize) -> Result<()> {
    let path = dir.join(name);
    let mut body = serde_json::to_vec_pretty(value)?;
    body.push(b'\n');
    let cannot = || format!("{}: cannot write", path.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(cannot)?;
    tmp.write_all(&body).with_context(cannot)?;
    tmp.as_file().sync_data().with_context(cannot)?;
    tmp.persist(&path)
        .map_err(|e| e.error)
        .with_context(cannot)?;
    Ok(())
}

/// `1234567` → `1,234,567`.
fn num(n: u64) -> String {
    let d = n.to_string();
    let mut out = String::with_capacity(d.len() + d.len() / 3);
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Count one under `key` without allocating the key again on every row.
fn bump(counts: &mut BTreeMap<String, u64>, key: &str) {
    match counts.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            counts.insert(key.to_owned(), 1);
        }
    }
}

/// The reports of one run, written together: feed it every row in file order, then `finish()`.
pub struct Reports {
    dir: RunDir,
    failures: FailureWriter,
    warnings: WarningWriter,
    results: ResultsWriter,
    summary: Summary,
    started: Instant,
}

impl Reports {
    /// Create `failures.csv` and `results.csv` in `dir` for a source with these headers.
    pub fn create(dir: RunDir, headers: &[String], mut summary: Summary) -> Result<Reports> {
        summary.run_dir = dir.path().display().to_string();
        Ok(Reports {
            failures: FailureWriter::create(&dir.file("failures.csv"), headers)?,
            warnings: WarningWriter::create(&dir.file("warnings.csv"), headers)?,
            results: ResultsWriter::create(&dir.file("results.csv"))?,
            dir,
            summary,
            started: Instant::now(),
        })
    }

    pub fn dir(&self) -> &RunDir {
        &self.dir
    }

    /// Write one row to the reports and count it.
    pub fn row(&mut self, r: &RowReport<'_>) -> Result<()> {
        self.summary.count_row(r);
        if r.action.is_failure() {
            self.failures
                .write(r.line, r.fields, r.errors)
                .with_context(|| {
                    format!("{}: cannot write", self.dir.file("failures.csv").display())
                })?;
        }
        if !r.warnings.is_empty() {
            self.warnings
                .write(r.line, r.fields, r.warnings)
                .with_context(|| {
                    format!("{}: cannot write", self.dir.file("warnings.csv").display())
                })?;
        }
        self.results
            .write(r)
            .with_context(|| format!("{}: cannot write", self.dir.file("results.csv").display()))?;
        Ok(())
    }

    /// What the command counts itself (requests, a dry run's names).
    pub fn summary_mut(&mut self) -> &mut Summary {
        &mut self.summary
    }

    /// Flush the CSV files.
    fn flush(&mut self) -> Result<()> {
        self.failures.flush()?;
        self.warnings.flush()?;
        self.results.flush()?;
        Ok(())
    }

    /// Flush the CSV files and write `summary.json` with the run's end: `stop` (none when it
    /// reached the end of the file), the time taken and `finished_at` now. Returns the summary.
    pub fn finish(mut self, stop: Option<Stop>) -> Result<Summary> {
        self.flush()?;
        let elapsed = self.started.elapsed().as_secs_f64();
        let s = &mut self.summary;
        s.stopped = stop;
        s.elapsed_s = (elapsed * 1000.0).round() / 1000.0;
        s.rows_per_s = if elapsed > 0.0 {
            (s.rows_read as f64 / elapsed).round()
        } else {
            0.0
        };
        s.finished_at = Some(now());
        if let Some(r) = &mut s.resumed {
            r.split(&s.outcomes);
        }
        write_json_atomic(self.dir.path(), "summary.json", &self.summary)?;
        Ok(self.summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ErrorCode;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(num(0), "0");
        assert_eq!(num(999), "999");
        assert_eq!(num(1000), "1,000");
        assert_eq!(num(1234567), "1,234,567");
    }

    #[test]
    fn failures_keep_fields_and_replace_old_report_columns() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.csv");
        let headers = s(&[
            "Name",
            "_row",
            "Email",
            "_error_code",
            "_error_field",
            "_error_message",
        ]);
        let mut w = FailureWriter::create(&p, &headers).unwrap();
        let errs = [
            RowError::new(ErrorCode::InvalidEmail, Some("email"), "bad email"),
            RowError::new(ErrorCode::MissingName, Some("name"), "no name"),
        ];
        w.write(
            9,
            &s(&["  Ann, \"A\"\n", "4", "x@", "old", "old", "old"]),
            &errs,
        )
        .unwrap();
        w.flush().unwrap();
        let mut r = csv::Reader::from_path(&p).unwrap();
        let h: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(
            h,
            s(&[
                "Name",
                "Email",
                "_source_row",
                "_row",
                "_error_code",
                "_error_field",
                "_error_message"
            ])
        );
        let rec: Vec<String> = r
            .records()
            .next()
            .unwrap()
            .unwrap()
            .iter()
            .map(String::from)
            .collect();
        assert_eq!(
            rec,
            s(&[
                "  Ann, \"A\"\n",
                "x@",
                "4",
                "9",
                "invalid_email",
                "email",
                "bad email; no name"
            ])
        );
    }

    #[test]
    fn ragged_rows_are_fitted_to_the_header_and_the_message_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.csv");
        let mut w = FailureWriter::create(&p, &s(&["a", "b", "c"])).unwrap();
        let e = [RowError::new(ErrorCode::RaggedRow, None, "ragged")];
        w.write(2, &s(&["1"]), &e).unwrap();
        w.write(3, &s(&["1", "2", "3", "4", "5"]), &e).unwrap();
        w.flush().unwrap();
        let mut r = csv::Reader::from_path(&p).unwrap();
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(rows[0].len(), 7);
        assert_eq!(rows[0].iter().take(3).collect::<Vec<_>>(), ["1", "", ""]);
        assert!(rows[0][6].contains("left empty"), "{}", &rows[0][6]);
        assert_eq!(rows[1].len(), 7);
        assert_eq!(&rows[1][2], "3");
        assert!(rows[1][6].contains("\"4\", \"5\""), "{}", &rows[1][6]);
    }

    #[test]
    fn run_dir_refuses_a_non_empty_out_directory() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        RunDir::create(Some(&out), "validate").unwrap();
        // Empty: accepted again.
        RunDir::create(Some(&out), "validate").unwrap();
        fs::write(out.join("x"), "x").unwrap();
        let err = RunDir::create(Some(&out), "validate").unwrap_err();
        assert!(format!("{err:#}").contains("not empty"), "{err:#}");
    }

    #[test]
    fn only_a_run_directory_without_results_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let rd = RunDir::create(Some(&out), "import").unwrap();
        fs::write(rd.file("results.csv"), "_row,action\n").unwrap();
        assert!(rd.discard_if_unused());
        assert!(!out.exists());
        let rd = RunDir::create(Some(&out), "import").unwrap();
        fs::write(rd.file("failures.csv"), "a,_row\nx,2\n").unwrap();
        assert!(!rd.discard_if_unused());
        assert!(rd.file("failures.csv").exists());
        // A directory the user gave stays, emptied.
        let given = dir.path().join("given");
        fs::create_dir(&given).unwrap();
        let rd = RunDir::create(Some(&given), "import").unwrap();
        fs::write(rd.file("run.json"), "{}").unwrap();
        assert!(rd.discard_if_unused());
        drop(rd);
        assert_eq!(fs::read_dir(&given).unwrap().count(), 0);
    }

    #[test]
    fn summary_counts_add_up_and_json_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let rd = RunDir::create(Some(&dir.path().join("r")), "validate").unwrap();
        let acts = [
            RowAction::Valid,
            RowAction::Outcome(Outcome::Invalid),
            RowAction::Outcome(Outcome::Skipped),
        ];
        let sum = Summary::new("validate", Path::new("in.csv"), Path::new("m.yaml"), &acts);
        let mut reps = Reports::create(rd, &s(&["a"]), sum).unwrap();
        let f = s(&["x"]);
        let bad = [RowError::new(
            ErrorCode::InvalidPhone,
            Some("phone_number"),
            "p",
        )];
        for (i, a) in [acts[0], acts[0], acts[1], acts[2]].iter().enumerate() {
            let errs: &[RowError] = if *a == acts[0] { &[] } else { &bad };
            reps.row(&RowReport {
                line: i as u64 + 2,
                fields: &f,
                action: *a,
                errors: errs,
                contact_id: None,
                key: Some("email:a@b.c"),
                duplicate_of: (i == 1).then_some(2),
                warnings: &[],
                read_as: None,
            })
            .unwrap();
        }
        let out = reps.finish(None).unwrap();
        assert_eq!(out.rows_read, 4);
        assert_eq!(out.outcomes.values().sum::<u64>(), 4);
        assert_eq!(out.failures(), 1);
        assert_eq!(out.errors_by_code["invalid_phone"], 2);
        assert_eq!(out.duplicates_in_file, 1);
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.path().join("r/summary.json")).unwrap()).unwrap();
        assert_eq!(json["outcomes"]["valid"], 2);
        assert!(json.get("requests").is_none());
        let table = out.table();
        assert!(table.contains("invalid_phone"), "{table}");
    }

    #[test]
    fn phones_read_with_the_default_region_are_counted_and_said() {
        let dir = tempfile::tempdir().unwrap();
        let rd = RunDir::create(Some(&dir.path().join("r")), "validate").unwrap();
        let sum = Summary::new("validate", Path::new("in.csv"), Path::new("m.yaml"), &[]);
        let mut reps = Reports::create(rd, &s(&["a"]), sum).unwrap();
        let de = crate::normalise::Region::parse("DE").unwrap();
        let f = s(&["x"]);
        for read_as in [Some(de), Some(de), None] {
            reps.row(&RowReport {
                line: 2,
                fields: &f,
                action: RowAction::Valid,
                errors: &[],
                contact_id: None,
                key: None,
                duplicate_of: None,
                warnings: &[],
                read_as,
            })
            .unwrap();
        }
        let out = reps.finish(None).unwrap();
        assert_eq!(out.phones_read_as["DE"], 2);
        let table = out.table();
        assert!(
            table.contains("2 phones had no country code and were read as DE"),
            "{table}"
        );
    }
}
