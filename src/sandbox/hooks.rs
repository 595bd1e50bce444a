//! Test hooks: hold the requests of one route once the first N have arrived, until the test lets
//! them go; and a clock for the rate limiter that stands still until the test moves it. They
//! replace sleeps and races in timing-dependent tests: "pause the listing after 100 pages, make the
//! writes, go on" happens in that order, and "three requests in one window, one in the next" lands
//! in those windows, however loaded the machine is.
//!
//! A hold is made with [`SandboxState::hold_after`](super::SandboxState::hold_after). The gate
//! calls [`Hooks::arrive`] for every API request it admitted, before the latency and the handler,
//! so a held request has not touched the store yet. Holds are not counted by the stats until the
//! request finishes, like any other request.
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::lock;

/// Every hold of one sandbox, and its set clock.
#[derive(Default)]
pub(crate) struct Hooks {
    holds: Mutex<Vec<Arc<HoldState>>>,
    /// Milliseconds since the Unix epoch the limiter judges by, instead of the system clock.
    clock: Mutex<Option<u64>>,
}

struct HoldState {
    method: String,
    route: &'static str,
    after: u64,
    /// Matching requests that arrived so far (held or not); under the `holds` lock.
    arrived: Mutex<u64>,
    /// Matching requests that were held so far.
    held: watch::Sender<u64>,
    released: watch::Sender<bool>,
}

/// A hold on the `method` requests of one route (see the module documentation). Cloning it gives
/// another handle on the same hold.
#[derive(Clone)]
pub struct Hold(Arc<HoldState>);

impl Hold {
    /// Wait until a request is held: the first `after` requests have arrived, the next one waits.
    pub async fn reached(&self) {
        let mut rx = self.0.held.subscribe();
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = rx.wait_for(|n| *n > 0).await;
    }

    /// Let every held request, and every later one, through.
    pub fn release(&self) {
        self.0.released.send_replace(true);
    }

    /// How many requests were held so far.
    pub fn held(&self) -> u64 {
        *self.0.held.borrow()
    }

    /// How many matching requests arrived so far, held or not.
    pub fn arrived(&self) -> u64 {
        *lock(&self.0.arrived)
    }
}

impl Hooks {
    /// The time the rate limiter judges a request by: the set clock, else `system()`.
    pub(crate) fn now_ms(&self, system: impl FnOnce() -> u64) -> u64 {
        lock(&self.clock).unwrap_or_else(system)
    }

    /// Stop the limiter's clock at `epoch_ms` (`None`: back to the system clock).
    pub(crate) fn set_clock(&self, epoch_ms: Option<u64>) {
        *lock(&self.clock) = epoch_ms;
    }

    /// Hold every `method` request of `route` (a [`route`](super::route) name) after the first
    /// `after`.
    pub(crate) fn add(&self, method: &str, route: &'static str, after: u64) -> Hold {
        let state = Arc::new(HoldState {
            method: method.to_ascii_uppercase(),
            route,
            after,
            arrived: Mutex::new(0),
            held: watch::Sender::new(0),
            released: watch::Sender::new(false),
        });
        lock(&self.holds).push(state.clone());
        Hold(state)
    }

    /// Count an admitted request, and wait while a hold on its route keeps it.
    pub(crate) async fn arrive(&self, method: &str, route: &str) {
        let waits: Vec<Arc<HoldState>> = {
            let holds = lock(&self.holds);
            holds
                .iter()
                .filter(|h| h.route == route && h.method == method)
                .filter(|h| {
                    let mut n = lock(&h.arrived);
                    *n += 1;
                    *n > h.after && !*h.released.borrow()
                })
                .cloned()
                .collect()
        };
        for h in waits {
            let mut rx = h.released.subscribe();
            h.held.send_modify(|n| *n += 1);
            // The sender lives in the hold, which `h` keeps alive.
            let _ = rx.wait_for(|released| *released).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    #[tokio::test]
    async fn requests_after_the_first_n_wait_until_released() {
        let hooks = Hooks::default();
        let hold = hooks.add("get", "contacts", 2);
        for _ in 0..2 {
            assert!(hooks.arrive("GET", "contacts").now_or_never().is_some());
        }
        // Other routes and methods are not held.
        assert!(hooks.arrive("GET", "search").now_or_never().is_some());
        assert!(hooks.arrive("POST", "contacts").now_or_never().is_some());
        assert!(hold.reached().now_or_never().is_none());

        let third = tokio::spawn(async move { hooks.arrive("GET", "contacts").await });
        hold.reached().await;
        assert_eq!((hold.arrived(), hold.held()), (3, 1));
        assert!(!third.is_finished());
        hold.release();
        third.await.unwrap();
    }

    #[test]
    fn the_set_clock_stands_still_until_unset() {
        let hooks = Hooks::default();
        assert_eq!(hooks.now_ms(|| 7), 7);
        hooks.set_clock(Some(5_000));
        assert_eq!(hooks.now_ms(|| 7), 5_000);
        hooks.set_clock(None);
        assert_eq!(hooks.now_ms(|| 9), 9);
    }

    #[tokio::test]
    async fn after_the_release_nothing_waits() {
        let hooks = Hooks::default();
        let hold = hooks.add("POST", "contacts", 0);
        hold.release();
        assert!(hooks.arrive("POST", "contacts").now_or_never().is_some());
        assert_eq!((hold.arrived(), hold.held()), (1, 0));
    }
}
