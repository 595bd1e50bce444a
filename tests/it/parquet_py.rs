//! The Parquet export read by a real analytics reader: pyarrow (pinned in tests/requirements.txt,
//! installed by tests/setup.sh into .venv-ci) reads the file through tests/diff/read_parquet.py,
//! and every value it reads equals the JSONL export of the same account, with the Arrow types the
//! writer declares. The account is tests/it/parquet.rs's, edge cases included.
use std::path::Path;
use std::process::Command;

use chrono::DateTime;
use serde_json::Value;

use crate::normalise::{run, venv_python};
use crate::parquet::{
    every_attribute_has_a_column, expected_types, export_both, jsonl_by_id, jsonl_value,
    seeded_with_edges,
};

/// What pyarrow read: (column name, Arrow type) in file order, and the rows.
pub(crate) struct Read {
    pub schema: Vec<(String, String)>,
    pub rows: Vec<serde_json::Map<String, Value>>,
}

pub(crate) fn read_with_pyarrow(parquet: &Path) -> Read {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diff/read_parquet.py");
    let out = run(Command::new(venv_python()).arg(script).arg(parquet));
    let text = String::from_utf8(out).unwrap();
    let mut lines = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap());
    let head = lines.next().expect("the schema line");
    let schema = head["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_owned(),
                f["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let rows: Vec<_> = lines.map(|v| v.as_object().unwrap().clone()).collect();
    assert_eq!(head["num_rows"].as_u64(), Some(rows.len() as u64));
    Read { schema, rows }
}

/// Whether pyarrow's `got` (as read_parquet.py prints it) in a column of Arrow type `ty` is the
/// value `want` of the JSONL export. A string column of a non-string value holds its JSON text.
fn agrees(ty: &str, got: &Value, want: Option<&Value>) -> bool {
    let want = match want {
        None | Some(Value::Null) => return got.is_null(),
        Some(Value::String(s)) if s.is_empty() => return got.is_null(),
        Some(v) => v,
    };
    match ty {
        "int64" => got.as_i64().is_some() && got.as_i64() == want.as_i64(),
        "double" => got.as_f64().is_some() && got.as_f64() == want.as_f64(),
        "bool" | "date32[day]" => got == want,
        "timestamp[ms, tz=UTC]" => {
            let t = got
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok());
            t.map(|t| t.timestamp_millis()) == want.as_i64().map(|s| s * 1000)
        }
        "string" => match (got.as_str(), want) {
            (Some(g), Value::String(w)) => g == w,
            (Some(g), other) => serde_json::from_str::<Value>(g).ok().as_ref() == Some(other),
            (None, _) => false,
        },
        _ => panic!("a column of Arrow type {ty}: not one the writer declares"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyarrow_reads_every_value_of_the_jsonl_export_with_the_declared_types() {
    let python = venv_python(); // before the sandbox: a missing venv says how to make it
    assert!(python.exists());
    let (sb, n) = seeded_with_edges(12).await;
    let dir = tempfile::tempdir().unwrap();
    let (pq, jl) = export_both(&sb, dir.path(), n).await;
    let read = read_with_pyarrow(&pq);
    let by_id = jsonl_by_id(&jl);
    assert_eq!(read.rows.len(), by_id.len());

    for (col, _, _, arrow) in expected_types() {
        let got = read
            .schema
            .iter()
            .find(|c| c.0 == col)
            .map(|c| c.1.as_str());
        assert_eq!(got, Some(arrow), "the Arrow type of {col}");
    }
    let names: Vec<String> = read.schema.iter().map(|c| c.0.clone()).collect();
    every_attribute_has_a_column(&by_id, &names);

    let mut checked = 0;
    for row in &read.rows {
        let id = row["id"].as_i64().expect("an int64 id");
        let j = &by_id[&id];
        for (name, ty) in &read.schema {
            let want = jsonl_value(j, name);
            assert!(
                agrees(ty, &row[name], want),
                "contact {id}, {name} ({ty}): pyarrow read {} where the JSONL export has {want:?}",
                row[name]
            );
            checked += 1;
        }
    }
    assert_eq!(checked, by_id.len() * read.schema.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyarrow_reads_the_schema_of_an_empty_account() {
    let sb = crate::exportux::sandbox_with([]).await;
    let dir = tempfile::tempdir().unwrap();
    let (pq, _) = export_both(&sb, dir.path(), 0).await;
    let read = read_with_pyarrow(&pq);
    assert!(read.rows.is_empty());
    let types: Vec<&str> = read.schema.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(read.schema[0].0, "id");
    assert_eq!(types[0], "int64");
    assert!(types.contains(&"timestamp[ms, tz=UTC]") && types.contains(&"bool"));
    assert_eq!(read.schema.last().unwrap().0, "additional_attributes");
}
