//! Export for scripts and analytics, and the round trip on any account: `export -o -` streams to
//! stdout, a FIFO or a symlink target is never renamed over, `--select`/`--exclude`, typed XLSX
//! cells, and exporting an account whose attributes, names and keys vary, then importing the file
//! back (CSV and XLSX, the shipped mapping and the one written beside the export) makes no write.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use doto_bulk::api::{Client, NewContact};
use doto_bulk::cmd::export::{ExportOptions, export};
use doto_bulk::cmd::import::{Args, run_import};
use doto_bulk::sandbox::{SandboxConfig, SandboxHandle, Stats, spawn};
use serde_json::{Value, json};

use crate::export::fast_config as config;

/// The command exited 0 (its stderr shown when not).
fn assert_ok(out: &std::process::Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_doto-bulk"))
}

fn new_contact(name: &str, email: Option<&str>, phone: Option<&str>) -> NewContact {
    NewContact {
        name: Some(name.into()),
        email: email.map(String::from),
        phone_number: phone.map(String::from),
        ..NewContact::default()
    }
}

/// Contacts no shipped mapping has heard of: attribute keys of their own, values of every JSON
/// type, names a spreadsheet would run as formulas (and one with a `'` of its own), phone-only
/// contacts, unicode, and a name-only contact the listing never shows. `typed`: attributes that
/// are numbers and booleans too (the shipped mapping reads attributes as text).
fn varied(typed: bool) -> Vec<NewContact> {
    let mut out = vec![];
    let names = [
        "=SUM(A1:A9)",
        "+cmd|' /C calc'!A0",
        "@handle(1)",
        "-minus",
        "'=quoted by hand",
        "'Connor",
        "Zoë Ærøskøbing 北京",
    ];
    for (i, name) in names.iter().enumerate() {
        let email = format!("varied{i}@example.com");
        let mut c = new_contact(name, Some(&email), None);
        c.custom_attributes
            .insert(format!("odd key {i}"), json!(format!("v{i}")));
        if typed {
            c.custom_attributes.insert("seats".into(), json!(i * 10));
            c.custom_attributes
                .insert("ratio".into(), json!(0.5 + i as f64));
            c.custom_attributes.insert("vip".into(), json!(i % 2 == 0));
        }
        c.additional_attributes
            .insert("company_name".into(), json!(format!("=Co {i}")));
        c.additional_attributes
            .insert("städt".into(), json!("Köln"));
        out.push(c);
    }
    for i in 0..3 {
        let phone = format!("+4420794600{i:02}");
        let mut c = new_contact(&format!("Phone Only {i}"), None, Some(&phone));
        c.custom_attributes.insert("tier".into(), json!("b"));
        out.push(c);
    }
    let mut ident = new_contact("Ident Only", None, None);
    ident.identifier = Some("ID-ü-1".into());
    out.push(ident);
    out.push(new_contact("Name Only", None, None));
    out
}

async fn varied_sandbox(typed: bool) -> SandboxHandle {
    sandbox_with(varied(typed)).await
}

/// An empty sandbox, then `contacts` created through the API.
pub(crate) async fn sandbox_with(contacts: impl IntoIterator<Item = NewContact>) -> SandboxHandle {
    let sb = spawn(SandboxConfig {
        seed_contacts: 0,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts");
    let client = Client::new(config(&sb)).unwrap();
    for c in contacts {
        client.contacts().create(&c).await.unwrap();
    }
    sb
}

/// Requests that were not reads.
pub(crate) fn writes(stats: &Stats) -> u64 {
    stats
        .by_route
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| r.count)
        .sum()
}

/// Import `file` with `mapping` into `sb`: no write, exit 0, every listed contact unchanged.
async fn import_back(sb: &SandboxHandle, file: &Path, mapping: &Path, rows: u64) {
    let before = (writes(&sb.stats()), sb.state().state_json());
    let mut args = Args::new(file, mapping);
    args.out = Some(PathBuf::from(format!("{}.run", file.display())));
    let run = run_import(&args, config(sb), true, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    let shown = format!(
        "{} with {}: {:?}",
        file.display(),
        mapping.display(),
        run.summary
    );
    assert_eq!(writes(&sb.stats()), before.0, "{shown}");
    assert_eq!(sb.state().state_json(), before.1, "{shown}");
    assert_eq!(run.exit_code, 0, "{shown}");
    assert_eq!(run.summary.rows_read, rows, "{shown}");
    assert_eq!(
        run.summary.outcomes.get("unchanged").copied(),
        Some(rows),
        "{shown}"
    );
}

/// Export `sb` to CSV and XLSX and import each file back with `mapping` (none: the one the export
/// wrote beside it).
async fn round_trip(sb: &SandboxHandle, dir: &Path, mapping: Option<&Path>, contacts: usize) {
    let client = Client::new(config(sb)).unwrap();
    for name in ["round.csv", "round.xlsx"] {
        let o = ExportOptions::new(dir.join(name)).unwrap();
        let s = export(&client, &o).await.unwrap();
        // The name-only contact is not listed.
        assert_eq!(s.manifest.rows, contacts as u64 - 1, "{name}");
        let written = s.mapping_path.expect("a mapping beside the export");
        assert_eq!(written, dir.join(format!("{name}.mapping.yaml")));
        import_back(sb, &o.output, mapping.unwrap_or(&written), s.manifest.rows).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_account_round_trips_with_the_shipped_mapping_with_zero_writes() {
    let sb = varied_sandbox(false).await;
    let dir = tempfile::tempdir().unwrap();
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings/doto-export.yaml");
    round_trip(&sb, dir.path(), Some(&shipped), varied(false).len()).await;
    // The guard went on the CSV's cells, and the hand-written `'` stayed apart from it.
    let text = std::fs::read_to_string(dir.path().join("round.csv")).unwrap();
    assert!(text.contains("'=SUM(A1:A9)"), "{text}");
    assert!(text.contains("''=quoted by hand"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_attributes_round_trip_with_the_mapping_written_beside_the_export() {
    let sb = varied_sandbox(true).await;
    let dir = tempfile::tempdir().unwrap();
    round_trip(&sb, dir.path(), None, varied(true).len()).await;
    let yaml = std::fs::read_to_string(dir.path().join("round.csv.mapping.yaml")).unwrap();
    for line in [
        r#""seats": { from: "custom_attributes.seats", type: integer"#,
        r#""ratio": { from: "custom_attributes.ratio", type: number"#,
        r#""vip": { from: "custom_attributes.vip", type: bool"#,
        r#""odd key 3": { from: "custom_attributes.odd key 3", type: string"#,
        "on: [identifier, email, phone_number]",
        "unguard: true",
    ] {
        assert!(yaml.contains(line), "{line} not in\n{yaml}");
    }
    let xlsx = std::fs::read_to_string(dir.path().join("round.xlsx.mapping.yaml")).unwrap();
    assert!(!xlsx.contains("unguard"), "{xlsx}");
}

/// `doto-bulk export --sandbox` with a small seed, fast, and `args`.
pub(crate) fn export_cmd(args: &[&str]) -> Command {
    let mut c = bin();
    c.args([
        "export",
        "--sandbox",
        "--sandbox-seed",
        "40",
        "--rate",
        "5000",
    ])
    .args(args);
    c
}

#[test]
fn dash_streams_csv_and_jsonl_into_a_reading_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("m.json");
    let mut child = export_cmd(&["-o", "-", "--format", "csv", "--manifest"])
        .arg(&manifest)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader parses the pipe as it comes.
    let mut r = csv::Reader::from_reader(child.stdout.take().unwrap());
    let headers: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let records: Vec<csv::StringRecord> = r.records().collect::<Result<_, _>>().unwrap();
    let rows = records.len();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("to standard output"), "{err}");
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert_eq!(m["rows"].as_u64(), Some(rows as u64));
    assert!(rows > 0 && headers[0] == "id", "{headers:?}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "only the manifest and its snapshot"
    );

    let out = export_cmd(&["-q", "-o", "-", "--format", "jsonl"])
        .output()
        .unwrap();
    assert_ok(&out);
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), rows);
    assert!(lines.iter().all(|c| c["id"].is_u64()));
}

#[test]
fn dash_needs_a_format_and_refuses_xlsx() {
    for (args, says) in [
        (&["-o", "-"][..], "--format"),
        (
            &["-o", "-", "--format", "xlsx"][..],
            "XLSX cannot go to standard output",
        ),
    ] {
        let out = export_cmd(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
}

#[cfg(unix)]
#[test]
fn a_fifo_and_a_symlink_to_a_device_are_written_into_never_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.csv");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let out = export_cmd(&["-q", "-o"]).arg(&fifo).output().unwrap();
    assert_ok(&out);
    let text = reader.join().unwrap();
    assert!(text.starts_with("id,name,"), "{text}");
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );

    let link = dir.path().join("null.csv");
    std::os::unix::fs::symlink("/dev/null", &link).unwrap();
    let out = export_cmd(&["-q", "-o"]).arg(&link).output().unwrap();
    assert_ok(&out);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
    // `--conversations` to a symlink to a device: written into, the link kept.
    let conv = dir.path().join("conv.jsonl");
    std::os::unix::fs::symlink("/dev/null", &conv).unwrap();
    let file = tempfile::tempdir().unwrap();
    let out = export_cmd(&["-q", "-o"])
        .arg(file.path().join("all.csv"))
        .arg("--conversations")
        .arg(&conv)
        .output()
        .unwrap();
    assert_ok(&out);
    assert!(
        std::fs::symlink_metadata(&conv)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    std::fs::remove_file(&conv).unwrap();
    // No manifest, mapping or temporary file beside either, nor in /dev.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["null.csv", "pipe.csv"]);
    assert!(!Path::new("/dev/null.manifest.json").exists());

    let out = export_cmd(&["-o"])
        .arg(dir.path())
        .args(["--format", "csv"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("a directory"), "{err}");
}

#[test]
fn select_and_exclude_pick_columns_by_glob_and_name_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("s.csv");
    let out = export_cmd(&[
        "-q",
        "--select",
        "id,email",
        "--select",
        "custom_attributes.*",
    ])
    .args(["--exclude", "email", "-o"])
    .arg(&out_file)
    .output()
    .unwrap();
    assert_ok(&out);
    let mut r = csv::Reader::from_path(&out_file).unwrap();
    let h: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(h[0], "id");
    assert!(h.len() > 1, "{h:?}");
    assert!(
        h[1..].iter().all(|c| c.starts_with("custom_attributes.")),
        "{h:?}"
    );

    let out = export_cmd(&["--select", "custom_attributes.nope", "-o"])
        .arg(dir.path().join("t.csv"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        err.contains("\"custom_attributes.nope\"") && err.contains("phone_number"),
        "{err}"
    );
    assert!(!dir.path().join("t.csv").exists());
}

/// An attribute whose key is empty (`{"": ...}`) is a column like any other: the next export to
/// the same path reads it back from the manifest (it used to refuse its own manifest, so every
/// later export of the account failed), and the mapping beside the file loads, the empty key
/// commented out (a mapping cannot name one).
#[test]
fn an_empty_attribute_key_exports_again_and_its_mapping_loads() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.jsonl");
    std::fs::write(
        &seed,
        r#"{"id":1,"name":"A","email":"a@x.com","custom_attributes":{"":"blank key","plan":"pro"},"additional_attributes":{"":1}}"#,
    )
    .unwrap();
    for name in ["e.csv", "e.parquet", "e.xlsx"] {
        let out = dir.path().join(name);
        for pass in 1..=2 {
            let run = bin()
                .args(["export", "-q", "--sandbox", "--sandbox-load"])
                .arg(&seed)
                .arg("-o")
                .arg(&out)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&run.stderr);
            assert_eq!(run.status.code(), Some(0), "{name}, export {pass}: {err}");
        }
        let manifest = std::fs::read_to_string(dir.path().join(format!("{name}.manifest.json")));
        let manifest = manifest.unwrap();
        assert!(manifest.contains("\"custom_attributes.\""), "{manifest}");
        assert!(
            manifest.contains("\"additional_attributes.\""),
            "{manifest}"
        );
    }
    let csv = std::fs::read_to_string(dir.path().join("e.csv")).unwrap();
    assert!(csv.contains("blank key"), "{csv}");
    let mapping = dir.path().join("e.csv.mapping.yaml");
    let text = std::fs::read_to_string(&mapping).unwrap();
    assert!(
        text.contains("  # \"\": { from: \"custom_attributes.\""),
        "{text}"
    );
    let run = bin()
        .args(["validate", "-q"])
        .arg(dir.path().join("e.csv"))
        .arg("-m")
        .arg(&mapping)
        .arg("--out")
        .arg(dir.path().join("v"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{err}");
}
