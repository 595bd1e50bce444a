//! Input integrity and bounded resources (issue 14, items 1 and 3): a quote left open, bytes that
//! are not UTF-8 in a UTF-8 file, a whole Windows-1252 file, fields and cells over the limit, and
//! workbook parts over theirs. Through the source, `validate` and `import`.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use doto_bulk::cmd::import::{Args as ImportArgs, run_import};
use doto_bulk::cmd::validate::{Args, Validation, run_validate};
use doto_bulk::model::{ErrorCode, Outcome};
use doto_bulk::source::{Record, RowIssue, Source, SourceOptions, open};
use tempfile::TempDir;

type Item = Result<Record, RowIssue>;

const MAPPING: &str = crate::import::MAPPING;
const HEADER: &str = crate::import::HEADER;

/// `n` contact rows under [`HEADER`]; row `open_at` (1-based data row) leaves its email's quote
/// open; every row in `quoted` has its city quoted with a comma inside (`"Globex, Inc."`).
fn contacts(n: usize, open_at: usize, quoted: &[usize]) -> String {
    let mut s = HEADER.to_owned();
    for i in 1..=n {
        let email = if i == open_at {
            format!("\"p{i}@example.com")
        } else {
            format!("p{i}@example.com")
        };
        let city = if quoted.contains(&i) {
            "\"Globex, Inc.\"".to_owned()
        } else {
            format!("City {i}")
        };
        s.push_str(&format!("Person {i},{email},ID{i},pro,{city}\n"));
    }
    s
}

fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn validate(dir: &TempDir, file: &Path, out: &str) -> (Validation, serde_json::Value) {
    let map = write(dir, "m.yaml", MAPPING.as_bytes());
    let args = Args::new(file, &map, Some(&dir.path().join(out)));
    let v = run_validate(&args, true, &AtomicBool::new(false)).unwrap();
    let s = std::fs::read(v.run_dir.join("summary.json")).unwrap();
    (v, serde_json::from_slice(&s).unwrap())
}

/// `failures.csv` rows as (`_row`, `_error_code`, `_error_message`).
fn failures(run: &Path) -> Vec<(u64, String, String)> {
    let mut r = csv::Reader::from_path(run.join("failures.csv")).unwrap();
    let h = r.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|x| x == name).unwrap();
    let (row, code, err) = (col("_row"), col("_error_code"), col("_error_message"));
    r.records()
        .map(|x| {
            let x = x.unwrap();
            (
                x[row].parse().unwrap(),
                x[code].to_owned(),
                x[err].to_owned(),
            )
        })
        .collect()
}

fn read_with(path: &Path, opts: &SourceOptions) -> (Box<dyn Source>, Vec<Item>) {
    let mut src = open(path, opts).unwrap_or_else(|e| panic!("open {}: {e:#}", path.display()));
    let items: Vec<Item> = src.by_ref().collect();
    (src, items)
}

fn records(items: &[Item]) -> Vec<&Record> {
    items.iter().filter_map(|i| i.as_ref().ok()).collect()
}

fn issues(items: &[Item]) -> Vec<&RowIssue> {
    items.iter().filter_map(|i| i.as_ref().err()).collect()
}

// ---------------------------------------------------------------- a quote left open

#[test]
fn a_quote_left_open_on_row_10_of_1000_costs_that_row_only_in_validate() {
    let dir = TempDir::new().unwrap();
    // Once with no other quote in the file (the quote runs to the end), once with later quoted
    // cities (a later opening quote "closes" it).
    for (name, quoted) in [("open.csv", vec![]), ("closed.csv", vec![100, 500, 900])] {
        let file = write(&dir, name, contacts(1000, 10, &quoted).as_bytes());
        let (v, s) = validate(&dir, &file, &format!("run-{name}"));
        assert_eq!(v.exit_code, 3, "{name}: one row is invalid, none lost");
        assert_eq!(s["rows_read"], 1000, "{name}");
        assert_eq!(s["outcomes"]["valid"], 999, "{name}");
        assert_eq!(s["outcomes"]["invalid"], 1, "{name}");
        assert_eq!(s["failures_by_code"]["unterminated_quote"], 1, "{name}");
        assert!(s["errors_by_code"]["report_footer"].is_null(), "{name}");
        let f = failures(&v.run_dir);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].0, f[0].1.as_str()), (11, "unterminated_quote"));
        assert!(f[0].2.contains("opened on line 11"), "{}", f[0].2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_left_open_on_row_10_of_1000_imports_the_other_999_and_exits_3() {
    let w = crate::import::World::plain().await;
    let run = w
        .import(&contacts(1000, 10, &[300]), MAPPING, "run", |_| {})
        .await;
    assert_eq!(run.exit_code, 3);
    assert_eq!(run.summary.rows_read, 1000);
    assert_eq!(crate::import::outcome(&run, "created"), 999);
    assert_eq!(crate::import::outcome(&run, "invalid"), 1);
    let stored = w.by_email();
    assert_eq!(stored.len(), 999);
    assert!(!stored.contains_key("p10@example.com"));
    assert_eq!(
        stored["p300@example.com"]["additional_attributes"]["city"],
        "Globex, Inc."
    );
    assert_eq!(stored["p1000@example.com"]["name"], "Person 1000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_left_open_over_lines_that_are_not_rows_stops_the_run_with_exit_1() {
    let w = crate::import::World::plain().await;
    let mut text = contacts(9, 0, &[]);
    text.push_str("Person 10,\"p10@example.com,ID10,pro,City\nsome note\nmore of it\nend\n");
    let file = w.write("notes.csv", &text);
    let map = w.write("m.yaml", MAPPING);
    let mut args = ImportArgs::new(&file, &map);
    args.out = Some(w.path("run"));
    let run = run_import(&args, w.config(), true, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    assert_eq!(run.exit_code, 1);
    let e = run.summary.read_error.as_deref().unwrap();
    assert!(e.contains("reading failed at line 11"), "{e}");
    assert!(e.contains("unterminated_quote"), "{e}");
    assert_eq!(w.writes(), 0, "a file read in part is not imported");

    // validate says the same, after reading the 9 rows before it.
    let dir = TempDir::new().unwrap();
    let file = write(&dir, "notes.csv", text.as_bytes());
    let (v, s) = validate(&dir, &file, "run");
    assert_eq!(v.exit_code, 1);
    assert_eq!(s["stopped"], "read_error");
    assert_eq!(s["rows_read"], 9);
}

#[test]
fn a_note_on_several_lines_is_still_one_row() {
    let dir = TempDir::new().unwrap();
    let text = format!(
        "{HEADER}Ann,a@x.com,A1,pro,\"Line one, with a comma\nline two, with one, too\"\nBob,b@x.com,A2,pro,Paris\n"
    );
    let p = write(&dir, "notes.csv", text.as_bytes());
    let (mut src, items) = read_with(&p, &SourceOptions::default());
    assert!(src.take_error().is_none());
    let recs = records(&items);
    assert_eq!(recs.len(), 2);
    assert_eq!(
        recs[0].fields[4],
        "Line one, with a comma\nline two, with one, too"
    );
    assert_eq!(recs[1].line, 4);
}

// ---------------------------------------------------------------- encodings

#[test]
fn an_invalid_byte_in_a_utf8_file_makes_its_row_invalid_and_nothing_else() {
    let dir = TempDir::new().unwrap();
    // Few accents (the old rule wanted 20 per bad byte and read this as Windows-1252).
    let mut bytes = format!("{HEADER}Café Müller,c@x.com,A1,pro,Zürich\n").into_bytes();
    let bad_at = bytes.len() + "Ren".len();
    bytes.extend(b"Ren\xe9,r@x.com,A2,pro,Paris\nZo\xc3\xab,z@x.com,A3,pro,K\xc3\xb6ln\n");
    let p = write(&dir, "mixed.csv", &bytes);
    let (src, items) = read_with(&p, &SourceOptions::default());
    assert!(src.describe().contains("UTF-8"), "{}", src.describe());
    let recs = records(&items);
    assert_eq!(recs[0].fields[0], "Café Müller");
    assert_eq!(recs[1].fields[0], "Zoë");
    assert_eq!(recs[1].fields[4], "Köln");
    let bad = issues(&items);
    assert_eq!(bad.len(), 1);
    assert_eq!((bad[0].line, bad[0].outcome), (3, Outcome::Invalid));
    assert_eq!(bad[0].error.code, ErrorCode::InvalidEncoding);
    let msg = &bad[0].error.message;
    assert!(
        msg.starts_with(&format!("line 3, byte offset {bad_at}:")),
        "{msg}"
    );
    assert!(msg.contains("column \"Name\""), "{msg}");

    let (v, s) = validate(&dir, &p, "run");
    assert_eq!(v.exit_code, 3);
    assert_eq!(s["outcomes"]["valid"], 2);
    assert_eq!(s["failures_by_code"]["invalid_encoding"], 1);
}

#[test]
fn a_whole_windows_1252_file_is_still_decoded() {
    let dir = TempDir::new().unwrap();
    let mut bytes = HEADER.as_bytes().to_vec();
    bytes.extend(b"Jos\xe9,j@x.com,A1,pro,M\xfcnchen\nZo\xeb,z@x.com,A2,pro,\x93Caf\xe9\x94\n");
    let p = write(&dir, "cp1252.csv", &bytes);
    let (src, items) = read_with(&p, &SourceOptions::default());
    assert!(
        src.describe().contains("windows-1252"),
        "{}",
        src.describe()
    );
    let recs = records(&items);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].fields[0], "José");
    assert_eq!(recs[0].fields[4], "München");
    assert_eq!(recs[1].fields[4], "“Café”");
}

// ---------------------------------------------------------------- bounded fields

#[test]
fn a_csv_field_over_the_limit_makes_its_row_invalid_and_keeps_only_its_start() {
    let dir = TempDir::new().unwrap();
    let big = "x".repeat(5000);
    let text = format!(
        "{HEADER}Ann,a@x.com,A1,pro,\"{big}\"\nBob,b@x.com,A2,pro,Paris\nCat,c@x.com,A3,pro,{big}\n"
    );
    let p = write(&dir, "big.csv", text.as_bytes());
    let opts = SourceOptions {
        max_field_bytes: 1000,
        ..SourceOptions::default()
    };
    let (_, items) = read_with(&p, &opts);
    let bad = issues(&items);
    assert_eq!(bad.len(), 2);
    for (issue, line) in bad.iter().zip([2, 4]) {
        assert_eq!(issue.line, line);
        assert_eq!(issue.error.code, ErrorCode::FieldTooLarge);
        assert_eq!(issue.error.field.as_deref(), Some("City"));
        let msg = &issue.error.message;
        assert!(
            msg.contains("5000 bytes") && msg.contains("limit of 1000"),
            "{msg}"
        );
        assert!(issue.raw[4].len() < 100, "only the start is kept");
    }
    assert_eq!(records(&items)[0].fields[0], "Bob");
    // The default limit (1 MiB) lets a 5,000-byte field through.
    let (_, items) = read_with(&p, &SourceOptions::default());
    assert_eq!(records(&items).len(), 3);
}

#[test]
fn the_binary_takes_the_field_limit_from_max_field_bytes() {
    let dir = TempDir::new().unwrap();
    let text = format!(
        "{HEADER}Ann,a@x.com,A1,pro,{}\nBob,b@x.com,A2,pro,Paris\n",
        "x".repeat(3000)
    );
    write(&dir, "big.csv", text.as_bytes());
    write(&dir, "m.yaml", MAPPING.as_bytes());
    let run = |extra: &[&str], out: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_doto-bulk"))
            .current_dir(dir.path())
            .args(["-q", "validate", "big.csv", "-m", "m.yaml", "--out", out])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&["--max-field-bytes", "1000"], "small");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = failures(&dir.path().join("small"));
    assert_eq!((f[0].0, f[0].1.as_str()), (2, "field_too_large"));
    assert_eq!(run(&[], "default").status.code(), Some(0));
}

#[test]
fn a_quote_left_open_over_a_big_file_stops_without_holding_the_file() {
    let dir = TempDir::new().unwrap();
    // 40,000 rows after an unclosed quote: far more than the bytes kept for reading them again.
    let text = contacts(40_000, 3, &[]);
    assert!(text.len() > 2 << 20);
    let p = write(&dir, "long.csv", text.as_bytes());
    let opts = SourceOptions {
        max_field_bytes: 64 << 10,
        ..SourceOptions::default()
    };
    let (mut src, items) = read_with(&p, &opts);
    assert_eq!(records(&items).len(), 2);
    let e = src.take_error().expect("the read stops at the open quote");
    assert_eq!(e.at, 4);
    assert!(e.cause.starts_with("unterminated_quote"), "{e}");
}

// ---------------------------------------------------------------- bounded workbooks

/// `n` bytes of `a`.
fn write_as(w: &mut impl std::io::Write, n: u64) {
    std::io::copy(&mut std::io::Read::take(std::io::repeat(b'a'), n), w).unwrap();
}

/// A workbook (Name, Email, Notes; 3 rows) whose row-3 note is `big` bytes of `a`: in the shared
/// strings, or inline in the sheet. It compresses about 1000:1.
pub fn big_cell_xlsx(path: &Path, big: u64, inline: bool) {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in ["Name", "Email", "Notes"].iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    for r in 1..=3u32 {
        ws.write_string(r, 0, format!("P{r}")).unwrap();
        ws.write_string(r, 1, format!("p{r}@example.com")).unwrap();
        if r == 2 {
            ws.write_string(r, 2, "PLACEHOLDER").unwrap();
        } else {
            ws.write_string(r, 2, "short").unwrap();
        }
    }
    let whole = wb.save_to_buffer().unwrap();
    let mut zin = zip::ZipArchive::new(std::io::Cursor::new(whole)).unwrap();
    let mut zout = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..zin.len() {
        let mut f = zin.by_index(i).unwrap();
        let name = f.name().unwrap().into_owned();
        let mut body = String::new();
        std::io::Read::read_to_string(&mut f, &mut body).unwrap();
        zout.start_file(&name, zip::write::SimpleFileOptions::default())
            .unwrap();
        // The file is `before`, the big text, `after`; or `body` alone.
        let cut = match name.as_str() {
            "xl/sharedStrings.xml" if !inline => {
                let (b, a) = body.split_once("PLACEHOLDER").unwrap();
                Some((b.to_owned(), a.to_owned()))
            }
            "xl/worksheets/sheet1.xml" if inline => {
                let at = body.find("<c r=\"C3\"").unwrap();
                let end = at + body[at..].find("</c>").unwrap() + 4;
                let before = format!("{}<c r=\"C3\" t=\"inlineStr\"><is><t>", &body[..at]);
                Some((before, format!("</t></is></c>{}", &body[end..])))
            }
            _ => None,
        };
        let w = &mut zout;
        match cut {
            Some((before, after)) => {
                std::io::Write::write_all(w, before.as_bytes()).unwrap();
                write_as(w, big);
                std::io::Write::write_all(w, after.as_bytes()).unwrap();
            }
            None => std::io::Write::write_all(w, body.as_bytes()).unwrap(),
        }
    }
    zout.finish().unwrap();
}

#[test]
fn an_xlsx_cell_over_the_limit_makes_its_row_invalid() {
    let dir = TempDir::new().unwrap();
    let opts = SourceOptions {
        max_field_bytes: 1000,
        ..SourceOptions::default()
    };
    for inline in [false, true] {
        let p = dir.path().join(format!("big-{inline}.xlsx"));
        big_cell_xlsx(&p, 5000, inline);
        let (mut src, items) = read_with(&p, &opts);
        assert!(src.take_error().is_none());
        let bad = issues(&items);
        assert_eq!(bad.len(), 1, "inline {inline}");
        assert_eq!(bad[0].line, 3);
        assert_eq!(bad[0].error.code, ErrorCode::FieldTooLarge);
        assert_eq!(bad[0].error.field.as_deref(), Some("Notes"));
        let msg = &bad[0].error.message;
        assert!(
            msg.starts_with("cell C3 (column \"Notes\"): the value is 5000 bytes"),
            "{msg}"
        );
        assert!(bad[0].raw[2].len() < 100, "only the start is kept");
        assert_eq!(records(&items).len(), 2);
        // The default limit (1 MiB) reads it.
        let (_, items) = read_with(&p, &SourceOptions::default());
        assert_eq!(records(&items).len(), 3);
    }
}

#[test]
fn an_xlsx_part_over_the_limit_stops_before_it_is_read() {
    let dir = TempDir::new().unwrap();
    let p = dir.path().join("parts.xlsx");
    big_cell_xlsx(&p, 20_000, false);
    let opts = SourceOptions {
        max_part_bytes: 10_000,
        ..SourceOptions::default()
    };
    let e = open(&p, &opts)
        .err()
        .expect("a part over the limit is refused");
    let e = format!("{e:#}");
    assert!(e.contains("parts.xlsx"), "{e}");
    assert!(
        e.contains("xl/sharedStrings.xml") && e.contains("over the limit of 10000 bytes"),
        "{e}"
    );
}

#[test]
fn a_decompression_bomb_cell_is_refused_fast_without_memory() {
    let dir = TempDir::new().unwrap();
    // 20 MiB of text in one cell (about 20 KiB on disk): over 16 × the 1 MiB cell limit, in a part
    // that decompresses ~1000:1. Refused while scanning, before calamine would hold it.
    for inline in [false, true] {
        let p = dir.path().join(format!("bomb-{inline}.xlsx"));
        big_cell_xlsx(&p, 20 << 20, inline);
        assert!(std::fs::metadata(&p).unwrap().len() < 1 << 20);
        let t = std::time::Instant::now();
        let e = open(&p, &SourceOptions::default()).err().expect("refused");
        let e = format!("{e:#}");
        assert!(
            e.contains("holds a text of more than 16777216 bytes"),
            "{e}"
        );
        assert!(t.elapsed().as_secs_f64() < 5.0, "{:?}", t.elapsed());
    }
}
