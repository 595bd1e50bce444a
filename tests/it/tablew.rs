//! The export's side tables through its one table writer: the changes file is typed like the
//! main file (pyarrow reads INT64 ids, TIMESTAMP times, typed attribute columns, the raw
//! attribute objects; XLSX has date cells), a removed contact keeps its last values (its
//! `contact_inboxes` included, and an attribute value the account no longer holds the type of),
//! and `revert --resume` is recorded in run.json like an import's.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use doto_bulk::api::{Client, ContactPatch, NewContact};
use doto_bulk::cmd::export::{ExportOptions, export};
use doto_bulk::cmd::revert::{Args, run_revert};
use doto_bulk::sandbox::{SandboxConfig, SandboxHandle, spawn};
use doto_bulk::sink::manifest::manifest_path;
use serde_json::{Value, json};

use crate::export::fast_config;
use crate::import::{HEADER, MAPPING, World};
use crate::normalise::venv_python;
use crate::parquet_py::read_with_pyarrow;

/// The account between the two exports: `kept` (its seats change), `gone` (removed, with a
/// `code` that is text where the others' are integers, and an inbox), and a contact added.
struct Account {
    _sb: SandboxHandle,
    _dir: tempfile::TempDir,
    out: PathBuf,
    changed: u64,
    gone: u64,
    added: u64,
}

fn seed(sb: &SandboxHandle, i: u64, code: Value) -> u64 {
    let c = json!({"name": format!("P{i}"), "email": format!("p{i}@x.test"),
        "phone_number": format!("+3361234567{i}"), "created_at": 1711000000 + i,
        "last_activity_at": 1712000000 + i,
        "custom_attributes": {"seats": i, "score": i as f64 + 0.5, "vip": i.is_multiple_of(2),
            "renew": format!("2024-03-2{i}"), "code": code},
        "contact_inboxes": [{"source_id": format!("src-{i}"), "inbox": {"id": 1, "name": "Web"}}]});
    sb.insert_contact(sb.account_id, &c).unwrap()
}

async fn export_to(client: &Client, out: &Path, since: Option<PathBuf>) {
    let mut o = ExportOptions::new(out).unwrap();
    o.changes_since = since;
    o.include_contact_inboxes = true;
    export(client, &o).await.unwrap();
}

/// Export `c.<ext>`, change one contact, remove one, add one, export again with
/// `--changes-since` (both with `--include-contact-inboxes`).
async fn account(ext: &str) -> Account {
    let sb = spawn(SandboxConfig {
        seed_contacts: 0,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let ids: Vec<u64> = (1..=3).map(|i| seed(&sb, i, json!(i * 10))).collect();
    let gone = seed(&sb, 4, json!("abc"));
    let client = Client::new(fast_config(&sb)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(format!("c.{ext}"));
    export_to(&client, &out, None).await;
    let mut seats = serde_json::Map::new();
    seats.insert("seats".into(), json!(7));
    let patch = ContactPatch {
        custom_attributes: Some(seats),
        ..ContactPatch::default()
    };
    client.contacts().update(ids[1], &patch).await.unwrap();
    client.contacts().delete(gone).await.unwrap();
    let mut new = NewContact {
        email: Some("new@x.test".into()),
        ..NewContact::default()
    };
    new.custom_attributes.insert("seats".into(), json!(9));
    let added = client.contacts().create(&new).await.unwrap().id;
    export_to(&client, &out, Some(manifest_path(&out))).await;
    Account {
        _sb: sb,
        _dir: dir,
        changed: ids[1],
        gone,
        added,
        out,
    }
}

impl Account {
    fn changes(&self) -> PathBuf {
        let ext = self.out.extension().unwrap().to_str().unwrap();
        self.out.with_file_name(format!("c.changes.{ext}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyarrow_reads_a_parquet_changes_file_typed_like_the_main_file() {
    assert!(venv_python().exists());
    let a = account("parquet").await;
    let main = read_with_pyarrow(&a.out);
    let changes = read_with_pyarrow(&a.changes());
    let types: BTreeMap<&str, &str> = changes
        .schema
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let want = [
        ("change", "string"),
        ("id", "int64"),
        ("changed_fields", "string"),
        ("created_at", "timestamp[ms, tz=UTC]"),
        ("last_activity_at", "timestamp[ms, tz=UTC]"),
        ("blocked", "bool"),
        ("phone_number", "string"),
        ("custom_attributes.seats", "int64"),
        ("custom_attributes.score", "double"),
        ("custom_attributes.vip", "bool"),
        ("custom_attributes.renew", "date32[day]"),
        ("custom_attributes.code", "string"),
        ("contact_inboxes", "string"),
        ("custom_attributes", "string"),
        ("additional_attributes", "string"),
    ];
    for (name, ty) in want {
        assert_eq!(types.get(name), Some(&ty), "{name}: {:?}", changes.schema);
    }
    // Every column but the lead ones is the main file's, in its order, and typed the same, but
    // `code`: the removed contact's last value is text where the account now holds integers.
    let names = |s: &[(String, String)]| s.iter().map(|c| c.0.clone()).collect::<Vec<_>>();
    let main_names = names(&main.schema);
    assert_eq!(names(&changes.schema)[3..], main_names[1..]);
    for (name, ty) in &main.schema {
        let code = name == "custom_attributes.code";
        assert_eq!(types[name.as_str()] == ty, !code, "{name}: {ty}");
    }
    let by_id: BTreeMap<i64, &serde_json::Map<String, Value>> = changes
        .rows
        .iter()
        .map(|r| (r["id"].as_i64().unwrap(), r))
        .collect();
    assert_eq!(by_id.len(), 3, "{by_id:?}");
    let changed = by_id[&(a.changed as i64)];
    assert_eq!(changed["change"], "changed");
    assert_eq!(changed["changed_fields"], "custom_attributes.seats");
    assert_eq!(changed["custom_attributes.seats"], 7);
    assert_eq!(changed["custom_attributes.renew"], "2024-03-22");
    assert_eq!(changed["created_at"], "2024-03-21T05:46:42+00:00");
    let gone = by_id[&(a.gone as i64)];
    assert_eq!(gone["change"], "removed");
    assert_eq!(gone["changed_fields"], "");
    assert_eq!(gone["custom_attributes.code"], "abc");
    assert_eq!(gone["custom_attributes.score"], 4.5);
    assert_eq!(gone["custom_attributes.vip"], true);
    assert!(gone["contact_inboxes"].as_str().unwrap().contains("src-4"));
    let raw: Value = serde_json::from_str(gone["custom_attributes"].as_str().unwrap()).unwrap();
    assert_eq!(raw["seats"], 4);
    let added = by_id[&(a.added as i64)];
    assert_eq!(added["change"], "added");
    assert_eq!(added["custom_attributes.seats"], 9);
    assert_eq!(added["custom_attributes.code"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xlsx_changes_file_has_date_cells_and_typed_cells() {
    use calamine::{Data, Reader, Xlsx};
    let a = account("xlsx").await;
    let mut wb: Xlsx<_> = calamine::open_workbook(a.changes()).unwrap();
    let range = wb.worksheet_range("Changes").unwrap();
    let mut rows = range.rows();
    let h: Vec<String> = rows.next().unwrap().iter().map(|d| d.to_string()).collect();
    let at = |name: &str| h.iter().position(|c| c == name).unwrap();
    let rows: BTreeMap<u64, &[Data]> = rows
        .map(|r| match r[1] {
            Data::Float(id) => (id as u64, r),
            _ => panic!("id is a number: {r:?}"),
        })
        .collect();
    let gone = rows[&a.gone];
    assert_eq!(gone[0], Data::String("removed".into()));
    for col in ["created_at", "last_activity_at"] {
        assert!(
            matches!(gone[at(col)], Data::DateTime(_)),
            "{col}: {:?}",
            gone[at(col)]
        );
    }
    let Data::DateTime(created) = &gone[at("created_at")] else {
        unreachable!()
    };
    let serial = 1_711_000_004.0 / 86_400.0 + 25_569.0; // 2024-03-21 05:46:44 UTC
    assert!((created.as_f64() - serial).abs() < 1e-6, "{created:?}");
    assert_eq!(
        gone[at("phone_number")],
        Data::String("+33612345674".into())
    );
    assert_eq!(gone[at("custom_attributes.seats")], Data::Float(4.0));
    assert_eq!(gone[at("custom_attributes.vip")], Data::Bool(true));
    assert_eq!(
        gone[at("custom_attributes.code")],
        Data::String("abc".into())
    );
    assert!(gone[at("contact_inboxes")].to_string().contains("src-4"));
    let changed = rows[&a.changed];
    assert_eq!(changed[2], Data::String("custom_attributes.seats".into()));
    assert_eq!(changed[at("custom_attributes.seats")], Data::Float(7.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_contact_keeps_its_contact_inboxes_in_csv_and_jsonl() {
    let a = account("csv").await;
    let mut r = csv::Reader::from_path(a.changes()).unwrap();
    let h = r.headers().unwrap().clone();
    let inboxes = h.iter().position(|c| c == "contact_inboxes").unwrap();
    let created = h.iter().position(|c| c == "created_at").unwrap();
    let gone = r
        .records()
        .map(|r| r.unwrap())
        .find(|r| r[1] == a.gone.to_string())
        .unwrap();
    assert_eq!(&gone[0], "removed");
    assert!(
        gone[inboxes].contains("\"source_id\":\"src-4\""),
        "{gone:?}"
    );
    assert_eq!(&gone[created], "2024-03-21T05:46:44Z");

    let a = account("jsonl").await;
    let text = std::fs::read_to_string(a.changes()).unwrap();
    let gone: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["id"] == a.gone)
        .unwrap();
    assert_eq!(gone["change"], "removed");
    assert_eq!(gone["contact_inboxes"][0]["source_id"], "src-4", "{gone}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revert_resumes_are_recorded_in_run_json_like_an_import_s() {
    let w = World::plain().await;
    let csv = format!("{HEADER}Ann,ann@x.com,A,free,Paris\nBea,bea@x.com,B,gold,Lyon\n");
    assert_eq!(w.import(&csv, MAPPING, "imp", |_| {}).await.exit_code, 0);
    let never = || Arc::new(AtomicBool::new(false));
    let mut args = Args::new(&w.path("imp"));
    args.out = Some(w.path("rev"));
    let first = run_revert(&args, w.config(), true, never()).await.unwrap();
    assert_eq!(first.exit_code, 0);
    let mut resume = Args::new(&w.path("imp"));
    resume.resume = Some(w.path("rev"));
    for _ in 0..2 {
        let again = run_revert(&resume, w.config(), true, never())
            .await
            .unwrap();
        assert_eq!(again.exit_code, 0);
    }
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(w.path("rev").join(name)).unwrap()).unwrap()
    };
    let record = read("run.json");
    assert_eq!(record["command"], "revert");
    assert_eq!(record["exit_code"], 0, "{record:#}");
    let resumes = record["resumes"].as_array().unwrap();
    assert_eq!(resumes.len(), 2, "{record:#}");
    let mut before = record["finished_at"].as_str().unwrap();
    for r in resumes {
        assert_eq!(r["exit_code"], 0, "{record:#}");
        assert!(r["started_at"].as_str().unwrap() >= before, "{record:#}");
        before = r["finished_at"].as_str().unwrap();
        assert!(r["command_line"].is_array() && r["tool_version"].is_string());
    }
    let summary = read("summary.json");
    assert_eq!(summary["resumed"]["invocation"], 3, "{summary:#}");
}
