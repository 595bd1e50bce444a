//! Every knob of the sandbox in one plain struct: flavour, accounts and tokens, rate limits, latency,
//! fault injection, seeding and persistence. `Default` is the friendliest server: Chatwoot flavour, no
//! limits, no faults, no latency, account 1, fixed fake tokens.
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which of the two response shapes real deployments show (see `API.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavour {
    /// Chatwoot 4.x: create 200 `{"payload": {"contact", "contact_inbox"}}`, show/update wrapped in
    /// `payload`, 401 for permission errors, no `meta.total_pages`.
    #[default]
    Chatwoot,
    /// Doto's documentation: create 201 with the bare contact, bare show/update, 403 for permission
    /// errors, `meta.total_pages` on listings.
    Doto,
}

/// What an injected fault does to a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// 500 and nothing written.
    Before,
    /// The write is committed, then the answer is a 500.
    After,
    /// The write is committed, then the TCP connection is closed without any response.
    Drop,
    /// This request and the next `burst_len - 1` requests (of any kind) get a 429.
    Burst429,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Before => "before",
            FaultKind::After => "after",
            FaultKind::Drop => "drop",
            FaultKind::Burst429 => "burst429",
        }
    }

    pub fn parse(s: &str) -> Option<FaultKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "before" => Some(FaultKind::Before),
            "after" => Some(FaultKind::After),
            "drop" => Some(FaultKind::Drop),
            "burst429" | "burst" | "429" => Some(FaultKind::Burst429),
            _ => None,
        }
    }
}

/// Fixed-window rate limits, like rack-attack on the real server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimits {
    /// Requests admitted per window for every request (the real default is 3,000 per minute).
    pub global: Option<u32>,
    /// `GET /contacts/search` requests admitted per window per account (the real default is 100/min).
    pub search: Option<u32>,
    /// Window length; windows are aligned to multiples of it since the Unix epoch (1 s for tests).
    pub window: Duration,
    /// Send `Retry-After` (seconds to the next window) on 429s; the real server does not.
    pub retry_after: bool,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            global: None,
            search: None,
            window: Duration::from_secs(60),
            retry_after: false,
        }
    }
}

/// Seeded fault injection on writes (POST, PATCH, PUT, DELETE; notes included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Probability in [0, 1] that a write gets a fault.
    pub rate: f64,
    /// Kinds drawn from (uniformly) when a fault fires; empty means no faults.
    pub kinds: Vec<FaultKind>,
    /// Seed of the fault RNG, so a run is reproducible for the same sequence of writes.
    pub seed: u64,
    /// Length of a 429 burst, the triggering request included.
    pub burst_len: u32,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            rate: 0.0,
            kinds: Vec::new(),
            seed: 0,
            burst_len: 5,
        }
    }
}

/// Everything the sandbox can be told.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Port to bind on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    pub flavour: Flavour,
    /// The account the tokens are members of.
    pub account_id: u64,
    /// A second account that exists but none of the tokens belong to (its contacts are 404 to us,
    /// its URL is 401/403 "not authorized to access this account").
    pub other_account_id: u64,
    /// Token of an administrator of `account_id`.
    pub admin_token: String,
    /// Token of an agent of `account_id`: everything but delete.
    pub agent_token: String,
    /// The inboxes the agent is a member of: the agent's `GET /contacts/{id}/conversations` lists
    /// only conversations in them, as the real permission filter does (an administrator sees
    /// every inbox). `None`: the agent sees every inbox too.
    pub agent_inbox_ids: Option<Vec<u64>>,
    pub limits: RateLimits,
    pub faults: Faults,
    /// Added to every API request before it is handled.
    pub latency: Duration,
    /// Added on top of `latency` for every other API request in flight when one arrives: a server
    /// that slows down under load (50 requests in flight at 10 ms each: half a second more).
    pub latency_per_in_flight: Duration,
    /// Time between a create's uniqueness checks and its insert, during which a concurrent create
    /// with the same phone also passes (the real check is not atomic). 1 ms by default.
    pub race_window: Duration,
    /// When no `sort` is sent, return rows in an order that changes on every request (as Postgres
    /// may), so a client that pages without sorting misses or duplicates contacts.
    pub unstable_order: bool,
    /// Old search shape: `meta.count` is the total and there is no `has_more`.
    pub search_total_count: bool,
    /// Blank `q` answers 422 `{"error": "Specify search string with parameter q"}` (Chatwoot
    /// 4.x controller) instead of 200 with `count: null`.
    pub blank_search_422: bool,
    /// Very old versions replaced `additional_attributes` wholesale on update.
    pub replace_additional_attributes: bool,
    /// After a create, or an update that sends `email` or `avatar_url`, the server adds keys of its
    /// own to `additional_attributes` (`avatar_url_hash`, `last_avatar_sync_at`), as the real
    /// avatar sync does a moment later: the write's response does not show them, a later read does.
    pub server_attributes: bool,
    /// An older server: neither `POST /contacts/{id}/destroy_custom_attributes` nor
    /// `DELETE /contacts/{id}/notes/{note_id}` is served (404 on the route itself).
    pub no_removal_routes: bool,
    /// Generate this many realistic contacts at start.
    pub seed_contacts: usize,
    /// Seed of the contact generator (and of the unstable order).
    pub seed: u64,
    /// Load contacts (JSONL, one contact per line) at start.
    pub seed_file: Option<PathBuf>,
    /// Write the state (JSONL, loadable as `seed_file`) here on shutdown.
    pub save_file: Option<PathBuf>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            port: 0,
            flavour: Flavour::Chatwoot,
            account_id: 1,
            other_account_id: 2,
            admin_token: "sandbox-admin-token".into(),
            agent_token: "sandbox-agent-token".into(),
            agent_inbox_ids: None,
            limits: RateLimits::default(),
            faults: Faults::default(),
            latency: Duration::ZERO,
            latency_per_in_flight: Duration::ZERO,
            race_window: Duration::from_millis(1),
            unstable_order: true,
            search_total_count: false,
            blank_search_422: false,
            replace_additional_attributes: false,
            server_attributes: false,
            no_removal_routes: false,
            seed_contacts: 0,
            seed: 1,
            seed_file: None,
            save_file: None,
        }
    }
}
