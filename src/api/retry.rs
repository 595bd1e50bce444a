//! Retry policy as pure functions: [`classify`] decides, from what one attempt observed (status and
//! headers, or a transport failure) and the request's method, whether to try again and why;
//! [`backoff`] is exponential with full jitter; [`retry_after`] reads the header in seconds or as
//! an HTTP date. `send()` in `client.rs` is the only caller; everything here is table-tested without
//! a network.
//!
//! The rule for writes (from API.md): a 429 is answered before the request reaches the controller
//! (Rack::Attack), so nothing was written and any method may be re-sent. A 5xx on a POST is never
//! proof that nothing was written: the server may have committed and then failed (or lost a race on
//! a unique index to another request with the same key, which is also answered 500), so a POST that
//! got a 5xx, a timeout after sending, or a connection closed without a response is
//! [`Reason::OutcomeUnknown`] and is not re-sent. Reads, PATCH/PUT (absolute values) and DELETE are
//! idempotent and are retried on 5xx and transport failures.
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};

use super::error::TransportKind;

/// What one attempt observed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Observed<'a> {
    Response {
        status: StatusCode,
        headers: &'a HeaderMap,
    },
    Transport(TransportKind),
}

/// Why an attempt is retried or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// 429: rate limited; nothing was processed.
    RateLimited,
    /// A 5xx on a request that is safe to repeat.
    ServerError(u16),
    /// The connection was never made: nothing was sent.
    ConnectFailed,
    /// Timeout, reset or close on a request that is safe to repeat.
    TransportFailed(TransportKind),
    /// A write that may have been applied: do not repeat it blindly.
    OutcomeUnknown,
    /// A 4xx other than 429: the answer will not change.
    ClientError(u16),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::RateLimited => write!(f, "rate limited (429)"),
            Reason::ServerError(s) => write!(f, "server error ({s})"),
            Reason::ConnectFailed => write!(f, "could not connect"),
            Reason::TransportFailed(k) => write!(f, "{k}"),
            Reason::OutcomeUnknown => write!(f, "write may have been applied"),
            Reason::ClientError(s) => write!(f, "client error ({s})"),
        }
    }
}

impl Reason {
    /// Every name [`Reason::key`] gives a retried attempt, in the order the counters keep them.
    pub(crate) const RETRIED: [&'static str; 6] = [
        "rate_limited",
        "server_error",
        "connect_failed",
        "timeout",
        "connection_closed",
        "transport_error",
    ];

    /// The reason's name in `summary.json` (`retries_by_reason`).
    pub(crate) fn key(self) -> &'static str {
        match self {
            Reason::RateLimited => "rate_limited",
            Reason::ServerError(_) => "server_error",
            Reason::ConnectFailed | Reason::TransportFailed(TransportKind::Connect) => {
                "connect_failed"
            }
            Reason::TransportFailed(TransportKind::Timeout) => "timeout",
            Reason::TransportFailed(TransportKind::Closed) => "connection_closed",
            Reason::TransportFailed(TransportKind::Other) => "transport_error",
            Reason::OutcomeUnknown => "outcome_unknown",
            Reason::ClientError(_) => "client_error",
        }
    }
}

/// The decision for one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// A success: use the response.
    Accept,
    /// Try again, after `after` when the server said how long (Retry-After), else after backoff.
    Retry {
        after: Option<Duration>,
        reason: Reason,
    },
    /// Stop and turn what was observed into an error.
    GiveUp { reason: Reason },
}

/// Methods whose repetition cannot create a second effect.
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// Decide what to do after one attempt. Pure: `now` is only used to read an HTTP-date Retry-After.
pub(crate) fn classify(method: &Method, observed: Observed<'_>, now: SystemTime) -> Decision {
    let idempotent = is_idempotent(method);
    match observed {
        Observed::Response { status, headers } => {
            let code = status.as_u16();
            if status.is_success() {
                Decision::Accept
            } else if code == 429 {
                Decision::Retry {
                    after: retry_after(headers, now),
                    reason: Reason::RateLimited,
                }
            } else if status.is_server_error() || code == 408 {
                if idempotent {
                    Decision::Retry {
                        after: retry_after(headers, now),
                        reason: Reason::ServerError(code),
                    }
                } else {
                    Decision::GiveUp {
                        reason: Reason::OutcomeUnknown,
                    }
                }
            } else {
                Decision::GiveUp {
                    reason: Reason::ClientError(code),
                }
            }
        }
        Observed::Transport(kind) if kind.nothing_sent() => Decision::Retry {
            after: None,
            reason: Reason::ConnectFailed,
        },
        Observed::Transport(kind) => {
            if idempotent {
                Decision::Retry {
                    after: None,
                    reason: Reason::TransportFailed(kind),
                }
            } else {
                Decision::GiveUp {
                    reason: Reason::OutcomeUnknown,
                }
            }
        }
    }
}

/// `Retry-After` as a delay: delta-seconds or an HTTP date (a date in the past is zero). Anything
/// unreadable is ignored. Capped at one hour so a broken header cannot stall a run forever.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let d = if let Ok(secs) = raw.parse::<u64>() {
        Duration::from_secs(secs)
    } else if let Ok(secs) = raw.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        Duration::from_secs_f64(secs.min(3600.0))
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(raw).ok()?;
        let at: SystemTime = at.with_timezone(&chrono::Utc).into();
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(d.min(Duration::from_secs(3600)))
}

/// Exponential backoff with full jitter: uniform in `[0, min(cap, base * 2^retry)]`, where `retry`
/// counts from 0 for the first retry. Full jitter spreads concurrent workers that failed together.
pub(crate) fn backoff(base: Duration, cap: Duration, retry: u32) -> Duration {
    let ceiling = base
        .checked_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX))
        .unwrap_or(cap)
        .min(cap);
    if ceiling.is_zero() {
        return Duration::ZERO;
    }
    let nanos = rand::random_range(0..=ceiling.as_nanos().min(u64::MAX as u128) as u64);
    Duration::from_nanos(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(retry_after: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = retry_after {
            h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// status × Retry-After header × method → decision.
    #[test]
    fn classify_table() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470); // 2015-10-21 07:27:50 GMT
        let date = "Wed, 21 Oct 2015 07:28:00 GMT";
        use Decision::*;
        use Reason::*;
        let rl = |s: Option<u64>| Retry {
            after: s.map(Duration::from_secs),
            reason: RateLimited,
        };
        let srv = |c: u16, s: Option<u64>| Retry {
            after: s.map(Duration::from_secs),
            reason: ServerError(c),
        };
        let unknown = GiveUp {
            reason: OutcomeUnknown,
        };
        #[rustfmt::skip]
        let table: Vec<(u16, Option<&str>, Method, Decision)> = vec![
            (200, None, Method::GET, Accept),
            (201, None, Method::POST, Accept),
            (200, Some("5"), Method::DELETE, Accept),
            // 429: nothing was processed, every method retries; the header is honoured when present.
            (429, None, Method::GET, rl(None)),
            (429, None, Method::POST, rl(None)),
            (429, None, Method::PATCH, rl(None)),
            (429, Some("7"), Method::POST, rl(Some(7))),
            (429, Some(date), Method::GET, rl(Some(10))),
            (429, Some("soon"), Method::GET, rl(None)),
            // 5xx: idempotent methods retry, a POST may have been applied.
            (500, None, Method::GET, srv(500, None)),
            (500, None, Method::PATCH, srv(500, None)),
            (500, None, Method::PUT, srv(500, None)),
            (502, None, Method::DELETE, srv(502, None)),
            (503, Some("2"), Method::GET, srv(503, Some(2))),
            (500, None, Method::POST, unknown),
            (502, None, Method::POST, unknown),
            (503, Some("2"), Method::POST, unknown),
            (504, None, Method::POST, unknown),
            // 4xx other than 429: final, whatever the method.
            (400, None, Method::GET, GiveUp { reason: ClientError(400) }),
            (401, None, Method::GET, GiveUp { reason: ClientError(401) }),
            (403, None, Method::DELETE, GiveUp { reason: ClientError(403) }),
            (404, None, Method::PATCH, GiveUp { reason: ClientError(404) }),
            (422, None, Method::POST, GiveUp { reason: ClientError(422) }),
            (422, Some("3"), Method::POST, GiveUp { reason: ClientError(422) }),
        ];
        for (status, ra, method, want) in table {
            let h = headers(ra);
            let got = classify(
                &method,
                Observed::Response {
                    status: StatusCode::from_u16(status).unwrap(),
                    headers: &h,
                },
                now,
            );
            assert_eq!(got, want, "{status} Retry-After={ra:?} {method}");
        }
    }

    /// transport failure × method → decision.
    #[test]
    fn classify_transport_table() {
        use Decision::*;
        use TransportKind::*;
        let now = SystemTime::now();
        let table = [
            (
                Connect,
                Method::POST,
                Retry {
                    after: None,
                    reason: Reason::ConnectFailed,
                },
            ),
            (
                Connect,
                Method::GET,
                Retry {
                    after: None,
                    reason: Reason::ConnectFailed,
                },
            ),
            (
                Timeout,
                Method::GET,
                Retry {
                    after: None,
                    reason: Reason::TransportFailed(Timeout),
                },
            ),
            (
                Closed,
                Method::PATCH,
                Retry {
                    after: None,
                    reason: Reason::TransportFailed(Closed),
                },
            ),
            (
                Closed,
                Method::DELETE,
                Retry {
                    after: None,
                    reason: Reason::TransportFailed(Closed),
                },
            ),
            (
                Timeout,
                Method::POST,
                GiveUp {
                    reason: Reason::OutcomeUnknown,
                },
            ),
            (
                Closed,
                Method::POST,
                GiveUp {
                    reason: Reason::OutcomeUnknown,
                },
            ),
            (
                Other,
                Method::POST,
                GiveUp {
                    reason: Reason::OutcomeUnknown,
                },
            ),
        ];
        for (kind, method, want) in table {
            assert_eq!(
                classify(&method, Observed::Transport(kind), now),
                want,
                "{kind:?} {method}"
            );
        }
    }

    #[test]
    fn retry_after_date_in_the_past_is_zero_and_huge_values_are_capped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_490);
        assert_eq!(
            retry_after(&headers(Some("Wed, 21 Oct 2015 07:28:00 GMT")), now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after(&headers(Some("999999")), now),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(retry_after(&headers(None), now), None);
    }

    #[test]
    fn backoff_stays_within_the_exponential_ceiling() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(2);
        let mut seen_nonzero = false;
        for retry in 0..8 {
            let ceiling = (base * 2u32.pow(retry)).min(cap);
            for _ in 0..50 {
                let d = backoff(base, cap, retry);
                assert!(d <= ceiling, "retry {retry}: {d:?} > {ceiling:?}");
                seen_nonzero |= !d.is_zero();
            }
        }
        assert!(seen_nonzero, "full jitter never produced a delay");
        assert!(backoff(base, cap, 40) <= cap);
    }
}
