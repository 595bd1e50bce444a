//! The HTTP surface: the contacts endpoints with the real server's bodies and statuses, the side
//! endpoints under `/_sandbox/`, and the gate every API request passes through (429 bursts, rate
//! limits, latency, faults on writes, counting), in the order the real stack applies them: the rate
//! limiter (rack-attack) sits in front of everything, even authentication.
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Value, json};
use tower_service::Service;

use super::config::{FaultKind, Flavour};
use super::server::ConnKill;
use super::stats::{LogEntry, classify, route};
use super::store::{self, ContactParams, NOTE_MAX, PER_PAGE, Role, Sort, User, WriteError, mix};
use super::{SandboxState, lock};

/// The sandbox's routes over `state`; serve it with [`super::spawn`] or drive it with `oneshot`.
pub fn router(state: SandboxState) -> Router {
    // Rails normalises the path before it routes; a layer on the routes would run after routing,
    // so the normalising wraps the whole inner router.
    let inner = routes(state);
    Router::new().fallback(move |req: Request| {
        let mut inner = inner.clone();
        async move {
            match inner.call(rails_path(req)).await {
                Ok(r) => r,
                Err(never) => match never {},
            }
        }
    })
}

fn routes(state: SandboxState) -> Router {
    let api = "/api/v1/accounts/{account_id}/contacts";
    let mut r = Router::new()
        .route(api, get(list).post(create))
        .route(&format!("{api}/search"), get(search))
        .route(
            &format!("{api}/{{id}}"),
            get(show).patch(update).put(update).delete(destroy),
        )
        .route(&format!("{api}/{{id}}/conversations"), get(conversations))
        .route(
            &format!("{api}/{{id}}/notes"),
            post(create_note).get(list_notes),
        );
    // An older server serves neither: the fallback's 404 on the route itself.
    if !state.config().no_removal_routes {
        r = r
            .route(
                &format!("{api}/{{id}}/destroy_custom_attributes"),
                post(destroy_custom_attributes),
            )
            .route(
                &format!("{api}/{{id}}/notes/{{note_id}}"),
                delete(destroy_note),
            );
    }
    r.route("/api/v1/profile", get(profile))
        .route("/_sandbox/stats", get(side_stats))
        .route("/_sandbox/state", get(side_state))
        .route("/_sandbox/reset", post(side_reset))
        .route("/_sandbox/health", get(side_health))
        .fallback(not_found_route)
        .layer(middleware::from_fn_with_state(state.clone(), gate))
        .with_state(state)
}

// ---------------------------------------------------------------------------------------------
// Responses

/// The `Content-Type` Rails sends with a rendered JSON body.
const JSON_UTF8: &str = "application/json; charset=utf-8";

fn json_response(status: StatusCode, body: Value) -> Response {
    json_text(status, body.to_string())
}

/// A JSON body already serialised (from the contacts' cached JSON).
fn json_text(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, JSON_UTF8)], body).into_response()
}

/// `{"meta": META, "payload": [CONTACT, …]}` from cached contact JSON.
fn page_body(meta: &Value, rows: &[&str]) -> String {
    let mut out = String::with_capacity(64 + rows.iter().map(|r| r.len() + 1).sum::<usize>());
    out.push_str("{\"meta\":");
    out.push_str(&meta.to_string());
    out.push_str(",\"payload\":[");
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r);
    }
    out.push_str("]}");
    out
}

fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        json!({"error": "Resource could not be found"}),
    )
}

fn server_error() -> Response {
    json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({"status": 500, "error": "Internal Server Error"}),
    )
}

fn too_many(retry_after_secs: Option<u64>) -> Response {
    let mut r = (StatusCode::TOO_MANY_REQUESTS, "Retry later\n").into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    if let Some(s) = retry_after_secs {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

fn forbidden(st: &SandboxState, what: &str) -> Response {
    let status = match st.config().flavour {
        Flavour::Chatwoot => StatusCode::UNAUTHORIZED,
        Flavour::Doto => StatusCode::FORBIDDEN,
    };
    json_response(
        status,
        json!({"error": format!("You are not authorized to {what}")}),
    )
}

fn missing_param(name: &str) -> Response {
    json_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"error": format!("param is missing or the value is empty: {name}")}),
    )
}

fn write_error(e: WriteError) -> Response {
    match e {
        WriteError::Invalid(inv) => json_response(StatusCode::UNPROCESSABLE_ENTITY, inv.body()),
        WriteError::UniqueViolation(_) | WriteError::NullByte | WriteError::NotNull(_) => {
            server_error()
        }
        WriteError::NotFound => not_found(),
    }
}

async fn not_found_route() -> Response {
    json_response(StatusCode::NOT_FOUND, json!({"error": "Not Found"}))
}

/// An early answer (an error) from a helper, boxed because a `Response` is large.
pub struct Reject(Box<Response>);

impl From<Response> for Reject {
    fn from(r: Response) -> Reject {
        Reject(Box::new(r))
    }
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// `?` for handlers that return a plain `Response`: unwrap, or answer with the rejection.
macro_rules! answer {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return Reject::into_response(r),
        }
    };
}

// ---------------------------------------------------------------------------------------------
// The path as Rails routes it

/// Rails routes `/contacts/`, `/contacts//5` and `/contacts.json` like `/contacts` and
/// `/contacts/5`: the router squeezes repeated and trailing slashes, and `.json` is the (default)
/// format, not part of the last segment. Other paths are left alone.
fn rails_path(mut req: Request) -> Request {
    let path = req.uri().path();
    let clean_already = !path.contains("//") && !path.ends_with('/') && !path.ends_with(".json");
    if !path.starts_with("/api/") || clean_already {
        return req;
    }
    let mut clean = String::with_capacity(path.len());
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        clean.push('/');
        clean.push_str(seg);
    }
    if let Some(stem) = clean.strip_suffix(".json") {
        clean.truncate(stem.trim_end_matches('/').len());
    }
    if clean == path {
        return req;
    }
    if let Some(q) = req.uri().query() {
        clean = format!("{clean}?{q}");
    }
    let mut parts = req.uri().clone().into_parts();
    if let Ok(pq) = clean.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = axum::http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req
}

// ---------------------------------------------------------------------------------------------
// The gate

/// Counts a request in flight for as long as it lives (including a dropped connection), and
/// how many others were when it arrived.
struct InFlight<'a>(&'a SandboxState, u64);

impl<'a> InFlight<'a> {
    fn enter(st: &'a SandboxState) -> InFlight<'a> {
        let now = st.inner.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        st.inner.max_in_flight.fetch_max(now, Ordering::Relaxed);
        InFlight(st, now - 1)
    }

    /// The latency this request gets: the fixed part, plus the part that grows with load.
    fn latency(&self) -> Duration {
        let c = self.0.config();
        c.latency + c.latency_per_in_flight * self.1.min(u32::MAX as u64) as u32
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.inner.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// An API request on its way through the gate: its route and the log entry it will leave.
struct Arrival {
    route: &'static str,
    account: Option<u64>,
    method: Method,
    entry: LogEntry,
}

impl Arrival {
    fn new(st: &SandboxState, req: &Request) -> Arrival {
        let (route, account) = classify(req.uri().path());
        let method = req.method().clone();
        Arrival {
            route,
            account,
            entry: LogEntry {
                at_ms: st.inner.started.elapsed().as_millis() as u64,
                epoch_ms: epoch_ms(),
                method: method.to_string(),
                route: route.to_string(),
                status: 0,
                admitted: false,
                fault: None,
            },
            method,
        }
    }

    /// Log the request with the status of `response` (0 for none) and hand the response back.
    fn record(mut self, st: &SandboxState, response: Option<Response>) -> Option<Response> {
        self.entry.status = response.as_ref().map_or(0, |r| r.status().as_u16());
        lock(&st.inner.stats).record(self.entry, self.route);
        response
    }
}

/// The limits, in the real stack's order: a running 429 burst (which does not use the limiter's
/// budget), then rack-attack's windows, global and per-account search. `Err` is the 429.
fn admit(st: &SandboxState, a: &mut Arrival) -> Result<(), Reject> {
    let inner = &st.inner;
    if lock(&inner.faults).in_burst() {
        a.entry.fault = Some(FaultKind::Burst429.name().into());
        return Err(too_many(None).into());
    }
    let search_account =
        (a.route == route::SEARCH && a.method == Method::GET).then(|| a.account.unwrap_or(0));
    // The clock is read under the limiter's lock, so the limiter sees arrivals in order and the
    // log's `epoch_ms` is exactly the time the limiter judged.
    let verdict = {
        let mut limiter = lock(&inner.limiter);
        a.entry.epoch_ms = inner.hooks.now_ms(epoch_ms);
        limiter.check(a.entry.epoch_ms, search_account)
    };
    if let Err(t) = verdict {
        let retry_after = inner.config.limits.retry_after;
        let secs = retry_after.then(|| t.remaining_ms.div_ceil(1000).max(1));
        return Err(too_many(secs).into());
    }
    a.entry.admitted = true;
    Ok(())
}

/// Draw a fault for a write (POST, PATCH, PUT, DELETE); reads never get one.
fn roll_fault(st: &SandboxState, method: &Method) -> Option<FaultKind> {
    let is_write = matches!(
        *method,
        Method::POST | Method::PATCH | Method::PUT | Method::DELETE
    );
    if is_write {
        lock(&st.inner.faults).roll()
    } else {
        None
    }
}

/// Run the handler as the fault says: not at all (`before`, `burst429`), or with its answer
/// replaced by a 500 (`after`) or by no answer at all (`drop`: `None`, the connection is closed).
async fn run_with_fault(fault: Option<FaultKind>, req: Request, next: Next) -> Option<Response> {
    let kill = req.extensions().get::<ConnKill>().cloned();
    match fault {
        None => Some(next.run(req).await),
        Some(FaultKind::Before) => Some(server_error()),
        Some(FaultKind::Burst429) => Some(too_many(None)),
        Some(FaultKind::After) => {
            let _ = next.run(req).await;
            Some(server_error())
        }
        Some(FaultKind::Drop) => {
            let _ = next.run(req).await;
            if let Some(kill) = kill {
                // The connection task closes the socket once the request is logged.
                kill.0.notify_one();
                return None;
            }
            // Without a socket (oneshot) there is no connection to drop: say so in a 500.
            let mut r = server_error();
            r.headers_mut()
                .insert("x-sandbox-fault", HeaderValue::from_static("drop"));
            Some(r)
        }
    }
}

/// Every API request passes here: counted in flight, judged by the limits, delayed by the
/// latency, given its fault, then logged with the status it got.
async fn gate(State(st): State<SandboxState>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let in_flight = InFlight::enter(&st);
    let mut arrival = Arrival::new(&st, &req);
    if let Err(refused) = admit(&st, &mut arrival) {
        return arrival
            .record(&st, Some(refused.into_response()))
            .unwrap_or_default();
    }
    st.inner
        .hooks
        .arrive(arrival.method.as_str(), arrival.route)
        .await;
    let latency = in_flight.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let fault = roll_fault(&st, &arrival.method);
    arrival.entry.fault = fault.map(|f| f.name().to_string());
    let response = run_with_fault(fault, req, next).await;
    match arrival.record(&st, response) {
        Some(r) => r,
        // Dropped: this future is dropped with the connection.
        None => std::future::pending::<Response>().await,
    }
}

// ---------------------------------------------------------------------------------------------
// Auth

/// `api_access_token` (or `api-access-token`) → user, then the account: 401, 404, 401/403.
fn authorize(st: &SandboxState, headers: &HeaderMap, account: &str) -> Result<(User, u64), Reject> {
    let (user, _) = token_user(st, headers)?;
    let cfg = st.config();
    match parse_id(account) {
        Some(a) if a == cfg.account_id => Ok((user, a)),
        Some(a) if a == cfg.other_account_id => Err(forbidden(st, "access this account").into()),
        _ => Err(not_found().into()),
    }
}

/// The user behind the request's token (and the token), or the 401 Devise or the token check gives.
fn token_user(st: &SandboxState, headers: &HeaderMap) -> Result<(User, String), Reject> {
    let token = headers
        .get("api_access_token")
        .or_else(|| headers.get("api-access-token"))
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(json_response(
            StatusCode::UNAUTHORIZED,
            json!({"errors": ["You need to sign in or sign up before continuing."]}),
        )
        .into());
    };
    let Some(user) = st.user_by_token(token) else {
        return Err(json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": "Invalid Access Token"}),
        )
        .into());
    };
    Ok((user.clone(), token.to_string()))
}

/// `GET /api/v1/profile`: the token's user, its role in the current account and the accounts it
/// belongs to, each with its role (the one call that tells a client whether its token is an
/// administrator's). As on the real server, the body carries the access token itself.
async fn profile(State(st): State<SandboxState>, headers: HeaderMap) -> Response {
    let (user, token) = answer!(token_user(&st, &headers));
    let cfg = st.config();
    let mut body = user.render();
    let role = body["role"].clone();
    for (k, v) in [
        ("access_token", json!(token)),
        ("account_id", json!(cfg.account_id)),
        ("display_name", json!(user.name)),
        ("type", json!("user")),
        ("uid", json!(user.email)),
        ("provider", json!("email")),
        ("confirmed", json!(true)),
        ("custom_attributes", json!({})),
        ("ui_settings", json!({})),
        (
            "accounts",
            json!([{"id": cfg.account_id, "name": "Sandbox", "status": "active", "role": role,
                    "availability": "online", "auto_offline": true}]),
        ),
    ] {
        body[k] = v;
    }
    json_response(StatusCode::OK, body)
}

// ---------------------------------------------------------------------------------------------
// Query helpers

type Params = Query<HashMap<String, String>>;

/// Ruby's `String#to_i`, which is how Rails reads an id or a page: leading whitespace, an optional
/// sign, then digits (single underscores between them allowed) up to the first other character, so
/// `1abc` is 1 and `abc` is 0. Saturates where Ruby would grow a bignum.
fn ruby_to_i(s: &str) -> i64 {
    let s = s.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '\u{0B}');
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let bytes = digits.as_bytes();
    let mut n: i64 = 0;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'0'..=b'9' => n = n.saturating_mul(10).saturating_add(i64::from(b - b'0')),
            b'_' if i > 0
                && bytes[i - 1].is_ascii_digit()
                && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {}
            _ => break,
        }
    }
    if negative { -n } else { n }
}

/// `page` as Rails sees it: absent → integer 1; sent → echoed as the string sent, and read with
/// `to_i`. Which numbers are servable differs by endpoint: see [`list_page`] and [`search_page`].
fn page_param(q: &HashMap<String, String>) -> (i64, Value) {
    match q.get("page") {
        None => (1, json!(1)),
        Some(p) => (ruby_to_i(p), json!(p)),
    }
}

/// The listing pages with Kaminari, which serves page 1 for anything below 1 (`0`, `abc`, `-3`).
fn list_page(q: &HashMap<String, String>) -> (usize, Value) {
    let (page, current_page) = page_param(q);
    (
        usize::try_from(page.max(1)).unwrap_or(usize::MAX),
        current_page,
    )
}

/// The search computes its offset as `(page - 1) * 15` itself: below 1 Postgres refuses the
/// negative OFFSET, a 500.
fn search_page(q: &HashMap<String, String>) -> Result<(usize, Value), Reject> {
    match page_param(q) {
        (page, current_page) if page >= 1 => {
            Ok((usize::try_from(page).unwrap_or(usize::MAX), current_page))
        }
        _ => Err(server_error().into()),
    }
}

fn sort_param(q: &HashMap<String, String>) -> Option<Sort> {
    q.get("sort").and_then(|s| Sort::parse(s))
}

/// `include_contact_inboxes`: absent or blank → true; otherwise only the exact string `true`.
fn with_inboxes(q: &HashMap<String, String>) -> bool {
    match q.get("include_contact_inboxes") {
        Some(v) if !v.trim().is_empty() => v == "true",
        _ => true,
    }
}

/// The rows `offset..offset+len` of `ids` in a per-request order: an affine permutation
/// `i → (a·i + b) mod n` with `a` coprime to `n`, O(1) a row, different on every request.
fn scrambled(st: &SandboxState, ids: &[u64], offset: usize, len: usize) -> Vec<u64> {
    let n = ids.len();
    if n == 0 || offset >= n {
        return vec![];
    }
    let end = offset.saturating_add(len).min(n);
    if !st.config().unstable_order {
        return ids[offset..end].to_vec();
    }
    let salt = mix(st.config().seed
        ^ st.inner
            .order_counter
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(31));
    let n64 = n as u64;
    let gcd = |mut a: u64, mut b: u64| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let mut a = salt % n64;
    if a == 0 {
        a = 1;
    }
    while gcd(a, n64) != 1 {
        a = a % n64 + 1;
    }
    let b = mix(salt) % n64;
    (offset..end)
        .map(|i| ids[((a as u128 * i as u128 + b as u128) % n64 as u128) as usize])
        .collect()
}

/// An id in the path as `find` reads it (`1abc` is 1). A segment with a dot carries a format other
/// than `.json` (which the router already removed): no such template here, so not found.
fn parse_id(id: &str) -> Option<u64> {
    if id.contains('.') {
        return None;
    }
    u64::try_from(ruby_to_i(id)).ok().filter(|&n| n > 0)
}

/// The body as Rails' params: JSON only when it is declared JSON; anything else is no params.
fn body_json(headers: &HeaderMap, body: &Bytes) -> Result<Value, Reject> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"));
    if !is_json || body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| {
        json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": format!("the request body is not valid JSON: {e}")}),
        )
        .into()
    })
}

// ---------------------------------------------------------------------------------------------
// Contacts

async fn list(
    State(st): State<SandboxState>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let (_, acc) = answer!(authorize(&st, &headers, &account));
    let (page, current_page) = list_page(&q);
    let sort = sort_param(&q);
    let inboxes = with_inboxes(&q);
    let offset = (page - 1).saturating_mul(PER_PAGE);
    let mut store = lock(&st.inner.store);
    let ids = store.listed(acc, sort);
    let count = ids.len();
    let page_ids = match sort {
        Some(_) => ids.iter().skip(offset).take(PER_PAGE).copied().collect(),
        None => scrambled(&st, ids, offset, PER_PAGE),
    };
    let mut meta = json!({"count": count, "current_page": current_page});
    if st.config().flavour == Flavour::Doto {
        meta["total_pages"] = json!(store::total_pages(count));
    }
    let rows: Vec<&str> = page_ids
        .iter()
        .map(|id| store.contacts[id].json(inboxes))
        .collect();
    let body = page_body(&meta, &rows);
    drop(store);
    json_text(StatusCode::OK, body)
}

async fn search(
    State(st): State<SandboxState>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let (_, acc) = answer!(authorize(&st, &headers, &account));
    let raw = q.get("q").map(String::as_str).unwrap_or("");
    // `params[:q].blank?` knows Unicode whitespace; the `strip` after it only ASCII whitespace
    // and NUL, so a non-breaking space around `q` is part of the pattern.
    if raw.trim().is_empty() {
        if st.config().blank_search_422 {
            return json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": "Specify search string with parameter q"}),
            );
        }
        // The controller returns before it counts or pages: `count` and `has_more` stay nil
        // (old versions have no `has_more` at all).
        let (_, current_page) = page_param(&q);
        let mut meta = json!({"count": null, "current_page": current_page});
        if !st.config().search_total_count {
            meta["has_more"] = Value::Null;
        }
        return json_response(StatusCode::OK, json!({"meta": meta, "payload": []}));
    }
    let text = raw.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\u{0B}' || c == '\0');
    // The pattern is quoted into the SQL text, which the pg driver refuses with a NUL in it.
    if text.contains('\0') {
        return server_error();
    }
    let (page, current_page) = answer!(search_page(&q));
    let sort = sort_param(&q);
    let inboxes = with_inboxes(&q);
    let offset = (page - 1).saturating_mul(PER_PAGE);
    let store = lock(&st.inner.store);
    let ids = store.search(acc, text, sort);
    let total = ids.len();
    let page_ids = match sort {
        Some(_) => ids.iter().skip(offset).take(PER_PAGE).copied().collect(),
        None => scrambled(&st, &ids, offset, PER_PAGE),
    };
    let meta = if st.config().search_total_count {
        json!({"count": total, "current_page": current_page})
    } else {
        json!({"count": page_ids.len(), "current_page": current_page, "has_more": total > offset.saturating_add(PER_PAGE)})
    };
    let rows: Vec<&str> = page_ids
        .iter()
        .map(|id| store.contacts[id].json(inboxes))
        .collect();
    let body = page_body(&meta, &rows);
    drop(store);
    json_text(StatusCode::OK, body)
}

/// Wrap a contact as the flavour does for show and update.
fn contact_body(st: &SandboxState, contact: Value) -> Value {
    match st.config().flavour {
        Flavour::Chatwoot => json!({"payload": contact}),
        Flavour::Doto => contact,
    }
}

async fn show(
    State(st): State<SandboxState>,
    Path((account, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let (_, acc) = answer!(authorize(&st, &headers, &account));
    let store = lock(&st.inner.store);
    match parse_id(&id).and_then(|id| store.contact(acc, id)) {
        Some(c) => {
            let body = match st.config().flavour {
                Flavour::Chatwoot => format!("{{\"payload\":{}}}", c.json(with_inboxes(&q))),
                Flavour::Doto => c.json(with_inboxes(&q)).to_string(),
            };
            drop(store);
            json_text(StatusCode::OK, body)
        }
        None => not_found(),
    }
}

async fn create(
    State(st): State<SandboxState>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, acc) = answer!(authorize(&st, &headers, &account));
    let body = answer!(body_json(&headers, &body));
    let params = ContactParams::from_json(&body);
    let draft = lock(&st.inner.store).build(acc, &params);
    if let Err(e) = lock(&st.inner.store).validate_new(&draft) {
        return write_error(e);
    }
    // Rails validates with SELECTs and inserts later, in another statement: a concurrent create can
    // slip in between. Only the unique indexes (email, identifier) catch it, as a 500; phone has none.
    if draft.phone_number.is_some() || draft.email.is_some() || draft.identifier.is_some() {
        tokio::time::sleep(st.config().race_window).await;
    }
    // `blocked: null` passes validation; the INSERT, with its id already taken, does not.
    if params.blocked == Some(None) {
        lock(&st.inner.store).burn_id();
        return write_error(WriteError::NotNull("blocked"));
    }
    let saved = match lock(&st.inner.store).insert(draft) {
        Ok(c) => c,
        Err(e) => return write_error(e),
    };
    // The controller looks the inbox up after the insert, in the same transaction: the account has
    // no inboxes here, so any `inbox_id` rolls the insert back (its id stays used) and is a 404.
    if params.inbox_id.is_some() {
        let _ = lock(&st.inner.store).delete(acc, saved.id);
        return not_found();
    }
    let contact = saved.render(true);
    if st.config().server_attributes {
        lock(&st.inner.store).add_server_attributes(saved.id);
    }
    match st.config().flavour {
        Flavour::Doto => json_response(StatusCode::CREATED, contact),
        Flavour::Chatwoot => json_response(
            StatusCode::OK,
            json!({"payload": {"contact": contact, "contact_inbox": {"inbox": null, "source_id": null}}}),
        ),
    }
}

async fn update(
    State(st): State<SandboxState>,
    Path((account, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Params,
    body: Bytes,
) -> Response {
    let (_, acc) = answer!(authorize(&st, &headers, &account));
    let Some(id) = parse_id(&id) else {
        return not_found();
    };
    if lock(&st.inner.store).contact(acc, id).is_none() {
        return not_found();
    }
    let body = answer!(body_json(&headers, &body));
    let params = ContactParams::from_json(&body);
    let replace = st.config().replace_additional_attributes;
    let result = lock(&st.inner.store).update(acc, id, &params, replace);
    let sync = body.get("email").is_some() || body.get("avatar_url").is_some();
    if st.config().server_attributes && sync && result.is_ok() {
        lock(&st.inner.store).add_server_attributes(id);
    }
    contact_answer(&st, result, &q)
}

/// The answer of a write that returns the contact: rendered as `show` renders it, or the error.
fn contact_answer(
    st: &SandboxState,
    result: Result<store::Contact, WriteError>,
    q: &HashMap<String, String>,
) -> Response {
    match result {
        Ok(c) => json_response(StatusCode::OK, contact_body(st, c.render(with_inboxes(q)))),
        Err(e) => write_error(e),
    }
}

async fn destroy(
    State(st): State<SandboxState>,
    Path((account, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (user, acc) = answer!(authorize(&st, &headers, &account));
    // The policy check runs before the contact is looked up.
    if user.role != Role::Administrator {
        return forbidden(&st, "do this action");
    }
    let Some(id) = parse_id(&id) else {
        return not_found();
    };
    match lock(&st.inner.store).delete(acc, id) {
        // `head :ok` under the API's default JSON format: the type without a charset, no body.
        Ok(()) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")]).into_response(),
        Err(e) => write_error(e),
    }
}

/// `POST /contacts/{id}/destroy_custom_attributes` `{"custom_attributes": ["key", …]}`: the keys
/// are removed (unknown ones ignored; no keys, no change) and the contact is rendered as `show`
/// renders it.
async fn destroy_custom_attributes(
    State(st): State<SandboxState>,
    Path((account, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Params,
    body: Bytes,
) -> Response {
    let (_, acc) = answer!(authorize(&st, &headers, &account));
    let Some(id) = parse_id(&id) else {
        return not_found();
    };
    let body = answer!(body_json(&headers, &body));
    let keys: Vec<String> = match body.get("custom_attributes") {
        Some(Value::Array(a)) => a.iter().filter_map(store::rails_string).collect(),
        Some(v) => store::rails_string(v).into_iter().collect(),
        None => vec![],
    };
    let result = lock(&st.inner.store).remove_custom_attributes(acc, id, &keys);
    contact_answer(&st, result, &q)
}

/// `DELETE /contacts/{id}/notes/{note_id}`: `@contact.notes.find(id).destroy!` then `head :ok`;
/// an unknown contact or a note of another contact is a 404.
async fn destroy_note(
    State(st): State<SandboxState>,
    Path((account, id, note_id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let (_, acc) = answer!(authorize(&st, &headers, &account));
    let (Some(id), Some(note_id)) = (parse_id(&id), parse_id(&note_id)) else {
        return not_found();
    };
    match lock(&st.inner.store).delete_note(acc, id, note_id) {
        Ok(()) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")]).into_response(),
        Err(e) => write_error(e),
    }
}

async fn conversations(
    State(st): State<SandboxState>,
    Path((account, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (user, acc) = answer!(authorize(&st, &headers, &account));
    let store = lock(&st.inner.store);
    let Some(c) = parse_id(&id).and_then(|id| store.contact(acc, id)) else {
        return not_found();
    };
    // `Conversations::PermissionFilterService`: an administrator sees every inbox, an agent only
    // the inboxes it is a member of.
    let member_of = match (user.role, &st.config().agent_inbox_ids) {
        (Role::Agent, Some(ids)) => Some(ids),
        _ => None,
    };
    let visible = |inbox: u64| member_of.is_none_or(|ids| ids.contains(&inbox));
    let payload: Vec<Value> = store
        .conversations_of(c.id, visible)
        .iter()
        .map(|conv| conv.render(c, conv.assignee_id.map(|u| st.user_by_id(u))))
        .collect();
    drop(store);
    json_response(StatusCode::OK, json!({"payload": payload}))
}

/// `params.require(:note).permit(:content)[:content]`. Rails wraps a JSON body's top-level
/// `content` into `note` unless the body already has a `note` key, which then wins. A missing or
/// blank `note` is a missing parameter; a `note` that is not an object makes `permit` raise (500).
/// `content` keeps only a scalar (`true` is cast to `"t"` as a string column does).
fn note_content(body: &Value) -> Result<Option<String>, Reject> {
    let wrapped;
    let note = match body.get("note") {
        Some(n) => n,
        None => {
            let mut w = serde_json::Map::new();
            if let Some(c) = body.get("content") {
                w.insert("content".into(), c.clone());
            }
            wrapped = Value::Object(w);
            &wrapped
        }
    };
    let present = match note {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    };
    if !present {
        return Err(missing_param("note").into());
    }
    let Value::Object(note) = note else {
        return Err(server_error().into());
    };
    Ok(note.get("content").and_then(store::rails_string))
}

async fn create_note(
    State(st): State<SandboxState>,
    Path((account, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (user, acc) = answer!(authorize(&st, &headers, &account));
    let Some(cid) = parse_id(&id).filter(|id| lock(&st.inner.store).contact(acc, *id).is_some())
    else {
        return not_found();
    };
    let body = answer!(body_json(&headers, &body));
    let content = answer!(note_content(&body)).unwrap_or_default();
    if content.trim().is_empty() {
        return json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "Content can't be blank", "attributes": ["content"]}),
        );
    }
    if content.chars().count() > NOTE_MAX {
        return json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": format!("Content is too long (maximum is {NOTE_MAX} characters)"),
                   "attributes": ["content"]}),
        );
    }
    // Valid, but the INSERT cannot carry a NUL (see `WriteError::NullByte`).
    if content.contains('\0') {
        return server_error();
    }
    let note = lock(&st.inner.store).add_note(acc, cid, user.id, content, None);
    json_response(StatusCode::OK, note.render(&user))
}

async fn list_notes(
    State(st): State<SandboxState>,
    Path((account, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (_, acc) = answer!(authorize(&st, &headers, &account));
    let store = lock(&st.inner.store);
    let Some(c) = parse_id(&id).and_then(|id| store.contact(acc, id)) else {
        return not_found();
    };
    let mut notes: Vec<Value> = store
        .notes
        .values()
        .rev()
        .filter(|n| n.contact_id == c.id)
        .map(|n| n.render(st.user_by_id(n.user_id)))
        .collect();
    notes.truncate(1000);
    drop(store);
    json_response(StatusCode::OK, Value::Array(notes))
}

// ---------------------------------------------------------------------------------------------
// Side endpoints (no auth, not counted)

async fn side_stats(State(st): State<SandboxState>) -> Response {
    json_response(
        StatusCode::OK,
        serde_json::to_value(st.stats()).unwrap_or(Value::Null),
    )
}

async fn side_state(State(st): State<SandboxState>) -> Response {
    json_response(StatusCode::OK, st.state_json())
}

/// `POST /_sandbox/reset` forgets everything; `?what=stats` zeroes only the counters and the log.
async fn side_reset(State(st): State<SandboxState>, Query(q): Params) -> Response {
    match q.get("what").map(String::as_str) {
        Some("stats") => st.reset_stats(),
        None | Some("all") => st.reset(),
        Some(other) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": format!("what={other:?}: expected `all` or `stats`")}),
            );
        }
    }
    json_response(
        StatusCode::OK,
        json!({"reset": q.get("what").map_or("all", String::as_str)}),
    )
}

/// The cheapest answer the server can give: the baseline of the load benchmark.
async fn side_health() -> &'static str {
    "ok"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_pages_read_as_ruby_to_i_reads_them() {
        for (s, n) in [
            ("15", 15),
            ("1abc", 1),
            ("abc", 0),
            ("", 0),
            ("  7", 7),
            ("+3", 3),
            ("-2x", -2),
            ("1_000", 1000),
            ("1__0", 1),
            ("_1", 0),
            ("1_", 1),
            ("99999999999999999999999", i64::MAX),
        ] {
            assert_eq!(ruby_to_i(s), n, "{s:?}");
        }
        assert_eq!(parse_id("3.xml"), None);
        assert_eq!(parse_id("0"), None);
        assert_eq!(parse_id("2-slug"), Some(2));
    }

    #[test]
    fn rails_path_squeezes_slashes_and_drops_a_json_format() {
        let path = |p: &str| {
            let req = Request::builder()
                .uri(p)
                .body(axum::body::Body::empty())
                .unwrap();
            rails_path(req).uri().to_string()
        };
        let base = "/api/v1/accounts/1/contacts";
        assert_eq!(path(&format!("{base}/")), base);
        assert_eq!(
            path(&format!("{base}.json?page=2")),
            format!("{base}?page=2")
        );
        assert_eq!(
            path(&format!("{base}//5/notes.json")),
            format!("{base}/5/notes")
        );
        assert_eq!(path(&format!("{base}/5.json/")), format!("{base}/5"));
        assert_eq!(path("/_sandbox/stats/"), "/_sandbox/stats/");
    }
}
