//! XLSX export through `rust_xlsxwriter` in constant-memory mode (rows are streamed to a temporary
//! file, so memory stays flat): one sheet `Contacts`, a bold header frozen in place with an
//! autofilter over every column. Cells are typed for analysis: `id` and numeric attributes are
//! numbers, `created_at` and `last_activity_at` are dates (UTC, `yyyy-mm-dd hh:mm:ss`; epoch
//! numbers with `--timestamps epoch`), booleans are booleans. Phone numbers and identifiers are
//! always text cells, so a spreadsheet never shows them in scientific notation or drops a `+` or
//! a leading zero; other text is text too (a string cell is never run as a formula, so no guard
//! is needed here).
use std::io::{Seek, Write};

use anyhow::Context;
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, Worksheet, XlsxError};

use super::columns::{Cell, Column, Layout, Timestamps, cell};
use crate::api::Contact;

/// Rows a sheet holds, header included.
const MAX_ROWS: u64 = 1_048_576;
/// Integers beyond this lose digits in a spreadsheet's doubles: written as text.
const EXACT_INT: i64 = 999_999_999_999_999;

/// One typed cell (see the module doc).
fn write_cell(
    ws: &mut Worksheet,
    (r, i): (u32, u16),
    c: &Contact,
    col: &Column,
    ts: Timestamps,
    date: &Format,
) -> Result<(), XlsxError> {
    // The epoch value, for a date cell or a number.
    let v = match col {
        Column::Core("id") => Cell::Int(i64::try_from(c.id).unwrap_or(i64::MAX)),
        _ if col.is_timestamp() => cell(c, col, Timestamps::Epoch),
        _ => cell(c, col, ts),
    };
    if let (Cell::Int(t), Timestamps::Iso, true) = (&v, ts, col.is_timestamp())
        && let Ok(d) = ExcelDateTime::from_timestamp(*t)
    {
        return ws.write_datetime_with_format(r, i, d, date).map(|_| ());
    }
    match v {
        Cell::Empty => Ok(()),
        Cell::Text(s) => ws.write_string(r, i, s).map(|_| ()),
        Cell::Int(n) if col.is_textual_key() || n.abs() > EXACT_INT => {
            ws.write_string(r, i, n.to_string()).map(|_| ())
        }
        Cell::Int(n) => ws.write_number(r, i, n as f64).map(|_| ()),
        Cell::Float(f) => ws.write_number(r, i, f).map(|_| ()),
        Cell::Bool(b) => ws.write_boolean(r, i, b).map(|_| ()),
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
    let bold = Format::new().set_bold();
    let ncols = layout.columns.len() as u16;
    let ws = wb
        .add_worksheet_with_constant_memory()
        .context("cannot start the XLSX sheet")?;
    ws.set_name("Contacts")?;
    ws.set_freeze_panes(1, 0)?;
    ws.autofilter(0, 0, rows as u32, ncols.saturating_sub(1))?;
    for (i, col) in layout.columns.iter().enumerate() {
        let width = if col.is_timestamp() { 21.0 } else { 18.0 };
        ws.set_column_width(i as u16, width)?;
    }
    for (i, h) in layout.headers().iter().enumerate() {
        ws.write_string_with_format(0, i as u16, h, &bold)?;
    }
    let date = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    let mut r: u32 = 0;
    for c in contacts {
        let c = c?;
        r += 1;
        for (i, col) in layout.columns.iter().enumerate() {
            let at = (r, i as u16);
            write_cell(ws, at, &c, col, ts, &date)
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
