//! The mapping grammar for real files (issue 11 item 4, issue 14 item 5): `optional: true`,
//! repeated headers as `name#2`, the header row and sheet found when the mapping does not say,
//! the `source:` options end to end, `from_prefix` attributes, `--phone-region`, and mapping
//! errors in the mapping's words. Small CSV and XLSX files written by each test.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use doto_bulk::mapping::{ContactDraft, Mapping};
use doto_bulk::normalise::Region;
use doto_bulk::pipeline::input::Input;
use doto_bulk::source::column_name;
use rust_xlsxwriter::Workbook;
use serde_json::{Value, json};

use crate::validate::World;

/// Open `file` with `mapping` and map every record (line → draft); the input is returned for
/// its header warnings.
fn drafts(file: &Path, mapping: &Path) -> (Input, BTreeMap<u64, ContactDraft>) {
    drafts_with(file, mapping, None)
}

fn drafts_with(
    file: &Path,
    mapping: &Path,
    region: Option<Region>,
) -> (Input, BTreeMap<u64, ContactDraft>) {
    let mut input = Input::open_with_region(file, mapping, region).unwrap();
    let mut out = BTreeMap::new();
    for item in input.source.by_ref() {
        let rec = item.unwrap();
        let d = input
            .resolved
            .apply(&rec)
            .unwrap_or_else(|e| panic!("line {}: {e:?}", rec.line));
        out.insert(rec.line, d);
    }
    assert!(input.source.take_error().is_none());
    (input, out)
}

fn open_err(file: &Path, mapping: &Path) -> String {
    match Input::open(file, mapping) {
        Ok(_) => panic!("{} opened with {}", file.display(), mapping.display()),
        Err(e) => format!("{e:#}"),
    }
}

fn summary(run: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap()
}

/// results.csv: `_row` → action.
fn actions(run: &Path) -> BTreeMap<u64, String> {
    let mut r = csv::Reader::from_path(run.join("results.csv")).unwrap();
    r.records()
        .map(|x| {
            let x = x.unwrap();
            (x[0].parse().unwrap(), x[1].to_owned())
        })
        .collect()
}

fn header_warnings(run: &Path) -> Vec<String> {
    summary(run)["header_warnings"]
        .as_array()
        .map(|a| a.iter().map(|w| w.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

fn attrs(d: &ContactDraft) -> Value {
    json!({
        "custom": Value::Object(d.custom_attributes.clone()),
        "additional": Value::Object(d.additional_attributes.clone()),
    })
}

// ---------------------------------------------------------------- optional: true

const OPTIONAL: &str = r#"version: 1
defaults:
  phone_region: GB
fields:
  name: Name
  email: Email
  phone_number: { from: [Mobile, Phone], optional: true }
custom_attributes:
  tier: { from: Tier, optional: true, default: basic }
  owner: { template: "{Owner First} {Owner Last}", optional: true }
"#;

#[test]
fn optional_columns_absent_from_the_file_are_skipped_with_one_notice_each() {
    let w = World::new();
    // No Mobile, no Tier, no Owner Last: every row still maps, from what is there.
    let file = w.write(
        "a.csv",
        "Name,Email,Phone,Owner First\nAnn,ann@example.com,020 7946 0018,Sam\nBob,bob@example.com,,\n",
    );
    let map = w.write("m.yaml", OPTIONAL);
    let (input, d) = drafts(&file, &map);
    assert_eq!(
        d[&2].phone_number.as_ref().map(|p| p.as_str()),
        Some("+442079460018")
    );
    assert_eq!(
        attrs(&d[&2])["custom"],
        json!({"tier": "basic", "owner": "Sam"})
    );
    assert_eq!(d[&3].phone_number, None);
    assert_eq!(attrs(&d[&3])["custom"], json!({"tier": "basic"}));

    let v = w.validate(&file, &map, "run");
    assert_eq!(v.exit_code, 0);
    let notes = header_warnings(&v.run_dir);
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert!(
        notes[0].contains("m.yaml:7: fields.phone_number")
            && notes[0].contains("\"Mobile\"")
            && notes[0].contains("skipped"),
        "{notes:?}"
    );
    assert!(
        notes[1].contains("custom_attributes.tier") && notes[1].contains("default \"basic\""),
        "{notes:?}"
    );
    assert!(
        notes[2].contains("\"Owner Last\"") && !notes[2].contains("Owner First"),
        "{notes:?}"
    );
    drop(input);
}

/// A mapping that reads several layouts (Outlook in three languages) lacks most of its columns in
/// any one file: past three such values the notices become one line that counts them, while a
/// value left with no column at all keeps its own notice.
#[test]
fn many_values_reading_from_their_other_columns_are_summed_up_in_one_notice() {
    let w = World::new();
    let file = w.write(
        "a.csv",
        "Name,Email,Phone,City,Company\nAnn,ann@example.com,020 7946 0018,Leeds,Acme\n",
    );
    let many = r#"version: 1
defaults:
  phone_region: GB
fields:
  name: { from: [Vorname, Name], optional: true }
  email: { from: [E-Mail-Adresse, Email], optional: true }
  phone_number: { from: [Mobiltelefon, Phone], optional: true }
additional_attributes:
  city: { from: [Ort, City], optional: true }
  company_name: { from: [Firma, Company], optional: true }
custom_attributes:
  tier: { from: Stufe, optional: true }
"#;
    let map = w.write("m.yaml", many);
    let (input, d) = drafts(&file, &map);
    assert_eq!(d[&2].name.as_deref(), Some("Ann"));
    let notices = input.resolved.notices();
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert!(
        notices[0].contains("custom_attributes.tier") && notices[0].contains("blank on every row"),
        "{notices:?}"
    );
    assert!(
        notices[1].contains("5 optional columns of 5 values are not in the file")
            && !notices[1].contains("Vorname"),
        "{notices:?}"
    );
    // Three or fewer: each named.
    let few = many.replace("{ from: [Ort, City], optional: true }", "City");
    let few = few.replace("{ from: [Firma, Company], optional: true }", "Company");
    let map = w.write("few.yaml", &few);
    let (input, _) = drafts(&file, &map);
    let notices = input.resolved.notices();
    assert_eq!(notices.len(), 4, "{notices:?}");
    assert!(notices[0].contains("\"Vorname\""), "{notices:?}");
}

#[test]
fn optional_columns_present_in_the_file_are_read_and_noted_nowhere() {
    let w = World::new();
    let file = w.write(
        "a.csv",
        "Name,Email,Mobile,Phone,Tier,Owner First,Owner Last\nAnn,ann@example.com,07912 345678,020 7946 0018,gold,Sam,Ray\n",
    );
    let map = w.write("m.yaml", OPTIONAL);
    let (input, d) = drafts(&file, &map);
    assert!(input.resolved.notices().is_empty());
    assert_eq!(
        d[&2].phone_number.as_ref().map(|p| p.as_str()),
        Some("+447912345678")
    );
    assert_eq!(
        attrs(&d[&2])["custom"],
        json!({"tier": "gold", "owner": "Sam Ray"})
    );
}

#[test]
fn without_optional_an_absent_column_of_a_from_list_still_stops_the_run() {
    let w = World::new();
    let file = w.write("a.csv", "Name,Email,Phone\nAnn,ann@example.com,\n");
    let map = w.write(
        "m.yaml",
        "version: 1\nfields:\n  name: Name\n  email: Email\n  phone_number: { from: [Mobile, Phone] }\n",
    );
    let e = open_err(&file, &map);
    assert!(
        e.contains("m.yaml:5: column \"Mobile\" is not in the file's headers"),
        "{e}"
    );
}

// ---------------------------------------------------------------- repeated headers

#[test]
fn repeated_headers_are_addressed_as_name_hash_n() {
    let w = World::new();
    let file = w.write(
        "a.csv",
        "Name,email,Phone,email,email\nAnn,,,ann@example.com,old@example.com\nBob,bob@example.com,,,\n",
    );
    let map = w.write(
        "m.yaml",
        "version: 1\nfields:\n  name: Name\n  email: { from: [email, \"email#2\"] }\ncustom_attributes:\n  old_email: \"email#3\"\n",
    );
    let (input, d) = drafts(&file, &map);
    assert_eq!(
        d[&2].email.as_ref().map(|e| e.as_str()),
        Some("ann@example.com")
    );
    assert_eq!(
        attrs(&d[&2])["custom"],
        json!({"old_email": "old@example.com"})
    );
    assert_eq!(
        d[&3].email.as_ref().map(|e| e.as_str()),
        Some("bob@example.com")
    );
    // The file's warning says how to name the repeats.
    let warned = input.source.warnings().join("\n");
    assert!(warned.contains("\"email#2\""), "{warned}");

    // Each column's spelled name finds that very column.
    let headers = input.headers.clone();
    let spelled: Vec<String> = (0..headers.len())
        .map(|i| column_name(&headers, i))
        .collect();
    assert_eq!(spelled, ["Name", "email", "Phone", "email#2", "email#3"]);
    let notes: Vec<String> = spelled
        .iter()
        .map(|n| format!("  - {{ template: \"{{{n}}}\" }}\n"))
        .collect();
    let m = Mapping::parse(
        &format!(
            "version: 1\nfields:\n  name: Name\n  email: email\nnotes:\n{}",
            notes.concat()
        ),
        "n.yaml",
    )
    .unwrap();
    assert!(m.resolve(&headers).is_ok());
}

#[test]
fn an_occurrence_the_file_does_not_have_names_the_ones_it_has() {
    let w = World::new();
    let file = w.write(
        "a.csv",
        "Name,email,email\nAnn,a@example.com,b@example.com\n",
    );
    let map = w.write(
        "m.yaml",
        "version: 1\nfields:\n  name: Name\n  email: \"email#3\"\n",
    );
    let e = open_err(&file, &map);
    assert!(
        e.contains("m.yaml:4: column \"email#3\"")
            && e.contains("2 columns named \"email\" (columns 2, 3)"),
        "{e}"
    );
}

// ---------------------------------------------------------------- where the header is

const CONTACTS: &str = "version: 1\ndefaults:\n  phone_region: GB\nfields:\n  name: Name\n  email: Email\n  phone_number: { from: Phone, optional: true }\n";

#[test]
fn csv_title_lines_above_the_header_are_skipped_and_lines_stay_the_files() {
    let w = World::new();
    let file = w.write(
        "a.csv",
        "Contacts export;;\nGenerated 2024-03-01;;\n\nName;Email;Phone\nAnn;ann@example.com;020 7946 0018\nBob;bob@example.com;\n",
    );
    let map = w.write("m.yaml", CONTACTS);
    let v = w.validate(&file, &map, "run");
    assert_eq!(v.exit_code, 0);
    let got = actions(&v.run_dir);
    assert_eq!(
        got,
        BTreeMap::from([(5, "valid".to_owned()), (6, "valid".to_owned())])
    );
    assert_eq!(v.summary.rows_read, 2, "title lines are not rows");
    let notes = header_warnings(&v.run_dir).join("\n");
    assert!(
        notes.contains("the header is on line 4") && notes.contains("the 2 line(s)"),
        "{notes}"
    );
}

#[test]
fn a_csv_whose_header_is_on_line_one_reads_as_before_without_notice() {
    let w = World::new();
    let file = w.write("a.csv", "Name,Email,Phone\nAnn,ann@example.com,\n");
    let map = w.write("m.yaml", CONTACTS);
    let v = w.validate(&file, &map, "run");
    assert_eq!(v.exit_code, 0);
    assert!(header_warnings(&v.run_dir).is_empty());
    assert_eq!(actions(&v.run_dir).keys().copied().collect::<Vec<_>>(), [2]);
}

/// A workbook with a decoy `Summary` sheet first, then `Contacts` with two title rows above the
/// header (row 3) and two contacts (rows 4, 5).
fn decoy_workbook(w: &World) -> PathBuf {
    let path = w.path("decoy.xlsx");
    let mut wb = Workbook::new();
    let s = wb.add_worksheet();
    s.set_name("Summary").unwrap();
    s.write_string(0, 0, "Contacts report").unwrap();
    s.write_string(2, 0, "Total contacts").unwrap();
    s.write_number(2, 1, 2.0).unwrap();
    let c = wb.add_worksheet();
    c.set_name("Contacts").unwrap();
    c.write_string(0, 0, "ACME CRM export").unwrap();
    c.write_string(1, 0, "Run on 2024-03-01 by Sam").unwrap();
    for (i, h) in ["Name", "Email", "Phone"].iter().enumerate() {
        c.write_string(2, i as u16, *h).unwrap();
    }
    c.write_string(3, 0, "Ann").unwrap();
    c.write_string(3, 1, "ann@example.com").unwrap();
    c.write_string(3, 2, "020 7946 0018").unwrap();
    c.write_string(4, 0, "Bob").unwrap();
    c.write_string(4, 1, "bob@example.com").unwrap();
    wb.save(&path).unwrap();
    path
}

#[test]
fn xlsx_decoy_sheet_and_title_rows_are_skipped_with_notices() {
    let w = World::new();
    let file = decoy_workbook(&w);
    let map = w.write("m.yaml", CONTACTS);
    let v = w.validate(&file, &map, "run");
    assert_eq!(v.exit_code, 0);
    assert_eq!(
        actions(&v.run_dir),
        BTreeMap::from([(4, "valid".to_owned()), (5, "valid".to_owned())])
    );
    let notes = header_warnings(&v.run_dir);
    assert!(
        notes[0].contains("sheet \"Summary\" skipped") && notes[0].contains("\"Email\""),
        "{notes:?}"
    );
    assert!(
        notes[1].contains("sheet \"Contacts\": the header is on row 3")
            && notes[1].contains("the 2 rows of text above it are not data"),
        "{notes:?}"
    );
    let (_, d) = drafts(&file, &map);
    assert_eq!(d[&4].name.as_deref(), Some("Ann"));
}

#[test]
fn xlsx_sheet_and_header_row_from_the_mapping_are_used_as_given() {
    let w = World::new();
    let file = decoy_workbook(&w);
    for sheet in ["Contacts", "2", "contacts"] {
        let map = w.write(
            "m.yaml",
            &format!("version: 1\nsource:\n  sheet: \"{sheet}\"\n  header_row: 3\nfields:\n  name: Name\n  email: Email\n"),
        );
        let (input, d) = drafts(&file, &map);
        assert_eq!(input.headers, ["Name", "Email", "Phone"], "{sheet}");
        assert_eq!(d.keys().copied().collect::<Vec<_>>(), [4, 5], "{sheet}");
        assert!(input.source.warnings().is_empty(), "{sheet}");
    }
    // An index written as a YAML number.
    let map = w.write(
        "m.yaml",
        "version: 1\nsource:\n  sheet: 2\n  header_row: 3\nfields:\n  name: Name\n  email: Email\n",
    );
    assert_eq!(drafts(&file, &map).0.headers, ["Name", "Email", "Phone"]);
    // A header row without a sheet: the first sheet whose row 3 holds the columns.
    let map = w.write(
        "m.yaml",
        "version: 1\nsource:\n  header_row: 3\nfields:\n  name: Name\n  email: Email\n",
    );
    let (input, d) = drafts(&file, &map);
    assert_eq!(d.keys().copied().collect::<Vec<_>>(), [4, 5]);
    let warned = input.source.warnings().join("\n");
    assert!(warned.contains("sheet \"Summary\" skipped"), "{warned}");
    assert!(!warned.contains("the header is on row"), "{warned}");
    // A sheet named without a header row: the header is searched on that sheet only.
    let map = w.write(
        "m.yaml",
        "version: 1\nsource:\n  sheet: Contacts\nfields:\n  name: Name\n  email: Email\n",
    );
    let (input, _) = drafts(&file, &map);
    assert_eq!(input.headers, ["Name", "Email", "Phone"]);
    // The decoy named explicitly: its first row is the header, and the mapping does not fit it.
    let map = w.write(
        "m.yaml",
        "version: 1\nsource:\n  sheet: Summary\nfields:\n  name: Name\n  email: Email\n",
    );
    let e = open_err(&file, &map);
    assert!(
        e.contains("column \"Name\" is not in the file's headers"),
        "{e}"
    );
}

#[test]
fn csv_delimiter_encoding_and_header_row_from_the_mapping_work_end_to_end() {
    let w = World::new();
    // Windows-1252 bytes (é = 0xE9), tab-separated, header on line 3 under a title that holds
    // the column names too (so only header_row can pick the right line).
    let mut body = b"Name\tEmail\nsee below\t\nName\tEmail\n".to_vec();
    body.extend_from_slice(b"Zo\xe9\tzoe@example.com\n");
    let file = w.path("a.txt");
    std::fs::write(&file, &body).unwrap();
    let map = w.write(
        "m.yaml",
        "version: 1\nsource:\n  delimiter: tab\n  encoding: windows-1252\n  header_row: 3\nfields:\n  name: Name\n  email: Email\n",
    );
    let (_, d) = drafts(&file, &map);
    assert_eq!(d.keys().copied().collect::<Vec<_>>(), [4]);
    assert_eq!(d[&4].name.as_deref(), Some("Zoé"));
    let v = w.validate(&file, &map, "run");
    assert_eq!(v.exit_code, 0);
}

// ---------------------------------------------------------------- from_prefix

#[test]
fn from_prefix_reads_every_attribute_column_and_explicit_keys_win() {
    let w = World::new();
    let file = w.write(
        "a.csv",
        "name,email,custom_attributes.plan,custom_attributes.seats,custom_attributes.,additional_attributes.city,custom_attributes.plan\n\
         Ann,ann@example.com,pro,5,x,Lyon,dup\n\
         Bob,bob@example.com,,,,,\n",
    );
    let map = w.write(
        "m.yaml",
        "version: 1\nfields:\n  name: name\n  email: email\ncustom_attributes:\n  from_prefix: \"custom_attributes.\"\n  seats: { from: custom_attributes.seats, type: integer }\nadditional_attributes:\n  from_prefix: \"additional_attributes.\"\n",
    );
    let (input, d) = drafts(&file, &map);
    assert!(input.resolved.notices().is_empty());
    assert_eq!(
        attrs(&d[&2]),
        json!({"custom": {"seats": 5, "plan": "pro"}, "additional": {"city": "Lyon"}})
    );
    assert_eq!(attrs(&d[&3]), json!({"custom": {}, "additional": {}}));
}

#[test]
fn from_prefix_matching_no_column_is_a_notice_not_an_error() {
    let w = World::new();
    let file = w.write("a.csv", "name,email\nAnn,ann@example.com\n");
    let map = w.write(
        "m.yaml",
        "version: 1\nfields:\n  name: name\n  email: email\ncustom_attributes:\n  from_prefix: \"custom_attributes.\"\n",
    );
    let v = w.validate(&file, &map, "run");
    assert_eq!(v.exit_code, 0);
    let notes = header_warnings(&v.run_dir);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("m.yaml:6: custom_attributes.from_prefix")
            && notes[0].contains("no column of the file starts with \"custom_attributes.\""),
        "{notes:?}"
    );
    let e = format!(
        "{:#}",
        Mapping::parse(
            "version: 1\nfields:\n  name: n\n  email: e\nadditional_attributes:\n  from_prefix: \"\"\n",
            "p.yaml"
        )
        .unwrap_err()
    );
    assert!(
        e.contains("p.yaml:6: additional_attributes.from_prefix"),
        "{e}"
    );
}

// ---------------------------------------------------------------- --phone-region

const REGION: &str = "version: 1\ndefaults:\n  phone_region: GB\nfields:\n  name: Name\n  email: Email\n  phone_number: Phone\n";

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_doto-bulk"))
}

#[test]
fn phone_region_overrides_the_mappings_default_region() {
    let w = World::new();
    let file = w.write(
        "a.csv",
        "Name,Email,Phone\nJan,jan@example.com,030 1234567\n",
    );
    let map = w.write("m.yaml", REGION);
    let de = Region::parse("DE").unwrap();
    let (_, d) = drafts_with(&file, &map, Some(de));
    assert_eq!(
        d[&2].phone_number.as_ref().map(|p| p.as_str()),
        Some("+49301234567")
    );
    // Read as GB (the mapping's default) the same digits are another number or none.
    let mut input = Input::open(&file, &map).unwrap();
    let rec = input.source.next().unwrap().unwrap();
    let as_gb = input.resolved.apply(&rec).ok().and_then(|d| d.phone_number);
    assert_ne!(as_gb.as_ref().map(|p| p.as_str()), Some("+49301234567"));

    let out = bin()
        .args(["-q", "validate"])
        .arg(&file)
        .arg("-m")
        .arg(&map)
        .args(["--phone-region", "Germany", "--out"])
        .arg(w.path("run"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
}

#[test]
fn import_with_phone_region_stores_the_number_read_in_that_region() {
    let w = World::new();
    let file = w.write(
        "a.csv",
        "Name,Email,Phone\nJan,jan@example.com,030 1234567\n",
    );
    let map = w.write("m.yaml", REGION);
    let state = w.path("state.json");
    let out = bin()
        .args(["-q", "import"])
        .arg(&file)
        .arg("-m")
        .arg(&map)
        .args(["--phone-region", "DE", "--sandbox", "--sandbox-save"])
        .arg(&state)
        .arg("--out")
        .arg(w.path("run"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let saved = std::fs::read_to_string(&state).unwrap();
    assert!(saved.contains("+49301234567"), "{saved}");
}

#[test]
fn an_unknown_phone_region_is_a_usage_error_naming_it() {
    let w = World::new();
    let file = w.write(
        "a.csv",
        "Name,Email,Phone\nJan,jan@example.com,030 1234567\n",
    );
    let map = w.write("m.yaml", REGION);
    for cmd in [vec!["validate", "-m"], vec!["import", "-m"]] {
        let out = bin()
            .args(&cmd[..1])
            .arg(&file)
            .arg(cmd[1])
            .arg(&map)
            .args(["--phone-region", "XX"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--phone-region") && err.contains("\"XX\" is not a country"),
            "{err}"
        );
    }
    let out = bin()
        .args(["mapping", "init"])
        .arg(&file)
        .args(["--phone-region", "Atlantis"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn mapping_init_writes_the_given_phone_region() {
    let w = World::new();
    let file = w.write(
        "a.csv",
        "Name,Email,Phone\nJan,jan@example.com,030 1234567\n",
    );
    let out = bin()
        .args(["-q", "mapping", "init"])
        .arg(&file)
        .args(["--phone-region", "de"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(yaml.contains("\n  phone_region: DE"), "{yaml}");
    assert!(yaml.contains("(--phone-region)"), "{yaml}");
    assert!(!yaml.contains("set defaults.phone_region"), "{yaml}");
    // And the draft validates the file with it.
    let map = w.write("m.yaml", &yaml);
    let (_, d) = drafts(&file, &map);
    assert_eq!(
        d[&2].phone_number.as_ref().map(|p| p.as_str()),
        Some("+49301234567")
    );
}

// ---------------------------------------------------------------- mapping errors

fn parse_err(yaml: &str) -> String {
    format!("{:#}", Mapping::parse(yaml, "bad.yaml").unwrap_err())
}

/// No library internals in a message meant for the user.
fn plain(e: &str) {
    for internal in [
        "DuplicateKeyPolicy",
        "Options",
        "invalid u",
        "invalid i",
        "unknown field",
        "unknown variant",
        "\\'",
    ] {
        assert!(!e.contains(internal), "{internal:?} in: {e}");
    }
}

#[test]
fn bad_mappings_are_reported_in_the_mappings_words_with_line_and_column() {
    let cases: [(&str, &str, &[&str]); 7] = [
        (
            "duplicate key",
            "version: 1\nfields:\n  name: Name\n  name: Other\n  email: E\n",
            &["bad.yaml:4:3:", "duplicate key `name`", "written twice"],
        ),
        (
            "tab indentation",
            "version: 1\nfields:\n\tname: Name\n",
            &["bad.yaml:3:", "YAML syntax error", "tab", "spaces"],
        ),
        (
            "unclosed quote",
            "version: 1\nfields:\n  name: \"Name\n  email: E\n",
            &[
                "bad.yaml:3:9:",
                "YAML syntax error",
                "quote",
                "never closed",
            ],
        ),
        (
            "header_row of the wrong type",
            "version: 1\nsource:\n  header_row: two\nfields:\n  name: Name\n  email: E\n",
            &[
                "bad.yaml:3:15:",
                "`header_row:` expects a whole number",
                "found `two`",
            ],
        ),
        (
            "unknown key",
            "version: 1\nsource:\n  sheets: 2\nfields:\n  name: Name\n  email: E\n",
            &[
                "bad.yaml:3:3:",
                "`sheets` is not a key here",
                "sheet, header_row",
            ],
        ),
        (
            "unknown policy",
            "version: 1\nmatch:\n  existing: merge\nfields:\n  name: Name\n  email: E\n",
            &[
                "bad.yaml:3:",
                "`existing:` `merge` is not one of: update, skip, fail",
            ],
        ),
        (
            "a list where a map belongs",
            "version: 1\nfields:\n  - name\n",
            &[
                "bad.yaml:3:3:",
                "`fields:` expects `key: value` lines",
                "found a list",
            ],
        ),
    ];
    for (what, yaml, want) in cases {
        let e = parse_err(yaml);
        for w in want {
            assert!(e.contains(w), "{what}: {w:?} not in: {e}");
        }
        plain(&e);
    }
    let e =
        parse_err("version: 1\nfields:\n  name: { from: Name, lowercase: maybe }\n  email: E\n");
    assert!(
        e.contains("`lowercase:` expects true or false, found `maybe`"),
        "{e}"
    );
    let e = parse_err("version: 1\nfields:\n  name: { from: Name\n  email: E\n");
    assert!(
        e.contains("YAML syntax error") && e.contains("`{ … }`"),
        "{e}"
    );
    plain(&e);
}

#[test]
fn a_bad_mapping_stops_validate_with_exit_1_and_the_message() {
    let w = World::new();
    let file = w.write("a.csv", "Name,Email\nAnn,ann@example.com\n");
    let map = w.write("m.yaml", "version: 1\nfields:\n\tname: Name\n");
    let out = bin()
        .arg("validate")
        .arg(&file)
        .arg("-m")
        .arg(&map)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("m.yaml:3:") && err.contains("YAML syntax error"),
        "{err}"
    );
}
