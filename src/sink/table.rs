//! The tables of an export beside its main file, in any of the four formats: the per-contact
//! tables (`--notes`, `--conversations`, rows the API's JSON objects, each with its
//! `contact_id`, columns fixed per table: [`Col`]) and the changes file (rows of cells over the
//! export's columns, [`changes`](super::changes)). Each format's cells are written in one place
//! for every table, the main file's included: CSV text here ([`csv_text`]), XLSX cells by
//! [`xlsx::write_cell`](super::xlsx::write_cell), Parquet columns by
//! [`parquet::write_column`](super::parquet::write_column), each column stored as its [`Kind`]
//! says.
//!
//! JSONL keeps the whole object, one a line (timestamps as the API sends them). CSV has a header
//! and one row per object, text through the formula guard, timestamps as `--timestamps` says.
//! XLSX is one sheet like the export's (bold frozen header, typed cells, date cells). Parquet is a
//! typed table: ids and counts INT64 (`contact_id` and `id` required), timestamps TIMESTAMP
//! (milliseconds, UTC, whole seconds), flags BOOLEAN, text and JSON values UTF-8 strings, in row
//! groups of [`parquet::ROW_GROUP`] rows at most (fewer once they hold about
//! [`parquet::ROW_GROUP_BYTES`]), so memory stays flat. A value that does not fit its column
//! (text where the API should send a number) is written as text in CSV and XLSX and fails a
//! Parquet table naming the contact, column and value.
use std::fs::File;
use std::io::{BufWriter, Write};

use anyhow::{Context, bail};
use parquet::file::writer::SerializedFileWriter;
use rust_xlsxwriter::{Format as XFormat, Workbook};
use serde_json::Value;

use super::Format;
use super::atomic::AtomicFile;
use super::columns::{Cell, Timestamps};
use super::guard::guard;
use super::parquet::{ROW_GROUP, ROW_GROUP_BYTES};
use super::xlsx;

/// How a column is stored, in every table of an export (its main file included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An id that every row has (`contact_id`, `id`): INT64, required.
    Id,
    /// Any other integer: INT64.
    Int,
    /// Epoch seconds (an integer, a float or RFC 3339 text in the JSON): TIMESTAMP in Parquet, a
    /// date cell in XLSX and ISO text in CSV (with `--timestamps iso`).
    Time,
    /// A number: DOUBLE.
    Double,
    /// BOOLEAN.
    Flag,
    /// An ISO date (`YYYY-MM-DD`): DATE in Parquet, text elsewhere.
    Date,
    Text,
    /// Text that may look like a number (a phone number, an identifier): never a number cell.
    Key,
    /// A JSON value (array, object) kept as its JSON text.
    Json,
}

/// One column of a table as written: its header, its kind, and whether every row has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub kind: Kind,
    pub required: bool,
}

impl Field {
    /// An optional column, unless of [`Kind::Id`].
    pub fn new(name: impl Into<String>, kind: Kind) -> Field {
        Field {
            name: name.into(),
            kind,
            required: kind == Kind::Id,
        }
    }

    /// Every row has it (a null is an error in Parquet).
    pub fn required(mut self) -> Field {
        self.required = true;
        self
    }
}

/// One column of a per-contact table: its name, its kind, and the JSON pointer of its value in a
/// row.
#[derive(Debug, Clone, Copy)]
pub struct Col {
    pub name: &'static str,
    pub kind: Kind,
    pub pointer: &'static str,
}

/// Shorthand for the column lists of the tables.
pub const fn col(name: &'static str, kind: Kind, pointer: &'static str) -> Col {
    Col {
        name,
        kind,
        pointer,
    }
}

/// Epoch seconds of a JSON timestamp: a number (a float is floored) or text (digits or RFC 3339).
pub fn epoch_seconds(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.floor() as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok().or_else(|| {
            chrono::DateTime::parse_from_rfc3339(s.trim())
                .ok()
                .map(|d| d.timestamp())
        }),
        _ => None,
    }
}

/// The value of `col` in `row`: `Empty` when absent or null, `Text` of the JSON when it does not
/// fit the kind.
pub fn cell(row: &Value, col: &Col) -> Cell {
    let Some(v) = row.pointer(col.pointer).filter(|v| !v.is_null()) else {
        return Cell::Empty;
    };
    let fitted = match (col.kind, v) {
        (Kind::Id | Kind::Int, Value::Number(n)) => n.as_i64().map(Cell::Int),
        (Kind::Time, v) => epoch_seconds(v).map(Cell::Int),
        (Kind::Flag, Value::Bool(b)) => Some(Cell::Bool(*b)),
        (Kind::Text, Value::String(s)) => Some(Cell::Text(s.clone())),
        (Kind::Json, v) => Some(Cell::Text(v.to_string())),
        _ => None,
    };
    fitted.unwrap_or_else(|| match v {
        Value::String(s) => Cell::Text(s.clone()),
        other => Cell::Text(other.to_string()),
    })
}

/// A per-contact table being written into its temporary file.
pub trait RowWriter: Send {
    fn write(&mut self, row: &Value) -> anyhow::Result<()>;
    /// Write what is left and flush; the rows written.
    fn finish(self: Box<Self>) -> anyhow::Result<u64>;
}

/// A CSV, XLSX or Parquet table being written into its temporary file.
pub trait CellWriter: Send {
    /// One row: a cell per field, of the contact `contact` (named by a Parquet error).
    fn write(&mut self, contact: u64, cells: Vec<Cell>) -> anyhow::Result<()>;
    /// Write what is left and flush; the rows written.
    fn finish(self: Box<Self>) -> anyhow::Result<u64>;
}

/// A writer of the per-contact table `name` (its XLSX sheet: `Notes`) with `columns` in
/// `format` into `file` (through a clone of the temporary file's handle).
pub fn create(
    file: &mut AtomicFile,
    format: Format,
    (name, columns): (&str, &'static [Col]),
    ts: Timestamps,
) -> anyhow::Result<Box<dyn RowWriter>> {
    if format == Format::Jsonl {
        let (out, shown) = buffered(file)?;
        return Ok(Box::new(Jsonl {
            out,
            shown,
            rows: 0,
        }));
    }
    let fields = columns.iter().map(|c| Field::new(c.name, c.kind)).collect();
    let cells = table(file, format, (name, fields), ts)?;
    Ok(Box::new(Json { columns, cells }))
}

/// A writer of the table `name` (its XLSX sheet: `Changes`) with `fields` in `format` (CSV,
/// XLSX or Parquet) into `file` (through a clone of the temporary file's handle).
pub fn table(
    file: &mut AtomicFile,
    format: Format,
    (name, fields): (&str, Vec<Field>),
    ts: Timestamps,
) -> anyhow::Result<Box<dyn CellWriter>> {
    let (out, shown) = buffered(file)?;
    Ok(match format {
        Format::Jsonl => bail!("{shown}: JSONL is not a table of cells"),
        Format::Csv => Box::new(Csv::new(out, shown, &fields, ts)?),
        Format::Xlsx => Box::new(Xlsx::new(out, (shown, name), fields, ts)?),
        Format::Parquet => Box::new(Parquet::new(out, shown, fields)?),
    })
}

/// A buffered clone of `file`'s handle, and its name for errors.
fn buffered(file: &mut AtomicFile) -> anyhow::Result<(BufWriter<File>, String)> {
    let shown = file.target().display().to_string();
    let handle = file
        .file()
        .try_clone()
        .with_context(|| format!("{shown}: cannot write"))?;
    Ok((BufWriter::with_capacity(256 * 1024, handle), shown))
}

struct Jsonl {
    out: BufWriter<File>,
    shown: String,
    rows: u64,
}

impl RowWriter for Jsonl {
    fn write(&mut self, row: &Value) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.out, row)
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"))
            .with_context(|| format!("{}: cannot write", self.shown))?;
        self.rows += 1;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> anyhow::Result<u64> {
        self.out
            .flush()
            .with_context(|| format!("{}: cannot write", self.shown))?;
        Ok(self.rows)
    }
}

/// A per-contact table as cells: each row's values at the columns' pointers.
struct Json {
    columns: &'static [Col],
    cells: Box<dyn CellWriter>,
}

impl RowWriter for Json {
    fn write(&mut self, row: &Value) -> anyhow::Result<()> {
        let contact = row["contact_id"].as_u64().unwrap_or_default();
        let cells = self.columns.iter().map(|c| cell(row, c)).collect();
        self.cells.write(contact, cells)
    }

    fn finish(self: Box<Self>) -> anyhow::Result<u64> {
        self.cells.finish()
    }
}

/// `c` as CSV text in a column of `kind`: timestamps as `ts` says, text through the formula guard.
pub fn csv_text(c: Cell, kind: Kind, ts: Timestamps) -> String {
    match (c, kind) {
        (Cell::Int(t), Kind::Time) => match (ts, chrono::DateTime::from_timestamp(t, 0)) {
            (Timestamps::Iso, Some(d)) => d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            _ => t.to_string(),
        },
        (Cell::Text(s), _) => guard(&s).into_owned(),
        (other, _) => other.to_text(),
    }
}

struct Csv {
    w: csv::Writer<BufWriter<File>>,
    shown: String,
    kinds: Vec<Kind>,
    ts: Timestamps,
    rows: u64,
}

impl Csv {
    fn new(
        out: BufWriter<File>,
        shown: String,
        fields: &[Field],
        ts: Timestamps,
    ) -> anyhow::Result<Csv> {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(fields.iter().map(|f| &f.name))
            .with_context(|| format!("{shown}: cannot write the header"))?;
        Ok(Csv {
            w,
            shown,
            kinds: fields.iter().map(|f| f.kind).collect(),
            ts,
            rows: 0,
        })
    }
}

impl CellWriter for Csv {
    fn write(&mut self, _: u64, cells: Vec<Cell>) -> anyhow::Result<()> {
        let ts = self.ts;
        let record = cells
            .into_iter()
            .zip(&self.kinds)
            .map(|(c, k)| csv_text(c, *k, ts));
        self.w
            .write_record(record)
            .with_context(|| format!("{}: cannot write", self.shown))?;
        self.rows += 1;
        Ok(())
    }

    fn finish(self: Box<Self>) -> anyhow::Result<u64> {
        let shown = self.shown;
        self.w
            .into_inner()
            .map_err(|e| anyhow::anyhow!("{shown}: cannot write: {}", e.error()))?
            .flush()
            .with_context(|| format!("{shown}: cannot write"))?;
        Ok(self.rows)
    }
}

struct Xlsx {
    out: BufWriter<File>,
    wb: Workbook,
    shown: String,
    kinds: Vec<Kind>,
    ts: Timestamps,
    date: XFormat,
    rows: u64,
}

impl Xlsx {
    fn new(
        out: BufWriter<File>,
        (shown, name): (String, &str),
        fields: Vec<Field>,
        ts: Timestamps,
    ) -> anyhow::Result<Xlsx> {
        let mut wb = Workbook::new();
        let mut sheet = name.to_string();
        if let Some(first) = sheet.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        xlsx::sheet(&mut wb, &sheet, &fields)
            .with_context(|| format!("{shown}: cannot start the XLSX sheet"))?;
        Ok(Xlsx {
            out,
            wb,
            shown,
            kinds: fields.iter().map(|f| f.kind).collect(),
            ts,
            date: xlsx::date_format(),
            rows: 0,
        })
    }
}

impl CellWriter for Xlsx {
    fn write(&mut self, contact: u64, cells: Vec<Cell>) -> anyhow::Result<()> {
        if self.rows + 2 > xlsx::MAX_ROWS {
            bail!(
                "{}: more rows than one XLSX sheet holds ({}): use CSV, JSONL or Parquet",
                self.shown,
                xlsx::MAX_ROWS - 1
            );
        }
        self.rows += 1;
        let r = self.rows as u32;
        let ws = self.wb.worksheet_from_index(0)?;
        for (i, (c, kind)) in cells.into_iter().zip(&self.kinds).enumerate() {
            xlsx::write_cell(ws, (r, i as u16), c, *kind, self.ts, &self.date)
                .with_context(|| format!("{}: row {}: contact {contact}", self.shown, r + 1))?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> anyhow::Result<u64> {
        let last = (self.kinds.len() as u16).saturating_sub(1);
        let ws = self.wb.worksheet_from_index(0)?;
        ws.autofilter(0, 0, self.rows as u32, last)?;
        self.wb
            .save_to_writer(&mut self.out)
            .with_context(|| format!("{}: cannot write the XLSX file", self.shown))?;
        self.out
            .flush()
            .with_context(|| format!("{}: cannot write", self.shown))?;
        Ok(self.rows)
    }
}

/// Parquet: the current row group, column by column, and the contact of each row.
struct Parquet {
    w: SerializedFileWriter<BufWriter<File>>,
    shown: String,
    fields: Vec<Field>,
    columns: Vec<Vec<Cell>>,
    contacts: Vec<u64>,
    bytes: usize,
    rows: u64,
}

/// About what `c` takes in memory.
fn cell_bytes(c: &Cell) -> usize {
    std::mem::size_of::<Cell>()
        + match c {
            Cell::Text(s) => s.len(),
            _ => 0,
        }
}

impl Parquet {
    fn new(out: BufWriter<File>, shown: String, fields: Vec<Field>) -> anyhow::Result<Parquet> {
        let schema = fields
            .iter()
            .map(super::parquet::field)
            .collect::<Result<_, _>>()?;
        let w = super::parquet::file_writer(out, "rows", schema).with_context(|| shown.clone())?;
        Ok(Parquet {
            w,
            shown,
            columns: vec![vec![]; fields.len()],
            fields,
            contacts: vec![],
            bytes: 0,
            rows: 0,
        })
    }

    /// The row group gathered so far into the file.
    fn flush_group(&mut self) -> anyhow::Result<()> {
        if self.contacts.is_empty() {
            return Ok(());
        }
        let mut rg = self.w.next_row_group()?;
        for (f, cells) in self.fields.iter().zip(&mut self.columns) {
            let mut cw = rg.next_column()?.context("the schema ran out of columns")?;
            let cells = self.contacts.iter().copied().zip(cells.drain(..));
            super::parquet::write_column(&mut cw, f, cells)
                .with_context(|| format!("{}: Parquet column {}", self.shown, f.name))?;
            cw.close()?;
        }
        rg.close()
            .with_context(|| format!("{}: cannot write a row group", self.shown))?;
        self.contacts.clear();
        self.bytes = 0;
        Ok(())
    }
}

impl CellWriter for Parquet {
    fn write(&mut self, contact: u64, cells: Vec<Cell>) -> anyhow::Result<()> {
        if cells.len() != self.fields.len() {
            bail!(
                "{}: contact {contact}: {} cells for {} columns",
                self.shown,
                cells.len(),
                self.fields.len()
            );
        }
        for (column, c) in self.columns.iter_mut().zip(cells) {
            self.bytes += cell_bytes(&c);
            column.push(c);
        }
        self.contacts.push(contact);
        self.rows += 1;
        if self.contacts.len() >= ROW_GROUP || self.bytes >= ROW_GROUP_BYTES {
            self.flush_group()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> anyhow::Result<u64> {
        let shown = self.shown.clone();
        self.flush_group()?;
        self.w
            .into_inner()
            .with_context(|| format!("{shown}: cannot finish the Parquet file"))?
            .flush()
            .with_context(|| format!("{shown}: cannot write"))?;
        Ok(self.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const COLS: [Col; 3] = [
        col("id", Kind::Id, "/id"),
        col("at", Kind::Time, "/at"),
        col("who", Kind::Text, "/user/name"),
    ];

    #[test]
    fn cells_follow_the_column_kind_and_keep_what_does_not_fit_as_text() {
        let row = json!({"id": 3, "at": 1711000000.7, "user": {"name": "=x"}});
        assert_eq!(cell(&row, &COLS[0]), Cell::Int(3));
        assert_eq!(cell(&row, &COLS[1]), Cell::Int(1711000000));
        assert_eq!(cell(&row, &COLS[2]), Cell::Text("=x".into()));
        let odd = json!({"id": "x", "at": "2024-03-21T05:46:40Z", "user": null});
        assert_eq!(cell(&odd, &COLS[0]), Cell::Text("x".into()));
        assert_eq!(cell(&odd, &COLS[1]), Cell::Int(1711000000));
        assert_eq!(cell(&odd, &COLS[2]), Cell::Empty);
    }

    /// The error of a Parquet table of `COLS` whose one row is `row`.
    fn parquet_error(row: Value) -> String {
        let dir = tempfile::tempdir().unwrap();
        let mut f = AtomicFile::create(&dir.path().join("t.parquet")).unwrap();
        let mut w = create(&mut f, Format::Parquet, ("t", &COLS), Timestamps::Iso).unwrap();
        w.write(&row).unwrap();
        format!("{:#}", w.finish().unwrap_err())
    }

    #[test]
    fn a_parquet_cell_that_does_not_fit_fails_naming_the_contact_and_column() {
        let e = parquet_error(json!({"contact_id": 7, "id": "x", "at": 1}));
        assert!(
            e.contains("Parquet column id") && e.contains("contact 7") && e.contains("\"x\""),
            "{e}"
        );
        let e = parquet_error(json!({"contact_id": 8, "at": 1}));
        assert!(e.contains("column id") && e.contains("Empty"), "{e}");
        let e = parquet_error(json!({"contact_id": 9, "id": 1, "at": "soon"}));
        assert!(e.contains("column at") && e.contains("soon"), "{e}");
    }

    #[test]
    fn a_parquet_table_is_typed_in_bounded_row_groups() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        use parquet::record::Field as P;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let mut f = AtomicFile::create(&path).unwrap();
        let fields = vec![
            Field::new("change", Kind::Text).required(),
            Field::new("id", Kind::Id),
            Field::new("n", Kind::Double),
            Field::new("d", Kind::Date),
            Field::new("at", Kind::Time),
        ];
        let mut w = table(&mut f, Format::Parquet, ("t", fields), Timestamps::Iso).unwrap();
        let n = ROW_GROUP + 1;
        for i in 0..n {
            let d = Cell::Text("2024-03-21".into());
            let row = vec![
                Cell::Text(String::new()),
                Cell::Int(i as i64),
                Cell::Int(2),
                d,
            ];
            w.write(i as u64, [row, vec![Cell::Empty]].concat())
                .unwrap();
        }
        assert_eq!(w.finish().unwrap(), n as u64);
        f.commit().unwrap();
        let r = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        let m = r.metadata();
        assert_eq!(m.num_row_groups(), 2);
        assert_eq!(m.row_group(0).num_rows(), ROW_GROUP as i64);
        let row = r.get_row_iter(None).unwrap().last().unwrap().unwrap();
        let got: Vec<P> = row.get_column_iter().map(|(_, v)| v.clone()).collect();
        assert_eq!(
            got,
            [
                P::Str(String::new()),
                P::Long(ROW_GROUP as i64),
                P::Double(2.0),
                P::Date(19803),
                P::Null
            ]
        );
    }

    #[test]
    fn csv_rows_are_guarded_and_timestamps_iso() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = AtomicFile::create(&dir.path().join("t.csv")).unwrap();
        let mut w = create(&mut f, Format::Csv, ("t", &COLS), Timestamps::Iso).unwrap();
        w.write(&json!({"id": 3, "at": 1711000000, "user": {"name": "=x"}}))
            .unwrap();
        assert_eq!(w.finish().unwrap(), 1);
        f.commit().unwrap();
        let text = std::fs::read_to_string(dir.path().join("t.csv")).unwrap();
        assert_eq!(text, "id,at,who\n3,2024-03-21T05:46:40Z,'=x\n");
    }

    #[test]
    fn an_xlsx_table_is_one_named_sheet_with_typed_cells() {
        use calamine::{Data, Reader};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.xlsx");
        let mut f = AtomicFile::create(&path).unwrap();
        let mut w = create(&mut f, Format::Xlsx, ("notes", &COLS), Timestamps::Iso).unwrap();
        w.write(&json!({"id": 3, "at": 1711000000, "user": {"name": "=x"}}))
            .unwrap();
        w.write(&json!({"id": 4})).unwrap();
        assert_eq!(w.finish().unwrap(), 2);
        f.commit().unwrap();
        let mut book = calamine::open_workbook_auto(&path).unwrap();
        assert_eq!(book.sheet_names(), ["Notes"]);
        let range = book.worksheet_range("Notes").unwrap();
        let rows: Vec<_> = range.rows().collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0][2], Data::String("who".into()));
        assert_eq!(rows[1][0], Data::Float(3.0));
        assert!(matches!(rows[1][1], Data::DateTime(_)), "{:?}", rows[1][1]);
        assert_eq!(
            rows[1][2],
            Data::String("=x".into()),
            "a text cell, never a formula"
        );
        assert_eq!(rows[2][0], Data::Float(4.0));
        assert_eq!(rows[2][1], Data::Empty);
    }
}
