//! One writer interface for the four export formats: [`create`] opens a temporary file beside
//! the target, [`ContactWriter::write`] takes the contacts in listing order, and
//! [`ContactWriter::finish`] hands back the finished file, still temporary (the caller commits it
//! once everything else succeeded), with the rows and columns written.
//!
//! JSONL goes straight to the file. CSV, XLSX and Parquet spool the contacts to an anonymous temporary
//! JSONL file first: their columns are only known after the last contact, and memory must not grow
//! with the account. `finish` then builds the [`Layout`] and writes the rows from the spool.
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::Context;

use super::Format;
use super::atomic::{AtomicFile, Dest, parent_dir};
use super::columns::{Column, ColumnSet, Layout, Selection, Timestamps, parse_columns};
use super::csv::CsvSink;
use super::{jsonl, manifest, parquet, roundtrip, xlsx};
use crate::api::Contact;

/// Bytes gathered before a write to the file.
const BUFFER: usize = 256 * 1024;

/// How contacts become the file's rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub format: Format,
    pub timestamps: Timestamps,
    pub include_contact_inboxes: bool,
    /// A UTF-8 byte order mark first (CSV only).
    pub bom: bool,
    /// Columns that keep their place first (CSV and XLSX): see [`pinned_columns`].
    pub pinned: Option<Vec<Column>>,
    /// `--select` / `--exclude` (CSV and XLSX).
    pub selection: Selection,
}

/// What a finished export file holds (the file itself is handed back beside it, not yet renamed
/// into place).
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// Hex sha256 of the file's bytes.
    pub sha256: String,
    /// Contacts written.
    pub rows: u64,
    /// The header of a CSV or XLSX file; empty for JSONL.
    pub columns: Vec<String>,
    /// Columns that were not among the pinned ones.
    pub columns_added: Vec<String>,
    /// The import mapping that reads a CSV or XLSX export back ([`roundtrip`]); none for JSONL.
    pub mapping: Option<String>,
}

/// An export file being written.
pub trait ContactWriter: Send {
    /// Take the next contact.
    fn write(&mut self, c: Contact) -> anyhow::Result<()>;
    /// Write whatever is left; the file stays temporary until [`AtomicFile::commit`].
    fn finish(self: Box<Self>) -> anyhow::Result<(AtomicFile, Written)>;
}

/// A writer for `dest` in `settings.format`; nothing at `dest` changes before the commit.
pub fn create(dest: &Dest, settings: Settings) -> anyhow::Result<Box<dyn ContactWriter>> {
    let file = AtomicFile::for_dest(dest)?;
    Ok(match settings.format {
        Format::Jsonl => Box::new(JsonlWriter {
            file,
            settings,
            buf: Vec::with_capacity(BUFFER),
            rows: 0,
        }),
        Format::Csv | Format::Xlsx | Format::Parquet => Box::new(TableWriter::new(file, settings)?),
    })
}

/// The columns a CSV or XLSX export keeps in place: `--columns` when given, else the header of
/// the previous export's manifest (at `manifest`, when there is one); none for JSONL.
pub fn pinned_columns(
    manifest: Option<&Path>,
    format: Format,
    columns: Option<&[String]>,
) -> anyhow::Result<Option<Vec<Column>>> {
    if format == Format::Jsonl {
        return Ok(None);
    }
    if let Some(cols) = columns {
        return parse_columns(cols, "--columns").map(Some);
    }
    let Some(path) = manifest else {
        return Ok(None);
    };
    match manifest::read_previous(path)? {
        Some(m) if !m.columns.is_empty() => {
            parse_columns(&m.columns, &path.display().to_string()).map(Some)
        }
        _ => Ok(None),
    }
}

struct JsonlWriter {
    file: AtomicFile,
    settings: Settings,
    buf: Vec<u8>,
    rows: u64,
}

impl JsonlWriter {
    fn flush(&mut self) -> anyhow::Result<()> {
        let shown = self.file.target().display().to_string();
        self.file
            .file()
            .write_all(&self.buf)
            .with_context(|| format!("{shown}: cannot write"))?;
        self.buf.clear();
        Ok(())
    }
}

impl ContactWriter for JsonlWriter {
    fn write(&mut self, c: Contact) -> anyhow::Result<()> {
        let s = &self.settings;
        jsonl::write_line(&mut self.buf, &c, s.include_contact_inboxes, s.timestamps);
        self.rows += 1;
        if self.buf.len() >= BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> anyhow::Result<(AtomicFile, Written)> {
        self.flush()?;
        let written = Written {
            sha256: self.file.sha256()?,
            rows: self.rows,
            columns: vec![],
            columns_added: vec![],
            mapping: None,
        };
        Ok((self.file, written))
    }
}

/// CSV, XLSX and Parquet: the contacts spooled, the attribute keys observed, the rows written at the end.
struct TableWriter {
    file: AtomicFile,
    settings: Settings,
    spool: BufWriter<File>,
    set: ColumnSet,
    rows: u64,
}

const SPOOL_WRITE: &str = "cannot write the spool file";

impl TableWriter {
    fn new(file: AtomicFile, settings: Settings) -> anyhow::Result<TableWriter> {
        // Beside the target (the same disk the export fits on); for a stream, the system's.
        let dir = match file.is_stream() {
            true => std::env::temp_dir(),
            false => parent_dir(file.target()),
        };
        let spool = tempfile::tempfile_in(&dir)
            .with_context(|| format!("cannot create the spool file in {}", dir.display()))?;
        Ok(TableWriter {
            file,
            settings,
            spool: BufWriter::with_capacity(BUFFER, spool),
            set: ColumnSet::default(),
            rows: 0,
        })
    }
}

impl ContactWriter for TableWriter {
    fn write(&mut self, mut c: Contact) -> anyhow::Result<()> {
        if !self.settings.include_contact_inboxes {
            c.contact_inboxes = None;
        }
        self.set.observe(&c);
        serde_json::to_writer(&mut self.spool, &c).context(SPOOL_WRITE)?;
        self.spool.write_all(b"\n").context(SPOOL_WRITE)?;
        self.rows += 1;
        Ok(())
    }

    fn finish(self: Box<Self>) -> anyhow::Result<(AtomicFile, Written)> {
        let TableWriter {
            mut file,
            settings,
            spool,
            set,
            rows,
        } = *self;
        let mut spool = spool
            .into_inner()
            .map_err(|e| anyhow::anyhow!("{SPOOL_WRITE}: {}", e.error()))?;
        spool
            .seek(SeekFrom::Start(0))
            .context("cannot read the spool file back")?;
        let (raw, selection) = match settings.format {
            Format::Parquet => parquet::split_selection(&settings.selection),
            _ => (vec![], settings.selection.clone()),
        };
        let layout = Layout::build(
            &set,
            settings.include_contact_inboxes,
            settings.pinned.as_deref(),
        )
        .select(&selection)?;
        let contacts = spooled(spool);
        let target = file.target().display().to_string();
        match settings.format {
            Format::Parquet => parquet::write(file.file(), &layout, &set, &raw, contacts)
                .with_context(|| target)?,
            _ => write_rows(&mut file, &settings, &layout, rows, contacts)?,
        }
        let name = manifest::file_name(file.target());
        let mapping = (!file.is_stream() && settings.format != Format::Parquet)
            .then(|| roundtrip::import_mapping(&name, settings.format, &layout, &set))
            .flatten();
        let written = Written {
            sha256: file.sha256()?,
            rows,
            columns: layout.headers(),
            mapping,
            columns_added: layout.added,
        };
        Ok((file, written))
    }
}

/// The contacts of the spool, in the order they came.
fn spooled(spool: File) -> impl Iterator<Item = anyhow::Result<Contact>> {
    BufReader::with_capacity(BUFFER, spool)
        .lines()
        .enumerate()
        .map(|(i, line)| -> anyhow::Result<Contact> {
            let line = line.context("cannot read the spool file back")?;
            serde_json::from_str(&line)
                .with_context(|| format!("spool line {}: not a contact", i + 1))
        })
}

/// The rows of a CSV or XLSX export, read back from the spool.
fn write_rows(
    out: &mut AtomicFile,
    settings: &Settings,
    layout: &Layout,
    rows: u64,
    contacts: impl Iterator<Item = anyhow::Result<Contact>>,
) -> anyhow::Result<()> {
    let target = out.target().display().to_string();
    let ts = settings.timestamps;
    if settings.format == Format::Xlsx {
        return xlsx::write(out.file(), layout, ts, rows, contacts).with_context(|| target);
    }
    let mut sink = CsvSink::new(out.writer(), layout, ts, settings.bom)?;
    for c in contacts {
        sink.write(&c?)?;
    }
    sink.finish()?
        .flush()
        .with_context(|| format!("{target}: cannot write"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(format: Format) -> Settings {
        Settings {
            format,
            timestamps: format.default_timestamps(),
            include_contact_inboxes: false,
            bom: false,
            pinned: None,
            selection: Selection::default(),
        }
    }

    fn sha256_hex(path: &Path) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
    }

    fn contacts() -> Vec<Contact> {
        [
            json!({"id": 1, "name": "Ann", "email": "ann@x.test", "created_at": 1711000000,
                   "custom_attributes": {"plan": "gold"}, "contact_inboxes": [{"inbox": 1}]}),
            json!({"id": 2, "name": "=Bob", "additional_attributes": {"city": "Lyon"}}),
        ]
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect()
    }

    fn write_all(target: &Path, s: Settings) -> (AtomicFile, Written) {
        let mut w = create(&Dest::File(target.to_path_buf()), s).unwrap();
        for c in contacts() {
            w.write(c).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn every_format_writes_every_contact_and_nothing_shows_before_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        for format in [Format::Csv, Format::Jsonl, Format::Xlsx, Format::Parquet] {
            let target = dir.path().join(format!("out.{}", format.as_str()));
            let (file, written) = write_all(&target, settings(format));
            assert_eq!(written.rows, 2, "{format:?}");
            assert!(!target.exists(), "{format:?} appeared before the commit");
            file.commit().unwrap();
            assert_eq!(written.sha256, sha256_hex(&target), "{format:?}");
        }
    }

    #[test]
    fn csv_rows_come_back_from_the_spool_in_the_discovered_layout() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t.csv");
        let mut s = settings(Format::Csv);
        s.pinned = Some(parse_columns(&["email".into(), "id".into()], "test").unwrap());
        let (file, written) = write_all(&target, s);
        assert_eq!(&written.columns[..2], ["email", "id"]);
        assert_eq!(
            written.columns.last().unwrap(),
            "additional_attributes.city"
        );
        assert!(
            written
                .columns_added
                .contains(&"custom_attributes.plan".to_string())
        );
        file.commit().unwrap();
        let text = std::fs::read_to_string(&target).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[1].starts_with("ann@x.test,1,Ann,"), "{text}");
        assert!(
            lines[2].starts_with(",2,'=Bob,"),
            "the formula guard: {text}"
        );
        assert!(!text.contains("inbox"), "{text}");
    }

    #[test]
    fn jsonl_keeps_inboxes_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t.jsonl");
        let mut s = settings(Format::Jsonl);
        s.include_contact_inboxes = true;
        write_all(&target, s).0.commit().unwrap();
        let text = std::fs::read_to_string(&target).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.lines().next().unwrap().contains("\"contact_inboxes\""));
        assert!(text.contains("\"created_at\":1711000000"), "{text}");
    }

    #[test]
    fn pinned_columns_come_from_the_flag_else_the_previous_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let target = manifest::manifest_path(&dir.path().join("p.csv"));
        let target = target.as_path();
        assert_eq!(
            pinned_columns(Some(target), Format::Csv, None).unwrap(),
            None
        );
        let flag = ["id".to_string()];
        assert_eq!(
            pinned_columns(Some(target), Format::Csv, Some(&flag)).unwrap(),
            Some(vec![Column::Core("id")])
        );
        assert_eq!(
            pinned_columns(None, Format::Jsonl, Some(&flag)).unwrap(),
            None
        );
        std::fs::write(target, "{nope").unwrap();
        let e = pinned_columns(Some(target), Format::Csv, None).unwrap_err();
        assert!(format!("{e:#}").contains("p.csv.manifest.json"), "{e:#}");
    }
}
