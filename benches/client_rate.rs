//! How well the client spends a fixed-window rate limit: one run against the sandbox with a
//! 600/min limit (60 s windows, aligned to the clock), 50 ms latency and no `Retry-After`, until
//! the end of the second full window after start. Two clients run side by side, each against its
//! own sandbox: one configured with the real limit, one that believes the limit is 3,000/min and
//! must learn it from 429s. Reports, per client, admitted requests per full window as a fraction of
//! the limit (the baseline is the limit itself) and the 429s received.
//!
//! `cargo bench --bench client_rate` (does nothing without `--bench`, so `cargo test
//! --all-targets` stays fast). `DOTO_BENCH_WINDOW_SECS=2` scales the windows down for a smoke run.
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use doto_bulk::api::{ApiToken, Client, ClientConfig, RateLimit};
use doto_bulk::sandbox::{RateLimits, SandboxConfig, spawn};

const PER_SEC: u32 = 10; // 600 per minute
const WORKERS: usize = 4;

struct Outcome {
    label: &'static str,
    full_windows: Vec<(u64, u64)>,
    limit: u64,
    ok: u64,
    errors: u64,
    rate_limited_server: u64,
    rate_limited_client: u64,
    elapsed: Duration,
    final_rate: f64,
    learned_budget: Option<u32>,
}

async fn run(
    label: &'static str,
    client_per_window: u32,
    window: Duration,
    end_epoch_ms: u64,
) -> Outcome {
    let limit = PER_SEC * window.as_secs() as u32;
    let sb = spawn(SandboxConfig {
        seed_contacts: 300,
        latency: Duration::from_millis(50),
        limits: RateLimits {
            global: Some(limit),
            search: None,
            window,
            retry_after: false,
        },
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let ids: Vec<u64> = sb
        .contacts()
        .iter()
        .filter_map(|c| c["id"].as_u64())
        .collect();
    let mut cfg = ClientConfig::new(
        &sb.base_url,
        sb.account_id,
        ApiToken::new(sb.admin_token.clone()).unwrap(),
    );
    cfg.rate = RateLimit {
        requests: client_per_window,
        per: window,
    };
    cfg.window = window;
    cfg.max_rate_limited = 10_000;
    let client = Client::new(cfg).unwrap();
    let start = Instant::now();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(end_epoch_ms.saturating_sub(now_ms));
    let mut tasks = vec![];
    for w in 0..WORKERS {
        let client = client.clone();
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut errors) = (0u64, 0u64);
            let mut i = w;
            loop {
                let id = ids[i % ids.len()];
                i += WORKERS;
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => break,
                    r = client.contacts().get(id) => match r {
                        Ok(_) => ok += 1,
                        Err(_) => errors += 1,
                    },
                }
            }
            (ok, errors)
        }));
    }
    let (mut ok, mut errors) = (0, 0);
    for t in tasks {
        let (o, e) = t.await.unwrap();
        ok += o;
        errors += e;
    }
    let elapsed = start.elapsed();
    let stats = sb.stats();
    let admitted: BTreeMap<u64, u64> = stats.admitted_per_window(None);
    let w = stats.window_ms;
    let first = (now_ms / w) + 1;
    let last = end_epoch_ms / w; // exclusive
    let full_windows = (first..last)
        .map(|i| (i, admitted.get(&i).copied().unwrap_or(0)))
        .collect();
    let m = client.metrics();
    sb.shutdown().await.unwrap();
    Outcome {
        label,
        full_windows,
        limit: limit as u64,
        ok,
        errors,
        rate_limited_server: stats.rate_limited,
        rate_limited_client: m.rate_limited,
        elapsed,
        final_rate: m.rate.rate_per_sec,
        learned_budget: m.rate.learned_budget,
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let window_secs: u64 = std::env::var("DOTO_BENCH_WINDOW_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let window = Duration::from_secs(window_secs);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let w = window.as_millis() as u64;
        // Until the end of the second full window after start.
        let end = (now_ms / w + 3) * w;
        let limit = PER_SEC * window_secs as u32;
        let (a, b) = tokio::join!(
            run("configured at the limit", limit, window, end),
            run("configured 5x above the limit", limit * 5, window, end),
        );
        println!(
            "client_rate: limit {limit} per {window_secs} s window, 50 ms latency, {WORKERS} workers, no Retry-After"
        );
        println!("| client | full windows: admitted / limit | mean fraction | 429s (server / client) | ok | errors | run | final pace | learned budget |");
        println!("|---|---|---|---|---|---|---|---|---|");
        for o in [a, b] {
            let per: Vec<String> = o.full_windows.iter().map(|(_, n)| format!("{n}/{}", o.limit)).collect();
            let mean = o.full_windows.iter().map(|(_, n)| *n as f64).sum::<f64>()
                / (o.full_windows.len().max(1) as f64 * o.limit as f64);
            println!(
                "| {} | {} | {:.3} | {} / {} | {} | {} | {:.1} s | {:.2}/s | {:?} |",
                o.label,
                per.join(", "),
                mean,
                o.rate_limited_server,
                o.rate_limited_client,
                o.ok,
                o.errors,
                o.elapsed.as_secs_f64(),
                o.final_rate,
                o.learned_budget
            );
        }
    });
}
