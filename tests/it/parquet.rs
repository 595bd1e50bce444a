//! Parquet export read back with the `parquet` crate's own reader: every value equals the JSONL
//! export of the same account, the columns are typed by what the account holds (a mixed column
//! as text), `--select` applies, `-o -` is refused, and the columns stay in place across runs.
//! The accounts seeded here (with the edge cases a real account has: keys with dots and
//! unicode, objects and arrays, integers beyond 64 bits or 2^53, `2024-02-30`, a column null in
//! every row) serve tests/it/parquet_py.rs too, which reads the file with pyarrow.
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use doto_bulk::api::{Client, NewContact};
use doto_bulk::cmd::export::{ExportOptions, export};
use doto_bulk::sandbox::SandboxHandle;
use doto_bulk::sink::columns::Selection;
use parquet::basic::{LogicalType, TimeUnit, Type as Physical};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde_json::{Map, Value, json};

use crate::export::fast_config as config;
use crate::exportux::sandbox_with;

pub(crate) fn contact(i: usize) -> NewContact {
    let mut c = NewContact {
        name: Some(["Zoë Ærøskøbing 北京", "Ann", "=Bob"][i % 3].to_string()),
        email: Some(format!("pq{i}@example.com")),
        blocked: Some(i == 1),
        ..NewContact::default()
    };
    if i.is_multiple_of(2) {
        c.phone_number = Some(format!("+4420794600{i:02}"));
    }
    let attrs = &mut c.custom_attributes;
    attrs.insert("seats".into(), json!(i * 10));
    // Integers and fractions: a DOUBLE column.
    attrs.insert(
        "ratio".into(),
        json!(if i.is_multiple_of(2) {
            json!(i)
        } else {
            json!(0.5 + i as f64)
        }),
    );
    attrs.insert("vip".into(), json!(i.is_multiple_of(2)));
    attrs.insert(
        "since".into(),
        json!(format!("2024-0{}-1{}", i % 9 + 1, i % 10)),
    );
    // A number, a string, a boolean, an object: text.
    let mixed = [json!(7), json!("seven"), json!(true), json!({"n": 7})];
    attrs.insert("mixed".into(), mixed[i % 4].clone());
    if i.is_multiple_of(3) {
        attrs.insert("note".into(), json!("ünïcödé ✓"));
    } else if i % 3 == 1 {
        attrs.insert("note".into(), Value::Null);
    }
    c.additional_attributes.insert("city".into(), json!("Köln"));
    c
}

async fn seeded(n: usize) -> SandboxHandle {
    sandbox_with((0..n).map(contact)).await
}

/// Contacts whose attributes are what a typed column gets wrong first (keys apart from
/// [`contact`]'s).
fn edge_contacts() -> Vec<NewContact> {
    let attrs = [
        json!({"dot.key": "a.b", "ключ ✓": 1, "obj": {"a": [1, {"b": null}]}, "arr": [1, "x"],
            "big": u64::MAX, "wide": 9_007_199_254_740_993_i64, "ext_id": 1_234_567_890_123_456_789_i64,
            "not_date": "2024-02-30", "year0": "0000-01-01", "nothing": null}),
        json!({"dot.key": "c", "ключ ✓": 2, "obj": {}, "arr": [], "big": 5, "wide": 0.25,
            "ext_id": -1_234_567_890_123_456_789_i64, "not_date": "2024-02-28", "year0": "2024-01-01",
            "nothing": ""}),
        json!({"nothing": null, "big": -3}),
    ];
    attrs
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let mut c = NewContact {
                email: Some(format!("edge{i}@example.com")),
                ..NewContact::default()
            };
            c.custom_attributes = a.as_object().unwrap().clone();
            c.additional_attributes
                .insert("ключ".into(), json!("значение"));
            c
        })
        .collect()
}

/// An account of `n` contacts of [`contact`] and the [`edge_contacts`]; its size.
pub(crate) async fn seeded_with_edges(n: usize) -> (SandboxHandle, u64) {
    let edges = edge_contacts();
    let size = (n + edges.len()) as u64;
    (sandbox_with((0..n).map(contact).chain(edges)).await, size)
}

/// The type each column of [`seeded_with_edges`]'s export has, as (physical, logical), pyarrow's
/// name of it: id first, then by name.
pub(crate) fn expected_types() -> Vec<(&'static str, Physical, Option<LogicalType>, &'static str)> {
    let text = |n| (n, Physical::BYTE_ARRAY, Some(LogicalType::String), "string");
    let int = |n| (n, Physical::INT64, None, "int64");
    let millis = |n| {
        let t = Some(LogicalType::timestamp(true, TimeUnit::MILLIS));
        (n, Physical::INT64, t, "timestamp[ms, tz=UTC]")
    };
    let date = (Physical::INT32, Some(LogicalType::Date), "date32[day]");
    vec![
        int("id"),
        millis("created_at"),
        millis("last_activity_at"),
        ("blocked", Physical::BOOLEAN, None, "bool"),
        text("name"),
        text("phone_number"),
        int("custom_attributes.seats"),
        ("custom_attributes.ratio", Physical::DOUBLE, None, "double"),
        ("custom_attributes.vip", Physical::BOOLEAN, None, "bool"),
        ("custom_attributes.since", date.0, date.1, date.2),
        text("custom_attributes.mixed"),
        text("custom_attributes.note"),
        text("additional_attributes.city"),
        text("custom_attributes"),
        text("additional_attributes"),
        // The edge cases.
        text("custom_attributes.dot.key"),
        int("custom_attributes.ключ ✓"),
        text("custom_attributes.obj"),
        text("custom_attributes.arr"),
        text("custom_attributes.big"),
        text("custom_attributes.wide"),
        int("custom_attributes.ext_id"),
        text("custom_attributes.not_date"),
        text("custom_attributes.year0"),
        text("custom_attributes.nothing"),
        text("additional_attributes.ключ"),
    ]
}

/// The contacts of a JSONL export by id.
pub(crate) fn jsonl_by_id(jsonl: &Path) -> HashMap<i64, Value> {
    let lines = std::fs::read_to_string(jsonl).unwrap();
    lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["id"].as_i64().unwrap(), v))
        .collect()
}

/// What the JSONL contact `j` holds for the Parquet column `name` (an attribute column is its key
/// in the object; a raw column the whole object).
pub(crate) fn jsonl_value<'a>(j: &'a Value, name: &str) -> Option<&'a Value> {
    match name.split_once('.') {
        Some((obj, key)) => j[obj].get(key),
        None => j.get(name),
    }
}

/// Every attribute of every JSONL contact has its column among `columns`.
pub(crate) fn every_attribute_has_a_column(by_id: &HashMap<i64, Value>, columns: &[String]) {
    for (id, j) in by_id {
        for obj in ["custom_attributes", "additional_attributes"] {
            for key in j[obj].as_object().unwrap().keys() {
                let name = format!("{obj}.{key}");
                assert!(columns.contains(&name), "contact {id}: no column {name}");
            }
        }
    }
}

/// Export `sb` to `dir/c.parquet` and `dir/c.jsonl` (in that order); both paths.
pub(crate) async fn export_both(
    sb: &SandboxHandle,
    dir: &Path,
    rows: u64,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let client = Client::new(config(sb)).unwrap();
    let (pq, jl) = (dir.join("c.parquet"), dir.join("c.jsonl"));
    for p in [&pq, &jl] {
        let s = export(&client, &ExportOptions::new(p).unwrap())
            .await
            .unwrap();
        assert_eq!(s.manifest.rows, rows);
    }
    (pq, jl)
}

/// (name, physical type, logical type) of every column, in file order.
fn schema(path: &Path) -> Vec<(String, Physical, Option<LogicalType>)> {
    let r = SerializedFileReader::try_from(std::fs::File::open(path).unwrap()).unwrap();
    let d = r.metadata().file_metadata().schema_descr_ptr();
    d.columns()
        .iter()
        .map(|c| {
            (
                c.name().to_string(),
                c.physical_type(),
                c.logical_type_ref().cloned(),
            )
        })
        .collect()
}

fn rows(path: &Path) -> Vec<Vec<(String, Field)>> {
    let r = SerializedFileReader::try_from(std::fs::File::open(path).unwrap()).unwrap();
    r.get_row_iter(None)
        .unwrap()
        .map(|row| {
            let row = row.unwrap();
            let cols = row.get_column_iter();
            cols.map(|(k, v)| (k.clone(), v.clone())).collect()
        })
        .collect()
}

/// The JSON value a JSONL export holds where the Parquet file holds `f` (a string column of
/// a non-string attribute holds its JSON text).
fn agrees(f: &Field, json: Option<&Value>) -> bool {
    let json = match json {
        None | Some(Value::Null) => return *f == Field::Null,
        Some(Value::String(s)) if s.is_empty() => return *f == Field::Null,
        Some(v) => v,
    };
    match f {
        Field::Long(i) => json.as_i64() == Some(*i),
        Field::Double(d) => json.as_f64() == Some(*d),
        Field::Bool(b) => json.as_bool() == Some(*b),
        Field::TimestampMillis(t) => json.as_i64().map(|s| s * 1000) == Some(*t),
        Field::Date(days) => {
            let d = chrono::NaiveDate::default() + chrono::Days::new(*days as u64);
            json.as_str() == Some(&d.format("%Y-%m-%d").to_string())
        }
        Field::Str(s) => match json {
            Value::String(j) => j == s,
            other => serde_json::from_str::<Value>(s).ok().as_ref() == Some(other),
        },
        _ => false,
    }
}

fn check_against_jsonl(parquet: &Path, jsonl: &Path) {
    let by_id = jsonl_by_id(jsonl);
    let rows = rows(parquet);
    assert_eq!(rows.len(), by_id.len());
    for row in rows {
        let Some((_, Field::Long(id))) = row.first() else {
            panic!("id first: {row:?}")
        };
        let j = &by_id[id];
        for (name, f) in &row {
            let want = jsonl_value(j, name);
            if name.ends_with("_attributes") {
                let Field::Str(text) = f else {
                    panic!("{name}: {f:?}")
                };
                let raw: Map<String, Value> = serde_json::from_str(text).unwrap();
                assert_eq!(Some(&Value::Object(raw)), want, "{name} of {id}");
                continue;
            }
            assert!(agrees(f, want), "contact {id}, {name}: {f:?} vs {want:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_equals_the_jsonl_export_value_for_value_with_typed_columns() {
    let (sb, n) = seeded_with_edges(12).await;
    let dir = tempfile::tempdir().unwrap();
    let (pq, jl) = export_both(&sb, dir.path(), n).await;
    check_against_jsonl(&pq, &jl);
    let schema = schema(&pq);
    let names: Vec<String> = schema.iter().map(|c| c.0.clone()).collect();
    every_attribute_has_a_column(&jsonl_by_id(&jl), &names);
    let types: HashMap<String, (Physical, Option<LogicalType>)> =
        schema.into_iter().map(|(n, p, l)| (n, (p, l))).collect();
    for (col, physical, logical, _) in expected_types() {
        assert_eq!(types.get(col), Some(&(physical, logical)), "{col}");
    }
    // The exact digits where a number would be rounded.
    let by_id = jsonl_by_id(&jl);
    let edge = rows(&pq)
        .into_iter()
        .find(|r| {
            r.iter()
                .any(|(k, v)| k == "email" && *v == Field::Str("edge0@example.com".into()))
        })
        .unwrap();
    let get = |k: &str| edge.iter().find(|c| c.0 == k).unwrap().1.clone();
    assert_eq!(
        get("custom_attributes.big"),
        Field::Str(u64::MAX.to_string())
    );
    assert_eq!(
        get("custom_attributes.wide"),
        Field::Str("9007199254740993".into())
    );
    assert_eq!(
        get("custom_attributes.not_date"),
        Field::Str("2024-02-30".into())
    );
    assert_eq!(get("custom_attributes.nothing"), Field::Null);
    assert_eq!(by_id.len() as u64, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_account_gives_a_file_with_the_schema_and_no_row() {
    let sb = seeded(0).await;
    let dir = tempfile::tempdir().unwrap();
    let (pq, jl) = export_both(&sb, dir.path(), 0).await;
    assert_eq!(std::fs::read_to_string(&jl).unwrap(), "");
    let names: Vec<String> = schema(&pq).into_iter().map(|c| c.0).collect();
    let mut want: Vec<String> = doto_bulk::sink::columns::CORE.map(String::from).to_vec();
    want.extend(["custom_attributes".into(), "additional_attributes".into()]);
    assert_eq!(names, want);
    assert!(rows(&pq).is_empty());
}

/// The binary refuses `--timestamps` with Parquet (its timestamps are typed); the manifest of a
/// Parquet export says `timestamp`, a CSV one the style it wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifest_says_typed_timestamps_and_the_flag_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.parquet");
    let run = Command::new(env!("CARGO_BIN_EXE_doto-bulk"))
        .args(["export", "--sandbox", "--timestamps", "epoch", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--timestamps applies to CSV, XLSX and JSONL"),
        "{err}"
    );
    assert!(!out.exists());

    let sb = seeded(2).await;
    let client = Client::new(config(&sb)).unwrap();
    for (file, want) in [
        ("t.parquet", "timestamp"),
        ("t.csv", "iso"),
        ("t.jsonl", "epoch"),
    ] {
        let o = ExportOptions::new(dir.path().join(file)).unwrap();
        let s = export(&client, &o).await.unwrap();
        assert_eq!(s.manifest.timestamps, want, "{file}");
        let path = doto_bulk::sink::manifest::manifest_path(&o.output);
        let on_disk: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(on_disk["timestamps"], want, "{file}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_applies_stdout_is_refused_and_columns_stay_in_place() {
    let sb = seeded(3).await;
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(config(&sb)).unwrap();
    let names = |p: &Path| schema(p).into_iter().map(|c| c.0).collect::<Vec<_>>();

    let mut o = ExportOptions::new(dir.path().join("sel.parquet")).unwrap();
    o.selection = Selection {
        select: vec!["id".into(), "custom_attributes*".into()],
        exclude: vec!["custom_attributes.m*".into()],
    };
    export(&client, &o).await.unwrap();
    let mut want = vec!["id".to_string()];
    want.extend(
        ["note", "ratio", "seats", "since", "vip"].map(|k| format!("custom_attributes.{k}")),
    );
    want.push("custom_attributes".into());
    assert_eq!(names(&o.output), want);

    let mut o = ExportOptions::new("x.parquet").unwrap();
    o.output = "-".into();
    let e = o.check().unwrap_err().to_string();
    assert!(e.contains("PARQUET cannot go to standard output"), "{e}");

    // A second run after a new attribute: the old columns keep their place, the new one is last
    // of the layout (the raw objects stay at the end).
    let path = dir.path().join("stable.parquet");
    export(&client, &ExportOptions::new(&path).unwrap())
        .await
        .unwrap();
    let first = names(&path);
    let mut c = contact(0);
    c.email = Some("late@example.com".into());
    c.phone_number = None;
    c.custom_attributes.insert("aaa_new".into(), json!(1));
    client.contacts().create(&c).await.unwrap();
    export(&client, &ExportOptions::new(&path).unwrap())
        .await
        .unwrap();
    let second = names(&path);
    let layout = first.len() - 2;
    assert_eq!(second[..layout], first[..layout]);
    assert_eq!(second[layout], "custom_attributes.aaa_new");
    assert_eq!(second[layout + 1..], first[layout..]);
}
