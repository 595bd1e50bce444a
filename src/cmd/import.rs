//! `doto-bulk import FILE -m MAPPING`: validate every row, look the keys up in the account, then
//! create / update / leave each contact, exactly once, with a journal that `--resume` continues.
//!
//! Orchestration only. The phases and who does them:
//! 1. read → map → normalise → in-file duplicates: [`scan_rows`], in file order, keeping a few
//!    bytes per row (the rows are read again for the writes: [`Feed`], checked against it);
//! 2. lookup: [`look_up_counted`] (`index`, `search`, or `auto` choosing the cheaper and saying
//!    why);
//! 3. writes: [`Writes`] around [`Engine`](crate::pipeline::engine::Engine) (chaining by key,
//!    decisions from [`plan`](crate::pipeline::plan), concurrent writes through one client,
//!    journal, notes, outcome-unknown handling);
//! 4. reports: [`ImportReports`] writes `failures.csv`, `results.csv`, `plan.jsonl` (dry run)
//!    in file order as the rows finish, then `summary.json`; `lookup.json` says what
//!    `--lookup auto` chose and why.
//!
//! The run directory is bound to the run ([`rundir`](crate::pipeline::rundir)): `run.json` says
//! which server, account, file and mapping it is about, `--resume` refuses anything else and
//! checks that the journal's contacts exist before continuing, and `run.lock` keeps a second
//! process out. A fresh run that fails before any result leaves no directory behind.
//!
//! Exit codes: 0 every row created / updated / unchanged / skipped; 3 some rows failed or were
//! invalid; 1 the run could not start or stopped (token refused, `--max-errors`); 130 Ctrl-C
//! (in-flight writes finish, the reports and the journal are flushed).
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};

use crate::api::{Client, ClientConfig, Concurrency, RateLimit};
use crate::cli::GlobalArgs;
use crate::cmd::connect::ConnectArgs;
use crate::cmd::connect::SandboxArgs;
use crate::cmd::emit::{declined, resume_hint};
use crate::cmd::{connected, end_run, enum_parser, interrupted};
use crate::confirm;
use crate::confirm::{Answer, Ask, Declined};
use crate::exit::{self, Stop};
use crate::mapping::MatchKey;
use crate::pipeline::engine::EngineOptions;
use crate::pipeline::import::{
    ACTIONS, Feed, ImportReports, Scan, Writes, collect_keys, end_text, request_stats, scan_rows,
    valid_rows,
};
use crate::pipeline::input::Input;
use crate::pipeline::journal::Ledger;
use crate::pipeline::lookup::{Choice, Key, Known, Lookup, Strategy, look_up_counted};
use crate::pipeline::plan::{Mode, Policy};
use crate::pipeline::rundir::{RunRecord, check_done_contacts};
use crate::progress::Progress;
use crate::report::{Resumed, RunDir, Summary, write_json_atomic};

/// `--mode`'s values.
const MODES: [(Mode, &str, &str); 3] = [
    (
        Mode::Upsert,
        "upsert",
        "Create the missing, update the existing (per the mapping's policies)",
    ),
    (
        Mode::CreateOnly,
        "create-only",
        "Only create; rows whose contact exists are skipped",
    ),
    (
        Mode::UpdateOnly,
        "update-only",
        "Only update; rows whose contact is missing are skipped",
    ),
];

fn lookup_parser() -> impl clap::builder::TypedValueParser<Value = Strategy> {
    enum_parser(Strategy::ALL.map(|s| (s, s.as_str(), s.about())).to_vec())
}

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
    /// With --resume: accept the run's file under another path (same content) and its server
    /// under another base URL (same account id). A different account, file content or mapping
    /// is never accepted.
    #[arg(long, requires = "resume")]
    pub force: bool,
    /// With --resume: check that every contact the journal says was created or updated exists
    /// on the server (by default a sample of 20, evenly spread).
    #[arg(long, requires = "resume")]
    pub verify: bool,
    /// Which writes are allowed.
    #[arg(long, value_parser = enum_parser(MODES.to_vec()), default_value = "upsert")]
    pub mode: Mode,
    /// Writes in flight at once: `auto` (default) adapts it so that the rate limit binds rather
    /// than latency, backing off when the server slows down or fails; a number fixes it (rows
    /// sharing a key or a phone always wait for each other; rows waiting for a search do not hold
    /// one of these slots).
    #[arg(long, value_name = "N|auto", default_value = "auto")]
    pub concurrency: Concurrency,
    /// The most --concurrency auto grows to.
    #[arg(long, value_name = "N", default_value_t = crate::api::adaptive::DEFAULT_MAX, value_parser = crate::cmd::at_least_one)]
    pub max_concurrency: usize,
    /// Most requests sent, all together: `50` or `50/s` per second, `3000/min` per minute,
    /// `100000/h` per hour (default 3000/min). The unit is also the length of the server's
    /// rate-limit windows unless --rate-window says otherwise.
    #[arg(long, value_name = "RATE")]
    pub rate: Option<RateLimit>,
    /// Length of the server's rate-limit windows (`1s`, `10s`, `1m`), when it is not the unit of
    /// --rate. The client also learns it from when requests are admitted again after a 429.
    #[arg(long, value_name = "DURATION", value_parser = crate::cmd::sandbox::parse_duration)]
    pub rate_window: Option<std::time::Duration>,
    /// Most searches sent (the server limits them per account): like --rate (default 100/min).
    #[arg(long, value_name = "RATE")]
    pub search_rate: Option<RateLimit>,
    /// Retries of one request after a server or connection error (default 5).
    #[arg(long, value_name = "N")]
    pub max_retries: Option<u32>,
    /// Stop (exit 1) once more than this many rows failed or were invalid.
    #[arg(long, value_name = "N")]
    pub max_errors: Option<u64>,
    /// How existing contacts are found: page through all of them once (index), search each key
    /// (search), or pick the cheaper (auto).
    #[arg(long, value_parser = lookup_parser(), default_value = "auto")]
    pub lookup: Strategy,
    /// Run directory for the reports and the journal (default: doto-runs/<UTC time>-import/).
    #[arg(long, value_name = "RUN_DIR")]
    pub out: Option<PathBuf>,
    /// Default region for phone numbers written without +country code (an ISO code such as GB,
    /// or an English name); overrides the mapping's `defaults.phone_region`.
    #[arg(long, value_name = "CC", value_parser = crate::cli::parse_phone_region)]
    pub phone_region: Option<crate::normalise::Region>,
    /// A CSV field or XLSX cell longer than this makes its row invalid (`field_too_large`)
    /// (default 1048576: 1 MiB).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(64..))]
    pub max_field_bytes: Option<u64>,
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
    /// `import FILE -m MAPPING` with every default (for callers other than clap).
    pub fn new(file: &Path, mapping: &Path) -> Args {
        Args {
            file: file.to_path_buf(),
            mapping: mapping.to_path_buf(),
            dry_run: false,
            resume: None,
            force: false,
            verify: false,
            mode: Mode::Upsert,
            concurrency: Concurrency::Auto,
            max_concurrency: crate::api::adaptive::DEFAULT_MAX,
            rate: None,
            rate_window: None,
            search_rate: None,
            max_retries: None,
            max_errors: None,
            lookup: Strategy::Auto,
            out: None,
            phone_region: None,
            max_field_bytes: None,
            sandbox: SandboxArgs::default(),
            connection: ConnectArgs::default(),
            ask: Ask::Never,
        }
    }
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
    /// What to tell the user of an early stop (`--max-errors`, a fatal error), if any.
    pub fatal: Option<String>,
}

pub async fn run(mut args: Args, global: &GlobalArgs) -> Result<u8> {
    let settings = args.connection.resolve(args.sandbox.sandbox)?;
    args.rate = args.rate.or(settings.rate);
    args.search_rate = args.search_rate.or(settings.search_rate);
    args.phone_region = args.phone_region.or(settings.phone_region);
    if !args.sandbox.sandbox && !args.dry_run {
        args.ask = Ask::Real { yes: settings.yes };
    }
    let import = |config, ctrl_c| run_import(&args, config, global.quiet, ctrl_c);
    let r = match connected(&settings, &args.sandbox, global, "importing into", import).await {
        Err(e) if e.is::<Declined>() => return Ok(declined(global)),
        r => r?,
    };
    let s = &r.summary;
    if !args.dry_run {
        resume_hint(
            s.stopped.as_ref(),
            &r.run_dir,
            args.sandbox.sandbox_save.as_deref(),
        );
    }
    end_run(
        global,
        s.stopped.as_ref(),
        s.failures(),
        &s.file,
        &r.run_dir,
    )
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
    config.set_rate(args.rate, args.rate_window);
    config.search_rate = args.search_rate.unwrap_or(config.search_rate);
    config.max_retries = args.max_retries.unwrap_or(config.max_retries);
    (config.concurrency, config.max_concurrency) = (args.concurrency, args.max_concurrency);
    let limit = args.max_field_bytes.map(|n| n as usize);
    let input = Input::open_with(&args.file, &args.mapping, args.phone_region, limit)?;
    let record = RunRecord::new("import", &config)
        .reading(&args.file, Some(&args.mapping))?
        .with_phone_region(args.phone_region.as_ref().map(|r| r.as_str()));
    let client = Client::new(config)?;
    let (dir, ledger) = open_run(args, &record, &client, quiet).await?;
    let result = import_into(args, input, dir.clone(), ledger, client, quiet, interrupt).await;
    if let Ok(r) = &result {
        let at = r
            .summary
            .finished_at
            .clone()
            .unwrap_or_else(crate::report::now);
        RunRecord::ended(dir.path(), &at, r.exit_code)?;
    }
    // A fresh run that failed before its first write leaves no empty run directory behind.
    if result.is_err() && args.resume.is_none() && dir.discard_if_unused() && !quiet {
        eprintln!(
            "the run failed before writing anything; {} was removed",
            dir.path().display()
        );
    }
    result
}

/// The phases of an import, in the run directory `dir` (locked, bound to the run).
async fn import_into(
    args: &Args,
    input: Input,
    dir: RunDir,
    ledger: Ledger,
    client: Client,
    quiet: bool,
    interrupt: Arc<AtomicBool>,
) -> Result<ImportRun> {
    let run_dir = dir.path().to_path_buf();
    let mut summary = Summary::new("import", &args.file, &args.mapping, &ACTIONS);
    summary.header_warnings = input.header_warnings();
    if args.resume.is_some() {
        let mut r = Resumed::after(ledger.done_outcomes());
        r.invocation = RunRecord::read(&run_dir)?.map(|rec| rec.resumes.len() + 1);
        summary.resumed = Some(r);
    }
    let mut out = ImportReports::create(dir, &input.headers, summary, args.dry_run)?;
    let policy = Policy {
        existing: input.mapping.existing_policy(),
        missing: input.mapping.missing_policy(),
        mode: args.mode,
        identity: input.mapping.identity_policy(),
    };
    let first = FirstRead::of(args, &input)?;
    let mut scan = read(input, quiet).await?;
    if let Some(e) = scan.read_error.take() {
        // Nothing of a file read only in part is imported: its rows are reported, the run ends.
        out.read_failed(&e);
        let mut feed = first.feed(scan)?;
        out.drain(&mut feed).await?;
        let why = format!("{}; nothing was imported", e.where_and_why());
        let summary = out.finish(Some(Stop::ReadError(why)), request_stats(&client.metrics()))?;
        return Ok(ended(summary, run_dir, args.lookup, None));
    }
    // Ctrl-C, or a server that stopped answering, during the lookup ends the run at once:
    // nothing was written yet.
    let kept = scan.keys.take();
    let keys = || match kept {
        Some(k) => Ok(Cow::Owned(k)),
        None => first.keys().map(Cow::Owned),
    };
    let counted = (scan.key_count, keys);
    let lookup = tokio::select! {
        l = look_up_counted(&client, args.lookup, counted, args.concurrency.initial(), quiet) => {
            match (l, client.unreachable()) {
                (Ok(l), _) => Ok(l),
                (Err(_), Some(m)) => Err(Stop::Unreachable(m)),
                (Err(e), None) => return Err(e),
            }
        }
        () = interrupted(&interrupt) => Err(Stop::Interrupted),
    };
    let (strategy, choice) = match &lookup {
        Ok(l) => (l.strategy, l.choice.clone()),
        Err(_) => (args.lookup, None),
    };
    if let Some(c) = &choice {
        write_json_atomic(&run_dir, "lookup.json", c)?;
    }
    let counts = (scan.valid, scan.invalid);
    let mut feed = first.feed(scan)?;
    let stop = match lookup {
        Ok(Lookup { known, .. }) => {
            ask(args, &client, &first, counts.1, &known, (strategy, policy)).await?;
            let opts = EngineOptions {
                policy,
                dry_run: args.dry_run,
                max_errors: args.max_errors,
                interrupt,
                concurrency: args.concurrency.initial(),
            };
            let writes = Writes {
                known,
                ledger,
                opts,
                quiet,
            };
            writes.run(&client, counts, feed, &mut out).await?
        }
        Err(stop) => Some(out.drain(&mut feed).await?.unwrap_or(stop)),
    };
    let metrics = client.metrics();
    let summary = out.finish(stop, request_stats(&metrics))?;
    if !quiet {
        eprint!(
            "{}",
            end_text(&summary, strategy, choice.is_some(), &metrics, args.dry_run)
        );
    }
    if args.dry_run {
        crate::pipeline::plan_review::after_dry_run(&summary, quiet)?;
    }
    Ok(ended(summary, run_dir, strategy, choice))
}

/// Show the target and the plan, and ask (per `args.ask`) before the first write.
async fn ask(
    args: &Args,
    client: &Client,
    first: &FirstRead<'_>,
    invalid: u64,
    known: &Known,
    (strategy, policy): (Strategy, Policy),
) -> Result<()> {
    if args.ask == Ask::Never {
        return Ok(());
    }
    let listed = (strategy == Strategy::Index).then(|| known.len());
    let target = confirm::target_of(client, confirm::account_total(client, listed).await);
    // The rows read once more (none kept), decided against a copy of the lookup's contacts.
    let input = first.reopen()?;
    let keys = first.match_keys.clone();
    let known = known.clone();
    let plan = tokio::task::spawn_blocking(move || {
        let rows = valid_rows(input.source, input.resolved, &keys);
        confirm::import_plan(rows, invalid, &known, policy)
    })
    .await?;
    match confirm::confirm(args.ask, &confirm::lines("importing into", &target, &plan)) {
        Answer::Proceed => Ok(()),
        Answer::Declined => Err(Declined.into()),
    }
}

/// The end of an import, from its summary.
fn ended(
    summary: Summary,
    run_dir: PathBuf,
    lookup: Strategy,
    choice: Option<Choice>,
) -> ImportRun {
    let stop = summary.stopped.as_ref();
    ImportRun {
        exit_code: exit::code(stop, summary.failures()),
        fatal: stop.and_then(|s| s.message(summary.failures())),
        run_dir,
        summary,
        lookup,
        choice,
    }
}

/// The run directory, locked: a fresh one bound to `record` (its `run.json`), or (`--resume`)
/// the interrupted run's, whose journal is continued once `record` matches the run's and the
/// contacts its journal wrote are found on the server. A refused resume changes nothing in it.
async fn open_run(
    args: &Args,
    record: &RunRecord,
    client: &Client,
    quiet: bool,
) -> Result<(RunDir, Ledger)> {
    let Some(d) = &args.resume else {
        let dir = RunDir::create(args.out.as_deref(), "import")?;
        if let Err(e) = record.write(dir.path()) {
            dir.discard_if_unused();
            return Err(e);
        }
        return Ok((dir, Ledger::default()));
    };
    record.check_resume(d, args.force)?;
    let dir = RunDir::resume(d, "a run")?;
    if let Some(pid) = dir.took_over()
        && !quiet
    {
        eprintln!(
            "note: {}: the lock of process {pid}, which is no longer running, was taken over",
            d.display()
        );
    }
    let ledger = Ledger::read(&d.join("journal.jsonl"))?;
    let checked = check_done_contacts(client, d, args.verify, args.concurrency.initial()).await?;
    record.resume(d)?;
    if !quiet && checked > 0 {
        eprintln!(
            "resuming: the {} checked {} on the server",
            crate::words::count(checked as u64, "journaled contact"),
            crate::words::agree(checked as u64, "exists", "exist")
        );
    }
    Ok((dir, ledger))
}

/// What the second pass (and a search of more keys than the first pass kept) checks the file
/// against: its size and modification time, and its headers, when it was first read.
struct FirstRead<'a> {
    args: &'a Args,
    stamp: (u64, Option<std::time::SystemTime>),
    headers: Vec<String>,
    match_keys: Vec<MatchKey>,
}

impl FirstRead<'_> {
    fn of<'a>(args: &'a Args, input: &Input) -> Result<FirstRead<'a>> {
        Ok(FirstRead {
            args,
            stamp: stamp(&args.file)?,
            headers: input.headers.clone(),
            match_keys: input.match_keys().to_vec(),
        })
    }

    /// The file opened again with its mapping; an error when it changed since the first read.
    fn reopen(&self) -> Result<Input> {
        let a = self.args;
        let limit = a.max_field_bytes.map(|n| n as usize);
        let changed = || {
            anyhow::anyhow!(
                "{} changed since it was read (size, modification time or headers): nothing was \
                 imported; run the import again once it no longer changes",
                a.file.display()
            )
        };
        if stamp(&a.file)? != self.stamp {
            return Err(changed());
        }
        let input = Input::open_with(&a.file, &a.mapping, a.phone_region, limit)?;
        if input.headers != self.headers {
            return Err(changed());
        }
        Ok(input)
    }

    /// Pass 2: the rows read again, checked against `scan`.
    fn feed(&self, scan: Scan) -> Result<Feed> {
        let input = self.reopen()?;
        let keys = &self.match_keys;
        Ok(Feed::start(input.source, input.resolved, keys, scan))
    }

    /// The distinct match keys, read again (more than the first pass keeps).
    fn keys(&self) -> Result<BTreeSet<Key>> {
        let input = self.reopen()?;
        Ok(collect_keys(input.source, input.resolved, &self.match_keys))
    }
}

/// A file's size and modification time.
fn stamp(file: &Path) -> Result<(u64, Option<std::time::SystemTime>)> {
    let m = std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok((m.len(), m.modified().ok()))
}

/// Stage 1 off the async threads, with a progress counter.
async fn read(input: Input, quiet: bool) -> Result<Scan> {
    let keys = input.match_keys().to_vec();
    let Input {
        source, resolved, ..
    } = input;
    tokio::task::spawn_blocking(move || {
        let reading = Progress::rows(quiet, "reading");
        scan_rows(source, resolved, &keys, || reading.inc(1))
    })
    .await
    .context("the reading task failed")
}
