//! The HTTP surface: the contacts endpoints with the real server's bodies and statuses, the side
//! endpoints under `/_sandbox/`, and the gate every API request passes through (429 bursts, rate
//! limits, latency, faults on writes, counting), in the order the real stack applies them: the rate
//! limiter (rack-attack) sits in front of everything, even authentication.
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::config::{FaultKind, Flavour};
use super::server::ConnKill;
use super::stats::{LogEntry, classify, route};
use super::store::{self, ContactParams, NOTE_MAX, PER_PAGE, Role, Sort, User, WriteError, mix};
use super::{SandboxState, lock};

/// The sandbox's routes over `state`; serve it with [`super::spawn`] or drive it with `oneshot`.
pub fn router(state: SandboxState) -> Router {
    let api = "/api/v1/accounts/{account_id}/contacts";
    Router::new()
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
        )
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

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// A JSON body already serialised (from the contacts' cached JSON).
fn json_text(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
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
        WriteError::UniqueViolation(_) => server_error(),
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
// The gate

/// Decrements the in-flight gauge however the request ends (including a dropped connection).
struct InFlight<'a>(&'a SandboxState);

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

async fn gate(State(st): State<SandboxState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if !path.starts_with("/api/") {
        return next.run(req).await;
    }
    let inner = &st.inner;
    let now_in_flight = inner.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    let _guard = InFlight(&st);
    inner
        .max_in_flight
        .fetch_max(now_in_flight, Ordering::Relaxed);
    let at_ms = inner.started.elapsed().as_millis() as u64;
    let method = req.method().clone();
    let (route, account) = classify(&path);
    let mut entry = LogEntry {
        at_ms,
        epoch_ms: epoch_ms(),
        method: method.to_string(),
        route: route.to_string(),
        status: 0,
        admitted: false,
        fault: None,
    };
    let record = |entry: LogEntry| lock(&inner.stats).record(entry, route);

    // A running 429 burst answers before the limiter, and does not use its budget.
    if lock(&inner.faults).in_burst() {
        entry.status = 429;
        entry.fault = Some(FaultKind::Burst429.name().into());
        record(entry);
        return too_many(None);
    }
    let search_account = if route == route::SEARCH && method == Method::GET {
        account.or(Some(0))
    } else {
        None
    };
    // The clock is read under the limiter's lock, so the limiter sees arrivals in order and the
    // log's `epoch_ms` is exactly the time the limiter judged.
    let verdict = {
        let mut limiter = lock(&inner.limiter);
        entry.epoch_ms = inner.hooks.now_ms(epoch_ms);
        limiter.check(entry.epoch_ms, search_account)
    };
    if let Err(t) = verdict {
        entry.status = 429;
        record(entry);
        return too_many(
            inner
                .config
                .limits
                .retry_after
                .then(|| t.remaining_ms.div_ceil(1000).max(1)),
        );
    }
    entry.admitted = true;
    inner.hooks.arrive(method.as_str(), route).await;

    if !inner.config.latency.is_zero() {
        tokio::time::sleep(inner.config.latency).await;
    }

    let is_write = matches!(
        method,
        Method::POST | Method::PATCH | Method::PUT | Method::DELETE
    );
    let fault = if is_write {
        lock(&inner.faults).roll()
    } else {
        None
    };
    entry.fault = fault.map(|f| f.name().to_string());
    let kill = req.extensions().get::<ConnKill>().cloned();
    let response = match fault {
        Some(FaultKind::Before) => server_error(),
        Some(FaultKind::Burst429) => too_many(None),
        Some(FaultKind::After) => {
            let _ = next.run(req).await;
            server_error()
        }
        Some(FaultKind::Drop) => {
            let _ = next.run(req).await;
            if let Some(kill) = kill {
                entry.status = 0;
                record(entry);
                // The connection task closes the socket; this future is dropped with it.
                kill.0.notify_one();
                return std::future::pending::<Response>().await;
            }
            // Without a socket (oneshot) there is no connection to drop: say so in a 500.
            let mut r = server_error();
            r.headers_mut()
                .insert("x-sandbox-fault", HeaderValue::from_static("drop"));
            r
        }
        None => next.run(req).await,
    };
    entry.status = response.status().as_u16();
    record(entry);
    response
}

// ---------------------------------------------------------------------------------------------
// Auth

/// `api_access_token` (or `api-access-token`) → user, then the account: 401, 404, 401/403.
fn authorize(st: &SandboxState, headers: &HeaderMap, account: &str) -> Result<(User, u64), Reject> {
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
    let cfg = st.config();
    match account.parse::<u64>() {
        Ok(a) if a == cfg.account_id => Ok((user.clone(), a)),
        Ok(a) if a == cfg.other_account_id => Err(forbidden(st, "access this account").into()),
        _ => Err(not_found().into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Query helpers

type Params = Query<HashMap<String, String>>;

/// `page` as Rails sees it: absent → integer 1; sent → echoed as a string. Anything but a positive
/// integer makes the real server's offset arithmetic fail: a 500.
fn page_param(q: &HashMap<String, String>) -> Result<(usize, Value), Reject> {
    match q.get("page") {
        None => Ok((1, json!(1))),
        Some(p) => match p.parse::<usize>() {
            Ok(n) if n >= 1 => Ok((n, json!(p))),
            _ => Err(server_error().into()),
        },
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

fn parse_id(id: &str) -> Option<u64> {
    id.parse().ok()
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
    let (page, current_page) = answer!(page_param(&q));
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
    let text = q.get("q").map(|s| s.trim()).unwrap_or("");
    if text.is_empty() {
        if st.config().blank_search_422 {
            return json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": "Specify search string with parameter q"}),
            );
        }
        let current_page = q.get("page").map(|p| json!(p)).unwrap_or(json!(1));
        return json_response(
            StatusCode::OK,
            json!({"meta": {"count": null, "current_page": current_page, "has_more": false}, "payload": []}),
        );
    }
    let (page, current_page) = answer!(page_param(&q));
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

/// The one API inbox of the account (id 1), for `inbox_id` on create.
fn api_inbox() -> Value {
    json!({"id": 1, "name": "Sandbox API", "channel_type": "Channel::Api", "provider": null})
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
    let contact_inbox = match &params.inbox_id {
        None => None,
        Some(i) if i == "1" => {
            let source = format!(
                "{:032x}",
                mix(st.inner.order_counter.fetch_add(1, Ordering::Relaxed)) as u128
                    | ((mix(acc) as u128) << 64)
            );
            Some(json!({"source_id": source, "inbox": api_inbox()}))
        }
        Some(_) => return not_found(),
    };
    let draft = lock(&st.inner.store).build(acc, &params, contact_inbox.clone());
    if let Err(e) = lock(&st.inner.store).validate_new(&draft) {
        return write_error(e);
    }
    // Rails validates with SELECTs and inserts later, in another statement: a concurrent create can
    // slip in between. Only the unique indexes (email, identifier) catch it, as a 500; phone has none.
    if draft.phone_number.is_some() || draft.email.is_some() || draft.identifier.is_some() {
        tokio::time::sleep(st.config().race_window).await;
    }
    let saved = match lock(&st.inner.store).insert(draft) {
        Ok(c) => c,
        Err(e) => return write_error(e),
    };
    let contact = saved.render(true);
    if st.config().server_attributes {
        lock(&st.inner.store).add_server_attributes(saved.id);
    }
    match st.config().flavour {
        Flavour::Doto => json_response(StatusCode::CREATED, contact),
        Flavour::Chatwoot => {
            let ci = match contact_inbox {
                Some(ci) => json!({"inbox": ci["inbox"], "source_id": ci["source_id"]}),
                None => json!({"inbox": null, "source_id": null}),
            };
            json_response(
                StatusCode::OK,
                json!({"payload": {"contact": contact, "contact_inbox": ci}}),
            )
        }
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
    match result {
        Ok(c) => json_response(
            StatusCode::OK,
            contact_body(&st, c.render(with_inboxes(&q))),
        ),
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
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => write_error(e),
    }
}

async fn conversations(
    State(st): State<SandboxState>,
    Path((account, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (_, acc) = answer!(authorize(&st, &headers, &account));
    let store = lock(&st.inner.store);
    let Some(c) = parse_id(&id).and_then(|id| store.contact(acc, id)) else {
        return not_found();
    };
    let payload: Vec<Value> = store
        .conversations_of(c.id)
        .iter()
        .map(|conv| conv.render(c))
        .collect();
    drop(store);
    json_response(StatusCode::OK, json!({"payload": payload}))
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
    // Rails wraps a JSON body's `content` into `note`; with no `content` key there is no `note`.
    let Some(content) = body.as_object().and_then(|o| o.get("content")) else {
        return missing_param("note");
    };
    let content = match content {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
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
