//! The import's speed against the rate limit: 5,000 rows (half new contacts, half updates of
//! seeded ones) into a sandbox with the real default limits (3,000/min for every request, 100/min
//! for search, aligned 60 s windows, no `Retry-After`) and 50 ms latency, with `--lookup auto`.
//!
//! Baseline: the floor the rate limit sets for the requests the run actually made
//! (`requests / (3000 / 60 s)`); the figure is the wall time as a ratio of it (goal ≤ 1.05), plus
//! requests per row against the bound `1 + ceil(account total / 15) / rows`.
//!
//! Windows of any length (`IMPORT_BENCH_WINDOWS`, e.g. `1,10,60`): the same 50 requests per
//! second, counted per 1 s, 10 s or 60 s window, the client told the window (`--rate 50/s
//! --rate-window 10s`). The "real data" variant (`IMPORT_BENCH_REAL=1`) maps a phone too, 5% of
//! the rows share a phone with an earlier row, and the search limit is 2 per window: the goal is
//! the same 1.05 x floor and 0 searches when the index strategy is chosen.
//!
//! `cargo bench --bench import_bench` (does nothing without `--bench`, so `cargo test
//! --all-targets` stays fast). Knobs: `IMPORT_BENCH_ROWS` (default 5000),
//! `IMPORT_BENCH_CONCURRENCY` (`auto`, the default, or a number), `IMPORT_BENCH_WINDOWS` (seconds,
//! comma-separated; default 60), `IMPORT_BENCH_LATENCIES` (milliseconds, comma-separated; default
//! 50), `IMPORT_BENCH_SLOWING` (milliseconds added per other request in flight: a server that slows
//! down under load; default 0), `IMPORT_BENCH_REAL` (1: the real-data variant; default 0).
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use doto_bulk::api::{ApiToken, ClientConfig, Concurrency, PAGE_SIZE, RateLimit};
use doto_bulk::cmd::import::{Args, run_import};
use doto_bulk::sandbox::{RateLimits, SandboxConfig, route, spawn};
use serde_json::json;

const MAPPING: &str = r#"version: 1
match:
  on: [email]
fields:
  name: Name
  email: Email
  identifier: ID
custom_attributes:
  plan: Plan
additional_attributes:
  city: City
"#;

/// The real-data variant's mapping: [`MAPPING`] with a phone (GB numbers written nationally).
fn mapping_real() -> String {
    MAPPING
        .replacen(
            "version: 1\n",
            "version: 1\ndefaults:\n  phone_region: GB\n",
            1,
        )
        .replacen(
            "  identifier: ID\n",
            "  identifier: ID\n  phone_number: Phone\n",
            1,
        )
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One measured run: windows of `window_s` seconds; `real`: the real-data variant.
#[derive(Clone, Copy)]
struct Variant {
    rows: usize,
    concurrency: Concurrency,
    window_s: u64,
    latency_ms: u64,
    real: bool,
}

/// A comma-separated list of numbers from the environment.
fn env_list(name: &str, default: &str) -> Vec<u64> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|w| w.trim().parse().ok())
        .collect()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rows = env_usize("IMPORT_BENCH_ROWS", 5000);
    let concurrency = std::env::var("IMPORT_BENCH_CONCURRENCY")
        .unwrap_or_else(|_| "auto".into())
        .parse()
        .expect("IMPORT_BENCH_CONCURRENCY: a number or auto");
    let real = env_usize("IMPORT_BENCH_REAL", 0) == 1;
    let windows = env_list("IMPORT_BENCH_WINDOWS", "60");
    let latencies = env_list("IMPORT_BENCH_LATENCIES", "50");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for latency_ms in latencies {
        for &window_s in &windows {
            let v = Variant {
                rows,
                concurrency,
                window_s,
                latency_ms,
                real,
            };
            rt.block_on(bench(v));
        }
    }
}

/// The file: half the rows update seeded contacts, half are new; in the real-data variant every
/// 20th row takes the phone of the row 7 before it.
fn file(v: Variant) -> String {
    let phone = |i: usize| format!("07911 1{:05}", i % 100_000);
    let mut csv = String::from(if v.real {
        "Name,Email,ID,Plan,City,Phone\n"
    } else {
        "Name,Email,ID,Plan,City\n"
    });
    for i in 0..v.rows {
        csv.push_str(&format!(
            "Person {i},p{i}@bench.example,b-{i},plan{},City {}",
            i % 4,
            i % 50
        ));
        if v.real {
            let shared = i >= 7 && i % 20 == 0;
            csv.push_str(&format!(",{}", phone(if shared { i - 7 } else { i })));
        }
        csv.push('\n');
    }
    csv
}

async fn bench(v: Variant) {
    let Variant {
        rows,
        concurrency,
        window_s,
        latency_ms,
        real,
    } = v;
    let per_second = 50u32;
    let window = Duration::from_secs(window_s);
    let search_limit = if real { 2 } else { 100 * window_s as u32 / 60 }.max(1);
    let sb = spawn(SandboxConfig {
        latency: Duration::from_millis(latency_ms),
        latency_per_in_flight: Duration::from_millis(env_usize("IMPORT_BENCH_SLOWING", 0) as u64),
        limits: RateLimits {
            global: Some(per_second * window_s as u32),
            search: Some(search_limit),
            window,
            retry_after: false,
        },
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let seeded = rows / 2;
    for i in 0..seeded {
        sb.state()
            .insert_contact(
                sb.account_id,
                &json!({"name": format!("Person {i}"), "email": format!("p{i}@bench.example"),
                    "identifier": format!("b-{i}"), "custom_attributes": {"plan": "old"}}),
            )
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let file_path = dir.path().join("rows.csv");
    let map = dir.path().join("m.yaml");
    std::fs::write(&file_path, file(v)).unwrap();
    std::fs::write(&map, if real { mapping_real() } else { MAPPING.into() }).unwrap();
    let mut args = Args::new(&file_path, &map);
    args.out = Some(dir.path().join("run"));
    args.concurrency = concurrency;
    args.rate = Some(RateLimit::per_second(per_second));
    args.rate_window = Some(window);
    args.search_rate = Some(RateLimit {
        requests: search_limit,
        per: window,
    });
    let cfg = ClientConfig::new(
        sb.base_url.clone(),
        sb.account_id,
        ApiToken::new(sb.admin_token.clone()).unwrap(),
    );
    let rate_per_s = per_second as f64;

    let t = Instant::now();
    let run = run_import(&args, cfg, true, Arc::new(AtomicBool::new(false)))
        .await
        .expect("import");
    let wall = t.elapsed().as_secs_f64();

    let stats = sb.stats();
    let requests = stats.total;
    let admitted: u64 = stats.log.iter().filter(|e| e.admitted).count() as u64;
    let floor = admitted as f64 / rate_per_s;
    let bound = 1.0 + (seeded as u64).div_ceil(PAGE_SIZE as u64) as f64 / rows as f64;
    println!(
        "import_bench: {rows} rows ({seeded} seeded), latency {latency_ms} ms, concurrency \
         {concurrency}, {} windows of {window_s} s ({} per window, search {search_limit}), \
         slowing {} ms per request in flight",
        if real { "real data," } else { "plain file," },
        per_second * window_s as u32,
        env_usize("IMPORT_BENCH_SLOWING", 0)
    );
    println!(
        "  outcomes {:?}, failures {:?}, lookup {:?}",
        run.summary.outcomes,
        run.summary.failures_by_code,
        run.choice.as_ref().map(|c| c.reason.as_str())
    );
    println!(
        "  requests received {requests} (admitted {admitted}, 429s {}, 5xx {}): list {}, search {}, \
         create {}, update {}",
        stats.rate_limited,
        stats
            .by_route
            .iter()
            .filter(|r| r.status >= 500)
            .map(|r| r.count)
            .sum::<u64>(),
        stats.count("GET", route::CONTACTS),
        stats.count("GET", route::SEARCH),
        stats.count("POST", route::CONTACTS),
        stats.count("PATCH", route::CONTACT),
    );
    println!(
        "  wall {wall:.1} s, rate-limit floor {floor:.1} s ({admitted} requests at {rate_per_s:.0}/s): \
         ratio {:.3} (goal <= 1.05)",
        wall / floor
    );
    let r = run.summary.requests.clone().unwrap_or_default();
    let c = &r.concurrency;
    println!(
        "  concurrency used: min {} / median {} / max {}, peak in flight {} (server saw {}), \
         bound: {:?}; retries {}, no response {}",
        c.min,
        c.median,
        c.max,
        c.peak_in_flight,
        stats.max_in_flight,
        c.bound_secs,
        r.retries,
        r.transport_errors
    );
    // The floor of the requests the job needs (its rows and the index's pages), without the
    // index pages guessed past the end: the stricter baseline.
    let needed = bound * rows as f64;
    println!(
        "  requests per row {:.4} (bound 1 + ceil({seeded}/15)/{rows} = {bound:.4}); against the \
         floor of the {needed:.0} requests needed ({:.1} s): ratio {:.3}",
        admitted as f64 / rows as f64,
        needed / rate_per_s,
        wall / (needed / rate_per_s)
    );
    sb.shutdown().await.unwrap();
}
