//! Request counters: by (method, route template, status), 429s sent, faults injected by kind, the
//! highest number of requests in flight, and a per-request log precise enough for a test to prove
//! that a client never exceeded a rate in any window. Side endpoints serve the same data as JSON.
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// Route templates as they appear in [`Stats`].
pub mod route {
    pub const CONTACTS: &str = "/api/v1/accounts/{account_id}/contacts";
    pub const SEARCH: &str = "/api/v1/accounts/{account_id}/contacts/search";
    pub const CONTACT: &str = "/api/v1/accounts/{account_id}/contacts/{id}";
    pub const CONVERSATIONS: &str = "/api/v1/accounts/{account_id}/contacts/{id}/conversations";
    pub const NOTES: &str = "/api/v1/accounts/{account_id}/contacts/{id}/notes";
    pub const NOTE: &str = "/api/v1/accounts/{account_id}/contacts/{id}/notes/{note_id}";
    pub const DESTROY_CUSTOM_ATTRIBUTES: &str =
        "/api/v1/accounts/{account_id}/contacts/{id}/destroy_custom_attributes";
    pub const PROFILE: &str = "/api/v1/profile";
    pub const OTHER: &str = "other";
}

/// The template a path belongs to, and the account id in it (for the per-account search limit).
pub fn classify(path: &str) -> (&'static str, Option<u64>) {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    if segs == ["", "api", "v1", "profile"] {
        return (route::PROFILE, None);
    }
    // ["", "api", "v1", "accounts", ACC, "contacts", ...]
    if segs.len() < 6
        || segs[1] != "api"
        || segs[2] != "v1"
        || segs[3] != "accounts"
        || segs[5] != "contacts"
    {
        return (route::OTHER, None);
    }
    let acc = segs[4].parse().ok();
    let r = match &segs[6..] {
        [] => route::CONTACTS,
        ["search"] => route::SEARCH,
        [_] => route::CONTACT,
        [_, "conversations"] => route::CONVERSATIONS,
        [_, "notes"] => route::NOTES,
        [_, "notes", _] => route::NOTE,
        [_, "destroy_custom_attributes"] => route::DESTROY_CUSTOM_ATTRIBUTES,
        _ => route::OTHER,
    };
    (r, acc)
}

/// One request as the sandbox saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Arrival, in milliseconds since the sandbox started.
    pub at_ms: u64,
    /// Arrival, in milliseconds since the Unix epoch (rate-limit windows are aligned to it).
    pub epoch_ms: u64,
    pub method: String,
    pub route: String,
    /// 0 when the connection was dropped without a response.
    pub status: u16,
    /// Whether the rate limiter admitted it (false for every 429, limiter or burst).
    pub admitted: bool,
    /// The fault injected into it, if any.
    pub fault: Option<String>,
}

/// Requests counted for one (method, route, status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteCount {
    pub method: String,
    pub route: String,
    pub status: u16,
    pub count: u64,
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// API requests received (side endpoints are not counted).
    pub total: u64,
    /// Sorted by route, method, status.
    pub by_route: Vec<RouteCount>,
    /// 429 responses sent, by the limiter or a burst fault.
    pub rate_limited: u64,
    /// Faults injected, by kind (`before`, `after`, `drop`, `burst429`).
    pub faults: BTreeMap<String, u64>,
    /// Highest number of API requests being handled at the same time.
    pub max_in_flight: u64,
    /// Length of a rate-limit window in milliseconds, to group `log` by window.
    pub window_ms: u64,
    /// When the sandbox started, in milliseconds since the Unix epoch (`at_ms` counts from here).
    pub started_epoch_ms: u64,
    pub log: Vec<LogEntry>,
}

impl Stats {
    /// Requests with this method and route template (any status).
    pub fn count(&self, method: &str, route: &str) -> u64 {
        self.by_route
            .iter()
            .filter(|r| r.method == method && r.route == route)
            .map(|r| r.count)
            .sum()
    }

    /// Requests with this method, route template and status.
    pub fn count_status(&self, method: &str, route: &str, status: u16) -> u64 {
        self.by_route
            .iter()
            .filter(|r| r.method == method && r.route == route && r.status == status)
            .map(|r| r.count)
            .sum()
    }

    /// Admitted requests per window index (`epoch_ms / window_ms`), optionally for one route.
    pub fn admitted_per_window(&self, route: Option<&str>) -> BTreeMap<u64, u64> {
        let mut m = BTreeMap::new();
        let w = self.window_ms.max(1);
        for e in self
            .log
            .iter()
            .filter(|e| e.admitted && route.is_none_or(|r| e.route == r))
        {
            *m.entry(e.epoch_ms / w).or_insert(0) += 1;
        }
        m
    }
}

/// Keeps the per-request log from growing without bound in a long benchmark.
const LOG_CAP: usize = 1_000_000;

/// The live counters behind [`Stats`].
#[derive(Default)]
pub struct Recorder {
    total: u64,
    counts: HashMap<(String, &'static str, u16), u64>,
    rate_limited: u64,
    faults: BTreeMap<String, u64>,
    log: Vec<LogEntry>,
}

impl Recorder {
    pub fn record(&mut self, entry: LogEntry, route: &'static str) {
        self.total += 1;
        *self
            .counts
            .entry((entry.method.clone(), route, entry.status))
            .or_insert(0) += 1;
        if entry.status == 429 {
            self.rate_limited += 1;
        }
        if let Some(f) = &entry.fault {
            *self.faults.entry(f.clone()).or_insert(0) += 1;
        }
        if self.log.len() < LOG_CAP {
            self.log.push(entry);
        }
    }

    pub fn snapshot(&self, window_ms: u64) -> Stats {
        let mut by_route: Vec<RouteCount> = self
            .counts
            .iter()
            .map(|((m, r, s), c)| RouteCount {
                method: m.clone(),
                route: r.to_string(),
                status: *s,
                count: *c,
            })
            .collect();
        by_route
            .sort_by(|a, b| (&a.route, &a.method, a.status).cmp(&(&b.route, &b.method, b.status)));
        Stats {
            total: self.total,
            by_route,
            rate_limited: self.rate_limited,
            faults: self.faults.clone(),
            max_in_flight: 0,
            window_ms,
            started_epoch_ms: 0,
            log: self.log.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_routes() {
        assert_eq!(
            classify("/api/v1/accounts/1/contacts"),
            (route::CONTACTS, Some(1))
        );
        assert_eq!(
            classify("/api/v1/accounts/7/contacts/search"),
            (route::SEARCH, Some(7))
        );
        assert_eq!(
            classify("/api/v1/accounts/1/contacts/12"),
            (route::CONTACT, Some(1))
        );
        assert_eq!(
            classify("/api/v1/accounts/1/contacts/12/notes"),
            (route::NOTES, Some(1))
        );
        assert_eq!(
            classify("/api/v1/accounts/1/contacts/12/conversations"),
            (route::CONVERSATIONS, Some(1))
        );
        assert_eq!(
            classify("/api/v1/accounts/1/contacts/12/notes/3"),
            (route::NOTE, Some(1))
        );
        assert_eq!(
            classify("/api/v1/accounts/1/contacts/12/destroy_custom_attributes").0,
            route::DESTROY_CUSTOM_ATTRIBUTES
        );
        assert_eq!(classify("/api/v2/whatever").0, route::OTHER);
    }
}
