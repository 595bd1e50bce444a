//! `doto-bulk revert RUN_DIR`: undo an import from its journal. Created contacts are deleted (a
//! 404 means already gone); updated ones get the fields the import changed back from the stored
//! `before` values in one PATCH each. A contact changed by someone else since is skipped unless
//! `--force`. Attribute keys the import added cannot be removed (PATCH merges) and are reported.
//!
//! The revert writes its own run directory: `journal.jsonl` (one line per completed write, the
//! shared [`journal`](crate::pipeline::journal)), `results.csv` (contact_id, action, reason,
//! not_removed) and `summary.json`. Contacts are reverted `--concurrency` at a time through one
//! client (`--rate`). `--resume` skips the contacts a revert's journal finished; running it again
//! anyway writes nothing, since deleted contacts answer 404 and restored ones already equal their
//! `before` values.
//!
//! Exit codes: 0 every contact reverted or deliberately skipped; 3 some failed; 1 no journal, or
//! the journal cannot be written; 130 Ctrl-C (the contacts in flight finish, the reports and the
//! journal are flushed; `--resume` continues).
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, Client, ClientConfig, RateLimit};
use crate::cli::GlobalArgs;
use crate::cmd::connect::SandboxArgs;
use crate::cmd::import::parse_rate;
use crate::cmd::{connected, finish};
use crate::exit::{self, Stop};
use crate::pipeline::journal::{Entry, GroupJournal, Journal, read_lines};
use crate::pipeline::revert::{Target, plan_restore, targets, unsettled_creates};
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
    /// Contacts reverted at once.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub concurrency: usize,
    /// Most requests sent, all together: `50` or `50/s` per second, `3000/min` per minute
    /// (default 3000/min).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
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
            concurrency: 8,
            rate: None,
            sandbox: SandboxArgs::default(),
        }
    }
}

/// One contact's line in `results.csv`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RevertResult {
    pub contact_id: u64,
    /// `deleted`, `restored`, `skipped`, `failed` (dry run: `would_delete`, `would_restore`).
    pub action: String,
    pub reason: String,
    /// Attribute keys the import added that PATCH cannot remove (`;`-separated).
    pub not_removed: String,
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

/// One line of a revert's journal: a contact finished.
#[derive(Debug, Serialize, Deserialize)]
struct Finished {
    contact_id: u64,
    action: String,
    at: String,
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
    config.rate = args.rate.unwrap_or(config.rate);
    let (todo, unsettled) = read_import(&args.run_dir, quiet)?;
    let (dir, finished) = match &args.resume {
        Some(d) => {
            let done = read_lines::<Finished>(&d.join("journal.jsonl"))?.entries;
            let ids = done.into_iter().map(|f| f.contact_id).collect();
            (RunDir::resume(d, "a revert run")?, ids)
        }
        None => (
            RunDir::create(args.out.as_deref(), "revert")?,
            HashSet::new(),
        ),
    };
    let journal = match args.dry_run {
        true => None,
        false => Some(GroupJournal::start(Journal::open(
            &dir.file("journal.jsonl"),
        )?)),
    };
    let reverter = Reverter {
        client: Client::new(config)?,
        args,
        finished,
        journal,
        quiet,
    };
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

/// What the import in `import_dir` did, one target per contact, and the source lines of creates
/// it left unsettled (warned about unless `quiet`).
fn read_import(import_dir: &Path, quiet: bool) -> Result<(Vec<Target>, Vec<u64>)> {
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
    Ok((targets(&entries), unsettled))
}

/// The revert of every contact: one client, the revert's own journal, the contacts an earlier
/// revert finished.
struct Reverter<'a> {
    client: Client,
    args: &'a Args,
    finished: HashSet<u64>,
    journal: Option<GroupJournal<Finished>>,
    quiet: bool,
}

impl Reverter<'_> {
    /// Revert `todo`, `--concurrency` contacts at a time, each result to `csv` in `todo`'s order,
    /// until the end or `interrupt` (no new contact starts; those in flight finish). Returns the
    /// results, the writes sent and why it stopped early.
    async fn all(
        &self,
        todo: &[Target],
        interrupt: &AtomicBool,
        csv: &mut csv::Writer<std::fs::File>,
    ) -> Result<(Vec<RevertResult>, u64, Option<Stop>)> {
        let mut done = futures::stream::iter(todo)
            .take_while(|_| std::future::ready(!interrupt.load(Ordering::Relaxed)))
            .map(|t| self.one(t))
            .buffered(self.args.concurrency.max(1));
        let (mut results, mut writes, mut stop) = (Vec::new(), 0, None);
        while let Some(r) = done.next().await {
            match r {
                Ok((r, wrote)) => {
                    csv.serialize(&r)?;
                    writes += wrote;
                    results.push(r);
                }
                Err(e) => {
                    stop = Some(Stop::Fatal(format!("{e:#}")));
                    break;
                }
            }
        }
        if stop.is_none() && results.len() < todo.len() {
            stop = Some(Stop::Interrupted);
        }
        Ok((results, writes, stop))
    }

    /// Revert one contact and journal it once finished (so that `--resume` skips it).
    async fn one(&self, t: &Target) -> Result<(RevertResult, u64)> {
        let id = t.id();
        if self.finished.contains(&id) {
            return Ok((result(id, "skipped", "done by the resumed revert", &[]), 0));
        }
        let (r, wrote) = revert_one(&self.client, t, self.args.dry_run, self.args.force).await;
        if matches!(r.action.as_str(), "deleted" | "restored")
            && let Some(j) = &self.journal
        {
            // Durable before it counts, as the import's journal.
            let line = Finished {
                contact_id: id,
                action: r.action.clone(),
                at: report::now(),
            };
            j.record(line).await?;
        }
        if !self.quiet && r.action == "failed" {
            eprintln!("contact {id}: {}", r.reason);
        }
        Ok((r, wrote))
    }
}

fn result(id: u64, action: &str, reason: &str, not_removed: &[String]) -> RevertResult {
    RevertResult {
        contact_id: id,
        action: action.into(),
        reason: reason.into(),
        not_removed: not_removed.join(";"),
    }
}

/// Revert one contact; returns its result and the writes sent.
async fn revert_one(
    client: &Client,
    t: &Target,
    dry_run: bool,
    force: bool,
) -> (RevertResult, u64) {
    match t {
        Target::Created { id } => {
            let id = *id;
            // Looked up first, so that a second revert finds it gone and sends nothing.
            match client.contacts().get(id).await {
                Ok(_) if dry_run => {
                    return (result(id, "would_delete", "created by the import", &[]), 0);
                }
                Ok(_) => {}
                Err(ApiError::NotFound { .. }) => {
                    return (result(id, "deleted", "already gone", &[]), 0);
                }
                Err(e) => return (result(id, "failed", &e.to_string(), &[]), 0),
            }
            match client.contacts().delete(id).await {
                Ok(()) => (result(id, "deleted", "created by the import", &[]), 1),
                // Gone already: deleted by an earlier revert (perhaps a retry of this one).
                Err(ApiError::NotFound { .. }) => (result(id, "deleted", "already gone", &[]), 1),
                Err(e) => (result(id, "failed", &e.to_string(), &[]), 1),
            }
        }
        Target::Updated { id, before, after } => {
            let id = *id;
            let now = match client.contacts().get(id).await {
                Ok(c) => c,
                Err(ApiError::NotFound { .. }) => {
                    return (result(id, "skipped", "deleted since the import", &[]), 0);
                }
                Err(e) => return (result(id, "failed", &e.to_string(), &[]), 0),
            };
            let plan = plan_restore(&now, before, after);
            let nr = &plan.not_removable;
            if plan.patch.is_empty() {
                let why = if nr.is_empty() {
                    "already restored"
                } else {
                    "nothing to restore but the added attribute keys"
                };
                return (result(id, "restored", why, nr), 0);
            }
            if !plan.changed_since.is_empty() && !force {
                let why = format!(
                    "changed since the import: {} (use --force)",
                    plan.changed_since.join(", ")
                );
                return (result(id, "skipped", &why, nr), 0);
            }
            if dry_run {
                return (result(id, "would_restore", "updated by the import", nr), 0);
            }
            match client.contacts().update(id, &plan.patch).await {
                Ok(_) => (result(id, "restored", "updated by the import", nr), 1),
                Err(e) => (result(id, "failed", &e.to_string(), nr), 1),
            }
        }
    }
}
