//! `doto-bulk export -o FILE`: every contact of the account to CSV, JSONL, XLSX or Parquet, once each, in a
//! stable order, written atomically, with a manifest and (CSV, XLSX) the import mapping that reads
//! it back beside it; `-o -` (standard output), a character device or a pipe is written into,
//! never renamed over.
//!
//! Flow: resolve the flags once ([`ExportOptions`]); hand the pages of the API's pager (concurrent
//! pages under the client's shared rate limit, dedupe by id, drift repair) to a `sink` writer of
//! the format (which spools CSV, XLSX and Parquet until the columns are known); optionally write every
//! contact's notes and conversations (`sink::related`); then rename the outputs into place and
//! write `FILE.manifest.json`.
//! Any failure before the rename leaves the previous files untouched.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use futures::StreamExt;

use crate::api::{Client, Concurrency, DEFAULT_SORT, ListSummary, RateLimit, SORT_KEYS};
use crate::cli::GlobalArgs;
use crate::cmd::connect::{ConnectArgs, SandboxArgs, connect};
use crate::exit;
pub use crate::sink::Format;
use crate::sink::atomic::{Dest, parent_dir, write_atomic};
use crate::sink::changes;
use crate::sink::columns::{Selection, Timestamps, parse_columns};
use crate::sink::manifest::{self, Manifest, now_rfc3339};
use crate::sink::related::{self, Plan, Related, Table};
use crate::sink::writer::{self, ContactWriter, Settings};
use crate::words::count;

/// Export every contact of the account.
///
/// The API's list endpoint never returns a contact that has only a name (no email, phone number
/// or identifier), so such contacts are not in any export.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file to write; its extension (.csv, .jsonl, .xlsx, .parquet) picks the format unless
    /// --format.
    /// `-` writes CSV or JSONL to standard output (--format required); a character device or a
    /// pipe (`/dev/stdout`, a FIFO) is written into; anything else that is not a regular file is
    /// refused.
    #[arg(short, long, value_name = "FILE", allow_hyphen_values = true)]
    pub output: PathBuf,
    /// Where the manifest goes (default: FILE.manifest.json beside a regular file; none for
    /// standard output, a device or a pipe unless given).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Keep only these CSV/XLSX/Parquet columns (names or globs: `id`, `custom_attributes.*`,
    /// `additional_attributes.c*`; repeatable or comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "COL")]
    pub select: Vec<String>,
    /// Leave these CSV/XLSX/Parquet columns out (names or globs; applied after --select).
    #[arg(long, value_delimiter = ',', value_name = "COL")]
    pub exclude: Vec<String>,
    /// The format, when the extension does not say (required with `-o -`).
    #[arg(long, value_parser = PossibleValuesParser::new(Format::NAMES).try_map(|s| s.parse::<Format>()))]
    pub format: Option<Format>,
    /// Listing order: name, email, phone_number, last_activity_at or created_at; `-` first for
    /// descending. The server has no default order, so there is always one.
    #[arg(long, default_value = DEFAULT_SORT, allow_hyphen_values = true)]
    pub sort: String,
    /// Keep each contact's `contact_inboxes` (a JSON column in CSV/XLSX/Parquet).
    #[arg(long)]
    pub include_contact_inboxes: bool,
    /// Also write each contact's conversations: what the API gives, the 20 with the newest
    /// activity (older ones are not reachable), one request per contact; one conversation a row
    /// with its `contact_id`. To FILE (its extension picks the format; JSONL for any other),
    /// else beside the export in its format (`out.parquet` → `out.conversations.parquet`).
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    pub conversations: Option<Option<PathBuf>>,
    /// Also write each contact's notes (one request per contact), one note a row keyed by
    /// `contact_id`: to FILE (its extension picks the format; JSONL for any other), else beside the
    /// export in its format (`out.csv` → `out.notes.csv`).
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    pub notes: Option<Option<PathBuf>>,
    /// Also write FILE.changes.<ext>: the contacts added, changed or removed since the export
    /// whose manifest this is (its FILE.manifest.json; every export keeps the snapshot needed).
    #[arg(long, value_name = "PREVIOUS_MANIFEST")]
    pub changes_since: Option<PathBuf>,
    /// Pin the CSV/XLSX/Parquet columns: these first, in this order (comma-separated); columns found in
    /// the data and not listed go at the end. Without it, the previous manifest at the target
    /// pins them.
    #[arg(long, value_delimiter = ',', value_name = "COL,COL,...")]
    pub columns: Option<Vec<String>>,
    /// How created_at and last_activity_at are written (default: iso for CSV/XLSX, epoch for
    /// JSONL, as the API sends them). Not for Parquet: its timestamps are typed (TIMESTAMP, UTC).
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
    /// latency; a number fixes it (for the notes and conversation requests too).
    #[arg(long, value_name = "N|auto", default_value = "auto")]
    pub concurrency: Concurrency,
    /// The most --concurrency auto grows to.
    #[arg(long, value_name = "N", default_value_t = crate::api::adaptive::DEFAULT_MAX, value_parser = crate::cmd::at_least_one)]
    pub max_concurrency: usize,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    #[command(flatten)]
    pub connection: ConnectArgs,
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
    /// `--conversations` and `--notes`: where each table goes.
    pub conversations: Option<PathBuf>,
    pub notes: Option<PathBuf>,
    /// Print the plan of the per-contact requests on stderr before they start (not `-q`).
    pub announce: bool,
    /// `--changes-since`: the previous export's manifest.
    pub changes_since: Option<PathBuf>,
    /// `--columns`, as given.
    pub columns: Option<Vec<String>>,
    /// `--select` / `--exclude`.
    pub selection: Selection,
    /// `--manifest`: where the manifest goes instead of beside the file.
    pub manifest: Option<PathBuf>,
    pub timestamps: Timestamps,
    pub bom: bool,
    pub concurrency: Concurrency,
    pub max_concurrency: usize,
    /// Draw a progress bar (a terminal and not `-q`).
    pub progress: bool,
}

fn unknown_format(output: &std::path::Path) -> anyhow::Error {
    anyhow::anyhow!(
        "{}: cannot tell the format from the extension; use .csv, .jsonl, .xlsx or .parquet, or --format",
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
            notes: None,
            announce: false,
            changes_since: None,
            columns: None,
            selection: Selection::default(),
            manifest: None,
            timestamps: format.default_timestamps(),
            bom: false,
            concurrency: Concurrency::Auto,
            max_concurrency: crate::api::adaptive::DEFAULT_MAX,
            progress: false,
        })
    }

    /// Check the settings before any request is made; where the bytes go.
    pub fn check(&self) -> anyhow::Result<Dest> {
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
        let dest = Dest::resolve(&self.output)?;
        if let Dest::File(file) = &dest {
            let dir = parent_dir(file);
            if !dir.is_dir() {
                bail!(
                    "{}: the directory {} does not exist",
                    self.output.display(),
                    dir.display()
                );
            }
        }
        if dest == Dest::Stdout && matches!(self.format, Format::Xlsx | Format::Parquet) {
            bail!(
                "-o -: {} cannot go to standard output (it needs a file); use --format csv or jsonl",
                self.format.as_str().to_uppercase()
            );
        }
        if self.bom && self.format != Format::Csv {
            bail!("--bom applies to CSV only");
        }
        if let Some(cols) = &self.columns {
            if self.format == Format::Jsonl {
                bail!("--columns applies to CSV, XLSX and Parquet only");
            }
            parse_columns(cols, "--columns")?;
        }
        if self.selection != Selection::default() && self.format == Format::Jsonl {
            bail!("--select and --exclude apply to CSV, XLSX and Parquet only");
        }
        related::check_paths(&self.output, &self.tables())?;
        changes::check_flag(self.changes_since.as_deref(), &dest)?;
        Ok(dest)
    }

    /// The per-contact tables asked for.
    fn tables(&self) -> Vec<Table> {
        let (notes, convs) = (self.notes.clone(), self.conversations.clone());
        Table::both(notes, convs, self.format, self.timestamps)
    }

    /// Where the manifest goes: `--manifest`, else beside a regular file; none for a stream.
    fn manifest_path(&self, dest: &Dest) -> Option<PathBuf> {
        let beside = || dest.file().map(|_| manifest::manifest_path(&self.output));
        self.manifest.clone().or_else(beside)
    }

    /// What the sink writer needs, the pinned columns read (`--columns`, else the last manifest).
    fn settings(&self, dest: &Dest) -> anyhow::Result<Settings> {
        let columns = self.columns.as_deref();
        let previous = self.manifest_path(dest);
        Ok(Settings {
            format: self.format,
            timestamps: self.timestamps,
            include_contact_inboxes: self.include_contact_inboxes,
            bom: self.bom,
            pinned: writer::pinned_columns(previous.as_deref(), self.format, columns)?,
            selection: self.selection.clone(),
        })
    }
}

/// `out.csv` → `out.csv.mapping.yaml`: the import mapping that reads the export back.
pub fn mapping_path(target: &std::path::Path) -> PathBuf {
    let mut s = target.as_os_str().to_owned();
    s.push(".mapping.yaml");
    PathBuf::from(s)
}

/// What a finished export did.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    pub manifest: Manifest,
    /// None for a stream without `--manifest`.
    pub manifest_path: Option<PathBuf>,
    /// `FILE.mapping.yaml` (CSV and XLSX to a regular file).
    pub mapping_path: Option<PathBuf>,
    pub elapsed: Duration,
    /// The per-contact requests, when tables were asked for.
    pub plan: Option<Plan>,
}

fn progress_bar(on: bool) -> Option<indicatif::ProgressBar> {
    if !on {
        return None;
    }
    // The length is the server's count, known from the first page: a bar, not a spinner.
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{wide_bar} {human_pos}/{human_len} contacts  ETA {eta}",
        )
        .expect("valid template"),
    );
    Some(bar)
}

/// Export every contact reachable through `client` as `opts` says. Nothing at the target changes
/// unless this returns `Ok`.
pub async fn export(client: &Client, opts: &ExportOptions) -> anyhow::Result<ExportSummary> {
    let dest = opts.check()?;
    let t = Instant::now();
    let started_at = now_rfc3339();
    let settings = opts.settings(&dest)?;
    let since = opts.changes_since.as_deref();
    let mut track =
        changes::Tracker::start(opts.manifest_path(&dest).as_deref(), since, client.config())?
            .with_contact_inboxes(settings.include_contact_inboxes);
    let mut out = writer::create(&dest, settings.clone())?;
    let (listed, ids) = list_into(client, opts, &mut track.tee(out.as_mut())).await?;
    let (file, written) = out.finish()?;
    let tracked = track.prepare(&opts.output, &settings, &written)?;
    // The listing's own cost, before any per-contact request.
    let metrics = client.metrics();
    // The per-contact tables before any rename: a failure there must leave every file as it was.
    let (plan, tables) = related::write(client, &ids, &opts.tables(), opts.announce).await?;
    file.commit()?;
    let (snapshot, change_set) = tracked.commit()?;
    let mapping_path = match (&written.mapping, dest.file()) {
        (Some(text), Some(_)) => {
            let p = mapping_path(&opts.output);
            write_atomic(&p, text.as_bytes())?;
            Some(p)
        }
        _ => None,
    };
    let target = &opts.output;
    let mut m = Manifest::of_export(
        &settings, target, &opts.sort, &written, &listed, client, started_at,
    );
    m.listing.attempts = metrics.attempts;
    m.listing.rate_limited = metrics.rate_limited;
    for t in tables {
        t.file.commit()?;
        match t.related {
            Related::Notes => m.notes = Some(t.entry),
            Related::Conversations => m.conversations = Some(t.entry),
        }
    }
    (m.snapshot, m.changes) = (snapshot, change_set);
    let manifest_path = match opts.manifest_path(&dest) {
        Some(p) => Some(manifest::write(p, &m)?),
        None => None,
    };
    Ok(ExportSummary {
        manifest: m,
        manifest_path,
        mapping_path,
        elapsed: t.elapsed(),
        plan,
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
    let settings = args.connection.resolve(args.sandbox.sandbox)?;
    let conn = connect(&settings, &args.sandbox).await?;
    let mut cfg = conn.config.clone();
    cfg.set_rate(args.rate.or(settings.rate), None);
    (cfg.concurrency, cfg.max_concurrency) = (opts.concurrency, opts.max_concurrency);
    let client = Client::new(cfg)?;
    if let Some(Err(e)) =
        (opts.changes_since.as_deref()).map(|p| changes::Base::open(p, client.config()))
    {
        eprintln!("error: {e:#}");
        conn.close().await?;
        return Ok(exit::USAGE);
    }
    let where_ = conn.describe();
    let result = tokio::select! {
        r = export(&client, &opts) => r,
        _ = tokio::signal::ctrl_c() => {
            // Dropping the export removed its temporary files; the previous export is intact.
            eprintln!("interrupted: {} was left as it was", opts.output.display());
            conn.close().await?;
            if global.json {
                crate::cmd::emit::error("interrupted", exit::INTERRUPTED);
            }
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
        return Ok(file_end(global, &opts, &s, exit::ROWS_FAILED));
    }
    Ok(file_end(global, &opts, &s, exit::OK))
}

/// stdout's part of the end: with `--json` the manifest plus `output` and `manifest_path`; with
/// `-q` the output file.
fn file_end(global: &GlobalArgs, opts: &ExportOptions, s: &ExportSummary, code: u8) -> u8 {
    let mut doc = serde_json::to_value(&s.manifest).unwrap_or_default();
    if let serde_json::Value::Object(m) = &mut doc {
        m.insert("output".into(), opts.output.display().to_string().into());
        let manifest = s.manifest_path.as_ref().map(|p| p.display().to_string());
        m.insert("manifest_path".into(), manifest.into());
        if let Some(plan) = &s.plan {
            m.insert(
                "plan".into(),
                serde_json::to_value(plan).unwrap_or_default(),
            );
        }
    }
    crate::cmd::emit::file_end(global, &opts.output, doc, code);
    code
}

/// The flags, resolved and checked.
fn options(args: &Args, global: &GlobalArgs) -> anyhow::Result<ExportOptions> {
    if args.output.as_os_str() == "-" && args.format.is_none() {
        bail!("-o - writes to standard output: say which format with --format csv or jsonl");
    }
    let format = args
        .format
        .or_else(|| Format::from_path(&args.output))
        .ok_or_else(|| unknown_format(&args.output))?;
    if format == Format::Parquet && args.timestamps.is_some() {
        bail!(
            "--timestamps applies to CSV, XLSX and JSONL: Parquet's created_at and \
             last_activity_at are TIMESTAMP columns (UTC, milliseconds) that readers convert"
        );
    }
    let opts = ExportOptions {
        output: args.output.clone(),
        format,
        sort: args.sort.clone(),
        include_contact_inboxes: args.include_contact_inboxes,
        conversations: related::flag_path(
            &args.output,
            &args.conversations,
            Related::Conversations,
            format,
        )?,
        notes: related::flag_path(&args.output, &args.notes, Related::Notes, format)?,
        announce: !global.quiet,
        changes_since: args.changes_since.clone(),
        columns: args.columns.clone(),
        selection: Selection {
            select: args.select.iter().map(|s| s.trim().to_owned()).collect(),
            exclude: args.exclude.iter().map(|s| s.trim().to_owned()).collect(),
        },
        manifest: args.manifest.clone(),
        timestamps: args.timestamps.unwrap_or(format.default_timestamps()),
        bom: args.bom,
        concurrency: args.concurrency,
        max_concurrency: args.max_concurrency,
        progress: !global.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    opts.check()?;
    Ok(opts)
}

/// What the export cannot hold: contacts with a name only, which the list endpoint never returns.
/// A server that counts them (its total above the rows listed) says how many; one that does not
/// (Chatwoot's count is of the listed contacts) leaves it unknown.
fn not_listed(server_total: u64, rows: u64) -> String {
    const WHY: &str = "the list endpoint never returns contacts with a name only (no email, \
                       phone number or identifier)";
    match server_total.checked_sub(rows) {
        Some(n) if n > 0 => format!(
            "note: {n} of the {server_total} contacts the server counts are not in the export: {WHY}"
        ),
        _ => format!(
            "note: {WHY}; the server's count leaves them out too, so how many there are is unknown"
        ),
    }
}

/// The summary on stderr.
fn report(s: &ExportSummary, opts: &ExportOptions, where_: &str) {
    let m = &s.manifest;
    let columns = match m.columns.len() {
        0 => String::new(),
        n => format!("{}, ", count(n as u64, "column")),
    };
    let output = match opts.output.as_os_str() == "-" {
        true => "standard output".into(),
        false => opts.output.display().to_string(),
    };
    let manifest = match &s.manifest_path {
        Some(p) => format!("; manifest {}", p.display()),
        None => String::new(),
    };
    eprintln!(
        "exported {} from {} to {output} ({columns}{}, {:.1} s){manifest}",
        count(m.rows, "contact"),
        where_,
        count(m.listing.pages_fetched, "page"),
        s.elapsed.as_secs_f64(),
    );
    if let Some(p) = &s.mapping_path {
        eprintln!(
            "import it back with: doto-bulk import {} -m {}",
            opts.output.display(),
            p.display()
        );
    }
    eprintln!("{}", not_listed(m.server_total_end, m.rows));
    if !m.columns_added.is_empty() && opts.columns.is_none() {
        eprintln!("new columns at the end: {}", m.columns_added.join(", "));
    }
    let d = &m.drift;
    if d.detected {
        eprintln!(
            "contacts moved while paging: {} fetched again in {}, {} recovered; {}",
            count(d.pages_refetched, "page"),
            count(d.rounds, "round"),
            count(d.recovered, "contact"),
            if d.repaired {
                "repaired"
            } else {
                "NOT repaired"
            }
        );
    }
    if let Some(c) = &m.changes {
        eprintln!("{}; changes in {}", c.summary(), c.file);
    }
    let tables = [(&m.notes, "note"), (&m.conversations, "conversation")];
    for (t, noun) in tables
        .iter()
        .filter_map(|(t, n)| Some(((*t).as_ref()?, *n)))
    {
        eprintln!(
            "{} written to {} ({} gone meanwhile)",
            count(t.rows, noun),
            t.file,
            count(t.contacts_gone, "contact")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_only_note_counts_when_the_server_does() {
        assert!(not_listed(500, 485).starts_with("note: 15 of the 500 contacts"));
        assert!(not_listed(485, 485).contains("unknown"));
        assert!(not_listed(0, 3).contains("unknown"));
    }

    #[test]
    fn the_mapping_goes_beside_the_file() {
        assert_eq!(
            mapping_path(std::path::Path::new("/x/a.csv")),
            PathBuf::from("/x/a.csv.mapping.yaml")
        );
    }
}
