//! The import's peak resident memory against the number of rows (issue 13, "memory flat in
//! rows"): the release binary run as a child process on generated files of 100k and 1M rows,
//! `import --dry-run --sandbox` and a real import into a sandbox server (its own process, rate
//! limit raised out of the way), each child's peak RSS read by `/usr/bin/time -f %M` (the
//! kernel's `ru_maxrss` of the waited child). Does nothing unless run with `--bench`:
//!
//! ```text
//! cargo bench --bench import_mem
//! IMPORT_MEM_BASELINE=/tmp/doto-main cargo bench --bench import_mem   # + the same runs of another binary
//! ```
//!
//! Knobs: `IMPORT_MEM_ROWS` (sizes for the dry run, default `100000,1000000`),
//! `IMPORT_MEM_REAL_ROWS` (sizes for the real import, default the same), `IMPORT_MEM_BASELINE`
//! (a binary built from an earlier commit, run on the smallest size only, dry run and real),
//! `IMPORT_MEM_DIR` (keep the generated files and run directories there).
//!
//! The file: `Name,Email,ID,Phone,Plan,City`, every row a new contact except 1% that repeat an
//! earlier row's email, ID and phone with another name (an in-file duplicate: an update) and
//! 0.5% that give a new contact an earlier row's phone (left out with `phone_in_use`).
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MAPPING: &str = "version: 1
match:
  on: [email, identifier]
defaults:
  phone_region: GB
fields:
  name: Name
  email: Email
  identifier: ID
  phone_number: Phone
custom_attributes:
  plan: Plan
additional_attributes:
  city: City
";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return; // `cargo test --all-targets` runs benches without `--bench`: do nothing.
    }
    let sizes = |k: &str| -> Vec<usize> {
        let v = std::env::var(k).unwrap_or_else(|_| "100000,1000000".into());
        v.split(',').map(|s| s.trim().parse().expect(k)).collect()
    };
    let dry_sizes = sizes("IMPORT_MEM_ROWS");
    let real_sizes = std::env::var("IMPORT_MEM_REAL_ROWS")
        .map_or_else(|_| dry_sizes.clone(), |_| sizes("IMPORT_MEM_REAL_ROWS"));
    let tmp = tempfile::TempDir::new().unwrap();
    let dir =
        std::env::var_os("IMPORT_MEM_DIR").map_or_else(|| tmp.path().to_owned(), PathBuf::from);
    std::fs::create_dir_all(&dir).unwrap();
    let mapping = dir.join("mapping.yaml");
    std::fs::write(&mapping, MAPPING).unwrap();
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_doto-bulk"));
    let mut binaries = vec![("this commit", ours, usize::MAX)];
    if let Some(b) = std::env::var_os("IMPORT_MEM_BASELINE") {
        let smallest = *dry_sizes.iter().chain(&real_sizes).min().unwrap();
        binaries.push(("baseline", PathBuf::from(b), smallest));
    }
    println!("| binary | run | rows | wall s | peak RSS (MiB) | bytes/row (peak / rows) |");
    println!("|---|---|---:|---:|---:|---:|");
    let mut peaks = Vec::new();
    for (label, bin, max_rows) in &binaries {
        for (real, list) in [(false, &dry_sizes), (true, &real_sizes)] {
            for &n in list.iter().filter(|n| **n <= *max_rows) {
                let file = dir.join(format!("contacts_{n}.csv"));
                if !file.exists() {
                    write_csv(&file, n);
                }
                let out = dir.join(format!("run-{}-{}-{n}", label.replace(' ', "_"), real));
                let _ = std::fs::remove_dir_all(&out);
                let m = if real {
                    real_import(bin, &file, &mapping, &out)
                } else {
                    dry_run(bin, &file, &mapping, &out)
                };
                check_summary(&out, n, real);
                let kind = if real {
                    "import (sandbox server)"
                } else {
                    "import --dry-run --sandbox"
                };
                println!(
                    "| {label} | {kind} | {n} | {:.1} | {:.1} | {:.0} |",
                    m.wall,
                    m.kib as f64 / 1024.0,
                    m.kib as f64 * 1024.0 / n as f64
                );
                peaks.push((*label, real, n, m.kib));
            }
        }
    }
    println!();
    for real in [false, true] {
        let mine: Vec<_> = peaks
            .iter()
            .filter(|p| p.0 == "this commit" && p.1 == real)
            .collect();
        if let (Some(a), Some(b)) = (mine.first(), mine.last())
            && b.2 > a.2
        {
            let per_row = (b.3 as f64 - a.3 as f64) * 1024.0 / (b.2 - a.2) as f64;
            let run = if real { "real import" } else { "dry run" };
            println!(
                "{run}: peak RSS {:.1} MiB at {} rows, {:.1} MiB at {} rows: {per_row:.1} bytes per added row",
                a.3 as f64 / 1024.0,
                a.2,
                b.3 as f64 / 1024.0,
                b.2
            );
        }
    }
}

struct Measure {
    wall: f64,
    kib: u64,
}

/// `bin args…` under `/usr/bin/time -f %M`: wall time and peak RSS; panics on a failed run.
fn measured(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Measure {
    let rss = tempfile::NamedTempFile::new().unwrap();
    let t = Instant::now();
    let status = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(rss.path())
        .arg(bin)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .status()
        .expect("run /usr/bin/time");
    let wall = t.elapsed().as_secs_f64();
    assert!(status.success(), "{} {args:?}: {status}", bin.display());
    let text = std::fs::read_to_string(rss.path()).unwrap();
    let kib = text
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .expect("time -f %M");
    Measure { wall, kib }
}

fn dry_run(bin: &Path, file: &Path, mapping: &Path, out: &Path) -> Measure {
    let (f, m, o) = (s(file), s(mapping), s(out));
    measured(
        bin,
        &[
            "-q",
            "import",
            &f,
            "-m",
            &m,
            "--dry-run",
            "--sandbox",
            "--out",
            &o,
        ],
        &[],
    )
}

/// A real import into a sandbox server started for it (its own process: the figure is the
/// importer's), with rate limits far above what the run sends.
fn real_import(bin: &Path, file: &Path, mapping: &Path, out: &Path) -> Measure {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Sandbox::start(bin, port);
    let url = format!("http://127.0.0.1:{port}");
    let (f, m, o) = (s(file), s(mapping), s(out));
    let args = [
        "-q",
        "--base-url",
        &url,
        "--account-id",
        "1",
        "import",
        &f,
        "-m",
        &m,
        "--out",
        &o,
        "--rate",
        "1000000/s",
        "--concurrency",
        "16",
    ];
    let measure = measured(bin, &args, &[("DOTO_API_TOKEN", "sandbox-admin-token")]);
    server.stop();
    measure
}

struct Sandbox(Child);

impl Sandbox {
    fn start(bin: &Path, port: u16) -> Sandbox {
        let child = Command::new(bin)
            .args([
                "sandbox",
                "--port",
                &port.to_string(),
                "--rate-limit",
                "100000000",
            ])
            .args(["--search-limit", "100000000", "--window", "1s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the sandbox");
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "the sandbox did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Sandbox(child)
    }

    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The run read every row and wrote what it should: 1.5% of the rows update or share a phone.
fn check_summary(out: &Path, n: usize, real: bool) {
    let text = std::fs::read_to_string(out.join("summary.json")).expect("summary.json");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["rows_read"], n as u64, "{text}");
    let created = if real { "created" } else { "would_create" };
    let made = v["outcomes"][created].as_u64().unwrap();
    let dupes = v["duplicates_in_file"].as_u64().unwrap();
    assert_eq!(made + dupes, n as u64, "{text}");
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The generated file (see the module doc); deterministic.
fn write_csv(path: &Path, n: usize) {
    let mut w = BufWriter::new(File::create(path).unwrap());
    writeln!(w, "Name,Email,ID,Phone,Plan,City").unwrap();
    let plans = ["free", "gold", "pro"];
    let cities = ["Paris", "Lyon", "Oslo", "Leeds", "Porto"];
    for i in 0..n {
        let (key, phone) = match i % 200 {
            // 1%: the contact of the row 50 lines earlier again (its other fields changed).
            50 | 150 => (i - 50, i - 50),
            // 0.5%: a new contact with the phone of the row 70 lines earlier.
            77 => (i, i - 70),
            _ => (i, i),
        };
        let (plan, city) = (plans[i % 3], cities[i % 5]);
        writeln!(
            w,
            "Person {i},user{key}@example.com,ID-{key},+447911{:06},{plan},{city}",
            phone % 1_000_000
        )
        .unwrap();
    }
    w.flush().unwrap();
}
