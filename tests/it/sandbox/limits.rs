//! Rate limits (fixed windows, global and per-account search), the real 429, latency and faults on
//! writes. Windows are 1 s here, so the socket test that spans three windows stays near 2 s; the
//! others set the sandbox's clock, so their requests land in the windows they mean to.
use std::time::Duration;

use axum::http::StatusCode;
use doto_bulk::sandbox::{FaultKind, Faults, RateLimits, SandboxConfig, route, spawn};
use serde_json::json;

use super::Api;

/// A moment at the start of a window (of 1 s and of 60 s), for the sandbox's set clock.
const T0: u64 = 1_800_000_000_000;

fn limited(global: Option<u32>, search: Option<u32>, retry_after: bool) -> SandboxConfig {
    SandboxConfig {
        limits: RateLimits {
            global,
            search,
            window: Duration::from_secs(1),
            retry_after,
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn no_window_ever_admits_more_than_the_global_limit_over_a_socket() {
    let limit = 7;
    let sb = spawn(limited(Some(limit), None, false)).await.unwrap();
    let url = format!("{}/api/v1/accounts/1/contacts", sb.base_url);
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(2100);
    let workers = (0..4).map(|_| {
        let (client, url, token) = (client.clone(), url.clone(), sb.admin_token.clone());
        tokio::spawn(async move {
            let mut seen = vec![];
            while tokio::time::Instant::now() < deadline {
                let r = client
                    .get(&url)
                    .header("api_access_token", &token)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let ct = r
                    .headers()
                    .get("content-type")
                    .map(|v| v.to_str().unwrap().to_string());
                let retry = r.headers().contains_key("retry-after");
                let body = r.text().await.unwrap();
                seen.push((status, ct, retry, body));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            seen
        })
    });
    let replies: Vec<_> = futures::future::join_all(workers)
        .await
        .into_iter()
        .flat_map(|r| r.unwrap())
        .collect();
    let stats = sb.stats();
    sb.shutdown().await.unwrap();

    let per_window = stats.admitted_per_window(None);
    assert!(
        per_window.len() >= 3,
        "the run should span three windows: {per_window:?}"
    );
    assert!(
        per_window.values().all(|&n| n <= limit as u64),
        "a window admitted more than {limit}: {per_window:?}"
    );
    assert!(
        per_window.values().any(|&n| n == limit as u64),
        "the limit was never reached: {per_window:?}"
    );
    let throttled: Vec<_> = replies.iter().filter(|r| r.0 == 429).collect();
    assert!(!throttled.is_empty());
    assert_eq!(throttled.len() as u64, stats.rate_limited);
    for (_, ct, retry, body) in throttled {
        assert_eq!(ct.as_deref(), Some("text/plain"));
        assert!(!retry, "no Retry-After unless configured");
        assert_eq!(body, "Retry later\n");
    }
    // Every log entry agrees with what the clients saw.
    assert_eq!(stats.log.len(), replies.len());
    assert!(stats.log.iter().all(|e| e.admitted == (e.status != 429)));
}

fn statuses(replies: &[super::Reply]) -> Vec<u16> {
    replies.iter().map(|r| r.status.as_u16()).collect()
}

#[tokio::test]
async fn after_a_429_the_budget_returns_at_the_next_window_boundary() {
    let api = Api::new(limited(Some(2), None, false));
    api.state.set_clock(Some(T0));
    api.create(json!({"email": "a@x.com"})).await;
    api.state.set_clock(Some(T0 + 1_000));
    let replies = vec![
        api.get("/contacts").await,
        api.get("/contacts").await,
        api.get("/contacts").await,
    ];
    assert_eq!(statuses(&replies), [200, 200, 429]);
    api.state.set_clock(Some(T0 + 1_999));
    let r = api.get("/contacts").await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the last ms of the window"
    );
    api.state.set_clock(Some(T0 + 2_000));
    assert_eq!(api.get("/contacts").await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_limiter_runs_before_authentication() {
    let api = Api::new(limited(Some(1), None, false));
    api.state.set_clock(Some(T0));
    let replies = vec![
        api.send(axum::http::Method::GET, "/contacts", None, None)
            .await,
        api.get("/contacts").await,
    ];
    // The anonymous request used the window's only slot.
    assert_eq!(statuses(&replies), [401, 429]);
}

#[tokio::test]
async fn search_has_its_own_per_account_limit_that_leaves_other_routes_alone() {
    let api = Api::new(limited(None, Some(2), false));
    api.state.set_clock(Some(T0));
    api.create(json!({"email": "a@x.com"})).await;
    let replies = vec![
        api.get("/contacts/search?q=a").await,
        api.get("/contacts/search?q=a").await,
        api.get("/contacts/search?q=a").await,
        api.get("/contacts").await,
        api.get("/contacts/1").await,
    ];
    assert_eq!(statuses(&replies), [200, 200, 429, 200, 200]);
    assert_eq!(replies[2].text, "Retry later\n");
    let stats = api.state.stats();
    assert!(stats.count_status("GET", route::SEARCH, 429) >= 1);
    assert!(
        stats
            .admitted_per_window(Some(route::SEARCH))
            .values()
            .all(|&n| n <= 2)
    );
}

#[tokio::test]
async fn retry_after_is_sent_only_when_configured_and_counts_seconds_to_the_next_window() {
    let api = Api::new(SandboxConfig {
        limits: RateLimits {
            global: Some(1),
            search: None,
            window: Duration::from_secs(60),
            retry_after: true,
        },
        ..Default::default()
    });
    // 29.5 s before the next minute: rounded up to whole seconds.
    api.state.set_clock(Some(T0 + 30_500));
    api.get("/contacts").await;
    let r = api.get("/contacts").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let secs: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&secs), "Retry-After: {secs}");
    assert_eq!(secs, 30);
}

// ---- latency and faults -----------------------------------------------------------------------

#[tokio::test]
async fn latency_holds_every_request_so_they_overlap_in_flight() {
    let api = Api::new(SandboxConfig {
        latency: Duration::from_millis(100),
        ..Default::default()
    });
    let replies = futures::future::join_all((0..5).map(|_| api.get("/contacts"))).await;
    assert!(replies.iter().all(|r| r.status == StatusCode::OK));
    assert_eq!(api.state.stats().max_in_flight, 5);
}

fn faulty(kinds: Vec<FaultKind>, rate: f64, seed: u64) -> SandboxConfig {
    SandboxConfig {
        faults: Faults {
            rate,
            kinds,
            seed,
            burst_len: 3,
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn a_before_fault_is_a_500_and_nothing_is_written() {
    let api = Api::new(faulty(vec![FaultKind::Before], 1.0, 1));
    let r = api.post("/contacts", json!({"email": "a@x.com"})).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(api.state.contacts().is_empty());
    // Reads are never faulted.
    assert_eq!(api.get("/contacts").await.status, StatusCode::OK);
    assert_eq!(api.state.stats().faults.get("before"), Some(&1));
}

#[tokio::test]
async fn an_after_fault_commits_the_write_then_answers_500() {
    let api = Api::new(faulty(vec![FaultKind::After], 1.0, 1));
    let r = api.post("/contacts", json!({"email": "a@x.com"})).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(api.state.contacts().len(), 1);
    let id = api.state.contacts()[0]["id"].as_u64().unwrap();
    assert_eq!(
        api.post(&format!("/contacts/{id}/notes"), json!({"content": "x"}))
            .await
            .status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(api.state.notes().len(), 1);
    assert_eq!(
        api.delete(&format!("/contacts/{id}")).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert!(api.state.contacts().is_empty());
}

#[tokio::test]
async fn a_429_burst_answers_the_faulted_write_and_the_next_requests() {
    let api = Api::new(faulty(vec![FaultKind::Burst429], 1.0, 1));
    let r = api.post("/contacts", json!({"email": "a@x.com"})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.text, "Retry later\n");
    assert_eq!(
        api.get("/contacts").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        api.get("/contacts").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(api.get("/contacts").await.status, StatusCode::OK);
    assert!(api.state.contacts().is_empty());
    let stats = api.state.stats();
    assert_eq!(stats.rate_limited, 3);
    assert_eq!(stats.faults.get("burst429"), Some(&3));
}

#[tokio::test]
async fn faults_are_reproducible_for_a_seed_and_fire_at_about_the_rate() {
    async fn run(seed: u64) -> Vec<u16> {
        let api = Api::new(faulty(vec![FaultKind::Before, FaultKind::After], 0.3, seed));
        let mut out = vec![];
        for i in 0..60 {
            out.push(
                api.post("/contacts", json!({"email": format!("c{i}@x.com")}))
                    .await
                    .status
                    .as_u16(),
            );
        }
        out
    }
    let (a, b, c) = (run(9).await, run(9).await, run(10).await);
    assert_eq!(a, b);
    assert_ne!(a, c);
    let failed = a.iter().filter(|&&s| s == 500).count();
    assert!(
        (5..=35).contains(&failed),
        "{failed} faults in 60 writes at p=0.3"
    );
}
