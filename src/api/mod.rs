//! The client of the Doto contacts API: typed endpoints ([`Contacts`]), one `send()` every request
//! goes through (shared adaptive rate limit, a lower one for search, a permit per attempt, retry
//! policy in [`retry`]), both response flavours decoded in one place, typed errors that tell
//! "rejected" from "try again" from "outcome unknown", and a token that never prints. Everything
//! that needs every contact (the listing stream, the import's lookup index, export) pages through
//! one pager ([`ListRequest::pages`]: concurrent pages, dedupe by id, each page's total, one policy
//! for drift and a short total).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use doto_bulk::api::{ApiToken, Client, ClientConfig};
//! let token = ApiToken::from_env_or_file(None)?;
//! let client = Client::new(ClientConfig::new("https://app.usendoto.com", 1, token))?;
//! let page = client.contacts().list().sort("created_at").page(1).await?;
//! let jane = client.contacts().find_by_email("jane@example.com").await?;
//! # Ok(()) }
//! ```
pub mod adaptive;
mod breaker;
mod client;
mod contacts;
mod decode;
mod error;
mod pager;
mod retry;
mod secret;
mod throttle;
mod types;

pub use adaptive::{Concurrency, ConcurrencyStats, Limit};
pub use client::{Client, ClientConfig, Metrics, RateLimit, TokenHeader};
pub use contacts::{
    ContactStream, Contacts, DEFAULT_SORT, ListRequest, MAX_NOTE_CHARS, REMOVAL_ATTEMPTS,
    SORT_KEYS, SearchRequest, Served,
};
pub use error::{ApiError, TransportKind};
pub use pager::{Drift, ListError, ListSummary, ListedPage, PageStream, Resume};
pub use secret::{ApiToken, TOKEN_ENV};
pub use throttle::LaneStatus;
pub use types::{Contact, ContactPatch, Conversation, NewContact, Note, PAGE_SIZE, Page};
