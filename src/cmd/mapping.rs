//! `doto-bulk mapping init FILE [-o mapping.yaml]`: drafts a commented mapping from a CSV or XLSX
//! file's headers and first rows (the guesswork is `mapping::guess`), prints which export it took
//! the file for, what it decided and what it could not decide on stderr, and never overwrites an
//! existing output file unless `--force`.
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::GlobalArgs;
use crate::exit;
use crate::mapping::guess::{self, Draft, Options};
use crate::normalise::Region;
use crate::pipeline::input::open_source;
use crate::source::SourceOptions;

/// Rows read to guess from: enough for the country and email statistics, fast on any file.
const SAMPLE_ROWS: usize = 200;

#[derive(Debug, clap::Subcommand)]
pub enum MappingCommand {
    /// Draft a mapping from a file's headers.
    #[command(after_help = crate::cmd::examples::MAPPING_INIT)]
    Init {
        /// CSV or XLSX file to read the headers from.
        file: PathBuf,
        /// Where to write the mapping (default: stdout). An existing file is not overwritten
        /// without --force.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Overwrite the --output file if it exists.
        #[arg(long)]
        force: bool,
        /// Default region for phone numbers written without +country code (an ISO code such as
        /// GB, or an English name): written as `defaults.phone_region` instead of a guess.
        #[arg(long, value_name = "CC", value_parser = crate::cli::parse_phone_region)]
        phone_region: Option<Region>,
        /// Also import this column (as a text custom attribute); repeatable. `*` includes every
        /// column that does not look sensitive; a sensitive one only when named exactly.
        #[arg(long, value_name = "COLUMN")]
        include: Vec<String>,
    },
}

/// What `mapping init` was asked besides the file.
#[derive(Debug, Default, Clone)]
pub struct InitOptions {
    pub draft: Options,
    /// Overwrite an existing output file.
    pub force: bool,
}

pub async fn run(cmd: MappingCommand, global: &GlobalArgs) -> anyhow::Result<u8> {
    let MappingCommand::Init {
        file,
        output,
        force,
        phone_region,
        include,
    } = cmd;
    if global.json && output.is_none() {
        // Without -o the mapping itself is stdout's one document.
        eprintln!("error: --json needs -o FILE: without it the mapping itself goes to stdout");
        return Ok(exit::USAGE);
    }
    let opts = InitOptions {
        draft: Options {
            region: phone_region,
            include,
        },
        force,
    };
    let d = init_with(&file, output.as_deref(), &opts)?;
    if !global.quiet {
        eprintln!("doto-bulk mapping init: {}", file.display());
        eprintln!("  layout: {}", d.layout);
        for l in &d.decided {
            eprintln!("  decided: {l}");
        }
        for l in &d.undecided {
            eprintln!("  could not decide: {l}");
        }
        if let Some(o) = &output {
            eprintln!("  wrote {}", o.display());
        }
    }
    // What speaks of the data is printed even with -q.
    for w in &d.warnings {
        eprintln!("warning: {w}");
    }
    if d.region_undecided && global.quiet {
        eprintln!("{}", guess::ASK_REGION);
    }
    if let Some(o) = &output {
        let doc = serde_json::json!({
            "file": file.display().to_string(),
            "draft": o.display().to_string(),
            "layout": d.layout.to_string(),
            "decided": d.decided,
            "undecided": d.undecided,
        });
        crate::cmd::emit::file_end(global, o, doc, exit::OK);
    }
    Ok(exit::OK)
}

/// Draft the mapping of `file` and write it to `output` (created, never overwritten) or stdout.
pub fn init(file: &Path, output: Option<&Path>) -> anyhow::Result<Draft> {
    init_with(file, output, &InitOptions::default())
}

/// [`init`] with `--phone-region`.
pub fn init_with_region(
    file: &Path,
    output: Option<&Path>,
    region: Option<Region>,
) -> anyhow::Result<Draft> {
    let mut opts = InitOptions::default();
    opts.draft.region = region;
    init_with(file, output, &opts)
}

/// [`init`] with the user's options (`--phone-region`, `--include`, `--force`).
pub fn init_with(file: &Path, output: Option<&Path>, opts: &InitOptions) -> anyhow::Result<Draft> {
    let d = draft_with(file, &opts.draft)?;
    match output {
        Some(o) => write_new(o, d.yaml.as_bytes(), opts.force)?,
        None => std::io::stdout()
            .write_all(d.yaml.as_bytes())
            .context("cannot write the mapping to stdout")?,
    }
    Ok(d)
}

/// Write `bytes` to `o`: a new file, or (with `force`) over an existing one.
fn write_new(o: &Path, bytes: &[u8], force: bool) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(!force)
        .create(force)
        .truncate(force)
        .open(o)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                anyhow::anyhow!(
                    "{}: already exists; not overwriting it (choose another -o, remove it, or add --force)",
                    o.display()
                )
            } else {
                anyhow::Error::new(e).context(format!("{}: cannot create", o.display()))
            }
        })?;
    f.write_all(bytes)
        .with_context(|| format!("{}: cannot write", o.display()))
}

/// Read the headers and the first [`SAMPLE_ROWS`] records of `file` and draft its mapping.
pub fn draft_for(file: &Path) -> anyhow::Result<Draft> {
    draft_with(file, &Options::default())
}

/// [`draft_for`] with the user's draft options.
pub fn draft_with(file: &Path, opts: &Options) -> anyhow::Result<Draft> {
    let (mut src, preamble) = past_preamble(file)?;
    let headers = src.headers().to_vec();
    let records: Vec<crate::source::Record> = src
        .by_ref()
        .filter_map(Result::ok)
        .take(SAMPLE_ROWS)
        .collect();
    if let Some(e) = src.take_error() {
        // A read error after the sample is not ours to report; one inside it is.
        if records.len() < SAMPLE_ROWS {
            return Err(anyhow::Error::new(e));
        }
    }
    // Below a preamble, the header is the line above the first record (blank lines aside).
    let line = (records.first())
        .filter(|_| preamble)
        .map(|r| r.line.saturating_sub(1));
    let rows: Vec<Vec<String>> = records.into_iter().map(|r| r.fields).collect();
    guess::draft_at(&file.display().to_string(), (&headers, line), &rows, opts)
}

/// `file` opened at its header, and whether a preamble was skipped to find it: when the first
/// line names no contact's column (LinkedIn's `Connections.csv` starts with "Notes:" and a
/// paragraph), the first of the next lines that does is the header. `validate` and `import` find
/// it again from the draft's required columns.
fn past_preamble(file: &Path) -> anyhow::Result<(Box<dyn crate::source::Source>, bool)> {
    let src = open_source(file, &SourceOptions::default())?;
    if guess::names_a_contact(src.headers()) {
        let skipped = src.skipped_preamble();
        return Ok((src, skipped));
    }
    for line in 2..=crate::source::detect::SEARCH_ROWS as u64 {
        let at = SourceOptions {
            header_row: Some(line),
            ..SourceOptions::default()
        };
        match open_source(file, &at) {
            Ok(s) if guess::names_a_contact(s.headers()) => return Ok((s, true)),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok((src, false))
}
