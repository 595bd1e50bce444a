//! Bounded resources benchmark (issue 14, item 3): `validate` on a ~1 MB XLSX holding one 1 GiB
//! cell (inline in the sheet, and in the shared strings), and on CSV headers of 25,000 to 100,000
//! columns. Does nothing unless run with `--bench`:
//!
//! ```text
//! cargo bench --bench source_limits         # figures go to benches/README.md, "Bounded sources"
//! ```
//!
//! Each measurement runs `doto_bulk::cmd::validate::run_validate` in a child process (this binary
//! again, `--bench child FILE`) so its peak RSS (`VmHWM`) and wall time are its own.
#[path = "common/rss.rs"]
mod rss;
use rss::peak_rss_kib;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

const MAPPING: &str = "version: 1\nmatch:\n  on: [email]\nfields:\n  name: Name\n  email: Email\n";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return; // `cargo test --all-targets` runs benches without `--bench`: do nothing.
    }
    if let Some(i) = args.iter().position(|a| a == "child") {
        child(Path::new(&args[i + 1]));
        return;
    }
    let dir = tempfile::TempDir::new().unwrap();
    let d = dir.path();
    std::fs::write(d.join("m.yaml"), MAPPING).unwrap();
    println!("| file | on disk | wall s | peak RSS (MiB) | exit | outcome |");
    println!("|---|---:|---:|---:|---:|---|");
    for (size, label) in [(1u64 << 30, "1 GiB"), (10 << 20, "10 MiB")] {
        for (inline, name) in [(true, "inline"), (false, "shared")] {
            let p = d.join(format!("bomb-{size}-{name}.xlsx"));
            let t = Instant::now();
            bomb_xlsx(&p, size, inline);
            eprintln!("built {} in {:.1}s", p.display(), t.elapsed().as_secs_f64());
            measure(&format!("XLSX, one {label} cell ({name} string)"), &p);
        }
    }
    for cols in [25_000, 50_000, 100_000] {
        let p = d.join(format!("wide-{cols}.csv"));
        wide_csv(&p, cols);
        measure(&format!("CSV, header of {cols} columns, 1 row"), &p);
    }
}

fn measure(label: &str, file: &Path) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--bench", "child"])
        .arg(file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |k: &str| {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(k))
            .unwrap_or_else(|| {
                panic!(
                    "{label}: no {k} in {text:?} {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
            .to_owned()
    };
    let size = std::fs::metadata(file).unwrap().len();
    let hwm: f64 = get("hwm_kib=").parse().unwrap();
    let path = format!("{}: ", file.display());
    let outcome = text
        .split_once("outcome=")
        .map_or(String::new(), |(_, o)| o.trim().replace(&path, ""));
    println!(
        "| {label} | {:.2} MB | {} | {:.1} | {} | {} |",
        size as f64 / 1e6,
        get("secs="),
        hwm / 1024.0,
        get("exit="),
        outcome
    );
}

/// Validate `file` with [`MAPPING`]; print the wall time, peak RSS, exit code and what happened.
fn child(file: &Path) {
    let dir = file.parent().unwrap();
    let out = dir.join(format!(
        "run-{}",
        file.file_stem().unwrap().to_string_lossy()
    ));
    let args = doto_bulk::cmd::validate::Args::new(file, &dir.join("m.yaml"), Some(&out));
    let t = Instant::now();
    let r = doto_bulk::cmd::validate::run_validate(&args, true, &AtomicBool::new(false));
    let secs = t.elapsed().as_secs_f64();
    let (exit, outcome) = match r {
        Ok(v) => {
            let s = &v.summary;
            let out = format!("rows read {}, {:?}", s.rows_read, s.failures_by_code);
            (v.exit_code, out)
        }
        Err(e) => (1, format!("refused: {e:#}")),
    };
    println!(
        "secs={secs:.3} hwm_kib={} exit={exit} outcome={outcome}",
        peak_rss_kib()
    );
}

/// A minimal workbook (Name, Email, Notes; 2 rows) whose first note is `big` bytes of `a`,
/// inline in the sheet or in the shared strings, written part by part with the `zip` crate.
fn bomb_xlsx(path: &Path, big: u64, inline: bool) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default().large_file(big > u32::MAX as u64 / 2);
    let small = zip::write::SimpleFileOptions::default();
    let ns = "http://schemas.openxmlformats.org";
    let parts = [
        (
            "[Content_Types].xml",
            format!(
                r#"<?xml version="1.0"?><Types xmlns="{ns}/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#
            ),
        ),
        (
            "_rels/.rels",
            format!(
                r#"<?xml version="1.0"?><Relationships xmlns="{ns}/package/2006/relationships"><Relationship Id="rId1" Type="{ns}/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#
            ),
        ),
        (
            "xl/workbook.xml",
            format!(
                r#"<?xml version="1.0"?><workbook xmlns="{ns}/spreadsheetml/2006/main" xmlns:r="{ns}/officeDocument/2006/relationships"><sheets><sheet name="Contacts" sheetId="1" r:id="rId1"/></sheets></workbook>"#
            ),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            format!(
                r#"<?xml version="1.0"?><Relationships xmlns="{ns}/package/2006/relationships"><Relationship Id="rId1" Type="{ns}/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="{ns}/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#
            ),
        ),
    ];
    for (name, body) in parts {
        z.start_file(name, small).unwrap();
        z.write_all(body.as_bytes()).unwrap();
    }
    let row = |r: u32, note: &str| {
        format!(
            r#"<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>P{r}</t></is></c><c r="B{r}" t="inlineStr"><is><t>p{r}@example.com</t></is></c>{note}</row>"#
        )
    };
    let head = format!(
        r#"<?xml version="1.0"?><worksheet xmlns="{ns}/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>Name</t></is></c><c r="B1" t="inlineStr"><is><t>Email</t></is></c><c r="C1" t="inlineStr"><is><t>Notes</t></is></c></row>"#
    );
    let tail = format!("{}</sheetData></worksheet>", row(3, ""));
    z.start_file("xl/worksheets/sheet1.xml", opts).unwrap();
    z.write_all(head.as_bytes()).unwrap();
    if inline {
        let open = row(2, r#"<c r="C2" t="inlineStr"><is><t>"#);
        z.write_all(open.trim_end_matches("</row>").as_bytes())
            .unwrap();
        write_as(&mut z, big);
        z.write_all(b"</t></is></c></row>").unwrap();
    } else {
        z.write_all(row(2, r#"<c r="C2" t="s"><v>0</v></c>"#).as_bytes())
            .unwrap();
    }
    z.write_all(tail.as_bytes()).unwrap();
    z.start_file("xl/sharedStrings.xml", if inline { small } else { opts })
        .unwrap();
    z.write_all(format!(r#"<?xml version="1.0"?><sst xmlns="{ns}/spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>"#).as_bytes())
        .unwrap();
    write_as(&mut z, if inline { 1 } else { big });
    z.write_all(b"</t></si></sst>").unwrap();
    z.finish().unwrap();
}

/// `n` bytes of `a`.
fn write_as(w: &mut impl std::io::Write, n: u64) {
    std::io::copy(&mut std::io::Read::take(std::io::repeat(b'a'), n), w).unwrap();
}

/// A CSV with `Name,Email` and `cols` more columns, and one row.
fn wide_csv(path: &Path, cols: usize) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    w.write_all(b"Name,Email").unwrap();
    for i in 0..cols {
        write!(w, ",col{i}").unwrap();
    }
    w.write_all(b"\nAnn,a@example.com").unwrap();
    for _ in 0..cols {
        w.write_all(b",x").unwrap();
    }
    w.write_all(b"\n").unwrap();
    w.flush().unwrap();
}
