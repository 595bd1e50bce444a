//! Rate limiting that spends the server's budget well: one [`Lane`] per limit (all requests; search
//! on top), each a `governor` GCRA limiter whose rate adapts to the 429s received.
//!
//! The server's limits are fixed windows (aligned to the clock: after a 429 the budget returns at
//! the next window boundary) whose length the client may not know (`--rate 50/s` suggests 1 s,
//! `3000/min` 60 s), and its 429 usually has no `Retry-After`. So on a 429 the lane pauses *every*
//! task and lets a single probe through after a short wait (about a second, never past the
//! estimated boundary while that is still ahead); while probes get 429 they go at growing
//! intervals. When a probe is admitted, the window's boundary lies between the last refusal and
//! the admission: if that contradicts the window length assumed, the lane takes the length that
//! agrees with every such observation ([`learn_window`]). The rate adapts like AIMD: on the first 429 of a
//! window it falls to what the server accepted in that window (at most halving at once) and that
//! count is remembered as the window's budget; after clean windows it climbs back quickly to the
//! budget and then probes above it slowly, never above the configured maximum.
//!
//! The pace keeps the headroom over a whole window, not over every second: the GCRA paces at the
//! full rate (`rate / headroom`), and a sliding-window count holds every window's worth of sends
//! to `rate × window` ([`SendLog`]). A run shorter than a window then goes at the server's full
//! rate, and a longer one can never put more than `rate × window` requests into any window,
//! wherever the server's boundaries fall (before, the GCRA paced at `rate` with a burst of the
//! slack: 2% slower in a 20 s run, for the same worst case per window).
use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Notify;

/// Milliseconds since the Unix epoch: window boundaries are aligned to the wall clock, like the
/// server's.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A GCRA limiter for a lane planning `rate_per_sec`: it paces at the full rate
/// (`rate_per_sec / headroom`; the [`SendLog`] holds each window to `rate × window`), or at
/// `rate_per_sec` itself when a window holds too many sends to log. Its burst is the slack the
/// headroom leaves in a window (less one), at least 1: with a burst of 1 every late wake-up of a
/// waiting task (timer granularity) is lost for good and the achieved rate drifts below the pace;
/// a little credit absorbs that.
fn limiter(rate_per_sec: f64, window_secs: f64, headroom: f64) -> Arc<DefaultDirectRateLimiter> {
    let pace = if SendLog::logs((rate_per_sec * window_secs).floor() as u64) {
        rate_per_sec / headroom
    } else {
        rate_per_sec
    };
    let period = Duration::from_secs_f64(1.0 / pace.max(1e-3));
    let slack = rate_per_sec * window_secs * (1.0 / headroom - 1.0);
    let burst =
        NonZeroU32::new((slack.floor() as u32).saturating_sub(1)).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
        .expect("non-zero period")
        .allow_burst(burst);
    Arc::new(RateLimiter::direct(quota))
}

/// The sends of the last window (when each was admitted) and the tickets on their way to the
/// limiter: at most `cap` of both together, so that no window's worth of time ever holds more than
/// `cap` sends. A cap too large to keep a log for (over [`SendLog::LONGEST`] sends) holds nothing
/// back: the GCRA alone paces then, at the planned rate.
#[derive(Default)]
struct SendLog {
    sent: VecDeque<Instant>,
    /// Tickets given a place that have not been admitted or dropped yet.
    reserved: u32,
}

impl SendLog {
    const LONGEST: u64 = 200_000;

    /// Whether a window of `cap` sends is logged (else only the GCRA paces).
    fn logs(cap: u64) -> bool {
        cap <= Self::LONGEST
    }

    /// A place for one more send now, or when to ask again.
    fn reserve(&mut self, cap: u64, window: Duration, now: Instant) -> Result<(), Instant> {
        if !Self::logs(cap) {
            self.sent.clear();
            self.reserved += 1;
            return Ok(());
        }
        while self
            .sent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            self.sent.pop_front();
        }
        let cap = cap.max(1);
        let used = self.sent.len() as u64 + u64::from(self.reserved);
        if used < cap {
            self.reserved += 1;
            return Ok(());
        }
        // A place frees when send number `used - cap` expires; with places held by tickets not
        // yet sent, ask again soon (they are sent or given back within a pace).
        Err(match self.sent.get((used - cap) as usize) {
            Some(t) => *t + window,
            None => now + Duration::from_millis(5),
        })
    }

    /// A reserved place becomes a send made at `sent`, or is given back (`None`).
    fn settle(&mut self, cap: u64, sent: Option<Instant>) {
        self.reserved = self.reserved.saturating_sub(1);
        if let Some(t) = sent.filter(|_| Self::logs(cap)) {
            self.sent.push_back(t);
        }
    }
}

/// A snapshot of a lane's adaptive state (for metrics and tests).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LaneStatus {
    /// Current pace, requests per second.
    pub rate_per_sec: f64,
    /// The configured ceiling, requests per second.
    pub max_rate_per_sec: f64,
    /// Requests the server accepted in the last full window that ended in a 429, if any.
    pub learned_budget: Option<u32>,
    /// The window length assumed (configured, or learned from when 429s end), seconds.
    pub window_s: f64,
}

struct State {
    /// Fraction of a learned or configured budget the lane plans to use.
    headroom: f64,
    max_rate: f64,
    min_rate: f64,
    rate: f64,
    limiter: Arc<DefaultDirectRateLimiter>,
    generation: u64,
    window_ms: u64,
    /// The window length configured (`--rate`'s unit or `--rate-window`): the longest the lane
    /// ever assumes. A server counting in longer windows is waited out by the growing probes;
    /// learning a longer one from 429s that are not the window's (another client, a burst) could
    /// stall the run for that long.
    configured_ms: u64,
    cur_window: u64,
    /// Responses other than 429 to requests sent in the current window.
    accepted: u32,
    /// A 429 was seen in the current window (adapt once per window).
    limited: bool,
    sent_this_window: bool,
    /// The lane was already sending in the window before this one, so `accepted` covers the
    /// whole window.
    full_window: bool,
    clean_windows: u32,
    budget: Option<u32>,
    paused_until: Option<Instant>,
    probing: bool,
    probe_in_flight: bool,
    probe_failures: u32,
    /// Since the first 429 (no `Retry-After`) of the current pause: when it and the last refused
    /// probe were sent (epoch ms).
    stretch: Option<(u64, u64)>,
    /// Where boundaries were seen: (first 429, last refusal, admission), epoch ms; the last few.
    evidence: Vec<(u64, u64, u64)>,
    log: SendLog,
}

impl State {
    fn window_secs(&self) -> f64 {
        self.window_ms as f64 / 1000.0
    }

    /// Sends any window's worth of time may hold: the pace over a whole window.
    fn cap(&self) -> u64 {
        (self.rate * self.window_secs()).floor() as u64
    }

    fn set_rate(&mut self, rate: f64) {
        let rate = rate.clamp(self.min_rate, self.max_rate);
        if (rate - self.rate).abs() > 1e-9 {
            self.rate = rate;
            self.limiter = limiter(rate, self.window_secs(), self.headroom);
            self.generation += 1;
        }
    }

    /// Move to the window `now_ms` falls in, adapting up after clean windows.
    fn roll(&mut self, now_ms: u64) {
        let idx = now_ms / self.window_ms;
        if idx == self.cur_window {
            return;
        }
        let consecutive = idx == self.cur_window + 1;
        if self.limited {
            self.clean_windows = 0;
        } else if self.sent_this_window {
            self.clean_windows += 1;
            self.increase();
        }
        self.full_window = consecutive && self.sent_this_window;
        self.cur_window = idx;
        self.accepted = 0;
        self.limited = false;
        self.sent_this_window = false;
    }

    /// Milliseconds from `t` to the next probe: about a second (a tenth of a window shorter than
    /// a second, whose boundary is that close anyway), doubling with each refusal up to the window (or a quarter of the time waited, when the
    /// window assumed has proved too short), and never past the estimated boundary while the
    /// first 429's window is still running.
    fn next_probe_in(&self, t: u64) -> u64 {
        let w = self.window_ms;
        let first = self.stretch.map_or(t, |(f, _)| f);
        let base = if w >= 1000 { 1000 } else { (w / 10).max(5) };
        let cap = w.max(t.saturating_sub(first) / 4);
        let step = (base << self.probe_failures.min(16)).min(cap);
        let boundary = (first / w + 1) * w + (w / 100).clamp(5, 250);
        if boundary > t {
            step.min(boundary - t)
        } else {
            step
        }
    }

    /// A probe sent at `admitted` got through after a 429 sent at `first` (and refusals up to
    /// `refused`): a boundary lies in `(refused, admitted]`. If the window assumed disagrees, take
    /// the length nearest to it that agrees with every recent observation.
    fn learn(&mut self, first: u64, refused: u64, admitted: u64) {
        self.evidence.push((first, refused, admitted));
        if self.evidence.len() > 8 {
            self.evidence.remove(0);
        }
        // One odd observation (a burst of 429s, another client) is not enough to change it.
        let against = self
            .evidence
            .iter()
            .filter(|e| !fits(self.window_ms, &[**e]));
        if against.count() < 2 {
            return;
        }
        let mut found = learn_window(self.window_ms, self.configured_ms, &self.evidence);
        if found.is_none() {
            // Observations that no length explains (another client, a burst): start again.
            self.evidence = vec![(first, refused, admitted)];
            found = learn_window(self.window_ms, self.configured_ms, &self.evidence);
        }
        if let Some(w) = found {
            tracing::info!(
                "rate limit: the server's window looks like {} s, not {} s",
                w as f64 / 1000.0,
                self.window_secs()
            );
            self.window_ms = w;
            self.cur_window = now_ms() / w;
            self.budget = None;
            self.full_window = false;
            self.clean_windows = 0;
            self.accepted = 0;
            self.limiter = limiter(self.rate, self.window_secs(), self.headroom);
            self.generation += 1;
        }
    }

    fn increase(&mut self) {
        if self.rate >= self.max_rate {
            return;
        }
        let w = self.window_secs();
        match self.budget {
            // Back to the learned budget fast (slow-start style)...
            Some(b) if self.rate < b as f64 / w * self.headroom => {
                let target = b as f64 / w * self.headroom;
                self.set_rate((self.rate * 1.5).min(target));
            }
            // ...then probe above it slowly, after two clean windows in a row.
            _ if self.clean_windows >= 2 => {
                let step = (self.rate * 0.05).max(1.0 / w);
                self.set_rate(self.rate + step);
            }
            _ => {}
        }
    }
}

/// One rate limit: a shared, adaptive pace plus the pause/probe gate that 429s close.
pub(crate) struct Lane {
    state: Mutex<State>,
    notify: Notify,
}

/// Proof that a request may be sent; report its outcome with [`Lane::report`]. Dropping it
/// unreported (a cancelled request) releases a probe slot.
pub(crate) struct Ticket<'a> {
    lane: &'a Lane,
    window: u64,
    /// When it was admitted (epoch ms).
    sent_ms: u64,
    probe: bool,
    reported: bool,
}

/// What the response to a ticketed request said, as far as the limit is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitSignal {
    /// Anything but a 429 (the request counted against the window).
    Accepted,
    /// A 429, with the server's Retry-After when it sent one.
    Limited(Option<Duration>),
    /// No response (transport failure): says nothing about the limit.
    Unknown,
}

impl Lane {
    /// A lane pacing at `per_sec` requests a second at most, of which it plans to use `headroom`
    /// (a fraction ≤ 1 that keeps arrival jitter from tipping a window over); `window` is the
    /// length of the server's fixed window (aligned to the clock) that 429s refer to.
    pub(crate) fn new(per_sec: f64, window: Duration, headroom: f64) -> Lane {
        let window_ms = window.as_millis().max(1) as u64;
        let window_secs = window_ms as f64 / 1000.0;
        let headroom = headroom.clamp(0.1, 1.0);
        let max_rate = per_sec.max(1e-3) * headroom;
        let min_rate = (max_rate / 50.0).max(1.0 / window_secs).min(max_rate);
        Lane {
            state: Mutex::new(State {
                max_rate,
                min_rate,
                rate: max_rate,
                limiter: limiter(max_rate, window_secs, headroom),
                headroom,
                generation: 0,
                window_ms,
                configured_ms: window_ms,
                cur_window: now_ms() / window_ms,
                accepted: 0,
                limited: false,
                sent_this_window: false,
                full_window: false,
                clean_windows: 0,
                budget: None,
                paused_until: None,
                probing: false,
                probe_in_flight: false,
                probe_failures: 0,
                stretch: None,
                evidence: Vec::new(),
                log: SendLog::default(),
            }),
            notify: Notify::new(),
        }
    }

    pub(crate) fn status(&self) -> LaneStatus {
        let s = self.state.lock().unwrap();
        LaneStatus {
            rate_per_sec: s.rate,
            max_rate_per_sec: s.max_rate,
            learned_budget: s.budget,
            window_s: s.window_secs(),
        }
    }

    /// Closed by a 429: paused or waiting for a probe's answer.
    pub(crate) fn paused(&self) -> bool {
        let s = self.state.lock().unwrap();
        s.probing || s.paused_until.is_some_and(|u| u > Instant::now())
    }

    /// Wait until a request may be sent: past any pause, as the probe or after a successful probe,
    /// and with a permit from the limiter.
    pub(crate) async fn acquire(&self) -> Ticket<'_> {
        enum Step {
            Sleep(Instant),
            AwaitProbe(Duration),
            Go(Arc<DefaultDirectRateLimiter>, u64, bool),
        }
        loop {
            let step = {
                let mut s = self.state.lock().unwrap();
                s.roll(now_ms());
                let now = Instant::now();
                if let Some(until) = s.paused_until.filter(|u| *u > now) {
                    Step::Sleep(until)
                } else if s.probing && s.probe_in_flight {
                    Step::AwaitProbe(Duration::from_millis((s.window_ms / 20).clamp(5, 1000)))
                } else {
                    let (cap, window) = (s.cap(), Duration::from_millis(s.window_ms));
                    match s.log.reserve(cap, window, now) {
                        Err(at) => Step::Sleep(at),
                        Ok(()) => {
                            let probe = s.probing;
                            if probe {
                                s.probe_in_flight = true;
                            }
                            Step::Go(s.limiter.clone(), s.generation, probe)
                        }
                    }
                }
            };
            let (limiter, generation, probe) = match step {
                Step::Sleep(until) => {
                    tokio::time::sleep_until(until.into()).await;
                    continue;
                }
                Step::AwaitProbe(wait) => {
                    // Woken when the probe's answer arrives; the timeout is a safety net.
                    let _ = tokio::time::timeout(wait, self.notify.notified()).await;
                    continue;
                }
                Step::Go(l, g, p) => (l, g, p),
            };
            // The place in the send log is given back if this future is dropped while waiting.
            let place = Place(self);
            limiter.until_ready().await;
            let Some(ticket) = self.admit(generation, probe) else {
                continue;
            };
            std::mem::forget(place);
            return ticket;
        }
    }

    /// After the limiter's permit: admit the request unless the gate closed or the pace changed
    /// meanwhile.
    fn admit(&self, generation: u64, probe: bool) -> Option<Ticket<'_>> {
        {
            let mut s = self.state.lock().unwrap();
            let now = Instant::now();
            let paused = s.paused_until.is_some_and(|u| u > now);
            if !probe && (paused || s.probing || s.generation != generation) {
                return None;
            }
            if probe && paused {
                s.probe_in_flight = false;
                return None;
            }
            let t = now_ms();
            s.roll(t);
            s.sent_this_window = true;
            let cap = s.cap();
            s.log.settle(cap, Some(now));
            Some(Ticket {
                lane: self,
                window: t / s.window_ms,
                sent_ms: t,
                probe,
                reported: false,
            })
        }
    }

    /// Feed back what the server answered to a ticketed request.
    pub(crate) fn report(&self, mut ticket: Ticket<'_>, signal: LimitSignal) {
        ticket.reported = true;
        let mut s = self.state.lock().unwrap();
        let t = now_ms();
        s.roll(t);
        let same_window = ticket.window == s.cur_window;
        match signal {
            LimitSignal::Accepted => {
                if same_window {
                    s.accepted += 1;
                }
                if ticket.probe {
                    s.probing = false;
                    s.probe_in_flight = false;
                    s.probe_failures = 0;
                    if let Some((first, refused)) = s.stretch.take() {
                        s.learn(first, refused, ticket.sent_ms);
                    }
                    self.notify.notify_waiters();
                }
            }
            LimitSignal::Unknown => {
                if ticket.probe {
                    s.probe_in_flight = false;
                    self.notify.notify_waiters();
                }
            }
            LimitSignal::Limited(retry_after) => {
                if !same_window && retry_after.is_none() && !ticket.probe {
                    // Sent in a window that has ended since: the new window has a fresh budget.
                    return;
                }
                if !s.limited {
                    s.limited = true;
                    s.clean_windows = 0;
                    let w = s.window_secs();
                    let n = s.accepted;
                    let full = s.full_window;
                    match s.budget {
                        // Far fewer than usual got through: a burst of 429s or another client,
                        // not a smaller budget. Back off, keep the budget.
                        Some(b) if n < b / 2 => {
                            let r = s.rate * 0.5;
                            s.set_rate(r);
                        }
                        _ => {
                            if full && n > 0 {
                                s.budget = Some(n);
                            }
                            let r = (n as f64 / w * s.headroom).clamp(s.rate * 0.5, s.rate);
                            s.set_rate(r);
                        }
                    }
                }
                let now = Instant::now();
                let until = if let Some(after) = retry_after {
                    now + after
                } else if ticket.probe {
                    // Still refused: probe again, less and less often.
                    s.probe_failures += 1;
                    if let Some((_, refused)) = &mut s.stretch {
                        *refused = (*refused).max(ticket.sent_ms);
                    }
                    now + Duration::from_millis(s.next_probe_in(t))
                } else if s.probing {
                    // Sent before the pause began: the pause already answers for it.
                    s.paused_until.unwrap_or(now)
                } else {
                    s.probe_failures = 0;
                    s.stretch = Some((ticket.sent_ms, ticket.sent_ms));
                    now + Duration::from_millis(s.next_probe_in(t))
                };
                s.paused_until = Some(s.paused_until.map_or(until, |u| u.max(until)));
                s.probing = true;
                if ticket.probe {
                    s.probe_in_flight = false;
                }
                self.notify.notify_waiters();
            }
        }
    }
}

/// Window lengths a server plausibly counts in, ms.
const WINDOWS_MS: [u64; 15] = [
    1_000, 2_000, 5_000, 10_000, 15_000, 20_000, 30_000, 60_000, 120_000, 300_000, 600_000,
    900_000, 1_800_000, 3_600_000, 86_400_000,
];

/// Whether clock-aligned windows of `w` ms explain every observation: the first boundary after
/// the 429 came after the last refusal and no later than the admission.
fn fits(w: u64, evidence: &[(u64, u64, u64)]) -> bool {
    evidence.iter().all(|&(first, refused, admitted)| {
        let boundary = (first / w + 1) * w;
        boundary > refused && boundary <= admitted
    })
}

/// The window length that explains every observation and is nearest (by ratio) to `assumed`.
fn learn_window(assumed: u64, longest: u64, evidence: &[(u64, u64, u64)]) -> Option<u64> {
    let distance = |w: u64| (w as f64 / assumed as f64).ln().abs();
    WINDOWS_MS
        .iter()
        .copied()
        .filter(|w| *w <= longest && fits(*w, evidence))
        .min_by(|a, b| distance(*a).total_cmp(&distance(*b)).then(b.cmp(a)))
}

/// A place reserved in a lane's send log by a task waiting for the limiter (see [`Lane::acquire`]).
struct Place<'a>(&'a Lane);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut s = self.0.state.lock().unwrap();
        let cap = s.cap();
        s.log.settle(cap, None);
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.reported && self.probe {
            let mut s = self.lane.state.lock().unwrap();
            s.probe_in_flight = false;
            self.lane.notify.notify_waiters();
        }
    }
}

/// `50`, `50/s` (per second), `3000/min` (per minute): the `--rate` and `--search-rate` flags.
impl std::str::FromStr for super::client::RateLimit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (n, per): (&str, fn(u32) -> Self) = match s.split_once('/') {
            None => (s, Self::per_second),
            Some((n, "s" | "sec" | "second")) => (n, Self::per_second),
            Some((n, "m" | "min" | "minute")) => (n, Self::per_minute),
            Some((n, "h" | "hour")) => (n, Self::per_hour),
            Some((_, unit)) => {
                return Err(format!("unknown unit {unit:?} (use /s, /min or /h)"));
            }
        };
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a rate (e.g. 50, 50/s, 3000/min)"))?;
        if n == 0 {
            return Err("a rate must be at least 1".into());
        }
        Ok(per(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_429_learns_the_budget_and_lowers_the_pace_to_it() {
        let lane = Lane::new(1000.0 / 3600.0, Duration::from_secs(3600), 1.0);
        {
            let mut s = lane.state.lock().unwrap();
            s.full_window = true;
            s.accepted = 300;
        }
        let t = lane.acquire().await;
        lane.report(t, LimitSignal::Limited(None));
        let st = lane.status();
        assert_eq!(st.learned_budget, Some(300));
        // 300 per hour is less than half of 1000 per hour: the pace halves at most once.
        assert!((st.rate_per_sec - 500.0 / 3600.0).abs() < 1e-9, "{st:?}");
        // Paused until the next boundary: no ticket right away.
        let waited = tokio::time::timeout(Duration::from_millis(50), lane.acquire()).await;
        assert!(waited.is_err(), "the gate did not close after a 429");
    }

    #[tokio::test]
    async fn after_the_pause_one_probe_goes_first_and_its_success_opens_the_gate() {
        let lane = Lane::new(1000.0, Duration::from_millis(100), 1.0);
        let t = lane.acquire().await;
        lane.report(t, LimitSignal::Limited(Some(Duration::from_millis(20))));
        let probe = lane.acquire().await;
        assert!(probe.probe);
        // While the probe is out nobody else goes.
        assert!(
            tokio::time::timeout(Duration::from_millis(30), lane.acquire())
                .await
                .is_err()
        );
        lane.report(probe, LimitSignal::Accepted);
        let next = tokio::time::timeout(Duration::from_millis(500), lane.acquire())
            .await
            .unwrap();
        assert!(!next.probe);
    }

    #[test]
    fn the_window_is_learnt_from_when_probes_are_admitted_again() {
        // The client assumed 60 s windows; the server counts per 10 s. Two pauses: a 429 sent at
        // 61.0 s, refused probes up to 68.0 s, admitted at 76.0 s; then 79.0 s, admitted at 80.0 s.
        let lane = Lane::new(50.0, Duration::from_secs(60), 1.0);
        let mut s = lane.state.lock().unwrap();
        s.learn(61_000, 68_000, 76_000);
        assert_eq!(s.window_ms, 60_000, "one observation is not enough");
        s.learn(79_000, 79_000, 80_000);
        assert_eq!(s.window_ms, 10_000);
        // The other way (1 s configured, the server counts per minute) is never learnt: the
        // configured window is the longest assumed (429s that are not the window's, another
        // client's or a burst, must not make the run wait that long); the probes wait it out.
        let lane = Lane::new(50.0, Duration::from_secs(1), 1.0);
        let mut s = lane.state.lock().unwrap();
        s.learn(61_500, 93_000, 125_000);
        s.learn(130_000, 175_000, 181_000);
        assert_eq!(s.window_ms, 1_000);
        // Every observation that agrees with the window assumed keeps it.
        let lane = Lane::new(50.0, Duration::from_secs(10), 1.0);
        let mut s = lane.state.lock().unwrap();
        for k in 1..5u64 {
            s.learn(k * 10_000 + 9_000, k * 10_000 + 9_500, k * 10_000 + 10_100);
        }
        assert_eq!(s.window_ms, 10_000);
    }

    #[test]
    fn after_a_429_the_first_probe_comes_after_about_a_second_not_at_the_assumed_boundary() {
        let lane = Lane::new(50.0, Duration::from_secs(60), 1.0);
        let mut s = lane.state.lock().unwrap();
        // A 429 sent 5 s into a 60 s window: the boundary is 55 s away.
        let t = 60_000 * 1000 + 5_000;
        s.stretch = Some((t, t));
        s.probe_failures = 0;
        assert_eq!(s.next_probe_in(t), 1_000);
        // Growing with each refusal, up to the window.
        s.probe_failures = 3;
        assert_eq!(s.next_probe_in(t + 7_000), 8_000);
        // Never past the estimated boundary while it is ahead.
        s.probe_failures = 6;
        assert_eq!(s.next_probe_in(t + 50_000), 5_000 + 250);
        // A 1 s window: the first probe at its boundary.
        let lane = Lane::new(50.0, Duration::from_secs(1), 1.0);
        let mut s = lane.state.lock().unwrap();
        s.stretch = Some((10_200, 10_200));
        assert_eq!(s.next_probe_in(10_200), 800 + 10);
    }

    #[test]
    fn the_send_log_holds_a_window_to_its_cap_and_says_when_a_place_frees() {
        let (w, t0) = (Duration::from_secs(1), Instant::now());
        let mut log = SendLog::default();
        for k in 0..3 {
            assert_eq!(log.reserve(3, w, t0), Ok(()));
            log.settle(3, Some(t0 + Duration::from_millis(100 * k)));
        }
        // Full: the first send's place frees one window after it.
        assert_eq!(
            log.reserve(3, w, t0 + Duration::from_millis(500)),
            Err(t0 + w)
        );
        // A place given back (a cancelled wait) is free again; one held is not.
        assert_eq!(log.reserve(4, w, t0), Ok(()));
        assert_eq!(
            log.reserve(4, w, t0 + Duration::from_millis(300)),
            Err(t0 + w)
        );
        log.settle(4, None);
        assert_eq!(log.reserve(4, w, t0), Ok(()));
        log.settle(4, None);
        // After the window the old sends no longer count.
        let later = t0 + Duration::from_millis(1_150);
        assert_eq!(log.reserve(3, w, later), Ok(()));
        assert_eq!(log.sent.len(), 1, "two sends expired");
        log.settle(3, None);
        // A cap too large to log holds nothing back and keeps nothing.
        assert_eq!(log.reserve(SendLog::LONGEST + 1, w, later), Ok(()));
        log.settle(SendLog::LONGEST + 1, Some(later));
        assert!(log.sent.is_empty() && log.reserved == 0);
    }

    #[tokio::test]
    async fn no_window_ever_holds_more_than_the_pace_over_it() {
        // 200/s with half of it planned: 100/s over 100 ms windows, 10 a window; the limiter
        // itself paces at 200/s with a burst of the slack (9).
        let window = Duration::from_millis(100);
        let lane = Lane::new(200.0, window, 0.5);
        let mut sent = Vec::new();
        for _ in 0..40 {
            let t = lane.acquire().await;
            sent.push(Instant::now());
            lane.report(t, LimitSignal::Accepted);
        }
        for (i, t) in sent.iter().enumerate() {
            let within = sent[i..].iter().filter(|u| u.duration_since(*t) < window);
            assert!(
                within.count() <= 10,
                "more than 10 sends in a window from send {i}"
            );
        }
        // (The limiter alone would have let its burst through on top: 19 in the first window.)
        let s = lane.state.lock().unwrap();
        assert_eq!(s.log.reserved, 0);
    }

    #[tokio::test]
    async fn a_wait_given_up_gives_its_place_back() {
        let lane = Lane::new(10.0, Duration::from_secs(1), 0.5);
        // Five a window: take them, then one more waits and is dropped.
        for _ in 0..5 {
            let t = lane.acquire().await;
            lane.report(t, LimitSignal::Accepted);
        }
        let waited = tokio::time::timeout(Duration::from_millis(30), lane.acquire()).await;
        assert!(waited.is_err(), "a sixth send in the window");
        let s = lane.state.lock().unwrap();
        assert_eq!((s.log.reserved, s.log.sent.len()), (0, 5));
    }

    #[test]
    fn rates_read_per_second_and_per_minute() {
        use super::super::client::RateLimit;
        let parse = |s: &str| s.parse::<RateLimit>();
        assert_eq!(parse("50").unwrap(), RateLimit::per_second(50));
        assert_eq!(parse("50/s").unwrap(), RateLimit::per_second(50));
        assert_eq!(parse("3000/min").unwrap(), RateLimit::per_minute(3000));
        assert!(parse("0").is_err());
        assert_eq!(parse("5/h").unwrap(), RateLimit::per_hour(5));
        assert!(parse("5/day").is_err());
        assert!(parse("fast").is_err());
    }
}
