//! The changes file `FILE.changes.<ext>`, in the export's format: `change`, `id`,
//! `changed_fields` (`;`-separated in CSV, XLSX and Parquet; an array in JSONL), then the
//! contact's values in the export's columns (JSONL: the contact object as the export writes it,
//! with `change` and `changed_fields` first).
use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use parquet::basic::{LogicalType, Repetition, Type as Physical};
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::schema::types::Type;

use super::diff::Change;
use crate::sink::Format;
use crate::sink::atomic::AtomicFile;
use crate::sink::columns::{Cell, Column, Timestamps, cell};
use crate::sink::guard::guard;
use crate::sink::jsonl;
use crate::sink::parquet::{ROW_GROUP, file_writer};

/// The columns before the contact's.
const LEAD: [&str; 3] = ["change", "id", "changed_fields"];

/// Write `changes` into `file` in `format`, the contact's values in `columns` (the export's, `id`
/// left out: it comes second anyway); the rows written.
pub fn write(
    file: &mut AtomicFile,
    format: Format,
    columns: &[Column],
    ts: Timestamps,
    changes: impl Iterator<Item = anyhow::Result<Change>>,
) -> anyhow::Result<u64> {
    let target = file.target().display().to_string();
    let columns: Vec<Column> = columns
        .iter()
        .filter(|c| **c != Column::Core("id"))
        .cloned()
        .collect();
    let rows = match format {
        Format::Csv => write_csv(file, &columns, ts, changes),
        Format::Jsonl => write_jsonl(file, ts, changes),
        Format::Xlsx => write_xlsx(file, &columns, ts, changes),
        Format::Parquet => write_parquet(file, &columns, ts, changes),
    };
    rows.with_context(|| format!("{target}: cannot write the changes file"))
}

fn headers(columns: &[Column]) -> Vec<String> {
    let lead = LEAD.iter().map(|s| s.to_string());
    lead.chain(columns.iter().map(Column::to_string)).collect()
}

fn write_csv(
    file: &mut AtomicFile,
    columns: &[Column],
    ts: Timestamps,
    changes: impl Iterator<Item = anyhow::Result<Change>>,
) -> anyhow::Result<u64> {
    let mut w = csv::Writer::from_writer(file.writer());
    w.write_record(headers(columns))?;
    let mut rows = 0;
    for ch in changes {
        let ch = ch?;
        let c = &ch.contact;
        let lead = [
            ch.kind.as_str().into(),
            c.id.to_string(),
            ch.fields.join(";"),
        ];
        let cells = columns.iter().map(|col| match cell(c, col, ts) {
            Cell::Text(s) => guard(&s).into_owned(),
            other => other.to_text(),
        });
        w.write_record(lead.into_iter().chain(cells))?;
        rows += 1;
    }
    w.into_inner()
        .map_err(|e| anyhow::anyhow!("{}", e.error()))?
        .flush()?;
    Ok(rows)
}

fn write_jsonl(
    file: &mut AtomicFile,
    ts: Timestamps,
    changes: impl Iterator<Item = anyhow::Result<Change>>,
) -> anyhow::Result<u64> {
    let mut w = file.writer();
    let (mut rows, mut buf) = (0, vec![]);
    for ch in changes {
        let ch = ch?;
        buf.clear();
        jsonl::write_line(&mut buf, &ch.contact, false, ts);
        // `{"change":…,"changed_fields":[…],` then the contact object's keys.
        let lead = serde_json::json!({"change": ch.kind.as_str(), "changed_fields": ch.fields});
        let lead = lead.to_string();
        w.write_all(&lead.as_bytes()[..lead.len() - 1])?;
        w.write_all(b",")?;
        w.write_all(&buf[1..])?;
        rows += 1;
    }
    w.flush()?;
    Ok(rows)
}

/// A typed XLSX cell: numbers and booleans as such, text (timestamps included) as text.
fn xlsx_cell(
    ws: &mut rust_xlsxwriter::Worksheet,
    (r, i): (u32, u16),
    v: Cell,
    col: &Column,
) -> Result<(), rust_xlsxwriter::XlsxError> {
    match v {
        Cell::Empty => Ok(()),
        Cell::Int(n) if !col.is_textual_key() && n.abs() < 1_000_000_000_000_000 => {
            ws.write_number(r, i, n as f64).map(|_| ())
        }
        Cell::Float(f) => ws.write_number(r, i, f).map(|_| ()),
        Cell::Bool(b) => ws.write_boolean(r, i, b).map(|_| ()),
        other => ws.write_string(r, i, other.to_text()).map(|_| ()),
    }
}

fn write_xlsx(
    file: &mut AtomicFile,
    columns: &[Column],
    ts: Timestamps,
    changes: impl Iterator<Item = anyhow::Result<Change>>,
) -> anyhow::Result<u64> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet_with_constant_memory()?;
    ws.set_name("Changes")?;
    ws.set_freeze_panes(1, 0)?;
    let bold = rust_xlsxwriter::Format::new().set_bold();
    for (i, h) in headers(columns).iter().enumerate() {
        ws.write_string_with_format(0, i as u16, h, &bold)?;
    }
    let mut r: u32 = 0;
    for ch in changes {
        let ch = ch?;
        r = r
            .checked_add(1)
            .filter(|r| *r < 1_048_576)
            .context("more changes than one XLSX sheet holds: export to CSV or JSONL")?;
        ws.write_string(r, 0, ch.kind.as_str())?;
        ws.write_number(r, 1, ch.contact.id as f64)?;
        ws.write_string(r, 2, ch.fields.join(";"))?;
        for (i, col) in columns.iter().enumerate() {
            xlsx_cell(
                ws,
                (r, (i + LEAD.len()) as u16),
                cell(&ch.contact, col, ts),
                col,
            )?;
        }
    }
    wb.save_to_writer(file.file())?;
    Ok(u64::from(r))
}

fn string_field(name: &str, rep: Repetition) -> anyhow::Result<Arc<Type>> {
    let t = Type::primitive_type_builder(name, Physical::BYTE_ARRAY)
        .with_repetition(rep)
        .with_logical_type(Some(LogicalType::String))
        .build()?;
    Ok(Arc::new(t))
}

fn parquet_fields(columns: &[Column]) -> anyhow::Result<Vec<Arc<Type>>> {
    let id = Type::primitive_type_builder("id", Physical::INT64)
        .with_repetition(Repetition::REQUIRED)
        .build()?;
    let mut fields = vec![
        string_field("change", Repetition::REQUIRED)?,
        Arc::new(id),
        string_field("changed_fields", Repetition::REQUIRED)?,
    ];
    for c in columns {
        fields.push(string_field(&c.to_string(), Repetition::OPTIONAL)?);
    }
    Ok(fields)
}

/// One column of a Parquet row group: values, and the definition levels of an optional one.
enum Vals {
    Text(Vec<ByteArray>, Option<Vec<i16>>),
    Int(Vec<i64>),
}

fn text_vals(v: impl Iterator<Item = Option<String>>, optional: bool) -> Vals {
    let (mut vals, mut defs) = (vec![], vec![]);
    for s in v {
        defs.push(i16::from(s.is_some()));
        vals.extend(s.map(|s| ByteArray::from(s.as_str())));
    }
    Vals::Text(vals, optional.then_some(defs))
}

/// The columns of one row group.
fn group_columns(group: &[Change], columns: &[Column], ts: Timestamps) -> Vec<Vals> {
    let mut out = vec![
        text_vals(group.iter().map(|c| Some(c.kind.as_str().into())), false),
        Vals::Int(group.iter().map(|c| c.contact.id as i64).collect()),
        text_vals(group.iter().map(|c| Some(c.fields.join(";"))), false),
    ];
    for col in columns {
        let cells = group.iter().map(|c| match cell(&c.contact, col, ts) {
            Cell::Empty => None,
            v => Some(v.to_text()),
        });
        out.push(text_vals(cells, true));
    }
    out
}

/// Parquet: `id` INT64, every other column a string as CSV writes it (blank: null).
fn write_parquet(
    file: &mut AtomicFile,
    columns: &[Column],
    ts: Timestamps,
    changes: impl Iterator<Item = anyhow::Result<Change>>,
) -> anyhow::Result<u64> {
    let mut w = file_writer(file.file(), "changes", parquet_fields(columns)?)?;
    let (mut changes, mut rows) = (changes.peekable(), 0);
    let mut group = Vec::with_capacity(1024);
    while changes.peek().is_some() {
        group.clear();
        for ch in changes.by_ref().take(ROW_GROUP) {
            group.push(ch?);
        }
        rows += group.len() as u64;
        let mut rg = w.next_row_group()?;
        for v in group_columns(&group, columns, ts) {
            let mut cw = rg.next_column()?.context("the schema ran out of columns")?;
            match &v {
                Vals::Text(vals, defs) => {
                    let t = cw.typed::<ByteArrayType>();
                    t.write_batch(vals, defs.as_deref(), None)?
                }
                Vals::Int(ids) => cw.typed::<Int64Type>().write_batch(ids, None, None)?,
            };
            cw.close()?;
        }
        rg.close()?;
    }
    w.close()?;
    Ok(rows)
}
