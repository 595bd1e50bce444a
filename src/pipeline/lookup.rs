//! Exact dedupe against the account: what each of the file's keys matches on the server.
//!
//! Two strategies fill the same [`Known`] view, so they cannot disagree on a decision:
//! - [`Strategy::Index`] pages through `GET /contacts` once (sorted, each id once, total checked)
//!   and matches locally;
//! - [`Strategy::Search`] asks `/contacts/search` once per distinct key and keeps exact matches
//!   only (the server's search is a substring search).
//!
//! [`choose`] picks the cheaper for `--lookup auto` from the file's key count, the account's total
//! and the two rate limits, and says why. [`Known`] is then kept current by the writes of the run
//! (a created contact is known at once to the rows after it).
use std::collections::{BTreeSet, HashMap};

use anyhow::Context;
use futures::StreamExt;

use crate::api::{ApiError, Client, Contact, ListError, ListRequest, PAGE_SIZE, Page, PageStream};
use crate::mapping::{ContactDraft, MatchKey};
use crate::progress::Progress;
use crate::words::count;

/// How the file's keys are looked up (`--lookup`: the command line's names are [`Strategy::ALL`]'s
/// [`Strategy::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Pick the cheaper of the two (see [`choose`]).
    Auto,
    /// Page through every contact once and match locally.
    Index,
    /// Search each key and keep exact matches.
    Search,
}

impl Strategy {
    pub const ALL: [Strategy; 3] = [Strategy::Auto, Strategy::Index, Strategy::Search];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Auto => "auto",
            Strategy::Index => "index",
            Strategy::Search => "search",
        }
    }

    /// One line on what it does (the `--help` text of its value).
    pub fn about(self) -> &'static str {
        match self {
            Strategy::Auto => "Pick the cheaper of the two",
            Strategy::Index => "Page through every contact once and match locally",
            Strategy::Search => "Search each key and keep exact matches",
        }
    }
}

impl std::str::FromStr for Strategy {
    type Err = String;

    fn from_str(s: &str) -> Result<Strategy, String> {
        Strategy::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a lookup strategy (auto, index or search)"))
    }
}

/// One dedupe key value: emails lower-cased, identifiers as they are (case-sensitive).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Email(String),
    Identifier(String),
    /// Unique on the server: rows sharing one run in file order, and the contact holding one is
    /// known; matched on when `match.on` lists `phone_number`.
    Phone(String),
}

impl Key {
    pub fn email(e: &str) -> Key {
        Key::Email(e.trim().to_lowercase())
    }
    pub fn identifier(i: &str) -> Key {
        Key::Identifier(i.to_owned())
    }
    /// Phones are compared as stored (the server does not normalise them).
    pub fn phone(p: &str) -> Key {
        Key::Phone(p.trim().to_owned())
    }
    /// `email:ann@x.com`, `identifier:A1` (the reports' key column).
    pub fn label(&self) -> String {
        match self {
            Key::Email(e) => format!("email:{e}"),
            Key::Identifier(i) => format!("identifier:{i}"),
            Key::Phone(p) => format!("phone:{p}"),
        }
    }
}

/// The keys of a row that the mapping matches on, in the mapping's order.
pub fn match_keys(keys: &[MatchKey], draft: &ContactDraft) -> Vec<Key> {
    keys.iter()
        .filter_map(|k| match k {
            MatchKey::Email => draft.email.as_ref().map(|e| Key::email(e.as_str())),
            MatchKey::Identifier => draft
                .identifier
                .as_ref()
                .map(|i| Key::identifier(i.as_str())),
            MatchKey::Phone => draft.phone_number.as_ref().map(|p| Key::phone(p.as_str())),
        })
        .collect()
}

/// Every unique value a row carries (matched on or not, the phone included): rows sharing any of
/// them are applied in file order.
pub fn all_keys(draft: &ContactDraft) -> Vec<Key> {
    let mut v = Vec::with_capacity(3);
    if let Some(e) = &draft.email {
        v.push(Key::email(e.as_str()));
    }
    if let Some(i) = &draft.identifier {
        v.push(Key::identifier(i.as_str()));
    }
    if let Some(p) = &draft.phone_number {
        v.push(Key::phone(p.as_str()));
    }
    v
}

/// What the run knows of the account: the contacts matched so far and which keys point where.
/// A key absent from the maps is unknown to the server (with `Index` every contact is loaded;
/// with `Search` every key of the file was asked).
#[derive(Debug, Default, Clone)]
pub struct Known {
    contacts: HashMap<u64, Contact>,
    by_key: HashMap<Key, u64>,
}

impl Known {
    pub fn new() -> Known {
        Known::default()
    }

    /// Remember `c` (replacing what was known of it) and index its keys.
    pub fn insert(&mut self, c: Contact) {
        self.remove(c.id);
        for k in contact_keys(&c) {
            self.by_key.insert(k, c.id);
        }
        self.contacts.insert(c.id, c);
    }

    /// Forget any contact known under `key` (a fresh lookup found nothing there).
    pub fn forget_key(&mut self, key: &Key) {
        self.by_key.remove(key);
    }

    /// Forget contact `id` and the keys that point to it (no later row needs it).
    pub fn remove(&mut self, id: u64) {
        if let Some(old) = self.contacts.remove(&id) {
            for k in contact_keys(&old) {
                if self.by_key.get(&k) == Some(&id) {
                    self.by_key.remove(&k);
                }
            }
        }
    }

    pub fn get(&self, id: u64) -> Option<&Contact> {
        self.contacts.get(&id)
    }

    /// The contact `key` matches exactly, if any.
    pub fn find(&self, key: &Key) -> Option<&Contact> {
        self.by_key.get(key).and_then(|id| self.contacts.get(id))
    }

    pub fn len(&self) -> usize {
        self.contacts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.contacts.is_empty()
    }
}

/// The keys a stored contact can be matched by, and its phone (to know who holds it).
fn contact_keys(c: &Contact) -> Vec<Key> {
    let mut v = Vec::with_capacity(3);
    if let Some(e) = c.email.as_deref().filter(|e| !e.trim().is_empty()) {
        v.push(Key::email(e));
    }
    if let Some(i) = c.identifier.as_deref().filter(|i| !i.is_empty()) {
        v.push(Key::identifier(i));
    }
    if let Some(p) = c.phone_number.as_deref().filter(|p| !p.trim().is_empty()) {
        v.push(Key::phone(p));
    }
    v
}

/// The choice `--lookup auto` made and why (printed, and kept in the plan).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Choice {
    pub strategy: Strategy,
    /// Requests each strategy would need.
    pub index_requests: u64,
    pub search_requests: u64,
    /// Seconds each would take at the configured rates (the rate-limit floor).
    pub index_seconds: f64,
    pub search_seconds: f64,
    pub reason: String,
}

/// Pick the cheaper strategy: the index costs `ceil(total / 15)` list requests at the global rate,
/// search at least one request per distinct key at the (much lower) search rate. Ties go to the
/// index, whose cost does not grow with near-miss hits.
pub fn choose(keys: u64, account_total: u64, rate_per_s: f64, search_per_s: f64) -> Choice {
    let index_requests = account_total.div_ceil(PAGE_SIZE as u64).max(1);
    let search_requests = keys;
    let index_seconds = index_requests as f64 / rate_per_s.max(1e-9);
    // Each search is also one request of the global budget.
    let search_seconds = keys as f64 / search_per_s.max(1e-9).min(rate_per_s.max(1e-9)).max(1e-9);
    let strategy = if search_seconds < index_seconds {
        Strategy::Search
    } else {
        Strategy::Index
    };
    let reason = format!(
        "{} to look up, {} in the account: listing them all takes {} (~{:.1} s at {:.1}/s), \
         searching each key {} (~{:.1} s at {:.2}/s): {}",
        count(keys, "distinct key"),
        count(account_total, "contact"),
        count(index_requests, "request"),
        index_seconds,
        rate_per_s,
        count(search_requests, "request"),
        search_seconds,
        search_per_s,
        match strategy {
            Strategy::Search => "search is cheaper",
            _ => "the index is cheaper",
        }
    );
    Choice {
        strategy,
        index_requests,
        search_requests,
        index_seconds,
        search_seconds,
        reason,
    }
}

/// What the account has for the file's keys, and how it was found.
pub struct Lookup {
    pub known: Known,
    /// The strategy used (never `Auto`).
    pub strategy: Strategy,
    /// What `--lookup auto` chose and why (none when the strategy was given or no key needed it).
    pub choice: Option<Choice>,
}

/// `--lookup`: find what the account has for `keys` with `wanted`; `auto` asks the account's
/// total (the first page of the index, kept for it) and picks the cheaper strategy at the
/// client's rates, saying why on stderr unless `quiet`. No key: nothing is asked.
pub async fn look_up(
    client: &Client,
    wanted: Strategy,
    keys: &BTreeSet<Key>,
    concurrency: usize,
    quiet: bool,
) -> anyhow::Result<Lookup> {
    let count = keys.len() as u64;
    let keys = || Ok(std::borrow::Cow::Borrowed(keys));
    look_up_counted(client, wanted, (count, keys), concurrency, quiet).await
}

/// [`look_up`] knowing only how many distinct keys there are; `keys` gives them when the search
/// strategy needs them (a file read again when there are too many to keep).
pub async fn look_up_counted<'k>(
    client: &Client,
    wanted: Strategy,
    (count, keys): (
        u64,
        impl FnOnce() -> anyhow::Result<std::borrow::Cow<'k, BTreeSet<Key>>>,
    ),
    concurrency: usize,
    quiet: bool,
) -> anyhow::Result<Lookup> {
    if count == 0 {
        let strategy = if wanted == Strategy::Search {
            wanted
        } else {
            Strategy::Index
        };
        return Ok(Lookup {
            known: Known::new(),
            strategy,
            choice: None,
        });
    }
    let (mut strategy, mut choice, mut listing) = (wanted, None, None);
    if wanted == Strategy::Auto {
        // The index's listing starts at once (guessing pages while page 1 is out); page 1's
        // total chooses, and a choice of search drops the listing.
        let (mut pages, resume) = index_listing(client, count).pages_on_hold();
        let page = match pages.next().await {
            Some(page) => page.context("cannot reach the account")?,
            None => anyhow::bail!("cannot reach the account: the listing ended without a page"),
        };
        let cfg = client.config();
        let c = choose(
            count,
            page.total,
            cfg.rate.per_sec(),
            cfg.search_rate.per_sec(),
        );
        // The reasoning is for -v; the end of the run says which strategy was used.
        tracing::info!("lookup: {}", c.reason);
        if c.strategy == Strategy::Index {
            resume.resume();
        }
        (strategy, listing) = (c.strategy, Some((page.contacts, pages)));
        choice = Some(c);
    }
    let known = if strategy == Strategy::Search {
        drop(listing);
        let keys = keys()?;
        let p = Progress::new(quiet, Some(keys.len() as u64), "searching keys");
        let k = search_keys(client, &keys, concurrency, || p.inc(1)).await;
        k.context("cannot look the keys up")?
    } else {
        let p = Progress::rows(quiet, "listing contacts");
        let pages = listing.unwrap_or_else(|| (Vec::new(), index_listing(client, count).pages()));
        let k = load_index(pages, || p.inc(1)).await;
        k.context("cannot list the account's contacts")?
    };
    Ok(Lookup {
        known,
        strategy,
        choice,
    })
}

/// The listing's order for the index: emails are unique, so pages of contacts that have one
/// cannot overlap or skip (contacts without an email tie; the total check catches that).
const INDEX_SORT: &str = "email";

/// The first page of the listing, in the index's order: its `count` is the account's total, and
/// [`load_index`] starts from it, so choosing costs no extra request.
pub async fn first_page(client: &Client) -> Result<Page<Contact>, ApiError> {
    client.contacts().list().sort(INDEX_SORT).page(1).await
}

/// The account's total on a first page.
pub fn total_of(page: &Page<Contact>) -> u64 {
    page.count.unwrap_or(page.items.len() as u64)
}

/// The index's listing for a file with `keys` distinct keys: while page 1 is out, the first
/// pages are guessed at once, as many as the limiter's burst but no more than one in 20 keys (a
/// file with that many keys makes at least half as many writes, so the empty pages a small
/// account answers to cost at most a tenth of the run's requests; at 1 s a round trip is worth
/// far more: the writes wait for the whole index).
fn index_listing(client: &Client, keys: u64) -> ListRequest {
    let cfg = client.config();
    let slack = cfg.rate.per_sec() * cfg.window.as_secs_f64() * (1.0 - cfg.headroom);
    let burst = (slack.max(0.0).floor() as u64).min(keys / 20);
    client
        .contacts()
        .list()
        .sort(INDEX_SORT)
        .guess_burst(burst as u32)
}

/// `Index`: every listed contact, each once, through the API's pager (its policy on drift and a
/// short total): the contacts of page 1 when already taken from the stream, then the stream's.
/// `tick` is called per contact (progress).
async fn load_index(
    (first, mut pages): (Vec<Contact>, PageStream),
    mut tick: impl FnMut(),
) -> Result<Known, ListError> {
    let mut known = Known::new();
    for c in first {
        known.insert(c);
        tick();
    }
    while let Some(page) = pages.next().await {
        for c in page?.contacts {
            known.insert(c);
            tick();
        }
    }
    Ok(known)
}

/// The contact that matches `key` exactly, asked of the server now (search, exact hits only).
pub async fn fetch(client: &Client, key: &Key) -> Result<Option<Contact>, ApiError> {
    match key {
        Key::Email(e) => client.contacts().find_by_email(e).await,
        Key::Identifier(i) => client.contacts().find_by_identifier(i).await,
        Key::Phone(p) => client.contacts().find_by_phone(p).await,
    }
}

/// `Search`: ask each key, `concurrency` at a time (the client's search limit paces them).
pub async fn search_keys(
    client: &Client,
    keys: &BTreeSet<Key>,
    concurrency: usize,
    mut tick: impl FnMut(),
) -> Result<Known, ApiError> {
    let mut known = Known::new();
    let mut hits = futures::stream::iter(keys.iter())
        .map(|k| async move { fetch(client, k).await })
        .buffer_unordered(concurrency.max(1));
    while let Some(hit) = hits.next().await {
        if let Some(c) = hit? {
            known.insert(c);
        }
        tick();
    }
    Ok(known)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(id: u64, email: Option<&str>, ident: Option<&str>) -> Contact {
        serde_json::from_value(serde_json::json!({
            "id": id, "email": email, "identifier": ident
        }))
        .unwrap()
    }

    #[test]
    fn email_matches_ignore_case_identifiers_do_not() {
        let mut k = Known::new();
        k.insert(contact(1, Some("Ann@X.com"), Some("A1")));
        assert_eq!(k.find(&Key::email("ann@x.COM")).map(|c| c.id), Some(1));
        assert_eq!(k.find(&Key::identifier("A1")).map(|c| c.id), Some(1));
        assert!(k.find(&Key::identifier("a1")).is_none());
    }

    #[test]
    fn reinserting_a_contact_moves_its_keys() {
        let mut k = Known::new();
        k.insert(contact(1, Some("a@x.com"), None));
        k.insert(contact(1, Some("b@x.com"), None));
        assert!(k.find(&Key::email("a@x.com")).is_none());
        assert_eq!(k.find(&Key::email("b@x.com")).map(|c| c.id), Some(1));
    }

    #[test]
    fn auto_prefers_search_for_few_keys_in_a_big_account_and_the_index_otherwise() {
        // 10 keys, 100,000 contacts: 6,667 list requests at 50/s vs 10 searches at 1.67/s.
        let c = choose(10, 100_000, 50.0, 100.0 / 60.0);
        assert_eq!(c.strategy, Strategy::Search, "{}", c.reason);
        // 5,000 keys, 2,500 contacts: 167 list requests vs 5,000 searches.
        let c = choose(5_000, 2_500, 50.0, 100.0 / 60.0);
        assert_eq!(c.strategy, Strategy::Index, "{}", c.reason);
        assert_eq!(c.index_requests, 167);
        assert!(c.reason.contains("index is cheaper"));
        // An empty account: one list request.
        assert_eq!(choose(3, 0, 50.0, 1.0).index_requests, 1);
    }
}
