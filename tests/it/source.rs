//! Sources: every quirk of real CSV and XLSX exports, each with a fixture written in the test.
//! The common check: every physical data row after the header comes out as exactly one record or
//! row issue, at its own line.
use std::path::{Path, PathBuf};

use doto_bulk::model::{ErrorCode, Outcome};
use doto_bulk::source::{CsvSource, ReadError, Record, RowIssue, Source, SourceOptions, open};
use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};
use tempfile::TempDir;

type Item = Result<Record, RowIssue>;

fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn read_with(path: &Path, opts: &SourceOptions) -> (Box<dyn Source>, Vec<Item>) {
    let mut src = open(path, opts).unwrap_or_else(|e| panic!("open {}: {e:#}", path.display()));
    let items: Vec<Item> = src.by_ref().collect();
    if let Some(e) = src.take_error() {
        panic!("read {}: {e:#}", path.display());
    }
    (src, items)
}

fn read(path: &Path) -> (Box<dyn Source>, Vec<Item>) {
    read_with(path, &SourceOptions::default())
}

fn records(items: &[Item]) -> Vec<&Record> {
    items.iter().filter_map(|i| i.as_ref().ok()).collect()
}

fn issues(items: &[Item]) -> Vec<&RowIssue> {
    items.iter().filter_map(|i| i.as_ref().err()).collect()
}

fn line(i: &Item) -> u64 {
    match i {
        Ok(r) => r.line,
        Err(e) => e.line,
    }
}

fn fields(r: &Record) -> Vec<&str> {
    r.fields.iter().map(String::as_str).collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Every line from `first` to `last` appears exactly once, in order.
fn assert_accounts_for(items: &[Item], first: u64, last: u64) {
    let lines: Vec<u64> = items.iter().map(line).collect();
    let want: Vec<u64> = (first..=last).collect();
    assert_eq!(lines, want, "every data row is exactly one item, in order");
}

// ---------------------------------------------------------------- encodings

#[test]
fn csv_utf8_bom_is_not_part_of_the_first_header() {
    let dir = TempDir::new().unwrap();
    let p = write(
        &dir,
        "bom.csv",
        "\u{FEFF}Email,Name\na@x.com,José\n".as_bytes(),
    );
    let (src, items) = read(&p);
    assert_eq!(src.headers(), strings(&["Email", "Name"]));
    assert!(src.warnings().is_empty(), "a proper BOM is not a problem");
    assert_eq!(fields(records(&items)[0]), ["a@x.com", "José"]);
    assert!(src.describe().contains("BOM"), "{}", src.describe());
}

#[test]
fn csv_utf16le_with_bom_is_decoded() {
    let dir = TempDir::new().unwrap();
    let text = "Name;Email\r\nJosé Müller;j@x.com\r\nZoë;z@x.com\r\n";
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let p = write(&dir, "u16.csv", &bytes);
    let (src, items) = read(&p);
    assert_eq!(src.headers(), strings(&["Name", "Email"]));
    let recs = records(&items);
    assert_eq!(fields(recs[0]), ["José Müller", "j@x.com"]);
    assert_eq!(fields(recs[1]), ["Zoë", "z@x.com"]);
    assert_eq!((recs[0].line, recs[1].line), (2, 3));
}

#[test]
fn csv_utf16be_with_bom_is_decoded() {
    let dir = TempDir::new().unwrap();
    let mut bytes = vec![0xFE, 0xFF];
    bytes.extend("A,B\n€1,ü\n".encode_utf16().flat_map(u16::to_be_bytes));
    let p = write(&dir, "u16be.csv", &bytes);
    let (_, items) = read(&p);
    assert_eq!(fields(records(&items)[0]), ["€1", "ü"]);
}

#[test]
fn csv_windows_1252_is_detected_with_its_c1_characters() {
    let dir = TempDir::new().unwrap();
    // é = E9, € = 80, ’ = 92, “ ” = 93 94 (ISO-8859-1 would make the last four control codes).
    let p = write(
        &dir,
        "cp1252.csv",
        b"Name,Note\nJos\xe9,\x80 5 \x93VIP\x94\nO\x92Brien,ok\n",
    );
    let (src, items) = read(&p);
    let recs = records(&items);
    assert_eq!(fields(recs[0]), ["José", "€ 5 “VIP”"]);
    assert_eq!(fields(recs[1]), ["O’Brien", "ok"]);
    assert!(
        src.describe().contains("windows-1252"),
        "{}",
        src.describe()
    );
}

#[test]
fn csv_encoding_set_in_options_is_used() {
    let dir = TempDir::new().unwrap();
    // Valid UTF-8 bytes that are really Windows-1252 text ("Ã©" stays "Ã©" only in 1252).
    let p = write(&dir, "set.csv", b"Name,X\n\xc3\xa9,1\n");
    let opts = SourceOptions {
        encoding: Some("windows-1252".into()),
        ..Default::default()
    };
    let (_, items) = read_with(&p, &opts);
    assert_eq!(fields(records(&items)[0]), ["Ã©", "1"]);
}

#[test]
fn csv_late_invalid_byte_in_a_utf8_file_is_one_encoding_issue() {
    let dir = TempDir::new().unwrap();
    // More than the 1 MiB detection prefix of valid UTF-8, then one Windows-1252 byte.
    let mut bytes = b"Name,Email\n".to_vec();
    let rows = 20_000u64;
    for i in 0..rows {
        bytes.extend(format!("Zoë Person {i:06} with a long name,p{i}@example.com\n").as_bytes());
    }
    assert!(bytes.len() > 1 << 20);
    bytes.extend(b"Ren\xe9,rene@example.com\nLast,last@example.com\n");
    let p = write(&dir, "late.csv", &bytes);
    let (_, items) = read(&p);
    assert_accounts_for(&items, 2, rows + 3);
    let bad = issues(&items);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].line, rows + 2);
    assert_eq!(bad[0].error.code, ErrorCode::InvalidEncoding);
    // The byte offset of the bad byte: the file up to the row, then `Ren`.
    let offset = bytes.len() - b"\xe9,rene@example.com\nLast,last@example.com\n".len();
    let at = format!("line {}, byte offset {offset}:", rows + 2);
    assert!(
        bad[0].error.message.starts_with(&at),
        "{}",
        bad[0].error.message
    );
    assert_eq!(bad[0].outcome, Outcome::Invalid);
    assert_eq!(bad[0].error.field.as_deref(), Some("Name"));
    assert!(
        bad[0].error.message.contains("windows-1252"),
        "{}",
        bad[0].error.message
    );
    assert_eq!(bad[0].raw[0], "Ren\u{FFFD}");
    assert_eq!(
        fields(records(&items).last().unwrap()),
        ["Last", "last@example.com"]
    );
}

#[test]
fn csv_utf8_with_one_early_bad_byte_is_still_read_as_utf8() {
    let dir = TempDir::new().unwrap();
    let mut bytes = b"Name,City\nRen\xe9,Paris\n".to_vec();
    for _ in 0..30 {
        bytes.extend("Zoë,Zürich\n".as_bytes());
    }
    let p = write(&dir, "damaged.csv", &bytes);
    let (src, items) = read(&p);
    assert!(src.describe().contains("UTF-8"), "{}", src.describe());
    let bad = issues(&items);
    assert_eq!((bad.len(), bad[0].line), (1, 2));
    assert_eq!(bad[0].error.code, ErrorCode::InvalidEncoding);
    assert!(
        records(&items)
            .iter()
            .all(|r| fields(r) == ["Zoë", "Zürich"])
    );
}

#[test]
fn csv_a_character_split_by_a_delimiter_is_not_rejoined() {
    let dir = TempDir::new().unwrap();
    // C3 | A9 is "é" only if the delimiter between them is ignored.
    let p = write(&dir, "split.csv", b"A,B\n\xc3,\xa9\nok,fine\n");
    let opts = SourceOptions {
        encoding: Some("utf-8".into()),
        ..Default::default()
    };
    let (_, items) = read_with(&p, &opts);
    let bad = issues(&items);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].error.code, ErrorCode::InvalidEncoding);
    assert_eq!(bad[0].raw, strings(&["\u{FFFD}", "\u{FFFD}"]));
    assert!(
        bad[0].error.message.contains("(and 1 more column)"),
        "{}",
        bad[0].error.message
    );
    assert_eq!(fields(records(&items)[0]), ["ok", "fine"]);
}

// ---------------------------------------------------------------- delimiters

#[test]
fn csv_each_delimiter_is_detected() {
    let dir = TempDir::new().unwrap();
    for (name, d) in [("comma", ','), ("semi", ';'), ("tab", '\t'), ("pipe", '|')] {
        let text = format!(
            "Name{d}Email{d}Phone\nAnn{d}a@x.com{d}+1 415 555 0100\n\"B{d} quoted\"{d}b@x.com{d}\n"
        );
        let p = write(&dir, &format!("{name}.csv"), text.as_bytes());
        let (src, items) = read(&p);
        assert_eq!(
            src.headers(),
            strings(&["Name", "Email", "Phone"]),
            "{name}"
        );
        let recs = records(&items);
        assert_eq!(
            fields(recs[0]),
            ["Ann", "a@x.com", "+1 415 555 0100"],
            "{name}"
        );
        assert_eq!(
            fields(recs[1]),
            [format!("B{d} quoted").as_str(), "b@x.com", ""],
            "{name}"
        );
    }
}

#[test]
fn csv_semicolon_file_full_of_commas_is_read_by_structure() {
    let dir = TempDir::new().unwrap();
    let p = write(
        &dir,
        "semi.csv",
        b"Name;Address;Amount\n\
          Doe, John;1 Main St, Springfield, IL;1,50\n\
          \"Roe; Jane\";2 High St, Leeds;2,75\n\
          Poe, Ed;3 Rue, Paris, FR, EU;3,00\n",
    );
    let (src, items) = read(&p);
    assert_eq!(src.headers(), strings(&["Name", "Address", "Amount"]));
    let recs = records(&items);
    assert_eq!(recs.len(), 3, "{items:?}");
    assert_eq!(
        fields(recs[0]),
        ["Doe, John", "1 Main St, Springfield, IL", "1,50"]
    );
    assert_eq!(fields(recs[1]), ["Roe; Jane", "2 High St, Leeds", "2,75"]);
}

#[test]
fn csv_delimiter_set_in_options_wins() {
    let dir = TempDir::new().unwrap();
    let p = write(&dir, "set.csv", b"a;b|c\n1;2|3\n");
    let opts = SourceOptions {
        delimiter: Some(b'|'),
        ..Default::default()
    };
    let (src, items) = read_with(&p, &opts);
    assert_eq!(src.headers(), strings(&["a;b", "c"]));
    assert_eq!(fields(records(&items)[0]), ["1;2", "3"]);
}

// ---------------------------------------------------------------- structure

#[test]
fn csv_quoted_newlines_keep_later_line_numbers_right() {
    let dir = TempDir::new().unwrap();
    let p = write(
        &dir,
        "nl.csv",
        b"Name,Note\r\nAnn,\"line one\r\nline two\r\nline three\"\r\nBob,plain\r\n\r\nCid,\"x\ny\"\nDee,z\n",
    );
    let (_, items) = read(&p);
    let got: Vec<(u64, Result<Vec<String>, ErrorCode>)> = items
        .iter()
        .map(|i| match i {
            Ok(r) => (r.line, Ok(r.fields.clone())),
            Err(e) => (e.line, Err(e.error.code)),
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                2,
                Ok(strings(&["Ann", "line one\r\nline two\r\nline three"]))
            ),
            (5, Ok(strings(&["Bob", "plain"]))),
            (6, Err(ErrorCode::BlankRow)),
            (7, Ok(strings(&["Cid", "x\ny"]))),
            (9, Ok(strings(&["Dee", "z"]))),
        ]
    );
}

#[test]
fn csv_old_mac_line_endings_still_number_the_lines() {
    let dir = TempDir::new().unwrap();
    let p = write(&dir, "mac.csv", b"Name,Note\rAnn,\"a\rb\"\r\rBob,x\r");
    let (_, items) = read(&p);
    // Ann spans lines 2-3 (a quoted CR), line 4 is blank.
    assert_eq!(items.iter().map(line).collect::<Vec<_>>(), [2, 4, 5]);
    assert_eq!(fields(records(&items)[0]), ["Ann", "a\rb"]);
    assert_eq!(issues(&items)[0].line, 4);
    assert_eq!(records(&items)[1].line, 5);
}

#[test]
fn csv_ragged_rows_both_ways_are_issues_and_shift_nothing() {
    let dir = TempDir::new().unwrap();
    let p = write(
        &dir,
        "ragged.csv",
        b"Name,Email,Phone\nAnn,a@x.com,1\nBob,b@x.com,2,extra\nCid,c@x.com\nDee,d@x.com,4\nEve,e@x.com,5,\n",
    );
    let (_, items) = read(&p);
    assert_accounts_for(&items, 2, 6);
    let bad = issues(&items);
    assert_eq!(bad.len(), 2);
    for (issue, (l, found)) in bad.iter().zip([(3, 4), (4, 2)]) {
        assert_eq!(issue.line, l);
        assert_eq!(issue.error.code, ErrorCode::RaggedRow);
        assert_eq!(issue.outcome, Outcome::Invalid);
        assert!(
            issue.error.message.contains("expected 3"),
            "{}",
            issue.error.message
        );
        assert!(
            issue.error.message.contains(&format!("found {found}")),
            "{}",
            issue.error.message
        );
        assert_eq!(issue.raw.len(), found);
    }
    let recs = records(&items);
    assert_eq!(
        fields(recs[1]),
        ["Dee", "d@x.com", "4"],
        "the row after is not shifted"
    );
    // A trailing delimiter adds an empty field: nothing shifts, so the row is kept.
    assert_eq!(fields(recs[2]), ["Eve", "e@x.com", "5"]);
}

#[test]
fn csv_unclosed_quote_is_reported_with_the_lines_it_swallowed() {
    let dir = TempDir::new().unwrap();
    let p = write(
        &dir,
        "open.csv",
        b"Name,Email,Phone\nAnn,\"open,1\nBob,b@x.com,2\n",
    );
    // Line 3 reads as a row again: only Ann's row is left out (it used to swallow Bob's).
    let (_, items) = read(&p);
    let bad = issues(&items);
    assert_eq!(items.len(), 2);
    assert_eq!(
        (bad[0].line, bad[0].error.code),
        (2, ErrorCode::UnterminatedQuote)
    );
    assert_eq!(bad[0].error.field.as_deref(), Some("Email"));
    assert_eq!(bad[0].raw, ["Ann", "open,1"]);
    assert!(
        bad[0].error.message.contains("opened on line 2"),
        "{}",
        bad[0].error.message
    );
    assert_eq!(fields(records(&items)[0]), ["Bob", "b@x.com", "2"]);
}

#[test]
fn csv_unnamed_trailing_columns_may_be_left_out_or_filled() {
    let dir = TempDir::new().unwrap();
    let p = write(
        &dir,
        "trailing.csv",
        b"Name,Email,\nAnn,a@x.com\nBob,b@x.com,note\nCid\nDee,d@x.com,\n",
    );
    let (src, items) = read(&p);
    assert_eq!(src.headers(), strings(&["Name", "Email", ""]));
    assert!(src.warnings()[0].contains("column 3 has a blank header"));
    let recs = records(&items);
    assert_eq!(fields(recs[0]), ["Ann", "a@x.com", ""]);
    assert_eq!(fields(recs[1]), ["Bob", "b@x.com", "note"]);
    // A named column missing is still ragged.
    assert_eq!(issues(&items)[0].error.code, ErrorCode::RaggedRow);
    assert_eq!(issues(&items)[0].line, 4);
}

#[test]
fn csv_blank_and_delimiter_only_rows_are_skipped_issues() {
    let dir = TempDir::new().unwrap();
    let p = write(
        &dir,
        "blank.csv",
        b"A,B,C\n1,2,3\n\n,,\n   \n , ,\t\n4,5,6\n,,,,\n7,8,9\n",
    );
    let (_, items) = read(&p);
    assert_accounts_for(&items, 2, 9);
    let skipped: Vec<u64> = issues(&items)
        .iter()
        .inspect(|i| {
            assert_eq!(i.outcome, Outcome::Skipped);
            assert_eq!(i.error.code, ErrorCode::BlankRow);
        })
        .map(|i| i.line)
        .collect();
    assert_eq!(skipped, [3, 4, 5, 6, 8]);
    assert_eq!(records(&items).len(), 3);
}

#[test]
fn csv_trailing_report_footer_is_skipped_but_a_mid_file_lookalike_is_not() {
    let dir = TempDir::new().unwrap();
    let p = write(
        &dir,
        "footer.csv",
        b"Name;Email;Phone\nAnn;a@x.com;1\nTotal: 5;;\nBob;b@x.com;2\n\nTotal: 1,234\n\"Report generated on 2024-03-05\"\nGenerated by HubSpot;;\n",
    );
    let (_, items) = read(&p);
    assert_accounts_for(&items, 2, 8);
    let kinds: Vec<(u64, ErrorCode, Outcome)> = issues(&items)
        .iter()
        .map(|i| (i.line, i.error.code, i.outcome))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (5, ErrorCode::BlankRow, Outcome::Skipped),
            (6, ErrorCode::ReportFooter, Outcome::Skipped),
            (7, ErrorCode::ReportFooter, Outcome::Skipped),
            (8, ErrorCode::ReportFooter, Outcome::Skipped),
        ]
    );
    // "Total: 5" followed by data is a row like any other (the mapping decides about it).
    let recs = records(&items);
    assert_eq!(recs.len(), 3);
    assert_eq!(fields(recs[1]), ["Total: 5", "", ""]);
}

#[test]
fn csv_header_row_skips_title_lines() {
    let dir = TempDir::new().unwrap();
    let p = write(
        &dir,
        "title.csv",
        b"Contacts export\nMarch 2024\nName,Email\nAnn,a@x.com\n",
    );
    let opts = SourceOptions {
        header_row: Some(3),
        ..Default::default()
    };
    let (src, items) = read_with(&p, &opts);
    assert_eq!(src.headers(), strings(&["Name", "Email"]));
    assert_accounts_for(&items, 4, 4);
    assert_eq!(fields(records(&items)[0]), ["Ann", "a@x.com"]);
}

// ---------------------------------------------------------------- headers

#[test]
fn csv_duplicate_and_blank_headers_are_warned_and_kept() {
    let dir = TempDir::new().unwrap();
    let p = write(&dir, "dup.csv", b" Email ,Name,,email,Email\na,b,c,d,e\n");
    let (src, items) = read(&p);
    assert_eq!(
        src.headers(),
        strings(&["Email", "Name", "", "email", "Email"])
    );
    let w = src.warnings().join("\n");
    assert!(w.contains("column 3 has a blank header"), "{w}");
    assert!(
        w.contains("\"Email\" appears 2 times (columns 1, 5)"),
        "{w}"
    );
    assert!(w.contains("dup.csv"), "warnings name the file: {w}");
    assert_eq!(
        doto_bulk::source::duplicate_headers(src.headers()),
        vec![("Email".to_owned(), vec![0, 4])]
    );
    assert_eq!(fields(records(&items)[0]), ["a", "b", "c", "d", "e"]);
}

#[test]
fn csv_damaged_bom_on_first_header_is_removed_with_a_warning() {
    let dir = TempDir::new().unwrap();
    // The UTF-8 BOM decoded as Windows-1252 and saved again as UTF-8.
    let p = write(
        &dir,
        "damaged.csv",
        "ï»¿Email,Name\na@x.com,Ann\n".as_bytes(),
    );
    let (src, items) = read(&p);
    assert_eq!(src.headers()[0], "Email");
    let w = src.warnings().join("\n");
    assert!(
        w.contains("damaged byte-order mark") && w.contains("ï»¿Email"),
        "{w}"
    );
    assert_eq!(records(&items).len(), 1);

    // A second BOM after a real one (a file "fixed" twice).
    let p = write(
        &dir,
        "double.csv",
        "\u{FEFF}\u{FEFF}Email\na@x.com\n".as_bytes(),
    );
    let (src, _) = read(&p);
    assert_eq!(src.headers(), strings(&["Email"]));
    assert!(src.warnings()[0].contains("U+FEFF"), "{:?}", src.warnings());
}

// ---------------------------------------------------------------- fatal errors

#[test]
fn binary_and_empty_files_fail_naming_the_file() {
    let dir = TempDir::new().unwrap();
    let mut bin = b"\x7fELF\x02\x01\x01\0\0\0\0\0".to_vec();
    bin.extend((0..2000u32).map(|i| (i * 7 % 256) as u8));
    for (name, bytes, says) in [
        ("photo.csv", bin.as_slice(), "not CSV text"),
        ("empty.csv", b"".as_slice(), "empty"),
        (
            "renamed.csv",
            b"PK\x03\x04\x14\0\0\0".as_slice(),
            "ZIP archive",
        ),
    ] {
        let p = write(&dir, name, bytes);
        let err = format!("{:#}", open(&p, &SourceOptions::default()).err().unwrap());
        assert!(err.contains(name) && err.contains(says), "{err}");
    }
    let err = format!(
        "{:#}",
        open(&dir.path().join("missing.csv"), &SourceOptions::default())
            .err()
            .unwrap()
    );
    assert!(err.contains("missing.csv"), "{err}");
}

#[test]
fn unknown_extension_is_sniffed() {
    let dir = TempDir::new().unwrap();
    let p = write(&dir, "export.dat", b"Name|Email\nAnn|a@x.com\n");
    let (src, items) = read(&p);
    assert_eq!(src.headers(), strings(&["Name", "Email"]));
    assert_eq!(records(&items).len(), 1);

    let x = dir.path().join("book.xlsx");
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.write_string(0, 0, "Name").unwrap();
    ws.write_string(1, 0, "Ann").unwrap();
    wb.save(&x).unwrap();
    let renamed = dir.path().join("book.bin");
    std::fs::rename(&x, &renamed).unwrap();
    let (src, items) = read(&renamed);
    assert!(src.describe().starts_with("XLSX"), "{}", src.describe());
    assert_eq!(fields(records(&items)[0]), ["Ann"]);
}

// ---------------------------------------------------------------- failures.csv

#[test]
fn failures_csv_written_by_a_run_reads_back_with_its_underscore_columns() {
    let dir = TempDir::new().unwrap();
    let p = dir.path().join("failures.csv");
    let rows = [
        [
            "Doe, John",
            "not-an-email",
            "line 1\nline 2",
            "3",
            "invalid_email",
            "email",
            "\"not-an-email\" is not an email, \"quoted\"",
        ],
        [
            "Zoë",
            "z@x.com",
            "",
            "7",
            "ragged_row",
            "",
            "expected 3 fields, found 4",
        ],
    ];
    let mut w = csv::Writer::from_path(&p).unwrap();
    w.write_record([
        "Name",
        "Email",
        "Note",
        "_row",
        "_error_code",
        "_error_field",
        "_error_message",
    ])
    .unwrap();
    for r in &rows {
        w.write_record(r).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let (src, items) = read(&p);
    assert_eq!(
        src.headers(),
        strings(&[
            "Name",
            "Email",
            "Note",
            "_row",
            "_error_code",
            "_error_field",
            "_error_message"
        ])
    );
    let recs = records(&items);
    assert_eq!(recs.len(), 2, "{items:?}");
    for (rec, want) in recs.iter().zip(&rows) {
        assert_eq!(fields(rec), want.to_vec());
    }
    assert_eq!(
        (recs[0].line, recs[1].line),
        (2, 4),
        "the quoted newline spans line 3"
    );
}

// ---------------------------------------------------------------- counts

#[test]
fn every_physical_row_of_a_messy_file_is_one_item() {
    let dir = TempDir::new().unwrap();
    let mut text = String::from("\u{FEFF}Name;Email;Phone\r\n");
    let mut want_records = 0;
    for i in 0..3000u64 {
        match i % 10 {
            0 => text.push_str("\r\n"),
            1 => text.push_str(";;\r\n"),
            2 => text.push_str(&format!("Bad {i};b{i}@x.com\r\n")),
            3 => text.push_str(&format!("Extra {i};e{i}@x.com;1;2\r\n")),
            _ => {
                text.push_str(&format!("\"Name, {i}\";n{i}@x.com;+44 20 7946 {i:04}\r\n"));
                want_records += 1;
            }
        }
    }
    text.push_str("Total: 2100\r\n");
    let p = write(&dir, "messy.csv", text.as_bytes());
    let (_, items) = read(&p);
    assert_accounts_for(&items, 2, 3002);
    assert_eq!(records(&items).len(), want_records);
    let count = |c| issues(&items).iter().filter(|i| i.error.code == c).count();
    assert_eq!(count(ErrorCode::BlankRow), 600);
    assert_eq!(count(ErrorCode::RaggedRow), 600);
    assert_eq!(count(ErrorCode::ReportFooter), 1);
}

// ---------------------------------------------------------------- XLSX

/// A workbook with two sheets; `Contacts` has title rows and its header on row 3.
fn workbook(dir: &TempDir) -> PathBuf {
    let path = dir.path().join("contacts.xlsx");
    let mut wb = Workbook::new();
    let notes = wb.add_worksheet();
    notes.set_name("Notes").unwrap();
    notes.write_string(0, 0, "Only").unwrap();
    notes.write_string(1, 0, "notes").unwrap();

    let ws = wb.add_worksheet();
    ws.set_name("Contacts").unwrap();
    ws.write_string(0, 0, "Contacts export").unwrap();
    ws.write_string(1, 0, "Generated for ACME").unwrap();
    for (c, h) in [
        "Name",
        "Phone",
        "Score",
        "Signed up",
        "Last seen",
        "VIP",
        "Zip",
    ]
    .iter()
    .enumerate()
    {
        ws.write_string(2, c as u16, *h).unwrap();
    }
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let datetime = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    // Row 4: numbers, dates, a bool.
    ws.write_string(3, 0, "Ann").unwrap();
    ws.write_number(3, 1, 4_155_550_100.0).unwrap();
    ws.write_number(3, 2, 0.1).unwrap();
    let d = ExcelDateTime::from_ymd(2024, 3, 5).unwrap();
    ws.write_datetime_with_format(3, 3, &d, &date).unwrap();
    let dt = ExcelDateTime::from_ymd(2024, 3, 5)
        .unwrap()
        .and_hms(14, 30, 0)
        .unwrap();
    ws.write_datetime_with_format(3, 4, &dt, &datetime).unwrap();
    ws.write_boolean(3, 5, true).unwrap();
    ws.write_string(3, 6, "02134").unwrap();
    // Row 5 left blank; row 6: an error cell and a formula error.
    ws.write_string(5, 0, "Bob").unwrap();
    ws.write_formula(5, 1, Formula::new("=NA()").set_result("#N/A"))
        .unwrap();
    ws.write_formula(5, 2, Formula::new("=1/0").set_result("#DIV/0!"))
        .unwrap();
    // Row 7: whole floats and a float.
    ws.write_string(6, 0, "Cid").unwrap();
    ws.write_number(6, 1, 7_912_345_678.0).unwrap();
    ws.write_number(6, 2, 42.0).unwrap();
    ws.write_number(6, 6, 2134.0).unwrap();
    // Row 8: only an empty string (a blank row that exists in the XML).
    ws.write_string(7, 3, "").unwrap();
    // Row 9: a value with no header column; row 10: last contact; row 12: a footer.
    ws.write_string(8, 0, "Dee").unwrap();
    ws.write_string(8, 8, "stray note").unwrap();
    ws.write_string(9, 0, "Eve").unwrap();
    ws.write_number(9, 2, 1234.5678).unwrap();
    ws.write_string(11, 0, "Total: 5 contacts").unwrap();
    wb.save(&path).unwrap();
    path
}

fn contacts_opts() -> SourceOptions {
    SourceOptions {
        sheet: Some("Contacts".into()),
        header_row: Some(3),
        ..Default::default()
    }
}

#[test]
fn xlsx_sheet_by_name_and_by_index_with_header_on_row_3() {
    let dir = TempDir::new().unwrap();
    let path = workbook(&dir);
    let by_index = SourceOptions {
        sheet: Some("2".into()),
        header_row: Some(3),
        ..Default::default()
    };
    for opts in [contacts_opts(), by_index] {
        let (src, items) = read_with(&path, &opts);
        assert_eq!(
            src.headers(),
            strings(&[
                "Name",
                "Phone",
                "Score",
                "Signed up",
                "Last seen",
                "VIP",
                "Zip"
            ])
        );
        assert_eq!(records(&items)[0].fields[0], "Ann");
        assert_eq!(records(&items)[0].line, 4, "lines are sheet rows");
    }
    // Default: the first sheet, header on its first row.
    let (src, items) = read(&path);
    assert_eq!(src.headers(), strings(&["Only"]));
    assert_eq!(fields(records(&items)[0]), ["notes"]);
}

#[test]
fn xlsx_missing_sheet_names_the_file_and_the_sheets() {
    let dir = TempDir::new().unwrap();
    let path = workbook(&dir);
    for want in ["People", "3"] {
        let opts = SourceOptions {
            sheet: Some(want.into()),
            ..Default::default()
        };
        let err = format!("{:#}", open(&path, &opts).err().unwrap());
        assert!(
            err.contains("contacts.xlsx") && err.contains("\"Notes\", \"Contacts\""),
            "{err}"
        );
    }
}

#[test]
fn xlsx_cells_convert_like_qsv_and_flag_numbers() {
    let dir = TempDir::new().unwrap();
    let (_, items) = read_with(&workbook(&dir), &contacts_opts());
    let recs = records(&items);
    let ann = recs[0];
    assert_eq!(
        fields(ann),
        [
            "Ann",
            "4155550100",
            "0.1",
            "2024-03-05",
            "2024-03-05T14:30:00",
            "true",
            "02134"
        ]
    );
    assert_eq!(ann.numeric, [false, true, true, false, false, false, false]);
    let cid = recs[1];
    assert_eq!(fields(cid), ["Cid", "7912345678", "42", "", "", "", "2134"]);
    assert!(
        cid.is_numeric(1) && cid.is_numeric(6),
        "a zip that lost its zero is flagged"
    );
    assert!(!cid.is_numeric(3));
    assert_eq!(recs[2].fields[2], "1234.5678");
}

#[test]
fn xlsx_error_cells_blank_rows_strays_and_footer_are_issues() {
    let dir = TempDir::new().unwrap();
    let (_, items) = read_with(&workbook(&dir), &contacts_opts());
    assert_accounts_for(&items, 4, 12);
    let got: Vec<(u64, ErrorCode, Outcome)> = issues(&items)
        .iter()
        .map(|i| (i.line, i.error.code, i.outcome))
        .collect();
    assert_eq!(
        got,
        vec![
            (5, ErrorCode::BlankRow, Outcome::Skipped),
            (6, ErrorCode::CellError, Outcome::Invalid),
            (8, ErrorCode::BlankRow, Outcome::Skipped),
            (9, ErrorCode::RaggedRow, Outcome::Invalid),
            (11, ErrorCode::BlankRow, Outcome::Skipped),
            (12, ErrorCode::ReportFooter, Outcome::Skipped),
        ]
    );
    let err = issues(&items)[1];
    assert_eq!(err.error.field.as_deref(), Some("Phone"));
    let m = &err.error.message;
    assert!(
        m.contains("\"Phone\" (B6): #N/A") && m.contains("\"Score\" (C6): #DIV/0!"),
        "{m}"
    );
    assert_eq!(err.raw[..3], strings(&["Bob", "#N/A", "#DIV/0!"]));
    let stray = &issues(&items)[3].error.message;
    assert!(
        stray.contains("I9") && stray.contains("stray note"),
        "{stray}"
    );
}

#[test]
fn xlsx_duplicate_headers_are_warned_with_column_letters() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("dup.xlsx");
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in ["Email", "Name", "", "Email"].iter().enumerate() {
        ws.write_string(0, c as u16 + 1, *h).unwrap();
    }
    ws.write_string(1, 1, "a@x.com").unwrap();
    wb.save(&path).unwrap();
    let (src, items) = read(&path);
    assert_eq!(src.headers(), strings(&["Email", "Name", "", "Email"]));
    let w = src.warnings().join("\n");
    assert!(
        w.contains("columns B, E") && w.contains("column D has a blank"),
        "{w}"
    );
    assert_eq!(fields(records(&items)[0]), ["a@x.com", "", "", ""]);
}

// ---------------------------------------------------------------- read errors and cut files

/// A file on a device that fails: the bytes of `data` read fine at first (the detections read
/// the start of the file), then, once the reader has gone back to the start, every read at or
/// past `fail_at` fails.
pub struct FailingFile {
    data: std::io::Cursor<Vec<u8>>,
    fail_at: u64,
    rewound: bool,
}

impl FailingFile {
    pub fn new(data: impl Into<Vec<u8>>, fail_at: usize) -> FailingFile {
        FailingFile {
            data: std::io::Cursor::new(data.into()),
            fail_at: fail_at as u64,
            rewound: false,
        }
    }
}

impl std::io::Read for FailingFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let pos = self.data.position();
        if !self.rewound {
            return self.data.read(buf);
        }
        if pos >= self.fail_at {
            return Err(std::io::Error::other(
                "Input/output error (the disk went away)",
            ));
        }
        let n = buf.len().min((self.fail_at - pos) as usize);
        self.data.read(&mut buf[..n])
    }
}

impl std::io::Seek for FailingFile {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        self.rewound = true;
        self.data.seek(to)
    }
}

/// `Name,Email,ID` and `rows` contacts, one per line (line 2 onwards); the byte offset where
/// line `cut_line` starts is returned with it.
pub fn contacts_csv(rows: usize, cut_line: usize) -> (String, usize) {
    let mut s = String::from("Name,Email,ID\n");
    let mut offset = 0;
    for i in 2..rows + 2 {
        if i == cut_line {
            offset = s.len();
        }
        s.push_str(&format!("P{i},p{i}@example.com,id{i}\n"));
    }
    (s, offset)
}

/// A workbook `Name, Email, ID` with `rows` contacts (sheet rows 2 onwards) whose sheet XML is
/// cut after the first cell of sheet row `cut_row`, in a zip that is itself intact.
pub fn cut_xlsx(path: &Path, rows: u32, cut_row: u32) {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in ["Name", "Email", "ID"].iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    for r in 1..=rows {
        let n = r + 1;
        ws.write_string(r, 0, format!("P{n}")).unwrap();
        ws.write_string(r, 1, format!("p{n}@example.com")).unwrap();
        ws.write_string(r, 2, format!("id{n}")).unwrap();
    }
    let whole = wb.save_to_buffer().unwrap();
    let mut zin = zip::ZipArchive::new(std::io::Cursor::new(whole)).unwrap();
    let mut zout = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for i in 0..zin.len() {
        let mut f = zin.by_index(i).unwrap();
        let name = f.name().unwrap().into_owned();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut body).unwrap();
        if name == "xl/worksheets/sheet1.xml" {
            let xml = String::from_utf8(body).unwrap();
            let row = xml
                .find(&format!("<row r=\"{cut_row}\""))
                .expect("the row to cut");
            let cell_end = row + xml[row..].find("</c>").unwrap() + "</c>".len();
            body = xml.as_bytes()[..cell_end + 5].to_vec(); // `<c r=` of the next cell
        }
        zout.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut zout, &body).unwrap();
    }
    std::fs::write(path, zout.finish().unwrap().into_inner()).unwrap();
}

#[test]
fn csv_read_error_after_n_rows_is_an_error_naming_the_file_and_the_line() {
    // Line 8 starts at `offset`: the device fails 4 bytes into it.
    let (text, offset) = contacts_csv(20, 8);
    let f = FailingFile::new(text, offset + 4);
    let mut src = CsvSource::from_reader("contacts.csv", f, &SourceOptions::default()).unwrap();
    let items: Vec<Item> = src.by_ref().collect();
    assert_accounts_for(&items, 2, 7);
    assert!(items.iter().all(Result::is_ok), "{items:?}");
    let e = src
        .take_error()
        .expect("a failed read is not the end of the file");
    assert_eq!((e.file.as_str(), e.unit, e.at), ("contacts.csv", "line", 8));
    let msg = e.to_string();
    assert!(
        msg.starts_with("contacts.csv: reading failed at line 8"),
        "{msg}"
    );
    assert!(msg.contains("the disk went away"), "{msg}");
    assert!(src.next().is_none() && src.take_error().is_none());
}

#[test]
fn xlsx_sheet_cut_mid_row_is_an_error_naming_the_file_and_the_row() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("cut.xlsx");
    cut_xlsx(&path, 30, 6);
    let mut src = open(&path, &SourceOptions::default()).unwrap();
    let items: Vec<Item> = src.by_ref().collect();
    // Rows 2–5 are whole; row 6 lost its last cells, so it is not handed out at all.
    assert_accounts_for(&items, 2, 5);
    assert_eq!(
        fields(items[3].as_ref().unwrap()),
        ["P5", "p5@example.com", "id5"]
    );
    let e: ReadError = src.take_error().expect("a cut sheet is not a short sheet");
    assert_eq!((e.unit, e.at), ("row", 6));
    let msg = e.to_string();
    assert!(msg.contains("cut.xlsx") && msg.contains("row 6"), "{msg}");
}

#[test]
fn csv_cut_mid_row_is_a_ragged_row_not_a_footer() {
    let dir = TempDir::new().unwrap();
    let (text, offset) = contacts_csv(5, 6);
    // Cut inside the first field of line 6: one short value, no line end.
    let p = write(&dir, "cut.csv", &text.as_bytes()[..offset + 2]);
    let (_, items) = read(&p);
    assert_accounts_for(&items, 2, 6);
    let bad = issues(&items);
    assert_eq!(bad.len(), 1);
    assert_eq!((bad[0].line, bad[0].outcome), (6, Outcome::Invalid));
    assert_eq!(bad[0].error.code, ErrorCode::RaggedRow);
    assert_eq!(bad[0].raw, ["P6"]);
    // The same short row with its line end is a footer, as before.
    let p = write(
        &dir,
        "footer.csv",
        format!("{}P6\n", &text[..offset]).as_bytes(),
    );
    let (_, items) = read(&p);
    assert_eq!(issues(&items)[0].error.code, ErrorCode::ReportFooter);
}

#[test]
fn csv_cut_inside_a_quoted_field_names_the_line_where_the_quote_opened() {
    let dir = TempDir::new().unwrap();
    // The note on line 3 spans lines 3–4 and is cut on line 4; every field is there, so only
    // the open quote tells that the row is not whole. Line 4 does not read as a row, so the
    // read stops at line 3 (it used to be one invalid row): the file is cut, not a row bad.
    let p = write(
        &dir,
        "cut.csv",
        b"Name,Email,Note\nAnn,a@x.com,fine\nBob,b@x.com,\"first line\nsecond li",
    );
    let mut src = open(&p, &SourceOptions::default()).unwrap();
    let items: Vec<Item> = src.by_ref().collect();
    assert_eq!(items.len(), 1);
    assert_eq!(fields(records(&items)[0]), ["Ann", "a@x.com", "fine"]);
    let e = src.take_error().expect("the read stops at the open quote");
    assert_eq!(e.at, 3);
    assert!(e.cause.starts_with("unterminated_quote"), "{e}");
    assert!(e.cause.contains("opened on line 3"), "{e}");
    // A quote left open on the last line, with nothing after it, is that row's problem only.
    let p = write(
        &dir,
        "last.csv",
        b"Name,Email,Note\nAnn,a@x.com,fine\nBob,b@x.com,\"first line\n",
    );
    let (_, items) = read(&p);
    assert_accounts_for(&items, 2, 3);
    let bad = issues(&items);
    assert_eq!(
        (bad[0].line, bad[0].error.code),
        (3, ErrorCode::UnterminatedQuote)
    );
    // A closed quote at the very end of the file is fine.
    let p = write(
        &dir,
        "ok.csv",
        b"Name,Email,Note\nBob,b@x.com,\"two\nlines\"",
    );
    let (_, items) = read(&p);
    assert_eq!(fields(records(&items)[0]), ["Bob", "b@x.com", "two\nlines"]);
}
