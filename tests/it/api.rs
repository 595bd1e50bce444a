//! The client against bad days: a server that dies or hangs midway stops the run (exit 1, within
//! the breaker time and one timeout, reports flushed, resumable); rate limits of short windows
//! without `Retry-After` cost no minute-long pause; `summary.json` counts every retry and its
//! reason; `-v`/`-vv` log every request and retry and never the token; `--concurrency 0` is
//! refused.
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use doto_bulk::api::{ClientConfig, RateLimit};
use doto_bulk::cmd::import::{Args, ImportRun, run_import};
use doto_bulk::exit::Stop;
use doto_bulk::sandbox::{self, FaultKind, Faults, RateLimits, SandboxConfig, route};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::import::{HEADER, MAPPING, World};

fn rows(n: usize) -> String {
    let mut csv = String::from(HEADER);
    for i in 0..n {
        csv.push_str(&format!("Person {i},p{i}@api.example,a-{i},gold,Paris\n"));
    }
    csv
}

fn summary_json(run: &ImportRun) -> Value {
    let text = std::fs::read_to_string(run.run_dir.join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Emails stored, each with how many contacts hold it.
fn emails(contacts: &[Value]) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for c in contacts {
        if let Some(e) = c["email"].as_str() {
            *out.entry(e.to_owned()).or_insert(0) += 1;
        }
    }
    out
}

/// Every row of `n` imported exactly once.
fn assert_all_once(contacts: &[Value], n: usize) {
    let e = emails(contacts);
    assert_eq!(e.len(), n, "contacts missing");
    assert!(e.values().all(|c| *c == 1), "duplicates: {e:?}");
}

/// Import `n` generated rows into run directory `name` of `w`, 4 rows at a time.
fn args_for(w: &World, name: &str, n: usize) -> Args {
    let file = w.write(&format!("{name}.csv"), &rows(n));
    let map = w.write(&format!("{name}.yaml"), MAPPING);
    let mut args = Args::new(&file, &map);
    args.out = Some(w.path(name));
    args.concurrency = doto_bulk::api::Concurrency::Fixed(4);
    args
}

/// Run the import while `event` makes the server fail (it returns when it did): the run must
/// end within the breaker time and one timeout of it, with exit 1.
async fn run_until_down(
    args: &Args,
    cfg: &ClientConfig,
    event: tokio::task::JoinHandle<Instant>,
) -> ImportRun {
    let bound = cfg.give_up_after + cfg.request_timeout + Duration::from_millis(1000);
    let run = run_import(args, cfg.clone(), true, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    let took = event.await.unwrap().elapsed();
    assert!(
        took <= bound,
        "the run went on {took:?} after the server failed"
    );
    assert_eq!(run.exit_code, 1);
    assert!(matches!(run.summary.stopped, Some(Stop::Unreachable(_))));
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_server_stops_the_run_within_the_breaker_time_and_the_run_resumes() {
    let w = World::plain().await;
    let saved = w.path("state.jsonl");
    let mut args = args_for(&w, "dead", 200);
    args.lookup = doto_bulk::pipeline::lookup::Strategy::Index;
    let mut cfg = w.config();
    cfg.give_up_after = Duration::from_millis(1500);
    cfg.request_timeout = Duration::from_millis(500);
    // The server goes away after 60 creates.
    let hold = w.sb.state().hold_after("POST", route::CONTACTS, 60);
    let state = w.sb.state().clone();
    let World { dir, sb } = w;
    let port = sb.addr.port();
    let killer = tokio::spawn(async move {
        hold.reached().await;
        let stop = sb.shutdown();
        tokio::pin!(stop);
        assert!(futures::poll!(&mut stop).is_pending());
        hold.release();
        stop.await.unwrap();
        Instant::now()
    });
    let run = run_until_down(&args, &cfg, killer).await;
    let msg = run.fatal.clone().unwrap();
    assert!(msg.contains("has not answered for 1.5 s"), "{msg}");
    let s = summary_json(&run);
    assert_eq!(s["stopped"], "server_unreachable");
    assert!(s["requests"]["retries_by_reason"]["connect_failed"].as_u64() > Some(0));
    // No row was failed because of the dead server: those in flight are left for --resume.
    assert_eq!(s["outcomes"]["failed"], 0, "{s}");
    assert!(run.summary.outcomes["created"] >= 60);

    // The server comes back (same address, same data): the run is resumed to the end.
    state.save(&saved).unwrap();
    let sb = sandbox::spawn(SandboxConfig {
        port,
        seed_file: Some(saved),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let w = World { dir, sb };
    args.out = None;
    args.resume = Some(run.run_dir.clone());
    let again = run_import(&args, cfg, true, Arc::default()).await.unwrap();
    assert_eq!(again.exit_code, 0, "{:?}", again.summary.outcomes);
    assert_all_once(&w.sb.contacts(), 200);
}

/// A TCP proxy to `upstream` that, once `hang` is set, accepts and reads but never answers (the
/// connections it was forwarding too).
async fn hanging_proxy(upstream: SocketAddr, hang: watch::Receiver<bool>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let mut hang = hang.clone();
            tokio::spawn(async move {
                if !*hang.borrow() {
                    let Ok(mut up) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let hung = tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut up) => false,
                        _ = hang.wait_for(|h| *h) => true,
                    };
                    if !hung {
                        return;
                    }
                }
                // Read whatever comes, answer nothing.
                let mut buf = [0u8; 4096];
                while matches!(client.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_accepts_and_never_answers_stops_the_run_too() {
    let w = World::plain().await;
    let (hang_tx, hang_rx) = watch::channel(false);
    let proxy = hanging_proxy(w.sb.addr, hang_rx).await;
    let mut args = args_for(&w, "hung", 200);
    let mut cfg = w.config();
    cfg.base_url = format!("http://{proxy}");
    cfg.give_up_after = Duration::from_millis(1500);
    cfg.request_timeout = Duration::from_millis(500);
    let stats = w.sb.state().clone();
    let tx = hang_tx.clone();
    let hanger = tokio::spawn(async move {
        while stats.stats().count("POST", route::CONTACTS) < 50 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tx.send_replace(true);
        Instant::now()
    });
    let run = run_until_down(&args, &cfg, hanger).await;
    let s = summary_json(&run);
    assert_eq!(s["stopped"], "server_unreachable");
    assert!(
        s["requests"]["retries_by_reason"]["timeout"].as_u64() > Some(0)
            || s["requests"]["outcome_unknown"].as_u64() > Some(0),
        "{s}"
    );
    assert_eq!(s["outcomes"]["failed"], 0, "{s}");

    // The server answers again: the resumed run finishes, every row exactly once.
    hang_tx.send_replace(false);
    args.out = None;
    args.resume = Some(run.run_dir.clone());
    let again = run_import(&args, cfg, true, Arc::default()).await.unwrap();
    assert_eq!(again.exit_code, 0, "{:?}", again.summary.outcomes);
    assert_all_once(&w.sb.contacts(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_counts_every_retry_and_its_reason_under_injected_faults() {
    let w = World::new(SandboxConfig {
        faults: Faults {
            rate: 0.3,
            kinds: vec![
                FaultKind::Before,
                FaultKind::After,
                FaultKind::Drop,
                FaultKind::Burst429,
            ],
            seed: 7,
            burst_len: 3,
        },
        ..SandboxConfig::default()
    })
    .await;
    let run = w.import(&rows(120), MAPPING, "faults", |_| {}).await;
    assert_eq!(run.exit_code, 0, "{:?}", run.summary.failures_by_code);
    let stats = w.sb.stats();
    let fault = |k: &str| stats.faults.get(k).copied().unwrap_or(0);
    assert!(
        fault("before") + fault("after") + fault("drop") > 10,
        "{:?}",
        stats.faults
    );
    let s = summary_json(&run);
    let r = &s["requests"];
    // Every fault the server injected is in the counters...
    assert_eq!(r["server_errors"], fault("before") + fault("after"), "{r}");
    assert_eq!(r["transport_errors"], fault("drop"), "{r}");
    assert_eq!(r["rate_limited"], stats.rate_limited, "{r}");
    // ...and every retry has a reason, the reasons adding up to the total.
    let by_reason: u64 = r["retries_by_reason"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(Some(by_reason), r["retries"].as_u64(), "{r}");
    assert_eq!(
        r["retries_by_reason"]["rate_limited"], stats.rate_limited,
        "{r}"
    );
    // A create that got a 500 or lost its connection is not retried blindly but counted.
    assert!(r["outcome_unknown"].as_u64() > Some(0), "{r}");
    assert!(r["attempts"].as_u64() > r["retries"].as_u64(), "{r}");
    assert_all_once(&w.sb.contacts(), 120);
}

/// 60 requests through a server that admits 20 per clock second and sends no `Retry-After`,
/// with the client told `rate` (and `window`).
async fn through_one_second_windows(rate: RateLimit, window: Option<Duration>) -> Duration {
    let w = World::new(SandboxConfig {
        limits: RateLimits {
            global: Some(20),
            search: None,
            window: Duration::from_secs(1),
            retry_after: false,
        },
        ..SandboxConfig::default()
    })
    .await;
    let t = Instant::now();
    let run = w
        .import(&rows(60), MAPPING, "windows", |a| {
            a.rate = Some(rate);
            a.rate_window = window;
            a.lookup = doto_bulk::pipeline::lookup::Strategy::Index;
        })
        .await;
    let took = t.elapsed();
    assert_eq!(run.exit_code, 0, "{:?}", run.summary.failures_by_code);
    assert_all_once(&w.sb.contacts(), 60);
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_without_retry_after_costs_about_a_second_not_a_minute() {
    // `--rate 40/s` (twice what the server admits): windows of a second, 429s every second.
    let per_second = through_one_second_windows(RateLimit::per_second(40), None).await;
    assert!(per_second < Duration::from_secs(8), "{per_second:?}");
    // The client believes in minute windows (2,400/min): it probes after about a second instead
    // of sleeping to the next minute, so 61 requests still take seconds.
    let per_minute = through_one_second_windows(RateLimit::per_minute(2400), None).await;
    assert!(per_minute < Duration::from_secs(15), "{per_minute:?}");
    // --rate-window says so explicitly.
    let explicit =
        through_one_second_windows(RateLimit::per_minute(2400), Some(Duration::from_secs(1))).await;
    assert!(explicit < Duration::from_secs(8), "{explicit:?}");
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_doto-bulk"))
}

#[test]
fn verbose_logs_every_request_and_retry_and_never_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v.csv");
    let map = dir.path().join("v.yaml");
    std::fs::write(&file, rows(5)).unwrap();
    std::fs::write(&map, MAPPING).unwrap();
    let run = |v: &str, lookup: &str| {
        let out = bin()
            .args(["import", "--sandbox", "--lookup", lookup, v, "-m"])
            .arg(&map)
            .arg(&file)
            .arg("--out")
            .arg(dir.path().join(format!("run{v}{lookup}")))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let v = run("-v", "search");
    assert!(
        v.contains("POST /api/v1/accounts/1/contacts -> 200 OK in") && v.contains("(attempt 1)"),
        "{v}"
    );
    // The searched email is personal: its value is masked in the log.
    assert!(
        v.contains("GET /api/v1/accounts/1/contacts/search?q=…"),
        "{v}"
    );
    assert!(!v.contains("p0@api.example"), "{v}");
    assert!(!v.contains(" B)"), "-v shows no body sizes: {v}");
    let vv = run("-vv", "index");
    assert!(vv.contains("sent ") && vv.contains(" B, received "), "{vv}");
    for log in [&v, &vv] {
        assert!(!log.contains("sandbox-admin-token"), "the token was logged");
    }
    let quiet = run("-q", "index");
    assert!(!quiet.contains("-> 200"), "{quiet}");
}

#[test]
fn concurrency_zero_is_refused_with_a_clear_message() {
    let out = bin()
        .args(["import", "x.csv", "-m", "m.yaml", "--concurrency", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--concurrency") && err.contains("at least 1"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_down_from_the_start_stops_the_lookup_with_its_reports_written() {
    let w = World::plain().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let args = args_for(&w, "down", 10);
    let mut cfg = w.config();
    cfg.base_url = format!("http://{addr}");
    cfg.give_up_after = Duration::from_millis(800);
    let t = Instant::now();
    let run = run_import(&args, cfg, true, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(run.exit_code, 1);
    let s = summary_json(&run);
    assert_eq!(s["stopped"], "server_unreachable", "{s}");
    assert_eq!(s["rows_read"], 0, "no row was started: {s}");
}
