//! `doto-bulk revert RUN_DIR`: undo an import from its journal. Created contacts are deleted (a
//! 404 means already gone); updated ones get the fields the import changed back from the stored
//! `before` values in one PATCH each. A contact changed by someone else since is skipped unless
//! `--force`. Attribute keys the import added cannot be removed (PATCH merges) and are reported.
//!
//! The revert writes its own run directory: `journal.jsonl` (one line per completed write, the
//! shared [`journal`](crate::pipeline::journal)), `results.csv` (contact_id, action, reason,
//! not_removed), `notes.csv` (the notes the import added: contact_id, note_id, row, note, fate;
//! they are listed, not deleted) and `summary.json`. Contacts are reverted `--concurrency` at a time through one
//! client (`--rate`) by [`Reverter`]; this file reads the import, opens the run and reports. `--resume` skips the contacts a revert's journal finished; running it again
//! anyway writes nothing, since deleted contacts answer 404 and restored ones already equal their
//! `before` values.
//!
//! Exit codes: 0 every contact reverted or deliberately skipped; 3 some failed; 1 no journal, or
//! the journal cannot be written; 130 Ctrl-C (the contacts in flight finish, the reports and the
//! journal are flushed; `--resume` continues).
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::api::{Client, ClientConfig, Concurrency, RateLimit};
use crate::cli::GlobalArgs;
use crate::cmd::connect::SandboxArgs;
use crate::cmd::{connected, finish};
use crate::exit::{self, Stop};
use crate::pipeline::journal::{Entry, GroupJournal, Journal, read_lines};
use crate::pipeline::revert::{AddedNote, Target, added_notes, targets, unsettled_creates};
use crate::pipeline::rundir::{RunLock, RunRecord};
use crate::pipeline::undo::{Finished, RevertResult, Reverter};
use crate::report::{self, RunDir, write_json_atomic};

/// Undo an import: delete the contacts it created, restore the fields it changed.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The import's run directory (holding its journal.jsonl).
    pub run_dir: PathBuf,
    /// Look every contact up and write nothing; results.csv says what would be done.
    #[arg(long)]
    pub dry_run: bool,
    /// Restore contacts even if someone else changed them after the import (contacts the import
    /// created are deleted either way).
    #[arg(long)]
    pub force: bool,
    /// Continue a revert that was killed: contacts its journal finished are skipped.
    #[arg(long, value_name = "REVERT_RUN_DIR", conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    /// Run directory for the revert's reports (default: doto-runs/<UTC time>-revert/).
    #[arg(long, value_name = "RUN_DIR")]
    pub out: Option<PathBuf>,
    /// Contacts reverted at once: `auto` (default) adapts it so that the rate limit binds rather
    /// than latency; a number fixes it.
    #[arg(long, value_name = "N|auto", default_value = "auto")]
    pub concurrency: Concurrency,
    /// The most --concurrency auto grows to.
    #[arg(long, value_name = "N", default_value_t = crate::api::adaptive::DEFAULT_MAX, value_parser = crate::cmd::at_least_one)]
    pub max_concurrency: usize,
    /// Most requests sent, all together: `50` or `50/s` per second, `3000/min` per minute
    /// (default 3000/min).
    #[arg(long, value_name = "RATE")]
    pub rate: Option<RateLimit>,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

impl Args {
    /// `revert RUN_DIR` with every default (for callers other than clap).
    pub fn new(run_dir: &Path) -> Args {
        Args {
            run_dir: run_dir.to_path_buf(),
            dry_run: false,
            force: false,
            resume: None,
            out: None,
            concurrency: Concurrency::Auto,
            max_concurrency: crate::api::adaptive::DEFAULT_MAX,
            rate: None,
            sandbox: SandboxArgs::default(),
        }
    }
}

/// The end of a revert.
#[derive(Debug, Clone)]
pub struct RevertRun {
    pub exit_code: u8,
    pub run_dir: PathBuf,
    pub results: Vec<RevertResult>,
    /// Contacts per action.
    pub counts: BTreeMap<String, u64>,
    /// Writes sent (DELETE + PATCH) in this run.
    pub writes: u64,
    /// Why the revert ended before the last contact (Ctrl-C, the journal cannot be written).
    pub stopped: Option<Stop>,
}

pub async fn run(args: Args, global: &GlobalArgs) -> Result<u8> {
    let revert = |config, ctrl_c| run_revert(&args, config, global.quiet, ctrl_c);
    let r = connected(global, &args.sandbox, "reverting in", revert).await?;
    if !global.quiet {
        let counts: Vec<String> = r.counts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        eprintln!("{}; reports in {}", counts.join(", "), r.run_dir.display());
    }
    let failed = r.counts.get("failed").copied().unwrap_or(0);
    let input = args.run_dir.display().to_string();
    finish(r.stopped.as_ref(), failed, &input, &r.run_dir)
}

/// A revert's `summary.json`.
#[derive(Serialize)]
struct RevertSummary<'a> {
    command: &'static str,
    import_run_dir: String,
    run_dir: String,
    dry_run: bool,
    force: bool,
    contacts: usize,
    outcomes: &'a BTreeMap<String, u64>,
    writes: u64,
    unsettled_create_lines: &'a [u64],
    /// Notes the import added (listed in `notes.csv`), and those of them revert leaves (on
    /// contacts it does not delete).
    notes_added: usize,
    notes_left: usize,
    started_at: String,
    finished_at: String,
    stopped: Option<&'a Stop>,
}

/// Revert the import in `args.run_dir` against the account of `config` to the end (or until
/// `interrupt` is set): the library entry the command and the tests call. `args.rate` overrides
/// `config`'s when given.
pub async fn run_revert(
    args: &Args,
    mut config: ClientConfig,
    quiet: bool,
    interrupt: Arc<AtomicBool>,
) -> Result<RevertRun> {
    let started_at = report::now();
    config.set_rate(args.rate, None);
    (config.concurrency, config.max_concurrency) = (args.concurrency, args.max_concurrency);
    let (todo, unsettled, notes) = read_import(&args.run_dir, quiet)?;
    // The import's run directory is locked too: no import may resume it while it is undone.
    let _import_lock = RunLock::acquire_to_read(&args.run_dir)?;
    let record = RunRecord::new("revert", &config).reverting(&args.run_dir);
    let (dir, finished) = open_revert_dir(args, &record)?;
    let journal = match args.dry_run {
        true => None,
        false => Some(GroupJournal::start(Journal::open(
            &dir.file("journal.jsonl"),
        )?)),
    };
    let reverter = Reverter {
        client: Client::new(config)?,
        dry_run: args.dry_run,
        force: args.force,
        concurrency: args.concurrency.initial(),
        finished,
        journal,
        quiet,
    };
    write_notes(&dir, &notes)?;
    let csv_path = dir.file("results.csv");
    let mut csv = csv::Writer::from_path(&csv_path)
        .with_context(|| format!("{}: cannot write", csv_path.display()))?;
    let (results, writes, stopped) = reverter.all(&todo, &interrupt, &mut csv).await?;
    csv.flush()
        .with_context(|| format!("{}: cannot write", csv_path.display()))?;
    let mut counts = BTreeMap::new();
    for r in &results {
        *counts.entry(r.action.clone()).or_insert(0u64) += 1;
    }
    let summary = RevertSummary {
        command: "revert",
        import_run_dir: args.run_dir.display().to_string(),
        run_dir: dir.path().display().to_string(),
        dry_run: args.dry_run,
        force: args.force,
        contacts: results.len(),
        outcomes: &counts,
        writes,
        unsettled_create_lines: &unsettled,
        notes_added: notes.len(),
        notes_left: notes.iter().filter(|n| n.fate == "left").count(),
        started_at,
        finished_at: report::now(),
        stopped: stopped.as_ref(),
    };
    write_json_atomic(dir.path(), "summary.json", &summary)?;
    let failed = counts.get("failed").copied().unwrap_or(0);
    Ok(RevertRun {
        exit_code: exit::code(stopped.as_ref(), failed),
        run_dir: dir.path().to_path_buf(),
        results,
        counts,
        writes,
        stopped,
    })
}

/// The revert's run directory, locked: a fresh one bound to `record` (its `run.json`), or
/// (`--resume`) the killed revert's, with the contacts its journal finished, once `record`
/// matches it (same server, account and import run; a refused resume changes nothing).
fn open_revert_dir(args: &Args, record: &RunRecord) -> Result<(RunDir, HashSet<u64>)> {
    let Some(d) = &args.resume else {
        let dir = RunDir::create(args.out.as_deref(), "revert")?;
        record.write(dir.path())?;
        return Ok((dir, HashSet::new()));
    };
    // `--force` also accepts a revert directory without run.json, or another base URL.
    record.check_resume(d, args.force)?;
    let dir = RunDir::resume(d, "a revert run")?;
    let done = read_lines::<Finished>(&d.join("journal.jsonl"))?.entries;
    Ok((dir, done.into_iter().map(|f| f.contact_id).collect()))
}

/// `notes.csv`: the notes the import added.
fn write_notes(dir: &RunDir, notes: &[AddedNote]) -> Result<()> {
    let path = dir.file("notes.csv");
    let write = || -> Result<()> {
        let mut w = csv::Writer::from_path(&path)?;
        if notes.is_empty() {
            w.write_record(["contact_id", "note_id", "row", "note", "fate"])?;
        }
        for n in notes {
            w.serialize(n)?;
        }
        Ok(w.flush()?)
    };
    write().with_context(|| format!("{}: cannot write", path.display()))
}

/// What the import in `import_dir` did, one target per contact, the source lines of creates
/// it left unsettled (warned about unless `quiet`), and the notes it added.
fn read_import(import_dir: &Path, quiet: bool) -> Result<(Vec<Target>, Vec<u64>, Vec<AddedNote>)> {
    let journal = import_dir.join("journal.jsonl");
    if !journal.is_file() {
        bail!(
            "{}: not an import run directory (no journal.jsonl in it)",
            import_dir.display()
        );
    }
    let entries = read_lines::<Entry>(&journal)?.entries;
    let unsettled = unsettled_creates(&entries);
    if !unsettled.is_empty() && !quiet {
        eprintln!(
            "warning: {}: the import was stopped while creating the contacts of source lines {:?}; \
             run `import --resume` on it first, or those contacts (if created) stay",
            journal.display(),
            unsettled
        );
    }
    let targets = targets(&entries);
    let notes = added_notes(&entries, &targets);
    Ok((targets, unsettled, notes))
}
