//! The client and its one choke point, `send()`: every request takes a
//! permit from the shared limiter (and the search limiter for searches) for every attempt, is
//! classified by [`classify`], retried with backoff and full jitter or handed back as a typed
//! [`ApiError`], and counted in [`Metrics`]. The client is `Clone + Send + Sync` (an `Arc` inside),
//! so all workers of a run share one rate limit.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Serialize;

use super::adaptive::{self, Concurrency, ConcurrencyStats, Limit, Observation};
use super::breaker::Breaker;
use super::error::{ApiError, TransportKind, parse_error_body};
use super::retry::{Decision, Observed, Reason, backoff, classify, retry_after};
use super::secret::ApiToken;
use super::throttle::{Lane, LaneStatus, LimitSignal, Ticket};

/// How the token header is spelled on the wire (some proxies drop header names with underscores).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenHeader {
    /// `api_access_token`
    #[default]
    Underscore,
    /// `api-access-token`
    Dash,
}

impl TokenHeader {
    fn header_name(self) -> &'static str {
        match self {
            TokenHeader::Underscore => "api_access_token",
            TokenHeader::Dash => "api-access-token",
        }
    }
}

/// A fixed-window rate limit: `requests` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Duration,
}

impl RateLimit {
    pub fn per_second(requests: u32) -> Self {
        RateLimit {
            requests,
            per: Duration::from_secs(1),
        }
    }
    pub fn per_minute(requests: u32) -> Self {
        RateLimit {
            requests,
            per: Duration::from_secs(60),
        }
    }
    pub fn per_hour(requests: u32) -> Self {
        RateLimit {
            requests,
            per: Duration::from_secs(3600),
        }
    }
    /// Requests per second.
    pub fn per_sec(self) -> f64 {
        self.requests.max(1) as f64 / self.per.as_secs_f64().max(1e-3)
    }
}

/// Everything the client needs; [`ClientConfig::new`] fills in the defaults.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://app.usendoto.com` (a trailing `/` is fine).
    pub base_url: String,
    pub account_id: u64,
    pub token: ApiToken,
    /// `api_access_token` or `api-access-token`.
    pub token_header: TokenHeader,
    /// The most the client sends, all requests together (it paces evenly within it). Default:
    /// 3,000 per minute.
    pub rate: RateLimit,
    /// The separate, lower budget for search (per account on the server). Default: 100 per minute.
    pub search_rate: RateLimit,
    /// Length of the server's fixed rate-limit windows, aligned to the clock (a minute on the real
    /// server). [`ClientConfig::set_rate`] makes it the rate's unit (`50/s`: 1 s, `3000/min`:
    /// 60 s). After a 429 without `Retry-After` the client probes at short, growing intervals and
    /// corrects this length from when requests are admitted again.
    pub window: Duration,
    /// Fraction of each window's budget the client plans to use: no window's worth of time,
    /// wherever it starts, holds more sends than that, so that arrival jitter cannot push the
    /// server's window over its limit; within it requests go at the full rate. Default 0.98.
    pub headroom: f64,
    /// Retries of one request after 5xx and transport failures (429s are counted separately).
    pub max_retries: u32,
    /// 429 answers one request may receive before it fails as [`ApiError::RateLimited`].
    pub max_rate_limited: u32,
    pub connect_timeout: Duration,
    /// Whole-request timeout (a timeout after sending is "outcome unknown" for a create).
    pub request_timeout: Duration,
    /// The circuit breaker: when every attempt for this long failed (connection errors, 5xx,
    /// timeouts), every call fails at once with [`ApiError::Unreachable`]. Default 60 s.
    pub give_up_after: Duration,
    /// First backoff ceiling (doubles per retry, full jitter).
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Rows or pages in flight at once (`--concurrency`): adapted (the default) or fixed. Pages
    /// of a listing take slots of it unless the listing sets its own number.
    pub concurrency: Concurrency,
    /// `--max-concurrency`: the most an adapted concurrency grows to.
    pub max_concurrency: usize,
    /// Full passes over the listing before giving up on reaching the server's total.
    pub max_list_passes: u32,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, account_id: u64, token: ApiToken) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            account_id,
            token,
            token_header: TokenHeader::Underscore,
            rate: RateLimit::per_minute(3000),
            search_rate: RateLimit::per_minute(100),
            window: Duration::from_secs(60),
            headroom: 0.98,
            max_retries: 5,
            max_rate_limited: 50,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            give_up_after: Duration::from_secs(60),
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            concurrency: Concurrency::Auto,
            max_concurrency: adaptive::DEFAULT_MAX,
            max_list_passes: 6,
        }
    }
}

impl ClientConfig {
    /// `--rate` and `--rate-window`: the rate when given, and the window explicitly given, else
    /// the given rate's unit (`50/s` means windows of a second).
    pub fn set_rate(&mut self, rate: Option<RateLimit>, window: Option<Duration>) {
        if let Some(r) = rate {
            self.rate = r;
            self.window = r.per;
        }
        if let Some(w) = window {
            self.window = w;
        }
    }
}

/// What a request is, for the counters and the search limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RequestKind {
    List,
    Search,
    Get,
    Create,
    Update,
    Delete,
    Conversations,
    Note,
    /// `GET /contacts/{id}/notes`: used to check whether a note whose outcome was unknown landed.
    Notes,
    /// `GET /api/v1/profile` (outside the contacts path): the token's role in the account.
    Profile,
}

impl RequestKind {
    const ALL: [RequestKind; 10] = [
        RequestKind::List,
        RequestKind::Search,
        RequestKind::Get,
        RequestKind::Create,
        RequestKind::Update,
        RequestKind::Delete,
        RequestKind::Conversations,
        RequestKind::Note,
        RequestKind::Notes,
        RequestKind::Profile,
    ];
    /// The slot of this kind in the counters.
    fn index(self) -> usize {
        RequestKind::ALL
            .iter()
            .position(|k| *k == self)
            .unwrap_or(0)
    }

    fn as_str(self) -> &'static str {
        match self {
            RequestKind::List => "list",
            RequestKind::Search => "search",
            RequestKind::Get => "get",
            RequestKind::Create => "create",
            RequestKind::Update => "update",
            RequestKind::Delete => "delete",
            RequestKind::Conversations => "conversations",
            RequestKind::Note => "note",
            RequestKind::Notes => "notes",
            RequestKind::Profile => "profile",
        }
    }
}

#[derive(Default)]
struct Counters {
    requests: [AtomicU64; 10],
    attempts: AtomicU64,
    retries: AtomicU64,
    /// Retries by [`Reason::key`], in the order of [`Reason::RETRIED`].
    retry_reasons: [AtomicU64; 6],
    /// Calls sleeping before their next attempt, and why the last one did.
    waiting: AtomicU64,
    last_wait: Mutex<Option<Reason>>,
    rate_limited: AtomicU64,
    server_errors: AtomicU64,
    transport_errors: AtomicU64,
    outcome_unknown: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The counters an import reports (`summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// Calls by kind (one per call, whatever its retries).
    pub requests: BTreeMap<&'static str, u64>,
    /// HTTP attempts, retries included.
    pub attempts: u64,
    /// Attempts that repeated an earlier one (after a 429, 5xx or transport failure).
    pub retries: u64,
    /// `retries` by reason: `rate_limited`, `server_error`, `connect_failed`, `timeout`,
    /// `connection_closed`, `transport_error` (reasons with none are left out).
    pub retries_by_reason: BTreeMap<&'static str, u64>,
    /// 429 answers received.
    pub rate_limited: u64,
    /// 5xx answers received.
    pub server_errors: u64,
    /// Attempts that got no response.
    pub transport_errors: u64,
    /// Writes returned as outcome unknown.
    pub outcome_unknown: u64,
    /// The adaptive pace of all requests and of search.
    pub rate: LaneStatus,
    pub search_rate: LaneStatus,
    /// Rows or pages in flight: the sizes used and what bound the run.
    pub concurrency: ConcurrencyStats,
}

impl Metrics {
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }
}

pub(crate) struct Inner {
    http: reqwest::Client,
    /// `{base}/api/v1/accounts/{id}/contacts`
    contacts_url: String,
    /// `/api/v1/accounts/{id}/contacts`, for error messages.
    pub(crate) contacts_path: String,
    token_header: HeaderName,
    token: ApiToken,
    config: ClientConfig,
    general: Lane,
    search: Lane,
    breaker: Breaker,
    counters: Counters,
    limit: Limit,
}

/// A typed client of the Doto contacts API. Cheap to clone; clones share the rate limit and the
/// counters.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("contacts_url", &self.inner.contacts_url)
            .field("token", &self.inner.token)
            .finish_non_exhaustive()
    }
}

/// One request as `send()` takes it. `path` is relative to the contacts URL (`""`, `/search`,
/// `/12/notes`).
pub(crate) struct Req {
    pub kind: RequestKind,
    pub method: Method,
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<serde_json::Value>,
}

impl Client {
    /// Build a client; fails only when the base URL is not http(s) or TLS cannot be set up.
    pub fn new(config: ClientConfig) -> anyhow::Result<Client> {
        let base = config.base_url.trim().trim_end_matches('/').to_owned();
        let url = reqwest::Url::parse(&base)
            .map_err(|e| anyhow::anyhow!("base URL {base:?} is not a valid URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https")
            || !url.username().is_empty()
            || url.password().is_some()
        {
            anyhow::bail!("base URL {base:?} must be http(s) without credentials");
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("doto-bulk/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let contacts_path = format!("/api/v1/accounts/{}/contacts", config.account_id);
        let general = Lane::new(config.rate.per_sec(), config.window, config.headroom);
        let search = Lane::new(config.search_rate.per_sec(), config.window, config.headroom);
        let breaker = Breaker::new(config.give_up_after);
        let limit = Limit::new(config.concurrency, config.max_concurrency);
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                contacts_url: format!("{base}{contacts_path}"),
                contacts_path,
                token_header: HeaderName::from_static(config.token_header.header_name()),
                token: config.token.clone(),
                config,
                general,
                search,
                breaker,
                counters: Counters::default(),
                limit,
            }),
        })
    }

    /// A snapshot of the counters.
    pub fn metrics(&self) -> Metrics {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Metrics {
            requests: RequestKind::ALL
                .iter()
                .enumerate()
                .map(|(i, k)| (k.as_str(), get(&c.requests[i])))
                .collect(),
            attempts: get(&c.attempts),
            retries: get(&c.retries),
            retries_by_reason: Reason::RETRIED
                .iter()
                .zip(&c.retry_reasons)
                .map(|(k, n)| (*k, get(n)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            rate_limited: get(&c.rate_limited),
            server_errors: get(&c.server_errors),
            transport_errors: get(&c.transport_errors),
            outcome_unknown: get(&c.outcome_unknown),
            rate: self.inner.general.status(),
            search_rate: self.inner.search.status(),
            concurrency: self.inner.limit.stats(),
        }
    }

    /// The slots rows (import, revert) and pages (listings) take while in flight.
    pub fn limit(&self) -> &Limit {
        &self.inner.limit
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// `GET /api/v1/profile`: the token's role in the configured account (`administrator`,
    /// `agent`), `None` when the profile does not list the account.
    pub async fn role(&self) -> Result<Option<String>, ApiError> {
        let req = Req {
            kind: RequestKind::Profile,
            method: Method::GET,
            path: "/api/v1/profile".into(),
            query: vec![],
            body: None,
        };
        let body = self.send(req).await?;
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| ApiError::Decode {
            endpoint: "GET /api/v1/profile".into(),
            path: String::new(),
            message: e.to_string(),
        })?;
        let account = self.inner.config.account_id;
        let accounts = v["accounts"].as_array().into_iter().flatten();
        let mut ours = accounts.filter(|a| a["id"].as_u64() == Some(account));
        Ok(ours
            .next()
            .and_then(|a| a["role"].as_str())
            .map(str::to_owned))
    }

    /// The one way a request reaches the server; returns the body of a 2xx answer. Each attempt
    /// takes its permits, is sent and judged ([`Client::attempt`]); the judgement says whether to
    /// return, give up or wait and try again ([`Client::after_attempt`]).
    pub(crate) async fn send(&self, req: Req) -> Result<Bytes, ApiError> {
        let inner = &*self.inner;
        bump(&inner.counters.requests[req.kind.index()]);
        let mut call = Call::new(inner, &req);
        let mut retrying: Option<Reason> = None;
        loop {
            if let Some(message) = inner.breaker.open() {
                let endpoint = std::mem::take(&mut call.endpoint);
                return Err(ApiError::Unreachable { endpoint, message });
            }
            if let Some(reason) = retrying.take() {
                self.count_retry(reason);
            }
            let (decision, outcome) = self.attempt(&mut call).await;
            match self.after_attempt(&mut call, decision, outcome)? {
                Next::Done(bytes) => return Ok(bytes),
                Next::Retry(wait, reason) => {
                    retrying = Some(reason);
                    self.wait_to_retry(wait, reason).await;
                }
            }
        }
    }

    /// Sleep before the next attempt (counted as waiting, for the progress line), waking early
    /// when the circuit breaker opens so that a dead server stops the run promptly.
    async fn wait_to_retry(&self, wait: Option<Duration>, reason: Reason) {
        let inner = &*self.inner;
        *inner.counters.last_wait.lock().unwrap() = Some(reason);
        let Some(wait) = wait.filter(|w| !w.is_zero()) else {
            return;
        };
        inner.counters.waiting.fetch_add(1, Ordering::Relaxed);
        let until = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < until && inner.breaker.open().is_none() {
            let slice = until.saturating_duration_since(tokio::time::Instant::now());
            tokio::time::sleep(slice.min(Duration::from_millis(100))).await;
        }
        inner.counters.waiting.fetch_sub(1, Ordering::Relaxed);
    }

    /// What the run is waiting on, for the progress line: retries after failures, or a 429
    /// pause. `None` while requests flow.
    pub fn waiting_on(&self) -> Option<String> {
        let inner = &*self.inner;
        let n = inner.counters.waiting.load(Ordering::Relaxed);
        if n > 0 {
            let why = inner
                .counters
                .last_wait
                .lock()
                .unwrap()
                .map(|r| r.to_string());
            return Some(format!(
                "waiting to retry {n} request{} ({})",
                if n == 1 { "" } else { "s" },
                why.as_deref().unwrap_or("after a failure")
            ));
        }
        if inner.general.paused() || inner.search.paused() {
            return Some("rate limited: waiting for the server's window".into());
        }
        None
    }

    /// The message of the open circuit breaker (the server has not answered for the configured
    /// time), if it is open.
    pub fn unreachable(&self) -> Option<String> {
        self.inner.breaker.open()
    }

    /// One attempt: the permits (the search lane's too for a search), the exchange, the lanes and
    /// the breaker told what the server said, and the retry policy's decision on it.
    async fn attempt(&self, call: &mut Call<'_>) -> (Decision, Outcome) {
        let inner = &*self.inner;
        let search_ticket = if call.req.kind == RequestKind::Search {
            Some(inner.search.acquire().await)
        } else {
            None
        };
        let asked_at = Instant::now();
        let ticket = inner.general.acquire().await;
        call.attempts += 1;
        bump(&inner.counters.attempts);
        let sent_at = Instant::now();
        let result = self.exchange(call).await;
        self.observe(call, &result, sent_at - asked_at, sent_at.elapsed());
        let now = SystemTime::now();
        let method = &call.req.method;
        match result {
            Ok((status, headers, bytes)) => {
                log_attempt(call, &status.to_string(), sent_at, Some(bytes.len()));
                if status.is_server_error() {
                    let body = parse_error_body(&bytes).message;
                    inner
                        .breaker
                        .failed(sent_at, format!("server error ({status}): {body}"));
                } else {
                    inner.breaker.answered();
                }
                self.report_response(status, &headers, now, ticket, search_ticket);
                let observed = Observed::Response {
                    status,
                    headers: &headers,
                };
                let d = classify(method, observed, now);
                (d, Outcome::Status(status, bytes))
            }
            Err(e) => {
                bump(&inner.counters.transport_errors);
                inner.general.report(ticket, LimitSignal::Unknown);
                if let Some(t) = search_ticket {
                    inner.search.report(t, LimitSignal::Unknown);
                }
                let kind = transport_kind(&e);
                log_attempt(call, &kind.to_string(), sent_at, None);
                inner.breaker.failed(sent_at, kind.to_string());
                let d = classify(method, Observed::Transport(kind), now);
                (d, Outcome::Transport(kind, error_chain(&e)))
            }
        }
    }

    /// Tell the concurrency limit what an attempt showed (searches have their own, fixed slots).
    fn observe<T>(
        &self,
        call: &Call<'_>,
        result: &Result<(StatusCode, T, Bytes), reqwest::Error>,
        waited: Duration,
        rtt: Duration,
    ) {
        if call.req.kind == RequestKind::Search {
            return;
        }
        let status = result.as_ref().ok().map(|r| r.0);
        self.inner.limit.observe(Observation {
            rtt,
            waited,
            rate_limited: status == Some(StatusCode::TOO_MANY_REQUESTS),
            failed: status.is_none_or(|s| s.is_server_error()),
            rate_per_sec: self.inner.general.status().rate_per_sec,
        });
    }

    /// Send the request once: the status, headers and whole body, or the transport failure.
    async fn exchange(
        &self,
        call: &Call<'_>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), reqwest::Error> {
        let inner = &*self.inner;
        let mut rb = inner
            .http
            .request(call.req.method.clone(), &call.url)
            .header(&inner.token_header, inner.token.header_value())
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        if !call.req.query.is_empty() {
            rb = rb.query(&call.req.query);
        }
        if let Some(b) = &call.body {
            rb = rb
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(b.clone());
        }
        let resp = rb.send().await?;
        let (status, headers) = (resp.status(), resp.headers().clone());
        Ok((status, headers, resp.bytes().await?))
    }

    /// Count a response and tell the lanes whether it was a 429.
    fn report_response(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        now: SystemTime,
        ticket: Ticket<'_>,
        search_ticket: Option<Ticket<'_>>,
    ) {
        let inner = &*self.inner;
        let signal = if status == StatusCode::TOO_MANY_REQUESTS {
            bump(&inner.counters.rate_limited);
            LimitSignal::Limited(retry_after(headers, now))
        } else {
            LimitSignal::Accepted
        };
        if status.is_server_error() {
            bump(&inner.counters.server_errors);
        }
        match search_ticket {
            // A 429 on a search is most likely the search limit (per account, much lower): it
            // closes the search gate only. If the general limit was hit instead, the next
            // non-search request finds out.
            Some(t) => {
                inner.search.report(t, signal);
                let general = match signal {
                    LimitSignal::Limited(_) => LimitSignal::Unknown,
                    s => s,
                };
                inner.general.report(ticket, general);
            }
            None => inner.general.report(ticket, signal),
        }
    }

    /// What follows an attempt: the body, the error the call ends with, or another attempt after
    /// an optional wait (the budgets of retries and 429s are kept in `call`).
    fn after_attempt(
        &self,
        call: &mut Call<'_>,
        decision: Decision,
        outcome: Outcome,
    ) -> Result<Next, ApiError> {
        let config = &self.inner.config;
        match decision {
            Decision::Accept => match outcome {
                Outcome::Status(_, bytes) => Ok(Next::Done(bytes)),
                Outcome::Transport(..) => unreachable!("a transport failure is never accepted"),
            },
            Decision::Retry {
                reason: Reason::RateLimited,
                after,
            } => {
                call.limited += 1;
                if call.limited > config.max_rate_limited {
                    let endpoint = std::mem::take(&mut call.endpoint);
                    let attempts = call.attempts;
                    return Err(ApiError::RateLimited { endpoint, attempts });
                }
                // The lane paused everyone until then; this keeps the promise for this request
                // too even if the lane's gate has been reopened by a probe.
                let wait = after.map(|a| a.min(Duration::from_secs(3600)));
                log_retry(call, Reason::RateLimited, wait);
                Ok(Next::Retry(wait, Reason::RateLimited))
            }
            Decision::Retry { after, reason } => {
                if !matches!(reason, Reason::ConnectFailed) {
                    call.maybe_applied = true;
                }
                // While the server fails every request, a call keeps trying until it answers
                // or the circuit breaker stops the run: a dead server fails no row by itself.
                if call.retries >= config.max_retries && !self.inner.breaker.failing() {
                    tracing::info!(endpoint = %call.endpoint, %reason, "giving up after {} attempts", call.attempts);
                    self.inner.breaker.never_answered();
                    return Err(self.give_up(call, outcome));
                }
                let cap = config.backoff_max.min(self.inner.breaker.limit() / 4);
                let wait = after.unwrap_or_else(|| {
                    backoff(
                        config.backoff_base,
                        cap.max(config.backoff_base),
                        call.retries,
                    )
                });
                call.retries += 1;
                log_retry(call, reason, Some(wait));
                Ok(Next::Retry(Some(wait), reason))
            }
            Decision::GiveUp { .. } => {
                // An earlier attempt of a DELETE may have been applied: a later 404 is success.
                if call.req.method == Method::DELETE
                    && call.maybe_applied
                    && matches!(outcome, Outcome::Status(s, _) if s == StatusCode::NOT_FOUND)
                {
                    return Ok(Next::Done(Bytes::new()));
                }
                Err(self.give_up(call, outcome))
            }
        }
    }

    /// Count a retry (as its attempt starts) and its reason.
    fn count_retry(&self, reason: Reason) {
        let c = &self.inner.counters;
        bump(&c.retries);
        if let Some(i) = Reason::RETRIED.iter().position(|k| *k == reason.key()) {
            bump(&c.retry_reasons[i]);
        }
    }

    fn give_up(&self, call: &mut Call<'_>, outcome: Outcome) -> ApiError {
        let endpoint = std::mem::take(&mut call.endpoint);
        self.final_error(&call.req.method, endpoint, outcome, call.attempts)
    }

    /// Turn the last thing observed into the error the caller gets.
    fn final_error(
        &self,
        method: &Method,
        endpoint: String,
        outcome: Outcome,
        attempts: u32,
    ) -> ApiError {
        let write = !matches!(*method, Method::GET | Method::HEAD);
        let err = match outcome {
            Outcome::Status(status, body) => {
                let code = status.as_u16();
                let parsed = parse_error_body(&body);
                match code {
                    401 if parsed.message.starts_with("You are not authorized") => {
                        ApiError::Forbidden {
                            endpoint,
                            status: code,
                            message: parsed.message,
                        }
                    }
                    401 => ApiError::Unauthorized {
                        endpoint,
                        status: code,
                        message: parsed.message,
                    },
                    403 => ApiError::Forbidden {
                        endpoint,
                        status: code,
                        message: parsed.message,
                    },
                    404 => ApiError::NotFound {
                        endpoint,
                        message: parsed.message,
                    },
                    429 => ApiError::RateLimited { endpoint, attempts },
                    c if (c >= 500 || c == 408) && write => ApiError::OutcomeUnknown {
                        endpoint,
                        cause: format!(
                            "server error ({c}) after {attempts} attempts: {}",
                            parsed.message
                        ),
                    },
                    c if c >= 500 || c == 408 => ApiError::Server {
                        endpoint,
                        status: c,
                        message: parsed.message,
                        attempts,
                    },
                    _ => ApiError::Rejected {
                        endpoint,
                        status: code,
                        message: parsed.message,
                        attributes: parsed.attributes,
                    },
                }
            }
            Outcome::Transport(kind, message) if write && !kind.nothing_sent() => {
                ApiError::OutcomeUnknown {
                    endpoint,
                    cause: format!("{kind} after {attempts} attempts: {message}"),
                }
            }
            Outcome::Transport(kind, message) => ApiError::Transport {
                endpoint,
                kind,
                message,
                attempts,
            },
        };
        if err.is_outcome_unknown() {
            bump(&self.inner.counters.outcome_unknown);
        }
        err
    }
}

/// One call of `send()` across its attempts.
struct Call<'r> {
    req: &'r Req,
    /// `METHOD /api/v1/accounts/{id}/contacts{path}`, for errors and logs.
    endpoint: String,
    url: String,
    body: Option<Bytes>,
    attempts: u32,
    /// Retries after 5xx and transport failures.
    retries: u32,
    /// 429s received.
    limited: u32,
    /// An earlier attempt may have been applied (DELETE: a later 404 is success).
    maybe_applied: bool,
}

impl<'r> Call<'r> {
    fn new(inner: &Inner, req: &'r Req) -> Call<'r> {
        // Every path is under the account's contacts but the profile's, which is the server's.
        let (prefix, url) = match req.kind {
            RequestKind::Profile => ("", inner.contacts_url.strip_suffix(&inner.contacts_path)),
            _ => (
                inner.contacts_path.as_str(),
                Some(inner.contacts_url.as_str()),
            ),
        };
        Call {
            req,
            endpoint: format!("{} {prefix}{}", req.method, req.path),
            url: format!("{}{}", url.unwrap_or_default(), req.path),
            body: req
                .body
                .as_ref()
                .map(|b| Bytes::from(serde_json::to_vec(b).expect("JSON values serialize"))),
            attempts: 0,
            retries: 0,
            limited: 0,
            maybe_applied: false,
        }
    }
}

/// Log one attempt (`-v`): method, path (query values that may hold personal data masked),
/// status or failure, time taken and attempt number; `-vv` adds the bodies' sizes. Never a
/// header, so never the token.
fn log_attempt(call: &Call<'_>, status: &str, sent_at: Instant, response_len: Option<usize>) {
    let ms = sent_at.elapsed().as_millis();
    let query = loggable_query(&call.req.query);
    if tracing::enabled!(tracing::Level::DEBUG) {
        let sent = call.body.as_ref().map_or(0, |b| b.len());
        let got = response_len.map_or_else(|| "-".to_owned(), |n| n.to_string());
        tracing::debug!(
            "{}{query} -> {status} in {ms} ms (attempt {}; sent {sent} B, received {got} B)",
            call.endpoint,
            call.attempts
        );
    } else {
        tracing::info!(
            "{}{query} -> {status} in {ms} ms (attempt {})",
            call.endpoint,
            call.attempts
        );
    }
}

/// The query string for a log line: paging and sorting shown, every other value (the searched
/// email, phone or name) masked.
fn loggable_query(query: &[(&'static str, String)]) -> String {
    if query.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = query
        .iter()
        .map(|(k, v)| match *k {
            "page" | "sort" | "per_page" => format!("{k}={v}"),
            _ => format!("{k}=…"),
        })
        .collect();
    format!("?{}", parts.join("&"))
}

/// Log a retry decision and its reason (`-v`).
fn log_retry(call: &Call<'_>, reason: Reason, wait: Option<Duration>) {
    let wait_ms = wait.map_or(0, |w| w.as_millis() as u64);
    tracing::info!(
        "retry {} in {wait_ms} ms: {reason} (after attempt {})",
        call.endpoint,
        call.attempts
    );
}

/// What `send()` does after an attempt that did not end the call with an error.
enum Next {
    Done(Bytes),
    /// Try again, after this wait if any, for this reason.
    Retry(Option<Duration>, Reason),
}

/// What one attempt observed.
enum Outcome {
    Status(StatusCode, Bytes),
    Transport(TransportKind, String),
}

fn transport_kind(e: &reqwest::Error) -> TransportKind {
    if e.is_connect() {
        TransportKind::Connect
    } else if e.is_timeout() {
        TransportKind::Timeout
    } else if e.is_request() || e.is_body() || e.is_decode() {
        TransportKind::Closed
    } else {
        TransportKind::Other
    }
}

/// The error and its causes on one line, without the URL (which may carry a searched email).
fn error_chain(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut parts = vec![];
    let mut src: Option<&dyn Error> = e.source();
    while let Some(s) = src {
        parts.push(s.to_string());
        src = s.source();
    }
    if parts.is_empty() {
        "request failed".into()
    } else {
        parts.join(": ")
    }
}

// Workers share one client across tasks: keep it `Clone + Send + Sync` (checked at compile time).
const _: fn() = || {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<Client>();
};
