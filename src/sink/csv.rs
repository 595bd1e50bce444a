//! CSV export: the header of the [`Layout`], then one row per contact; every text cell goes through
//! the formula guard. `--bom` puts a UTF-8 BOM first so that Excel reads the file as UTF-8.
use std::io::Write;

use anyhow::Context;

use super::columns::{Cell, Layout, Timestamps, cell};
use super::guard::guard;
use crate::api::Contact;

/// A CSV writer for one layout.
pub struct CsvSink<'l, W: Write> {
    w: csv::Writer<W>,
    layout: &'l Layout,
    ts: Timestamps,
    row: Vec<String>,
}

impl<'l, W: Write> CsvSink<'l, W> {
    /// Write the BOM (when asked) and the header.
    pub fn new(mut out: W, layout: &'l Layout, ts: Timestamps, bom: bool) -> anyhow::Result<Self> {
        if bom {
            out.write_all("\u{feff}".as_bytes())?;
        }
        let mut w = csv::WriterBuilder::new().from_writer(out);
        w.write_record(layout.headers())
            .context("cannot write the CSV header")?;
        Ok(CsvSink {
            w,
            layout,
            ts,
            row: Vec::with_capacity(layout.columns.len()),
        })
    }

    pub fn write(&mut self, c: &Contact) -> anyhow::Result<()> {
        self.row.clear();
        for col in &self.layout.columns {
            let v = cell(c, col, self.ts);
            self.row.push(match v {
                Cell::Text(s) => guard(&s).into_owned(),
                other => other.to_text(),
            });
        }
        self.w
            .write_record(&self.row)
            .with_context(|| format!("cannot write the CSV row of contact {}", c.id))
    }

    /// Flush everything to the underlying writer and hand it back.
    pub fn finish(self) -> anyhow::Result<W> {
        self.w
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot flush the CSV: {}", e.error()))
    }
}
