//! The per-contact tables of an export, `--notes` and `--conversations`: one request per exported
//! contact and per table. [`write`] sends them all in ONE stream, each request in a slot of the
//! client's concurrency (adapted, or `--concurrency N`) and under its rate limit, so both tables
//! together take about the sum of their requests at the rate, not twice as long. [`Plan`] says
//! before they start how many there are and how long they take at the rate.
//!
//! Each table goes to its own temporary file ([`table`](super::table)), one row per note or
//! conversation with its `contact_id`, in listing order. A contact deleted since the listing (404)
//! is counted as gone, not an error; any other failure fails the whole export before any file is
//! renamed, so every previous file is left as it was. A bar counts the requests answered (on a
//! terminal, not with `--quiet`), as the listing's counts the contacts.
use std::path::{Path, PathBuf};

use anyhow::Context;
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;

use super::Format;
use super::atomic::AtomicFile;
use super::columns::Timestamps;
use super::manifest::{RelatedTable, file_name};
use super::table::{self, Col, RowWriter};
use super::{conversations, notes};
use crate::api::{ApiError, Client, ClientConfig};
use crate::progress::Progress;

/// What a per-contact table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Related {
    Notes,
    Conversations,
}

impl Related {
    pub fn name(self) -> &'static str {
        match self {
            Related::Notes => "notes",
            Related::Conversations => "conversations",
        }
    }

    fn columns(self) -> &'static [Col] {
        match self {
            Related::Notes => &notes::COLUMNS,
            Related::Conversations => &conversations::COLUMNS,
        }
    }

    /// The contact's rows as the API renders them.
    async fn fetch(self, client: &Client, id: u64) -> Result<Vec<Value>, ApiError> {
        fn values<T: Serialize>(items: Vec<T>) -> Vec<Value> {
            let json = |t| serde_json::to_value(t).expect("serializable");
            items.into_iter().map(json).collect()
        }
        match self {
            Related::Notes => client.contacts().notes(id).await.map(values),
            Related::Conversations => client.contacts().conversations(id).await.map(values),
        }
    }
}

/// One per-contact table to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub related: Related,
    pub path: PathBuf,
    pub format: Format,
    pub timestamps: Timestamps,
}

impl Table {
    /// A table at `path`, in the format its extension names (JSONL for any other extension, as
    /// `--conversations FILE` always wrote); timestamps as `export` says when the format is the
    /// export's, else the format's own default.
    pub fn at(related: Related, path: PathBuf, export: Format, ts: Timestamps) -> Table {
        let format = Format::from_path(&path).unwrap_or(Format::Jsonl);
        let timestamps = match format == export {
            true => ts,
            false => format.default_timestamps(),
        };
        Table {
            related,
            path,
            format,
            timestamps,
        }
    }
}

impl Table {
    /// The tables asked for (`--notes`, `--conversations` paths), notes first.
    pub fn both(
        notes: Option<PathBuf>,
        conversations: Option<PathBuf>,
        export: Format,
        ts: Timestamps,
    ) -> Vec<Table> {
        let notes = notes.map(|p| Table::at(Related::Notes, p, export, ts));
        let convs = conversations.map(|p| Table::at(Related::Conversations, p, export, ts));
        notes.into_iter().chain(convs).collect()
    }
}

/// `--notes` / `--conversations` as given (absent, without FILE, with FILE): FILE, else
/// [`default_path`] beside a regular `output` file (a stream has nothing beside it).
pub fn flag_path(
    output: &Path,
    flag: &Option<Option<PathBuf>>,
    related: Related,
    format: Format,
) -> anyhow::Result<Option<PathBuf>> {
    match flag {
        None => Ok(None),
        Some(Some(p)) => Ok(Some(p.clone())),
        Some(None) => match super::atomic::Dest::resolve(output)? {
            super::atomic::Dest::File(_) => Ok(Some(default_path(output, related, format))),
            _ => anyhow::bail!(
                "--{0} without FILE writes beside -o, which is not a file here: give --{0} FILE",
                related.name()
            ),
        },
    }
}

/// Where a table goes unless told: beside the export, `out.csv` → `out.notes.csv` (the export's
/// extension, or the format's when it has none).
pub fn default_path(output: &Path, related: Related, format: Format) -> PathBuf {
    let stem = output.file_stem().unwrap_or(output.as_os_str());
    let mut name = stem.to_os_string();
    name.push(format!(".{}.", related.name()));
    match Format::from_path(output) {
        Some(_) => name.push(output.extension().unwrap_or_default()),
        None => name.push(format.as_str()),
    }
    output.with_file_name(name)
}

/// Every table names its own file, not the export's, in a directory that exists.
pub fn check_paths(output: &Path, tables: &[Table]) -> anyhow::Result<()> {
    for (i, t) in tables.iter().enumerate() {
        let flag = t.related.name();
        if t.path == output {
            anyhow::bail!("--{flag} must name a file other than -o");
        }
        if tables[..i].iter().any(|o| o.path == t.path) {
            anyhow::bail!("--notes and --conversations must name different files");
        }
        if let super::atomic::Dest::File(f) = super::atomic::Dest::resolve(&t.path)? {
            let dir = super::atomic::parent_dir(&f);
            if !dir.is_dir() {
                let (p, d) = (t.path.display(), dir.display());
                anyhow::bail!("--{flag} {p}: the directory {d} does not exist");
            }
        }
    }
    Ok(())
}

/// The requests the tables cost, before they start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub tables: Vec<Related>,
    pub requests: u64,
    /// The client's pace: its rate limit, less the headroom it keeps.
    pub per_second: f64,
    /// At that pace.
    pub seconds: f64,
}

impl Plan {
    /// One request per contact and table, at `cfg`'s rate.
    pub fn new(tables: &[Table], contacts: u64, cfg: &ClientConfig) -> Plan {
        let requests = contacts * tables.len() as u64;
        let per_second = cfg.rate.per_sec() * cfg.headroom;
        Plan {
            tables: tables.iter().map(|t| t.related).collect(),
            requests,
            per_second,
            seconds: requests as f64 / per_second.max(1e-9),
        }
    }
}

/// `14702` → `14,702`.
fn grouped(n: u64) -> String {
    let digits = n.to_string().into_bytes();
    let groups: Vec<&[u8]> = digits.rchunks(3).rev().collect();
    let groups: Vec<&str> = groups
        .iter()
        .map(|g| std::str::from_utf8(g).unwrap())
        .collect();
    groups.join(",")
}

/// `300.0` → `5m`; `42.0` → `42s`; `4000.0` → `1h 07m`.
fn about(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", (s + 30) / 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600 + 30) / 60),
    }
}

impl std::fmt::Display for Plan {
    /// `notes: 14,702 requests, about 5m at 49/s`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.tables.iter().map(|r| r.name()).collect();
        write!(
            f,
            "{}: {} {}, about {} at {}/s",
            names.join(" and "),
            grouped(self.requests),
            crate::words::agree(self.requests, "request", "requests"),
            about(self.seconds),
            (self.per_second * 10.0).round() / 10.0
        )
    }
}

/// A table being written.
struct Open {
    file: AtomicFile,
    rows: Box<dyn RowWriter>,
    gone: u64,
}

/// A table written, still temporary: commit `file`, then put `entry` in the manifest.
pub struct Written {
    pub file: AtomicFile,
    pub entry: RelatedTable,
    pub related: Related,
}

impl Open {
    /// The temporary file of `t` with its header.
    fn new(t: &Table) -> anyhow::Result<Open> {
        let mut file = AtomicFile::for_dest(&super::atomic::Dest::resolve(&t.path)?)?;
        let table = (t.related.name(), t.related.columns());
        let rows = table::create(&mut file, t.format, table, t.timestamps)?;
        Ok(Open {
            file,
            rows,
            gone: 0,
        })
    }

    /// The rest written and flushed, the manifest entry made.
    fn finish(self, t: &Table) -> anyhow::Result<Written> {
        let Open {
            mut file,
            rows,
            gone,
        } = self;
        let rows = rows.finish()?;
        let sha256 = file
            .sha256()
            .with_context(|| format!("{}: cannot read back", t.path.display()))?;
        let entry = RelatedTable {
            file: file_name(&t.path),
            format: t.format.as_str().into(),
            rows,
            contacts_gone: gone,
            sha256,
        };
        Ok(Written {
            file,
            entry,
            related: t.related,
        })
    }
}

/// Every table of every contact in `ids` (in that order), fetched in one concurrent stream after
/// their [`Plan`] (printed on stderr when `announce`, with a bar of the requests answered on a
/// terminal); none and no plan when `tables` is empty.
/// The files stay temporary until the caller commits them (a device or a pipe is written into at
/// the commit, never renamed over).
pub async fn write(
    client: &Client,
    ids: &[u64],
    tables: &[Table],
    announce: bool,
) -> anyhow::Result<(Option<Plan>, Vec<Written>)> {
    if tables.is_empty() {
        return Ok((None, vec![]));
    }
    let plan = Plan::new(tables, ids.len() as u64, client.config());
    if announce {
        eprintln!("{plan}");
    }
    let mut open: Vec<Open> = tables.iter().map(Open::new).collect::<Result<_, _>>()?;
    let label = plan.tables.iter().map(|r| r.name()).collect::<Vec<_>>();
    let bar = Progress::of(
        !announce,
        Some(plan.requests),
        &label.join(" and "),
        "requests",
    );
    let jobs = ids.iter().flat_map(|&id| {
        tables
            .iter()
            .enumerate()
            .map(move |(i, t)| (id, i, t.related))
    });
    let mut answers = futures::stream::iter(jobs)
        .map(|(id, i, related)| async move {
            let rows = client.limit().run(related.fetch(client, id)).await;
            (id, i, related, rows)
        })
        .buffered(client.limit().ceiling());
    while let Some((id, i, related, rows)) = answers.next().await {
        bar.inc(1);
        let t = &mut open[i];
        let rows = match rows {
            Ok(rows) => rows,
            // Deleted since it was listed: it has nothing any more.
            Err(ApiError::NotFound { .. }) => {
                t.gone += 1;
                continue;
            }
            Err(e) => {
                let e = anyhow::Error::new(e);
                return Err(e.context(format!("{} of contact {id}", related.name())));
            }
        };
        for mut row in rows {
            if let Value::Object(o) = &mut row {
                o.insert("contact_id".into(), Value::from(id));
            }
            t.rows.write(&row)?;
        }
    }
    drop(answers);
    bar.finish();
    let done = open.into_iter().zip(tables).map(|(o, t)| o.finish(t));
    Ok((Some(plan), done.collect::<Result<_, _>>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_counts_a_request_per_contact_and_table_at_the_paced_rate() {
        let mut cfg = ClientConfig::new("http://x", 1, crate::api::ApiToken::new("t").unwrap());
        cfg.set_rate(Some(crate::api::RateLimit::per_minute(3000)), None);
        let t = |r| Table::at(r, "a.csv".into(), Format::Csv, Timestamps::Iso);
        let p = Plan::new(&[t(Related::Notes)], 14_702, &cfg);
        assert_eq!(p.to_string(), "notes: 14,702 requests, about 5m at 49/s");
        let both = [t(Related::Notes), t(Related::Conversations)];
        let p = Plan::new(&both, 1, &cfg);
        assert_eq!(
            p.to_string(),
            "notes and conversations: 2 requests, about 0s at 49/s"
        );
        assert_eq!(about(4000.0), "1h 07m");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(999), "999");
    }

    #[test]
    fn tables_go_beside_the_export_in_its_format_unless_named() {
        let p = default_path(Path::new("/x/out.parquet"), Related::Notes, Format::Parquet);
        assert_eq!(p, PathBuf::from("/x/out.notes.parquet"));
        let p = default_path(Path::new("/x/out"), Related::Conversations, Format::Csv);
        assert_eq!(p, PathBuf::from("/x/out.conversations.csv"));
        let t = Table::at(
            Related::Conversations,
            "c.txt".into(),
            Format::Csv,
            Timestamps::Iso,
        );
        assert_eq!((t.format, t.timestamps), (Format::Jsonl, Timestamps::Epoch));
        let t = Table::at(
            Related::Notes,
            "n.csv".into(),
            Format::Csv,
            Timestamps::Epoch,
        );
        assert_eq!((t.format, t.timestamps), (Format::Csv, Timestamps::Epoch));
    }
}
