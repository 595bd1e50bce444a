//! The client against a tiny scripted server (axum on port 0): each test scripts the answers the
//! real server or a proxy in front of it can give (HTML 502, empty 500, text 429, Retry-After,
//! slow answers, odd bodies) and asserts on what the server received and what the caller got.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use doto_bulk::api::{
    ApiError, ApiToken, Client, ClientConfig, NewContact, RateLimit, TokenHeader, TransportKind,
};

const TOKEN: &str = "quirk-secret-token-42";

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    at: Instant,
}

type Script = dyn Fn(&Seen, usize) -> Response + Send + Sync;

struct Quirk {
    base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Quirk {
    /// Serve `script(request, index of the request)` for every request.
    async fn start(script: impl Fn(&Seen, usize) -> Response + Send + Sync + 'static) -> Quirk {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let script: Arc<Script> = Arc::new(script);
        let s2 = seen.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, _body: Bytes| {
                let seen = s2.clone();
                let script = script.clone();
                async move {
                    let req = Seen {
                        method,
                        uri,
                        headers,
                        at: Instant::now(),
                    };
                    let n = {
                        let mut v = seen.lock().unwrap();
                        v.push(req.clone());
                        v.len() - 1
                    };
                    script(&req, n)
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Quirk {
            base_url: format!("http://{addr}"),
            seen,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn client(&self, tweak: impl FnOnce(&mut ClientConfig)) -> Client {
        let mut cfg = ClientConfig::new(&self.base_url, 1, ApiToken::new(TOKEN).unwrap());
        cfg.rate = RateLimit::per_second(200);
        cfg.search_rate = RateLimit::per_second(100);
        cfg.backoff_base = Duration::from_millis(2);
        cfg.backoff_max = Duration::from_millis(20);
        cfg.max_retries = 2;
        tweak(&mut cfg);
        Client::new(cfg).unwrap()
    }
}

fn reply(status: u16, content_type: &str, body: &str) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", content_type)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn json(status: u16, body: &str) -> Response {
    reply(status, "application/json", body)
}

const CONTACT: &str =
    r#"{"id": 7, "name": "Jane", "email": "a+b@x.com", "created_at": 1711000000}"#;

#[tokio::test]
async fn html_502_on_a_read_is_retried_then_a_server_error_naming_the_page() {
    let q = Quirk::start(|_, _| {
        reply(
            502,
            "text/html",
            "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body></body></html>",
        )
    })
    .await;
    let client = q.client(|_| {});
    let err = client.contacts().get(7).await.unwrap_err();
    match &err {
        ApiError::Server {
            status,
            message,
            attempts,
            ..
        } => {
            assert_eq!((*status, *attempts), (502, 3));
            assert!(message.contains("502 Bad Gateway"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_retryable() && !err.is_outcome_unknown());
    assert_eq!(q.seen().len(), 3, "one attempt and two retries");
    // A server that has failed every request since the start is not waited for (a wrong URL, a
    // server that is down): the first call to give up opens the circuit breaker, and the run
    // stops. (A server that answered and then went away is waited for: tests/it/api.rs.)
    let open = client.unreachable().expect("breaker open");
    assert!(open.contains("not answered any request"), "{open}");
    assert!(matches!(
        client.contacts().get(8).await,
        Err(ApiError::Unreachable { .. })
    ));
}

#[tokio::test]
async fn empty_500_on_a_create_is_outcome_unknown_and_never_resent() {
    let q = Quirk::start(|_, _| reply(500, "text/plain", "")).await;
    let client = q.client(|_| {});
    let new = NewContact {
        name: Some("Jane".into()),
        email: Some("jane@x.com".into()),
        ..Default::default()
    };
    let err = client.contacts().create(&new).await.unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(
        q.seen().len(),
        1,
        "a create whose outcome is unknown is not re-sent"
    );
    assert_eq!(client.metrics().outcome_unknown, 1);
}

#[tokio::test]
async fn text_429_without_retry_after_is_waited_out() {
    // The real 429: text/plain "Retry later", no Retry-After, for the first three requests.
    let q = Quirk::start(|_, n| {
        if n < 3 {
            reply(429, "text/plain", "Retry later\n")
        } else {
            json(200, &format!(r#"{{"payload": {CONTACT}}}"#))
        }
    })
    .await;
    let client = q.client(|c| {
        c.rate = RateLimit::per_second(50);
        c.window = Duration::from_secs(1);
    });
    let c = client.contacts().get(7).await.unwrap();
    assert_eq!(c.id, 7);
    let m = client.metrics();
    assert_eq!((m.rate_limited, m.attempts, m.retries), (3, 4, 3));
    // The 429s close the gate for every task until the next window: with 1 s windows the
    // successful attempt came in a later window than the first 429.
    let seen = q.seen();
    let epoch =
        |i: Instant| std::time::SystemTime::now() - Instant::now().saturating_duration_since(i);
    let w = |i: Instant| {
        epoch(i)
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            / 1000
    };
    assert!(
        w(seen[3].at) > w(seen[0].at),
        "retried within the window that was already full"
    );
}

#[tokio::test]
async fn retry_after_in_seconds_and_as_an_http_date_is_honoured() {
    for header in ["1", "DATE"] {
        let q = Quirk::start(move |_, n| {
            if n == 0 {
                let value = if header == "DATE" {
                    let at = chrono::Utc::now() + chrono::Duration::seconds(2);
                    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
                } else {
                    header.to_owned()
                };
                Response::builder()
                    .status(503)
                    .header("retry-after", value)
                    .body(Body::empty())
                    .unwrap()
            } else {
                json(200, CONTACT)
            }
        })
        .await;
        let client = q.client(|_| {});
        assert_eq!(client.contacts().get(7).await.unwrap().id, 7);
        let seen = q.seen();
        assert_eq!(seen.len(), 2);
        // Retry-After is a lower bound the client must respect (an HTTP date has 1 s resolution).
        let gap = seen[1].at - seen[0].at;
        assert!(
            gap >= Duration::from_millis(900),
            "{header}: retried after {gap:?}"
        );
    }
}

#[tokio::test]
async fn a_body_of_no_known_shape_is_a_decode_error_naming_the_json_path() {
    let q = Quirk::start(|_, _| {
        json(
            200,
            r#"{"payload": {"contact": {"id": 7, "email": ["x"]}}}"#,
        )
    })
    .await;
    let err = q.client(|_| {}).contacts().get(7).await.unwrap_err();
    match err {
        ApiError::Decode { path, endpoint, .. } => {
            assert_eq!(path, "$.payload.contact.email");
            assert_eq!(endpoint, "GET /api/v1/accounts/1/contacts/7");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_after_sending_is_outcome_unknown_for_a_create_and_retried_for_a_read() {
    let q = Quirk::start(|_, _| {
        std::thread::sleep(Duration::from_millis(300));
        json(200, CONTACT)
    })
    .await;
    let client = q.client(|c| c.request_timeout = Duration::from_millis(100));
    let err = client
        .contacts()
        .create(&NewContact::default())
        .await
        .unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    let err = client.contacts().get(7).await.unwrap_err();
    assert!(
        matches!(
            err,
            ApiError::Transport {
                kind: TransportKind::Timeout,
                attempts: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
    let seen = q.seen();
    assert_eq!(seen.iter().filter(|s| s.method == Method::POST).count(), 1);
    assert_eq!(seen.iter().filter(|s| s.method == Method::GET).count(), 3);
}

#[tokio::test]
async fn connection_refused_is_a_retryable_transport_error_even_for_a_create() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut cfg = ClientConfig::new(format!("http://{addr}"), 1, ApiToken::new(TOKEN).unwrap());
    cfg.backoff_base = Duration::from_millis(1);
    cfg.max_retries = 1;
    let client = Client::new(cfg).unwrap();
    let err = client
        .contacts()
        .create(&NewContact::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ApiError::Transport {
                kind: TransportKind::Connect,
                attempts: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable() && !err.is_outcome_unknown());
    assert!(!format!("{err} {err:?}").contains(TOKEN));
}

#[tokio::test]
async fn token_goes_in_the_chosen_header_only_and_queries_are_percent_encoded() {
    let q = Quirk::start(|_, _| {
        json(
            200,
            &format!(r#"{{"meta": {{"count": 1, "current_page": "1", "has_more": false}}, "payload": [{CONTACT}]}}"#),
        )
    })
    .await;
    for (spelling, name) in [
        (TokenHeader::Underscore, "api_access_token"),
        (TokenHeader::Dash, "api-access-token"),
    ] {
        let client = q.client(|c| c.token_header = spelling);
        let hit = client.contacts().find_by_email("A+B@x.com").await.unwrap();
        assert_eq!(hit.map(|c| c.id), Some(7));
        let last = q.seen().pop().unwrap();
        assert_eq!(last.headers.get(name).unwrap(), TOKEN);
        assert_eq!(last.headers.len(), last.headers.keys_len());
        assert!(!last.uri.to_string().contains(TOKEN));
        assert_eq!(last.uri.path(), "/api/v1/accounts/1/contacts/search");
        let query = last.uri.query().unwrap();
        assert!(query.contains("q=a%2Bb%40x.com"), "{query}");
        assert!(query.contains("page=1"), "{query}");
        assert!(query.contains("sort=email"), "{query}");
    }
}

#[tokio::test]
async fn page_zero_and_blank_search_never_reach_the_server() {
    let q = Quirk::start(|_, _| json(200, r#"{"meta": {}, "payload": []}"#)).await;
    let client = q.client(|_| {});
    assert!(matches!(
        client.contacts().list().page(0).await,
        Err(ApiError::InvalidInput(_))
    ));
    assert!(
        client
            .contacts()
            .search("   ")
            .all()
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        client.contacts().list().sort("colour").page(1).await,
        Err(ApiError::InvalidInput(_))
    ));
    let empty_id = NewContact {
        identifier: Some(String::new()),
        ..Default::default()
    };
    assert!(matches!(
        client.contacts().create(&empty_id).await,
        Err(ApiError::InvalidInput(_))
    ));
    assert!(q.seen().is_empty());
}

#[tokio::test]
async fn token_never_appears_in_debug_display_or_errors() {
    let q = Quirk::start(|_, _| json(401, r#"{"error": "Invalid Access Token"}"#)).await;
    let client = q.client(|_| {});
    let err = client.contacts().get(1).await.unwrap_err();
    assert!(
        matches!(err, ApiError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    let all = format!(
        "{client:?} {err} {err:?} {:?} {}",
        client.config(),
        client.config().token
    );
    assert!(!all.contains(TOKEN), "{all}");
    assert!(all.contains("***"));
}

/// Page `page` of a listing of `ids` (15 a page) as the server answers it, saying `count`.
fn listing_page(ids: &[u64], count: usize, page: usize) -> Response {
    let rows: Vec<String> = ids
        .iter()
        .skip((page - 1) * 15)
        .take(15)
        .map(|id| format!(r#"{{"id": {id}, "email": "c{id}@x.test"}}"#))
        .collect();
    let body = format!(
        r#"{{"meta": {{"count": {count}, "current_page": {page}}}, "payload": [{}]}}"#,
        rows.join(",")
    );
    json(200, &body)
}

fn page_of(s: &Seen) -> usize {
    let q = s.uri.query().unwrap_or("");
    q.split('&')
        .find_map(|kv| kv.strip_prefix("page="))
        .and_then(|p| p.parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_contact_deleted_between_pages_is_repaired_by_one_ranged_round() {
    use futures::StreamExt;
    // 45 contacts; contact 3 is deleted right after page 1 was served, so contact 16 moves back
    // onto page 1 and the first pass never sees it.
    let before: Vec<u64> = (1..=45).collect();
    let after: Vec<u64> = before.iter().copied().filter(|id| *id != 3).collect();
    let q = Quirk::start(move |s, n| {
        let ids = if n == 0 { &before } else { &after };
        listing_page(ids, ids.len(), page_of(s))
    })
    .await;
    let client = q.client(|c| c.concurrency = doto_bulk::api::Concurrency::Fixed(1));
    let mut pages = client.contacts().list().sort("email").pages();
    let mut ids = vec![];
    let mut totals = vec![];
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        totals.push((page.number, page.total));
        ids.extend(page.contacts.iter().map(|c| c.id));
    }
    // The first pass saw the total move on page 2; one round re-read pages 1 to 3 and found 16.
    assert_eq!(
        totals,
        [(1, 45), (2, 44), (3, 44), (1, 44), (2, 44), (3, 44)]
    );
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, (1..=45).collect::<Vec<u64>>(), "each contact once");
    assert_eq!(*ids.last().unwrap(), 16, "found by the round");
    let s = pages.summary();
    assert_eq!((s.passes, s.pages, s.duplicates), (2, 6, 43));
    assert_eq!((s.total_start, s.total), (Some(45), Some(44)));
    let d = &s.drift;
    assert!(d.detected && d.repaired, "{s:?}");
    assert_eq!((d.rounds, d.pages_refetched, d.recovered), (1, 3, 1));
    assert_eq!(q.seen().len(), 6);
}

#[tokio::test]
async fn a_listing_that_never_shows_the_total_ends_incomplete_after_the_passes() {
    use futures::StreamExt;
    // The server counts 20 contacts but only ever lists 16 (a page 2 of one row).
    let ids: Vec<u64> = (1..=16).collect();
    let q = Quirk::start(move |s, _| listing_page(&ids, 20, page_of(s))).await;
    let client = q.client(|c| c.max_list_passes = 3);
    let mut pages = client.contacts().list().pages();
    let mut seen = 0;
    let err = loop {
        match pages.next().await.expect("the stream ends with the error") {
            Ok(p) => seen += p.contacts.len(),
            Err(e) => break e,
        }
    };
    assert_eq!(seen, 16);
    assert_eq!(err.page, None);
    match err.source {
        ApiError::Incomplete { seen, total, .. } => assert_eq!((seen, total), (16, 20)),
        other => panic!("{other:?}"),
    }
    assert!(pages.next().await.is_none());
    // Three passes of both pages, every one read from page 1 (the total never moved).
    assert_eq!(q.seen().len(), 6);
    assert_eq!(pages.summary().passes, 3);
}
