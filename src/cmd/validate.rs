//! `doto-bulk validate FILE -m MAPPING`: offline read, map, normalise, check; writes the run
//! directory (`failures.csv`, `results.csv`, `summary.json`) and prints the summary table.
//!
//! Orchestration only: the rows come from [`pipeline::map_rows_with`] (reader thread → mapping
//! workers → file order), this loop owns the side effects: the in-file duplicate tracker, the
//! reports, the progress bar and the counters. Exit 0 when no row is invalid, 3 when some are,
//! 1 when the run cannot start (bad mapping, unreadable file) or `--max-errors` is reached.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};

use crate::cli::GlobalArgs;
use crate::cmd::{CtrlC, end_run};
use crate::exit::{self, Stop};
use crate::mapping::{ContactDraft, MatchKey};
use crate::model::{Outcome, RowError, RowWarning};
use crate::normalise::Region;
use crate::pipeline::dupes::{DupeTracker, KeyPrints};
use crate::pipeline::input::Input;
use crate::pipeline::lookup::{self, Key};
use crate::pipeline::{self, Mapped, MappedRow, PipelineOptions, map_one};
use crate::progress::Progress;
use crate::report::{Reports, RowAction, RowReport, RunDir, Summary};

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
    /// Default region for phone numbers written without +country code (an ISO code such as GB,
    /// or an English name); overrides the mapping's `defaults.phone_region`.
    #[arg(long, value_name = "CC", value_parser = crate::cli::parse_phone_region)]
    pub phone_region: Option<crate::normalise::Region>,
    /// A CSV field or XLSX cell longer than this makes its row invalid (`field_too_large`)
    /// (default 1048576: 1 MiB).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(64..))]
    pub max_field_bytes: Option<u64>,
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
            phone_region: None,
            max_field_bytes: None,
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
    let ctrl_c = CtrlC::watch();
    let interrupt = ctrl_c.flag();
    let v = tokio::task::spawn_blocking(move || run_validate(&args, quiet, &interrupt))
        .await
        .context("the validate task failed")??;
    let s = &v.summary;
    end_run(
        global,
        s.stopped.as_ref(),
        s.failures(),
        &s.file,
        &v.run_dir,
    )
}

/// The match key a row goes by in the reports: the first of the mapping's keys it has.
fn row_key(keys: &[MatchKey], draft: &ContactDraft) -> Option<String> {
    lookup::match_keys(keys, draft).first().map(Key::label)
}

/// What the ordered loop needs of one row.
struct Checked {
    line: u64,
    /// The fields as read for an invalid row or one with warnings (failures.csv,
    /// warnings.csv); empty otherwise.
    fields: Vec<String>,
    action: RowAction,
    errors: Vec<RowError>,
    warnings: Vec<RowWarning>,
    read_as: Option<Region>,
    key: Option<String>,
    prints: KeyPrints,
}

fn check_row(row: MappedRow, keys: &[MatchKey]) -> Checked {
    let mut c = Checked {
        line: row.line,
        fields: Vec::new(),
        action: RowAction::Valid,
        errors: Vec::new(),
        warnings: Vec::new(),
        read_as: None,
        key: None,
        prints: KeyPrints::default(),
    };
    match row.mapped {
        Mapped::Valid(mut draft) => {
            c.key = row_key(keys, &draft);
            c.prints = KeyPrints::of(&draft);
            c.read_as = draft.phone_read_as;
            c.warnings = std::mem::take(&mut draft.warnings);
            if !c.warnings.is_empty() {
                c.fields = row.fields;
            }
        }
        Mapped::Skipped(e) => {
            c.action = RowAction::Outcome(Outcome::Skipped);
            c.errors = vec![e];
        }
        Mapped::Invalid(errs) => {
            c.action = RowAction::Outcome(Outcome::Invalid);
            c.errors = errs;
            c.fields = row.fields;
        }
    }
    c
}

/// Run `validate` to the end (or until `interrupt` is set): the library entry the command and
/// the tests call. Fatal problems (mapping, file, run directory) are errors naming the file.
pub fn run_validate(args: &Args, quiet: bool, interrupt: &AtomicBool) -> Result<Validation> {
    let limit = args.max_field_bytes.map(|n| n as usize);
    let input = Input::open_with(&args.file, &args.mapping, args.phone_region, limit)?;
    validate_input(args, input, quiet, interrupt)
}

/// [`run_validate`] on an input already opened (`args.file` and `args.mapping` only name it).
pub fn validate_input(
    args: &Args,
    input: Input,
    quiet: bool,
    interrupt: &AtomicBool,
) -> Result<Validation> {
    let keys = input.match_keys().to_vec();
    let header_warnings = input.header_warnings();
    let Input {
        source,
        headers,
        resolved,
        ..
    } = input;
    let dir = RunDir::create(args.out.as_deref(), "validate")?;
    let run_dir = dir.path().to_path_buf();
    let mut summary = Summary::new("validate", &args.file, &args.mapping, &ACTIONS);
    summary.header_warnings = header_warnings;
    let mut reports = Reports::create(dir, &headers, summary)?;
    let progress = Progress::rows(quiet, "validating");

    let mut opts = PipelineOptions::default();
    if let Some(w) = args.workers {
        opts.workers = w.max(1);
    }
    // On the mapping threads: map, then keep only what the reports need (the draft and a valid
    // row's fields are dropped there, in parallel, not in this ordered loop).
    let work = move |item| check_row(map_one(&resolved, item), &keys);
    let mut rows = pipeline::map_rows_with(source, work, &opts);
    let mut stop = report_rows(
        rows.by_ref(),
        &mut reports,
        args.max_errors,
        interrupt,
        &progress,
    )?;
    if stop.is_none()
        && let Err(e) = rows.finish()
    {
        // A file read only in part: the rows before the error are reported, then exit 1.
        let why = format!(
            "{} (the rows before were read, none after)",
            e.where_and_why()
        );
        reports.summary_mut().read_error = Some(e.to_string());
        stop = Some(Stop::ReadError(why));
    }
    let summary = reports.finish(stop)?;
    progress.print_summary(&summary.table());
    Ok(Validation {
        exit_code: exit::code(summary.stopped.as_ref(), summary.failures()),
        run_dir,
        summary,
    })
}

/// The ordered loop: every checked row to the reports, in file order, until the end, Ctrl-C or
/// `--max-errors`; returns why it stopped early.
fn report_rows(
    rows: impl Iterator<Item = Checked>,
    reports: &mut Reports,
    max_errors: Option<u64>,
    interrupt: &AtomicBool,
    progress: &Progress,
) -> Result<Option<Stop>> {
    let mut dupes = DupeTracker::new();
    let mut invalid = 0u64;
    let mut since_tick = 0u64;
    let mut stop = None;
    for row in rows {
        let duplicate_of = dupes
            .check_prints(row.line, &row.prints)
            .first()
            .map(|d| d.first_line);
        reports.row(&RowReport {
            line: row.line,
            fields: &row.fields,
            action: row.action,
            errors: &row.errors,
            contact_id: None,
            key: row.key.as_deref(),
            duplicate_of,
            warnings: &row.warnings,
            read_as: row.read_as,
        })?;
        since_tick += 1;
        if since_tick == 256 {
            progress.inc(since_tick);
            since_tick = 0;
        }
        if row.action.is_failure() {
            invalid += 1;
            if max_errors.is_some_and(|max| invalid > max) {
                stop = Some(Stop::MaxErrors);
                break;
            }
        }
        if interrupt.load(Ordering::Relaxed) {
            stop = Some(Stop::Interrupted);
            break;
        }
    }
    progress.inc(since_tick);
    Ok(stop)
}
