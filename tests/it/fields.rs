//! The field-level failure policy (issue 11 items 1-3, issue 14 item 6): a bad value fails its
//! field, not the row, and becomes a warning with its original value (on the draft, in
//! `warnings.csv`, `results.csv`'s `_warnings`, `summary.json` and the printed summary); the row
//! fails only without a usable key or name, or for a `required:` value. `from:` lists fall through
//! on invalid values; over-long text is cut; formula-like text is warned about; `failures.csv` and
//! `warnings.csv` are guarded against formulas and read back without the guard.
use std::collections::BTreeMap;

use doto_bulk::mapping::{ContactDraft, Mapping};
use doto_bulk::model::{ErrorCode, Field, RowError, RowWarning};
use doto_bulk::source::Record;
use serde_json::{Value, json};

use crate::validate::{World, read_csv};

fn apply(yaml: &str, h: &[&str], row: &[&str]) -> Result<ContactDraft, Vec<RowError>> {
    let headers: Vec<String> = h.iter().map(|s| s.to_string()).collect();
    Mapping::parse(yaml, "test.yaml")
        .unwrap()
        .resolve(&headers)
        .unwrap()
        .apply(&Record {
            line: 2,
            fields: row.iter().map(|s| s.to_string()).collect(),
            numeric: Vec::new(),
        })
}

fn ok(yaml: &str, h: &[&str], row: &[&str]) -> ContactDraft {
    apply(yaml, h, row).unwrap_or_else(|e| panic!("row should map: {e:?}"))
}

fn only_warning(d: &ContactDraft) -> &RowWarning {
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    &d.warnings[0]
}

const MAPPING: &str = r#"version: 1
defaults:
  phone_region: GB
fields:
  name: Name
  email: Email
  phone_number: Phone
custom_attributes:
  seats: { from: Seats, type: integer }
  company: Company
"#;
const H: [&str; 5] = ["Name", "Email", "Phone", "Seats", "Company"];

#[test]
fn a_bad_value_fails_its_field_not_the_row() {
    let d = ok(
        MAPPING,
        &H,
        &["Ann", "ann@example.com", "12345", "3", "Acme"],
    );
    assert_eq!(d.phone_number, None);
    assert_eq!(d.email.as_ref().unwrap().as_str(), "ann@example.com");
    assert_eq!(d.custom_attributes["seats"], json!(3));
    let w = only_warning(&d);
    assert_eq!(w.code, ErrorCode::InvalidPhone);
    assert_eq!(w.field.as_deref(), Some("phone_number"));
    assert_eq!(w.column.as_deref(), Some("Phone"));
    assert_eq!(w.original, "12345");
    assert!(w.message.starts_with("column \"Phone\": \"12345\""), "{w}");
    assert!(w.message.contains("left out"), "{w}");

    let d = ok(
        MAPPING,
        &H,
        &["Ann", "ann@example.com", "", "twelve", "Acme"],
    );
    assert!(!d.custom_attributes.contains_key("seats"));
    let w = only_warning(&d);
    assert_eq!(
        (w.code, w.field.as_deref(), w.original.as_str()),
        (
            ErrorCode::InvalidValue,
            Some("custom_attributes.seats"),
            "twelve"
        )
    );
}

#[test]
fn the_row_fails_without_a_usable_key_or_name() {
    // The only key is bad: nothing to match the row by.
    let e = apply(MAPPING, &H, &["Ann", "ann@@example.com", "12345", "", ""]).unwrap_err();
    assert_eq!(e[0].code, ErrorCode::InvalidEmail, "{e:?}");
    assert!(!e.iter().any(|e| e.code == ErrorCode::MissingKey), "{e:?}");
    // The other problems of a failed row are listed after the one that failed it.
    assert!(e.iter().any(|e| e.code == ErrorCode::InvalidPhone), "{e:?}");
    // With a second key, a bad email is only a warning.
    let y = "version: 1\nfields:\n  name: Name\n  email: Email\n  identifier: ID\n";
    let d = ok(
        y,
        &["Name", "Email", "ID"],
        &["Ann", "ann@@example.com", "A1"],
    );
    assert_eq!(d.identifier.as_ref().unwrap().as_str(), "A1");
    assert_eq!(only_warning(&d).code, ErrorCode::InvalidEmail);
    // A name that cannot be used, for a contact the row may create: the row fails.
    let e = apply(MAPPING, &H, &["JosÃ©", "jose@example.com", "", "", ""]).unwrap_err();
    assert_eq!(e[0].code, ErrorCode::Mojibake, "{e:?}");
    assert_eq!(e.len(), 1, "{e:?}");
}

#[test]
fn required_fails_the_row_and_defaults_required_gives_the_old_strictness() {
    let y = MAPPING.replace(
        "phone_number: Phone",
        "phone_number: { from: Phone, required: true }",
    );
    let e = apply(&y, &H, &["Ann", "ann@example.com", "12345", "twelve", ""]).unwrap_err();
    assert_eq!(e[0].code, ErrorCode::InvalidPhone, "{e:?}");
    assert_eq!(e[1].code, ErrorCode::InvalidValue, "{e:?}");
    // A blank required value is still blank.
    ok(&y, &H, &["Ann", "ann@example.com", "", "", ""]);

    let strict = MAPPING.replace("defaults:\n", "defaults:\n  required: true\n");
    let e = apply(&strict, &H, &["Ann", "ann@example.com", "", "twelve", ""]).unwrap_err();
    assert_eq!(e[0].code, ErrorCode::InvalidValue, "{e:?}");
    // A value spec may opt out of the default.
    let lenient = strict.replace(
        "seats: { from: Seats, type: integer }",
        "seats: { from: Seats, type: integer, required: false }",
    );
    let d = ok(&lenient, &H, &["Ann", "ann@example.com", "", "twelve", ""]);
    assert_eq!(only_warning(&d).code, ErrorCode::InvalidValue);
}

#[test]
fn a_dropped_field_never_clears_the_stored_value() {
    let y = MAPPING.replace("fields:", "match:\n  blank: clear\nfields:");
    let d = ok(&y, &H, &["Ann", "ann@example.com", "12345", "twelve", ""]);
    assert_eq!(d.warnings.len(), 2, "{:?}", d.warnings);
    assert!(!d.clear.contains(&Field::PhoneNumber), "{:?}", d.clear);
    assert!(!d.custom_attributes.contains_key("seats"));
    // A blank one still clears.
    assert_eq!(d.custom_attributes["company"], Value::Null);
    let d = ok(&y, &H, &["Ann", "ann@example.com", "", "", ""]);
    assert!(d.clear.contains(&Field::PhoneNumber), "{:?}", d.clear);
}

#[test]
fn source_damage_fails_the_fields_built_from_the_column() {
    let d = ok(
        MAPPING,
        &H,
        &[
            "Ann",
            "ann@example.com",
            "",
            "",
            "Caf\u{e9} M\u{c3}\u{a9}lo",
        ],
    );
    assert!(!d.custom_attributes.contains_key("company"));
    let w = only_warning(&d);
    assert_eq!(w.code, ErrorCode::Mojibake);
    assert_eq!(w.column.as_deref(), Some("Company"));
    assert_eq!(w.original, "Caf\u{e9} M\u{c3}\u{a9}lo");
    let d = ok(
        MAPPING,
        &H,
        &["Ann", "ann@example.com", "", "4\u{200b}2", "Acme"],
    );
    assert_eq!(only_warning(&d).code, ErrorCode::InvisibleCharacters);
}

#[test]
fn from_lists_fall_through_on_invalid_values() {
    let y = "version: 1\ndefaults:\n  phone_region: GB\nfields:\n  name: Name\n  email: Email\n  phone_number: { from: [Mobile, Phone] }\n";
    let h = ["Name", "Email", "Mobile", "Phone"];
    let d = ok(y, &h, &["Ann", "ann@example.com", "n/a", "020 7946 0018"]);
    assert_eq!(d.phone_number.as_ref().unwrap().as_str(), "+442079460018");
    let w = only_warning(&d);
    assert_eq!(w.code, ErrorCode::InvalidPhone);
    assert_eq!(w.column.as_deref(), Some("Mobile"));
    assert_eq!(w.original, "n/a");
    assert!(
        w.message.contains("column \"Phone\" was used instead"),
        "{w}"
    );
    // Every candidate bad: the field is left out, each one named.
    let d = ok(y, &h, &["Ann", "ann@example.com", "n/a", "same as mobile"]);
    assert_eq!(d.phone_number, None);
    let cols: Vec<_> = d.warnings.iter().map(|w| w.column.as_deref()).collect();
    assert_eq!(cols, [Some("Mobile"), Some("Phone")]);
    // A blank first column is passed over without a word.
    let d = ok(y, &h, &["Ann", "ann@example.com", "", "020 7946 0018"]);
    assert!(d.warnings.is_empty());
}

#[test]
fn text_over_the_server_limit_is_cut_with_the_original() {
    let y = "version: 1\nfields:\n  name: Name\n  email: Email\nnotes:\n  - Note\n";
    let long = "é".repeat(300);
    let note = "n".repeat(20_001);
    let d = ok(y, &["Name", "Email", "Note"], &[&long, "a@x.com", &note]);
    assert_eq!(d.name.as_ref().unwrap().chars().count(), 255);
    assert!(long.starts_with(d.name.as_deref().unwrap()));
    assert_eq!(d.notes[0].len(), 20_000);
    let codes: Vec<_> = d.warnings.iter().map(|w| w.code).collect();
    assert_eq!(codes, [ErrorCode::Truncated, ErrorCode::Truncated]);
    assert_eq!(d.warnings[0].original, long);
    assert!(
        d.warnings[0].message.contains("300 characters long"),
        "{}",
        d.warnings[0]
    );
}

#[test]
fn formula_like_names_and_attributes_are_kept_with_a_warning() {
    let name = "=HYPERLINK(\"http://evil.example\",\"Ann\")";
    let d = ok(MAPPING, &H, &[name, "ann@example.com", "", "", "@SUM(A1)"]);
    assert_eq!(d.name.as_deref(), Some(name));
    assert_eq!(d.custom_attributes["company"], json!("@SUM(A1)"));
    let codes: Vec<_> = d.warnings.iter().map(|w| w.code).collect();
    assert_eq!(codes, [ErrorCode::FormulaLike, ErrorCode::FormulaLike]);
    // Phones, a lone dash, handles: data, not formulas.
    let d = ok(
        MAPPING,
        &H,
        &["-", "ann@example.com", "+44 20 7946 0018", "", "@acme"],
    );
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
}

// ---------------------------------------------------------------- reports (validate)

/// A CSV row as a map of header → cell.
fn by_header(h: &[String], row: &[String]) -> BTreeMap<String, String> {
    h.iter().cloned().zip(row.iter().cloned()).collect()
}

#[test]
fn validate_reports_warnings_in_every_report() {
    let w = World::new();
    let csv = "Name,Email,Phone,Seats,Company\n\
               Ann,ann@example.com,12345,3,Acme\n\
               Bob,bob@example.com,,twelve,=1+1\n\
               Cy,cy@example.com,020 7946 0018,4,Cyco\n";
    let file = w.write("in.csv", csv);
    let map = w.write("m.yaml", MAPPING);
    let v = w.validate(&file, &map, "run");
    assert_eq!(v.exit_code, 0, "every row is valid");
    assert_eq!(v.summary.count(doto_bulk::report::RowAction::Valid), 3);
    let want: BTreeMap<String, u64> = [
        ("invalid_phone", 1),
        ("invalid_value", 1),
        ("formula_like", 1),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_owned(), n))
    .collect();
    assert_eq!(v.summary.warnings, want);
    let json: Value =
        serde_json::from_slice(&std::fs::read(v.run_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["warnings"]["invalid_phone"], 1);
    let table = v.summary.table();
    assert!(table.contains("warnings (warnings.csv)"), "{table}");
    assert!(table.contains("formula_like"), "{table}");

    let (h, rows) = read_csv(&v.run_dir.join("results.csv"));
    assert_eq!(h.last().map(String::as_str), Some("_warnings"));
    let codes: Vec<&str> = rows.iter().map(|r| r[5].as_str()).collect();
    assert_eq!(codes, ["invalid_phone", "invalid_value;formula_like", ""]);

    let (h, rows) = read_csv(&v.run_dir.join("warnings.csv"));
    assert_eq!(
        h,
        [
            "Name",
            "Email",
            "Phone",
            "Seats",
            "Company",
            "_row",
            "_warning_code",
            "_warning_field",
            "_warning_message",
            "_original_value"
        ]
    );
    assert_eq!(rows.len(), 3);
    let first = by_header(&h, &rows[0]);
    assert_eq!(first["_row"], "2");
    assert_eq!(first["_warning_code"], "invalid_phone");
    assert_eq!(first["_warning_field"], "phone_number");
    assert_eq!(first["_original_value"], "12345");
    assert_eq!(first["Phone"], "12345");
    // The formula is guarded in the report, as export guards it.
    let third = by_header(&h, &rows[2]);
    assert_eq!(third["_warning_code"], "formula_like");
    assert_eq!(third["Company"], "'=1+1");
    assert_eq!(third["_original_value"], "'=1+1");
}

#[test]
fn a_fed_back_failures_csv_is_read_without_the_guard_and_keeps_the_source_row() {
    let w = World::new();
    // Line 3: a formula-like name and a bad only key.
    let csv = "Name,Email\nAnn,ann@example.com\n\"=HYPERLINK(\"\"x\"\")\",bad@@example.com\n";
    let map = w.write(
        "m.yaml",
        "version: 1\nfields:\n  name: Name\n  email: Email\n",
    );
    let v = w.validate(&w.write("in.csv", csv), &map, "run1");
    assert_eq!(v.exit_code, 3);
    let failures = v.run_dir.join("failures.csv");
    let (h, rows) = read_csv(&failures);
    assert!(!h.contains(&"_source_row".to_owned()), "{h:?}");
    let row = by_header(&h, &rows[0]);
    assert_eq!(row["Name"], "'=HYPERLINK(\"x\")");
    assert_eq!(row["_row"], "3");

    // Read back: the mapping sees the original value.
    let r = Mapping::parse("version: 1\nfields:\n  name: Name\n  email: Email\n", "m")
        .unwrap()
        .resolve(&h)
        .unwrap();
    let fixed: Vec<String> = rows[0]
        .iter()
        .enumerate()
        .map(|(i, c)| match h[i].as_str() {
            "Email" => "fixed@example.com".to_owned(),
            _ => c.clone(),
        })
        .collect();
    let d = r
        .apply(&Record {
            line: 2,
            fields: fixed,
            numeric: Vec::new(),
        })
        .unwrap();
    assert_eq!(d.name.as_deref(), Some("=HYPERLINK(\"x\")"));
    assert_eq!(d.warnings[0].code, ErrorCode::FormulaLike);

    // Fed back still failing: the guard is not doubled, the first file's line is kept.
    let v2 = w.validate(&failures, &map, "run2");
    let (h2, rows2) = read_csv(&v2.run_dir.join("failures.csv"));
    let row2 = by_header(&h2, &rows2[0]);
    assert_eq!(row2["Name"], "'=HYPERLINK(\"x\")");
    assert_eq!(row2["_row"], "2", "the line in failures.csv");
    assert_eq!(row2["_source_row"], "3", "the line in the first file");
    assert_eq!(h2.iter().filter(|c| *c == "_row").count(), 1, "{h2:?}");
    // And once more: `_source_row` still names the first file's line.
    let v3 = w.validate(&v2.run_dir.join("failures.csv"), &map, "run3");
    let (h3, rows3) = read_csv(&v3.run_dir.join("failures.csv"));
    assert_eq!(by_header(&h3, &rows3[0])["_source_row"], "3");
}

#[test]
fn xlsx_rows_with_a_bad_field_or_an_error_cell_are_valid_with_warnings() {
    let w = World::new();
    let path = w.path("in.xlsx");
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in H.iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    ws.write_string(1, 0, "Ann").unwrap();
    ws.write_string(1, 1, "ann@example.com").unwrap();
    ws.write_number(1, 2, 12345).unwrap();
    ws.write_number(1, 3, 3).unwrap();
    ws.write_string(2, 0, "Bob").unwrap();
    ws.write_string(2, 1, "bob@example.com").unwrap();
    ws.write_string(2, 3, "twelve").unwrap();
    // An error cell fails the field read from it; one in the only key fails the row.
    ws.write_string(3, 0, "Cy").unwrap();
    ws.write_string(3, 1, "cy@example.com").unwrap();
    let na = rust_xlsxwriter::Formula::new("=NA()").set_result("#N/A");
    ws.write_formula(3, 2, na.clone()).unwrap();
    ws.write_string(4, 0, "Di").unwrap();
    ws.write_formula(4, 1, na).unwrap();
    wb.save(&path).unwrap();
    let v = w.validate(&path, &w.write("m.yaml", MAPPING), "run");
    assert_eq!(v.exit_code, 3);
    assert_eq!(v.summary.count(doto_bulk::report::RowAction::Valid), 3);
    assert_eq!(v.summary.failures_by_code["cell_error"], 1);
    let (h, rows) = read_csv(&v.run_dir.join("warnings.csv"));
    let got: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            let r = by_header(&h, r);
            (r["_warning_code"].clone(), r["_original_value"].clone())
        })
        .collect();
    assert_eq!(
        got,
        [
            ("invalid_phone".to_owned(), "12345".to_owned()),
            ("invalid_value".to_owned(), "twelve".to_owned()),
            ("cell_error".to_owned(), "#N/A".to_owned())
        ]
    );
}

// ---------------------------------------------------------------- done when: the sandbox

/// Every row has exactly one bad non-key field: every contact arrives, none has the bad value,
/// and warnings.csv lists each one with its original value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_contact_with_one_bad_non_key_field_arrives_without_it() {
    let w = crate::import::World::plain().await;
    let mapping = r#"version: 1
defaults:
  phone_region: GB
match:
  on: [email, identifier]
fields:
  name: Name
  email: Email
  identifier: ID
  phone_number: { from: [Mobile, Phone] }
  blocked: Blocked
custom_attributes:
  seats: { from: Seats, type: integer }
  signed_up: { from: Signed, type: date }
additional_attributes:
  city: City
"#;
    let csv = "Name,Email,ID,Mobile,Phone,Blocked,Seats,Signed,City\n\
        Ann,ann@example.com,A1,12345,,no,1,2024-01-02,Lyon\n\
        Bob,bob@example.com,A2,,,maybe,2,2024-01-02,Paris\n\
        Cy,cy@example.com,A3,,,no,three,2024-01-02,Rome\n\
        Di,di@example.com,A4,,,no,4,2024-13-45,Oslo\n\
        Ed,ed@example.com,A5,,,no,5,2024-01-02,Caf\u{c3}\u{a9} Town\n\
        Flo,flo@@example.com,A6,,,no,6,2024-01-02,Nice\n\
        Gus,gus@example.com,A7,n/a,same as mobile,no,7,2024-01-02,Bern\n";
    let run = w.import(csv, mapping, "run", |_| {}).await;
    assert_eq!(run.exit_code, 0, "{:?}", run.summary);
    assert_eq!(crate::import::outcome(&run, "created"), 7);
    let stored = w.sb.contacts();
    assert_eq!(stored.len(), 7);
    let by_id: BTreeMap<String, &Value> = stored
        .iter()
        .map(|c| (c["identifier"].as_str().unwrap().to_owned(), c))
        .collect();
    let no_phone = |id: &str| by_id[id]["phone_number"].is_null();
    assert!(no_phone("A1") && no_phone("A7"));
    assert_eq!(by_id["A2"]["blocked"], json!(false), "left at the default");
    assert!(by_id["A3"]["custom_attributes"].get("seats").is_none());
    assert_eq!(by_id["A3"]["custom_attributes"]["signed_up"], "2024-01-02");
    assert!(by_id["A4"]["custom_attributes"].get("signed_up").is_none());
    assert!(by_id["A5"]["additional_attributes"].get("city").is_none());
    assert!(by_id["A6"]["email"].is_null());
    assert_eq!(by_id["A6"]["name"], "Flo");

    let (h, rows) = read_csv(&run.run_dir.join("warnings.csv"));
    let got: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            let r = by_header(&h, r);
            (
                r["_row"].clone(),
                r["_warning_code"].clone(),
                r["_original_value"].clone(),
            )
        })
        .collect();
    let s = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(
        got,
        [
            s("2", "invalid_phone", "12345"),
            s("3", "invalid_value", "maybe"),
            s("4", "invalid_value", "three"),
            s("5", "invalid_value", "2024-13-45"),
            s("6", "mojibake", "Caf\u{c3}\u{a9} Town"),
            s("7", "invalid_email", "flo@@example.com"),
            s("8", "invalid_phone", "n/a"),
            s("8", "invalid_phone", "same as mobile"),
        ]
    );
    assert_eq!(run.summary.warnings["invalid_value"], 3);
    let (_, results) = read_csv(&run.run_dir.join("results.csv"));
    assert!(results.iter().all(|r| !r[5].is_empty()), "{results:?}");
}
