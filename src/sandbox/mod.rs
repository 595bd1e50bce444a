//! The sandbox: a local, in-memory emulator of the Doto (Chatwoot-compatible) contacts API that every
//! test and benchmark runs against.
//!
//! Scope: the eight contacts endpoints of `API.md` (list, search, show, create, update, delete,
//! conversations, notes) for one account and its tokens (an administrator and an agent), plus the
//! two removals Chatwoot serves that `revert` uses (`POST /contacts/{id}/destroy_custom_attributes`,
//! `DELETE /contacts/{id}/notes/{note_id}`; `no_removal_routes` serves neither), with the
//! real server's quirks: 15 per page, no stable order without `sort`, substring search with
//! wildcards, Rails validations and their exact 422 bodies, the 401/403/404 bodies, the non-atomic
//! phone uniqueness. Around them: fixed-window rate limits with the real 429, latency, seeded faults
//! on writes (500 before/after the write, a dropped connection after it, 429 bursts), seeding,
//! saving, and side endpoints under `/_sandbox/` (stats, state, reset). Not emulated: inboxes,
//! messages, labels, teams, filters, avatars, the web UI.
//!
//! Where Rails and Postgres show through, the sandbox shows the same thing (each point has a test
//! in `tests/it/sandbox/`):
//! - Paths are routed as Rails routes them: trailing and repeated slashes are squeezed, a `.json`
//!   suffix is the format, and ids (and the account id) are read with Ruby's `to_i`, so
//!   `/contacts/1abc.json/` is contact 1 and `/contacts/abc` is a 404.
//! - The account has no inboxes: any non-blank `inbox_id` on create is a 404. The controller looks
//!   the inbox up after the insert, in one transaction, so a 422 still comes first and the rolled
//!   back insert has used an id. Ids come from a sequence: an insert the unique indexes refuse
//!   (500) also leaves a gap; a validation 422 does not.
//! - Contacts render without `updated_at`, as every contact view does. Notes render `account_id`
//!   and `contact_id` as `null` (a bug in the real note template); the side endpoints and
//!   [`SandboxState::notes`] keep the real ids.
//! - `page` is read with `to_i`: the listing serves page 1 for anything below 1 (Kaminari) and
//!   echoes what was sent as `current_page`; the search computes a negative OFFSET there, a 500.
//!   A blank search returns before counting: `count` and `has_more` are `null`.
//! - `sort` also takes `company_name`, `city` and `country` (from `additional_attributes`);
//!   these and `last_activity_at` put contacts without a value last in both directions.
//!   (Some older versions spell the first one `company`; the sandbox knows only the current key.)
//!   It is Sift's comma list, applied in the controller's declaration order (email first).
//! - `q` is blank by `blank?` (Unicode whitespace) but stripped by `strip` (ASCII only).
//! - `blocked` is cast as ActiveModel's Boolean; nil (`null`, `""`) breaks its NOT NULL column
//!   (a 500). A NUL character anywhere Postgres would meet it is a 500.
//! - The 255-character check of string columns is `ApplicationRecord`'s before_validation: its
//!   messages come first.
//! - An agent lists only the conversations of `agent_inbox_ids` when set; `GET /api/v1/profile`
//!   tells each token's role.
//!
//! `docs/sandbox.md` sums up what is reproduced and what is not (`tests/it/faithful.rs`).
//! - A note body may be nested (`{"note": {"content": …}}`); when both forms are sent the nested
//!   one wins, as Rails' params wrapper leaves a body with a `note` key alone.
//! - Booleans sent for string fields are cast as string columns cast them (`true` → `"t"`).
//! - JSON bodies say `application/json; charset=utf-8`; DELETE's empty 200 says
//!   `application/json`; the 429 stays `text/plain`.
//! - Conversations render the real partial's keys (`uuid`, `labels`, `muted`, `can_reply`,
//!   `meta.channel`, `meta.assignee` when assigned, the whole contact as `meta.sender`).
//!
//! Not reproduced, on purpose or for want of the thing behind it:
//! - The attribute sort keys compare bytes; Postgres compares with the database's collation, which
//!   may order case and accents differently. No client should depend on either.
//! - A format other than `.json` (`/contacts/1.xml`) is a 404 here; the real server routes it and
//!   then fails to find a template for it.
//! - Conversations have no messages, labels, teams or read receipts (always empty, zero or null)
//!   and every inbox renders as `Channel::Api`: the contacts API never writes them.
//! - The per-account search limit counts `/contacts/search` by route, whatever the account
//!   segment looks like; rack-attack matches digits only, so `1abc` would escape it there.
//!
//! Layout: [`config`] (knobs), [`store`] (data, validation, queries), [`routes`] (handlers and the
//! request gate that applies limits, latency, faults and counting), [`limits`], [`faults`],
//! [`stats`], [`search`] (packed substring index), [`seed`] (generator, JSONL load/save),
//! [`server`] (accept loop that can drop a connection), [`hooks`] (holds for deterministic tests).
//!
//! Side endpoints (no token, not counted, not rate-limited): `GET /_sandbox/stats` ([`Stats`] as
//! JSON), `GET /_sandbox/state` (every contact, note and conversation), `POST /_sandbox/reset`
//! (forget everything; `?what=stats` zeroes only the counters), `GET /_sandbox/health`.
//!
//! Tokens: `config.admin_token` (an administrator of `config.account_id`) and `config.agent_token`
//! (an agent: everything but delete). `config.other_account_id` exists but neither token belongs to
//! it. The tokens are fake and local, which is why `doto-bulk sandbox` prints them.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use doto_bulk::sandbox::{RateLimits, SandboxConfig, spawn};
//! let sb = spawn(SandboxConfig {
//!     seed_contacts: 100,
//!     limits: RateLimits { global: Some(50), window: std::time::Duration::from_secs(1), ..Default::default() },
//!     ..Default::default()
//! })
//! .await?;
//! let url = format!("{}/api/v1/accounts/{}/contacts?sort=name", sb.base_url, sb.account_id);
//! let page: serde_json::Value =
//!     reqwest::Client::new().get(url).header("api_access_token", &sb.admin_token).send().await?.json().await?;
//! assert_eq!(page["payload"].as_array().map(Vec::len), Some(15));
//! assert!(sb.stats().admitted_per_window(None).values().all(|&n| n <= 50));
//! sb.shutdown().await?;
//! # Ok(())
//! # }
//! ```
pub mod config;
pub mod faults;
pub mod hooks;
pub mod limits;
pub mod routes;
pub mod search;
pub mod seed;
pub mod server;
pub mod stats;
pub mod store;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::{Value, json};

pub use config::{FaultKind, Faults, Flavour, RateLimits, SandboxConfig};
pub use hooks::Hold;
pub use routes::router;
pub use server::{SandboxHandle, spawn};
pub use stats::{LogEntry, RouteCount, Stats, route};

use faults::FaultState;
use limits::Limiter;
use stats::Recorder;
use store::{Role, Store, User};

/// Shared state of one sandbox: cheap to clone, handed to [`router`].
#[derive(Clone)]
pub struct SandboxState {
    inner: Arc<Inner>,
}

struct Inner {
    config: SandboxConfig,
    store: Mutex<Store>,
    stats: Mutex<Recorder>,
    limiter: Mutex<Limiter>,
    faults: Mutex<FaultState>,
    hooks: hooks::Hooks,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    /// Per-request salt of the unstable order.
    order_counter: AtomicU64,
    started: Instant,
    started_epoch_ms: u64,
    admin: User,
    agent: User,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in a handler must not wedge the whole sandbox.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SandboxState {
    /// Build the state, seeding it from `config.seed_file` and `config.seed_contacts`.
    pub fn new(config: SandboxConfig) -> anyhow::Result<SandboxState> {
        let mut store = Store::new();
        if let Some(path) = &config.seed_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the seed file {}", path.display()))?;
            seed::load_jsonl(&mut store, &text, config.account_id)
                .with_context(|| format!("seed file {}", path.display()))?;
        }
        if config.seed_contacts > 0 {
            seed::generate(
                &mut store,
                config.account_id,
                config.seed_contacts,
                config.seed,
            );
        }
        let admin = User {
            id: 1,
            name: "Sandbox Admin".into(),
            email: "admin@sandbox.test".into(),
            role: Role::Administrator,
        };
        let agent = User {
            id: 2,
            name: "Sandbox Agent".into(),
            email: "agent@sandbox.test".into(),
            role: Role::Agent,
        };
        let started_epoch_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Ok(SandboxState {
            inner: Arc::new(Inner {
                store: Mutex::new(store),
                stats: Mutex::new(Recorder::default()),
                limiter: Mutex::new(Limiter::new(config.limits.clone())),
                faults: Mutex::new(FaultState::new(config.faults.clone())),
                hooks: hooks::Hooks::default(),
                in_flight: AtomicU64::new(0),
                max_in_flight: AtomicU64::new(0),
                order_counter: AtomicU64::new(0),
                started: Instant::now(),
                started_epoch_ms,
                admin,
                agent,
                config,
            }),
        })
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    /// A snapshot of the counters (the same data as `GET /_sandbox/stats`).
    pub fn stats(&self) -> Stats {
        let window_ms = lock(&self.inner.limiter).window_ms();
        let mut s = lock(&self.inner.stats).snapshot(window_ms);
        s.max_in_flight = self.inner.max_in_flight.load(Ordering::Relaxed);
        s.started_epoch_ms = self.inner.started_epoch_ms;
        s
    }

    /// Every stored contact of every account as the API renders it (plus `account_id`), by id.
    pub fn contacts(&self) -> Vec<Value> {
        store::render_all(&lock(&self.inner.store))
    }

    /// Every stored note, with its `contact_id`, by id.
    pub fn notes(&self) -> Vec<Value> {
        let store = lock(&self.inner.store);
        store
            .notes
            .values()
            .map(|n| n.stored(self.user_by_id(n.user_id)))
            .collect()
    }

    /// The whole state as `GET /_sandbox/state` serves it.
    pub fn state_json(&self) -> Value {
        let store = lock(&self.inner.store);
        let conversations: Vec<Value> = {
            let mut v: Vec<Value> = store
                .conversations
                .values()
                .flatten()
                .map(|c| {
                    json!({"id": c.display_id, "account_id": c.account_id, "contact_id": c.contact_id,
                           "inbox_id": c.inbox_id, "status": c.status, "created_at": c.created_at,
                           "last_activity_at": c.last_activity_at, "assignee_id": c.assignee_id})
                })
                .collect();
            v.sort_by_key(|c| (c["account_id"].as_u64(), c["id"].as_u64()));
            v
        };
        json!({
            "contacts": store::render_all(&store),
            "notes": store.notes.values().map(|n| n.stored(self.user_by_id(n.user_id))).collect::<Vec<_>>(),
            "conversations": conversations,
        })
    }

    /// Forget every contact, note and conversation, and zero the counters, limiter and fault RNG.
    pub fn reset(&self) {
        lock(&self.inner.store).clear();
        self.reset_stats();
        lock(&self.inner.limiter).reset();
        lock(&self.inner.faults).reset();
    }

    /// Zero the counters and the request log only; the data stays.
    pub fn reset_stats(&self) {
        *lock(&self.inner.stats) = Recorder::default();
        self.inner.max_in_flight.store(0, Ordering::Relaxed);
    }

    /// Hold every `method` request of `route` (a [`route`] name) after the first `after` until
    /// the returned [`Hold`] is released: for tests that need something to happen at a given
    /// point of a run (see [`hooks`]).
    pub fn hold_after(&self, method: &str, route: &'static str, after: u64) -> Hold {
        self.inner.hooks.add(method, route, after)
    }

    /// Make the rate limiter (and the request log's `epoch_ms`) read `epoch_ms` as the time until
    /// set again, so a test puts requests in the windows it means to; `None`: the system clock.
    pub fn set_clock(&self, epoch_ms: Option<u64>) {
        self.inner.hooks.set_clock(epoch_ms)
    }

    /// Insert a contact directly (no validation, no counters), e.g. into `other_account_id`.
    /// The body uses the seed-file shape; returns the new id.
    pub fn insert_contact(&self, account_id: u64, contact: &Value) -> anyhow::Result<u64> {
        let mut store = lock(&self.inner.store);
        seed::insert_value(&mut store, contact, account_id)
    }

    /// Write the state as JSONL (one contact a line, with its notes and conversations), loadable
    /// again as a seed file.
    pub fn save(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let text = seed::dump_jsonl(&lock(&self.inner.store));
        std::fs::write(path, text)
            .with_context(|| format!("cannot write the sandbox state to {}", path.display()))
    }

    fn user_by_id(&self, id: u64) -> &User {
        if id == self.inner.agent.id {
            &self.inner.agent
        } else {
            &self.inner.admin
        }
    }

    fn user_by_token(&self, token: &str) -> Option<&User> {
        let c = &self.inner.config;
        if token == c.admin_token {
            Some(&self.inner.admin)
        } else if token == c.agent_token {
            Some(&self.inner.agent)
        } else {
            None
        }
    }
}
