//! `doto-bulk revert RUN_DIR`: undo an import from its journal. Created contacts are deleted (a
//! 404 means already gone); updated ones get the fields the import changed back from the stored
//! `before` values in one PATCH each, then lose the custom attribute keys the import added (one
//! `destroy_custom_attributes`) and the notes it added (one DELETE each, by the id its journal
//! recorded). Additional attribute keys the import added cannot be removed by the API: they are
//! set to `null` and listed. A contact changed by someone else since is skipped unless `--force`.
//!
//! The revert writes its own run directory: `journal.jsonl` (one line per finished contact, the
//! shared [`journal`](crate::pipeline::journal)), `results.csv` (contact_id, action, reason,
//! left, nulled), `notes.csv` (the notes the import added: contact_id, note_id, row, note, fate)
//! and `summary.json` (counts per action, and per contact what is left and what was nulled).
//! Contacts are reverted `--concurrency` at a time through one client (`--rate`) by
//! [`Reverter`]; this file reads the import, opens the run and reports. `--resume` skips the
//! contacts a revert's journal finished; running it again anyway writes nothing, since every step
//! is decided from the contact as it is now.
//!
//! Before the first write, when the import created contacts, one request checks that the token
//! may delete (an agent's may not): if not, the revert stops before writing, with the hint to use
//! an administrator's token; a token refused at any later write stops it too.
//!
//! Exit codes: 0 every contact the import touched is as it was before (deleted, restored, or
//! unchanged: already so); 3 some were skipped, failed, or only partly restored (what is left is
//! in results.csv and the summary); 1 no journal, the token may not delete, or the journal cannot
//! be written; 130 Ctrl-C (the contacts in flight finish, the reports and the journal are
//! flushed; `--resume` continues).
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::api::{Client, ClientConfig, Concurrency, RateLimit};
use crate::cli::GlobalArgs;
use crate::cmd::connect::ConnectArgs;
use crate::cmd::connect::SandboxArgs;
use crate::cmd::emit::{declined, resume_hint};
use crate::cmd::{connected, end_run};
use crate::confirm::{self, Answer, Ask, Declined};
use crate::exit::{self, Stop};
use crate::pipeline::journal::{Entry, GroupJournal, Journal, read_lines};
use crate::pipeline::revert::{
    AddedNote, Target, added_notes, attach_notes, targets, unsettled_creates,
};
use crate::pipeline::rundir::{RunLock, RunRecord};
use crate::pipeline::undo::{Finished, RevertResult, Reverter};
use crate::report::{self, Resumed, RunDir, write_json_atomic};

/// Undo an import: delete the contacts it created, restore the fields it changed, remove the
/// attribute keys and notes it added (additional attribute keys are set to null).
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
    #[command(flatten)]
    pub connection: ConnectArgs,
    /// Whether to show the target and the plan and ask before the first write (the command
    /// sets it for a real account; library callers never ask).
    #[arg(skip)]
    pub ask: Ask,
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
            connection: ConnectArgs::default(),
            ask: Ask::Never,
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
    /// After `--resume`: the counts by invocation.
    pub resumed: Option<Resumed>,
}

pub async fn run(mut args: Args, global: &GlobalArgs) -> Result<u8> {
    let settings = args.connection.resolve(args.sandbox.sandbox)?;
    args.rate = args.rate.or(settings.rate);
    if !args.sandbox.sandbox && !args.dry_run {
        args.ask = Ask::Real { yes: settings.yes };
    }
    let revert = |config, ctrl_c| run_revert(&args, config, global.quiet, ctrl_c);
    let r = match connected(&settings, &args.sandbox, global, "reverting in", revert).await {
        Err(e) if e.is::<Declined>() => return Ok(declined(global)),
        r => r?,
    };
    if !global.quiet {
        let counts: Vec<String> = r.counts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        eprintln!("{}; reports in {}", counts.join(", "), r.run_dir.display());
        if let Some(resumed) = &r.resumed {
            eprint!("{}", resumed.text("revert"));
        }
    }
    if !args.dry_run {
        resume_hint(
            r.stopped.as_ref(),
            &r.run_dir,
            args.sandbox.sandbox_save.as_deref(),
        );
    }
    let not_reverted = r.results.iter().filter(|x| x.not_reverted()).count() as u64;
    if !global.quiet && not_reverted > 0 && r.stopped.is_none() {
        eprintln!(
            "{} {} not as before the import: see the `left` column of {}",
            crate::words::count(not_reverted, "contact"),
            crate::words::agree(not_reverted, "is", "are"),
            r.run_dir.join("results.csv").display()
        );
    }
    let input = args.run_dir.display().to_string();
    end_run(global, r.stopped.as_ref(), not_reverted, &input, &r.run_dir)
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
    /// Contacts not as they were before the import (skipped, failed, partly restored).
    not_reverted: u64,
    /// Contact id → what is left of the import on it (`;`-separated, as in results.csv).
    left: BTreeMap<u64, &'a str>,
    /// Contact id → additional attribute keys the import added, now `null`.
    nulled: BTreeMap<u64, &'a str>,
    writes: u64,
    unsettled_create_lines: &'a [u64],
    /// Notes the import added (listed in `notes.csv`), and those of them whose id the import's
    /// journal does not know (left).
    notes_added: usize,
    notes_left: usize,
    started_at: String,
    finished_at: String,
    stopped: Option<&'a Stop>,
    /// After `--resume`: `outcomes` are the whole revert's; this says which of them earlier
    /// invocations finished and which this one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    resumed: Option<Resumed>,
}

/// Contacts per action.
fn count_actions<'a>(results: impl Iterator<Item = &'a RevertResult>) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for r in results {
        *counts.entry(r.action.clone()).or_insert(0u64) += 1;
    }
    counts
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
    let client = Client::new(config.clone())?;
    ask(args.ask, &client, &todo).await?;
    let record = RunRecord::new("revert", &config).reverting(&args.run_dir);
    let (dir, finished) = open_revert_dir(args, &record)?;
    let earlier = args
        .resume
        .as_ref()
        .map(|_| count_actions(finished.values()));
    let journal = match args.dry_run {
        true => None,
        false => Some(GroupJournal::start(Journal::open(
            &dir.file("journal.jsonl"),
        )?)),
    };
    let deletes = todo.iter().any(|t| matches!(t, Target::Created { .. }));
    let reverter = Reverter {
        client,
        dry_run: args.dry_run,
        force: args.force,
        concurrency: args.concurrency.initial(),
        finished,
        journal,
        quiet,
        deletes,
        delete_check: Default::default(),
    };
    write_notes(&dir, &notes)?;
    let csv_path = dir.file("results.csv");
    let mut csv = csv::Writer::from_path(&csv_path)
        .with_context(|| format!("{}: cannot write", csv_path.display()))?;
    let (results, writes, stopped) = reverter.all(&todo, &interrupt, &mut csv).await?;
    csv.flush()
        .with_context(|| format!("{}: cannot write", csv_path.display()))?;
    let counts = count_actions(results.iter());
    let by_id = |f: fn(&RevertResult) -> &str| -> BTreeMap<u64, &str> {
        let non_empty = results.iter().filter(|r| !f(r).is_empty());
        non_empty.map(|r| (r.contact_id, f(r))).collect()
    };
    let not_reverted = results.iter().filter(|r| r.not_reverted()).count() as u64;
    let mut resumed = earlier.map(|e| Resumed::split_of(e, &counts));
    if let Some(r) = resumed.as_mut() {
        r.invocation = RunRecord::read(dir.path())?.map(|rec| rec.resumes.len() + 1);
    }
    let finished_at = report::now();
    let summary = RevertSummary {
        command: "revert",
        import_run_dir: args.run_dir.display().to_string(),
        run_dir: dir.path().display().to_string(),
        dry_run: args.dry_run,
        force: args.force,
        contacts: results.len(),
        outcomes: &counts,
        not_reverted,
        left: by_id(|r| &r.left),
        nulled: by_id(|r| &r.nulled),
        writes,
        unsettled_create_lines: &unsettled,
        notes_added: notes.len(),
        notes_left: notes.iter().filter(|n| n.fate == "left").count(),
        started_at,
        finished_at: finished_at.clone(),
        stopped: stopped.as_ref(),
        resumed: resumed.clone(),
    };
    write_json_atomic(dir.path(), "summary.json", &summary)?;
    let exit_code = exit::code(stopped.as_ref(), not_reverted);
    RunRecord::ended(dir.path(), &finished_at, exit_code)?;
    Ok(RevertRun {
        exit_code,
        run_dir: dir.path().to_path_buf(),
        results,
        counts,
        writes,
        stopped,
        resumed,
    })
}

/// Show the target and what the revert would do, and ask (per `ask`) before anything is written
/// (the revert's run directory included).
async fn ask(ask: Ask, client: &Client, todo: &[Target]) -> Result<()> {
    if ask == Ask::Never {
        return Ok(());
    }
    let target = confirm::target_of(client, confirm::account_total(client, None).await);
    let text = confirm::lines("reverting in", &target, &confirm::revert_plan(todo));
    match confirm::confirm(ask, &text) {
        Answer::Proceed => Ok(()),
        Answer::Declined => Err(Declined.into()),
    }
}

/// The revert's run directory, locked: a fresh one bound to `record` (its `run.json`), or
/// (`--resume`) the killed revert's, with the contacts its journal finished, once `record`
/// matches it (same server, account and import run; a refused resume changes nothing).
fn open_revert_dir(
    args: &Args,
    record: &RunRecord,
) -> Result<(RunDir, HashMap<u64, RevertResult>)> {
    let Some(d) = &args.resume else {
        let dir = RunDir::create(args.out.as_deref(), "revert")?;
        record.write(dir.path())?;
        return Ok((dir, HashMap::new()));
    };
    // `--force` also accepts a revert directory without run.json, or another base URL.
    record.check_resume(d, args.force)?;
    let dir = RunDir::resume(d, "a revert run")?;
    let done = read_lines::<Finished>(&d.join("journal.jsonl"))?.entries;
    let done = done.into_iter().map(|f| (f.result.contact_id, f.result));
    // run.json's `resumes` gets this invocation, as an import's does.
    record.resume(d)?;
    Ok((dir, done.collect()))
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
    let mut targets = targets(&entries);
    let notes = added_notes(&entries, &targets);
    attach_notes(&mut targets, &notes);
    Ok((targets, unsettled, notes))
}
