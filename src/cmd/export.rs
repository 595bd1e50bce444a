//! `doto-bulk export -o FILE`: every contact of the account to CSV, JSONL or XLSX, once each, in a
//! stable order, written atomically, with a manifest beside it.
//!
//! Flow: resolve the flags once ([`ExportOptions`]); hand the pages of the API's pager (concurrent
//! pages under the client's shared rate limit, dedupe by id, drift repair) to a `sink` writer of
//! the format (which spools CSV and XLSX until the columns are known); optionally write every
//! contact's conversations; then rename the outputs into place and write `FILE.manifest.json`.
//! Any failure before the rename leaves the previous files untouched.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use futures::StreamExt;

use crate::api::{Client, Concurrency, DEFAULT_SORT, ListSummary, RateLimit, SORT_KEYS};
use crate::cli::GlobalArgs;
use crate::cmd::connect::{SandboxArgs, connect};
use crate::exit;
pub use crate::sink::Format;
use crate::sink::atomic::parent_dir;
use crate::sink::columns::{Timestamps, parse_columns};
use crate::sink::conversations;
use crate::sink::manifest::{self, Manifest, now_rfc3339};
use crate::sink::writer::{self, ContactWriter, Settings};

/// Export every contact of the account.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file to write; its extension (.csv, .jsonl, .xlsx) picks the format unless --format.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// The format, when the extension does not say.
    #[arg(long, value_parser = PossibleValuesParser::new(Format::NAMES).try_map(|s| s.parse::<Format>()))]
    pub format: Option<Format>,
    /// Listing order: name, email, phone_number, last_activity_at or created_at; `-` first for
    /// descending. The server has no default order, so there is always one.
    #[arg(long, default_value = DEFAULT_SORT, allow_hyphen_values = true)]
    pub sort: String,
    /// Keep each contact's `contact_inboxes` (a JSON column in CSV/XLSX).
    #[arg(long)]
    pub include_contact_inboxes: bool,
    /// Also write each contact's conversations (the 20 most recent; one request per contact) to
    /// this JSONL file, one conversation a line with its `contact_id`.
    #[arg(long, value_name = "FILE.jsonl")]
    pub conversations: Option<PathBuf>,
    /// Pin the CSV/XLSX columns: these first, in this order (comma-separated); columns found in
    /// the data and not listed go at the end. Without it, the previous manifest at the target
    /// pins them.
    #[arg(long, value_delimiter = ',', value_name = "COL,COL,...")]
    pub columns: Option<Vec<String>>,
    /// How created_at and last_activity_at are written (default: iso for CSV/XLSX, epoch for
    /// JSONL, as the API sends them).
    #[arg(long, value_parser = timestamps_parser())]
    pub timestamps: Option<Timestamps>,
    /// Start a CSV with a UTF-8 byte order mark (for Excel).
    #[arg(long)]
    pub bom: bool,
    /// Most requests sent, all together: `50` or `50/s` per second, `3000/min` per minute
    /// (default 3000/min), as for import.
    #[arg(long, value_name = "RATE")]
    pub rate: Option<RateLimit>,
    /// Pages fetched at once: `auto` (default) adapts it so that the rate limit binds rather than
    /// latency; a number fixes it (conversation lists: that number, or 8).
    #[arg(long, value_name = "N|auto", default_value = "auto")]
    pub concurrency: Concurrency,
    /// The most --concurrency auto grows to.
    #[arg(long, value_name = "N", default_value_t = crate::api::adaptive::DEFAULT_MAX, value_parser = crate::cmd::at_least_one)]
    pub max_concurrency: usize,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

/// `--timestamps`: the sink's styles, with their help.
fn timestamps_parser() -> impl TypedValueParser<Value = Timestamps> {
    PossibleValuesParser::new([
        PossibleValue::new("iso").help("RFC 3339 in UTC, `2024-03-21T05:46:40Z`"),
        PossibleValue::new("epoch").help("Epoch seconds, as the API sends them"),
    ])
    .try_map(|s| s.parse::<Timestamps>())
}

/// Resolved export settings (flags checked once).
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub output: PathBuf,
    pub format: Format,
    pub sort: String,
    pub include_contact_inboxes: bool,
    pub conversations: Option<PathBuf>,
    /// `--columns`, as given.
    pub columns: Option<Vec<String>>,
    pub timestamps: Timestamps,
    pub bom: bool,
    pub concurrency: Concurrency,
    pub max_concurrency: usize,
    /// Draw a progress bar (a terminal and not `-q`).
    pub progress: bool,
}

fn unknown_format(output: &std::path::Path) -> anyhow::Error {
    anyhow::anyhow!(
        "{}: cannot tell the format from the extension; use .csv, .jsonl or .xlsx, or --format",
        output.display()
    )
}

impl ExportOptions {
    /// Defaults for `output`: format from the extension, `created_at` sort, timestamps by format.
    pub fn new(output: impl Into<PathBuf>) -> anyhow::Result<ExportOptions> {
        let output = output.into();
        let format = Format::from_path(&output).ok_or_else(|| unknown_format(&output))?;
        Ok(ExportOptions {
            output,
            format,
            sort: DEFAULT_SORT.into(),
            include_contact_inboxes: false,
            conversations: None,
            columns: None,
            timestamps: format.default_timestamps(),
            bom: false,
            concurrency: Concurrency::Auto,
            max_concurrency: crate::api::adaptive::DEFAULT_MAX,
            progress: false,
        })
    }

    /// Check the settings before any request is made.
    pub fn check(&self) -> anyhow::Result<()> {
        let bare = self.sort.strip_prefix('-').unwrap_or(&self.sort);
        if !SORT_KEYS.contains(&bare) {
            bail!(
                "--sort {:?} is not one of {} (with `-` first for descending)",
                self.sort,
                SORT_KEYS.join(", ")
            );
        }
        if self.concurrency == Concurrency::Fixed(0) || self.max_concurrency == 0 {
            bail!("--concurrency and --max-concurrency must be at least 1");
        }
        let dir = parent_dir(&self.output);
        if !dir.is_dir() {
            bail!(
                "{}: the directory {} does not exist",
                self.output.display(),
                dir.display()
            );
        }
        if self.bom && self.format != Format::Csv {
            bail!("--bom applies to CSV only");
        }
        if let Some(cols) = &self.columns {
            if self.format == Format::Jsonl {
                bail!("--columns applies to CSV and XLSX only");
            }
            parse_columns(cols, "--columns")?;
        }
        if self.conversations.as_ref() == Some(&self.output) {
            bail!("--conversations must name a file other than -o");
        }
        Ok(())
    }

    /// What the sink writer needs, the pinned columns read (`--columns`, else the last manifest).
    fn settings(&self) -> anyhow::Result<Settings> {
        let columns = self.columns.as_deref();
        Ok(Settings {
            format: self.format,
            timestamps: self.timestamps,
            include_contact_inboxes: self.include_contact_inboxes,
            bom: self.bom,
            pinned: writer::pinned_columns(&self.output, self.format, columns)?,
        })
    }
}

/// What a finished export did.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    pub manifest: Manifest,
    pub manifest_path: PathBuf,
    pub elapsed: Duration,
}

fn progress_bar(on: bool) -> Option<indicatif::ProgressBar> {
    if !on {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {pos}/{len} contacts  {per_sec}  ETA {eta}",
        )
        .expect("valid template"),
    );
    Some(bar)
}

/// Export every contact reachable through `client` as `opts` says. Nothing at the target changes
/// unless this returns `Ok`.
pub async fn export(client: &Client, opts: &ExportOptions) -> anyhow::Result<ExportSummary> {
    opts.check()?;
    let t = Instant::now();
    let started_at = now_rfc3339();
    let settings = opts.settings()?;
    let mut out = writer::create(&opts.output, settings.clone())?;
    let (listed, ids) = list_into(client, opts, out.as_mut()).await?;
    let (file, written) = out.finish()?;
    // The listing's own cost, before any conversation request.
    let metrics = client.metrics();
    // Conversations before any rename: a failure there must leave both files as they were.
    let conversations = match &opts.conversations {
        Some(path) => {
            Some(conversations::write(client, path, &ids, opts.concurrency.initial()).await?)
        }
        None => None,
    };
    file.commit()?;
    let conversations = match conversations {
        Some((file, c)) => file.commit().map(|()| Some(c))?,
        None => None,
    };
    let target = &opts.output;
    let mut m = Manifest::of_export(
        &settings, target, &opts.sort, &written, &listed, client, started_at,
    );
    m.listing.attempts = metrics.attempts;
    m.listing.rate_limited = metrics.rate_limited;
    m.conversations = conversations;
    let manifest_path = manifest::write(&opts.output, &m)?;
    Ok(ExportSummary {
        manifest: m,
        manifest_path,
        elapsed: t.elapsed(),
    })
}

/// Every page of the listing into `out`, in order; the ids written, for the conversations.
async fn list_into(
    client: &Client,
    opts: &ExportOptions,
    out: &mut dyn ContactWriter,
) -> anyhow::Result<(ListSummary, Vec<u64>)> {
    let bar = progress_bar(opts.progress);
    let mut list = client.contacts().list().sort(&opts.sort);
    if let Concurrency::Fixed(n) = opts.concurrency {
        list = list.concurrency(n);
    }
    let mut pages = list.max_passes(1 + MAX_REPAIR_ROUNDS).pages();
    let mut ids = vec![];
    while let Some(page) = pages.next().await {
        let page = page?;
        for c in page.contacts {
            ids.push(c.id);
            out.write(c)?;
        }
        if let Some(b) = &bar {
            b.set_length(page.total.max(page.seen));
            b.set_position(page.seen);
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    Ok((pages.summary(), ids))
}

/// Re-fetch rounds after the first pass before an export gives up.
const MAX_REPAIR_ROUNDS: u32 = 6;

/// `doto-bulk export`: resolve the flags and the connection, export, print the summary.
pub async fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<u8> {
    // Flags that do not make sense together are usage errors (exit 2), found before any request.
    let opts = match options(&args, global) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(exit::USAGE);
        }
    };
    let conn = connect(global, &args.sandbox).await?;
    let mut cfg = conn.config.clone();
    cfg.set_rate(args.rate, None);
    (cfg.concurrency, cfg.max_concurrency) = (opts.concurrency, opts.max_concurrency);
    let client = Client::new(cfg)?;
    let where_ = conn.describe();
    let result = tokio::select! {
        r = export(&client, &opts) => r,
        _ = tokio::signal::ctrl_c() => {
            // Dropping the export removed its temporary files; the previous export is intact.
            eprintln!("interrupted: {} was left as it was", opts.output.display());
            conn.close().await?;
            return Ok(exit::INTERRUPTED);
        }
    };
    conn.close().await?;
    let s = result.with_context(|| {
        format!(
            "export to {} failed; the file was left as it was",
            opts.output.display()
        )
    })?;
    if !global.quiet {
        report(&s, &opts, &where_);
    }
    if s.manifest.drift.detected && !s.manifest.drift.repaired {
        eprintln!(
            "warning: the listing never held still; every contact counted by the server was \
             exported, but the export may not be a consistent snapshot"
        );
        return Ok(exit::ROWS_FAILED);
    }
    Ok(exit::OK)
}

/// The flags, resolved and checked.
fn options(args: &Args, global: &GlobalArgs) -> anyhow::Result<ExportOptions> {
    let format = args
        .format
        .or_else(|| Format::from_path(&args.output))
        .ok_or_else(|| unknown_format(&args.output))?;
    let opts = ExportOptions {
        output: args.output.clone(),
        format,
        sort: args.sort.clone(),
        include_contact_inboxes: args.include_contact_inboxes,
        conversations: args.conversations.clone(),
        columns: args.columns.clone(),
        timestamps: args.timestamps.unwrap_or(format.default_timestamps()),
        bom: args.bom,
        concurrency: args.concurrency,
        max_concurrency: args.max_concurrency,
        progress: !global.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    opts.check()?;
    Ok(opts)
}

/// The summary on stderr.
fn report(s: &ExportSummary, opts: &ExportOptions, where_: &str) {
    let m = &s.manifest;
    let columns = match m.columns.len() {
        0 => String::new(),
        n => format!("{n} columns, "),
    };
    eprintln!(
        "exported {} contacts from {} to {} ({columns}{} pages, {:.1} s); manifest {}",
        m.rows,
        where_,
        opts.output.display(),
        m.listing.pages_fetched,
        s.elapsed.as_secs_f64(),
        s.manifest_path.display()
    );
    if !m.columns_added.is_empty() && opts.columns.is_none() {
        eprintln!("new columns at the end: {}", m.columns_added.join(", "));
    }
    let d = &m.drift;
    if d.detected {
        eprintln!(
            "contacts moved while paging: {} pages fetched again in {} rounds, {} contacts recovered; {}",
            d.pages_refetched,
            d.rounds,
            d.recovered,
            if d.repaired {
                "repaired"
            } else {
                "NOT repaired"
            }
        );
    }
    if let Some(c) = &m.conversations {
        eprintln!(
            "{} conversations written ({} contacts gone meanwhile)",
            c.rows, c.contacts_gone
        );
    }
}
