//! CSV and text files written by tools the team had not seen (the `reader` slice): each case is
//! a file written here byte for byte, checked with `validate` and imported into the sandbox, so
//! that what a user would see (counts, failures.csv, warnings.csv) and what the server stores are
//! both asserted. Covered: values over the field limit in columns the mapping does or does not
//! read; Excel's `sep=` line; UTF-16 with and without a BOM; a preamble above the header
//! (LinkedIn's `Connections.csv`, report titles); CR-only and mixed line ends; trailing
//! delimiters, repeated, blank and damaged header names; spreadsheet damage in phones and emails.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use doto_bulk::cmd::mapping::init_with_region;
use doto_bulk::cmd::validate::{Args, run_validate};
use serde_json::Value;

use crate::import::World;

/// One reported line of failures.csv or warnings.csv: `_row`, code, message, and for a warning
/// the original value.
#[derive(Debug, Clone)]
struct Line {
    row: u64,
    code: String,
    message: String,
    original: String,
}

/// What `validate` said of a file.
#[derive(Debug)]
struct Checked {
    rows: u64,
    valid: u64,
    invalid: u64,
    skipped: u64,
    failures: Vec<Line>,
    warnings: Vec<Line>,
    header_warnings: Vec<String>,
}

fn report(path: &Path, code: &str, message: &str) -> Vec<Line> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let h = r.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|x| x == name);
    let (row, c, m) = (
        col("_row").unwrap(),
        col(code).unwrap(),
        col(message).unwrap(),
    );
    let orig = col("_original_value");
    r.records()
        .map(|x| {
            let x = x.unwrap();
            Line {
                row: x[row].parse().unwrap(),
                code: x[c].to_owned(),
                message: x[m].to_owned(),
                original: orig.map_or(String::new(), |o| x[o].to_owned()),
            }
        })
        .collect()
}

/// Write `bytes` as `name` and `mapping` next to it; validate with `limit` as the field limit.
fn validate(w: &World, name: &str, bytes: &[u8], mapping: &str, limit: Option<u64>) -> Checked {
    let file = write(w, name, bytes);
    let map = write(w, &format!("{name}.yaml"), mapping.as_bytes());
    let out = w.path(&format!("{name}.validate"));
    let mut args = Args::new(&file, &map, Some(&out));
    args.max_field_bytes = limit;
    let v = run_validate(&args, true, &AtomicBool::new(false))
        .unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let n = |k: &str| v.summary.outcomes.get(k).copied().unwrap_or(0);
    Checked {
        rows: v.summary.rows_read,
        valid: n("valid"),
        invalid: n("invalid"),
        skipped: n("skipped"),
        failures: report(&out.join("failures.csv"), "_error_code", "_error_message"),
        warnings: report(
            &out.join("warnings.csv"),
            "_warning_code",
            "_warning_message",
        ),
        header_warnings: v.summary.header_warnings.clone(),
    }
}

fn write(w: &World, name: &str, bytes: &[u8]) -> PathBuf {
    let p = w.path(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Import the file written by [`validate`] into the sandbox: (created, invalid) and the stored
/// contacts by email.
async fn import(
    w: &World,
    name: &str,
    limit: Option<u64>,
) -> ((u64, u64), BTreeMap<String, Value>) {
    let (file, map) = (w.path(name), w.path(&format!("{name}.yaml")));
    let out = format!("{name}.import");
    let run = w
        .import_file(&file, &map, &out, |a| a.max_field_bytes = limit)
        .await;
    assert_eq!(run.fatal, None, "{name}");
    let n = |k: &str| run.summary.outcomes.get(k).copied().unwrap_or(0);
    ((n("created"), n("invalid")), w.by_email())
}

const CONTACTS: &str = r#"version: 1
match:
  on: [email]
defaults:
  phone_region: GB
fields:
  name: Name
  email: Email
  phone_number: { from: Phone, optional: true }
"#;

// ---------------------------------------------------------------- 1. values over the limit

const NOTES: &str = r#"version: 1
match:
  on: [email]
fields:
  name: Name
  email: Email
custom_attributes:
  notes: Notes
additional_attributes:
  description: Bio
"#;

/// A value over the limit in a column the mapping does not read costs its row nothing (it is
/// cut, on a character boundary); every oversized column the mapping reads is named, with its
/// size, in the row's failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_oversized_values_the_mapping_reads_fail_their_row_and_each_is_named() {
    let w = World::plain().await;
    let big = "x".repeat(3000);
    let accents = "é".repeat(1500); // 3,000 bytes: a cut at byte 64 would split a character
    let text = format!(
        "Name,Email,Notes,Bio,Junk\n\
         Ann,ann@x.com,short,bio,{big}\n\
         Bob,bob@x.com,{big},\"{big}{big}\",junk\n\
         Cat,cat@x.com,n,b,{accents}\n\
         Dan,dan@x.com,n,\"{big}\",\"{accents}\"\n"
    );
    let c = validate(&w, "big.csv", text.as_bytes(), NOTES, Some(1000));
    assert_eq!((c.rows, c.valid, c.invalid), (4, 2, 2), "{c:#?}");
    let f: Vec<(u64, &str)> = c
        .failures
        .iter()
        .map(|l| (l.row, l.code.as_str()))
        .collect();
    assert_eq!(f, [(3, "field_too_large"), (5, "field_too_large")]);
    let bob = &c.failures[0].message;
    assert!(
        bob.contains("column \"Notes\": the value is 3000 bytes")
            && bob.contains("column \"Bio\" (6000 bytes)")
            && bob.contains("limit of 1000"),
        "{bob}"
    );
    // Dan: the unread Junk column is not named; Bio is.
    let dan = &c.failures[1].message;
    assert!(dan.contains("\"Bio\"") && !dan.contains("Junk"), "{dan}");
    assert!(c.warnings.is_empty(), "{:#?}", c.warnings);

    let ((created, invalid), stored) = import(&w, "big.csv", Some(1000)).await;
    assert_eq!((created, invalid), (2, 2));
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        ["ann@x.com", "cat@x.com"]
    );
    assert_eq!(stored["ann@x.com"]["custom_attributes"]["notes"], "short");
    // Without the limit every row is whole.
    let c = validate(&w, "big2.csv", text.as_bytes(), NOTES, None);
    assert_eq!((c.valid, c.invalid), (4, 0));
}

// ---------------------------------------------------------------- 2, 3. sep= and encodings

fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn utf16be(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

fn with(prefix: &[u8], body: Vec<u8>) -> Vec<u8> {
    [prefix.to_vec(), body].concat()
}

/// The same two contacts (accents, a national number) written as each tool writes them.
fn encoded_cases() -> Vec<(&'static str, Vec<u8>)> {
    let rows = |d: &str| {
        format!(
            "Name{d}Email{d}Phone\r\nJosé Núñez{d}jose@x.com{d}07911 123456\r\nZoë{d}zoe@x.com{d}+44 7911 123457\r\n"
        )
    };
    let (comma, semi, tab) = (rows(","), rows(";"), rows("\t"));
    vec![
        ("excel-sep.csv", format!("sep=;\r\n{semi}").into_bytes()),
        (
            "bom-sep.csv",
            with(b"\xEF\xBB\xBF", format!("sep=,\r\n{comma}").into_bytes()),
        ),
        (
            "sep-pipe.csv",
            format!("\"sep=|\"\n{}", rows("|")).into_bytes(),
        ),
        ("unicode-text.txt", with(b"\xFF\xFE", utf16le(&tab))),
        (
            "unicode-sep.txt",
            with(b"\xFF\xFE", utf16le(&format!("sep=\t\r\n{tab}"))),
        ),
        ("outlook-be.csv", with(b"\xFE\xFF", utf16be(&comma))),
        ("nobom-le.csv", utf16le(&comma)),
        ("nobom-be.csv", utf16be(&semi)),
    ]
}

/// Excel's `sep=` line names the delimiter and is not a row; UTF-16 in either byte order, with
/// or without a BOM, reads as text: every row arrives with its accents, nothing is skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sep_lines_and_utf16_files_read_every_row_with_its_accents() {
    // Every column optional: no header search, so the `sep=` line alone says where the header is.
    let optional = CONTACTS.replace("name: Name", "name: { from: Name, optional: true }");
    for (name, bytes) in encoded_cases() {
        for (k, mapping) in [CONTACTS, optional.as_str()].into_iter().enumerate() {
            let w = World::plain().await;
            let c = validate(&w, name, &bytes, mapping, None);
            let ctx = format!("{name} (mapping {k}): {c:#?}");
            assert_eq!(
                (c.rows, c.valid, c.invalid, c.skipped),
                (2, 2, 0, 0),
                "{ctx}"
            );
            assert!(c.header_warnings.is_empty(), "{ctx}");
            assert!(c.failures.is_empty(), "{ctx}");
            let ((created, _), stored) = import(&w, name, None).await;
            assert_eq!(created, 2, "{ctx}");
            assert_eq!(stored["jose@x.com"]["name"], "José Núñez", "{ctx}");
            assert_eq!(
                stored["jose@x.com"]["phone_number"], "+447911123456",
                "{ctx}"
            );
            assert_eq!(stored["zoe@x.com"]["name"], "Zoë", "{ctx}");
        }
    }
}

/// `mapping init` reads a `sep=` file and a UTF-16 file as the import does.
#[test]
fn mapping_init_reads_sep_lines_and_utf16() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in encoded_cases() {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let d = init_with_region(&p, None, None).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert!(d.yaml.contains("email: \"Email\""), "{name}\n{}", d.yaml);
        assert!(!d.yaml.contains("sep="), "{name}\n{}", d.yaml);
    }
}

// ---------------------------------------------------------------- 4. preambles

/// LinkedIn's `Connections.csv`, as exported (the notes, an empty line, then the header).
const LINKEDIN: &str = "Notes:\n\"When exporting your connection data, you may notice that some of the email addresses are missing. You will only see email addresses for connections who have allowed their connections to see or download their email address using this setting https://www.linkedin.com/psettings/privacy/email. You can learn more here https://www.linkedin.com/help/linkedin/answer/261\"\n\nFirst Name,Last Name,URL,Email Address,Company,Position,Connected On\nAnn,Lee,https://www.linkedin.com/in/ann-lee,ann@x.com,Acme,CEO,03 Dec 2026\nBob,Ray,https://www.linkedin.com/in/bob-ray,,Acme,CTO,01 Dec 2026\nCy,Oh,https://www.linkedin.com/in/cy-oh,cy@x.com,\"Oh, Ltd\",Owner,28 Nov 2026\n";

/// The header below LinkedIn's notes is found with a mapping that names its columns, with one
/// whose columns are all optional (no header search), and by `mapping init`; the notes are not
/// rows. A report title above a `;` header is skipped the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_below_notes_or_a_title_is_found_with_or_without_a_mapping() {
    let named = "version: 1\nmatch:\n  on: [email]\nfields:\n  name: { template: \"{First Name} {Last Name}\" }\n  email: Email Address\n";
    let optional = "version: 1\nmatch:\n  on: [email]\nfields:\n  name: { template: \"{First Name} {Last Name}\", optional: true }\n  email: { from: Email Address, optional: true }\n";
    let w = World::plain().await;
    let drafted = w.path("drafted.yaml");
    let file = write(&w, "li.csv", LINKEDIN.as_bytes());
    let draft = init_with_region(&file, Some(&drafted), None).unwrap();
    assert!(draft.yaml.contains("\"Email Address\""), "{}", draft.yaml);
    let draft = std::fs::read_to_string(&drafted).unwrap();
    // The draft matches on LinkedIn's profile URL too, so Bob (no email) has a key there.
    let cases = [(named, 1), (optional, 1), (draft.as_str(), 0)];
    for (k, (mapping, bad)) in cases.into_iter().enumerate() {
        let w = World::plain().await;
        let c = validate(&w, "Connections.csv", LINKEDIN.as_bytes(), mapping, None);
        let ctx = format!("mapping {k}: {c:#?}");
        assert_eq!(
            (c.rows, c.valid, c.invalid, c.skipped),
            (3, 3 - bad, bad, 0),
            "{ctx}"
        );
        let failed: Vec<(u64, &str)> = (c.failures.iter())
            .map(|f| (f.row, f.code.as_str()))
            .collect();
        assert_eq!(failed, [(6, "missing_key")][..bad as usize], "{ctx}");
        assert!(
            c.header_warnings
                .iter()
                .any(|h| h.contains("header is on line 4")),
            "{ctx}"
        );
        let ((created, invalid), stored) = import(&w, "Connections.csv", None).await;
        assert_eq!((created, invalid), (3 - bad, bad), "{ctx}");
        assert_eq!(stored["ann@x.com"]["name"], "Ann Lee", "{ctx}");
        assert_eq!(stored["cy@x.com"]["name"], "Cy Oh", "{ctx}");
    }
    // A report title (two cells once split on the comma) above a `;`-separated header.
    let report = "Contacts report, March 2026\n\nName;Email;Phone\nAnn;ann@x.com;07911 123456\nBob;bob@x.com;\n";
    let opt = CONTACTS
        .replace("name: Name", "name: { from: Name, optional: true }")
        .replace("email: Email", "email: { from: Email, optional: true }");
    let c = validate(&w, "report.csv", report.as_bytes(), &opt, None);
    assert_eq!(
        (c.rows, c.valid, c.invalid, c.skipped),
        (2, 2, 0, 0),
        "{c:#?}"
    );
}

// ---------------------------------------------------------------- 5. line ends and headers

/// Old-Mac CR-only line ends (failures name the right line), mixed CRLF/LF with a quoted CRLF
/// inside a value, a delimiter ending every line, repeated and blank header names, and header
/// names with a no-break space, a zero-width space or a BOM in them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_ends_trailing_delimiters_and_damaged_header_names_cost_no_row() {
    let notes = format!("{CONTACTS}custom_attributes:\n  note: {{ from: Note, optional: true }}\n");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "mac.csv",
            "Name,Email,Phone\rAnn,ann@x.com,07911 123456\rBob,not-an-email,\rCy,cy@x.com,\r".into(),
            CONTACTS,
        ),
        (
            "mixed.csv",
            "Name,Email,Note\r\nAnn,ann@x.com,\"line one\r\nline two\"\nBob,not-an-email,x\r\nCy,cy@x.com,\n".into(),
            &notes,
        ),
        (
            "trailing.csv",
            "Name,Email,Phone,\nAnn,ann@x.com,07911 123456,\nBob,not-an-email,,\nCy,cy@x.com,,\n".into(),
            CONTACTS,
        ),
        (
            "dup.csv",
            "Name,Email,Email,,Phone\nAnn,ann@x.com,ann@y.com,z,07911 123456\nBob,not-an-email,b@y.com,,\nCy,cy@x.com,,,\n".into(),
            CONTACTS,
        ),
        (
            "names.csv",
            "\u{FEFF}Name\u{A0},\u{200B}Email,Pho\u{AD}ne\u{FEFF}\nAnn,ann@x.com,07911 123456\nBob,not-an-email,\nCy,cy@x.com,\n".into(),
            CONTACTS,
        ),
    ];
    for (name, text, mapping) in cases {
        let w = World::plain().await;
        let c = validate(&w, name, text.as_bytes(), mapping, None);
        let ctx = format!("{name}: {c:#?}");
        assert_eq!((c.rows, c.valid, c.invalid), (3, 2, 1), "{ctx}");
        let bob = &c.failures[0];
        let bob_line = if name == "mixed.csv" { 4 } else { 3 };
        assert_eq!(
            (bob.row, bob.code.as_str()),
            (bob_line, "invalid_email"),
            "{ctx}"
        );
        let ((created, invalid), stored) = import(&w, name, None).await;
        assert_eq!((created, invalid), (2, 1), "{ctx}");
        assert_eq!(stored["ann@x.com"]["name"], "Ann", "{ctx}");
        if name == "mixed.csv" {
            let note = &stored["ann@x.com"]["custom_attributes"]["note"];
            assert_eq!(note, "line one\r\nline two", "{ctx}");
        } else {
            assert_eq!(
                stored["ann@x.com"]["phone_number"], "+447911123456",
                "{ctx}"
            );
        }
        if name == "names.csv" {
            let fixed = c
                .header_warnings
                .iter()
                .filter(|h| h.contains("invisible characters"));
            assert_eq!(fixed.count(), 2, "{ctx}");
        }
        if name == "dup.csv" {
            assert!(
                c.header_warnings.iter().any(|h| h.contains("\"Email#2\"")),
                "{ctx}"
            );
        }
    }
}

// ---------------------------------------------------------------- 6. spreadsheet damage

/// Phones, emails and ids as spreadsheets and mail clients leave them: each one with exactly one
/// reading is repaired and reported with its original value; a phone in scientific notation
/// is never imported, and the message says what was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spreadsheet_damage_in_phones_and_emails_is_repaired_or_refused_with_a_reason() {
    let text = "Name,Email,Phone,ID\n\
        Sci,sci@x.com,4.47911E+11,\"=\"\"00123\"\"\"\n\
        Wrap,wrap@x.com,\"=\"\"00447911123456\"\"\",\n\
        Apos,apos@x.com,'+447911123457,\n\
        Ext,ext@x.com,+44 7911 123458 ext. 123,\n\
        Mailto,mailto:Mail@X.com,,\n\
        Angle,Ann Lee <angle@x.com>,,\n\
        Dot,dot@x.com.,,\n\
        Wide,wide＠x.com,,\n\
        Two,a@x.com;b@x.com,,\n";
    let w = World::plain().await;
    let mapping = format!("{CONTACTS}  identifier: {{ from: ID, optional: true }}\n");
    let c = validate(&w, "damage.csv", text.as_bytes(), &mapping, None);
    assert_eq!((c.rows, c.valid, c.invalid), (9, 8, 1), "{c:#?}");
    assert_eq!(
        (c.failures[0].row, c.failures[0].code.as_str()),
        (10, "invalid_email")
    );
    let warned: Vec<(u64, &str, &str)> = c
        .warnings
        .iter()
        .map(|l| (l.row, l.code.as_str(), l.original.as_str()))
        .collect();
    assert_eq!(
        warned,
        [
            (2, "identifier_cleaned", "'=\"00123\""),
            (2, "phone_scientific_notation", "4.47911E+11"),
            (3, "phone_cleaned", "'=\"00447911123456\""),
            (4, "phone_cleaned", "'+447911123457"),
            (5, "phone_extension", "'+44 7911 123458 ext. 123"),
            (6, "email_repaired", "mailto:Mail@X.com"),
            (7, "email_repaired", "Ann Lee <angle@x.com>"),
            (8, "email_repaired", "dot@x.com."),
            (9, "email_repaired", "wide＠x.com"),
        ],
        "{:#?}",
        c.warnings
    );
    let sci = &c.warnings[1].message;
    assert!(sci.contains("keeps 6 of its 12 digits"), "{sci}");
    assert!(
        c.warnings[6].message.contains("display name"),
        "{:?}",
        c.warnings[6]
    );

    let ((created, invalid), stored) = import(&w, "damage.csv", None).await;
    assert_eq!((created, invalid), (8, 1));
    assert!(
        stored["sci@x.com"]["phone_number"].is_null(),
        "never a wrong number"
    );
    assert_eq!(stored["sci@x.com"]["identifier"], "00123");
    assert_eq!(stored["wrap@x.com"]["phone_number"], "+447911123456");
    assert_eq!(stored["apos@x.com"]["phone_number"], "+447911123457");
    assert_eq!(stored["ext@x.com"]["phone_number"], "+447911123458");
    for email in ["mail@x.com", "angle@x.com", "dot@x.com", "wide@x.com"] {
        assert!(stored.contains_key(email), "{email}: {stored:#?}");
    }
}
