//! `export --changes-since`: after creates, updates (a core field, a custom attribute, an
//! attribute removed) and deletes between two exports of a seeded sandbox, FILE.changes.<ext>
//! lists exactly those contacts (kind, changed field names, removed ones with their last values)
//! in CSV, JSONL, Parquet and XLSX; no change writes an empty change set; a previous manifest that is
//! missing, predates the snapshot, is of another account or has a damaged snapshot is refused.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use doto_bulk::api::{Client, ContactPatch, NewContact};
use doto_bulk::cmd::export::{ExportOptions, ExportSummary, export};
use doto_bulk::sandbox::SandboxHandle;
use doto_bulk::sink::changes::{changes_path, snapshot_path};
use doto_bulk::sink::manifest::manifest_path;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde_json::{Value, json};

use crate::export::fast_config as config;
use crate::exportux::sandbox_with;

fn contact(i: usize) -> NewContact {
    let mut c = NewContact {
        name: Some(format!("Person {i}")),
        email: Some(format!("p{i}@example.com")),
        ..NewContact::default()
    };
    c.custom_attributes.insert("plan".into(), json!("gold"));
    c.custom_attributes.insert("seats".into(), json!(i));
    c
}

/// One row of a changes file: (change, changed_fields joined by `;`, email).
type Row = (String, String, String);

async fn export_to(client: &Client, out: &Path, since: Option<PathBuf>) -> ExportSummary {
    let mut o = ExportOptions::new(out).unwrap();
    o.changes_since = since;
    export(client, &o).await.unwrap()
}

/// What the second export must list, by id.
struct Scenario {
    _sb: SandboxHandle,
    _dir: tempfile::TempDir,
    out: PathBuf,
    first: ExportSummary,
    second: ExportSummary,
    expect: BTreeMap<u64, Row>,
}

/// Export `c.<ext>`; create 2, change an email, a plan, remove an attribute, delete 2; export
/// again over the same file with `--changes-since` its own manifest.
async fn scenario(ext: &str) -> Scenario {
    let sb = sandbox_with((0..10).map(contact)).await;
    let client = Client::new(config(&sb)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(format!("c.{ext}"));
    let first = export_to(&client, &out, None).await;
    let ids: Vec<u64> = client
        .contacts()
        .list()
        .all()
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    let row = |k: &str, f: &str, e: String| (k.to_string(), f.to_string(), e);
    let mut expect = BTreeMap::new();
    for i in [20, 21] {
        let c = client.contacts().create(&contact(i)).await.unwrap();
        expect.insert(c.id, row("added", "", format!("p{i}@example.com")));
    }
    let patch = ContactPatch {
        email: Some(Some("moved@example.com".into())),
        ..ContactPatch::default()
    };
    client.contacts().update(ids[1], &patch).await.unwrap();
    expect.insert(ids[1], row("changed", "email", "moved@example.com".into()));
    let mut plan = serde_json::Map::new();
    plan.insert("plan".into(), json!("free"));
    let patch = ContactPatch {
        custom_attributes: Some(plan),
        ..ContactPatch::default()
    };
    client.contacts().update(ids[2], &patch).await.unwrap();
    expect.insert(
        ids[2],
        row("changed", "custom_attributes.plan", email_of(&sb, ids[2])),
    );
    let seats = ["seats".to_string()];
    client
        .contacts()
        .destroy_custom_attributes(ids[3], &seats)
        .await
        .unwrap();
    expect.insert(
        ids[3],
        row("changed", "custom_attributes.seats", email_of(&sb, ids[3])),
    );
    for id in [ids[4], ids[5]] {
        expect.insert(id, row("removed", "", email_of(&sb, id)));
        client.contacts().delete(id).await.unwrap();
    }
    let second = export_to(&client, &out, Some(manifest_path(&out))).await;
    Scenario {
        _sb: sb,
        _dir: dir,
        out,
        first,
        second,
        expect,
    }
}

fn email_of(sb: &SandboxHandle, id: u64) -> String {
    let c = sb
        .contacts()
        .into_iter()
        .find(|c| c["id"].as_u64() == Some(id))
        .unwrap();
    c["email"].as_str().unwrap().to_string()
}

fn read_csv_changes(path: &Path) -> BTreeMap<u64, Row> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let h: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(&h[..3], ["change", "id", "changed_fields"], "{h:?}");
    assert_eq!(h.iter().filter(|c| *c == "id").count(), 1, "{h:?}");
    let email = h.iter().position(|c| c == "email").unwrap();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            let id = rec[1].parse().unwrap();
            (
                id,
                (
                    rec[0].to_string(),
                    rec[2].to_string(),
                    rec[email].to_string(),
                ),
            )
        })
        .collect()
}

fn read_jsonl_changes(path: &Path) -> BTreeMap<u64, Row> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let fields: Vec<&str> = v["changed_fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .collect();
            let row = (
                v["change"].as_str().unwrap().to_string(),
                fields.join(";"),
                v["email"].as_str().unwrap().to_string(),
            );
            (v["id"].as_u64().unwrap(), row)
        })
        .collect()
}

fn read_parquet_changes(path: &Path) -> BTreeMap<u64, Row> {
    let r = SerializedFileReader::try_from(std::fs::File::open(path).unwrap()).unwrap();
    let text = |f: &Field| match f {
        Field::Str(s) => s.clone(),
        other => panic!("not a string: {other:?}"),
    };
    r.get_row_iter(None)
        .unwrap()
        .map(|row| {
            let row: BTreeMap<String, Field> = row
                .unwrap()
                .get_column_iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let Field::Long(id) = row["id"] else {
                panic!("id is INT64: {row:?}")
            };
            let r = (
                text(&row["change"]),
                text(&row["changed_fields"]),
                text(&row["email"]),
            );
            (id as u64, r)
        })
        .collect()
}

fn check(s: &Scenario, got: BTreeMap<u64, Row>) {
    assert_eq!(got, s.expect, "{}", s.out.display());
    let c = s.second.manifest.changes.as_ref().expect("a changes entry");
    assert_eq!((c.added, c.changed, c.removed), (2, 3, 2));
    assert_eq!(c.since, s.first.manifest.started_at);
    assert_eq!(
        c.summary(),
        format!("+2 added, 3 changed, 2 removed since {}", c.since)
    );
    let snap = s
        .second
        .manifest
        .snapshot
        .as_ref()
        .expect("a snapshot entry");
    assert_eq!(snap.contacts, 10);
    assert_eq!(s.second.manifest.rows, 10);
    let on_disk: Value =
        serde_json::from_str(&std::fs::read_to_string(manifest_path(&s.out)).unwrap()).unwrap();
    assert_eq!(on_disk["changes"]["changed"], 3, "{on_disk}");
    assert_eq!(on_disk["snapshot"]["file"], snap.file.as_str());
}

#[tokio::test]
async fn csv_change_set_lists_exactly_the_created_updated_and_deleted_contacts() {
    let s = scenario("csv").await;
    let path = changes_path(&s.out, doto_bulk::sink::Format::Csv);
    assert_eq!(path, s.out.with_file_name("c.changes.csv"));
    check(&s, read_csv_changes(&path));
}

#[tokio::test]
async fn jsonl_change_set_lists_exactly_the_created_updated_and_deleted_contacts() {
    let s = scenario("jsonl").await;
    let path = s.out.with_file_name("c.changes.jsonl");
    check(&s, read_jsonl_changes(&path));
    // The contact object as the export writes it: epoch timestamps, attributes nested.
    let first = std::fs::read_to_string(&path).unwrap();
    let v: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert!(v["created_at"].is_i64(), "{v}");
    assert!(v["custom_attributes"].is_object(), "{v}");
}

#[tokio::test]
async fn parquet_change_set_lists_exactly_the_created_updated_and_deleted_contacts() {
    let s = scenario("parquet").await;
    check(
        &s,
        read_parquet_changes(&s.out.with_file_name("c.changes.parquet")),
    );
}

#[tokio::test]
async fn no_change_between_two_exports_writes_an_empty_change_set() {
    let sb = sandbox_with((0..6).map(contact)).await;
    let client = Client::new(config(&sb)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.csv");
    export_to(&client, &base, None).await;
    // Another path: the previous export stays where it is.
    let out = dir.path().join("next.csv");
    let s = export_to(&client, &out, Some(manifest_path(&base))).await;
    let c = s.manifest.changes.unwrap();
    assert_eq!((c.added, c.changed, c.removed), (0, 0, 0));
    let text = std::fs::read_to_string(dir.path().join("next.changes.csv")).unwrap();
    assert_eq!(text.lines().count(), 1, "header only: {text}");
    assert!(text.starts_with("change,id,changed_fields,name,"), "{text}");
    assert!(snapshot_path(&manifest_path(&out)).exists());
}

#[tokio::test]
async fn a_damaged_or_foreign_previous_snapshot_is_refused_and_nothing_is_written() {
    let sb = sandbox_with((0..4).map(contact)).await;
    let client = Client::new(config(&sb)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.jsonl");
    export_to(&client, &base, None).await;
    let out = dir.path().join("next.jsonl");
    let refused = |e: anyhow::Error, want: &str| {
        let e = format!("{e:#}");
        assert!(e.contains(want), "{e}");
        assert!(!out.exists() && !manifest_path(&out).exists(), "{e}");
    };
    let mut o = ExportOptions::new(&out).unwrap();
    o.changes_since = Some(manifest_path(&base));
    // Another account's manifest.
    let m = manifest_path(&base);
    let text = std::fs::read_to_string(&m).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["account_id"] = json!(999);
    std::fs::write(&m, v.to_string()).unwrap();
    refused(export(&client, &o).await.unwrap_err(), "of account 999");
    std::fs::write(&m, &text).unwrap();
    // The sidecar changed after the fact.
    let sidecar = snapshot_path(&m);
    let mut bytes = std::fs::read(&sidecar).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&sidecar, &bytes).unwrap();
    refused(
        export(&client, &o).await.unwrap_err(),
        "does not match its manifest",
    );
    std::fs::remove_file(&sidecar).unwrap();
    refused(export(&client, &o).await.unwrap_err(), "cannot be read");
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_doto-bulk"))
}

/// `export --sandbox -o out [--changes-since since]`: the exit code and stderr.
fn run_export(out: &Path, since: Option<&Path>) -> (Option<i32>, String) {
    let mut cmd = bin();
    cmd.args(["export", "--sandbox", "--sandbox-seed", "5", "-q"])
        .args(["--rate", "5000", "-o"])
        .arg(out);
    if let Some(p) = since {
        cmd.arg("--changes-since").arg(p);
    }
    let run = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&run.stderr).into_owned();
    (run.status.code(), err)
}

#[test]
fn the_binary_refuses_a_missing_an_old_or_a_foreign_manifest_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.csv");
    let (code, err) = run_export(&out, Some(&dir.path().join("nope.json")));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no such manifest"), "{err}");
    assert!(
        err.contains("run one export without --changes-since first"),
        "{err}"
    );
    assert!(!out.exists());
    // A first export (another sandbox: another base URL).
    let base = dir.path().join("base.csv");
    let (code, err) = run_export(&base, None);
    assert_eq!(code, Some(0), "{err}");
    let m = manifest_path(&base);
    let (code, err) = run_export(&out, Some(&m));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("compare exports of the same account"), "{err}");
    // A manifest from before change sets: no snapshot entry.
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("snapshot");
    std::fs::write(&m, v.to_string()).unwrap();
    let (code, err) = run_export(&out, Some(&m));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no snapshot sidecar"), "{err}");
    assert!(!out.exists());
    // Standard output has no "beside".
    let run = bin()
        .args([
            "export",
            "--sandbox",
            "-o",
            "-",
            "--format",
            "csv",
            "--changes-since",
        ])
        .arg(&m)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("regular file"));
}

fn read_xlsx_changes(path: &Path) -> BTreeMap<u64, Row> {
    use calamine::{Data, Reader, Xlsx};
    let mut wb: Xlsx<_> = calamine::open_workbook(path).unwrap();
    let range = wb.worksheet_range("Changes").unwrap();
    let mut rows = range.rows();
    let h: Vec<String> = rows.next().unwrap().iter().map(|d| d.to_string()).collect();
    assert_eq!(&h[..3], ["change", "id", "changed_fields"], "{h:?}");
    let email = h.iter().position(|c| c == "email").unwrap();
    rows.map(|r| {
        let Data::Float(id) = r[1] else {
            panic!("id is a number: {r:?}")
        };
        let row = (r[0].to_string(), r[2].to_string(), r[email].to_string());
        (id as u64, row)
    })
    .collect()
}

#[tokio::test]
async fn xlsx_change_set_lists_exactly_the_created_updated_and_deleted_contacts() {
    let s = scenario("xlsx").await;
    check(
        &s,
        read_xlsx_changes(&s.out.with_file_name("c.changes.xlsx")),
    );
}
