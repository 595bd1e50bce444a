//! Sources benchmark: speed and peak RSS of the CSV and XLSX sources against baselines run in the
//! same process tree, on generated contact files. Does nothing unless run with `--bench`:
//!
//! ```text
//! cargo bench --bench source_mem            # figures go to benches/README.md, "Sources"
//! SOURCE_MEM_ROWS=1000000 SOURCE_MEM_XLSX_ROWS=200000 cargo bench --bench source_mem
//! ```
//!
//! Each measurement runs in a child process (this binary again, `--bench child MODE FILE`) so its
//! peak RSS (`VmHWM`) is its own. Modes:
//! - `csv-floor`: the `csv` crate reading `ByteRecord`s and allocating nothing: the floor.
//! - `csv-strings`: the same plus one owned `String` per field: what the `Record` type costs.
//! - `csv-source`: `doto_bulk::source::open`, every row into a `Record` (one `String` per field).
//! - `xlsx-range`: calamine's `worksheet_range` (whole sheet in memory), cells to strings.
//! - `xlsx-cells`: `doto_bulk::source::open` on the workbook (calamine's cell reader, streaming).
#[path = "common/rss.rs"]
mod rss;
use rss::peak_rss_kib;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return; // `cargo test --all-targets` runs benches without `--bench`: do nothing.
    }
    if let Some(i) = args.iter().position(|a| a == "child") {
        child(&args[i + 1], Path::new(&args[i + 2]));
        return;
    }
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let big = env("SOURCE_MEM_ROWS", 1_000_000);
    let xlsx_rows = env("SOURCE_MEM_XLSX_ROWS", 200_000);
    let tmp = tempfile::TempDir::new().unwrap();
    // SOURCE_MEM_DIR keeps the generated files (for profiling a child by hand).
    let dir_path =
        std::env::var_os("SOURCE_MEM_DIR").map_or_else(|| tmp.path().to_owned(), PathBuf::from);

    let small_csv = dir_path.join("contacts_100k.csv");
    let big_csv = dir_path.join(format!("contacts_{big}.csv"));
    let xlsx = dir_path.join(format!("contacts_{xlsx_rows}.xlsx"));
    let t = Instant::now();
    write_csv(&small_csv, 100_000);
    write_csv(&big_csv, big);
    write_xlsx(&xlsx, xlsx_rows);
    eprintln!("generated files in {:.1}s", t.elapsed().as_secs_f64());

    println!("| file | reader | rows | wall s | CPU s | rows/s (wall) | peak RSS (MiB) |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    let mut floor_rate = 0.0;
    let mut ours_rate = 0.0;
    let mut strings_rate = 0.0;
    for (file, label) in [(&small_csv, "CSV 100k"), (&big_csv, "CSV big")] {
        for mode in ["csv-floor", "csv-strings", "csv-source"] {
            let m = run_child(mode, file);
            print_row(label, mode, &m);
            if file == &big_csv {
                match mode {
                    "csv-floor" => floor_rate = m.rate(),
                    "csv-strings" => strings_rate = m.rate(),
                    _ => ours_rate = m.rate(),
                }
            }
        }
    }
    let range = run_child("xlsx-range", &xlsx);
    print_row("XLSX", "xlsx-range", &range);
    let cells = run_child("xlsx-cells", &xlsx);
    print_row("XLSX", "xlsx-cells", &cells);
    println!();
    println!(
        "CSV source speed / csv-crate floor: {:.2}, / csv-crate with owned fields: {:.2}; XLSX cell-reader peak RSS / range API: {:.2}; CPU ratio {:.2}",
        ours_rate / floor_rate,
        ours_rate / strings_rate,
        cells.hwm_kib as f64 / range.hwm_kib as f64,
        cells.cpu / range.cpu
    );
}

struct Measure {
    rows: u64,
    secs: f64,
    cpu: f64,
    hwm_kib: u64,
}

impl Measure {
    fn rate(&self) -> f64 {
        self.rows as f64 / self.secs
    }
}

fn print_row(file: &str, mode: &str, m: &Measure) {
    println!(
        "| {file} | {mode} | {} | {:.2} | {:.2} | {:.0} | {:.1} |",
        m.rows,
        m.secs,
        m.cpu,
        m.rate(),
        m.hwm_kib as f64 / 1024.0
    );
}

fn run_child(mode: &str, file: &Path) -> Measure {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--bench", "child", mode])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{mode}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let get = |k: &str| -> f64 {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(k))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{mode}: no {k} in {text:?}"))
    };
    Measure {
        rows: get("rows=") as u64,
        secs: get("secs="),
        cpu: get("cpu="),
        hwm_kib: get("hwm_kib=") as u64,
    }
}

/// User + system CPU seconds of this process, all threads (`/proc/self/stat`, clock ticks of 1/100 s).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / 100.0
}

fn child(mode: &str, file: &Path) {
    let t = Instant::now();
    let (rows, check) = match mode {
        "csv-floor" => {
            let mut r = csv::ReaderBuilder::new().from_path(file).unwrap();
            let mut rec = csv::ByteRecord::new();
            let (mut rows, mut bytes) = (0u64, 0usize);
            while r.read_byte_record(&mut rec).unwrap() {
                rows += 1;
                bytes += rec.as_slice().len();
            }
            (rows, bytes)
        }
        "csv-strings" => {
            let mut r = csv::ReaderBuilder::new().from_path(file).unwrap();
            let mut rec = csv::ByteRecord::new();
            let (mut rows, mut bytes) = (0u64, 0usize);
            while r.read_byte_record(&mut rec).unwrap() {
                // What the `Record` interface costs at least: one owned, checked String per field.
                let fields: Vec<String> = rec
                    .iter()
                    .map(|f| std::str::from_utf8(f).unwrap().to_owned())
                    .collect();
                rows += 1;
                bytes += std::hint::black_box(fields).len();
            }
            (rows, bytes)
        }
        "csv-source" | "xlsx-cells" => {
            let mut src =
                doto_bulk::source::open(file, &doto_bulk::source::SourceOptions::default())
                    .unwrap();
            let (mut rows, mut bytes) = (0u64, 0usize);
            for item in src.by_ref() {
                let rec = item.expect("generated rows are clean");
                rows += 1;
                bytes += rec.fields.iter().map(String::len).sum::<usize>();
            }
            assert!(src.take_error().is_none());
            (rows, bytes)
        }
        "xlsx-range" => {
            use calamine::{Data, Reader, Xlsx, open_workbook};
            let mut wb: Xlsx<_> = open_workbook(file).unwrap();
            let first = wb.sheet_names()[0].clone();
            let range = wb.worksheet_range(&first).unwrap();
            let (mut rows, mut bytes) = (0u64, 0usize);
            for row in range.rows().skip(1) {
                // The same work per row as the source: one String per cell.
                let fields: Vec<String> = row
                    .iter()
                    .map(|c| match c {
                        Data::Float(f) if f.fract() == 0.0 => (*f as i64).to_string(),
                        Data::Empty => String::new(),
                        c => c.to_string(),
                    })
                    .collect();
                rows += 1;
                bytes += fields.iter().map(String::len).sum::<usize>();
            }
            (rows, bytes)
        }
        m => panic!("unknown mode {m}"),
    };
    let secs = t.elapsed().as_secs_f64();
    println!(
        "rows={rows} secs={secs:.4} cpu={:.2} hwm_kib={} check={check}",
        cpu_secs(),
        peak_rss_kib()
    );
}

// ---------------------------------------------------------------- generated data

/// A small deterministic generator (xorshift) so the files are the same every run.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const FIRST: &[&str] = &[
    "Ann", "José", "Zoë", "Mohammed", "Li", "Olga", "Seán", "Priya", "Bob", "Émilie",
];
const LAST: &[&str] = &[
    "Smith", "García", "Müller", "O'Brien", "Nguyen", "Kowalski", "Rossi", "Dubois",
];
const COUNTRY: &[&str] = &["US", "GB", "DE", "FR", "IN", "BR", "AU", "ES"];
const COMPANY: &[&str] = &[
    "Acme",
    "Globex, Inc.",
    "Initech",
    "Umbrella \"Corp\"",
    "Stark Industries",
];
const PLAN: &[&str] = &["free", "pro", "enterprise"];

fn row(g: &mut Gen, i: usize) -> [String; 8] {
    let first = g.pick(FIRST);
    let last = g.pick(LAST);
    [
        first.to_owned(),
        last.to_owned(),
        format!("{}.{}{i}@example.com", first.to_lowercase(), i % 977),
        format!("+1 415 555 {:04}", g.next() % 10_000),
        g.pick(COUNTRY).to_owned(),
        g.pick(COMPANY).to_owned(),
        g.pick(PLAN).to_owned(),
        format!("2024-{:02}-{:02}", g.next() % 12 + 1, g.next() % 28 + 1),
    ]
}

const HEADER: [&str; 8] = [
    "first_name",
    "last_name",
    "email",
    "phone",
    "country",
    "company",
    "plan",
    "signup_date",
];

fn write_csv(path: &PathBuf, n: usize) {
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(
        std::fs::File::create(path).unwrap(),
    ));
    w.write_record(HEADER).unwrap();
    let mut g = Gen(0x2024_0611);
    for i in 0..n {
        w.write_record(row(&mut g, i)).unwrap();
    }
    w.into_inner().unwrap().flush().unwrap();
}

fn write_xlsx(path: &PathBuf, n: usize) {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("Contacts").unwrap();
    for (c, h) in HEADER.iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    let mut g = Gen(0x2024_0611);
    for i in 0..n {
        let r = row(&mut g, i);
        let at = i as u32 + 1;
        for (c, v) in r.iter().enumerate() {
            ws.write_string(at, c as u16, v).unwrap();
        }
        // One number column too, as exports have.
        ws.write_number(at, 8, i as f64).unwrap();
    }
    ws.write_string(0, 8, "id").unwrap();
    wb.save(path).unwrap();
}
