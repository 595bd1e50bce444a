//! Parquet export through the `parquet` crate's typed column writers (no Arrow): one row per
//! contact, the columns of the CSV [`Layout`] (so `--select`, `--exclude`, `--columns` and the
//! previous manifest pin them the same way), then the raw `custom_attributes` and
//! `additional_attributes` objects as JSON text, which read back losslessly.
//!
//! Types: `id` INT64; `created_at` and `last_activity_at` TIMESTAMP (milliseconds, UTC; the CLI
//! refuses `--timestamps` with Parquet, the manifest says `timestamp`); `blocked` BOOLEAN; the
//! other core fields UTF-8 strings. An attribute column is typed by what the account holds
//! ([`ColumnSet`]): all integers INT64, all numbers DOUBLE, all booleans BOOLEAN, all ISO dates
//! (`YYYY-MM-DD`) DATE, anything else (mixed types, objects, integers beyond 64 bits, integers
//! beyond 2^53 among fractions, which a DOUBLE would round) a string as CSV writes it. Every
//! column but `id` is optional: a blank value is null. Contacts come from the spool in row groups
//! of [`ROW_GROUP`], fewer for wide contacts ([`ROW_GROUP_BYTES`]), so memory stays flat in the
//! number of contacts. The other Parquet tables of an export (the changes file, notes,
//! conversations: [`table`](super::table)) have their fields made by [`field`] and their columns
//! written by [`write_column`], typed the same way.
use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as Physical};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DataType, DoubleType};
use parquet::data_type::{Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedColumnWriter, SerializedFileWriter};
use parquet::schema::types::Type;

use super::columns::{AttrKind, Cell, Column, ColumnSet, Layout, Selection, glob_match};
use super::table::{Field, Kind};
use super::xlsx::export_cell;
use crate::api::Contact;

/// Contacts per row group, at most.
pub const ROW_GROUP: usize = 10_000;

/// The most the contacts of one row group may take in memory (as [`heap_bytes`] estimates it):
/// wide contacts (many attributes, long texts) make groups of fewer rows, so that memory stays
/// bounded whatever the account's width. The generated contacts (~0.35 kB of JSON) fill 10,000
/// rows well within it.
pub const ROW_GROUP_BYTES: usize = 32 << 20;

/// The raw attribute objects, as JSON text, after the layout's columns.
pub const RAW_COLUMNS: [&str; 2] = ["custom_attributes", "additional_attributes"];

/// One column of the file: a layout column or a raw attribute object.
#[derive(Debug, Clone)]
struct Col {
    field: Field,
    source: Option<Column>,
}

/// The raw columns `s` keeps, and `s` without their names (which are no columns of the layout).
pub fn split_selection(s: &Selection) -> (Vec<&'static str>, Selection) {
    let any = |pats: &[String], h: &str| pats.iter().any(|p| glob_match(p, h));
    let raw = RAW_COLUMNS
        .into_iter()
        .filter(|h| (s.select.is_empty() || any(&s.select, h)) && !any(&s.exclude, h))
        .collect();
    let rest = |pats: &[String]| -> Vec<String> {
        let is_raw = |p: &String| RAW_COLUMNS.contains(&p.as_str());
        pats.iter().filter(|p| !is_raw(p)).cloned().collect()
    };
    let mut layout_sel = Selection {
        select: rest(&s.select),
        exclude: rest(&s.exclude),
    };
    if layout_sel.select.is_empty() && !s.select.is_empty() {
        // Only raw columns were selected: no layout column is kept.
        layout_sel.exclude.push("*".into());
    }
    (raw, layout_sel)
}

/// How the export column `col` is stored, its attributes typed by what `set` observed (see the
/// module doc): every table over the export's columns (its changes file) types them the same.
pub fn kind_of(col: &Column, set: &ColumnSet) -> Kind {
    match col {
        Column::Core("id") => Kind::Id,
        Column::Core("blocked") => Kind::Flag,
        c if c.is_timestamp() => Kind::Time,
        c if c.is_textual_key() => Kind::Key,
        Column::Custom(_) | Column::Additional(_) => {
            let name = col.to_string();
            if set.loose.contains(&name) {
                return Kind::Text;
            }
            match set.kinds.get(&name) {
                Some(AttrKind::Int) => Kind::Int,
                Some(AttrKind::Number) if set.wide.contains(&name) => Kind::Text,
                Some(AttrKind::Number) => Kind::Double,
                Some(AttrKind::Bool) => Kind::Flag,
                Some(AttrKind::Text) => Kind::Date,
                _ => Kind::Text,
            }
        }
        _ => Kind::Text,
    }
}

/// The Parquet field of `f`: INT64 ids and integers, TIMESTAMP (milliseconds, UTC) times, DOUBLE,
/// BOOLEAN, DATE, and UTF-8 strings for text, keys and JSON; optional unless required.
pub fn field(f: &Field) -> anyhow::Result<Arc<Type>> {
    let (physical, logical) = match f.kind {
        Kind::Id | Kind::Int => (Physical::INT64, None),
        Kind::Time => (
            Physical::INT64,
            Some(LogicalType::timestamp(true, TimeUnit::MILLIS)),
        ),
        Kind::Double => (Physical::DOUBLE, None),
        Kind::Flag => (Physical::BOOLEAN, None),
        Kind::Date => (Physical::INT32, Some(LogicalType::Date)),
        Kind::Text | Kind::Key | Kind::Json => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
    };
    let rep = match f.required {
        true => Repetition::REQUIRED,
        false => Repetition::OPTIONAL,
    };
    let t = Type::primitive_type_builder(&f.name, physical)
        .with_repetition(rep)
        .with_logical_type(logical)
        .build()
        .with_context(|| format!("Parquet column {}", f.name))?;
    Ok(Arc::new(t))
}

/// A Parquet file of the `fields` into `out`, as every table of an export is written (Snappy).
pub fn file_writer<W: Write + Send>(
    out: W,
    name: &str,
    fields: Vec<Arc<Type>>,
) -> anyhow::Result<SerializedFileWriter<W>> {
    let schema = Type::group_type_builder(name)
        .with_fields(fields)
        .build()
        .context("the Parquet schema")?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("doto-bulk {}", env!("CARGO_PKG_VERSION")))
        .build();
    SerializedFileWriter::new(out, Arc::new(schema), Arc::new(props))
        .context("cannot start the Parquet file")
}

/// Days since 1970-01-01 of an ISO date `YYYY-MM-DD` that is a real day of the years 1 to 9999
/// and reads back as the same text (no `2024-02-30`, no padding chrono would skip, no year 0,
/// which Python's `datetime.date` cannot hold).
pub fn iso_date(s: &str) -> Option<i32> {
    if s.len() != 10
        || !s
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_digit() != (i == 4 || i == 7))
    {
        return None;
    }
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    if s.starts_with("0000") {
        return None;
    }
    let days = d
        .signed_duration_since(chrono::NaiveDate::default())
        .num_days();
    i32::try_from(days).ok()
}

/// Write `contacts` (the spool, in listing order) into `out`: the layout's columns, then the raw
/// attribute columns in `raw`.
pub fn write<W, I>(
    out: W,
    layout: &Layout,
    set: &ColumnSet,
    raw: &[&str],
    contacts: I,
) -> anyhow::Result<()>
where
    W: Write + Send,
    I: Iterator<Item = anyhow::Result<Contact>>,
{
    let mut cols: Vec<Col> = layout
        .columns
        .iter()
        .map(|c| Col {
            field: Field::new(c.to_string(), kind_of(c, set)),
            source: Some(c.clone()),
        })
        .collect();
    cols.extend(raw.iter().map(|r| Col {
        field: Field::new(*r, Kind::Json),
        source: None,
    }));
    let fields = cols
        .iter()
        .map(|c| field(&c.field))
        .collect::<anyhow::Result<_>>()?;
    let mut w = file_writer(out, "contacts", fields)?;
    let mut contacts = contacts;
    let mut group = Vec::with_capacity(ROW_GROUP.min(1024));
    loop {
        next_group(&mut contacts, &mut group, ROW_GROUP_BYTES)?;
        if group.is_empty() {
            break;
        }
        let mut rg = w
            .next_row_group()
            .context("cannot start a Parquet row group")?;
        for col in &cols {
            let mut cw = rg
                .next_column()?
                .context("the Parquet schema ran out of columns")?;
            let cells = group.iter().map(|c| (c.id, value(c, col)));
            write_column(&mut cw, &col.field, cells)
                .with_context(|| format!("Parquet column {}", col.field.name))?;
            cw.close()?;
        }
        rg.close().context("cannot write a Parquet row group")?;
    }
    w.close().context("cannot finish the Parquet file")?;
    Ok(())
}

/// Fill `group` with the next contacts: [`ROW_GROUP`] of them, fewer once they take `max_bytes`
/// (none at the end).
fn next_group<I>(contacts: &mut I, group: &mut Vec<Contact>, max_bytes: usize) -> anyhow::Result<()>
where
    I: Iterator<Item = anyhow::Result<Contact>>,
{
    group.clear();
    let mut bytes = 0;
    while group.len() < ROW_GROUP && bytes < max_bytes {
        let Some(c) = contacts.next() else { break };
        let c = c?;
        bytes += heap_bytes(&c);
        group.push(c);
    }
    Ok(())
}

/// About what `c` takes in memory once parsed: its texts and attribute trees, with a few words of
/// overhead a node.
fn heap_bytes(c: &Contact) -> usize {
    let texts = [
        &c.name,
        &c.email,
        &c.phone_number,
        &c.identifier,
        &c.thumbnail,
        &c.availability_status,
    ];
    let text: usize = texts
        .iter()
        .map(|t| t.as_ref().map_or(0, String::len))
        .sum();
    let inboxes: usize = c.contact_inboxes.iter().flatten().map(value_bytes).sum();
    std::mem::size_of::<Contact>()
        + text
        + map_bytes(&c.custom_attributes)
        + map_bytes(&c.additional_attributes)
        + inboxes
}

fn map_bytes(m: &serde_json::Map<String, serde_json::Value>) -> usize {
    m.iter().map(|(k, v)| 48 + k.len() + value_bytes(v)).sum()
}

fn value_bytes(v: &serde_json::Value) -> usize {
    use serde_json::Value;
    32 + match v {
        Value::String(s) => s.len(),
        Value::Array(a) => a.iter().map(value_bytes).sum(),
        Value::Object(m) => map_bytes(m),
        _ => 0,
    }
}

/// The value of `c` in `col`, as its cell (timestamps in epoch seconds); a raw column's object as
/// JSON text. An id beyond INT64 stays text, which the column refuses by name: no wrong id.
fn value(c: &Contact, col: &Col) -> Cell {
    match &col.source {
        Some(source) => export_cell(c, source),
        None => raw_cell(c, &col.field.name),
    }
}

/// The raw attribute object `name` ([`RAW_COLUMNS`]) of `c` as JSON text.
pub fn raw_cell(c: &Contact, name: &str) -> Cell {
    let m = match name == RAW_COLUMNS[0] {
        true => &c.custom_attributes,
        false => &c.additional_attributes,
    };
    Cell::Text(serde_json::Value::Object(m.clone()).to_string())
}

/// One column chunk of a row group: the `cells` of `f`, each with the contact of its row (which
/// an error names). A cell that does not fit the kind (text in an INT64 column, a null where the
/// field is required) is an error, never a wrong value; any cell fits a text column, as CSV
/// writes it.
pub fn write_column(
    w: &mut SerializedColumnWriter,
    f: &Field,
    cells: impl Iterator<Item = (u64, Cell)>,
) -> anyhow::Result<()> {
    let mismatch = |id: u64, v: &Cell| {
        anyhow::anyhow!("contact {id}: {v:?} does not fit a {:?} column", f.kind)
    };
    macro_rules! put {
        ($ty:ty, $conv:expr) => {{
            let conv: fn(&Cell) -> Option<<$ty as DataType>::T> = $conv;
            let (mut vals, mut def) = (vec![], vec![]);
            for (id, v) in cells {
                if v == Cell::Empty && !f.required {
                    def.push(0);
                    continue;
                }
                vals.push(conv(&v).ok_or_else(|| mismatch(id, &v))?);
                def.push(1);
            }
            let def = (!f.required).then_some(&def[..]);
            w.typed::<$ty>().write_batch(&vals, def, None)?;
        }};
    }
    match f.kind {
        Kind::Id | Kind::Int => put!(Int64Type, |v| match v {
            Cell::Int(i) => Some(*i),
            _ => None,
        }),
        Kind::Time => put!(Int64Type, |v| match v {
            Cell::Int(t) => t.checked_mul(1000),
            _ => None,
        }),
        Kind::Double => put!(DoubleType, |v| match v {
            Cell::Int(i) => Some(*i as f64),
            Cell::Float(f) => Some(*f),
            _ => None,
        }),
        Kind::Flag => put!(BoolType, |v| match v {
            Cell::Bool(b) => Some(*b),
            _ => None,
        }),
        Kind::Date => put!(Int32Type, |v| match v {
            Cell::Text(s) => iso_date(s),
            _ => None,
        }),
        Kind::Text | Kind::Key | Kind::Json => put!(ByteArrayType, |v| match v {
            Cell::Empty => None,
            Cell::Text(s) => Some(ByteArray::from(s.as_str())),
            other => Some(ByteArray::from(other.to_text().into_bytes())),
        }),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    #[test]
    fn contacts_go_in_bounded_row_groups_in_listing_order() {
        let n = 2 * ROW_GROUP + 1;
        let contact = |i: usize| -> anyhow::Result<Contact> {
            let v = serde_json::json!({"id": i + 1, "custom_attributes": {"n": i}});
            Ok(serde_json::from_value(v)?)
        };
        let mut set = ColumnSet::default();
        (0..n).for_each(|i| set.observe(&contact(i).unwrap()));
        let layout = Layout::build(&set, false, None);
        let mut out = vec![];
        write(&mut out, &layout, &set, &[], (0..n).map(contact)).unwrap();
        let r = SerializedFileReader::new(bytes::Bytes::from(out)).unwrap();
        let groups: Vec<i64> = r
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect();
        assert_eq!(groups, [ROW_GROUP as i64, ROW_GROUP as i64, 1]);
        for (i, row) in r.get_row_iter(None).unwrap().enumerate() {
            let row = row.unwrap();
            let mut cols = row.get_column_iter();
            assert_eq!(cols.next().unwrap().1, &Field::Long(i as i64 + 1));
            let n = cols.find(|(k, _)| *k == "custom_attributes.n").unwrap().1;
            assert_eq!(n, &Field::Long(i as i64));
        }
    }

    #[test]
    fn wide_contacts_make_groups_of_fewer_rows() {
        let contact = |i: u64, text: usize| -> anyhow::Result<Contact> {
            let v = serde_json::json!({"id": i, "custom_attributes": {"t": "x".repeat(text)}});
            Ok(serde_json::from_value(v)?)
        };
        let sizes = |text: usize, max_bytes: usize| {
            let mut it = (0..25_000).map(|i| contact(i, text));
            let mut group = vec![];
            let mut out = vec![];
            loop {
                next_group(&mut it, &mut group, max_bytes).unwrap();
                if group.is_empty() {
                    return out;
                }
                out.push(group.len());
            }
        };
        assert_eq!(sizes(10, ROW_GROUP_BYTES), [ROW_GROUP, ROW_GROUP, 5_000]);
        let one = heap_bytes(&contact(0, 1_000).unwrap());
        assert!((1_000..1_500).contains(&one), "{one}");
        let wide = sizes(1_000, 100 * one);
        assert!(wide[..wide.len() - 1].iter().all(|n| *n == 100), "{wide:?}");
        assert_eq!(wide.iter().sum::<usize>(), 25_000);
    }

    #[test]
    fn iso_dates_are_days_since_the_epoch() {
        assert_eq!(iso_date("1970-01-01"), Some(0));
        assert_eq!(iso_date("2024-03-21"), Some(19803));
        assert_eq!(iso_date("1969-12-31"), Some(-1));
        assert_eq!(iso_date("0001-01-01"), Some(-719162));
        assert_eq!(iso_date("9999-12-31"), Some(2932896));
        for no in [
            "2024-02-30",
            "2024-3-21",
            "2024-03-21T00:00",
            "21/03/2024",
            "",
            "2024-03- 1",
            " 2024-3-01",
            "+024-03-01",
            "2024-03-0١",
            "0000-01-01",
            "2024_03_01",
        ] {
            assert_eq!(iso_date(no), None, "{no}");
        }
    }

    fn contacts(attrs: &[serde_json::Value]) -> (Vec<Contact>, ColumnSet) {
        let mut set = ColumnSet::default();
        let cs: Vec<Contact> = attrs
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let v = serde_json::json!({"id": i + 1, "custom_attributes": a});
                serde_json::from_value(v).unwrap()
            })
            .collect();
        cs.iter().for_each(|c| set.observe(c));
        (cs, set)
    }

    #[test]
    fn columns_a_type_would_round_or_misread_are_text() {
        use serde_json::json;
        let (_, set) = contacts(&[
            json!({"wide": 9_007_199_254_740_993_i64, "ext": 9_007_199_254_740_993_i64, "f": 1}),
            json!({"wide": 0.5, "ext": 1, "big": u64::MAX, "f": 0.5, "d": "2024-02-29"}),
            json!({"big": 1, "d": "2024-02-30", "o": {"k": [1]}, "a": [], "n": null}),
        ]);
        let kind = |k: &str| kind_of(&Column::Custom(k.into()), &set);
        assert_eq!(
            kind("wide"),
            Kind::Text,
            "an integer beyond 2^53 among fractions"
        );
        assert_eq!(kind("ext"), Kind::Int, "integers stay INT64 however large");
        assert_eq!(kind("f"), Kind::Double);
        assert_eq!(kind("big"), Kind::Text, "beyond i64");
        assert_eq!(kind("d"), Kind::Text, "not every string is a real date");
        assert_eq!(kind("o"), Kind::Text);
        assert_eq!(kind("a"), Kind::Text);
        assert_eq!(kind("n"), Kind::Text, "null in every row");
    }

    #[test]
    fn an_id_beyond_int64_is_an_error_naming_the_contact_not_a_wrong_id() {
        let c: Contact = serde_json::from_value(serde_json::json!({"id": u64::MAX})).unwrap();
        let layout = Layout::build(&ColumnSet::default(), false, None);
        let e = write(
            vec![],
            &layout,
            &ColumnSet::default(),
            &[],
            [Ok(c)].into_iter(),
        );
        let e = format!("{:#}", e.unwrap_err());
        assert!(
            e.contains("Parquet column id") && e.contains(&u64::MAX.to_string()),
            "{e}"
        );
    }

    #[test]
    fn raw_column_names_leave_the_layout_selection() {
        let sel = |s: &[&str], e: &[&str]| Selection {
            select: s.iter().map(|x| x.to_string()).collect(),
            exclude: e.iter().map(|x| x.to_string()).collect(),
        };
        let (raw, rest) = split_selection(&sel(&[], &[]));
        assert_eq!(raw, RAW_COLUMNS);
        assert_eq!(rest, Selection::default());
        let (raw, rest) = split_selection(&sel(&["id", "custom_attributes"], &[]));
        assert_eq!(raw, ["custom_attributes"]);
        assert_eq!(rest, sel(&["id"], &[]));
        let (raw, rest) = split_selection(&sel(&[], &["*_attributes"]));
        assert!(raw.is_empty());
        assert_eq!(rest, sel(&[], &["*_attributes"]));
        let (raw, rest) = split_selection(&sel(&["additional_attributes"], &[]));
        assert_eq!(raw, ["additional_attributes"]);
        assert_eq!(rest, sel(&[], &["*"]));
    }
}
