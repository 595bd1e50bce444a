//! The circuit breaker: a dead or hung server stops the run instead of being ground through.
//!
//! Every attempt that ends in a connection error, a timeout or a 5xx is a failure; any other
//! answer (2xx, 4xx, 429: the server is there) closes the failing stretch. When every attempt for
//! `limit` has failed (measured from when the first failed attempt of the stretch was sent), the
//! breaker opens for good: every later call of `send()` fails at once with
//! [`ApiError::Unreachable`](super::ApiError::Unreachable), and the run stops (exit 1, reports
//! flushed, resumable).
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct State {
    /// When the first failed attempt of the current stretch was sent.
    failing_since: Option<Instant>,
    /// What the last failure was (for the message).
    last: Option<String>,
    /// Tripped: the message every later call fails with.
    open: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Breaker {
    limit: Duration,
    state: Mutex<State>,
}

impl Breaker {
    pub(crate) fn new(limit: Duration) -> Breaker {
        Breaker {
            limit,
            state: Mutex::new(State::default()),
        }
    }

    /// The server answered (anything but a 5xx): the failing stretch is over.
    pub(crate) fn answered(&self) {
        let mut s = self.state.lock().unwrap();
        if s.open.is_none() {
            s.failing_since = None;
            s.last = None;
        }
    }

    /// An attempt sent at `sent_at` failed (`why`: connection error, timeout, 5xx).
    pub(crate) fn failed(&self, sent_at: Instant, why: String) {
        let mut s = self.state.lock().unwrap();
        let since = s.failing_since.map_or(sent_at, |f| f.min(sent_at));
        s.failing_since = Some(since);
        s.last = Some(why);
        self.trip_if_due(&mut s);
    }

    /// `Some(message)` once the breaker is open (it opens here when the stretch has lasted).
    pub(crate) fn open(&self) -> Option<String> {
        let mut s = self.state.lock().unwrap();
        self.trip_if_due(&mut s);
        s.open.clone()
    }

    /// Whether the server has failed every attempt lately (a call then keeps retrying past its
    /// usual budget, until the server answers or the breaker opens).
    pub(crate) fn failing(&self) -> bool {
        self.state.lock().unwrap().failing_since.is_some()
    }

    pub(crate) fn limit(&self) -> Duration {
        self.limit
    }

    fn trip_if_due(&self, s: &mut State) {
        if s.open.is_some() {
            return;
        }
        if let Some(since) = s.failing_since
            && since.elapsed() >= self.limit
        {
            let last = s.last.as_deref().unwrap_or("no answer");
            s.open = Some(format!(
                "the server has not answered for {} (last: {last})",
                human_secs(self.limit)
            ));
        }
    }
}

/// `60 s`, `1.5 s`.
fn human_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{} s", s as u64)
    } else {
        format!("{s:.1} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_only_after_a_whole_stretch_of_failures() {
        let b = Breaker::new(Duration::from_millis(40));
        let t0 = Instant::now();
        b.failed(t0, "could not connect".into());
        assert!(b.open().is_none() && b.failing());
        std::thread::sleep(Duration::from_millis(20));
        // An answer in between starts the count again.
        b.answered();
        assert!(!b.failing());
        b.failed(Instant::now(), "server error (502)".into());
        std::thread::sleep(Duration::from_millis(25));
        assert!(b.open().is_none());
        std::thread::sleep(Duration::from_millis(25));
        let msg = b.open().expect("open after 40 ms of failures");
        assert!(
            msg.contains("has not answered for") && msg.contains("502"),
            "{msg}"
        );
        // Open for good: a late answer does not close it.
        b.answered();
        assert!(b.open().is_some());
    }

    #[test]
    fn a_stretch_counts_from_when_its_first_failed_attempt_was_sent() {
        let b = Breaker::new(Duration::from_millis(30));
        let sent = Instant::now();
        std::thread::sleep(Duration::from_millis(35));
        // A request that hung for 35 ms and then timed out: the server has been silent that long.
        b.failed(sent, "timed out".into());
        assert!(b.open().is_some());
    }
}
