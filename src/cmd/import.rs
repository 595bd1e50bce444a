//! `doto-bulk import FILE -m MAPPING`: validate every row, look the keys up in the account, then
//! create / update / leave each contact, exactly once, with a journal that `--resume` continues.
//!
//! Orchestration only. The phases and who does them:
//! 1. read → map → normalise: [`pipeline::map_rows`] (the validate pipeline), in file order;
//! 2. lookup: [`lookup`] (`index`, `search`, or `auto` choosing the cheaper and saying why);
//! 3. writes: [`engine::Engine`] (grouping by key, decisions from [`plan`], concurrent writes
//!    through one client, journal, notes, outcome-unknown handling);
//! 4. reports: `failures.csv`, `results.csv` (the validate branch's writers), `plan.jsonl` (dry
//!    run), `summary.json` and the terminal summary, written here in file order; `lookup.json`
//!    says what `--lookup auto` chose and why.
//!
//! Exit codes: 0 every row created / updated / unchanged / skipped; 3 some rows failed or were
//! invalid; 1 the run could not start or stopped (token refused, `--max-errors`); 130 Ctrl-C
//! (in-flight writes finish, the reports and the journal are flushed).
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::api::{Client, ClientConfig, RateLimit};
use crate::cli::GlobalArgs;
use crate::cmd::connect::{SandboxArgs, connect};
use crate::cmd::validate::Input;
use crate::exit;
use crate::model::Outcome;
use crate::pipeline::dupes::DupeTracker;
use crate::pipeline::engine::{Engine, EngineOptions, Row, RowResult, Stop, groups};
use crate::pipeline::journal::{Journal, Ledger, row_hash};
use crate::pipeline::lookup::{self, Choice, Key, Known, Strategy};
use crate::pipeline::plan::{Mode, Policy};
use crate::pipeline::{self, Mapped, MappedRow, PipelineOptions};
use crate::progress::Progress;
use crate::report::{
    FailureWriter, RequestStats, ResultsWriter, RowAction, RowReport, RunDir, Summary,
};

/// Import a CSV or XLSX file into the account: create the missing contacts, update the changed
/// ones, leave the rest.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The CSV or XLSX file to import.
    pub file: PathBuf,
    /// The mapping file (YAML).
    #[arg(short, long, value_name = "MAPPING")]
    pub mapping: PathBuf,
    /// Look everything up and write nothing; the plan goes to plan.jsonl.
    #[arg(long)]
    pub dry_run: bool,
    /// Continue a run that was killed or interrupted: rows its journal has finished are skipped,
    /// rows it had in flight are looked up before anything is sent again.
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    /// Which writes are allowed.
    #[arg(long, value_enum, default_value_t = Mode::Upsert)]
    pub mode: Mode,
    /// Rows written at once (rows sharing a key always wait for each other).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub concurrency: usize,
    /// Most requests sent, all together: `50` or `50/s` per second, `3000/min` per minute
    /// (default 3000/min).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub rate: Option<RateLimit>,
    /// Most searches sent (the server limits them per account): like --rate (default 100/min).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub search_rate: Option<RateLimit>,
    /// Retries of one request after a server or connection error (default 5).
    #[arg(long, value_name = "N")]
    pub max_retries: Option<u32>,
    /// Stop (exit 1) once more than this many rows failed or were invalid.
    #[arg(long, value_name = "N")]
    pub max_errors: Option<u64>,
    /// How existing contacts are found: page through all of them once (index), search each key
    /// (search), or pick the cheaper (auto).
    #[arg(long, value_enum, default_value_t = Strategy::Auto)]
    pub lookup: Strategy,
    /// Run directory for the reports and the journal (default: doto-runs/<UTC time>-import/).
    #[arg(long, value_name = "RUN_DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

impl Args {
    /// `import FILE -m MAPPING` with every default (for callers other than clap).
    pub fn new(file: &Path, mapping: &Path) -> Args {
        Args {
            file: file.to_path_buf(),
            mapping: mapping.to_path_buf(),
            dry_run: false,
            resume: None,
            mode: Mode::Upsert,
            concurrency: 8,
            rate: None,
            search_rate: None,
            max_retries: None,
            max_errors: None,
            lookup: Strategy::Auto,
            out: None,
            sandbox: SandboxArgs::default(),
        }
    }
}

/// `50`, `50/s`, `3000/min`.
pub fn parse_rate(s: &str) -> Result<RateLimit, String> {
    let s = s.trim();
    let (n, per_minute) = match s.split_once('/') {
        None => (s, false),
        Some((n, "s" | "sec" | "second")) => (n, false),
        Some((n, "m" | "min" | "minute")) => (n, true),
        Some((_, unit)) => return Err(format!("unknown unit {unit:?} (use /s or /min)")),
    };
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a rate (e.g. 50, 50/s, 3000/min)"))?;
    if n == 0 {
        return Err("a rate must be at least 1".into());
    }
    Ok(if per_minute {
        RateLimit::per_minute(n)
    } else {
        RateLimit::per_second(n)
    })
}

/// The end of an import run.
#[derive(Debug, Clone)]
pub struct ImportRun {
    pub exit_code: u8,
    pub run_dir: PathBuf,
    pub summary: Summary,
    /// The lookup strategy used, and why when `auto` chose it.
    pub lookup: Strategy,
    pub choice: Option<Choice>,
    /// Why the run stopped early (`interrupted`, `max_errors`, or a fatal message).
    pub fatal: Option<String>,
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

pub async fn run(args: Args, global: &GlobalArgs) -> Result<u8> {
    let conn = connect(global, &args.sandbox).await?;
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    let watcher = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::Relaxed);
        }
    });
    if !global.quiet {
        eprintln!("importing into {}", conn.describe());
    }
    let outcome = run_import(&args, conn.config.clone(), global.quiet, interrupted).await;
    watcher.abort();
    conn.close().await?;
    let r = outcome?;
    if let Some(msg) = &r.fatal {
        bail!(
            "{}: {msg}; reports so far in {}",
            r.summary.file,
            r.run_dir.display()
        );
    }
    Ok(r.exit_code)
}

/// Run an import against the account of `config` to the end (or until `interrupt` is set): the
/// library entry the command and the tests call. `args.rate`, `args.search_rate` and
/// `args.max_retries` override `config` when given.
pub async fn run_import(
    args: &Args,
    mut config: ClientConfig,
    quiet: bool,
    interrupt: Arc<AtomicBool>,
) -> Result<ImportRun> {
    let started = Instant::now();
    if let Some(r) = args.rate {
        config.rate = r;
    }
    if let Some(r) = args.search_rate {
        config.search_rate = r;
    }
    if let Some(n) = args.max_retries {
        config.max_retries = n;
    }
    let Input {
        mapping,
        source: src,
        headers,
        resolved,
        keys: match_keys,
    } = Input::open(&args.file, &args.mapping)?;
    let policy = Policy {
        existing: mapping.existing_policy(),
        missing: mapping.missing_policy(),
        mode: args.mode,
    };

    // The run directory: a fresh one, or the interrupted run's (its journal is continued).
    let (run_dir, ledger) = match &args.resume {
        Some(dir) => {
            let journal = dir.join("journal.jsonl");
            if !journal.exists() {
                bail!(
                    "{}: not a run directory to resume (no journal.jsonl in it)",
                    dir.display()
                );
            }
            (dir.clone(), Ledger::read(&journal)?)
        }
        None => (
            RunDir::create(args.out.as_deref(), "import")?
                .path()
                .to_path_buf(),
            Ledger::default(),
        ),
    };

    // 1. Every row, validated, in file order.
    let reading = Progress::rows(quiet, "reading");
    let header_warnings = src.warnings().to_vec();
    for w in &header_warnings {
        eprintln!("warning: {w}");
    }
    let (mapped, read_error, reading) = tokio::task::spawn_blocking(move || {
        let mut it = pipeline::map_rows(src, resolved, &PipelineOptions::default());
        let rows: Vec<MappedRow> = it.by_ref().inspect(|_| reading.inc(1)).collect();
        (rows, it.finish().err(), reading)
    })
    .await
    .context("the reading task failed")?;
    reading.finish();
    let mut dupes = DupeTracker::new();
    let mut duplicate_of: Vec<Option<u64>> = vec![None; mapped.len()];
    let mut rows: Vec<Row> = Vec::new();
    for (idx, m) in mapped.iter().enumerate() {
        if let Mapped::Valid(draft) = &m.mapped {
            duplicate_of[idx] = dupes.check(m.line, draft).first().map(|d| d.first_line);
            rows.push(Row {
                idx,
                line: m.line,
                hash: row_hash(&m.fields),
                keys: lookup::match_keys(&match_keys, draft),
                draft: (**draft).clone(),
            });
        }
    }
    if read_error.is_some() {
        rows.clear(); // a file read only in part is not imported: no lookup, no writes
    }

    // 2. What the account already has.
    let client = Client::new(config.clone())?;
    let distinct: BTreeSet<Key> = rows.iter().flat_map(|r| r.keys.iter().cloned()).collect();
    let mut first_page = None;
    let (strategy, choice) = match args.lookup {
        Strategy::Auto if distinct.is_empty() => (Strategy::Index, None),
        Strategy::Auto => {
            let page = lookup::first_page(&client)
                .await
                .context("cannot reach the account")?;
            let total = lookup::total_of(&page);
            first_page = Some(page);
            let c = lookup::choose(
                distinct.len() as u64,
                total,
                config.rate.per_sec(),
                config.search_rate.per_sec(),
            );
            if !quiet {
                eprintln!("lookup: {}", c.reason);
            }
            (c.strategy, Some(c))
        }
        s => (s, None),
    };
    if let Some(c) = &choice {
        let body = serde_json::to_vec_pretty(c)?;
        std::fs::write(run_dir.join("lookup.json"), body)
            .with_context(|| format!("{}: cannot write lookup.json", run_dir.display()))?;
    }
    // Ctrl-C during the lookup ends the run at once: nothing was written yet.
    let lookup_done = async {
        if distinct.is_empty() {
            return Ok(Known::new());
        }
        match strategy {
            Strategy::Search => {
                let p = Progress::new(quiet, Some(distinct.len() as u64), "searching keys");
                let k = lookup::search_keys(&client, &distinct, args.concurrency, || p.inc(1))
                    .await
                    .context("cannot look the keys up")?;
                p.finish();
                Ok(k)
            }
            _ => {
                let p = Progress::rows(quiet, "listing contacts");
                let k = lookup::load_index(&client, first_page.take(), 4, || p.inc(1))
                    .await
                    .context("cannot list the account's contacts")?;
                p.finish();
                Ok::<Known, anyhow::Error>(k)
            }
        }
    };
    let (known, interrupted_in_lookup) = tokio::select! {
        k = lookup_done => (k?, false),
        () = wait_for(&interrupt) => (Known::new(), true),
    };

    // 3. The writes.
    let journal = if args.dry_run {
        None
    } else {
        Some(Journal::open(&run_dir.join("journal.jsonl"))?)
    };
    let groups = groups(&rows, &known);
    let invalid_count = mapped.iter().filter(|m| is_invalid(m)).count() as u64;
    let too_many_invalid = args.max_errors.is_some_and(|m| invalid_count > m);
    let engine = Engine::new(
        client.clone(),
        known,
        journal,
        ledger,
        EngineOptions {
            policy,
            dry_run: args.dry_run,
            // Invalid rows count towards --max-errors too.
            max_errors: args.max_errors.map(|m| m.saturating_sub(invalid_count)),
            interrupt: Arc::clone(&interrupt),
        },
    );
    let label = if args.dry_run {
        "planning"
    } else {
        "importing"
    };
    let writing = Progress::new(quiet, Some(rows.len() as u64), label);
    let mut results: Vec<Option<RowResult>> = vec![None; mapped.len()];
    if interrupted_in_lookup || too_many_invalid {
        // Interrupted, or too many invalid rows already: write nothing.
    } else {
        engine
            .run(&rows, groups, args.concurrency, |r| {
                writing.inc(1);
                let i = r.idx;
                results[i] = Some(r);
            })
            .await;
    }
    writing.finish();
    let stop = match read_error {
        Some(_) => Some(Stop::Fatal),
        None => engine
            .stopped()
            .or_else(|| too_many_invalid.then_some(Stop::MaxErrors)),
    };

    // 4. The reports, in file order.
    let mut summary = Summary::new("import", &args.file, &args.mapping, &ACTIONS);
    summary.run_dir = run_dir.display().to_string();
    summary.header_warnings = header_warnings;
    let mut failures = FailureWriter::create(&run_dir.join("failures.csv"), &headers)?;
    let mut results_csv = ResultsWriter::create(&run_dir.join("results.csv"))?;
    let mut plan = if args.dry_run {
        Some(std::io::BufWriter::new(
            std::fs::File::create(run_dir.join("plan.jsonl"))
                .with_context(|| format!("{}: cannot create plan.jsonl", run_dir.display()))?,
        ))
    } else {
        None
    };
    for (idx, m) in mapped.iter().enumerate() {
        let (outcome, contact_id, errors, key) = match &m.mapped {
            Mapped::Valid(draft) => {
                let Some(r) = &results[idx] else {
                    // Not started: the run stopped first. Not counted as read.
                    continue;
                };
                if let (Some(p), Some(line)) = (plan.as_mut(), &r.plan) {
                    serde_json::to_writer(&mut *p, line)?;
                    p.write_all(b"\n")?;
                }
                let key = lookup::match_keys(&match_keys, draft)
                    .first()
                    .or(lookup::all_keys(draft).first())
                    .map(Key::label);
                (r.outcome, r.contact_id, r.errors.as_slice(), key)
            }
            Mapped::Skipped(_) => (Outcome::Skipped, None, m.errors(), None),
            Mapped::Invalid(_) => (Outcome::Invalid, None, m.errors(), None),
        };
        let report = RowReport {
            line: m.line,
            fields: &m.fields,
            action: RowAction::Outcome(outcome),
            errors,
            contact_id,
            key: key.as_deref(),
            duplicate_of: duplicate_of[idx],
        };
        summary.count_row(&report);
        if outcome.is_failure() {
            failures.write(m.line, &m.fields, errors)?;
        }
        results_csv.write(&report)?;
    }
    failures.flush()?;
    results_csv.flush()?;
    if let Some(mut p) = plan {
        p.flush()?;
    }
    if args.dry_run {
        for (from, to) in [("created", "would_create"), ("updated", "would_update")] {
            let n = summary.outcomes.remove(from).unwrap_or(0);
            summary.outcomes.insert(to.into(), n);
        }
        summary.command = "import --dry-run".into();
    }
    let metrics = client.metrics();
    summary.requests = Some(RequestStats {
        by_kind: metrics
            .requests
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (k.to_string(), *n))
            .collect(),
        retries: metrics.retries,
        rate_limited: metrics.rate_limited,
    });
    // The file is named by the caller's message already.
    let fatal = read_error
        .as_ref()
        .map(|e| {
            let (unit, at, cause) = (e.unit, e.at, &e.cause);
            format!("reading failed at {unit} {at}: {cause}; nothing was imported")
        })
        .or_else(|| engine.fatal_message());
    summary.stopped = match stop {
        Some(Stop::Interrupted) => Some("interrupted".into()),
        Some(Stop::MaxErrors) => Some("max_errors".into()),
        Some(Stop::Fatal) if read_error.is_some() => Some("read_error".into()),
        Some(Stop::Fatal) => Some("fatal".into()),
        None => None,
    };
    summary.read_error = read_error.as_ref().map(ToString::to_string);
    let elapsed = started.elapsed().as_secs_f64();
    summary.elapsed_s = (elapsed * 1000.0).round() / 1000.0;
    summary.rows_per_s = if elapsed > 0.0 {
        (summary.rows_read as f64 / elapsed).round()
    } else {
        0.0
    };
    summary.finished_at =
        Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    write_summary(&run_dir, &summary)?;

    let mut text = summary.table();
    text.push_str(&format!(
        "  lookup: {}{}\n  requests: {} ({} retries, {} rate limited)\n",
        strategy_name(strategy),
        choice
            .as_ref()
            .map(|_| " (chosen by --lookup auto)")
            .unwrap_or(""),
        metrics.total_requests(),
        metrics.retries,
        metrics.rate_limited
    ));
    if args.dry_run {
        text.push_str(&format!(
            "  plan: {}\n",
            run_dir.join("plan.jsonl").display()
        ));
    }
    if !quiet {
        eprint!("{text}");
    }
    let exit_code = match stop {
        Some(Stop::Interrupted) => exit::INTERRUPTED,
        Some(_) => exit::FATAL,
        None if summary.failures() > 0 => exit::ROWS_FAILED,
        None => exit::OK,
    };
    let fatal = match stop {
        Some(Stop::Fatal) => fatal.or(Some("the run stopped".into())),
        Some(Stop::MaxErrors) => Some(format!(
            "stopped after {} failed or invalid rows (--max-errors)",
            summary.failures()
        )),
        _ => None,
    };
    Ok(ImportRun {
        exit_code,
        run_dir,
        summary,
        lookup: strategy,
        choice,
        fatal,
    })
}

/// Resolves once `flag` is set (polled: the flag is set from a signal handler task).
async fn wait_for(flag: &AtomicBool) {
    while !flag.load(Ordering::Relaxed) {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn is_invalid(m: &MappedRow) -> bool {
    matches!(m.mapped, Mapped::Invalid(_))
}

fn strategy_name(s: Strategy) -> &'static str {
    match s {
        Strategy::Auto => "auto",
        Strategy::Index => "index",
        Strategy::Search => "search",
    }
}

/// `summary.json`, written to a temporary name and renamed.
fn write_summary(dir: &Path, s: &Summary) -> Result<()> {
    let tmp = dir.join(".summary.json.tmp");
    let mut body = serde_json::to_vec_pretty(s)?;
    body.push(b'\n');
    std::fs::write(&tmp, body).with_context(|| format!("{}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, dir.join("summary.json"))
        .with_context(|| format!("{}: cannot write summary.json", dir.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_per_second_and_per_minute() {
        assert_eq!(parse_rate("50").unwrap(), RateLimit::per_second(50));
        assert_eq!(parse_rate("50/s").unwrap(), RateLimit::per_second(50));
        assert_eq!(parse_rate("3000/min").unwrap(), RateLimit::per_minute(3000));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("5/h").is_err());
        assert!(parse_rate("fast").is_err());
    }
}
