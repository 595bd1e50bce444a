//! The per-contact tables of an export (`--notes`, `--conversations`) in any of the four formats:
//! rows are the API's JSON objects, each with its `contact_id`; the columns are fixed per table
//! ([`Col`]: a name, how the value is stored, where it sits in the object).
//!
//! JSONL keeps the whole object, one a line (timestamps as the API sends them). CSV has a header
//! and one row per object, text through the formula guard, timestamps as `--timestamps` says.
//! XLSX is one sheet like the export's (bold frozen header, typed cells, date cells). Parquet is a
//! typed table: ids and counts INT64 (`contact_id` and `id` required), timestamps TIMESTAMP
//! (milliseconds, UTC, whole seconds), flags BOOLEAN, text and JSON values UTF-8 strings, in row
//! groups of [`parquet::ROW_GROUP`] so memory stays flat. A value that does not fit its column
//! (text where the API should send a number) is written as text in CSV and XLSX and fails a
//! Parquet table naming the contact, column and value.
use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::Arc;

use anyhow::{Context, bail};
use parquet::basic::{LogicalType, Repetition, TimeUnit, Type as Physical};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, Int64Type};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use rust_xlsxwriter::{ExcelDateTime, Format as XFormat, Workbook};
use serde_json::Value;

use super::Format;
use super::atomic::AtomicFile;
use super::columns::{Cell, Timestamps};
use super::guard::guard;

/// How a column's value is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An id that every row has (`contact_id`, `id`): INT64, required.
    Id,
    /// Any other integer.
    Int,
    /// Epoch seconds (an integer, a float or RFC 3339 text in the JSON).
    Time,
    Text,
    Flag,
    /// A JSON value (array, object) kept as its JSON text.
    Json,
}

/// One column of a table: its name, its kind, and the JSON pointer of its value in a row.
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

/// A table being written into its temporary file.
pub trait RowWriter: Send {
    fn write(&mut self, row: &Value) -> anyhow::Result<()>;
    /// Write what is left and flush; the rows written.
    fn finish(self: Box<Self>) -> anyhow::Result<u64>;
}

/// A writer of the table `name` (its XLSX sheet: `Notes`) with `columns` in `format` into
/// `file` (through a clone of the temporary file's handle).
pub fn create(
    file: &mut AtomicFile,
    format: Format,
    (name, columns): (&str, &'static [Col]),
    ts: Timestamps,
) -> anyhow::Result<Box<dyn RowWriter>> {
    let shown = file.target().display().to_string();
    let handle = file
        .file()
        .try_clone()
        .with_context(|| format!("{shown}: cannot write"))?;
    let out = BufWriter::with_capacity(256 * 1024, handle);
    Ok(match format {
        Format::Jsonl => Box::new(Jsonl {
            out,
            shown,
            rows: 0,
        }),
        Format::Csv => Box::new(Csv::new(out, shown, columns, ts)?),
        Format::Xlsx => Box::new(Xlsx::new(out, (shown, name), columns, ts)?),
        Format::Parquet => Box::new(Parquet::new(out, shown, columns)?),
    })
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

struct Csv {
    w: csv::Writer<BufWriter<File>>,
    shown: String,
    columns: &'static [Col],
    ts: Timestamps,
    rows: u64,
}

impl Csv {
    fn new(
        out: BufWriter<File>,
        shown: String,
        columns: &'static [Col],
        ts: Timestamps,
    ) -> anyhow::Result<Csv> {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(columns.iter().map(|c| c.name))
            .with_context(|| format!("{shown}: cannot write the header"))?;
        Ok(Csv {
            w,
            shown,
            columns,
            ts,
            rows: 0,
        })
    }
}

/// `t` epoch seconds as `--timestamps` writes them in CSV.
fn csv_time(t: i64, ts: Timestamps) -> String {
    match (ts, chrono::DateTime::from_timestamp(t, 0)) {
        (Timestamps::Iso, Some(d)) => d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        _ => t.to_string(),
    }
}

impl RowWriter for Csv {
    fn write(&mut self, row: &Value) -> anyhow::Result<()> {
        let record = self.columns.iter().map(|col| match cell(row, col) {
            Cell::Int(t) if col.kind == Kind::Time => csv_time(t, self.ts),
            Cell::Text(s) => guard(&s).into_owned(),
            other => other.to_text(),
        });
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

/// Rows a sheet holds, header included.
const XLSX_MAX_ROWS: u64 = 1_048_576;

struct Xlsx {
    out: BufWriter<File>,
    wb: Workbook,
    shown: String,
    columns: &'static [Col],
    ts: Timestamps,
    date: XFormat,
    rows: u64,
}

impl Xlsx {
    fn new(
        out: BufWriter<File>,
        (shown, name): (String, &str),
        columns: &'static [Col],
        ts: Timestamps,
    ) -> anyhow::Result<Xlsx> {
        let mut wb = Workbook::new();
        let bold = XFormat::new().set_bold();
        let ws = wb
            .add_worksheet_with_constant_memory()
            .with_context(|| format!("{shown}: cannot start the XLSX sheet"))?;
        let mut sheet = name.to_string();
        if let Some(first) = sheet.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        ws.set_name(sheet)?;
        ws.set_freeze_panes(1, 0)?;
        for (i, c) in columns.iter().enumerate() {
            ws.set_column_width(i as u16, if c.kind == Kind::Time { 21.0 } else { 18.0 })?;
            ws.write_string_with_format(0, i as u16, c.name, &bold)?;
        }
        Ok(Xlsx {
            out,
            wb,
            shown,
            columns,
            ts,
            date: XFormat::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            rows: 0,
        })
    }
}

impl RowWriter for Xlsx {
    fn write(&mut self, row: &Value) -> anyhow::Result<()> {
        if self.rows + 2 > XLSX_MAX_ROWS {
            bail!(
                "{}: more rows than one XLSX sheet holds ({}): use CSV, JSONL or Parquet",
                self.shown,
                XLSX_MAX_ROWS - 1
            );
        }
        self.rows += 1;
        let r = self.rows as u32;
        let ws = self.wb.worksheet_from_index(0)?;
        for (i, col) in self.columns.iter().enumerate() {
            let i = i as u16;
            match cell(row, col) {
                Cell::Int(t) if col.kind == Kind::Time && self.ts == Timestamps::Iso => {
                    match ExcelDateTime::from_timestamp(t) {
                        Ok(d) => ws.write_datetime_with_format(r, i, d, &self.date)?,
                        Err(_) => ws.write_number(r, i, t as f64)?,
                    }
                }
                Cell::Empty => ws,
                Cell::Text(s) => ws.write_string(r, i, s)?,
                Cell::Int(n) => ws.write_number(r, i, n as f64)?,
                Cell::Float(f) => ws.write_number(r, i, f)?,
                Cell::Bool(b) => ws.write_boolean(r, i, b)?,
            };
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> anyhow::Result<u64> {
        let last = (self.columns.len() as u16).saturating_sub(1);
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

/// Parquet: the rows of the current row group, as cells.
struct Parquet {
    w: SerializedFileWriter<BufWriter<File>>,
    shown: String,
    columns: &'static [Col],
    group: Vec<Vec<Cell>>,
    rows: u64,
}

/// The Parquet field of a column.
fn parquet_field(c: &Col) -> anyhow::Result<Arc<Type>> {
    let millis = LogicalType::timestamp(true, TimeUnit::MILLIS);
    let (physical, logical) = match c.kind {
        Kind::Id | Kind::Int => (Physical::INT64, None),
        Kind::Time => (Physical::INT64, Some(millis)),
        Kind::Flag => (Physical::BOOLEAN, None),
        Kind::Text | Kind::Json => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
    };
    let repetition = match c.kind {
        Kind::Id => Repetition::REQUIRED,
        _ => Repetition::OPTIONAL,
    };
    Type::primitive_type_builder(c.name, physical)
        .with_repetition(repetition)
        .with_logical_type(logical)
        .build()
        .map(Arc::new)
        .with_context(|| format!("Parquet column {}", c.name))
}

impl Parquet {
    fn new(
        out: BufWriter<File>,
        shown: String,
        columns: &'static [Col],
    ) -> anyhow::Result<Parquet> {
        let fields = columns
            .iter()
            .map(parquet_field)
            .collect::<Result<_, _>>()?;
        let w = super::parquet::file_writer(out, "rows", fields).with_context(|| shown.clone())?;
        Ok(Parquet {
            w,
            shown,
            columns,
            group: vec![],
            rows: 0,
        })
    }

    /// The row group gathered so far into the file.
    fn flush_group(&mut self) -> anyhow::Result<()> {
        if self.group.is_empty() {
            return Ok(());
        }
        let mut rg = self.w.next_row_group()?;
        for (i, col) in self.columns.iter().enumerate() {
            let mut cw = rg.next_column()?.context("the schema ran out of columns")?;
            let cells = self.group.iter().map(|r| &r[i]);
            match col.kind {
                Kind::Flag => {
                    let (vals, def) = defined(cells, |c| match c {
                        Cell::Bool(b) => Some(*b),
                        _ => None,
                    });
                    cw.typed::<BoolType>()
                        .write_batch(&vals, Some(&def), None)?
                }
                Kind::Text | Kind::Json => {
                    let (vals, def) = defined(cells, |c| match c {
                        Cell::Text(s) => Some(ByteArray::from(s.as_str())),
                        _ => None,
                    });
                    cw.typed::<ByteArrayType>()
                        .write_batch(&vals, Some(&def), None)?
                }
                kind => {
                    let scale = if kind == Kind::Time { 1000 } else { 1 };
                    let (vals, def) = defined(cells, |c| match c {
                        Cell::Int(n) => n.checked_mul(scale),
                        _ => None,
                    });
                    let def = (kind != Kind::Id).then_some(&def[..]);
                    cw.typed::<Int64Type>().write_batch(&vals, def, None)?
                }
            };
            cw.close()?;
        }
        rg.close()?;
        self.group.clear();
        Ok(())
    }
}

/// The values of `cells` that `get` takes (an empty cell is a null), and the definition levels.
fn defined<'c, T>(
    cells: impl Iterator<Item = &'c Cell>,
    get: impl Fn(&Cell) -> Option<T>,
) -> (Vec<T>, Vec<i16>) {
    let (mut vals, mut def) = (vec![], vec![]);
    for c in cells {
        match get(c) {
            Some(v) => {
                vals.push(v);
                def.push(1);
            }
            None => def.push(0),
        }
    }
    (vals, def)
}

/// Whether `c` can go in a Parquet column of `kind` (an empty cell only when it is optional).
fn fits(kind: Kind, c: &Cell) -> bool {
    match (kind, c) {
        (Kind::Id, Cell::Empty) => false,
        (_, Cell::Empty) => true,
        (Kind::Id | Kind::Int, Cell::Int(_)) => true,
        (Kind::Time, Cell::Int(t)) => t.checked_mul(1000).is_some(),
        (Kind::Flag, Cell::Bool(_)) => true,
        (Kind::Text | Kind::Json, Cell::Text(_)) => true,
        _ => false,
    }
}

impl RowWriter for Parquet {
    fn write(&mut self, row: &Value) -> anyhow::Result<()> {
        let cells: Vec<Cell> = self.columns.iter().map(|c| cell(row, c)).collect();
        for (col, c) in self.columns.iter().zip(&cells) {
            if !fits(col.kind, c) {
                bail!(
                    "{}: contact {}: {} {c:?} does not fit a {:?} column",
                    self.shown,
                    row["contact_id"],
                    col.name,
                    col.kind
                );
            }
        }
        self.group.push(cells);
        self.rows += 1;
        if self.group.len() >= super::parquet::ROW_GROUP {
            self.flush_group()
                .with_context(|| format!("{}: cannot write a row group", self.shown))?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> anyhow::Result<u64> {
        let shown = self.shown.clone();
        self.flush_group()
            .with_context(|| format!("{shown}: cannot write a row group"))?;
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
        assert!(!fits(Kind::Id, &Cell::Text("x".into())));
        assert!(!fits(Kind::Id, &Cell::Empty));
        assert!(fits(Kind::Int, &Cell::Empty));
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
