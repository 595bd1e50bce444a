//! Spreadsheets from writers other than Excel and rust_xlsxwriter. Each fixture is a ZIP of XML
//! parts written here by hand, in the shape LibreOffice, Google Sheets, Apple Numbers and
//! streaming writers produce: inline strings, no shared strings, rich text runs, `t="str"`
//! formula results, lying or missing `dimension`s, rows and cells without `r=`, absolute part
//! paths, the 1904 date system, number cells holding phones and zip codes, error cells, hidden
//! and decoy sheets. Each is read through the source, `validate` and `import --sandbox`.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use doto_bulk::cmd::validate::{Args, Validation, run_validate};
use doto_bulk::source::{Record, RowIssue, SourceOptions, open};
use serde_json::Value;
use tempfile::TempDir;

use crate::import::World;

type Item = Result<Record, RowIssue>;

const NS: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
const RNS: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
const PKG: &str = "http://schemas.openxmlformats.org/package/2006/relationships";

/// One worksheet: its name, whether it is hidden, and its `<sheetData>` content.
struct Sheet {
    name: String,
    hidden: bool,
    /// `None`: no `<dimension>` element.
    dimension: Option<String>,
    data: String,
    /// XML after `</sheetData>` (`<mergeCells>`…).
    tail: String,
}

/// A workbook written part by part, as another tool would.
struct Book {
    sheets: Vec<Sheet>,
    /// The `<sst>` content (`<si>` elements); `None` writes no sharedStrings part.
    shared: Option<String>,
    /// `<numFmts>` and `<cellXfs>` content of styles.xml; `None` writes no styles part.
    styles: Option<String>,
    date1904: bool,
    /// Relationship targets as absolute paths (`/xl/worksheets/sheet1.xml`).
    absolute: bool,
}

impl Book {
    fn new() -> Book {
        Book {
            sheets: Vec::new(),
            shared: None,
            styles: None,
            date1904: false,
            absolute: false,
        }
    }

    fn sheet(mut self, name: &str, data: &str) -> Book {
        self.sheets.push(Sheet {
            name: name.to_owned(),
            hidden: false,
            dimension: Some("A1".to_owned()),
            data: data.to_owned(),
            tail: String::new(),
        });
        self
    }

    fn last(&mut self) -> &mut Sheet {
        self.sheets.last_mut().expect("a sheet")
    }

    /// A relationship target, absolute when the book says so.
    fn target(&self, t: &str) -> String {
        if self.absolute {
            format!("/xl/{t}")
        } else {
            t.to_owned()
        }
    }

    /// The content-type overrides, the workbook relationships and the `<sheet>` list.
    fn index(&self) -> (String, String, String) {
        let mut types = String::new();
        let mut rels = String::new();
        let mut list = String::new();
        for (i, s) in self.sheets.iter().enumerate() {
            let n = i + 1;
            types.push_str(&format!(
                r#"<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>"#
            ));
            rels.push_str(&format!(
                r#"<Relationship Id="rId{n}" Type="{RNS}/worksheet" Target="{}"/>"#,
                self.target(&format!("worksheets/sheet{n}.xml"))
            ));
            let state = if s.hidden { r#" state="hidden""# } else { "" };
            list.push_str(&format!(
                r#"<sheet name="{}" sheetId="{n}"{state} r:id="rId{n}"/>"#,
                s.name
            ));
        }
        if self.shared.is_some() {
            types.push_str(r#"<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>"#);
            rels.push_str(&format!(
                r#"<Relationship Id="rIdS" Type="{RNS}/sharedStrings" Target="{}"/>"#,
                self.target("sharedStrings.xml")
            ));
        }
        if self.styles.is_some() {
            types.push_str(r#"<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>"#);
            rels.push_str(&format!(
                r#"<Relationship Id="rIdT" Type="{RNS}/styles" Target="{}"/>"#,
                self.target("styles.xml")
            ));
        }
        (types, rels, list)
    }

    fn save(&self, path: &Path) {
        let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
        let mut put = |name: &str, body: &str| {
            z.start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            z.write_all(body.as_bytes()).unwrap();
        };
        let (types, rels, list) = self.index();
        put(
            "[Content_Types].xml",
            &format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>{types}</Types>"#
            ),
        );
        put(
            "_rels/.rels",
            &format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG}"><Relationship Id="rId1" Type="{RNS}/officeDocument" Target="{}"/></Relationships>"#,
                if self.absolute {
                    "/xl/workbook.xml"
                } else {
                    "xl/workbook.xml"
                }
            ),
        );
        let pr = if self.date1904 {
            r#"<workbookPr date1904="1"/>"#
        } else {
            "<workbookPr/>"
        };
        put(
            "xl/workbook.xml",
            &format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{NS}" xmlns:r="{RNS}">{pr}<sheets>{list}</sheets></workbook>"#
            ),
        );
        put(
            "xl/_rels/workbook.xml.rels",
            &format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG}">{rels}</Relationships>"#
            ),
        );
        for (i, s) in self.sheets.iter().enumerate() {
            let dim = s
                .dimension
                .as_ref()
                .map(|d| format!(r#"<dimension ref="{d}"/>"#))
                .unwrap_or_default();
            put(
                &format!("xl/worksheets/sheet{}.xml", i + 1),
                &format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{NS}" xmlns:r="{RNS}">{dim}<sheetData>{}</sheetData>{}</worksheet>"#,
                    s.data, s.tail
                ),
            );
        }
        if let Some(sst) = &self.shared {
            put(
                "xl/sharedStrings.xml",
                &format!(r#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{NS}">{sst}</sst>"#),
            );
        }
        if let Some(st) = &self.styles {
            put(
                "xl/styles.xml",
                &format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="{NS}">{st}</styleSheet>"#
                ),
            );
        }
        z.finish().unwrap();
    }
}

/// XML text escaping for cell contents.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An inline-string cell (`r` may be empty: no `r=` attribute).
fn is(r: &str, text: &str) -> String {
    format!(
        r#"<c{} t="inlineStr"><is><t>{}</t></is></c>"#,
        at(r),
        esc(text)
    )
}

/// A number cell with an optional style.
fn num(r: &str, v: &str, style: Option<u32>) -> String {
    let s = style.map(|s| format!(r#" s="{s}""#)).unwrap_or_default();
    format!(r#"<c{}{s}><v>{v}</v></c>"#, at(r))
}

/// A cell of type `t` with value `v` (and a formula, for `str` and `e`).
fn typed(r: &str, t: &str, v: &str) -> String {
    format!(r#"<c{} t="{t}"><f>A1</f><v>{}</v></c>"#, at(r), esc(v))
}

fn at(r: &str) -> String {
    if r.is_empty() {
        String::new()
    } else {
        format!(r#" r="{r}""#)
    }
}

/// A row of cells; `n` 0 writes no `r=`.
fn row(n: u32, cells: &[String]) -> String {
    let r = if n == 0 {
        String::new()
    } else {
        format!(r#" r="{n}""#)
    };
    format!("<row{r}>{}</row>", cells.concat())
}

/// Inline-string cells in columns A.. of row `n` (`r=` on every cell unless `n` is 0).
fn texts(n: u32, values: &[&str]) -> String {
    let cells: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let r = if n == 0 {
                String::new()
            } else {
                format!("{}{n}", col(i))
            };
            is(&r, v)
        })
        .collect();
    row(n, &cells)
}

fn col(i: usize) -> char {
    (b'A' + i as u8) as char
}

fn read(path: &Path, opts: &SourceOptions) -> (Vec<String>, Vec<String>, Vec<Item>) {
    let mut src = open(path, opts).unwrap_or_else(|e| panic!("open {}: {e:#}", path.display()));
    let items: Vec<Item> = src.by_ref().collect();
    assert!(src.take_error().is_none(), "{}", path.display());
    (src.headers().to_vec(), src.warnings().to_vec(), items)
}

fn fields(items: &[Item]) -> Vec<Vec<String>> {
    items
        .iter()
        .map(|i| match i {
            Ok(r) => r.fields.clone(),
            Err(e) => vec![format!("{:?}: {}", e.error.code, e.error.message)],
        })
        .collect()
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// `validate` with `mapping`: the outcome and summary.json.
fn validate(dir: &Path, file: &Path, mapping: &str) -> (Validation, Value) {
    let map = write(dir, "m.yaml", mapping);
    let out = dir.join(format!(
        "run-{}",
        file.file_name().unwrap().to_string_lossy()
    ));
    let args = Args::new(file, &map, Some(&out));
    let v = run_validate(&args, true, &AtomicBool::new(false)).unwrap();
    let s = std::fs::read(v.run_dir.join("summary.json")).unwrap();
    (v, serde_json::from_slice(&s).unwrap())
}

/// The report's rows as `(row, code, message)` of `failures.csv` or `warnings.csv`.
fn report(run: &Path, name: &str) -> Vec<(u64, String, String)> {
    let Ok(mut r) = csv::Reader::from_path(run.join(name)) else {
        return Vec::new();
    };
    let h = r.headers().unwrap().clone();
    let pos = |n: &str| h.iter().position(|x| x == n).unwrap();
    let kind = if name.starts_with("warn") {
        "warning"
    } else {
        "error"
    };
    let (row, code, msg) = (
        pos("_row"),
        pos(&format!("_{kind}_code")),
        pos(&format!("_{kind}_message")),
    );
    r.records()
        .map(|x| {
            let x = x.unwrap();
            (
                x[row].parse().unwrap(),
                x[code].to_owned(),
                x[msg].to_owned(),
            )
        })
        .collect()
}

/// `import --sandbox` of `file` with `mapping`: the exit code and the stored contacts by email.
async fn import(
    w: &World,
    file: &Path,
    mapping: &str,
) -> (u8, std::collections::BTreeMap<String, Value>) {
    let map = w.write("m.yaml", mapping);
    let out = format!("run-{}", file.file_name().unwrap().to_string_lossy());
    let run = w.import_file(file, &map, &out, |_| {}).await;
    (run.exit_code, w.by_email())
}

const MAPPING: &str = r#"version: 1
defaults:
  phone_region: GB
fields:
  name: Name
  email: Email
  phone_number: { from: Phone, optional: true }
  identifier: { from: ID, optional: true }
  blocked: { from: Blocked, optional: true }
custom_attributes:
  zip: { from: Zip, optional: true }
  born: { from: Born, type: date, optional: true }
  seen: { from: Seen, type: datetime, optional: true }
"#;

/// Styles: 1 `0.00`, 2 text (`@`), 3 `00000` (zip), 4 `yyyy-mm-dd`, 5 `hh:mm`, 6 `m/d/yy h:mm`,
/// 7 `00000 000000` (a UK phone shown with its 0).
const STYLES: &str = r#"<numFmts count="4"><numFmt numFmtId="164" formatCode="00000"/><numFmt numFmtId="165" formatCode="yyyy-mm-dd"/><numFmt numFmtId="166" formatCode="hh:mm"/><numFmt numFmtId="167" formatCode="00000 000000"/></numFmts><cellXfs count="8"><xf numFmtId="0"/><xf numFmtId="2" applyNumberFormat="1"/><xf numFmtId="49" applyNumberFormat="1"/><xf numFmtId="164" applyNumberFormat="1"/><xf numFmtId="165" applyNumberFormat="1"/><xf numFmtId="166" applyNumberFormat="1"/><xf numFmtId="22" applyNumberFormat="1"/><xf numFmtId="167" applyNumberFormat="1"/></cellXfs>"#;

/// A shared-string cell.
fn ss(r: &str, i: usize) -> String {
    format!(r#"<c r="{r}" t="s"><v>{i}</v></c>"#)
}

/// LibreOffice / Google Sheets / Numbers shapes of the same three contacts.
fn writers() -> Vec<(&'static str, Book)> {
    // LibreOffice: inline strings, no shared strings, a `t="str"` formula result, a dimension
    // of the whole grid, absolute part paths.
    let mut lo = Book::new().sheet(
        "Sheet1",
        &[
            texts(1, &["Name", "Email", "Phone"]),
            row(
                2,
                &[
                    typed("A2", "str", "Ann Lee"),
                    is("B2", "ann@example.com"),
                    num("C2", "447911123456", None),
                ],
            ),
            row(
                3,
                &[
                    is("A3", "Bob Ray"),
                    typed("B3", "str", "bob@example.com"),
                    is("C3", "+44 7911 123457"),
                ],
            ),
            row(4, &[is("A4", "Cy Fox"), is("B4", "cy@example.com")]),
        ]
        .concat(),
    );
    lo.last().dimension = Some("A1:XFD1048576".into());
    lo.absolute = true;
    // Google Sheets / streaming writers: no dimension, no `r=` on rows or cells, a blank row.
    let mut gs = Book::new().sheet(
        "Contacts",
        &[
            texts(0, &["Name", "Email", "Phone"]),
            texts(0, &["Ann Lee", "ann@example.com", "+447911123456"]),
            texts(0, &["Bob Ray", "bob@example.com", "+44 7911 123457"]),
            "<row/>".to_owned(),
            row(0, &[is("", "Cy Fox"), is("", "cy@example.com")]),
        ]
        .concat(),
    );
    gs.last().dimension = None;
    // Numbers: shared strings with rich text runs and a phonetic run; numbers in `E` notation.
    let mut nu = Book::new().sheet(
        "Table 1",
        &[
            row(1, &[ss("A1", 0), ss("B1", 1), ss("C1", 2)]),
            row(
                2,
                &[
                    ss("A2", 3),
                    ss("B2", 4),
                    num("C2", "4.47911123456E+11", None),
                ],
            ),
            row(3, &[ss("A3", 5), ss("B3", 6), ss("C3", 7)]),
            row(4, &[ss("A4", 8), ss("B4", 9)]),
        ]
        .concat(),
    );
    nu.shared = Some(r#"<si><t>Name</t></si><si><r><rPr><b/></rPr><t>Em</t></r><r><t>ail</t></r></si><si><t>Phone</t></si><si><r><t xml:space="preserve">Ann </t></r><r><rPr><i/></rPr><t>Lee</t></r></si><si><t>ann@example.com</t></si><si><t>Bob Ray</t><rPh sb="0" eb="3"><t>ボブ</t></rPh></si><si><t>bob@example.com</t></si><si><t>+44 7911 123457</t></si><si><t>Cy Fox</t></si><si><t>cy@example.com</t></si>"#.into());
    vec![
        ("libreoffice.xlsx", lo),
        ("gsheets.xlsx", gs),
        ("numbers.xlsx", nu),
    ]
}

#[test]
fn parts_from_libreoffice_google_and_numbers_read_as_the_sheet_shows_them() {
    let dir = TempDir::new().unwrap();
    for (name, book) in writers() {
        let p = dir.path().join(name);
        book.save(&p);
        let (h, w, items) = read(&p, &SourceOptions::default());
        assert_eq!(h, ["Name", "Email", "Phone"], "{name}");
        assert_eq!(w, Vec::<String>::new(), "{name}");
        let rows: Vec<Vec<String>> = fields(&items)
            .into_iter()
            .filter(|f| f.len() == 3)
            .collect();
        assert_eq!(rows.len(), 3, "{name}: {rows:?}");
        assert_eq!(rows[0][..2], ["Ann Lee", "ann@example.com"], "{name}");
        assert!(
            rows[0][2].replace(['+', ' '], "") == "447911123456",
            "{name}: {rows:?}"
        );
        assert_eq!(
            rows[1],
            ["Bob Ray", "bob@example.com", "+44 7911 123457"],
            "{name}"
        );
        assert_eq!(rows[2], ["Cy Fox", "cy@example.com", ""], "{name}");
        let (v, s) = validate(dir.path(), &p, MAPPING);
        assert_eq!(v.exit_code, 0, "{name}: {s}");
        assert_eq!(s["outcomes"]["valid"], 3, "{name}: {s}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_from_other_writers_import_into_the_sandbox() {
    for (name, book) in writers() {
        let w = World::plain().await;
        let p = w.path(name);
        book.save(&p);
        let (code, stored) = import(&w, &p, MAPPING).await;
        assert_eq!(code, 0, "{name}");
        assert_eq!(stored.len(), 3, "{name}");
        assert_eq!(stored["ann@example.com"]["name"], "Ann Lee", "{name}");
        assert_eq!(
            stored["ann@example.com"]["phone_number"], "+447911123456",
            "{name}"
        );
        assert_eq!(
            stored["bob@example.com"]["phone_number"], "+447911123457",
            "{name}"
        );
        assert!(stored["cy@example.com"]["phone_number"].is_null(), "{name}");
    }
}

/// Numbers where text was meant: phones in number cells (general, `E` notation, `0.00`, text
/// format, a UK mobile that lost its 0, one shown with its 0 by a digit format), a zip code
/// under `00000` and an identifier stored as a number.
fn numbers_book() -> Book {
    let mut b = Book::new().sheet(
        "Sheet1",
        &[
            texts(1, &["Name", "Email", "Phone", "ID", "Zip"]),
            row(
                2,
                &[
                    is("A2", "Ann"),
                    is("B2", "ann@example.com"),
                    num("C2", "447911123456", None),
                    num("D2", "1001", None),
                    num("E2", "2134", Some(3)),
                ],
            ),
            row(
                3,
                &[
                    is("A3", "Bob"),
                    is("B3", "bob@example.com"),
                    num("C3", "4.47911123457E+11", Some(0)),
                    num("D3", "1002", Some(1)),
                    num("E3", "90210", Some(3)),
                ],
            ),
            row(
                4,
                &[
                    is("A4", "Cy"),
                    is("B4", "cy@example.com"),
                    num("C4", "447911123458", Some(1)),
                    num("D4", "1003", Some(2)),
                    num("E4", "501", Some(3)),
                ],
            ),
            row(
                5,
                &[
                    is("A5", "Di"),
                    is("B5", "di@example.com"),
                    num("C5", "7911123459", None),
                    num("D5", "01004", Some(2)),
                    num("E5", "123456", Some(3)),
                ],
            ),
            row(
                6,
                &[
                    is("A6", "Ed"),
                    is("B6", "ed@example.com"),
                    num("C6", "7911123460", Some(7)),
                ],
            ),
        ]
        .concat(),
    );
    b.styles = Some(STYLES.into());
    b
}

#[test]
fn number_cells_read_as_the_digits_the_sheet_shows() {
    let dir = TempDir::new().unwrap();
    let p = dir.path().join("numbers.xlsx");
    numbers_book().save(&p);
    let (_, _, items) = read(&p, &SourceOptions::default());
    let rows = fields(&items);
    let col = |c: usize| rows.iter().map(|r| r[c].clone()).collect::<Vec<_>>();
    assert_eq!(
        col(2),
        [
            "447911123456",
            "447911123457",
            "447911123458",
            "7911123459",
            "07911 123460"
        ]
    );
    assert_eq!(col(3), ["1001", "1002", "1003", "1004", ""]);
    assert_eq!(col(4), ["02134", "90210", "00501", "123456", ""]);
    // The digit format shows the 0: that cell is text as shown, not a number that lost it.
    let numeric: Vec<bool> = items
        .iter()
        .map(|i| i.as_ref().unwrap().is_numeric(2))
        .collect();
    assert_eq!(numeric, [true, true, true, true, false]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn number_cells_import_as_phones_ids_and_zip_codes_without_loss() {
    let w = World::plain().await;
    let p = w.path("numbers.xlsx");
    numbers_book().save(&p);
    let (code, stored) = import(&w, &p, MAPPING).await;
    assert_eq!(code, 0);
    let got: Vec<(String, Value, Value, Value)> = stored
        .values()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["phone_number"].clone(),
                c["identifier"].clone(),
                c["custom_attributes"]["zip"].clone(),
            )
        })
        .collect();
    let v = |s: &str| Value::String(s.to_owned());
    assert_eq!(
        got,
        [
            ("Ann".into(), v("+447911123456"), v("1001"), v("02134")),
            ("Bob".into(), v("+447911123457"), v("1002"), v("90210")),
            ("Cy".into(), v("+447911123458"), v("1003"), v("00501")),
            ("Di".into(), v("+447911123459"), v("1004"), v("123456")),
            ("Ed".into(), v("+447911123460"), Value::Null, Value::Null),
        ]
    );
}

#[test]
fn a_mobile_that_lost_its_zero_with_no_region_fails_its_field_and_says_why() {
    let dir = TempDir::new().unwrap();
    let p = dir.path().join("numbers.xlsx");
    numbers_book().save(&p);
    let no_region = MAPPING.replace("defaults:\n  phone_region: GB\n", "");
    let (v, s) = validate(dir.path(), &p, &no_region);
    // The numbers with their country code are read; 7911123459 is no number anywhere without a
    // region, and `07911 123460` is a national number: neither is guessed.
    assert_eq!(v.exit_code, 0, "{s}");
    assert_eq!(s["outcomes"]["valid"], 5, "{s}");
    let w: Vec<(u64, String)> = report(&v.run_dir, "warnings.csv")
        .into_iter()
        .map(|(row, code, msg)| {
            if code == "invalid_phone" {
                assert!(msg.contains("no region to read it in"), "{msg}");
                assert!(msg.contains("the row is imported without it"), "{msg}");
            }
            (row, code)
        })
        .collect();
    let lost = "phone_lost_prefix".to_owned();
    let bad = "invalid_phone".to_owned();
    assert_eq!(
        w,
        [
            (2, lost.clone()),
            (3, lost.clone()),
            (4, lost),
            (5, bad.clone()),
            (6, bad)
        ]
    );
}

/// Dates: date, datetime and time cells, a serial date with no date format, a date cell in the
/// name column; `date1904` counts serials from 1904.
fn dates_book(date1904: bool) -> Book {
    // 45356 is 2024-03-05 counted from 1900, 43894 the same day counted from 1904.
    let day = if date1904 { 43894 } else { 45356 };
    let mut b = Book::new().sheet(
        "Sheet1",
        &[
            texts(1, &["Name", "Email", "Born", "Seen"]),
            row(
                2,
                &[
                    is("A2", "Ann"),
                    is("B2", "ann@example.com"),
                    num("C2", &day.to_string(), Some(4)),
                    num("D2", &format!("{day}.6041666667"), Some(6)),
                ],
            ),
            row(
                3,
                &[
                    is("A3", "Bob"),
                    is("B3", "bob@example.com"),
                    num("C3", "45357", None),
                    num("D3", "0.5", Some(5)),
                ],
            ),
            row(
                4,
                &[
                    num("A4", &day.to_string(), Some(4)),
                    is("B4", "cy@example.com"),
                ],
            ),
        ]
        .concat(),
    );
    b.styles = Some(STYLES.into());
    b.date1904 = date1904;
    b
}

#[test]
fn date_cells_read_as_iso_dates_in_both_date_systems() {
    let dir = TempDir::new().unwrap();
    for date1904 in [false, true] {
        let p = dir.path().join(format!("dates-{date1904}.xlsx"));
        dates_book(date1904).save(&p);
        let (_, w, items) = read(&p, &SourceOptions::default());
        assert_eq!(
            fields(&items),
            [
                [
                    "Ann",
                    "ann@example.com",
                    "2024-03-05",
                    "2024-03-05T14:30:00"
                ],
                ["Bob", "bob@example.com", "45357", "12:00:00"],
                ["2024-03-05", "cy@example.com", "", ""],
            ],
            "date1904 {date1904}"
        );
        // A number with no date format cannot be told from a count: in a 1904 workbook a
        // `type: date` column would read it four years early, so the reader says so.
        assert_eq!(
            w.iter().any(|w| w.contains("1904")),
            date1904,
            "date1904 {date1904}: {w:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn date_cells_import_into_date_and_datetime_attributes() {
    let w = World::plain().await;
    let p = w.path("dates.xlsx");
    dates_book(false).save(&p);
    let (code, stored) = import(&w, &p, MAPPING).await;
    assert_eq!(code, 0);
    let ann = &stored["ann@example.com"]["custom_attributes"];
    assert_eq!(ann["born"], "2024-03-05");
    assert_eq!(ann["seen"], "2024-03-05T14:30:00");
    let bob = &stored["bob@example.com"]["custom_attributes"];
    assert_eq!(
        bob["born"], "2024-03-06",
        "a serial with no date format is a date here"
    );
    assert!(
        bob["seen"].is_null(),
        "a time alone is no date and time: {bob}"
    );
    // The sheet shows the date in the name cell: that text is the name, as a CSV would give it.
    assert_eq!(stored["cy@example.com"]["name"], "2024-03-05");
}

/// Error cells, old and new, in read and unread columns, and booleans.
fn errors_book() -> Book {
    let e = |r: &str, v: &str| typed(r, "e", v);
    let b = |r: &str, v: &str| typed(r, "b", v);
    Book::new().sheet(
        "Sheet1",
        &[
            texts(1, &["Name", "Email", "Phone", "Blocked", "Score"]),
            row(
                2,
                &[
                    is("A2", "Ann"),
                    is("B2", "ann@example.com"),
                    e("C2", "#N/A"),
                    b("D2", "1"),
                    e("E2", "#DIV/0!"),
                ],
            ),
            row(
                3,
                &[
                    is("A3", "Bob"),
                    is("B3", "bob@example.com"),
                    is("C3", "+447911123457"),
                    b("D3", "0"),
                    e("E3", "#SPILL!"),
                ],
            ),
            row(4, &[e("A4", "#REF!"), is("B4", "cy@example.com")]),
            row(
                5,
                &[
                    is("A5", "Di"),
                    is("B5", "di@example.com"),
                    e("C5", "#CALC!"),
                    e("E5", "#GETTING_DATA"),
                ],
            ),
            row(
                6,
                &[
                    is("A6", "Ed"),
                    e("B6", "#ERROR!"),
                    is("C6", "+447911123458"),
                ],
            ),
        ]
        .concat(),
    )
}

#[test]
fn error_cells_fail_their_field_naming_row_column_and_value_not_the_file() {
    let dir = TempDir::new().unwrap();
    let p = dir.path().join("errors.xlsx");
    errors_book().save(&p);
    let (v, s) = validate(dir.path(), &p, MAPPING);
    assert_eq!(v.exit_code, 3, "{s}");
    assert_eq!(s["rows_read"], 5, "{s}");
    assert_eq!(s["outcomes"]["valid"], 3, "{s}");
    assert_eq!(s["outcomes"]["invalid"], 2, "{s}");
    let f = report(&v.run_dir, "failures.csv");
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!((f[0].0, f[0].1.as_str()), (4, "cell_error"), "{f:?}");
    assert!(
        f[0].2.contains("\"Name\"") && f[0].2.contains("#REF!"),
        "{f:?}"
    );
    assert_eq!((f[1].0, f[1].1.as_str()), (6, "cell_error"), "{f:?}");
    assert!(
        f[1].2.contains("\"Email\"") && f[1].2.contains("#ERROR!"),
        "{f:?}"
    );
    let w: Vec<(u64, String, bool)> = report(&v.run_dir, "warnings.csv")
        .into_iter()
        .map(|(row, code, msg)| (row, code, msg.contains("\"Phone\"")))
        .collect();
    assert_eq!(
        w,
        [
            (2, "cell_error".to_owned(), true),
            (5, "cell_error".to_owned(), true)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_cells_import_the_rest_of_their_row_and_booleans_are_booleans() {
    let w = World::plain().await;
    let p = w.path("errors.xlsx");
    errors_book().save(&p);
    let (code, stored) = import(&w, &p, MAPPING).await;
    assert_eq!(code, 3);
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        ["ann@example.com", "bob@example.com", "di@example.com"]
    );
    assert!(stored["ann@example.com"]["phone_number"].is_null());
    assert_eq!(stored["ann@example.com"]["blocked"], true);
    assert_eq!(stored["bob@example.com"]["blocked"], false);
    assert_eq!(stored["bob@example.com"]["phone_number"], "+447911123457");
    assert_eq!(stored["di@example.com"]["name"], "Di");
}

#[test]
fn a_new_error_in_a_cell_without_a_reference_stops_the_read_naming_the_row() {
    let dir = TempDir::new().unwrap();
    let p = dir.path().join("noref.xlsx");
    let e = |v: &str| typed("", "e", v);
    Book::new()
        .sheet(
            "Sheet1",
            &[
                texts(0, &["Name", "Email", "Score"]),
                row(0, &[is("", "Ann"), is("", "ann@example.com"), e("#N/A")]),
                row(0, &[is("", "Bob"), e("#SPILL!"), is("", "9")]),
            ]
            .concat(),
        )
        .save(&p);
    let mut src = open(&p, &SourceOptions::default()).unwrap();
    let items: Vec<Item> = src.by_ref().collect();
    assert_eq!(items.len(), 1, "{:?}", fields(&items));
    let err = src.take_error().expect("a read error");
    assert_eq!(err.at, 3);
    assert!(
        err.cause.contains("#SPILL!") && err.cause.contains("column cannot be told"),
        "{err}"
    );
}

/// A workbook as a colleague leaves it: a hidden sheet of old contacts first, an instructions
/// sheet and a pivot before the data, a title merged over the header on row 3, and formatting
/// (empty styled cells and rows) past the data.
fn structured_book() -> Book {
    let header = texts(3, &["Name", "Email", "Phone"]);
    let mut b = Book::new()
        .sheet(
            "Old",
            &[texts(1, &["Name", "Email", "Phone"]), texts(2, &["Zed", "zed@example.com", ""])].concat(),
        )
        .sheet(
            "Instructions",
            &[texts(1, &["How to fill this in"]), texts(2, &["One contact a row; Email is required."])].concat(),
        )
        .sheet(
            "Pivot",
            &[texts(1, &["Row Labels", "Count of Email"]), texts(2, &["GB", "2"])].concat(),
        )
        .sheet(
            "Contacts",
            &[
                row(1, &[is("A1", "Contacts export"), num("B1", "", Some(1)), num("C1", "", Some(1))]),
                header,
                row(4, &[is("A4", "Ann"), is("B4", "ann@example.com"), is("C4", "+447911123456"), num("D4", "", Some(1))]),
                row(5, &[is("A5", "Bob"), is("B5", "bob@example.com"), num("C5", "", Some(1))]),
                r#"<row r="6" s="1" customFormat="1"><c r="A6" s="1"/><c r="B6" s="1"/></row>"#.to_owned(),
                row(7, &[is("A7", "Cy"), is("B7", "cy@example.com")]),
                (8..400)
                    .map(|n| format!(r#"<row r="{n}" s="1" customFormat="1"><c r="A{n}" s="1"/><c r="E{n}" s="1"/></row>"#))
                    .collect(),
            ]
            .concat(),
        );
    b.sheets[0].hidden = true;
    b.last().tail = r#"<mergeCells count="1"><mergeCell ref="A1:C1"/></mergeCells>"#.into();
    b.last().dimension = Some("A1:E399".into());
    b.styles = Some(STYLES.into());
    b
}

#[test]
fn hidden_and_decoy_sheets_titles_and_formatting_are_passed_over_with_a_word() {
    let dir = TempDir::new().unwrap();
    let p = dir.path().join("structured.xlsx");
    structured_book().save(&p);
    let (v, s) = validate(dir.path(), &p, MAPPING);
    assert_eq!(v.exit_code, 0, "{s}");
    // Three contacts and the blank row between them; the 392 formatted rows after the data
    // are not rows.
    assert_eq!(s["rows_read"], 4, "{s}");
    assert_eq!(s["outcomes"]["valid"], 3, "{s}");
    assert_eq!(s["outcomes"]["skipped"], 1, "{s}");
    let warnings = s["header_warnings"].to_string();
    for said in [
        "sheet \\\"Old\\\" is hidden and is not read",
        "sheet \\\"Instructions\\\" skipped",
        "sheet \\\"Pivot\\\" skipped",
        "the header is on row 3",
    ] {
        assert!(warnings.contains(said), "{said}: {warnings}");
    }
    // With no mapping columns to search for, the first visible sheet is read.
    let (h, w, _) = read(&p, &SourceOptions::default());
    assert_eq!(h, ["How to fill this in"]);
    assert!(w[0].contains("\"Old\" is hidden"), "{w:?}");
    // Named, the hidden sheet is read.
    let opts = SourceOptions {
        sheet: Some("Old".into()),
        ..SourceOptions::default()
    };
    let (h, w, items) = read(&p, &opts);
    assert_eq!((h.len(), w.len(), items.len()), (3, 0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_structured_workbook_and_an_xlsm_import_the_data_sheet_only() {
    let w = World::plain().await;
    for name in ["structured.xlsx", "structured.xlsm"] {
        let p = w.path(name);
        structured_book().save(&p);
        let (code, stored) = import(&w, &p, MAPPING).await;
        assert_eq!(code, 0, "{name}");
        assert_eq!(
            stored.keys().collect::<Vec<_>>(),
            ["ann@example.com", "bob@example.com", "cy@example.com"],
            "{name}"
        );
    }
}

/// An OpenDocument spreadsheet as LibreOffice saves it: a title row, repeated empty cells and
/// rows, a phone as a float, a date cell.
fn ods(path: &Path) {
    let cell = |t: &str| {
        format!(
            r#"<table:table-cell office:value-type="string"><text:p>{}</text:p></table:table-cell>"#,
            esc(t)
        )
    };
    let row = |cells: &[String]| format!("<table:table-row>{}</table:table-row>", cells.concat());
    let gap = r#"<table:table-cell table:number-columns-repeated="2"/>"#.to_owned();
    let rows = [
        row(&[cell("Contacts for the spring mailing")]),
        row(&[cell("Name"), cell("Email"), cell("Phone"), cell("Born")]),
        row(&[
            cell("Ann Lee"),
            cell("ann@example.com"),
            r#"<table:table-cell office:value-type="float" office:value="447911123456"><text:p>447911123456</text:p></table:table-cell>"#.to_owned(),
            r#"<table:table-cell office:value-type="date" office:date-value="2024-03-05"><text:p>05/03/24</text:p></table:table-cell>"#.to_owned(),
        ]),
        r#"<table:table-row table:number-rows-repeated="2"><table:table-cell table:number-columns-repeated="4"/></table:table-row>"#.to_owned(),
        row(&[cell("Bob Ray"), cell("bob@example.com"), cell("+44 7911 123457")]),
        row(&[cell("Cy Fox"), cell("cy@example.com"), gap]),
    ]
    .concat();
    let content = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.3"><office:body><office:spreadsheet><table:table table:name="Readme"><table:table-row><table:table-cell office:value-type="string"><text:p>Read me first</text:p></table:table-cell></table:table-row></table:table><table:table table:name="Contacts">{rows}</table:table></office:spreadsheet></office:body></office:document-content>"#
    );
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    z.start_file("mimetype", stored).unwrap();
    z.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
        .unwrap();
    z.start_file(
        "META-INF/manifest.xml",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    z.write_all(br#"<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#).unwrap();
    z.start_file("content.xml", zip::write::SimpleFileOptions::default())
        .unwrap();
    z.write_all(content.as_bytes()).unwrap();
    z.finish().unwrap();
}

#[test]
fn an_ods_file_is_read_like_a_workbook() {
    let dir = TempDir::new().unwrap();
    let p = dir.path().join("contacts.ods");
    ods(&p);
    let opts = SourceOptions {
        header_columns: vec!["Name".into(), "Email".into()],
        ..SourceOptions::default()
    };
    let (h, w, items) = read(&p, &opts);
    assert_eq!(h, ["Name", "Email", "Phone", "Born"]);
    assert!(w[0].contains("sheet \"Readme\" skipped"), "{w:?}");
    assert!(w[1].contains("the header is on row 2"), "{w:?}");
    assert_eq!(
        fields(&items),
        [
            vec!["Ann Lee", "ann@example.com", "447911123456", "2024-03-05"],
            vec!["BlankRow: blank row"],
            vec!["BlankRow: blank row"],
            vec!["Bob Ray", "bob@example.com", "+44 7911 123457", ""],
            vec!["Cy Fox", "cy@example.com", "", ""],
        ]
    );
    assert!(items[0].as_ref().unwrap().is_numeric(2));
    let (v, s) = validate(dir.path(), &p, MAPPING);
    assert_eq!(v.exit_code, 0, "{s}");
    assert_eq!(s["outcomes"]["valid"], 3, "{s}");
    let src = open(&p, &opts).unwrap();
    assert_eq!(
        src.describe(),
        "ODS, sheet \"Contacts\" (2 of 2), header on row 2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ods_file_imports_into_the_sandbox() {
    let w = World::plain().await;
    let p = w.path("contacts.ods");
    ods(&p);
    let (code, stored) = import(&w, &p, MAPPING).await;
    assert_eq!(code, 0);
    assert_eq!(stored.len(), 3);
    assert_eq!(stored["ann@example.com"]["phone_number"], "+447911123456");
    assert_eq!(
        stored["ann@example.com"]["custom_attributes"]["born"],
        "2024-03-05"
    );
    assert_eq!(stored["bob@example.com"]["phone_number"], "+447911123457");
}

#[test]
fn an_xls_that_is_a_web_page_or_xml_is_refused_saying_what_it_is() {
    let dir = TempDir::new().unwrap();
    for (name, body, what) in [
        (
            "report.xls",
            "\u{feff}<html><head><meta charset=\"utf-8\"></head><body><table><tr><td>Name</td><td>Email</td></tr></table></body></html>",
            "a web page (an HTML table)",
        ),
        (
            "export.xls",
            "<?xml version=\"1.0\"?>\n<Workbook xmlns=\"urn:schemas-microsoft-com:office:spreadsheet\"><Worksheet ss:Name=\"Sheet1\"/></Workbook>",
            "an XML Spreadsheet 2003 file",
        ),
    ] {
        let p = write(dir.path(), name, body);
        let err = open(&p, &SourceOptions::default())
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains(what) && err.contains("save it as .xlsx or .csv"),
            "{err}"
        );
    }
    // A file that is no workbook at all names the format it was read as.
    let p = write(dir.path(), "broken.xls", "not a workbook");
    let err = open(&p, &SourceOptions::default())
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("cannot read as an XLS workbook"), "{err}");
    // Apple Numbers files stay refused: nothing here reads them.
    let p = write(dir.path(), "c.numbers", "x");
    let err = open(&p, &SourceOptions::default())
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains(".numbers files are not supported"), "{err}");
}

/// A BIFF8 record.
fn rec(typ: u16, data: &[u8]) -> Vec<u8> {
    let mut r = typ.to_le_bytes().to_vec();
    r.extend((data.len() as u16).to_le_bytes());
    r.extend(data);
    r
}

/// An Excel 97–2003 workbook (`.xls`, BIFF8 in a compound file) with one sheet of `rows`;
/// a cell is text, or a number when it parses as one.
fn xls(path: &Path, sheet: &str, rows: &[&[&str]]) {
    let bof = |dt: u16| {
        let mut d = 0x0600u16.to_le_bytes().to_vec();
        d.extend(dt.to_le_bytes());
        d.extend([0xBB, 0x0D, 0xCC, 0x07, 0, 0, 0, 0, 6, 0, 0, 0]);
        rec(0x0809, &d)
    };
    let mut cells = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            let mut d = (r as u16).to_le_bytes().to_vec();
            d.extend((c as u16).to_le_bytes());
            d.extend(0u16.to_le_bytes());
            match v.parse::<f64>() {
                Ok(n) => {
                    d.extend(n.to_le_bytes());
                    cells.extend(rec(0x0203, &d));
                }
                Err(_) => {
                    d.extend((v.len() as u16).to_le_bytes());
                    d.push(0);
                    d.extend(v.as_bytes());
                    cells.extend(rec(0x0204, &d));
                }
            }
        }
    }
    let sheet_rec = |at: u32| {
        let mut d = at.to_le_bytes().to_vec();
        d.extend([0, 0, sheet.len() as u8, 0]);
        d.extend(sheet.as_bytes());
        rec(0x0085, &d)
    };
    let globals_len = (bof(5).len() + sheet_rec(0).len() + 4) as u32;
    let mut wb = [bof(5), sheet_rec(globals_len), rec(0x000A, &[])].concat();
    wb.extend([bof(0x10), cells, rec(0x000A, &[])].concat());
    std::fs::write(path, compound_file(wb)).unwrap();
}

/// A compound file (version 3, 512-byte sectors) holding one stream, `Workbook`: the header,
/// one FAT sector, one directory sector, then the stream.
fn compound_file(mut wb: Vec<u8>) -> Vec<u8> {
    // A stream under 4096 bytes would live in the mini stream: pad past it.
    wb.resize(wb.len().max(4096).next_multiple_of(512), 0);
    let n = (wb.len() / 512) as u32;
    const END: u32 = 0xFFFF_FFFE;
    let mut head = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    head.extend([0u8; 16]);
    for v in [0x003Eu16, 3, 0xFFFE, 9, 6, 0, 0, 0] {
        head.extend(v.to_le_bytes());
    }
    // Directory sectors (0 in v3), FAT sectors, first directory sector, transaction, mini
    // cutoff, first mini FAT, mini FAT sectors, first DIFAT, DIFAT sectors, DIFAT[0].
    for v in [0u32, 1, 1, 0, 4096, END, 0, END, 0, 0] {
        head.extend(v.to_le_bytes());
    }
    head.resize(512, 0xFF);
    let mut fat: Vec<u32> = vec![0xFFFF_FFFD, END];
    fat.extend((0..n).map(|i| if i + 1 == n { END } else { 3 + i }));
    fat.resize(128, 0xFFFF_FFFF);
    let entry = |name: &str, typ: u8, child: u32, start: u32, size: u32| {
        let mut e: Vec<u8> = name
            .encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect();
        let len = e.len() as u16;
        e.resize(64, 0);
        e.extend(len.to_le_bytes());
        e.extend([typ, 1]);
        for v in [0xFFFF_FFFFu32, 0xFFFF_FFFF, child] {
            e.extend(v.to_le_bytes());
        }
        e.resize(116, 0);
        e.extend(start.to_le_bytes());
        e.extend(size.to_le_bytes());
        e.extend(0u32.to_le_bytes());
        e
    };
    let mut dir = [
        entry("Root Entry", 5, 1, END, 0),
        entry("Workbook", 2, 0xFFFF_FFFF, 2, wb.len() as u32),
    ]
    .concat();
    for _ in 0..2 {
        dir.extend(entry("", 0, 0xFFFF_FFFF, 0, 0));
    }
    let fat: Vec<u8> = fat.iter().flat_map(|v| v.to_le_bytes()).collect();
    [head, fat, dir, wb].concat()
}

#[test]
fn an_xls_file_is_read_like_a_workbook() {
    let dir = TempDir::new().unwrap();
    let p = dir.path().join("legacy.xls");
    xls(
        &p,
        "Contacts",
        &[
            &["Name", "Email", "Phone"],
            &["Ann Lee", "ann@example.com", "447911123456"],
            &["Bob Ray", "bob@example.com", "+44 7911 123457"],
        ],
    );
    let (h, _, items) = read(&p, &SourceOptions::default());
    assert_eq!(h, ["Name", "Email", "Phone"]);
    assert_eq!(
        fields(&items),
        [
            ["Ann Lee", "ann@example.com", "447911123456"],
            ["Bob Ray", "bob@example.com", "+44 7911 123457"],
        ]
    );
    let (v, s) = validate(dir.path(), &p, MAPPING);
    assert_eq!(v.exit_code, 0, "{s}");
    assert_eq!(s["outcomes"]["valid"], 2, "{s}");
}

#[test]
fn a_row_with_an_error_cell_in_an_unread_column_still_reads_its_phone_number_cell() {
    let dir = TempDir::new().unwrap();
    let p = dir.path().join("mixed.xlsx");
    Book::new()
        .sheet(
            "Sheet1",
            &[
                texts(1, &["Name", "Email", "Phone", "Score"]),
                row(
                    2,
                    &[
                        is("A2", "Ann"),
                        is("B2", "ann@example.com"),
                        num("C2", "447911123456", None),
                        typed("D2", "e", "#DIV/0!"),
                    ],
                ),
            ]
            .concat(),
        )
        .save(&p);
    let (v, s) = validate(dir.path(), &p, MAPPING);
    let w = report(&v.run_dir, "warnings.csv");
    assert_eq!(v.exit_code, 0, "{s}");
    assert_eq!(s["outcomes"]["valid"], 1, "{s}");
    assert!(w.iter().all(|x| x.1 != "invalid_phone"), "{w:?}");
}

#[test]
fn a_header_merged_over_two_columns_names_the_first_and_the_second_is_reported() {
    // "Phone" merged over C1:D1 with a number in each column below: the second column has no
    // name of its own, so a value there is a `ragged_row` naming the cell, not a silent loss.
    let dir = TempDir::new().unwrap();
    let p = dir.path().join("merged.xlsx");
    let mut b = Book::new().sheet(
        "Sheet1",
        &[
            row(
                1,
                &[
                    is("A1", "Name"),
                    is("B1", "Email"),
                    is("C1", "Phone"),
                    num("D1", "", Some(1)),
                ],
            ),
            row(
                2,
                &[
                    is("A2", "Ann"),
                    is("B2", "ann@example.com"),
                    is("C2", "+447911123456"),
                ],
            ),
            row(
                3,
                &[
                    is("A3", "Bob"),
                    is("B3", "bob@example.com"),
                    is("C3", "+447911123457"),
                    is("D3", "+447911123458"),
                ],
            ),
        ]
        .concat(),
    );
    b.last().tail = r#"<mergeCells count="1"><mergeCell ref="C1:D1"/></mergeCells>"#.into();
    b.styles = Some(STYLES.into());
    b.save(&p);
    let (v, s) = validate(dir.path(), &p, MAPPING);
    assert_eq!(v.exit_code, 3, "{s}");
    let f = report(&v.run_dir, "failures.csv");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!((f[0].0, f[0].1.as_str()), (3, "ragged_row"));
    assert!(f[0].2.contains("cell D3 holds \"+447911123458\""), "{f:?}");
}
