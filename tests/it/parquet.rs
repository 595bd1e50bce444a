//! Parquet export read back with the `parquet` crate's own reader: every value equals the JSONL
//! export of the same account, the columns are typed by what the account holds (a mixed column
//! as text), `--select` applies, `-o -` is refused, and the columns stay in place across runs.
use std::collections::HashMap;
use std::path::Path;

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

fn contact(i: usize) -> NewContact {
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
    let lines = std::fs::read_to_string(jsonl).unwrap();
    let by_id: HashMap<i64, Value> = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["id"].as_i64().unwrap(), v))
        .collect();
    let rows = rows(parquet);
    assert_eq!(rows.len(), by_id.len());
    for row in rows {
        let Some((_, Field::Long(id))) = row.first() else {
            panic!("id first: {row:?}")
        };
        let j = &by_id[id];
        for (name, f) in &row {
            let want = match name.split_once('.') {
                Some((obj, key)) => j[obj].get(key),
                None if name.ends_with("_attributes") => {
                    let Field::Str(text) = f else {
                        panic!("{name}: {f:?}")
                    };
                    let raw: Map<String, Value> = serde_json::from_str(text).unwrap();
                    assert_eq!(Some(&Value::Object(raw)), j.get(name), "{name} of {id}");
                    continue;
                }
                None => j.get(name.as_str()),
            };
            assert!(agrees(f, want), "contact {id}, {name}: {f:?} vs {want:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_equals_the_jsonl_export_value_for_value_with_typed_columns() {
    let sb = seeded(12).await;
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(config(&sb)).unwrap();
    let (pq, jl) = (dir.path().join("c.parquet"), dir.path().join("c.jsonl"));
    for p in [&pq, &jl] {
        let s = export(&client, &ExportOptions::new(p).unwrap())
            .await
            .unwrap();
        assert_eq!(s.manifest.rows, 12);
    }
    check_against_jsonl(&pq, &jl);
    let types: HashMap<String, (Physical, Option<LogicalType>)> = schema(&pq)
        .into_iter()
        .map(|(n, p, l)| (n, (p, l)))
        .collect();
    let text = (Physical::BYTE_ARRAY, Some(LogicalType::String));
    let millis = Some(LogicalType::timestamp(true, TimeUnit::MILLIS));
    for (col, want) in [
        ("id", (Physical::INT64, None)),
        ("created_at", (Physical::INT64, millis.clone())),
        ("last_activity_at", (Physical::INT64, millis)),
        ("blocked", (Physical::BOOLEAN, None)),
        ("name", text.clone()),
        ("phone_number", text.clone()),
        ("custom_attributes.seats", (Physical::INT64, None)),
        ("custom_attributes.ratio", (Physical::DOUBLE, None)),
        ("custom_attributes.vip", (Physical::BOOLEAN, None)),
        (
            "custom_attributes.since",
            (Physical::INT32, Some(LogicalType::Date)),
        ),
        ("custom_attributes.mixed", text.clone()),
        ("custom_attributes.note", text.clone()),
        ("additional_attributes.city", text.clone()),
        ("custom_attributes", text.clone()),
        ("additional_attributes", text),
    ] {
        assert_eq!(types.get(col), Some(&want), "{col}");
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
