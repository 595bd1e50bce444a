//! Change sets benchmark (issue 16 item 2): the comparison of two snapshot sidecars of 1,000,000
//! contacts (1% added, 1% changed, 1% removed) against the floor of just reading both (decompress,
//! split every line, check the order), and the building of a sorted sidecar from contacts in
//! listing order (the external sort) against writing the same lines unsorted, and the same sort
//! merged in levels (a fan-in of 8, as beyond 256 runs, about 5M contacts). Does nothing
//! unless run with `--bench`:
//!
//! ```text
//! cargo bench --bench changes_bench                 # figures go to benches/README.md, "Change sets"
//! CHANGES_BENCH_CONTACTS=200000 cargo bench --bench changes_bench
//! ```
//!
//! Each measurement runs in a child process (this binary again, `--bench child MODE ...`) so that
//! its peak RSS (`VmHWM`) is its own. Modes: `unsorted N FILE`, `sorted N FILE` and `levels N
//! FILE` (fan-in 8) build a sidecar of N contacts in listing order (the new one with `--new`); `read OLD NEW` and `diff OLD
//! NEW` read or compare two.
#[path = "common/rss.rs"]
mod rss;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use doto_bulk::api::Contact;
use doto_bulk::sink::changes::diff::{Diff, read_all};
use doto_bulk::sink::changes::snapshot::{FAN_IN, SnapshotReader, SnapshotWriter, line};
use rss::peak_rss_kib;
use serde_json::{Map, json};

/// Coprime with any count that is not a multiple of it: a permutation of the ids.
const STRIDE: u64 = 999_983;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return; // `cargo test --all-targets` runs benches without `--bench`: do nothing.
    }
    if let Some(i) = args.iter().position(|a| a == "child") {
        let (secs, n) = child(&args[i + 1..]);
        println!("{secs} {} {n} {}", cpu_secs(), peak_rss_kib());
        return;
    }
    let n: u64 = std::env::var("CHANGES_BENCH_CONTACTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let tmp = tempfile::TempDir::new().unwrap();
    let (old, new) = (tmp.path().join("old.sz"), tmp.path().join("new.sz"));
    let unsorted = tmp.path().join("unsorted.sz");
    let ns = n.to_string();
    println!(
        "| step | contacts | wall s | CPU s | contacts/s (CPU) | peak RSS (MiB) | CPU vs baseline |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let base = run(&["unsorted", &ns, path(&unsorted)]);
    row("write the lines unsorted (baseline)", base, base);
    let sorted = run(&["sorted", &ns, path(&old)]);
    row("external sort into the sidecar", sorted, base);
    let levelled = tmp.path().join("levels.sz");
    let levels = run(&["levels", &ns, path(&levelled)]);
    row("external sort merged in levels (fan-in 8)", levels, base);
    assert!(
        std::fs::read(&levelled).unwrap() == std::fs::read(&old).unwrap(),
        "the sidecar merged in levels is the same file"
    );
    run(&["sorted", &ns, path(&new), "--new"]);
    let size = |p: &Path| std::fs::metadata(p).unwrap().len() as f64 / 1048576.0;
    eprintln!("sidecar: {:.1} MiB for {n} contacts", size(&old));
    let read = run(&["read", path(&old), path(&new)]);
    row("read both sidecars (baseline)", read, read);
    let diff = run(&["diff", path(&old), path(&new)]);
    eprintln!("{} rows in the change set", diff.n);
    // Counted per contact read, like the baseline.
    let diff = M { n: read.n, ..diff };
    row("compare (merge-join, changed contacts parsed)", diff, read);
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// One child's measurement.
#[derive(Clone, Copy)]
struct M {
    wall: f64,
    cpu: f64,
    n: u64,
    kib: u64,
}

fn run(args: &[&str]) -> M {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--bench", "child"])
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let text = String::from_utf8(out.stdout).unwrap();
    let f: Vec<&str> = text.split_whitespace().collect();
    let (wall, cpu) = (f[0].parse().unwrap(), f[1].parse().unwrap());
    let (n, kib) = (f[2].parse().unwrap(), f[3].parse().unwrap());
    M { wall, cpu, n, kib }
}

fn row(what: &str, m: M, baseline: M) {
    println!(
        "| {what} | {} | {:.2} | {:.2} | {:.0} | {:.0} | {:.2}× |",
        m.n,
        m.wall,
        m.cpu,
        m.n as f64 / m.cpu,
        m.kib as f64 / 1024.0,
        m.cpu / baseline.cpu
    );
}

/// User and system CPU seconds of this process so far (`/proc/self/stat`, 100 ticks a second).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // Fields 14 and 15 of the line; 12 and 13 after the command name.
    (f.get(11).unwrap_or(&0) + f.get(12).unwrap_or(&0)) as f64 / 100.0
}

/// One measurement: (seconds, contacts).
fn child(args: &[String]) -> (f64, u64) {
    let t = Instant::now();
    let n = match args[0].as_str() {
        "unsorted" | "sorted" | "levels" => {
            let count: u64 = args[1].parse().unwrap();
            let newer = args.get(3).is_some_and(|a| a == "--new");
            let out = BufWriter::new(File::create(&args[2]).unwrap());
            let contacts = listing(count, newer);
            match args[0].as_str() {
                "sorted" => build_sorted(contacts, out, Path::new(&args[2]), FAN_IN),
                "levels" => build_sorted(contacts, out, Path::new(&args[2]), 8),
                _ => build_unsorted(contacts, out),
            }
        }
        "read" => {
            read_all(File::open(&args[1]).unwrap(), "old").unwrap()
                + read_all(File::open(&args[2]).unwrap(), "new").unwrap()
        }
        "diff" => {
            let old = SnapshotReader::new(File::open(&args[1]).unwrap(), "old");
            let new = SnapshotReader::new(File::open(&args[2]).unwrap(), "new");
            let mut d = Diff::new(old, new);
            let mut rows = 0u64;
            for c in d.by_ref() {
                c.unwrap();
                rows += 1;
            }
            let c = d.counts();
            eprintln!(
                "{} added, {} changed, {} removed",
                c.added, c.changed, c.removed
            );
            assert_eq!(rows, c.added + c.changed + c.removed);
            rows
        }
        other => panic!("unknown mode {other}"),
    };
    (t.elapsed().as_secs_f64(), n)
}

fn build_sorted(
    contacts: impl Iterator<Item = Contact>,
    out: impl Write,
    at: &Path,
    fan_in: usize,
) -> u64 {
    let mut w = SnapshotWriter::new(at.parent().unwrap()).with_fan_in(fan_in);
    for c in contacts {
        w.add(&c).unwrap();
    }
    w.finish(out).unwrap()
}

fn build_unsorted(contacts: impl Iterator<Item = Contact>, out: impl Write) -> u64 {
    let mut w = snap::write::FrameEncoder::new(out);
    let mut n = 0;
    for c in contacts {
        w.write_all(line(&c).as_bytes()).unwrap();
        n += 1;
    }
    w.into_inner().unwrap().flush().unwrap();
    n
}

/// `n` contacts in listing order (ids permuted); the newer export drops the ids ending in 00,
/// changes those ending in 01 (email or plan) and adds n/100 new ones at the end.
fn listing(n: u64, newer: bool) -> impl Iterator<Item = Contact> {
    let ids = (0..n).map(move |i| 1 + (i * STRIDE) % n);
    let kept = ids.filter(move |id| !newer || id % 100 != 0);
    let added = (n + 1..=n + n / 100).filter(move |_| newer);
    kept.chain(added)
        .map(move |id| contact(id, newer && id % 100 == 1))
}

fn contact(id: u64, changed: bool) -> Contact {
    let mut custom = Map::new();
    custom.insert(
        "plan".into(),
        json!(["free", "gold", "team"][(id % 3) as usize]),
    );
    custom.insert("seats".into(), json!(id % 50));
    custom.insert(
        "since".into(),
        json!(format!("2024-0{}-1{}", id % 9 + 1, id % 10)),
    );
    custom.insert("vip".into(), json!(id.is_multiple_of(7)));
    let mut additional = Map::new();
    additional.insert(
        "city".into(),
        json!(["Lyon", "Köln", "Porto"][(id % 3) as usize]),
    );
    additional.insert(
        "company_name".into(),
        json!(format!("Company {}", id % 997)),
    );
    if changed && id.is_multiple_of(2) {
        custom.insert("plan".into(), json!("enterprise"));
    }
    let email = match changed && id % 2 == 1 {
        true => format!("moved{id}@example.com"),
        false => format!("person{id}@example.com"),
    };
    Contact {
        id,
        name: Some(format!("Person {id}")),
        email: Some(email),
        phone_number: Some(format!("+4420794{:05}", id % 100_000)),
        identifier: Some(format!("crm-{id}")),
        blocked: false,
        thumbnail: Some(format!("https://cdn.example.com/{id}.png?sig=abc")),
        availability_status: Some("offline".into()),
        additional_attributes: additional,
        custom_attributes: custom,
        last_activity_at: Some(1_711_000_000 + id as i64),
        created_at: Some(1_700_000_000 + id as i64),
        contact_inboxes: None,
    }
}
