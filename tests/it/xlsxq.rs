//! Spreadsheets from writers other than Excel and rust_xlsxwriter. Each fixture is a ZIP of XML
//! parts written here by hand, in the shape LibreOffice, Google Sheets, Apple Numbers and
//! streaming writers produce: inline strings, no shared strings, rich text runs, `t="str"`
//! formula results, lying or missing `dimension`s, rows and cells without `r=`, absolute part
//! paths, the 1904 date system, number cells holding phones and zip codes, error cells, hidden
//! and decoy sheets. Each is read through the source, `validate` and `import --sandbox`.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use doto_bulk::cmd::import::{Args as ImportArgs, run_import};
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

    fn save(&self, path: &Path) {
        let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
        let mut put = |name: &str, body: &str| {
            z.start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            z.write_all(body.as_bytes()).unwrap();
        };
        let target = |t: &str| {
            if self.absolute {
                format!("/xl/{t}")
            } else {
                t.to_owned()
            }
        };
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
                target(&format!("worksheets/sheet{n}.xml"))
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
                target("sharedStrings.xml")
            ));
        }
        if self.styles.is_some() {
            types.push_str(r#"<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>"#);
            rels.push_str(&format!(
                r#"<Relationship Id="rIdT" Type="{RNS}/styles" Target="{}"/>"#,
                target("styles.xml")
            ));
        }
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
                if self.absolute { "/xl/workbook.xml" } else { "xl/workbook.xml" }
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
    format!(
        r#"<c{} t="{t}"><f>A1</f><v>{}</v></c>"#,
        at(r),
        esc(v)
    )
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
    let (row, code, msg) = (pos("_row"), pos("_error_code"), pos("_error_message"));
    r.records()
        .map(|x| {
            let x = x.unwrap();
            (x[row].parse().unwrap(), x[code].to_owned(), x[msg].to_owned())
        })
        .collect()
}

/// `import --sandbox` of `file` with `mapping`: the exit code and the stored contacts by email.
async fn import(w: &World, file: &Path, mapping: &str) -> (u8, std::collections::BTreeMap<String, Value>) {
    let map = w.write("m.yaml", mapping);
    let mut args = ImportArgs::new(file, &map);
    args.out = Some(w.path(&format!(
        "run-{}",
        file.file_name().unwrap().to_string_lossy()
    )));
    let run = run_import(&args, w.config(), true, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    (run.exit_code, w.by_email())
}

const MAPPING: &str = "version: 1\ndefaults:\n  phone_region: GB\nfields:\n  name: Name\n  email: Email\n  phone_number: { from: Phone, optional: true }\n";

const STYLES: &str = r#"<numFmts count="3"><numFmt numFmtId="164" formatCode="00000"/><numFmt numFmtId="165" formatCode="yyyy-mm-dd"/><numFmt numFmtId="166" formatCode="hh:mm"/></numFmts><cellXfs count="7"><xf numFmtId="0"/><xf numFmtId="2" applyNumberFormat="1"/><xf numFmtId="49" applyNumberFormat="1"/><xf numFmtId="164" applyNumberFormat="1"/><xf numFmtId="165" applyNumberFormat="1"/><xf numFmtId="166" applyNumberFormat="1"/><xf numFmtId="22" applyNumberFormat="1"/></cellXfs>"#;

#[test]
fn probe() {
    let dir = TempDir::new().unwrap();
    let mut cases: Vec<(&str, Book)> = vec![
        (
            "errs.xlsx",
            Book::new().sheet(
                "Sheet1",
                &[
                    texts(1, &["Name", "Email", "Phone"]),
                    row(3, &[is("A3", "Bob"), is("B3", "bob@example.com"), typed("C3", "e", "#N/A")]),
                    row(4, &[is("A4", "Cy"), is("B4", "cy@example.com"), typed("C4", "str", "07911 123456")]),
                    row(5, &[is("A5", "Di"), is("B5", "di@example.com"), typed("C5", "b", "1")]),
                    row(6, &[typed("A6", "str", "Ed &amp; Flo"), is("B6", "ed@example.com"), typed("C6", "e", "#REF!")]),
                ]
                .concat(),
            ),
        ),
        (
            "sst.xlsx",
            Book::new().sheet(
                "Sheet1",
                &[
                    row(1, &[r#"<c r="A1" t="s"><v>0</v></c>"#.into(), r#"<c r="B1" t="s"><v>1</v></c>"#.into(), r#"<c r="C1" t="s"><v>2</v></c>"#.into()]),
                    row(2, &[r#"<c r="A2" t="s"><v>3</v></c>"#.into(), r#"<c r="B2" t="s"><v>4</v></c>"#.into(), num("C2", "7911123456", Some(0))]),
                    row(3, &[r#"<c r="A3" t="s"><v>5</v></c>"#.into(), r#"<c r="B3" t="s"><v>6</v></c>"#.into(), num("C3", "447911123456", Some(1))]),
                    row(4, &[r#"<c r="A4" t="s"><v>7</v></c>"#.into(), r#"<c r="B4" t="s"><v>8</v></c>"#.into(), num("C4", "4.47911123456E+11", Some(2))]),
                ]
                .concat(),
            ),
        ),
        (
            "dates.xlsx",
            Book::new().sheet(
                "Sheet1",
                &[
                    texts(1, &["Name", "Email", "Phone", "Zip", "Born", "At", "Seen"]),
                    row(2, &[num("A2", "45356", Some(4)), is("B2", "ann@example.com"), is("C2", ""), num("D2", "2134", Some(3)), num("E2", "45356", Some(4)), num("F2", "0.5", Some(5)), num("G2", "45356.6041666667", Some(6))]),
                ]
                .concat(),
            ),
        ),
    ];
    cases[1].1.shared = Some(r#"<si><t>Name</t></si><si><r><rPr><b/></rPr><t>Em</t></r><r><t xml:space="preserve">ail</t></r></si><si><t>Phone</t></si><si><r><t>Ann </t></r><r><rPr><i/></rPr><t>Lee</t></r></si><si><t>ann@example.com</t></si><si><t>Bob</t><rPh sb="0" eb="1"><t>ボブ</t></rPh></si><si><t>bob@example.com</t></si><si><t>Cy</t></si><si><t>cy@example.com</t></si>"#.into());
    cases[1].1.styles = Some(STYLES.into());
    cases[1].1.absolute = true;
    cases[1].1.last().dimension = Some("A1:XFD1048576".into());
    cases[2].1.styles = Some(STYLES.into());
    let mut b1904 = Book::new().sheet("S", &[texts(1, &["Name", "Email", "Born"]), row(2, &[is("A2", "Ann"), is("B2", "a@example.com"), num("C2", "43894", Some(4))])].concat());
    b1904.date1904 = true;
    b1904.styles = Some(STYLES.into());
    b1904.last().dimension = None;
    cases.push(("d1904.xlsx", b1904));
    for (name, b) in cases {
        let p = dir.path().join(name);
        b.save(&p);
        let r = std::panic::catch_unwind(|| read(&p, &SourceOptions::default()));
        match r {
            Ok((h, w, items)) => eprintln!("{name}: {h:?} {w:?} {:?}", fields(&items)),
            Err(_) => eprintln!("{name}: panicked"),
        }
    }
}
