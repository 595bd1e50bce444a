//! Adaptive concurrency: how many rows (import, revert) or pages (export, the lookup index) are in
//! flight at once, so that the rate limit binds rather than latency.
//!
//! Eight requests in flight at 300 ms can never exceed ~27 a second (Little's law: throughput =
//! in flight / latency), far below a 3,000/min limit. [`Limit`] is a semaphore whose size the
//! controller moves, one decision per window of observations, by [`decide`], a pure function of
//! them (table-tested below):
//! - **the first answer** (no round trip known yet) closes a window of its own and sizes the
//!   limit for its round trip at once (the Little's-law target below, never less than
//!   [`INITIAL`]), whether or not the slots were all in use: a listing's first page goes alone,
//!   and ramping from 8 window by window costs seconds at 1 s latency;
//! - **server errors** (5xx, timeouts, connections dropped: at least 5% of a window's answers)
//!   shrink it by a quarter (multiplicative decrease);
//! - **rising latency** shrinks it: the requests queued at the server, estimated as in TCP Vegas
//!   (`limit × (1 − base RTT / RTT)`, base RTT the lowest seen), above `6·log10(limit)` are taken
//!   off down to `3·log10(limit)` (at most half at once), so a server that slows down under load
//!   sees the tool back off; between the two the limit holds;
//! - **the rate limit binding** (429s, or at least one request on average waiting for the
//!   client's limiter: `rate × mean wait ≥ 1`, Little's law applied to the limiter's queue) never
//!   grows it past the Little's-law target, and brings it down to twice the target (at least
//!   [`INITIAL`]) when above that. Below the target it still grows to it (at most 4× a window,
//!   and not on 429s): the requests of slots just added all ask the limiter at once and queue
//!   there for a while, although once spread out the size cannot carry the pace. A request that
//!   waited a little for its permit proves nothing: a limiter with a burst of one (1 s windows)
//!   makes nearly every request wait up to one period even when slots, not permits, are short;
//! - otherwise, when every slot was in use, it **grows**: straight to the Little's-law target
//!   (`rate × RTT × requests per slot × 2`, at most 4× a window: a server that slows down under
//!   load must not be flooded before its latency shows it) when below it, then by
//!   `6·log10(limit)` a window, while the queue estimate stays under `3·log10(limit)`.
//!
//! Always within `[MIN_AUTO, --max-concurrency]`. `--concurrency N` fixes the size; the
//! observations are still classified, to report what bound the run.
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Slots an automatic limit starts with (the fixed default of earlier versions).
pub const INITIAL: usize = 8;
/// `--max-concurrency` by default.
pub const DEFAULT_MAX: usize = 256;
/// An automatic limit never goes below this.
pub const MIN_AUTO: usize = 2;
/// Little's law target over what the rate strictly needs (latency jitter, time waiting in the
/// client's limiter).
const HEADROOM: f64 = 2.0;
/// Share of a window's answers that were failures (5xx, no response) that makes it shrink.
const FAILURE_SHARE: f64 = 0.05;
/// Requests waiting for the client's limiter on average (`rate × mean wait`) from which the
/// rate limit, not the slots, binds: there was a request ready for every permit.
const QUEUED_AT_LIMITER: f64 = 1.0;

/// `--concurrency`: adapted (`auto`, the default) or fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Concurrency {
    #[default]
    Auto,
    Fixed(usize),
}

impl Concurrency {
    /// The size to start with (and the fixed size of what does not adapt, such as searches).
    pub fn initial(self) -> usize {
        match self {
            Concurrency::Auto => INITIAL,
            Concurrency::Fixed(n) => n.max(1),
        }
    }
}

impl FromStr for Concurrency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "auto" => Ok(Concurrency::Auto),
            t => match t.parse::<usize>() {
                Ok(0) => Err("must be at least 1 (0 would never start anything), or auto".into()),
                Ok(n) => Ok(Concurrency::Fixed(n)),
                Err(_) => Err(format!("{s:?} is not a whole number or auto")),
            },
        }
    }
}

impl fmt::Display for Concurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Concurrency::Auto => f.write_str("auto"),
            Concurrency::Fixed(n) => write!(f, "{n}"),
        }
    }
}

/// What bound a window (and, by the time it held, the run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// The limiter had no permit to spare, or the server answered 429.
    RateLimit,
    /// Every slot was in use and the limiter had permits to spare: concurrency × latency, or the
    /// server slowing down as load grew.
    Latency,
    /// 5xx answers, timeouts, dropped connections.
    ServerErrors,
    /// Slots to spare and permits to spare: the run had no more work ready (rows waiting for each
    /// other, for a search, for the file).
    Input,
}

impl Bound {
    pub fn describe(self) -> &'static str {
        match self {
            Bound::RateLimit => "rate limit",
            Bound::Latency => "latency",
            Bound::ServerErrors => "server errors",
            Bound::Input => "input",
        }
    }
}

/// What one window of requests showed: the controller's only input.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Window {
    /// Answers received (any status, or no response).
    pub responses: u32,
    /// Mean and lowest time from send to answer of the answered requests, seconds.
    pub mean_rtt: f64,
    pub min_rtt: f64,
    /// Mean time the requests waited for the client's limiter's permit, seconds.
    pub mean_wait: f64,
    /// 429 answers.
    pub rate_limited: u32,
    /// 5xx answers and requests without a response (timeouts, dropped connections).
    pub failures: u32,
    /// Slots held at most at once during the window.
    pub peak_held: usize,
    /// Slots released (rows or pages finished) during the window.
    pub releases: u32,
    /// The client's pace, requests per second.
    pub rate_per_sec: f64,
}

/// The controller's state between windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Control {
    pub limit: f64,
    /// Lowest RTT seen so far, seconds (0: none yet).
    pub base_rtt: f64,
}

/// The next state and what bound the window. `min..=max` clamps the limit.
pub fn decide(c: Control, w: &Window, min: usize, max: usize) -> (Control, Bound) {
    let (lo, hi) = (min.max(1) as f64, max.max(min).max(1) as f64);
    if w.responses == 0 {
        return (c, Bound::Input);
    }
    let base = match (c.base_rtt, w.min_rtt) {
        (b, m) if b <= 0.0 => m,
        (b, m) if m > 0.0 => b.min(m),
        (b, _) => b,
    };
    let rtt = w.mean_rtt.max(base).max(1e-6);
    let per_slot = match w.releases {
        0 => 1.0,
        r => (f64::from(w.responses) / f64::from(r)).clamp(1.0, 20.0),
    };
    let target = (w.rate_per_sec * rtt * per_slot * HEADROOM).ceil();
    let log = c.limit.log10().max(1.0);
    // No RTT answered yet: no queue can be estimated.
    let queue = match base > 0.0 {
        true => c.limit * (1.0 - base / rtt),
        false => 0.0,
    };
    let saturated = w.peak_held as f64 >= c.limit.floor();
    let (limit, bound) = if f64::from(w.failures) >= FAILURE_SHARE * f64::from(w.responses) {
        (c.limit * 0.75, Bound::ServerErrors)
    } else if c.base_rtt <= 0.0 && base > 0.0 && w.rate_limited == 0 {
        // The first round trip: size for it at once (Little's law) rather than ramp up window by
        // window; the requests those slots carry are paced by the client's limiter anyway.
        (c.limit.max(target), Bound::Latency)
    } else if queue > 6.0 * log {
        // Take the excess queue off, at most half.
        let excess = queue - 3.0 * log;
        ((c.limit - excess).max(c.limit * 0.5), Bound::Latency)
    } else if w.rate_limited > 0 || w.rate_per_sec * w.mean_wait >= QUEUED_AT_LIMITER {
        let enough = (2.0 * target).max(INITIAL as f64);
        let short = saturated && w.rate_limited == 0 && c.limit < target;
        match short {
            // Requests queue at the limiter now (the slots just added all asked at once), but
            // the size cannot carry the pace once they spread out: the target still holds.
            true => (target.min(c.limit * 4.0), Bound::RateLimit),
            false => (c.limit.min(enough), Bound::RateLimit),
        }
    } else if !saturated {
        (c.limit, Bound::Input)
    } else if queue >= 3.0 * log {
        (c.limit, Bound::Latency)
    } else if c.limit < target {
        (target.min(c.limit * 4.0), Bound::Latency)
    } else {
        (c.limit + 6.0 * log, Bound::Latency)
    };
    let limit = limit.clamp(lo, hi);
    (
        Control {
            limit,
            base_rtt: base,
        },
        bound,
    )
}

/// The concurrency a run used, for the summary: the size over time (weighted by how long it held)
/// and what bound the run for most of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConcurrencyStats {
    /// `auto` or the fixed number.
    pub mode: String,
    pub min: usize,
    pub median: usize,
    pub max: usize,
    /// Slots held at most at once.
    pub peak_in_flight: usize,
    /// What bound the run for most of its time (none before the first window).
    pub bound: Option<Bound>,
    /// Seconds each bound held.
    pub bound_secs: BTreeMap<Bound, f64>,
}

/// What the client saw of one attempt.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Observation {
    pub rtt: Duration,
    /// Time the attempt waited for the limiter's permit.
    pub waited: Duration,
    pub rate_limited: bool,
    pub failed: bool,
    pub rate_per_sec: f64,
}

struct State {
    control: Control,
    /// Slots the semaphore is meant to hold (held + available − owed).
    size: usize,
    /// Permits to forget as they come back (the size shrank while they were held).
    owed: usize,
    held: usize,
    peak: usize,
    window: Window,
    rtt_sum: f64,
    wait_sum: f64,
    started: Instant,
    /// What bound the last window.
    last: Option<Bound>,
    /// Seconds at each size, and under each bound.
    sizes: BTreeMap<usize, f64>,
    bounds: BTreeMap<Bound, f64>,
}

/// A semaphore whose size the controller moves (or a fixed one). Slots are handed out in the
/// order they were asked for.
pub struct Limit {
    mode: Concurrency,
    max: usize,
    sem: Semaphore,
    state: Mutex<State>,
}

/// A slot; given back on drop.
pub struct Slot<'a> {
    limit: &'a Limit,
    permit: Option<SemaphorePermit<'a>>,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut s = self.limit.state.lock().unwrap();
        s.held -= 1;
        s.window.releases += 1;
        if s.owed > 0 {
            s.owed -= 1;
            if let Some(p) = self.permit.take() {
                p.forget();
            }
        }
    }
}

impl Limit {
    /// `mode` as `--concurrency` says, `max` as `--max-concurrency` (auto only).
    pub fn new(mode: Concurrency, max: usize) -> Limit {
        let max = match mode {
            Concurrency::Auto => max.max(MIN_AUTO),
            Concurrency::Fixed(n) => n.max(1),
        };
        let size = mode.initial().min(max);
        Limit {
            mode,
            max,
            sem: Semaphore::new(size),
            state: Mutex::new(State {
                control: Control {
                    limit: size as f64,
                    base_rtt: 0.0,
                },
                size,
                owed: 0,
                held: 0,
                peak: 0,
                window: Window::default(),
                rtt_sum: 0.0,
                wait_sum: 0.0,
                started: Instant::now(),
                last: None,
                sizes: BTreeMap::new(),
                bounds: BTreeMap::new(),
            }),
        }
    }

    /// The most slots there can ever be (the fixed size, or `--max-concurrency`).
    pub fn ceiling(&self) -> usize {
        self.max
    }

    /// Whether the size adapts (`--concurrency auto`).
    pub fn adapts(&self) -> bool {
        self.mode == Concurrency::Auto
    }

    /// Slots there are now.
    pub fn current(&self) -> usize {
        self.state.lock().unwrap().size
    }

    /// For the progress line: `12/40 in flight (auto, rate limit)`.
    pub fn describe(&self) -> String {
        let s = self.state.lock().unwrap();
        let mode = match self.mode {
            Concurrency::Auto => "auto",
            Concurrency::Fixed(_) => "fixed",
        };
        match s.last {
            Some(b) => format!("{}/{} in flight ({mode}, {})", s.held, s.size, b.describe()),
            None => format!("{}/{} in flight ({mode})", s.held, s.size),
        }
    }

    /// Wait for a slot.
    pub async fn acquire(&self) -> Slot<'_> {
        let permit = self.sem.acquire().await.expect("never closed");
        let mut s = self.state.lock().unwrap();
        s.held += 1;
        s.peak = s.peak.max(s.held);
        s.window.peak_held = s.window.peak_held.max(s.held);
        Slot {
            limit: self,
            permit: Some(permit),
        }
    }

    /// Run `f` in a slot.
    pub async fn run<T>(&self, f: impl Future<Output = T>) -> T {
        let _slot = self.acquire().await;
        f.await
    }

    /// Count one attempt; a full window is decided on.
    pub(crate) fn observe(&self, o: Observation) {
        let mut s = self.state.lock().unwrap();
        s.wait_sum += o.waited.as_secs_f64();
        let w = &mut s.window;
        w.responses += 1;
        w.rate_limited += u32::from(o.rate_limited);
        w.failures += u32::from(o.failed);
        w.rate_per_sec = o.rate_per_sec;
        let rtt = o.rtt.as_secs_f64();
        if !o.failed && !o.rate_limited {
            w.min_rtt = if w.min_rtt > 0.0 {
                w.min_rtt.min(rtt)
            } else {
                rtt
            };
            s.rtt_sum += rtt;
        }
        // The first answer closes a window of its own: it sizes the limit for the round trip.
        let first = s.control.base_rtt <= 0.0 && s.window.min_rtt > 0.0;
        let full = first || s.window.responses as usize >= (s.size / 2).max(4);
        if full || s.started.elapsed() >= Duration::from_secs(1) {
            self.close_window(&mut s);
        }
    }

    /// Decide on the window, resize, and account its time.
    fn close_window(&self, s: &mut State) {
        let mut w = std::mem::take(&mut s.window);
        let answered = w.responses - w.failures - w.rate_limited;
        w.mean_rtt = if answered > 0 {
            s.rtt_sum / f64::from(answered)
        } else {
            0.0
        };
        s.rtt_sum = 0.0;
        w.mean_wait = s.wait_sum / f64::from(w.responses.max(1));
        s.wait_sum = 0.0;
        s.window.peak_held = s.held;
        let secs = s.started.elapsed().as_secs_f64();
        s.started = Instant::now();
        *s.sizes.entry(s.size).or_default() += secs;
        let (next, bound) = decide(s.control, &w, MIN_AUTO, self.max);
        *s.bounds.entry(bound).or_default() += secs;
        s.last = Some(bound);
        if self.mode == Concurrency::Auto {
            s.control = next;
            self.resize(s, next.limit.round() as usize);
        }
    }

    /// Grow or shrink the semaphore to `size` slots (permits held now come back as owed).
    fn resize(&self, s: &mut State, size: usize) {
        if size > s.size {
            let mut add = size - s.size;
            let repaid = add.min(s.owed);
            s.owed -= repaid;
            add -= repaid;
            self.sem.add_permits(add);
        } else {
            for _ in size..s.size {
                match self.sem.try_acquire() {
                    Ok(p) => p.forget(),
                    Err(_) => s.owed += 1,
                }
            }
        }
        s.size = size;
    }

    /// The sizes used so far and what bound the run.
    pub fn stats(&self) -> ConcurrencyStats {
        let s = self.state.lock().unwrap();
        let total: f64 = s.sizes.values().sum();
        let mut median = s.size;
        let mut acc = 0.0;
        for (size, secs) in &s.sizes {
            acc += secs;
            if acc >= total / 2.0 {
                median = *size;
                break;
            }
        }
        let bound = s
            .bounds
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(b, _)| *b);
        ConcurrencyStats {
            mode: self.mode.to_string(),
            min: s.sizes.keys().next().copied().unwrap_or(s.size),
            median,
            max: s.sizes.keys().last().copied().unwrap_or(s.size),
            peak_in_flight: s.peak,
            bound,
            bound_secs: s.bounds.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(rtt: f64, peak: usize) -> Window {
        Window {
            responses: 20,
            mean_rtt: rtt,
            min_rtt: rtt,
            mean_wait: 0.0,
            rate_limited: 0,
            failures: 0,
            peak_held: peak,
            releases: 20,
            rate_per_sec: 50.0,
        }
    }

    fn ctl(limit: f64, base: f64) -> Control {
        Control {
            limit,
            base_rtt: base,
        }
    }

    #[test]
    fn decisions_are_a_function_of_the_observations() {
        let busy = |rtt, peak| window(rtt, peak);
        #[rustfmt::skip]
        let table: Vec<(&str, Control, Window, f64, Bound)> = vec![
            // 300 ms, 8 in flight, permits to spare: straight to 50/s × 0.3 s × 1.5.
            ("latency-bound jumps to the target", ctl(8.0, 0.3), busy(0.3, 8), 30.0, Bound::Latency),
            ("1 s latency: at most 4x a window", ctl(8.0, 1.0), busy(1.0, 8), 32.0, Bound::Latency),
            ("then the target", ctl(32.0, 1.0), busy(1.0, 32), 100.0, Bound::Latency),
            ("at the target, stable latency: grow by 6·log10", ctl(100.0, 1.0), busy(1.0, 100), 112.0, Bound::Latency),
            ("slots to spare: unchanged", ctl(30.0, 0.3), busy(0.3, 12), 30.0, Bound::Input),
            ("limiter binding above the target: never grows", ctl(40.0, 0.3), Window { mean_wait: 0.1, ..busy(0.3, 40) }, 40.0, Bound::RateLimit),
            ("limiter binding below the target: up to it", ctl(20.0, 0.3), Window { mean_wait: 0.1, ..busy(0.3, 20) }, 30.0, Bound::RateLimit),
            ("limiter binding below the target, slots to spare: unchanged", ctl(20.0, 0.3), Window { mean_wait: 0.1, ..busy(0.3, 12) }, 20.0, Bound::RateLimit),
            ("limiter binding far above the target: down to twice it", ctl(200.0, 0.3), Window { mean_wait: 2.0, ..busy(0.3, 200) }, 60.0, Bound::RateLimit),
            ("limiter binding: never below 8 for it", ctl(12.0, 0.01), Window { mean_wait: 0.1, ..busy(0.01, 12) }, 8.0, Bound::RateLimit),
            // 1 s windows: the limiter's burst is one, so nearly every request waits a little for
            // its permit (8 ms on average, 0.4 requests queued) while 32 slots at 1 s carry 32/s.
            ("waits shorter than a period: the slots bind, grow", ctl(32.0, 1.0), Window { mean_wait: 0.008, ..busy(1.0, 32) }, 100.0, Bound::Latency),
            ("one request queued at the limiter on average: the rate binds", ctl(32.0, 1.0), Window { mean_wait: 0.02, ..busy(1.0, 32) }, 100.0, Bound::RateLimit),
            ("429s: no growth, even below the target", ctl(10.0, 0.3), Window { rate_limited: 2, ..busy(0.3, 10) }, 10.0, Bound::RateLimit),
            ("5xx: a quarter off", ctl(40.0, 0.3), Window { failures: 2, ..busy(0.3, 40) }, 30.0, Bound::ServerErrors),
            ("one failure in 100 answers is noise", ctl(40.0, 0.3), Window { failures: 1, responses: 100, releases: 100, ..busy(0.3, 30) }, 40.0, Bound::Input),
            ("latency doubled at 40: queue 20 > 6·log10(40), back to 3·log10(40)", ctl(40.0, 0.3), Window { min_rtt: 0.5, ..busy(0.6, 40) }, 24.81, Bound::Latency),
            ("latency 8x at 40: half at most", ctl(40.0, 0.3), busy(2.4, 40), 20.0, Bound::Latency),
            ("queue between 3 and 6·log10: hold", ctl(40.0, 0.3), busy(0.35, 40), 40.0, Bound::Latency),
            ("latency up 5%: noise, still grows", ctl(40.0, 0.3), busy(0.315, 40), 49.61, Bound::Latency),
            ("never below the floor", ctl(2.0, 0.1), Window { failures: 20, ..busy(0.1, 2) }, 2.0, Bound::ServerErrors),
            ("never above --max-concurrency", ctl(250.0, 2.0), busy(2.0, 250), 256.0, Bound::Latency),
            ("three requests a slot: three times the slots", ctl(8.0, 0.0), Window { releases: 5, responses: 15, ..busy(0.1, 8) }, 30.0, Bound::Latency),
            ("no answers: nothing learnt", ctl(8.0, 0.0), Window::default(), 8.0, Bound::Input),
            // The first answer (no base RTT yet) sizes the limit whether or not the slots were
            // all in use: one page alone at 1 s goes straight to 50/s × 1 s × 2.
            ("first answer at 1 s: straight to the target", ctl(8.0, 0.0), Window { responses: 1, releases: 0, ..busy(1.0, 1) }, 100.0, Bound::Latency),
            ("first answer at 50 ms: the target is below the start, keep it", ctl(8.0, 0.0), Window { responses: 1, releases: 0, ..busy(0.05, 1) }, 8.0, Bound::Latency),
            ("first answer a 429: no growth", ctl(8.0, 0.0), Window { responses: 1, rate_limited: 1, min_rtt: 0.0, mean_rtt: 0.0, ..busy(1.0, 1) }, 8.0, Bound::RateLimit),
            ("first answer a 5xx: a quarter off", ctl(8.0, 0.0), Window { responses: 1, failures: 1, min_rtt: 0.0, mean_rtt: 0.0, ..busy(1.0, 1) }, 6.0, Bound::ServerErrors),
            ("a base RTT known: one page alone is input", ctl(8.0, 1.0), Window { responses: 1, releases: 0, ..busy(1.0, 1) }, 8.0, Bound::Input),
        ];
        for (name, c, w, limit, bound) in table {
            let (next, b) = decide(c, &w, MIN_AUTO, DEFAULT_MAX);
            assert!((next.limit - limit).abs() < 0.01, "{name}: {next:?}");
            assert_eq!(b, bound, "{name}");
        }
    }

    #[test]
    fn base_rtt_is_the_lowest_seen() {
        let (c, _) = decide(ctl(8.0, 0.0), &window(0.3, 8), 2, 256);
        assert_eq!(c.base_rtt, 0.3);
        let (c, _) = decide(
            c,
            &Window {
                min_rtt: 0.2,
                ..window(0.4, 8)
            },
            2,
            256,
        );
        assert_eq!(c.base_rtt, 0.2);
        let (c, _) = decide(c, &window(0.9, 8), 2, 256);
        assert_eq!(c.base_rtt, 0.2);
    }

    #[test]
    fn parses_auto_and_numbers() {
        assert_eq!("auto".parse(), Ok(Concurrency::Auto));
        assert_eq!("4".parse(), Ok(Concurrency::Fixed(4)));
        assert!(
            "0".parse::<Concurrency>()
                .unwrap_err()
                .contains("at least 1")
        );
        assert!("x".parse::<Concurrency>().is_err());
    }

    #[tokio::test]
    async fn shrinking_takes_back_slots_as_they_are_released() {
        let l = Limit::new(Concurrency::Auto, 64);
        let held: Vec<_> = futures::future::join_all((0..8).map(|_| l.acquire())).await;
        {
            let mut s = l.state.lock().unwrap();
            l.resize(&mut s, 3);
            assert_eq!(s.owed, 5);
        }
        drop(held);
        assert_eq!(l.sem.available_permits(), 3);
        let mut s = l.state.lock().unwrap();
        l.resize(&mut s, 10);
        drop(s);
        assert_eq!(l.sem.available_permits(), 10);
    }
}
