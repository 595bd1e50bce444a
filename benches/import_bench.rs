//! The import's speed against the rate limit: 5,000 rows (half new contacts, half updates of
//! seeded ones) into a sandbox with the real default limits (3,000/min for every request, 100/min
//! for search, aligned 60 s windows, no `Retry-After`) and 50 ms latency, with `--lookup auto`.
//!
//! Baseline: the floor the rate limit sets for the requests the run actually made
//! (`requests / (3000 / 60 s)`); the figure is the wall time as a ratio of it (goal ≤ 1.05), plus
//! requests per row against the bound `1 + ceil(account total / 15) / rows`.
//!
//! `cargo bench --bench import_bench` (does nothing without `--bench`, so `cargo test
//! --all-targets` stays fast). Knobs: `IMPORT_BENCH_ROWS` (default 5000),
//! `IMPORT_BENCH_CONCURRENCY` (default 8).
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use doto_bulk::api::{ApiToken, ClientConfig, PAGE_SIZE};
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

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rows = env_usize("IMPORT_BENCH_ROWS", 5000);
    let concurrency = env_usize("IMPORT_BENCH_CONCURRENCY", 8);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench(rows, concurrency));
}

async fn bench(rows: usize, concurrency: usize) {
    let per_minute = 3000u32;
    let sb = spawn(SandboxConfig {
        latency: Duration::from_millis(50),
        limits: RateLimits {
            global: Some(per_minute),
            search: Some(100),
            window: Duration::from_secs(60),
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
    let mut csv = String::from("Name,Email,ID,Plan,City\n");
    for i in 0..rows {
        csv.push_str(&format!(
            "Person {i},p{i}@bench.example,b-{i},plan{},City {}\n",
            i % 4,
            i % 50
        ));
    }
    let file = dir.path().join("rows.csv");
    let map = dir.path().join("m.yaml");
    std::fs::write(&file, csv).unwrap();
    std::fs::write(&map, MAPPING).unwrap();
    let mut args = Args::new(&file, &map);
    args.out = Some(dir.path().join("run"));
    args.concurrency = concurrency;
    let cfg = ClientConfig::new(
        sb.base_url.clone(),
        sb.account_id,
        ApiToken::new(sb.admin_token.clone()).unwrap(),
    );
    let rate_per_s = cfg.rate.per_sec();

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
    println!("import_bench: {rows} rows ({seeded} seeded), concurrency {concurrency}");
    println!(
        "  outcomes {:?}, lookup {:?}",
        run.summary.outcomes,
        run.choice.as_ref().map(|c| c.reason.as_str())
    );
    println!(
        "  requests received {requests} (admitted {admitted}, 429s {}): list {}, search {}, \
         create {}, update {}",
        stats.rate_limited,
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
    println!(
        "  requests per row {:.4} (bound 1 + ceil({seeded}/15)/{rows} = {bound:.4})",
        admitted as f64 / rows as f64
    );
    sb.shutdown().await.unwrap();
}
