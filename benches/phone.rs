//! Phone normalisation throughput: the `phonenumber` crate as shipped (its shared 100-entry regex
//! LRU thrashes on mixed-country data), the crate with that cache grown, and ours
//! (`PhoneE164::parse`: per-region compiled rules shared read-only), on one and two threads, on
//! the phones of `tests/diff/gen_contacts.py`. Ratios are against the shipped crate in the
//! same run. Figures and the command: `benches/README.md`, Normalisation.
//!
//! `harness = false`: does nothing unless run with `--bench` (so `cargo test --all-targets`
//! stays quick). Environment: `DOTO_BENCH_ROWS` (default 200000), `DOTO_BENCH_SHIPPED` (numbers
//! for the slow shipped run, default 5000).
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use doto_bulk::normalise::{PhoneE164, Region};
use phonenumber::metadata::DATABASE;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU seconds used by this process so far (user + system, from /proc/self/stat; 100 Hz ticks).
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

/// Per-CPU-second rate of the last `measure`: on a shared machine the wall-clock rate of two
/// threads says little, but lock contention and cache-line fights show as more CPU per number.
static LAST_CPU_RATE: std::sync::Mutex<f64> = std::sync::Mutex::new(0.0);

/// Numbers/s of `f` over `input` split across `threads` threads, and how many it accepted.
fn measure<F>(input: &[(String, Option<Region>)], threads: usize, f: F) -> (f64, usize)
where
    F: Fn(&str, Option<Region>) -> bool + Sync,
{
    let cpu0 = cpu_secs();
    let start = Instant::now();
    let chunk = input.len().div_ceil(threads);
    let ok: usize = std::thread::scope(|s| {
        let handles: Vec<_> = input
            .chunks(chunk)
            .map(|part| {
                let f = &f;
                s.spawn(move || part.iter().filter(|(p, r)| f(p, *r)).count())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let cpu = (cpu_secs() - cpu0).max(0.01);
    *LAST_CPU_RATE.lock().unwrap() = input.len() as f64 / cpu;
    (input.len() as f64 / start.elapsed().as_secs_f64(), ok)
}

fn crate_parse(raw: &str, region: Option<Region>) -> bool {
    phonenumber::parse(region.map(|r| r.id()), raw.trim())
        .map(|n| phonenumber::is_valid(&n))
        .unwrap_or(false)
}

fn ours(raw: &str, region: Option<Region>) -> bool {
    PhoneE164::parse(raw, region, false).is_ok()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rows = env_usize("DOTO_BENCH_ROWS", 200_000);
    let shipped_n = env_usize("DOTO_BENCH_SHIPPED", 5_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let gen_script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/diff/gen_contacts.py");
    let status = Command::new("python3")
        .arg(&gen_script)
        .arg(rows.to_string())
        .arg(dir.path())
        .env("NO_XLSX", "1")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("python3");
    assert!(status.success(), "{} failed", gen_script.display());
    let mut reader = csv::Reader::from_path(dir.path().join("contacts.csv")).expect("contacts.csv");
    let input: Vec<(String, Option<Region>)> = reader
        .records()
        .map(|r| r.expect("record"))
        .filter(|r| !r[3].trim().is_empty())
        .map(|r| (r[3].to_owned(), Region::parse(&r[4])))
        .collect();
    println!(
        "{} phones from {rows} generated rows (10 countries, mixed order)",
        input.len()
    );
    let rss0 = rss_kib();

    // Ours alone first, for its memory: RSS before and after.
    let (_, _) = measure(&input, 1, ours);
    let rss_ours = rss_kib();
    println!(
        "RSS {} MiB with the input loaded, {} MiB after our first pass over the 10 countries",
        rss0 / 1024,
        rss_ours / 1024
    );
    // Memory when every region's rules are compiled (a file with every country in it).
    let regions: Vec<Region> = DATABASE
        .iter()
        .filter_map(|m| Region::parse(m.id()))
        .collect();
    let start = Instant::now();
    for r in &regions {
        let _ = PhoneE164::parse("12345678", Some(*r), false);
    }
    println!(
        "compiling the rules of all {} regions: {:.2} s; RSS then {} MiB",
        regions.len(),
        start.elapsed().as_secs_f64(),
        rss_kib() / 1024,
    );
    if std::env::var_os("DOTO_BENCH_OURS_ONLY").is_some() {
        return;
    }

    // 1. The crate as shipped: its 100-entry LRU, on a slice (it is slow).
    let cache = DATABASE.cache();
    let shipped = &input[..shipped_n.min(input.len())];
    let (base, _) = measure(shipped, 1, crate_parse);
    let row = |name: &str, rate: f64| {
        println!(
            "{name:<44} {rate:>9.0} numbers/s {:>6.1}x  {:>9.0} numbers/CPU-s",
            rate / base,
            *LAST_CPU_RATE.lock().unwrap()
        )
    };
    row(
        &format!("crate as shipped (LRU 100), 1 thread, {}", shipped.len()),
        base,
    );

    // 2. The crate with its cache grown once at start-up (warm-up pass first).
    cache.lock().unwrap().set_capacity(20_000);
    measure(&input, 1, crate_parse);
    let (c1, _) = measure(&input, 1, crate_parse);
    row("crate, LRU grown to 20000, 1 thread", c1);
    let (c2, _) = measure(&input, 2, crate_parse);
    row("crate, LRU grown to 20000, 2 threads", c2);
    cache.lock().unwrap().set_capacity(100);
    cache.lock().unwrap().clear();

    // 3. Ours (warm: the rules were compiled by the pass above).
    let (o1, accepted) = measure(&input, 1, ours);
    row("ours, 1 thread", o1);
    let (o2, _) = measure(&input, 2, ours);
    row("ours, 2 threads", o2);
    println!(
        "ours accepted {accepted} of {} ({:.2}%)",
        input.len(),
        100.0 * accepted as f64 / input.len() as f64
    );
}
