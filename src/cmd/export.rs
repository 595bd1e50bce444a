//! `doto-bulk export -o FILE`: every contact of the account to CSV, JSONL or XLSX, once each, in a
//! stable order, written atomically, with a manifest beside it.
//!
//! Flow: resolve the flags once ([`ExportOptions`]); page through the listing ([`fetch`]: concurrent
//! pages under the client's shared rate limit, dedupe by id, drift repair); JSONL goes straight to
//! the temporary output, while CSV and XLSX spool the contacts to a temporary JSONL file first
//! (the column set is only known after the last page, and memory must not grow with the account),
//! then write the rows from the spool; optionally fetch every contact's conversations; then rename
//! the outputs into place and write `FILE.manifest.json`. Any failure before the rename leaves the
//! previous files untouched.
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use serde_json::Value;

use crate::api::{ApiError, Client, Contact, DEFAULT_SORT, RateLimit, SORT_KEYS};
use crate::cli::GlobalArgs;
use crate::cmd::connect::{SandboxArgs, connect};
use crate::exit;
use crate::sink::atomic::{AtomicFile, parent_dir};
use crate::sink::columns::{ColumnSet, Layout, Timestamps, parse_columns};
use crate::sink::manifest::{self, Conversations, Listing, Manifest};
use crate::sink::{csv::CsvSink, jsonl, xlsx};

pub mod fetch;

/// Export every contact of the account.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file to write; its extension (.csv, .jsonl, .xlsx) picks the format unless --format.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// The format, when the extension does not say.
    #[arg(long, value_enum)]
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
    #[arg(long, value_enum)]
    pub timestamps: Option<Timestamps>,
    /// Start a CSV with a UTF-8 byte order mark (for Excel).
    #[arg(long)]
    pub bom: bool,
    /// Most requests sent, all together: `50` or `50/s` per second, `3000/min` per minute
    /// (default 3000/min), as for import.
    #[arg(long, value_name = "RATE", value_parser = crate::cmd::import::parse_rate)]
    pub rate: Option<RateLimit>,
    /// Pages (or conversation lists) fetched at once.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub concurrency: usize,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

/// An export file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Jsonl,
    Xlsx,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Xlsx => "xlsx",
        }
    }

    /// The format an extension names (`.csv`, `.jsonl`/`.ndjson`, `.xlsx`), any case.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "xlsx" => Some(Format::Xlsx),
            _ => None,
        }
    }
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
    pub concurrency: usize,
    /// Draw a progress bar (a terminal and not `-q`).
    pub progress: bool,
}

impl ExportOptions {
    /// Defaults for `output`: format from the extension, `created_at` sort, timestamps by format.
    pub fn new(output: impl Into<PathBuf>) -> anyhow::Result<ExportOptions> {
        let output = output.into();
        let format = Format::from_path(&output).ok_or_else(|| {
            anyhow::anyhow!(
                "{}: cannot tell the format from the extension; use .csv, .jsonl or .xlsx, or --format",
                output.display()
            )
        })?;
        Ok(ExportOptions {
            output,
            format,
            sort: DEFAULT_SORT.into(),
            include_contact_inboxes: false,
            conversations: None,
            columns: None,
            timestamps: default_timestamps(format),
            bom: false,
            concurrency: 8,
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
        if self.concurrency == 0 {
            bail!("--concurrency must be at least 1");
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
}

fn default_timestamps(f: Format) -> Timestamps {
    match f {
        Format::Jsonl => Timestamps::Epoch,
        _ => Timestamps::Iso,
    }
}

/// What a finished export did.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    pub manifest: Manifest,
    pub manifest_path: PathBuf,
    pub elapsed: Duration,
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
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
    let target = &opts.output;
    // The previous layout: --columns, else the last manifest at the target.
    let previous = match (&opts.columns, opts.format) {
        (_, Format::Jsonl) => None,
        (Some(cols), _) => Some(parse_columns(cols, "--columns")?),
        (None, _) => match manifest::read_previous(target)? {
            Some(m) if !m.columns.is_empty() => Some(parse_columns(
                &m.columns,
                &manifest::manifest_path(target).display().to_string(),
            )?),
            _ => None,
        },
    };
    let mut out = AtomicFile::create(target)?;
    let bar = progress_bar(opts.progress);
    let progress = |seen: u64, total: u64| {
        if let Some(b) = &bar {
            b.set_length(total);
            b.set_position(seen);
        }
    };
    let include = opts.include_contact_inboxes;
    let (fetched, rows, columns, added) = if opts.format == Format::Jsonl {
        let mut w = out.writer();
        let mut line = Vec::with_capacity(1024);
        let mut sink = |c: Contact| -> anyhow::Result<()> {
            line.clear();
            jsonl::write_line(&mut line, &c, include, opts.timestamps);
            w.write_all(&line)
                .with_context(|| format!("{}: cannot write", target.display()))
        };
        let fetched =
            fetch::fetch_all(client, &opts.sort, opts.concurrency, &mut sink, &progress).await?;
        w.flush()
            .with_context(|| format!("{}: cannot write", target.display()))?;
        drop(w);
        let rows = fetched.ids.len() as u64;
        (fetched, rows, vec![], vec![])
    } else {
        let spool_file = tempfile::tempfile_in(parent_dir(target)).with_context(|| {
            format!(
                "cannot create the spool file in {}",
                parent_dir(target).display()
            )
        })?;
        let mut spool = BufWriter::with_capacity(256 * 1024, spool_file);
        let mut set = ColumnSet::default();
        let mut sink = |mut c: Contact| -> anyhow::Result<()> {
            if !include {
                c.contact_inboxes = None;
            }
            set.observe(&c);
            serde_json::to_writer(&mut spool, &c).context("cannot write the spool file")?;
            spool
                .write_all(b"\n")
                .context("cannot write the spool file")?;
            Ok(())
        };
        let fetched =
            fetch::fetch_all(client, &opts.sort, opts.concurrency, &mut sink, &progress).await?;
        let rows = fetched.ids.len() as u64;
        let mut spool_file = spool
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write the spool file: {}", e.error()))?;
        spool_file.seek(SeekFrom::Start(0))?;
        let layout = Layout::build(&set, include, previous.as_deref());
        write_table(&mut out, opts, &layout, rows, spool_file)?;
        (fetched, rows, layout.headers(), layout.added)
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    // The listing's own cost, before any conversation request.
    let metrics = client.metrics();
    let sha256 = out.sha256()?;
    // Conversations before any rename: a failure there must leave both files as they were.
    let conversations = match &opts.conversations {
        Some(path) => {
            Some(write_conversations(client, path, &fetched.ids, opts.concurrency).await?)
        }
        None => None,
    };
    out.commit()?;
    let conversations = match conversations {
        Some((file, c)) => {
            file.commit()?;
            Some(c)
        }
        None => None,
    };
    let cfg = client.config();
    let m = Manifest {
        version: 1,
        file: target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        format: opts.format.as_str().into(),
        rows,
        columns,
        columns_added: added,
        account_id: cfg.account_id,
        base_url: cfg.base_url.clone(),
        sort: opts.sort.clone(),
        timestamps: match opts.timestamps {
            Timestamps::Iso => "iso".into(),
            Timestamps::Epoch => "epoch".into(),
        },
        include_contact_inboxes: include,
        started_at,
        finished_at: now_rfc3339(),
        sha256,
        server_total_start: fetched.total_start,
        server_total_end: fetched.total_end,
        listing: Listing {
            pages_fetched: fetched.pages_fetched,
            duplicates: fetched.duplicates,
            attempts: metrics.attempts,
            rate_limited: metrics.rate_limited,
        },
        drift: fetched.drift.clone(),
        conversations,
    };
    let manifest_path = manifest::write(target, &m)?;
    Ok(ExportSummary {
        manifest: m,
        manifest_path,
        elapsed: t.elapsed(),
    })
}

/// The rows of a CSV or XLSX export, read back from the spool.
fn write_table(
    out: &mut AtomicFile,
    opts: &ExportOptions,
    layout: &Layout,
    rows: u64,
    spool: File,
) -> anyhow::Result<()> {
    let target = opts.output.display().to_string();
    let contacts = BufReader::with_capacity(256 * 1024, spool)
        .lines()
        .enumerate()
        .map(|(i, line)| -> anyhow::Result<Contact> {
            let line = line.context("cannot read the spool file back")?;
            serde_json::from_str(&line)
                .with_context(|| format!("spool line {}: not a contact", i + 1))
        });
    match opts.format {
        Format::Csv => {
            let mut sink = CsvSink::new(out.writer(), layout, opts.timestamps, opts.bom)?;
            for c in contacts {
                sink.write(&c?)?;
            }
            sink.finish()?
                .flush()
                .with_context(|| format!("{target}: cannot write"))?;
        }
        Format::Xlsx => {
            xlsx::write(out.file(), layout, opts.timestamps, rows, contacts)
                .with_context(|| target.clone())?;
        }
        Format::Jsonl => unreachable!("JSONL is written while paging"),
    }
    Ok(())
}

/// Every contact's conversations to `path` (temporary until the caller commits it).
async fn write_conversations(
    client: &Client,
    path: &Path,
    ids: &[u64],
    concurrency: usize,
) -> anyhow::Result<(AtomicFile, Conversations)> {
    let mut file = AtomicFile::create(path)?;
    let mut rows = 0;
    let mut gone = 0;
    {
        let mut w = file.writer();
        let mut stream = futures::stream::iter(ids.iter().copied())
            .map(|id| async move { (id, client.contacts().conversations(id).await) })
            .buffered(concurrency.max(1));
        while let Some((id, res)) = stream.next().await {
            let convs = match res {
                Ok(c) => c,
                // Deleted since it was listed: it has no conversations any more.
                Err(ApiError::NotFound { .. }) => {
                    gone += 1;
                    continue;
                }
                Err(e) => {
                    return Err(
                        anyhow::Error::new(e).context(format!("conversations of contact {id}"))
                    );
                }
            };
            for conv in convs {
                let mut v = serde_json::to_value(&conv).expect("serializable");
                if let Value::Object(o) = &mut v {
                    o.insert("contact_id".into(), Value::from(id));
                }
                serde_json::to_writer(&mut w, &v)?;
                w.write_all(b"\n")
                    .with_context(|| format!("{}: cannot write", path.display()))?;
                rows += 1;
            }
        }
        w.flush()
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    let sha256 = file.sha256()?;
    let c = Conversations {
        file: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        rows,
        contacts_gone: gone,
        sha256,
    };
    Ok((file, c))
}

/// `doto-bulk export`: resolve the flags and the connection, export, print the summary.
pub async fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<u8> {
    // Flags that do not make sense together are usage errors (exit 2), found before any request.
    let usage = |e: anyhow::Error| {
        eprintln!("error: {e:#}");
        Ok(exit::USAGE)
    };
    let format = match args.format.or_else(|| Format::from_path(&args.output)) {
        Some(f) => f,
        None => {
            return usage(anyhow::anyhow!(
                "{}: cannot tell the format from the extension; use .csv, .jsonl or .xlsx, or --format",
                args.output.display()
            ));
        }
    };
    let opts = ExportOptions {
        output: args.output,
        format,
        sort: args.sort,
        include_contact_inboxes: args.include_contact_inboxes,
        conversations: args.conversations,
        columns: args.columns,
        timestamps: args.timestamps.unwrap_or(default_timestamps(format)),
        bom: args.bom,
        concurrency: args.concurrency,
        progress: !global.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    if let Err(e) = opts.check() {
        return usage(e);
    }
    let pinned = opts.columns.is_some();
    let conn = connect(global, &args.sandbox).await?;
    let mut cfg = conn.config.clone();
    if let Some(r) = args.rate {
        cfg.rate = r;
    }
    cfg.page_concurrency = opts.concurrency;
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
    let m = &s.manifest;
    if !global.quiet {
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
        if !m.columns_added.is_empty() && !pinned {
            eprintln!("new columns at the end: {}", m.columns_added.join(", "));
        }
        if m.drift.detected {
            eprintln!(
                "contacts moved while paging: {} pages fetched again in {} rounds, {} contacts recovered; {}",
                m.drift.pages_refetched,
                m.drift.rounds,
                m.drift.recovered,
                if m.drift.repaired {
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
    if m.drift.detected && !m.drift.repaired {
        eprintln!(
            "warning: the listing never held still; every contact counted by the server was \
             exported, but the export may not be a consistent snapshot"
        );
        return Ok(exit::ROWS_FAILED);
    }
    Ok(exit::OK)
}
