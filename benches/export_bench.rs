//! Export speed under the real rate limit: 15,000 contacts in the sandbox with a 3,000/min limit
//! (60 s fixed windows aligned to the clock, no `Retry-After`) and 50 ms latency, exported to CSV
//! with the client's default pacing (3,000/min) and `--concurrency 8`. The baseline is the floor
//! the limit allows: `ceil(listed / 15)` list requests at 50 requests per second. Prints the wall
//! time, the floor and their ratio (goal: at most 1.05), plus requests and 429s.
//!
//! `cargo bench --bench export_bench` (does nothing without `--bench`, so that `cargo test
//! --all-targets` stays fast). `DOTO_BENCH_CONTACTS=3000` for a smaller run; `DOTO_BENCH_CONCURRENCY`,
//! `DOTO_BENCH_LATENCY_MS` vary the other two; `DOTO_BENCH_FORMAT=parquet` (or jsonl, xlsx)
//! exports to that format instead of CSV. Peak memory is
//! measured by `benches/export.sh` with the release binary.
use std::time::{Duration, Instant};

use doto_bulk::api::{ApiToken, Client, ClientConfig, Concurrency};
use doto_bulk::cmd::export::{ExportOptions, export};
use doto_bulk::sandbox::{RateLimits, SandboxConfig, route, spawn};

const LIMIT_PER_MIN: u32 = 3_000;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n: usize = std::env::var("DOTO_BENCH_CONTACTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15_000);
    let concurrency: Concurrency = std::env::var("DOTO_BENCH_CONCURRENCY")
        .unwrap_or_else(|_| "auto".into())
        .parse()
        .expect("DOTO_BENCH_CONCURRENCY: a number or auto");
    let latency_ms: u64 = std::env::var("DOTO_BENCH_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let sb = spawn(SandboxConfig {
            seed_contacts: n,
            latency: Duration::from_millis(latency_ms),
            limits: RateLimits {
                global: Some(LIMIT_PER_MIN),
                search: None,
                window: Duration::from_secs(60),
                retry_after: false,
            },
            ..SandboxConfig::default()
        })
        .await
        .expect("sandbox");
        // The client's defaults are the real server's: 3,000 per minute in 60 s windows.
        let mut cfg = ClientConfig::new(
            &sb.base_url,
            sb.account_id,
            ApiToken::new(sb.admin_token.clone()).unwrap(),
        );
        cfg.concurrency = concurrency;
        let client = Client::new(cfg).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let format = std::env::var("DOTO_BENCH_FORMAT").unwrap_or_else(|_| "csv".into());
        let mut opts = ExportOptions::new(dir.path().join(format!("bench.{format}"))).unwrap();
        opts.concurrency = concurrency;
        let epoch_start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let t = Instant::now();
        let s = export(&client, &opts).await.expect("export");
        let wall = t.elapsed().as_secs_f64();
        let listed = s.manifest.rows;
        let requests = listed.div_ceil(15);
        let floor = requests as f64 / (f64::from(LIMIT_PER_MIN) / 60.0);
        let stats = sb.stats();
        println!("export_bench: {n} contacts seeded, {listed} listed, limit {LIMIT_PER_MIN}/min, latency {latency_ms} ms, concurrency {concurrency}, to {format}");
        println!(
            "  list requests {} (floor {requests}), 429s {}, drift {}, max in flight {}",
            stats.count("GET", route::CONTACTS),
            stats.rate_limited,
            s.manifest.drift.detected,
            stats.max_in_flight
        );
        // Where the time went: the span of the requests (the client's pacing) against what came
        // before the first and after the last (the export's own work).
        let arrivals: Vec<u64> = stats
            .log
            .iter()
            .filter(|e| e.route == route::CONTACTS)
            .map(|e| e.epoch_ms)
            .collect();
        if let (Some(first), Some(last)) = (arrivals.first(), arrivals.last()) {
            let span = (last - first) as f64 / 1000.0;
            println!(
                "  requests: first at {:.2} s, last at {:.2} s, span {span:.2} s = {:.1} req/s (client pace {:.1}/s)",
                (first.saturating_sub(epoch_start)) as f64 / 1000.0,
                (last.saturating_sub(epoch_start)) as f64 / 1000.0,
                (arrivals.len() - 1) as f64 / span,
                client.metrics().rate.rate_per_sec
            );
        }
        let c = client.metrics().concurrency;
        println!(
            "  concurrency used: min {} / median {} / max {}, peak {}, bound {:?}",
            c.min, c.median, c.max, c.peak_in_flight, c.bound_secs
        );
        println!("  wall {wall:.2} s, floor {floor:.2} s, ratio {:.3} (goal <= 1.05)", wall / floor);
        sb.shutdown().await.unwrap();
    });
}
