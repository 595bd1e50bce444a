//! XLSX export through `rust_xlsxwriter` in constant-memory mode (rows are streamed to a temporary
//! file, so memory stays flat): one sheet `Contacts`, a bold header frozen in place with an
//! autofilter over every column. Ids, phone numbers and identifiers are always text cells, so a
//! spreadsheet never shows them in scientific notation or drops a `+` or a leading zero; other text
//! is text too (a string cell is never run as a formula, so no guard is needed here); epoch
//! timestamps and numeric attributes are numbers, booleans are booleans.
use std::io::{Seek, Write};

use anyhow::Context;
use rust_xlsxwriter::{Format, Workbook};

use super::columns::{Cell, Layout, Timestamps, cell};
use crate::api::Contact;

/// Rows a sheet holds, header included.
const MAX_ROWS: u64 = 1_048_576;
/// Integers beyond this lose digits in a spreadsheet's doubles: written as text.
const EXACT_INT: i64 = 999_999_999_999_999;

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
    let mut r: u32 = 0;
    for c in contacts {
        let c = c?;
        r += 1;
        for (i, col) in layout.columns.iter().enumerate() {
            let i = i as u16;
            let v = cell(&c, col, ts);
            let res = match v {
                Cell::Empty => continue,
                Cell::Text(s) => ws.write_string(r, i, s).map(|_| ()),
                Cell::Int(n) if col.is_textual_key() || n.abs() > EXACT_INT => {
                    ws.write_string(r, i, n.to_string()).map(|_| ())
                }
                Cell::Int(n) => ws.write_number(r, i, n as f64).map(|_| ()),
                Cell::Float(f) => ws.write_number(r, i, f).map(|_| ()),
                Cell::Bool(b) => ws.write_boolean(r, i, b).map(|_| ()),
            };
            res.with_context(|| format!("XLSX row {}, column {col}: contact {}", r + 1, c.id))?;
        }
    }
    if u64::from(r) != rows {
        anyhow::bail!("the XLSX sheet got {r} contacts where {rows} were counted");
    }
    wb.save_to_writer(out)
        .context("cannot write the XLSX file")?;
    Ok(())
}
