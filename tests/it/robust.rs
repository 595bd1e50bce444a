//! Other people's files and honest run directories: rows of one file sharing a phone (each
//! contact created, the later ones without the phone and a warning naming the first row, the same
//! reports run after run); a header with a quote left open; an interrupted run resumed ends with
//! the reports of a clean run, and `run.json` records each invocation; two writers of one JSON
//! file; `region_from` as a list (Zoho's Mailing Country, else Mailing State).
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use doto_bulk::api::Concurrency;
use doto_bulk::cmd::import::{Args, run_import};
use doto_bulk::mapping::Mapping;
use doto_bulk::model::ErrorCode;
use doto_bulk::sandbox::route;
use doto_bulk::source::Record;
use serde_json::Value;
use tempfile::TempDir;

use crate::identity::PHONE_MAPPING;
use crate::import::World;

/// `doto-bulk ARGS` in `dir`; panics unless it exits `code`.
fn doto(dir: &Path, args: &[&str], code: i32) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_doto-bulk"))
        .current_dir(dir)
        .args(args)
        .env_remove("DOTO_API_TOKEN")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
    err
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `results.csv` without its `contact_id` column (ids depend on which concurrent create the
/// server saw first).
fn results_without_ids(run: &Path) -> String {
    read(run, "results.csv")
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            f.remove(2);
            f.join(",")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn rows_sharing_a_phone_are_all_created_and_the_later_ones_name_the_first_row() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let mut csv = String::from("Name,Email,ID,Phone\n");
    for i in 0..60 {
        // Every fifth row shares the phone of the row five lines above (three groups of four
        // rows with one phone each, written differently); the others have phones of their own.
        let phone = match i % 5 {
            0 if i < 20 => "+44 20 7946 0001".to_owned(),
            0 => format!("020 7946 {:04}", 1000 + i),
            _ => format!("+44 20 7946 {:04}", 2000 + i),
        };
        let phone = if i == 10 {
            "+442079460001".to_owned()
        } else {
            phone
        };
        csv.push_str(&format!("P{i},p{i}@x.com,ID{i},{phone}\n"));
    }
    std::fs::write(d.join("p.csv"), csv).unwrap();
    std::fs::write(d.join("p.yaml"), PHONE_MAPPING).unwrap();
    let mut reports = Vec::new();
    for run in ["a", "b"] {
        let args = [
            "import",
            "p.csv",
            "-m",
            "p.yaml",
            "--sandbox",
            "--phone-region",
            "GB",
        ];
        doto(d, &[&args[..], &["--out", run, "-q"]].concat(), 0);
        let r = d.join(run);
        let summary: serde_json::Value = serde_json::from_str(&read(&r, "summary.json")).unwrap();
        assert_eq!(summary["outcomes"]["created"], 60, "{summary}");
        reports.push((
            read(&r, "warnings.csv"),
            read(&r, "failures.csv"),
            results_without_ids(&r),
        ));
    }
    assert_eq!(
        reports[0], reports[1],
        "the same file twice gives the same reports"
    );
    let warnings = &reports[0].0;
    // Rows 7, 12 and 17 (lines) share row 2's phone; nobody else is warned.
    let warned: Vec<&str> = warnings.lines().skip(1).collect();
    assert_eq!(warned.len(), 3, "{warnings}");
    for (w, line, cell) in [
        (warned[0], 7, "+44 20 7946 0001"),
        (warned[1], 12, "+442079460001"),
        (warned[2], 17, "+44 20 7946 0001"),
    ] {
        assert!(
            w.contains(&format!(",{line},phone_in_use,phone_number,")),
            "{w}"
        );
        assert!(
            w.contains("held by the contact of row 2, which has the same phone"),
            "{w}"
        );
        assert!(w.contains("imported without it"), "{w}");
        // The original value is the cell as read, not the normalised number.
        assert!(
            w.ends_with(&format!(",'{cell}")) || w.ends_with(&format!(",{cell}")),
            "{w}"
        );
    }
}

#[test]
fn a_header_with_a_quote_left_open_is_one_error_naming_the_line_and_the_quote() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    std::fs::write(d.join("m.yaml"), PHONE_MAPPING).unwrap();
    let write = |name: &str, body: &[u8]| std::fs::write(d.join(name), body).unwrap();
    write(
        "open.csv",
        b"\"Name,Email,ID,Phone\nAnn,ann@x.com,A1,+442079460963\nBob,bob@x.com,B1,\n",
    );
    let err = doto(d, &["validate", "open.csv", "-m", "m.yaml"], 1);
    assert!(
        err.contains("open.csv: line 1: the header row has a quote that is never closed"),
        "{err}"
    );
    assert!(
        err.contains(r#"the quote opens "\"Name,Email,ID,Phone""#),
        "{err}"
    );
    assert!(!err.contains("is not in the file's headers"), "{err}");
    assert_eq!(err.matches("error").count(), 1, "one error: {err}");
    // Closed by a later quote that does not end a field: the same error, naming the line it
    // opened on.
    write(
        "later.csv",
        b"Name,\"Email,ID,Phone\nAnn,ann@x.com,\"A1\",1\nBob,bob@x.com,B1,2\n",
    );
    let err = doto(d, &["validate", "later.csv", "-m", "m.yaml"], 1);
    assert!(
        err.contains(
            "later.csv: line 1: the header row has a quote that is not closed on its line"
        ),
        "{err}"
    );
    // A header name on two lines in well-formed quotes is still a header.
    write("two.csv", b"Name,\"E\nmail\",ID,Phone\nAnn,ann@x.com,A1,\n");
    let err = doto(d, &["validate", "two.csv", "-m", "m.yaml"], 1);
    assert!(
        err.contains(r#"column "Email" is not in the file's headers; closest: "E\nmail""#),
        "{err}"
    );
    // A trailing empty column and two empty headers: warned, the rest read.
    write("blank.csv", b"Name,,Email,ID,Phone,\nAnn,,ann@x.com,A1,,\n");
    let err = doto(
        d,
        &["validate", "blank.csv", "-m", "m.yaml", "--out", "v"],
        0,
    );
    assert!(err.contains("column 2 has a blank header name"), "{err}");
    assert!(err.contains("column 6 has a blank header name"), "{err}");
    // A file that is only a byte-order mark (and a line end) has no header row.
    for body in [&b"\xef\xbb\xbf"[..], b"\xef\xbb\xbf\r\n"] {
        write("bom.csv", body);
        let err = doto(d, &["validate", "bom.csv", "-m", "m.yaml"], 1);
        assert!(
            err.contains("bom.csv: the file is empty: there is no header row"),
            "{err}"
        );
    }
}

/// `n` rows; every tenth shares the phone of the first row of its hundred (written another way),
/// so that rows finished before an interruption carry `phone_in_use` warnings.
fn shared_phone_rows(n: usize) -> String {
    let mut csv = String::from("Name,Email,ID,Phone\n");
    for i in 0..n {
        let phone = match i % 10 {
            0 => format!("+44 20 7946 {:04}", i / 100),
            _ => format!("+4420794{:05}", 10_000 + i),
        };
        csv.push_str(&format!("P{i},p{i}@x.com,ID{i},{phone}\n"));
    }
    csv
}

/// The reports a run directory ends with (`results.csv` without the contact ids).
fn reports(run: &Path) -> (String, String, String) {
    let r = (
        read(run, "warnings.csv"),
        read(run, "failures.csv"),
        results_without_ids(run),
    );
    assert!(r.0.contains("phone_in_use"), "{}", r.0);
    r
}

fn json(run: &Path, name: &str) -> Value {
    serde_json::from_str(&read(run, name)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_interrupted_and_resumed_ends_with_a_clean_runs_reports_and_records_each_invocation()
{
    const N: usize = 300;
    let csv = shared_phone_rows(N);
    let clean = World::plain().await;
    let run = clean.import(&csv, PHONE_MAPPING, "run", |_| {}).await;
    assert_eq!(run.exit_code, 0);
    let want = reports(&run.run_dir);

    let w = World::plain().await;
    let file = w.write("f.csv", &csv);
    let map = w.write("m.yaml", PHONE_MAPPING);
    let mut args = Args::new(&file, &map);
    args.out = Some(w.path("run"));
    args.concurrency = Concurrency::Fixed(4);
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, sb) = (Arc::clone(&stop), w.sb.state().clone());
    tokio::spawn(async move {
        while sb.stats().count("POST", route::CONTACTS) < 150 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        flag.store(true, Ordering::Relaxed);
    });
    let first = run_import(&args, w.config(), true, stop).await.unwrap();
    assert_eq!(first.exit_code, 130);
    let done = first.summary.outcomes["created"];
    assert!((20..N as u64).contains(&done), "{done}");
    let journal = read(&first.run_dir, "journal.jsonl");
    assert!(
        journal.contains("phone_in_use"),
        "a finished row's warning is journaled"
    );

    for _ in 0..2 {
        let mut resume = Args::new(&file, &map);
        resume.resume = Some(first.run_dir.clone());
        let again = run_import(&resume, w.config(), true, Arc::new(AtomicBool::new(false)))
            .await
            .unwrap();
        assert_eq!(again.exit_code, 0);
    }
    assert_eq!(w.by_email().len(), N);
    assert_eq!(reports(&first.run_dir), want, "the reports of a clean run");

    let record = json(&first.run_dir, "run.json");
    assert_eq!(record["exit_code"], 130, "{record:#}");
    assert!(record["finished_at"].as_str().unwrap() > record["started_at"].as_str().unwrap());
    let resumes = record["resumes"].as_array().unwrap();
    assert_eq!(resumes.len(), 2, "{record:#}");
    for (i, r) in resumes.iter().enumerate() {
        assert_eq!(r["exit_code"], 0, "{record:#}");
        assert!(r["finished_at"].as_str().unwrap() > r["started_at"].as_str().unwrap());
        let before = if i == 0 {
            &record["finished_at"]
        } else {
            &resumes[0]["finished_at"]
        };
        assert!(r["started_at"].as_str().unwrap() >= before.as_str().unwrap());
        assert!(r["command_line"].is_array() && r["tool_version"].is_string());
    }
    let summary = json(&first.run_dir, "summary.json");
    assert_eq!(summary["resumed"]["invocation"], 3, "{summary:#}");
}

#[test]
fn two_writers_of_one_json_file_never_leave_it_torn() {
    let dir = TempDir::new().unwrap();
    let d = dir.path().to_path_buf();
    // Two values of different sizes (a torn file would be a mix, or cut short).
    let values: Vec<Value> = (0..2)
        .map(|w| serde_json::json!({"writer": w, "rows": vec![w; 20_000 + 30_000 * w]}))
        .collect();
    doto_bulk::report::write_json_atomic(&d, "summary.json", &values[0]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (d, stop, values) = (d.clone(), Arc::clone(&stop), values.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                let text = std::fs::read_to_string(d.join("summary.json")).unwrap();
                let v: Value = serde_json::from_str(&text).expect("a whole JSON document");
                assert!(values.contains(&v));
                reads += 1;
            }
            reads
        })
    };
    let writers: Vec<_> = values
        .iter()
        .map(|v| {
            let (d, v) = (d.clone(), v.clone());
            std::thread::spawn(move || {
                for _ in 0..30 {
                    doto_bulk::report::write_json_atomic(&d, "summary.json", &v).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    let v: Value = serde_json::from_str(&read(&d, "summary.json")).unwrap();
    assert!(values.contains(&v));
    let names: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["summary.json"], "no temporary file is left");
}

/// `cells` of a `Name,Email,Mobile,Mailing State,Mailing Country` row through `yaml`: the phone and the
/// warnings' codes.
fn region_row(yaml: &str, headers: &[&str], cells: &[&str]) -> (String, Vec<ErrorCode>) {
    let m = Mapping::parse(yaml, "m.yaml").unwrap_or_else(|e| panic!("{e:#}"));
    let h: Vec<String> = headers.iter().map(|s| s.to_string()).collect();
    let rec = Record {
        line: 2,
        fields: cells.iter().map(|s| s.to_string()).collect(),
        numeric: vec![false; cells.len()],
    };
    let d = m.resolve(&h).unwrap().apply(&rec).unwrap();
    let phone = d
        .phone_number
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    (phone, d.warnings.iter().map(|w| w.code).collect())
}

#[test]
fn region_from_takes_a_list_and_the_first_non_blank_column_gives_the_region() {
    let list = "version: 1\ndefaults:\n  phone_region: GB\nfields:\n  name: Name\n  email: Email\n  \
                phone_number: { from: Mobile, region_from: [\"Mailing Country\", \"Mailing State\"], optional: true }\n";
    let all = [
        "Name",
        "Email",
        "Mobile",
        "Mailing State",
        "Mailing Country",
    ];
    // The country wins; a blank country gives way to the state (a Canadian province here);
    // both blank: the default region.
    let cases = [
        (
            ["A", "x@y.com", "(416) 555-0100", "ON", "Canada"],
            "+14165550100",
        ),
        (
            ["B", "x@y.com", "020 7946 0963", "ON", "United Kingdom"],
            "+442079460963",
        ),
        (["C", "x@y.com", "(416) 555-0100", "ON", ""], "+14165550100"),
        (["D", "x@y.com", "020 7946 0963", "", " "], "+442079460963"),
    ];
    for (cells, want) in cases {
        assert_eq!(region_row(list, &all, &cells).0, want, "{cells:?}");
    }
    // Zoho's default contacts layout has no Mailing Country: the state is used.
    let no_country = ["Name", "Email", "Mobile", "Mailing State"];
    let (phone, codes) = region_row(list, &no_country, &["E", "x@y.com", "(303) 555-0101", "CO"]);
    assert_eq!((phone.as_str(), codes), ("+13035550101", vec![]));
    // The single-column form still works, and an unknown country in the first non-blank
    // column is reported (the default region is used), not passed over.
    let single = list.replace(
        "[\"Mailing Country\", \"Mailing State\"]",
        "\"Mailing Country\"",
    );
    assert_eq!(
        region_row(
            &single,
            &all,
            &["F", "x@y.com", "(416) 555-0100", "", "Canada"]
        )
        .0,
        "+14165550100"
    );
    let (phone, codes) = region_row(
        list,
        &all,
        &["G", "x@y.com", "020 7946 0963", "ON", "Narnia"],
    );
    assert_eq!(
        (phone.as_str(), codes),
        ("+442079460963", vec![ErrorCode::UnknownRegion])
    );
    // An empty list is refused when the mapping is read.
    let empty = list.replace("[\"Mailing Country\", \"Mailing State\"]", "[]");
    let e = Mapping::parse(&empty, "m.yaml").unwrap_err();
    assert!(
        format!("{e:#}").contains("`region_from:` lists no column"),
        "{e:#}"
    );
}

#[test]
fn a_stray_nul_byte_fails_its_row_and_binary_data_is_refused_naming_the_line() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    std::fs::write(d.join("m.yaml"), PHONE_MAPPING).unwrap();
    let body = "Name,Email,ID,Phone\nZ\0e,zoe@x.com,Z1,\nAnn,ann@x.com,A1,\n";
    std::fs::write(d.join("nul.csv"), body).unwrap();
    // An invalid row (exit 3); the other row is read.
    doto(d, &["validate", "nul.csv", "-m", "m.yaml", "--out", "v"], 3);
    let summary = json(&d.join("v"), "summary.json");
    assert_eq!(summary["outcomes"]["invalid"], 1, "{summary:#}");
    assert_eq!(summary["rows_read"], 2, "{summary:#}");
    let failures = read(&d.join("v"), "failures.csv");
    assert!(
        failures.contains(",2,invisible_characters,Name,"),
        "{failures}"
    );
    // Many NUL bytes: not text.
    let mut bin = b"Name,Email\nAnn,a@x.com\n".to_vec();
    bin.extend([0u8; 40]);
    std::fs::write(d.join("bin.csv"), bin).unwrap();
    let err = doto(d, &["validate", "bin.csv", "-m", "m.yaml"], 1);
    assert!(
        err.contains("bin.csv: not CSV text: binary data (40 NUL bytes"),
        "{err}"
    );
    assert!(err.contains("the first on line 3"), "{err}");
}
