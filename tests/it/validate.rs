//! `doto-bulk validate`: the run directory it writes (failures.csv, results.csv, summary.json),
//! the counts adding up, in-file duplicates, exit codes. Run in-process through
//! `cmd::validate::run_validate`; two tests spawn the binary for the exit code and stderr.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use doto_bulk::cmd::validate::{Args, Validation, run_validate, validate_input};
use doto_bulk::exit::Stop;
use doto_bulk::mapping::Mapping;
use doto_bulk::pipeline::input::Input;
use doto_bulk::source::{CsvSource, Source, SourceOptions};
use tempfile::TempDir;

use crate::source::{FailingFile, contacts_csv, cut_xlsx};

/// The mapping every test uses unless it says otherwise. `required: true`: a bad value fails its
/// row, the strict mode these tests of the reports' accounting were written for (the default, a
/// bad value left out with a warning, is tested in tests/it/fields.rs).
const MAPPING: &str = r#"version: 1
defaults:
  phone_region: GB
  required: true
match:
  on: [email, identifier]
fields:
  name: Name
  email: Email
  phone_number: Phone
  identifier: ID
"#;

/// A file with one of each kind of trouble. Lines: 2 valid, 3 bad email, 4 missing name, 5 bad
/// phone, 6 too many fields, 7 too few, 8 blank, 9 delimiter-only, 10-11 valid with a quoted
/// newline, 12-13 invalid with a quoted newline and quotes, 14 repeats line 2's email in another
/// case, 15 a report footer (skipped).
const MESSY: &str = "Name,Email,Phone,ID\n\
Ann Lee,ann@example.com,07912 345678,A1\n\
Bob,bob@@example.com,,A2\n\
,carl@example.com,,A3\n\
Dee,dee@example.com,12345,A4\n\
Eve,eve@example.com,,A5,extra\n\
Fay,fay@example.com\n\
\n\
,,,\n\
\"Gus \"\"G\"\"\nSecond line\",gus@example.com,,A6\n\
\"Hal \"\"H\"\"\n  indented \",hal@@example.com,,A7\n\
Ann Again,ANN@Example.com,,A8\n\
Total: 12 contacts,,,\n";

/// A temporary directory to write files and run validate in (the `grammar` tests use it too).
pub(crate) struct World {
    dir: TempDir,
}

impl World {
    pub(crate) fn new() -> World {
        World {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    pub(crate) fn write(&self, name: &str, body: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, body).unwrap();
        p
    }
    /// Validate `file` with `mapping` into the run directory `out`.
    pub(crate) fn validate(&self, file: &Path, mapping: &Path, out: &str) -> Validation {
        let args = Args::new(file, mapping, Some(&self.path(out)));
        run_validate(&args, true, &AtomicBool::new(false)).unwrap()
    }
}

/// A CSV file as header + rows of strings.
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let h = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(String::from).collect())
        .collect();
    (h, rows)
}

/// results.csv as `_row` → (action, key, duplicate_of).
fn results(run: &Path) -> BTreeMap<u64, (String, String, String)> {
    let (h, rows) = read_csv(&run.join("results.csv"));
    assert_eq!(
        h,
        [
            "_row",
            "action",
            "contact_id",
            "key",
            "duplicate_of",
            "_warnings"
        ]
    );
    rows.into_iter()
        .map(|r| {
            assert_eq!(r[2], "", "validate never has a contact id");
            (
                r[0].parse().unwrap(),
                (r[1].clone(), r[3].clone(), r[4].clone()),
            )
        })
        .collect()
}

fn summary_json(run: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn every_row_of_a_messy_file_is_accounted_for() {
    let w = World::new();
    let file = w.write("messy.csv", MESSY);
    let map = w.write("m.yaml", MAPPING);
    let v = w.validate(&file, &map, "run");
    assert_eq!(v.exit_code, 3, "some rows are invalid");

    let res = results(&v.run_dir);
    let actions: BTreeMap<u64, &str> = res.iter().map(|(l, r)| (*l, r.0.as_str())).collect();
    let want: BTreeMap<u64, &str> = [
        (2, "valid"),
        (3, "invalid"),
        (4, "invalid"),
        (5, "invalid"),
        (6, "invalid"),
        (7, "invalid"),
        (8, "skipped"),
        (9, "skipped"),
        (10, "valid"),
        (12, "invalid"),
        (14, "valid"),
        (15, "skipped"),
    ]
    .into_iter()
    .collect();
    assert_eq!(actions, want);

    // The summary agrees with results.csv and adds up to the rows read.
    let s = summary_json(&v.run_dir);
    assert_eq!(s["rows_read"], 12);
    assert_eq!(s["outcomes"]["valid"], 3);
    assert_eq!(s["outcomes"]["invalid"], 6);
    assert_eq!(s["outcomes"]["skipped"], 3);
    let by_code: u64 = s["failures_by_code"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(by_code, 6, "failures by code sum to the invalid rows");
    assert_eq!(s["failures_by_code"]["invalid_email"], 2);
    assert_eq!(s["failures_by_code"]["missing_name"], 1);
    assert_eq!(s["failures_by_code"]["ragged_row"], 2);
    assert_eq!(s["failures_by_code"]["invalid_phone"], 1);
    // Skipped rows say why in errors_by_code, not in failures.
    assert_eq!(s["errors_by_code"]["blank_row"], 2);
    assert_eq!(s["errors_by_code"]["report_footer"], 1);
    assert_eq!(s["duplicates_in_file"], 1);
    assert_eq!(s["file"], file.display().to_string());
    assert!(s["rows_per_s"].as_f64().unwrap() >= 0.0);
    assert_eq!(v.summary.rows_read, 12);
}

#[test]
fn failures_csv_keeps_the_original_columns_and_text_untouched() {
    let w = World::new();
    let file = w.write("messy.csv", MESSY);
    let map = w.write("m.yaml", MAPPING);
    let v = w.validate(&file, &map, "run");
    let (h, rows) = read_csv(&v.run_dir.join("failures.csv"));
    assert_eq!(
        h,
        [
            "Name",
            "Email",
            "Phone",
            "ID",
            "_row",
            "_error_code",
            "_error_field",
            "_error_message"
        ]
    );
    let by_line: BTreeMap<&str, &Vec<String>> = rows.iter().map(|r| (r[4].as_str(), r)).collect();
    assert_eq!(
        by_line.keys().copied().collect::<Vec<_>>(),
        ["12", "3", "4", "5", "6", "7"],
        "the invalid rows, and only them (no blank rows, no footer)"
    );
    assert_eq!(by_line["3"][..4], ["Bob", "bob@@example.com", "", "A2"]);
    assert_eq!(by_line["3"][5], "invalid_email");
    assert!(
        by_line["3"][7].contains("bob@@example.com"),
        "{}",
        by_line["3"][7]
    );
    assert_eq!(by_line["4"][5], "missing_name");
    assert_eq!(by_line["5"][..4], ["Dee", "dee@example.com", "12345", "A4"]);
    assert_eq!(by_line["5"][5], "invalid_phone");
    assert_eq!(
        by_line["5"][6], "Phone",
        "the error names the source column"
    );
    // Quotes, the newline and the spaces inside a quoted field survive exactly.
    assert_eq!(by_line["12"][0], "Hal \"H\"\n  indented ");
    // Ragged rows: fitted under the header, the message says what happened.
    assert_eq!(by_line["6"][..4], ["Eve", "eve@example.com", "", "A5"]);
    assert!(by_line["6"][7].contains("\"extra\""), "{}", by_line["6"][7]);
    assert_eq!(by_line["7"][..4], ["Fay", "fay@example.com", "", ""]);
    assert!(by_line["7"][7].contains("empty"), "{}", by_line["7"][7]);
}

#[test]
fn failures_csv_fed_back_with_the_same_mapping_is_read_right() {
    let w = World::new();
    let file = w.write(
        "in.csv",
        "Name,Email,Phone,ID\n\
         Ann,ann@example.com,,A1\n\
         Bob,bob@@example.com,,A2\n\
         ,carl@example.com,,A3\n\
         Dee,dee@example.com,12345,A4\n\
         \"Eve, \"\"E\"\"\nMore\",eve@@example.com,,A5\n",
    );
    let map = w.write("m.yaml", MAPPING);
    let first = w.validate(&file, &map, "run1");
    assert_eq!(first.summary.failures(), 4);
    let failures = first.run_dir.join("failures.csv");

    // Fed back as is: the same rows fail for the same reasons, the columns did not shift and
    // the underscore columns are neither mapped nor repeated.
    let again = w.validate(&failures, &map, "run2");
    assert_eq!(again.exit_code, 3);
    assert_eq!(again.summary.rows_read, 4);
    assert_eq!(again.summary.failures(), 4);
    let (h1, r1) = read_csv(&failures);
    let (h2, r2) = read_csv(&again.run_dir.join("failures.csv"));
    // Report columns are replaced, not added again; the first file's line is kept.
    let mut want = h1.clone();
    want.insert(4, "_source_row".to_owned());
    assert_eq!(h2, want);
    for (a, b) in r1.iter().zip(&r2) {
        assert_eq!(a[..4], b[..4], "original fields unchanged");
        assert_eq!(a[4], b[4], "_source_row is the first file's _row");
        assert_eq!(a[5..7], b[6..8], "same error code and field");
    }

    // The user fixes the file in a spreadsheet; fixed rows now pass.
    let fixed = std::fs::read_to_string(&failures)
        .unwrap()
        .replace("bob@@example.com", "bob@example.com")
        .replace("eve@@example.com", "eve@example.com");
    let fixed = w.write("fixed.csv", &fixed);
    let third = w.validate(&fixed, &map, "run3");
    assert_eq!(third.summary.rows_read, 4);
    assert_eq!(third.summary.count(doto_bulk::report::RowAction::Valid), 2);
    let res = results(&third.run_dir);
    // Lines of the fed-back file: header, Bob, Carl, Dee, Eve (two physical lines).
    assert_eq!(res[&2].0, "valid");
    assert_eq!(res[&2].1, "email:bob@example.com");
    assert_eq!(res[&5].0, "valid");
}

#[test]
fn a_clean_file_exits_0_and_failures_csv_has_only_its_header() {
    let w = World::new();
    let file = w.write(
        "ok.csv",
        "Name,Email,Phone,ID\nAnn,ann@example.com,+44 7912 345678,A1\nBob,,,B2\n",
    );
    let map = w.write("m.yaml", MAPPING);
    let v = w.validate(&file, &map, "run");
    assert_eq!(v.exit_code, 0);
    let (h, rows) = read_csv(&v.run_dir.join("failures.csv"));
    assert_eq!(h.len(), 8);
    assert!(rows.is_empty());
    let res = results(&v.run_dir);
    assert_eq!(
        res[&2],
        (
            "valid".into(),
            "email:ann@example.com".into(),
            String::new()
        )
    );
    // Bob has no email: the next match key names him.
    assert_eq!(res[&3].1, "identifier:B2");
}

#[test]
fn duplicates_are_valid_rows_that_name_the_line_they_repeat() {
    let w = World::new();
    let file = w.write(
        "dupes.csv",
        "Name,Email,Phone,ID\n\
         Ann,Ann@Example.com,,A1\n\
         Bob,bob@example.com,,b1\n\
         Ann 2,ann@example.COM,,A2\n\
         Bob 2,other@example.com,,B1\n\
         Bob 3,third@example.com,,b1\n\
         Ann 3,ANN@example.com,,A9\n",
    );
    let map = w.write("m.yaml", MAPPING);
    let v = w.validate(&file, &map, "run");
    assert_eq!(v.exit_code, 0, "duplicates alone do not fail a validation");
    let res = results(&v.run_dir);
    let dup_of: Vec<(u64, &str)> = res.iter().map(|(l, r)| (*l, r.2.as_str())).collect();
    assert_eq!(
        dup_of,
        [(2, ""), (3, ""), (4, "2"), (5, ""), (6, "3"), (7, "2")],
        "email case-insensitive, identifier case-sensitive (B1 is not b1)"
    );
    assert!(res.values().all(|r| r.0 == "valid"));
    assert_eq!(v.summary.duplicates_in_file, 3);
    assert_eq!(summary_json(&v.run_dir)["duplicates_in_file"], 3);
    assert_eq!(
        summary_json(&v.run_dir)["errors_by_code"]["duplicate_in_file"],
        serde_json::Value::Null
    );
}

#[test]
fn rows_stay_in_file_order_across_worker_threads() {
    let w = World::new();
    let mut body = String::from("Name,Email,Phone,ID\n");
    for i in 0..5000 {
        if i % 10 == 3 {
            body.push_str(&format!("P{i},p{i}@@example.com,,\n"));
        } else {
            body.push_str(&format!("P{i},p{i}@example.com,,\n"));
        }
    }
    let file = w.write("big.csv", &body);
    let map = w.write("m.yaml", MAPPING);
    let mut args = Args::new(&file, &map, Some(&w.path("run")));
    args.workers = Some(3);
    let v = run_validate(&args, true, &AtomicBool::new(false)).unwrap();
    assert_eq!(v.summary.rows_read, 5000);
    assert_eq!(v.summary.failures(), 500);
    let (_, rows) = read_csv(&v.run_dir.join("results.csv"));
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r[0], (i + 2).to_string());
        let want = if i % 10 == 3 { "invalid" } else { "valid" };
        assert_eq!(r[1], want, "line {}", i + 2);
    }
    let (_, fails) = read_csv(&v.run_dir.join("failures.csv"));
    assert_eq!(fails.len(), 500);
    assert_eq!(fails[0][0], "P3");
    assert_eq!(fails[499][0], "P4993");
}

#[test]
fn max_errors_stops_the_run_and_keeps_the_reports() {
    let w = World::new();
    let mut body = String::from("Name,Email,Phone,ID\n");
    for i in 0..3000 {
        body.push_str(&format!("P{i},bad{i}@@example.com,,\n"));
    }
    let file = w.write("bad.csv", &body);
    let map = w.write("m.yaml", MAPPING);
    let mut args = Args::new(&file, &map, Some(&w.path("run")));
    args.max_errors = Some(10);
    let v = run_validate(&args, true, &AtomicBool::new(false)).unwrap();
    assert_eq!(v.exit_code, 1);
    assert_eq!(v.summary.stopped, Some(Stop::MaxErrors));
    assert_eq!(v.summary.rows_read, 11);
    let (_, fails) = read_csv(&v.run_dir.join("failures.csv"));
    assert_eq!(fails.len(), 11);
    assert_eq!(summary_json(&v.run_dir)["stopped"], "max_errors");
}

#[test]
fn a_mapping_naming_a_missing_column_is_fatal_and_writes_no_run_directory() {
    let w = World::new();
    let file = w.write("in.csv", "Name,E-mail\nAnn,ann@example.com\n");
    let map = w.write(
        "m.yaml",
        "version: 1\nfields:\n  name: Name\n  email: Email\n",
    );
    let args = Args::new(&file, &map, Some(&w.path("run")));
    let err = run_validate(&args, true, &AtomicBool::new(false)).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("in.csv"), "names the file: {msg}");
    assert!(msg.contains("E-mail"), "names the closest header: {msg}");
    assert!(
        !w.path("run").exists(),
        "no run directory for a run that never started"
    );
}

#[test]
fn an_unreadable_file_or_mapping_is_fatal_naming_it() {
    let w = World::new();
    let map = w.write("m.yaml", MAPPING);
    let missing = w.path("nope.csv");
    let err = run_validate(
        &Args::new(&missing, &map, Some(&w.path("r1"))),
        true,
        &AtomicBool::new(false),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("nope.csv"), "{err:#}");
    let file = w.write("in.csv", "Name\nAnn\n");
    let bad_map = w.write("bad.yaml", "version: 1\nfields:\n  nme: Name\n");
    let err = run_validate(
        &Args::new(&file, &bad_map, Some(&w.path("r2"))),
        true,
        &AtomicBool::new(false),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("bad.yaml"), "{err:#}");
}

#[test]
fn a_non_empty_run_directory_is_never_overwritten() {
    let w = World::new();
    let file = w.write("in.csv", "Name,Email,Phone,ID\nAnn,ann@example.com,,\n");
    let map = w.write("m.yaml", MAPPING);
    let first = w.validate(&file, &map, "run");
    let before = std::fs::read(first.run_dir.join("results.csv")).unwrap();
    let other = w.write("other.csv", "Name,Email,Phone,ID\nBob,bob@@x.com,,\n");
    let err = run_validate(
        &Args::new(&other, &map, Some(&w.path("run"))),
        true,
        &AtomicBool::new(false),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("not empty"), "{err:#}");
    assert_eq!(
        std::fs::read(first.run_dir.join("results.csv")).unwrap(),
        before
    );
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_doto-bulk"))
}

#[test]
fn the_binary_prints_the_summary_and_exits_3_when_rows_are_invalid() {
    let w = World::new();
    let file = w.write("messy.csv", MESSY);
    let map = w.write("m.yaml", MAPPING);
    // Default run directory: doto-runs/<UTC time>-validate/ under the working directory.
    let out = bin()
        .current_dir(w.dir.path())
        .args(["validate", "messy.csv", "-m", "m.yaml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    for want in [
        "rows read",
        "valid",
        "invalid",
        "invalid_email",
        "skipped",
        "duplicates in file",
        "rows/s",
        "doto-runs/",
    ] {
        assert!(stderr.contains(want), "summary lacks {want:?}:\n{stderr}");
    }
    assert!(
        !stderr.contains('\u{1b}'),
        "no progress bar drawing when stderr is not a terminal"
    );
    let runs: Vec<_> = std::fs::read_dir(w.path("doto-runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(runs.len(), 1);
    assert!(
        runs[0].to_string_lossy().ends_with("Z-validate"),
        "{runs:?}"
    );
    let _ = (file, map);

    // -q: nothing on stderr; the exit code still tells.
    let out = bin()
        .current_dir(w.dir.path())
        .args(["-q", "validate", "messy.csv", "-m", "m.yaml", "--out", "q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_binary_exits_1_naming_a_missing_file() {
    let w = World::new();
    w.write("m.yaml", MAPPING);
    let out = bin()
        .current_dir(w.dir.path())
        .args(["validate", "missing.csv", "-m", "m.yaml", "--out", "r"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.csv"));
}

#[test]
fn an_xlsx_file_reports_sheet_rows_and_its_failures_csv_feeds_back() {
    let w = World::new();
    let x = w.path("contacts.xlsx");
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in ["Name", "Email", "Phone", "ID"].iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    // Row 2 valid, row 3 bad email, row 4 a number cell for the identifier.
    ws.write_string(1, 0, "Ann").unwrap();
    ws.write_string(1, 1, "ann@example.com").unwrap();
    ws.write_string(2, 0, "Bob").unwrap();
    ws.write_string(2, 1, "bob@@example.com").unwrap();
    ws.write_string(3, 0, "Cy").unwrap();
    ws.write_number(3, 3, 1234.0).unwrap();
    wb.save(&x).unwrap();
    let map = w.write("m.yaml", MAPPING);
    let v = w.validate(&x, &map, "run");
    assert_eq!(v.exit_code, 3);
    assert_eq!(v.summary.rows_read, 3);
    let (_, rows) = read_csv(&v.run_dir.join("failures.csv"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][..5], ["Bob", "bob@@example.com", "", "", "3"]);
    assert_eq!(
        results(&v.run_dir)[&4].1,
        "identifier:1234",
        "a whole float is an integer"
    );

    let again = w.validate(&v.run_dir.join("failures.csv"), &map, "run2");
    assert_eq!(again.summary.rows_read, 1);
    assert_eq!(
        again.summary.failures_by_code.get("invalid_email"),
        Some(&1)
    );
}

#[test]
fn an_interrupted_run_flushes_its_reports_and_exits_130() {
    let w = World::new();
    let mut body = String::from("Name,Email,Phone,ID\n");
    for i in 0..2000 {
        body.push_str(&format!("P{i},p{i}@@example.com,,\n"));
    }
    let file = w.write("in.csv", &body);
    let map = w.write("m.yaml", MAPPING);
    // The flag is already set: the run stops after its first row, as after Ctrl-C.
    let args = Args::new(&file, &map, Some(&w.path("run")));
    let v = run_validate(&args, true, &AtomicBool::new(true)).unwrap();
    assert_eq!(v.exit_code, 130);
    assert_eq!(v.summary.rows_read, 1);
    let s = summary_json(&v.run_dir);
    assert_eq!(s["stopped"], "interrupted");
    let (_, fails) = read_csv(&v.run_dir.join("failures.csv"));
    assert_eq!(fails.len(), 1, "the row done is in failures.csv, flushed");
    assert_eq!(results(&v.run_dir).len(), 1);
}

// ---------------------------------------------------------------- read errors and cut files

/// The mapping of `source::contacts_csv` and `source::cut_xlsx`.
const CONTACTS_MAPPING: &str =
    "version: 1\nfields:\n  name: Name\n  email: Email\n  identifier: ID\n";

#[test]
fn a_read_error_after_n_rows_stops_the_run_with_exit_1_and_flushes_the_rows_before_it() {
    let w = World::new();
    // 50 contacts; line 5's email is bad (and required); the device fails 4 bytes into line 30.
    let (text, offset) = contacts_csv(50, 30);
    let text = text.replace("p5@example.com", "p5@@example.com");
    let strict = CONTACTS_MAPPING.replace("email: Email", "email: { from: Email, required: true }");
    let map = w.write("m.yaml", &strict);
    let mapping = Mapping::load(&map).unwrap();
    let file = FailingFile::new(text, offset + 4);
    let source = CsvSource::from_reader("contacts.csv", file, &SourceOptions::default()).unwrap();
    let headers = source.headers().to_vec();
    let input = Input {
        resolved: mapping.resolve(&headers).unwrap(),
        mapping,
        source: Box::new(source),
        headers,
    };
    let args = Args::new(Path::new("contacts.csv"), &map, Some(&w.path("run")));
    let v = validate_input(&args, input, true, &AtomicBool::new(false)).unwrap();
    assert_eq!(v.exit_code, 1, "a file read in part is not a short file");
    let s = summary_json(&v.run_dir);
    assert_eq!(s["stopped"], "read_error");
    let e = s["read_error"].as_str().unwrap();
    assert!(
        e.starts_with("contacts.csv: reading failed at line 30"),
        "{e}"
    );
    assert_eq!(s["rows_read"], 28);
    let res = results(&v.run_dir);
    assert_eq!(
        res.keys().copied().collect::<Vec<_>>(),
        (2..30).collect::<Vec<u64>>()
    );
    assert_eq!(res[&5].0, "invalid");
    let (h, failures) = read_csv(&v.run_dir.join("failures.csv"));
    assert_eq!(h[3], "_row");
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0][3], "5");
}

#[test]
fn the_binary_exits_1_on_a_cut_xlsx_naming_the_file_and_the_row() {
    let w = World::new();
    cut_xlsx(&w.path("cut.xlsx"), 40, 20);
    w.write("m.yaml", CONTACTS_MAPPING);
    let out = bin()
        .current_dir(w.dir.path())
        .args(["validate", "cut.xlsx", "-m", "m.yaml", "--out", "r"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cut.xlsx") && stderr.contains("reading failed at row 20"),
        "{stderr}"
    );
    // Rows 2–19 were read and reported before the stop.
    let res = results(&w.path("r"));
    assert_eq!(
        res.keys().copied().collect::<Vec<_>>(),
        (2..20).collect::<Vec<u64>>()
    );
    assert!(res.values().all(|r| r.0 == "valid"));
    let s = summary_json(&w.path("r"));
    assert_eq!(s["stopped"], "read_error");
    assert!(s["read_error"].as_str().unwrap().contains("row 20"));
}

#[test]
fn a_csv_cut_mid_row_never_exits_0_and_reports_the_cut_row() {
    let w = World::new();
    let map = w.write("m.yaml", CONTACTS_MAPPING);
    let (text, offset) = contacts_csv(5, 6);
    let cuts = [
        (
            "short.csv",
            format!("{}P6,p6@exa", &text[..offset]),
            "found 2",
            "ragged_row",
        ),
        (
            "quoted.csv",
            format!("{}P6,\"p6@exa", &text[..offset]),
            "quoted field opened on line 6",
            "unterminated_quote",
        ),
    ];
    for (name, body, why, code) in cuts {
        let file = w.write(name, &body);
        let v = w.validate(&file, &map, &format!("run-{name}"));
        assert_eq!(v.exit_code, 3, "{name}");
        let res = results(&v.run_dir);
        assert_eq!(
            res.keys().copied().collect::<Vec<_>>(),
            (2..=6).collect::<Vec<u64>>()
        );
        let (_, failures) = read_csv(&v.run_dir.join("failures.csv"));
        assert_eq!(failures.len(), 1, "{name}");
        assert_eq!(failures[0][3..5], ["6", code], "{name}");
        assert!(failures[0][6].contains(why), "{name}: {:?}", failures[0]);
    }
}

#[test]
fn header_warnings_are_printed_and_kept_in_summary_json() {
    let w = World::new();
    w.write("dup.csv", "Name,Email,ID,Email,\nAnn,a@x.com,1,b@x.com,\n");
    w.write("m.yaml", CONTACTS_MAPPING);
    let out = bin()
        .current_dir(w.dir.path())
        .args(["validate", "dup.csv", "-m", "m.yaml", "--out", "r"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let s = summary_json(&w.path("r"));
    let warnings: Vec<&str> = s["header_warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("dup.csv: column 5 has a blank header name"));
    assert!(warnings[1].contains("dup.csv: header \"Email\" appears 2 times"));
    for w in warnings {
        assert!(stderr.contains(&format!("warning: {w}")), "{stderr}");
    }
}
