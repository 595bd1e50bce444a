//! Fixed-window rate limiting as rack-attack does it on the real server: a counter per window for
//! every request, and a second one per account for `GET /contacts/search`. Windows are aligned to
//! multiples of the window length since the Unix epoch (to the minute with the default 60 s), so after
//! a 429 the budget returns at the next boundary. Like rack-attack, a throttled request still counts.
use std::collections::HashMap;

use super::config::RateLimits;

/// Why a request was refused, with the milliseconds left in its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub remaining_ms: u64,
}

#[derive(Debug)]
pub struct Limiter {
    cfg: RateLimits,
    window: u64,
    global_used: u32,
    search_used: HashMap<u64, (u64, u32)>,
}

impl Limiter {
    pub fn new(cfg: RateLimits) -> Limiter {
        Limiter {
            cfg,
            window: u64::MAX,
            global_used: 0,
            search_used: HashMap::new(),
        }
    }

    pub fn window_ms(&self) -> u64 {
        (self.cfg.window.as_millis() as u64).max(1)
    }

    /// Count a request arriving at `epoch_ms`; `search_account` is set for a search.
    pub fn check(&mut self, epoch_ms: u64, search_account: Option<u64>) -> Result<(), Throttled> {
        let w = self.window_ms();
        // A clock that steps back never reopens a window that has already closed.
        let epoch_ms = if self.window != u64::MAX {
            epoch_ms.max(self.window * w)
        } else {
            epoch_ms
        };
        let window = epoch_ms / w;
        let remaining_ms = (window + 1) * w - epoch_ms;
        if window != self.window {
            self.window = window;
            self.global_used = 0;
        }
        if let Some(limit) = self.cfg.global {
            self.global_used = self.global_used.saturating_add(1);
            if self.global_used > limit {
                return Err(Throttled { remaining_ms });
            }
        }
        if let (Some(limit), Some(acc)) = (self.cfg.search, search_account) {
            let e = self.search_used.entry(acc).or_insert((window, 0));
            if e.0 != window {
                *e = (window, 0);
            }
            e.1 = e.1.saturating_add(1);
            if e.1 > limit {
                return Err(Throttled { remaining_ms });
            }
        }
        Ok(())
    }

    pub fn reset(&mut self) {
        *self = Limiter::new(self.cfg.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn window_budget_returns_at_the_boundary() {
        let mut l = Limiter::new(RateLimits {
            global: Some(2),
            search: None,
            window: Duration::from_secs(60),
            retry_after: false,
        });
        assert!(l.check(60_000, None).is_ok());
        assert!(l.check(60_001, None).is_ok());
        assert_eq!(
            l.check(119_000, None),
            Err(Throttled {
                remaining_ms: 1_000
            })
        );
        assert!(l.check(120_000, None).is_ok());
    }

    #[test]
    fn a_late_arrival_from_a_closed_window_counts_in_the_current_one() {
        let mut l = Limiter::new(RateLimits {
            global: Some(1),
            search: None,
            window: Duration::from_secs(1),
            retry_after: false,
        });
        assert!(l.check(2_000, None).is_ok());
        assert!(l.check(1_999, None).is_err());
        assert!(l.check(2_500, None).is_err());
        assert!(l.check(3_000, None).is_ok());
    }

    #[test]
    fn search_limit_is_per_account_and_separate() {
        let mut l = Limiter::new(RateLimits {
            global: Some(100),
            search: Some(1),
            window: Duration::from_secs(1),
            retry_after: false,
        });
        assert!(l.check(5, Some(1)).is_ok());
        assert!(l.check(6, Some(1)).is_err());
        assert!(l.check(7, Some(2)).is_ok());
        assert!(l.check(8, None).is_ok());
    }
}
