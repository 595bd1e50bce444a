//! `doto-bulk revert RUN_DIR`: undo an import from its journal. Created contacts are deleted (a
//! 404 means already gone); updated ones get the fields the import changed back from the stored
//! `before` values in one PATCH each. A contact changed by someone else since is skipped unless
//! `--force`. Attribute keys the import added cannot be removed (PATCH merges) and are reported.
//!
//! The revert writes its own run directory: `journal.jsonl` (one line per completed write),
//! `results.csv` (contact_id, action, reason, not_removed) and `summary.json`. `--resume` skips
//! the contacts a revert's journal finished; running it again anyway writes nothing, since
//! deleted contacts answer 404 and restored ones already equal their `before` values.
//!
//! Exit codes: 0 every contact reverted or deliberately skipped; 3 some failed; 1 no journal.
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::json;

use crate::api::{ApiError, Client, ClientConfig};
use crate::cli::GlobalArgs;
use crate::cmd::connect::{SandboxArgs, connect};
use crate::exit;
use crate::pipeline::revert::{Target, plan_restore, read_entries, targets, unsettled_creates};
use crate::report::RunDir;

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
}

pub async fn run(args: Args, global: &GlobalArgs) -> Result<u8> {
    let conn = connect(global, &args.sandbox).await?;
    if !global.quiet {
        eprintln!("reverting in {}", conn.describe());
    }
    let outcome = run_revert(&args, conn.config.clone(), global.quiet).await;
    conn.close().await?;
    let r = outcome?;
    if !global.quiet {
        let counts: Vec<String> = r.counts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        eprintln!("{}; reports in {}", counts.join(", "), r.run_dir.display());
    }
    Ok(r.exit_code)
}

/// Revert the import in `args.run_dir` against the account of `config`: the library entry the
/// command and the tests call.
pub async fn run_revert(args: &Args, config: ClientConfig, quiet: bool) -> Result<RevertRun> {
    let journal = args.run_dir.join("journal.jsonl");
    if !journal.is_file() {
        bail!(
            "{}: not an import run directory (no journal.jsonl in it)",
            args.run_dir.display()
        );
    }
    let entries = read_entries(&journal)?;
    let todo = targets(&entries);
    let unsettled = unsettled_creates(&entries);
    if !unsettled.is_empty() && !quiet {
        eprintln!(
            "warning: {}: the import was stopped while creating the contacts of source lines {:?}; \
             run `import --resume` on it first, or those contacts (if created) stay",
            journal.display(),
            unsettled
        );
    }
    let (run_dir, finished) = match &args.resume {
        Some(dir) => {
            let j = dir.join("journal.jsonl");
            if !j.is_file() {
                bail!(
                    "{}: not a revert run directory to resume (no journal.jsonl in it)",
                    dir.display()
                );
            }
            (dir.clone(), finished_in(&j)?)
        }
        None => (
            RunDir::create(args.out.as_deref(), "revert")?
                .path()
                .to_path_buf(),
            HashSet::new(),
        ),
    };
    let mut own_journal = if args.dry_run {
        None
    } else {
        let p = run_dir.join("journal.jsonl");
        Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .with_context(|| format!("{}: cannot open the journal", p.display()))?,
        )
    };
    let client = Client::new(config)?;
    let mut results = Vec::new();
    let mut writes = 0u64;
    for t in &todo {
        let id = t.id();
        if finished.contains(&id) {
            results.push(result(id, "skipped", "done by the resumed revert", &[]));
            continue;
        }
        let (r, wrote) = revert_one(&client, t, args.dry_run, args.force).await;
        writes += wrote;
        // Every contact finished (written or found done) is journaled, so --resume skips it.
        if matches!(r.action.as_str(), "deleted" | "restored")
            && let Some(f) = own_journal.as_mut()
        {
            // Durable before it counts, as the import's journal.
            let line = json!({"contact_id": id, "action": r.action,
                "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)});
            writeln!(f, "{line}")
                .and_then(|()| f.sync_data())
                .with_context(|| format!("{}: cannot write the journal", run_dir.display()))?;
        }
        if !quiet && r.action == "failed" {
            eprintln!("contact {id}: {}", r.reason);
        }
        results.push(r);
    }
    let mut counts = BTreeMap::new();
    for r in &results {
        *counts.entry(r.action.clone()).or_insert(0u64) += 1;
    }
    write_reports(&run_dir, args, &results, &counts, writes, &unsettled)?;
    let exit_code = if counts.contains_key("failed") {
        exit::ROWS_FAILED
    } else {
        exit::OK
    };
    Ok(RevertRun {
        exit_code,
        run_dir,
        results,
        counts,
        writes,
    })
}

/// Contacts a revert's journal finished.
fn finished_in(path: &Path) -> Result<HashSet<u64>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the journal", path.display()))?;
    // A line cut short by a kill does not parse and is ignored: its contact is checked again.
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["contact_id"].as_u64())
        .collect())
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

fn write_reports(
    dir: &Path,
    args: &Args,
    results: &[RevertResult],
    counts: &BTreeMap<String, u64>,
    writes: u64,
    unsettled: &[u64],
) -> Result<()> {
    let p = dir.join("results.csv");
    let mut w = csv::Writer::from_path(&p)
        .with_context(|| format!("{}: cannot write results.csv", p.display()))?;
    for r in results {
        w.serialize(r)?;
    }
    w.flush()?;
    let summary = json!({
        "command": "revert",
        "import_run_dir": args.run_dir.display().to_string(),
        "run_dir": dir.display().to_string(),
        "dry_run": args.dry_run,
        "force": args.force,
        "contacts": results.len(),
        "outcomes": counts,
        "writes": writes,
        "unsettled_create_lines": unsettled,
        "finished_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    let p = dir.join("summary.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&summary)?)
        .with_context(|| format!("{}: cannot write summary.json", p.display()))
}
