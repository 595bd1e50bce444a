//! The contacts endpoints, shaped like the API: `client.contacts().list().sort("created_at")`
//! `.page(n)` / `.stream()`, `search(q)` with exact-match helpers (search is a substring match with
//! `%`/`_` wildcards, so hits are filtered here), `get`, `create`, `update`, `delete`,
//! `conversations`, `add_note`, and the two removals revert uses (`destroy_custom_attributes`,
//! `delete_note`, each [`Served::NotServed`] on a server without the route). Every call goes through `Client::send` and decodes through
//! `decode.rs`.
use std::collections::HashSet;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};
use reqwest::Method;
use serde_json::json;

use super::client::{Client, Req, RequestKind};
use super::decode;
use super::error::ApiError;
use super::pager::{ListSummary, PageStream};
use super::types::{Contact, ContactPatch, Conversation, NewContact, Note, PAGE_SIZE, Page};

/// Sort keys the server understands (it silently ignores others, so we refuse them).
pub const SORT_KEYS: [&str; 5] = [
    "name",
    "email",
    "phone_number",
    "last_activity_at",
    "created_at",
];

/// The sort a listing uses unless told otherwise: without one the server's order is unstable.
pub const DEFAULT_SORT: &str = "created_at";

/// The longest note the server accepts.
pub const MAX_NOTE_CHARS: usize = 20_000;

/// Calls to `destroy_custom_attributes` at most, when answers are lost.
pub const REMOVAL_ATTEMPTS: u32 = 4;

/// The answer of a call an older server may not serve.
#[derive(Debug, Clone, PartialEq)]
pub enum Served<T> {
    Done(T),
    /// The server has no such route (a 404 on the route itself, not on the contact or note).
    NotServed,
}

impl<T> Served<T> {
    /// A 404 whose body is not the server's "Resource could not be found" (which a missing
    /// contact or note gets) came from the router: the route does not exist there.
    fn from_error(e: ApiError) -> Result<Served<T>, ApiError> {
        match &e {
            ApiError::NotFound { message, .. } if !is_missing_resource(message) => {
                Ok(Served::NotServed)
            }
            _ => Err(e),
        }
    }
}

/// Whether a 404's message is the one the server gives a missing record.
fn is_missing_resource(message: &str) -> bool {
    message.contains("could not be found")
}

impl Client {
    /// The contacts endpoints of the configured account.
    pub fn contacts(&self) -> Contacts<'_> {
        Contacts { client: self }
    }
}

/// Handler for `/api/v1/accounts/{id}/contacts`. `Copy`, and its methods take it by value, so
/// `client.contacts().get(id)` is a future that borrows only the client.
#[derive(Clone, Copy)]
pub struct Contacts<'a> {
    client: &'a Client,
}

fn req(kind: RequestKind, method: Method, path: String) -> Req {
    Req {
        kind,
        method,
        path,
        query: vec![],
        body: None,
    }
}

pub(super) fn endpoint(client: &Client, method: &str, path: &str) -> String {
    format!("{method} {}{path}", client.inner.contacts_path)
}

fn check_identifier(id: Option<&str>) -> Result<(), ApiError> {
    match id {
        Some(s) if s.trim().is_empty() => Err(ApiError::InvalidInput(
            "an empty identifier is never sent (two of them crash the server)".into(),
        )),
        _ => Ok(()),
    }
}

impl Contacts<'_> {
    /// `GET /contacts`: pages and a stream over all of them, sorted by `created_at` unless told
    /// otherwise (the server has no default order).
    pub fn list(self) -> ListRequest {
        ListRequest {
            client: self.client.clone(),
            sort: Some(DEFAULT_SORT.to_owned()),
            concurrency: None,
            max_passes: None,
            first: None,
            guess_burst: None,
        }
    }

    /// `GET /contacts/search?q=…`: a substring search (see [`SearchRequest`]).
    pub fn search(self, q: impl Into<String>) -> SearchRequest {
        SearchRequest {
            client: self.client.clone(),
            q: q.into().trim().to_owned(),
            sort: DEFAULT_SORT.to_owned(),
        }
    }

    /// `GET /contacts/{id}`.
    pub async fn get(self, id: u64) -> Result<Contact, ApiError> {
        let path = format!("/{id}");
        let body = self
            .client
            .send(req(RequestKind::Get, Method::GET, path.clone()))
            .await?;
        decode::contact(&endpoint(self.client, "GET", &path), &body)
    }

    /// `POST /contacts`. Never retried once it may have reached the server: a create whose
    /// outcome is unknown comes back as [`ApiError::OutcomeUnknown`]; look the key up first.
    pub async fn create(self, new: &NewContact) -> Result<Contact, ApiError> {
        check_identifier(new.identifier.as_deref())?;
        let mut r = req(RequestKind::Create, Method::POST, String::new());
        r.body = Some(serde_json::to_value(new).expect("serializable"));
        let body = self.client.send(r).await?;
        decode::contact(&endpoint(self.client, "POST", ""), &body)
    }

    /// `PATCH /contacts/{id}` with the fields set in `patch` (absolute values: safe to retry).
    pub async fn update(self, id: u64, patch: &ContactPatch) -> Result<Contact, ApiError> {
        check_identifier(patch.identifier.as_ref().and_then(|o| o.as_deref()))?;
        let path = format!("/{id}");
        let mut r = req(RequestKind::Update, Method::PATCH, path.clone());
        r.body = Some(serde_json::to_value(patch).expect("serializable"));
        let body = self.client.send(r).await?;
        decode::contact(&endpoint(self.client, "PATCH", &path), &body)
    }

    /// `DELETE /contacts/{id}`. A retry that finds the contact gone after an attempt that may have
    /// deleted it counts as deleted; a plain 404 is [`ApiError::NotFound`].
    pub async fn delete(self, id: u64) -> Result<(), ApiError> {
        self.client
            .send(req(RequestKind::Delete, Method::DELETE, format!("/{id}")))
            .await?;
        Ok(())
    }

    /// `GET /contacts/{id}/conversations`: the 20 most recent, newest first.
    pub async fn conversations(self, id: u64) -> Result<Vec<Conversation>, ApiError> {
        let path = format!("/{id}/conversations");
        let body = self
            .client
            .send(req(RequestKind::Conversations, Method::GET, path.clone()))
            .await?;
        decode::list(&endpoint(self.client, "GET", &path), &body)
    }

    /// `GET /contacts/{id}/notes`: the contact's notes (not one of the eight documented calls, but
    /// Chatwoot serves it); the import reads it to settle a note whose outcome was unknown.
    pub async fn notes(self, id: u64) -> Result<Vec<Note>, ApiError> {
        let path = format!("/{id}/notes");
        let body = self
            .client
            .send(req(RequestKind::Notes, Method::GET, path.clone()))
            .await?;
        decode::list(&endpoint(self.client, "GET", &path), &body)
    }

    /// `POST /contacts/{id}/notes`. Like a create, never re-sent when its outcome is unknown.
    pub async fn add_note(self, id: u64, content: &str) -> Result<Note, ApiError> {
        if content.trim().is_empty() {
            return Err(ApiError::InvalidInput("a note cannot be blank".into()));
        }
        let n = content.chars().count();
        if n > MAX_NOTE_CHARS {
            return Err(ApiError::InvalidInput(format!(
                "a note is {n} characters long (at most {MAX_NOTE_CHARS})"
            )));
        }
        let path = format!("/{id}/notes");
        let mut r = req(RequestKind::Note, Method::POST, path.clone());
        r.body = Some(json!({ "content": content }));
        let body = self.client.send(r).await?;
        decode::object(&endpoint(self.client, "POST", &path), &body)
    }

    /// `POST /contacts/{id}/destroy_custom_attributes` `{"custom_attributes": [keys]}`: removes
    /// those keys from the contact (unknown keys are ignored). Removing keys twice is harmless,
    /// so an answer lost (a 5xx or a dropped connection) is sent again, up to
    /// [`REMOVAL_ATTEMPTS`] times in all. A server without the route is [`Served::NotServed`].
    pub async fn destroy_custom_attributes(
        self,
        id: u64,
        keys: &[String],
    ) -> Result<Served<Contact>, ApiError> {
        let path = format!("/{id}/destroy_custom_attributes");
        let mut attempts = 0;
        loop {
            let mut r = req(RequestKind::Update, Method::POST, path.clone());
            r.body = Some(json!({ "custom_attributes": keys }));
            attempts += 1;
            match self.client.send(r).await {
                Ok(body) => {
                    let c = decode::contact(&endpoint(self.client, "POST", &path), &body)?;
                    return Ok(Served::Done(c));
                }
                Err(e) if e.is_outcome_unknown() && attempts < REMOVAL_ATTEMPTS => {}
                Err(e) => return Served::from_error(e),
            }
        }
    }

    /// `DELETE /contacts/{id}/notes/{note_id}`. A note found gone after an attempt that may
    /// have deleted it counts as deleted; a note (or contact) that does not exist is
    /// [`ApiError::NotFound`]; a server without the route is [`Served::NotServed`].
    pub async fn delete_note(self, id: u64, note_id: u64) -> Result<Served<()>, ApiError> {
        let path = format!("/{id}/notes/{note_id}");
        match self
            .client
            .send(req(RequestKind::Delete, Method::DELETE, path))
            .await
        {
            Ok(_) => Ok(Served::Done(())),
            Err(e) => Served::from_error(e),
        }
    }

    /// The contact whose email equals `email`, ignoring case (search hits are substrings).
    pub async fn find_by_email(self, email: &str) -> Result<Option<Contact>, ApiError> {
        let want = email.trim().to_lowercase();
        // Sorted by email, the hits that have one come first in a fixed order (emails are unique:
        // no ties), so paging cannot skip the exact match.
        self.search(&want)
            .sort("email")
            .find(|c| {
                c.email
                    .as_deref()
                    .is_some_and(|e| e.trim().to_lowercase() == want)
            })
            .await
    }

    /// The contact whose phone number equals `phone` as stored (the server does not normalise
    /// phones; search hits are substrings, so only the exact one counts).
    pub async fn find_by_phone(self, phone: &str) -> Result<Option<Contact>, ApiError> {
        let want = phone.trim().to_owned();
        // Sorted by phone, the hits that have one come first in a fixed order (phones are unique).
        self.search(&want)
            .sort("phone_number")
            .find(|c| c.phone_number.as_deref().map(str::trim) == Some(want.as_str()))
            .await
    }

    /// The contact whose identifier equals `identifier` exactly (case-sensitive).
    pub async fn find_by_identifier(self, identifier: &str) -> Result<Option<Contact>, ApiError> {
        let want = identifier.trim().to_owned();
        self.search(&want)
            .find(|c| c.identifier.as_deref() == Some(want.as_str()))
            .await
    }
}

/// Builder for `GET /contacts`: one page, or every page through the pager (`pages`, in
/// `pager.rs`).
#[derive(Clone)]
pub struct ListRequest {
    pub(super) client: Client,
    sort: Option<String>,
    /// Pages fetched at once (default: as many as the client's concurrency limit allows).
    pub(super) concurrency: Option<usize>,
    /// Passes before giving up (default: the client's `max_list_passes`).
    pub(super) max_passes: Option<u32>,
    /// Page 1, already fetched with this sort.
    pub(super) first: Option<Page<Contact>>,
    /// Pages guessed at once while page 1 is out, and no others (see
    /// [`ListRequest::guess_burst`]); `None`: one at a time at the rate's pace.
    pub(super) guess_burst: Option<u32>,
}

impl ListRequest {
    /// `name`, `email`, `phone_number`, `last_activity_at` or `created_at`, `-` first for
    /// descending. Without a sort the server's order is unstable.
    pub fn sort(mut self, key: impl Into<String>) -> Self {
        self.sort = Some(key.into());
        self
    }

    /// Send no `sort` (the server's unstable order): the stream then needs several passes to see
    /// every contact, and may end with [`ApiError::Incomplete`].
    pub fn unsorted(mut self) -> Self {
        self.sort = None;
        self
    }

    /// Pages fetched at once when paging through everything.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = Some(n);
        self
    }

    /// Passes (the first and the re-fetch rounds) before paging gives up.
    pub fn max_passes(mut self, n: u32) -> Self {
        self.max_passes = Some(n);
        self
    }

    /// Start paging from page 1 fetched already (with the same sort): it costs no second request.
    pub fn starting_from(mut self, page_one: Page<Contact>) -> Self {
        self.first = Some(page_one);
        self
    }

    /// While page 1 is out (the end is unknown), guess the next `n` pages at once and no more,
    /// instead of one at a time at the rate's pace: for a caller that needs every page before it
    /// can go on (the import's index), where a round trip saved is worth up to `n` requests for
    /// empty pages past the end, and that knows how many it can afford (0: none).
    pub fn guess_burst(mut self, n: u32) -> Self {
        self.guess_burst = Some(n);
        self
    }

    pub(super) fn checked_sort(&self) -> Result<Option<String>, ApiError> {
        match &self.sort {
            None => Ok(None),
            Some(k) => {
                let bare = k.strip_prefix('-').unwrap_or(k);
                if SORT_KEYS.contains(&bare) {
                    Ok(Some(k.clone()))
                } else {
                    Err(ApiError::InvalidInput(format!(
                        "sort key {k:?} is not one of {} (the server would silently ignore it)",
                        SORT_KEYS.join(", ")
                    )))
                }
            }
        }
    }

    /// One page (1-based; page 0 is refused: it can crash the server).
    pub async fn page(&self, page: u32) -> Result<Page<Contact>, ApiError> {
        let sort = self.checked_sort()?;
        fetch_list_page(&self.client, sort.as_deref(), page).await
    }

    /// Every contact once: [`ListRequest::pages`] flattened (see the pager for the policy on
    /// drift and a short total); the stream ends with [`ApiError::Incomplete`] when the passes
    /// are spent before every contact the server counts was seen.
    pub fn stream(self) -> ContactStream {
        ContactStream {
            pages: self.pages(),
            queued: Vec::new().into_iter(),
        }
    }

    /// [`ListRequest::stream`] collected, sorted by id.
    pub async fn all(self) -> Result<Vec<Contact>, ApiError> {
        let mut s = self.stream();
        let mut out = vec![];
        while let Some(c) = s.next().await {
            out.push(c?);
        }
        out.sort_by_key(|c| c.id);
        Ok(out)
    }
}

pub(super) async fn fetch_list_page(
    client: &Client,
    sort: Option<&str>,
    page: u32,
) -> Result<Page<Contact>, ApiError> {
    if page == 0 {
        return Err(ApiError::InvalidInput("page numbers start at 1".into()));
    }
    let mut r = req(RequestKind::List, Method::GET, String::new());
    r.query.push(("page", page.to_string()));
    if let Some(s) = sort {
        r.query.push(("sort", s.to_owned()));
    }
    let body = client.send(r).await?;
    decode::page(&endpoint(client, "GET", ""), &body, page)
}

/// The contacts of [`ListRequest::stream`]; [`ContactStream::summary`] tells what it saw.
pub struct ContactStream {
    pages: PageStream,
    queued: std::vec::IntoIter<Contact>,
}

impl ContactStream {
    pub fn summary(&self) -> ListSummary {
        self.pages.summary()
    }
}

impl Stream for ContactStream {
    type Item = Result<Contact, ApiError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(c) = self.queued.next() {
                return Poll::Ready(Some(Ok(c)));
            }
            match std::task::ready!(self.pages.poll_next_unpin(cx)) {
                Some(Ok(page)) => self.queued = page.contacts.into_iter(),
                Some(Err(e)) => return Poll::Ready(Some(Err(e.source))),
                None => return Poll::Ready(None),
            }
        }
    }
}

/// Builder for `GET /contacts/search`. `q` is trimmed and sent as is, properly percent-encoded
/// (`+` becomes `%2B`); `%` and `_` stay wildcards on the server, which only widens the hits that
/// the exact-match helpers filter.
#[derive(Clone)]
pub struct SearchRequest {
    client: Client,
    q: String,
    sort: String,
}

impl SearchRequest {
    /// The order of the hits (`created_at` unless told otherwise). The server's search takes the
    /// listing's `sort`; without it the order may change between pages and paging can skip hits.
    pub fn sort(mut self, key: &str) -> Self {
        self.sort = key.to_owned();
        self
    }

    /// One page of hits (1-based). A blank query is answered locally with an empty page.
    pub async fn page(&self, page: u32) -> Result<Page<Contact>, ApiError> {
        if page == 0 {
            return Err(ApiError::InvalidInput("page numbers start at 1".into()));
        }
        if self.q.is_empty() {
            return Ok(Page {
                items: vec![],
                current_page: page,
                count: None,
                has_more: Some(false),
                total_pages: None,
            });
        }
        let mut r = req(RequestKind::Search, Method::GET, "/search".into());
        r.query.push(("q", self.q.clone()));
        r.query.push(("page", page.to_string()));
        r.query.push(("sort", self.sort.clone()));
        let body = self.client.send(r).await?;
        decode::page(&endpoint(&self.client, "GET", "/search"), &body, page)
    }

    /// Every hit, paging until a short page, `has_more: false`, or (old servers) the total.
    pub async fn all(&self) -> Result<Vec<Contact>, ApiError> {
        let mut out = vec![];
        self.walk(|c| {
            out.push(c.clone());
            false
        })
        .await?;
        let mut ids = HashSet::new();
        out.retain(|c| ids.insert(c.id));
        Ok(out)
    }

    /// The first hit for which `pred` holds, paging only as far as needed.
    pub async fn find(&self, pred: impl Fn(&Contact) -> bool) -> Result<Option<Contact>, ApiError> {
        let mut found = None;
        self.walk(|c| {
            if pred(c) {
                found = Some(c.clone());
                true
            } else {
                false
            }
        })
        .await?;
        Ok(found)
    }

    /// Page through the hits until `visit` returns true or the hits end.
    async fn walk(&self, mut visit: impl FnMut(&Contact) -> bool) -> Result<(), ApiError> {
        let mut page_no = 1u32;
        loop {
            let page = self.page(page_no).await?;
            for c in &page.items {
                if visit(c) {
                    return Ok(());
                }
            }
            // Old servers: `count` is the total and there is no `has_more`.
            let past_total = page.has_more.is_none()
                && page
                    .count
                    .is_some_and(|t| u64::from(page_no) * PAGE_SIZE as u64 >= t);
            if !page.may_have_more() || past_total {
                return Ok(());
            }
            page_no += 1;
        }
    }
}
