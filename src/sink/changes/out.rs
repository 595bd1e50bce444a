//! The changes file `FILE.changes.<ext>`, in the export's format: `change`, `id`,
//! `changed_fields` (`;`-separated in CSV, XLSX and Parquet; an array in JSONL), then the
//! contact's values in the export's columns (JSONL: the contact object as the export writes it,
//! with `change` and `changed_fields` first).
//!
//! CSV, XLSX and Parquet go through the export's one table writer ([`table`]), each column typed
//! as the main file's ([`kind_of`]): timestamps are date cells in XLSX (with `--timestamps iso`)
//! and TIMESTAMP in Parquet, `id` INT64, attribute columns INT64, DOUBLE, BOOLEAN or DATE as the
//! account's values allow (the removed contacts' last values included: the caller observes them
//! into the set first), and the Parquet file ends with the raw attribute objects as the main one
//! does.
use std::io::Write;

use anyhow::Context;

use super::diff::Change;
use crate::sink::Format;
use crate::sink::atomic::AtomicFile;
use crate::sink::columns::{Cell, Column, ColumnSet, Timestamps};
use crate::sink::jsonl;
use crate::sink::parquet::{kind_of, raw_cell};
use crate::sink::table::{self, Field, Kind};
use crate::sink::xlsx::export_cell;

/// What a changes file is like: its format and timestamps, and its columns after `change`, `id`
/// and `changed_fields`: the export's (`id` left out: it comes second anyway), then the raw
/// attribute objects a Parquet file has.
pub struct Spec<'a> {
    pub format: Format,
    pub ts: Timestamps,
    pub export: &'a [Column],
    pub raw: &'a [&'static str],
    /// What the attribute columns hold (their type in Parquet).
    pub set: &'a ColumnSet,
    /// The export keeps `contact_inboxes` (JSONL: the key).
    pub contact_inboxes: bool,
}

/// Write `changes` into `file` as `spec` says; the rows written.
pub fn write(
    file: &mut AtomicFile,
    spec: Spec,
    changes: impl Iterator<Item = anyhow::Result<Change>>,
) -> anyhow::Result<u64> {
    let target = file.target().display().to_string();
    let rows = match spec.format {
        Format::Jsonl => write_jsonl(file, spec.contact_inboxes, spec.ts, changes),
        _ => write_table(file, spec, changes),
    };
    rows.with_context(|| format!("{target}: cannot write the changes file"))
}

fn write_table(
    file: &mut AtomicFile,
    spec: Spec,
    changes: impl Iterator<Item = anyhow::Result<Change>>,
) -> anyhow::Result<u64> {
    let export: Vec<&Column> = spec
        .export
        .iter()
        .filter(|c| **c != Column::Core("id"))
        .collect();
    let raw = match spec.format {
        Format::Parquet => spec.raw,
        _ => &[],
    };
    let mut fields = vec![
        Field::new("change", Kind::Text).required(),
        Field::new("id", Kind::Id),
        Field::new("changed_fields", Kind::Text).required(),
    ];
    let kind = |c: &Column| kind_of(c, spec.set);
    fields.extend(export.iter().map(|c| Field::new(c.to_string(), kind(c))));
    fields.extend(raw.iter().map(|r| Field::new(*r, Kind::Json)));
    let mut t = table::table(file, spec.format, ("changes", fields), spec.ts)?;
    for ch in changes {
        let Change {
            kind,
            fields,
            contact: c,
        } = ch?;
        let lead = [
            Cell::Text(kind.as_str().into()),
            export_cell(&c, &Column::Core("id")),
            Cell::Text(fields.join(";")),
        ];
        let values = export.iter().map(|col| export_cell(&c, col));
        let raws = raw.iter().map(|r| raw_cell(&c, r));
        t.write(c.id, lead.into_iter().chain(values).chain(raws).collect())?;
    }
    t.finish()
}

fn write_jsonl(
    file: &mut AtomicFile,
    inboxes: bool,
    ts: Timestamps,
    changes: impl Iterator<Item = anyhow::Result<Change>>,
) -> anyhow::Result<u64> {
    let mut w = file.writer();
    let (mut rows, mut buf) = (0, vec![]);
    for ch in changes {
        let ch = ch?;
        buf.clear();
        jsonl::write_line(&mut buf, &ch.contact, inboxes, ts);
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
