//! `export --notes` and `--conversations` against the sandbox: every note once with its contact
//! (CSV, JSONL, Parquet), the conversations' Parquet table equal to their JSONL one, the plan line,
//! one notes request per contact and several at once, a contact deleted meanwhile counted as gone,
//! and a 5xx storm on the notes route failing the export with every previous file left as it was.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use doto_bulk::api::{Client, ClientConfig};
use doto_bulk::cmd::export::{ExportOptions, export};
use doto_bulk::sandbox::{SandboxConfig, SandboxHandle, route, spawn};
use doto_bulk::sink::conversations::COLUMNS as CONVERSATION_COLUMNS;
use doto_bulk::sink::guard::unguard;
use doto_bulk::sink::table::epoch_seconds;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde_json::Value;

use crate::export::fast_config;

async fn sandbox(n: usize) -> SandboxHandle {
    sandbox_with(n, Duration::ZERO).await
}

/// `n` seeded contacts, every answer after `latency`.
async fn sandbox_with(n: usize, latency: Duration) -> SandboxHandle {
    let cfg = SandboxConfig {
        seed_contacts: n,
        latency,
        ..SandboxConfig::default()
    };
    spawn(cfg).await.expect("sandbox starts")
}

fn config(base_url: &str, sb: &SandboxHandle) -> ClientConfig {
    let mut cfg = fast_config(sb);
    cfg.base_url = base_url.into();
    cfg.request_timeout = Duration::from_secs(10);
    cfg.give_up_after = Duration::from_secs(2);
    cfg
}

fn client(sb: &SandboxHandle) -> Client {
    Client::new(config(&sb.base_url.clone(), sb)).unwrap()
}

/// Export to `dir/name` with notes to `notes` (a name in `dir`).
fn with_notes(dir: &Path, name: &str, notes: &str) -> ExportOptions {
    let mut o = ExportOptions::new(dir.join(name)).unwrap();
    o.notes = Some(dir.join(notes));
    o
}

/// (contact id, note id, content) of every note the store holds on a contact the listing shows.
fn stored_notes(sb: &SandboxHandle, listed: &BTreeSet<u64>) -> BTreeSet<(u64, u64, String)> {
    sb.state()
        .notes()
        .iter()
        .map(|n| note_key(n["contact_id"].as_u64().unwrap(), n))
        .filter(|(c, ..)| listed.contains(c))
        .collect()
}

fn note_key(contact: u64, n: &Value) -> (u64, u64, String) {
    let content = n["content"].as_str().unwrap().to_string();
    (contact, n["id"].as_u64().unwrap(), content)
}

fn jsonl(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn jsonl_ids(path: &Path) -> BTreeSet<u64> {
    jsonl(path)
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect()
}

fn parquet_rows(path: &Path) -> Vec<BTreeMap<String, Field>> {
    let r = SerializedFileReader::try_from(std::fs::File::open(path).unwrap()).unwrap();
    let rows = r.get_row_iter(None).unwrap();
    let row = |r: parquet::record::Row| {
        let cols = r.get_column_iter();
        cols.map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    rows.map(|r| row(r.unwrap())).collect()
}

fn files_in(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let entries = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap());
    let file = |e: std::fs::DirEntry| {
        (
            e.file_name().into_string().unwrap(),
            std::fs::read(e.path()).unwrap(),
        )
    };
    entries.map(file).collect()
}

/// Tricky notes on the first contacts of the listing: a formula, a comma and a line break, text
/// beyond ASCII, two on one contact.
async fn tricky_notes(c: &Client, ids: &BTreeSet<u64>) {
    let mut ids = ids.iter();
    for text in ["=1+2", "a, b\nc \"d\"", "Zoë – ☎"] {
        let id = *ids.next().unwrap();
        c.contacts().add_note(id, text).await.unwrap();
    }
    let id = *ids.next().unwrap();
    c.contacts().add_note(id, "second note").await.unwrap();
}

#[tokio::test]
async fn every_note_is_in_each_format_once_with_its_contact_in_one_request_per_contact() {
    let sb = sandbox(300).await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(&sb);
    let ids = {
        let o = ExportOptions::new(dir.path().join("ids.jsonl")).unwrap();
        export(&c, &o).await.unwrap();
        jsonl_ids(&o.output)
    };
    tricky_notes(&c, &ids).await;
    let want = stored_notes(&sb, &ids);
    let contacts_with_notes: BTreeSet<u64> = want.iter().map(|n| n.0).collect();
    assert!(
        want.len() > 40 && contacts_with_notes.len() < ids.len(),
        "{}",
        want.len()
    );

    sb.state().reset_stats();
    let o = with_notes(dir.path(), "a.csv", "a.notes.csv");
    let s = export(&c, &o).await.unwrap();
    let mut r = csv::Reader::from_path(dir.path().join("a.notes.csv")).unwrap();
    let headers: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(headers[..4], ["contact_id", "id", "content", "created_at"]);
    let got: Vec<(u64, u64, String)> = r
        .records()
        .map(|rec| rec.unwrap())
        .map(|rec| {
            (
                rec[0].parse().unwrap(),
                rec[1].parse().unwrap(),
                unguard(&rec[2]).to_string(),
            )
        })
        .collect();
    assert_eq!(got.len(), want.len(), "every note once");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want);
    let m = s.manifest.notes.as_ref().unwrap();
    assert_eq!(
        (m.rows, m.contacts_gone, m.file.as_str()),
        (want.len() as u64, 0, "a.notes.csv")
    );
    // One list request per page and one notes request per contact, nothing else.
    let stats = sb.state().stats();
    assert_eq!(stats.count("GET", route::NOTES), s.manifest.rows);
    assert_eq!(
        stats.total,
        s.manifest.listing.pages_fetched + s.manifest.rows
    );

    let o = with_notes(dir.path(), "b.jsonl", "b.notes.jsonl");
    export(&c, &o).await.unwrap();
    let lines = jsonl(&dir.path().join("b.notes.jsonl"));
    let got: Vec<_> = lines
        .iter()
        .map(|n| note_key(n["contact_id"].as_u64().unwrap(), n))
        .collect();
    assert_eq!(got.len(), want.len());
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want);
    assert!(
        lines.iter().all(|n| n["user"]["name"].is_string()),
        "the API's object, whole"
    );

    let o = with_notes(dir.path(), "c.parquet", "c.notes.parquet");
    export(&c, &o).await.unwrap();
    let rows = parquet_rows(&dir.path().join("c.notes.parquet"));
    let got: BTreeSet<(u64, u64, String)> = rows
        .iter()
        .map(
            |r| match (&r["contact_id"], &r["id"], &r["content"], &r["created_at"]) {
                (Field::Long(c), Field::Long(i), Field::Str(s), Field::TimestampMillis(_)) => {
                    (*c as u64, *i as u64, s.clone())
                }
                other => panic!("types: {other:?}"),
            },
        )
        .collect();
    assert_eq!((rows.len(), got), (want.len(), want));
}

/// The Parquet value `f` stands for the JSON value `v` of a conversation column.
fn same(f: &Field, v: Option<&Value>) -> bool {
    let v = match v {
        None | Some(Value::Null) => return *f == Field::Null,
        Some(v) => v,
    };
    match f {
        Field::Long(i) => v.as_i64() == Some(*i),
        Field::Bool(b) => v.as_bool() == Some(*b),
        Field::TimestampMillis(t) => epoch_seconds(v).map(|s| s * 1000) == Some(*t),
        Field::Str(s) => match v {
            Value::String(j) => j == s,
            other => serde_json::from_str::<Value>(s).ok().as_ref() == Some(other),
        },
        _ => false,
    }
}

#[tokio::test]
async fn conversations_of_a_parquet_export_are_a_typed_table_with_the_rows_of_the_jsonl_one() {
    let sb = sandbox(300).await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(&sb);
    let mut o = ExportOptions::new(dir.path().join("x.parquet")).unwrap();
    o.conversations = Some(dir.path().join("x.conversations.parquet"));
    let s = export(&c, &o).await.unwrap();
    assert_eq!(s.manifest.conversations.as_ref().unwrap().format, "parquet");
    let mut o = ExportOptions::new(dir.path().join("x.jsonl")).unwrap();
    o.conversations = Some(dir.path().join("conv.jsonl"));
    export(&c, &o).await.unwrap();

    let key = |c: &Value| (c["contact_id"].as_i64().unwrap(), c["id"].as_i64().unwrap());
    let by_key: BTreeMap<(i64, i64), Value> = jsonl(&dir.path().join("conv.jsonl"))
        .into_iter()
        .map(|c| (key(&c), c))
        .collect();
    let rows = parquet_rows(&dir.path().join("x.conversations.parquet"));
    assert!(rows.len() > 100, "{}", rows.len());
    assert_eq!(rows.len(), by_key.len());
    for row in rows {
        let (Field::Long(contact), Field::Long(id)) = (&row["contact_id"], &row["id"]) else {
            panic!("ids: {row:?}")
        };
        let j = &by_key[&(*contact, *id)];
        for col in CONVERSATION_COLUMNS {
            let f = &row[col.name];
            assert!(
                same(f, j.pointer(col.pointer)),
                "{contact}/{id} {}: {f:?} vs {j}",
                col.name
            );
        }
        assert!(
            matches!(row["created_at"], Field::TimestampMillis(_)),
            "{row:?}"
        );
    }
}

/// `doto-bulk export` from a sandbox of 40 at 5,000 requests a second.
fn bin() -> Command {
    crate::exportux::export_cmd(&[])
}

#[test]
fn the_plan_says_how_many_requests_before_they_start_and_the_tables_go_beside_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("all.csv");
    let run = bin()
        .arg("-o")
        .arg(&out)
        .args(["--notes", "--conversations"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{err}");
    let text = std::fs::read_to_string(dir.path().join("all.csv.manifest.json")).unwrap();
    let m: Value = serde_json::from_str(&text).unwrap();
    let n = m["rows"].as_u64().unwrap();
    let plan = format!("notes and conversations: {} requests, about ", 2 * n);
    let at = err
        .find(&plan)
        .unwrap_or_else(|| panic!("no plan line {plan:?} in {err}"));
    assert!(
        at < err.find("exported ").unwrap(),
        "the plan comes first: {err}"
    );
    assert!(
        err[at..].lines().next().unwrap().ends_with("at 4900/s"),
        "{err}"
    );
    assert_eq!(m["notes"]["file"], "all.notes.csv");
    assert_eq!(m["conversations"]["file"], "all.conversations.csv");
    let notes = csv::Reader::from_path(dir.path().join("all.notes.csv"))
        .unwrap()
        .into_records()
        .count();
    assert_eq!(m["notes"]["rows"].as_u64(), Some(notes as u64));

    // `--json` puts the plan in the document; `-q` prints none.
    let out = dir.path().join("n.jsonl");
    let run = bin()
        .args(["--json", "--notes", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(doc["plan"]["requests"].as_u64(), Some(n), "{doc}");
    assert_eq!(doc["plan"]["tables"], serde_json::json!(["notes"]));
    assert!(dir.path().join("n.notes.jsonl").exists());
    let run = bin()
        .args(["-q", "--notes", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&run.stderr).contains("requests"));
    // Without FILE there is nowhere beside standard output to go.
    let run = bin()
        .args(["--notes", "-o", "-", "--format", "csv"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("give --notes FILE"));
}

#[tokio::test]
async fn notes_requests_run_several_at_once_and_a_contact_deleted_meanwhile_is_gone_not_an_error() {
    // A little latency, so that requests sent together are in flight together.
    let sb = sandbox_with(200, Duration::from_millis(10)).await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(&sb);
    let o = with_notes(dir.path(), "h.jsonl", "h.notes.jsonl");
    // The first notes request waits: the listing is over, every contact is known.
    let hold = sb.state().hold_after("GET", route::NOTES, 0);
    let (s, together) = tokio::join!(export(&c, &o), async {
        hold.reached().await;
        // Every notes request is held until the release: with one at a time, a second one
        // never arrives.
        let waited = Instant::now();
        while hold.held() < 2 && waited.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let together = hold.held();
        let has = |c: &Value, k: &str| c[k].as_str().is_some_and(|s| !s.is_empty());
        let ours = |c: &&Value| c["account_id"].as_u64() == Some(sb.account_id);
        let listable = |c: &&Value| {
            ours(c)
                && ["email", "phone_number", "identifier"]
                    .iter()
                    .any(|k| has(c, k))
        };
        let contacts = sb.contacts();
        let victim = contacts
            .iter()
            .filter(listable)
            .filter_map(|c| c["id"].as_u64())
            .max()
            .unwrap();
        c.contacts().delete(victim).await.unwrap();
        sb.state().reset_stats();
        hold.release();
        together
    });
    let s = s.unwrap();
    let m = s.manifest.notes.unwrap();
    assert_eq!(m.contacts_gone, 1);
    assert!(together > 1, "notes one at a time: {together} in flight");
    let stats = sb.state().stats();
    // Held requests are counted when they finish, after the reset.
    assert_eq!(stats.count("GET", route::NOTES), s.manifest.rows);
}

/// A proxy to `upstream` that answers every notes listing with a 503 and passes the rest on.
async fn notes_storm(upstream: String) -> String {
    use axum::response::IntoResponse;
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (http, upstream) = (http.clone(), upstream.clone());
        async move {
            if req.uri().path().ends_with("/notes") {
                return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "storm").into_response();
            }
            let url = format!("{upstream}{}", req.uri().path_and_query().unwrap());
            let mut r = http.request(req.method().clone(), url);
            for (k, v) in req.headers().iter().filter(|(k, _)| *k != "host") {
                r = r.header(k, v);
            }
            let body = axum::body::to_bytes(req.into_body(), usize::MAX)
                .await
                .unwrap();
            let answer = r.body(body).send().await.unwrap();
            let status = answer.status();
            let kind = answer.headers().get("content-type").cloned();
            let bytes = answer.bytes().await.unwrap();
            let mut resp = (status, bytes).into_response();
            if let Some(k) = kind {
                resp.headers_mut().insert("content-type", k);
            }
            resp
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_5xx_storm_on_notes_fails_the_export_and_leaves_every_previous_file_as_it_was() {
    let sb = sandbox(120).await;
    let dir = tempfile::tempdir().unwrap();
    let mut o = with_notes(dir.path(), "p.csv", "p.notes.csv");
    o.conversations = Some(dir.path().join("p.conversations.csv"));
    export(&client(&sb), &o).await.unwrap();
    let before = files_in(dir.path());
    assert_eq!(before.len(), 6, "{:?}", before.keys());

    let proxy = notes_storm(sb.base_url.clone()).await;
    let stormy = Client::new(config(&proxy, &sb)).unwrap();
    let e = export(&stormy, &o).await.unwrap_err();
    assert!(format!("{e:#}").contains("notes of contact"), "{e:#}");
    assert_eq!(
        files_in(dir.path()),
        before,
        "a file changed or a temporary file was left"
    );
}
