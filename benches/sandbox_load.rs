//! Load benchmark of the sandbox: requests/s for list (sorted), search, show and create over HTTP with
//! 10,000 stored contacts, and the latency of search, each compared with a baseline (`GET
//! /_sandbox/health`, the cheapest answer the same server gives) measured in the same run.
//!
//! `cargo bench --bench sandbox_load` runs it. Without `--bench` (as `cargo test --all-targets`
//! runs bench binaries) it does nothing and exits 0.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use doto_bulk::sandbox::{SandboxConfig, spawn};
use serde_json::json;

const CONTACTS: usize = 10_000;
const CONNECTIONS: usize = 32;
const WARMUP: Duration = Duration::from_millis(500);
const RUN: Duration = Duration::from_secs(3);

/// What one request of a scenario is, given a running counter.
type MakeRequest = Arc<dyn Fn(&reqwest::Client, u64) -> reqwest::RequestBuilder + Send + Sync>;

struct Ctx {
    client: reqwest::Client,
    base: String,
    api: String,
    token: String,
}

/// Requests/s with `CONNECTIONS` concurrent workers for `RUN` after `WARMUP`; also checks every
/// answer has the expected status so a failing scenario cannot look fast.
async fn throughput(ctx: &Ctx, make: MakeRequest, expect: u16) -> f64 {
    let counter = Arc::new(AtomicU64::new(0));
    let measured = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let measure_from = start + WARMUP;
    let end = measure_from + RUN;
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (client, make, counter, measured) = (
                ctx.client.clone(),
                make.clone(),
                counter.clone(),
                measured.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let now = Instant::now();
                    if now >= end {
                        break;
                    }
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let resp = make(&client, n).send().await.expect("request failed");
                    let status = resp.status().as_u16();
                    let _ = resp.bytes().await.expect("body failed");
                    assert_eq!(status, expect, "unexpected status");
                    if now >= measure_from && Instant::now() <= end {
                        measured.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    measured.load(Ordering::Relaxed) as f64 / RUN.as_secs_f64()
}

/// Latency of one request at a time: (mean, p50, p99) in milliseconds.
async fn latency(ctx: &Ctx, make: MakeRequest, n: u64) -> (f64, f64, f64) {
    let mut ms = Vec::with_capacity(n as usize);
    for i in 0..n {
        let t = Instant::now();
        let resp = make(&ctx.client, i).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let _ = resp.bytes().await.unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    (mean, ms[ms.len() / 2], ms[ms.len() * 99 / 100])
}

const TERMS: &[&str] = &[
    "smith",
    "garcia",
    "jane",
    "gmail",
    "+4474",
    "9876",
    "user_1042",
    "lucas.costa",
    "müller",
    "zzz",
];

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

/// The search query alone, in process, without HTTP: mean microseconds per call.
fn search_in_process() {
    let mut store = doto_bulk::sandbox::store::Store::new();
    doto_bulk::sandbox::seed::generate(&mut store, 1, CONTACTS, 1);
    for q in TERMS {
        let t = Instant::now();
        let mut hits = 0;
        for _ in 0..50 {
            hits = store.search(1, q, None).len();
        }
        let us = t.elapsed().as_secs_f64() * 1e6 / 50.0;
        println!("  store.search({q:?}) in process: {us:>8.0} µs, {hits} hits");
    }
}

async fn run() {
    search_in_process();
    let t = Instant::now();
    let sb = spawn(SandboxConfig {
        seed_contacts: CONTACTS,
        ..Default::default()
    })
    .await
    .unwrap();
    let seeded = t.elapsed();
    let ctx = Arc::new(Ctx {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(CONNECTIONS)
            .build()
            .unwrap(),
        base: sb.base_url.clone(),
        api: format!("{}/api/v1/accounts/{}/contacts", sb.base_url, sb.account_id),
        token: sb.admin_token.clone(),
    });
    println!(
        "sandbox_load: {CONTACTS} contacts seeded in {:.0} ms; {CONNECTIONS} connections, {}s per scenario",
        seeded.as_secs_f64() * 1000.0,
        RUN.as_secs()
    );

    let c = ctx.clone();
    let health: MakeRequest = Arc::new(move |cl, _| cl.get(format!("{}/_sandbox/health", c.base)));
    let c = ctx.clone();
    let list_sorted: MakeRequest = Arc::new(move |cl, n| {
        let sort = ["name", "-email", "created_at", "-phone_number"][(n % 4) as usize];
        cl.get(format!("{}?sort={sort}&page={}", c.api, 1 + n % 600))
            .header("api_access_token", &c.token)
    });
    let c = ctx.clone();
    let show: MakeRequest = Arc::new(move |cl, n| {
        cl.get(format!("{}/{}", c.api, 1 + n % CONTACTS as u64))
            .header("api_access_token", &c.token)
    });
    let c = ctx.clone();
    let search: MakeRequest = Arc::new(move |cl, n| {
        let q = TERMS[(n % TERMS.len() as u64) as usize].replace('+', "%2B");
        cl.get(format!("{}/search?q={q}", c.api))
            .header("api_access_token", &c.token)
    });
    let c = ctx.clone();
    let search_sorted: MakeRequest = Arc::new(move |cl, n| {
        let q = TERMS[(n % TERMS.len() as u64) as usize].replace('+', "%2B");
        cl.get(format!("{}/search?q={q}&sort=email", c.api))
            .header("api_access_token", &c.token)
    });
    let c = ctx.clone();
    let create: MakeRequest = Arc::new(move |cl, n| {
        cl.post(&c.api)
            .header("api_access_token", &c.token)
            .json(&json!({
                "name": format!("Load {n}"),
                "email": format!("load{n}@bench.test"),
                "phone_number": format!("+1999{n:07}"),
                "custom_attributes": {"plan": "bench"},
            }))
    });

    let base = throughput(&ctx, health, 200).await;
    println!(
        "{:<34} {:>9.0} req/s",
        "baseline GET /_sandbox/health", base
    );
    for (name, make, expect) in [
        ("GET /contacts?sort=… (list)", list_sorted, 200),
        ("GET /contacts/{id} (show)", show, 200),
        ("GET /contacts/search?q=…", search.clone(), 200),
        (
            "GET /contacts/search?q=…&sort=email",
            search_sorted.clone(),
            200,
        ),
        ("POST /contacts (create)", create, 200),
    ] {
        let rps = throughput(&ctx, make, expect).await;
        println!(
            "{name:<34} {rps:>9.0} req/s  ({:.2} × baseline)",
            rps / base
        );
    }
    for (name, make) in [("search", search), ("search sorted", search_sorted)] {
        let (mean, p50, p99) = latency(&ctx, make, 500).await;
        println!(
            "{name:<34} latency one at a time: mean {mean:.2} ms, p50 {p50:.2} ms, p99 {p99:.2} ms"
        );
    }
    let stats = sb.stats();
    println!(
        "sandbox saw {} API requests, max {} in flight, {} contacts now",
        stats.total,
        stats.max_in_flight,
        sb.contacts().len()
    );
    sb.shutdown().await.unwrap();
}
