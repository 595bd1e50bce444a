//! `doto-bulk validate FILE -m MAPPING`: offline read, map, normalise, check; writes the run
//! directory (`failures.csv`, `results.csv`, `summary.json`) and prints the summary table.
//!
//! Orchestration only: the rows come from [`pipeline::map_rows_with`] (reader thread → mapping
//! workers → file order), this loop owns the side effects: the in-file duplicate tracker, the
//! reports, the progress bar and the counters. Exit 0 when no row is invalid, 3 when some are,
//! 1 when the run cannot start (bad mapping, unreadable file) or `--max-errors` is reached.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};

use crate::cli::GlobalArgs;
use crate::exit;
use crate::mapping::{Mapping, MatchKey, Resolved};
use crate::model::{ContactDraft, Outcome, RowError};
use crate::pipeline::dupes::{DupeTracker, KeyPrints};
use crate::pipeline::{self, Mapped, MappedRow, PipelineOptions, map_one};
use crate::progress::Progress;
use crate::report::{Reports, RowAction, RowReport, RunDir, Summary};
use crate::source;

/// Check a file against a mapping without touching any account.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The CSV or XLSX file to check.
    pub file: PathBuf,
    /// The mapping file (YAML).
    #[arg(short, long, value_name = "MAPPING")]
    pub mapping: PathBuf,
    /// Run directory for the reports (default: doto-runs/<UTC time>-validate/). It must not exist
    /// or be empty: a run never overwrites another run's reports.
    #[arg(long, value_name = "RUN_DIR")]
    pub out: Option<PathBuf>,
    /// Stop with exit code 1 once more than this many rows are invalid (the reports so far are
    /// kept).
    #[arg(long, value_name = "N")]
    pub max_errors: Option<u64>,
    /// Mapping threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
}

impl Args {
    /// Arguments for `validate FILE -m MAPPING --out RUN_DIR` (for callers other than clap).
    pub fn new(file: &Path, mapping: &Path, out: Option<&Path>) -> Args {
        Args {
            file: file.to_path_buf(),
            mapping: mapping.to_path_buf(),
            out: out.map(Path::to_path_buf),
            max_errors: None,
            workers: None,
        }
    }
}

/// The end of a validate run.
#[derive(Debug, Clone)]
pub struct Validation {
    pub exit_code: u8,
    pub run_dir: PathBuf,
    pub summary: Summary,
}

/// The rows `validate` can end in.
pub const ACTIONS: [RowAction; 3] = [
    RowAction::Valid,
    RowAction::Outcome(Outcome::Invalid),
    RowAction::Outcome(Outcome::Skipped),
];

pub async fn run(args: Args, global: &GlobalArgs) -> Result<u8> {
    let quiet = global.quiet;
    // Ctrl-C stops reading; the rows done so far are reported and flushed, then exit 130.
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    let watcher = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::Relaxed);
        }
    });
    let v = tokio::task::spawn_blocking(move || run_validate(&args, quiet, &interrupted))
        .await
        .context("the validate task failed")??;
    watcher.abort();
    if let Some(e) = &v.summary.read_error {
        anyhow::bail!("{e}; reports so far in {}", v.run_dir.display());
    }
    if v.summary.stopped.as_deref() == Some("max_errors") {
        anyhow::bail!(
            "{}: stopped after {} invalid rows (--max-errors); reports so far in {}",
            v.summary.file,
            v.summary.failures(),
            v.run_dir.display()
        );
    }
    Ok(v.exit_code)
}

/// The match key a row goes by in the reports: the first of the mapping's keys it has.
fn row_key(keys: &[MatchKey], draft: &ContactDraft) -> Option<String> {
    keys.iter().find_map(|k| match k {
        MatchKey::Email => draft
            .email
            .as_ref()
            .map(|e| format!("email:{}", e.as_str())),
        MatchKey::Identifier => draft
            .identifier
            .as_ref()
            .map(|i| format!("identifier:{}", i.as_str())),
    })
}

/// What the ordered loop needs of one row.
struct Checked {
    line: u64,
    /// The fields as read for an invalid row (failures.csv); empty otherwise.
    fields: Vec<String>,
    action: RowAction,
    errors: Vec<RowError>,
    key: Option<String>,
    prints: KeyPrints,
}

fn check_row(row: MappedRow, keys: &[MatchKey]) -> Checked {
    let (action, errors, key, prints, fields) = match row.mapped {
        Mapped::Valid(draft) => (
            RowAction::Valid,
            Vec::new(),
            row_key(keys, &draft),
            KeyPrints::of(&draft),
            Vec::new(),
        ),
        Mapped::Skipped(e) => (
            RowAction::Outcome(Outcome::Skipped),
            vec![e],
            None,
            KeyPrints::default(),
            Vec::new(),
        ),
        Mapped::Invalid(errs) => (
            RowAction::Outcome(Outcome::Invalid),
            errs,
            None,
            KeyPrints::default(),
            row.fields,
        ),
    };
    Checked {
        line: row.line,
        fields,
        action,
        errors,
        key,
        prints,
    }
}

/// A data file opened with its mapping, resolved before the first row: what `validate` and
/// `import` both start from.
pub struct Input {
    pub mapping: Mapping,
    pub source: Box<dyn source::Source>,
    pub headers: Vec<String>,
    pub resolved: Resolved,
    /// The mapping's match keys (identifier, then email, when it names none).
    pub keys: Vec<MatchKey>,
}

impl Input {
    /// Load the mapping, open the file with its source options and resolve the mapping against
    /// the headers; every failure names the file or the mapping.
    pub fn open(file: &Path, mapping_path: &Path) -> Result<Input> {
        let mapping = Mapping::load(mapping_path)?;
        let source = source::open(file, &mapping.source_options())
            .with_context(|| format!("cannot read {}", file.display()))?;
        let headers = source.headers().to_vec();
        let resolved = mapping.resolve(&headers).with_context(|| {
            format!(
                "mapping {} does not fit {}",
                mapping_path.display(),
                file.display()
            )
        })?;
        let mut keys = mapping.match_keys().to_vec();
        if keys.is_empty() {
            keys = vec![MatchKey::Identifier, MatchKey::Email];
        }
        Ok(Input {
            mapping,
            source,
            headers,
            resolved,
            keys,
        })
    }
}

/// Run `validate` to the end (or until `interrupt` is set): the library entry the command and
/// the tests call. Fatal problems (mapping, file, run directory) are errors naming the file.
pub fn run_validate(args: &Args, quiet: bool, interrupt: &AtomicBool) -> Result<Validation> {
    validate_input(
        args,
        Input::open(&args.file, &args.mapping)?,
        quiet,
        interrupt,
    )
}

/// [`run_validate`] on an input already opened (`args.file` and `args.mapping` only name it).
pub fn validate_input(
    args: &Args,
    input: Input,
    quiet: bool,
    interrupt: &AtomicBool,
) -> Result<Validation> {
    let Input {
        source: src,
        headers,
        resolved,
        keys,
        ..
    } = input;

    let dir = RunDir::create(args.out.as_deref(), "validate")?;
    let run_dir = dir.path().to_path_buf();
    let mut summary = Summary::new("validate", &args.file, &args.mapping, &ACTIONS);
    summary.header_warnings = src.warnings().to_vec();
    for w in &summary.header_warnings {
        eprintln!("warning: {w}");
    }
    let mut reports = Reports::create(dir, &headers, summary)?;
    let progress = Progress::rows(quiet, "validating");

    let mut opts = PipelineOptions::default();
    if let Some(w) = args.workers {
        opts.workers = w.max(1);
    }
    let mut dupes = DupeTracker::new();
    let mut invalid = 0u64;
    let mut since_tick = 0u64;
    // On the mapping threads: map, then keep only what the reports need (the draft and a valid
    // row's fields are dropped there, in parallel, not in this ordered loop).
    let work = move |item| check_row(map_one(&resolved, item), &keys);
    let mut rows = pipeline::map_rows_with(src, work, &opts);
    for row in rows.by_ref() {
        let duplicate_of = dupes
            .check_prints(row.line, &row.prints)
            .first()
            .map(|d| d.first_line);
        let action = row.action;
        reports.row(&RowReport {
            line: row.line,
            fields: &row.fields,
            action,
            errors: &row.errors,
            contact_id: None,
            key: row.key.as_deref(),
            duplicate_of,
        })?;
        since_tick += 1;
        if since_tick == 256 {
            progress.inc(since_tick);
            since_tick = 0;
        }
        if action.is_failure() {
            invalid += 1;
            if args.max_errors.is_some_and(|max| invalid > max) {
                reports.summary_mut().stopped = Some("max_errors".into());
                break;
            }
        }
        if interrupt.load(Ordering::Relaxed) {
            reports.summary_mut().stopped = Some("interrupted".into());
            break;
        }
    }
    progress.inc(since_tick);
    if let Err(e) = rows.finish() {
        let s = reports.summary_mut();
        s.stopped = Some("read_error".into());
        s.read_error = Some(e.to_string());
    }
    let summary = reports.finish()?;
    progress.print_summary(&summary.table());
    let exit_code = match summary.stopped.as_deref() {
        Some("interrupted") => exit::INTERRUPTED,
        Some(_) => exit::FATAL,
        None if summary.failures() > 0 => exit::ROWS_FAILED,
        None => exit::OK,
    };
    Ok(Validation {
        exit_code,
        run_dir,
        summary,
    })
}
