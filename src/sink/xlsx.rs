//! XLSX export through `rust_xlsxwriter` in constant-memory mode (rows are streamed to a temporary
//! file, so memory stays flat): one sheet `Contacts`, a bold header frozen in place with an
//! autofilter over every column. Cells are typed for analysis: `id` and numeric attributes are
//! numbers, `created_at` and `last_activity_at` are dates (UTC, `yyyy-mm-dd hh:mm:ss`; epoch
//! numbers with `--timestamps epoch`), booleans are booleans. Phone numbers and identifiers are
//! always text cells, so a spreadsheet never shows them in scientific notation or drops a `+` or
//! a leading zero; other text is text too (a string cell is never run as a formula, so no guard
//! is needed here). Every other sheet of an export (the changes file, notes, conversations:
//! [`table`](super::table)) is started by [`sheet`] and has its cells written by [`write_cell`].
use std::io::{Seek, Write};

use anyhow::Context;
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, Worksheet, XlsxError};

use super::columns::{Cell, Column, ColumnSet, Layout, Timestamps, cell};
use super::parquet::kind_of;
use super::table::{Field, Kind};
use crate::api::Contact;

/// Rows a sheet holds, header included.
pub const MAX_ROWS: u64 = 1_048_576;
/// Integers beyond this lose digits in a spreadsheet's doubles: written as text.
const EXACT_INT: i64 = 999_999_999_999_999;

/// The number format of a date cell.
pub fn date_format() -> Format {
    Format::new().set_num_format("yyyy-mm-dd hh:mm:ss")
}

/// The sheet `name` of every table: constant memory, a bold header of `fields` frozen in place,
/// timestamp columns wider.
pub fn sheet<'w>(
    wb: &'w mut Workbook,
    name: &str,
    fields: &[Field],
) -> Result<&'w mut Worksheet, XlsxError> {
    let bold = Format::new().set_bold();
    let ws = wb.add_worksheet_with_constant_memory()?;
    ws.set_name(name)?;
    ws.set_freeze_panes(1, 0)?;
    for (i, f) in fields.iter().enumerate() {
        let width = if f.kind == Kind::Time { 21.0 } else { 18.0 };
        ws.set_column_width(i as u16, width)?;
        ws.write_string_with_format(0, i as u16, &f.name, &bold)?;
    }
    Ok(ws)
}

/// One typed cell `v` of a column of `kind` (see the module doc): epoch seconds in a
/// [`Kind::Time`] column are a date with `--timestamps iso`; a [`Kind::Key`] is always text.
pub fn write_cell(
    ws: &mut Worksheet,
    (r, i): (u32, u16),
    v: Cell,
    kind: Kind,
    ts: Timestamps,
    date: &Format,
) -> Result<(), XlsxError> {
    if let (Cell::Int(t), Timestamps::Iso, Kind::Time) = (&v, ts, kind)
        && let Ok(d) = ExcelDateTime::from_timestamp(*t)
    {
        return ws.write_datetime_with_format(r, i, d, date).map(|_| ());
    }
    match v {
        Cell::Empty => Ok(()),
        Cell::Text(s) => ws.write_string(r, i, s).map(|_| ()),
        Cell::Int(n) if kind == Kind::Key || n.abs() > EXACT_INT => {
            ws.write_string(r, i, n.to_string()).map(|_| ())
        }
        Cell::Int(n) => ws.write_number(r, i, n as f64).map(|_| ()),
        Cell::Float(f) => ws.write_number(r, i, f).map(|_| ()),
        Cell::Bool(b) => ws.write_boolean(r, i, b).map(|_| ()),
    }
}

/// The cell of `c` in the export column `col`: timestamps in epoch seconds (the writer of each
/// format shows them as `--timestamps` says), `id` a number (its digits beyond INT64).
pub fn export_cell(c: &Contact, col: &Column) -> Cell {
    match col {
        Column::Core("id") => {
            i64::try_from(c.id).map_or_else(|_| Cell::Text(c.id.to_string()), Cell::Int)
        }
        _ => cell(c, col, Timestamps::Epoch),
    }
}

/// Write `rows` contacts (the count must be known: the autofilter covers them) from `contacts`
/// into `out`.
pub fn write<W, I>(
    out: W,
    layout: &Layout,
    ts: Timestamps,
    rows: u64,
    contacts: I,
) -> anyhow::Result<()>
where
    W: Write + Seek + Send,
    I: Iterator<Item = anyhow::Result<Contact>>,
{
    if rows + 1 > MAX_ROWS {
        anyhow::bail!(
            "{rows} contacts do not fit in one XLSX sheet (at most {} rows): export to CSV or JSONL",
            MAX_ROWS - 1
        );
    }
    let mut wb = Workbook::new();
    // The kinds of the columns that decide a cell's type in XLSX (timestamps, keys); an
    // attribute's cells carry their own type.
    let any = ColumnSet::default();
    let fields: Vec<Field> = layout
        .columns
        .iter()
        .map(|c| Field::new(c.to_string(), kind_of(c, &any)))
        .collect();
    let ws = sheet(&mut wb, "Contacts", &fields).context("cannot start the XLSX sheet")?;
    ws.autofilter(0, 0, rows as u32, (fields.len() as u16).saturating_sub(1))?;
    let date = date_format();
    let mut r: u32 = 0;
    for c in contacts {
        let c = c?;
        r += 1;
        for (i, (col, f)) in layout.columns.iter().zip(&fields).enumerate() {
            write_cell(ws, (r, i as u16), export_cell(&c, col), f.kind, ts, &date)
                .with_context(|| format!("XLSX row {}, column {col}: contact {}", r + 1, c.id))?;
        }
    }
    if u64::from(r) != rows {
        anyhow::bail!("the XLSX sheet got {r} contacts where {rows} were counted");
    }
    wb.save_to_writer(out)
        .context("cannot write the XLSX file")?;
    Ok(())
}
