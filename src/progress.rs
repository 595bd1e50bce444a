//! The only module that draws: an indicatif bar (count, rate, elapsed; ETA when the total is
//! known) while a run works, and the end-of-run summary on stderr. Nothing is drawn when stderr
//! is not a terminal or with `-q`, so logs and pipes stay clean. A bar of writes ([`Pace`]) takes
//! its ETA from the rate limit (not from the first seconds' speed, which a burst inflates) and
//! says when the run is waiting on retries.
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// `12,345 rows/s`: indicatif's own `{per_sec}` prints three decimals.
fn rate(
    unit: &'static str,
) -> impl Fn(&ProgressState, &mut dyn std::fmt::Write) + Clone + Send + Sync {
    move |state, w| {
        let _ = write!(w, "{} {unit}/s", HumanCount(state.per_sec() as u64));
    }
}

/// What the bar of a write phase reads at each redraw.
#[derive(Clone)]
pub struct Pace {
    /// Requests sent so far (all attempts).
    pub requests: Arc<dyn Fn() -> u64 + Send + Sync>,
    /// The rate limit now, requests per second.
    pub limit_per_s: Arc<dyn Fn() -> f64 + Send + Sync>,
    /// What the run is waiting on (retries, a 429 pause), if anything.
    pub waiting_on: Arc<dyn Fn() -> Option<String> + Send + Sync>,
    /// Rows in flight, the concurrency limit and what binds it now.
    pub concurrency: Arc<dyn Fn() -> String + Send + Sync>,
}

/// Seconds left for `remaining` rows: at the rate limit (the requests per row seen so far, at
/// least one, at `limit_per_s`), or at the speed seen (`seen_per_s` rows a second) when that is
/// slower (a slow server).
pub fn eta_secs(
    remaining: u64,
    done: u64,
    requests: u64,
    limit_per_s: f64,
    seen_per_s: f64,
) -> f64 {
    let per_row = if done == 0 {
        1.0
    } else {
        (requests as f64 / done as f64).max(1.0)
    };
    let at_limit = remaining as f64 * per_row / limit_per_s.max(1e-9);
    let at_seen = if seen_per_s > 0.0 {
        remaining as f64 / seen_per_s
    } else {
        0.0
    };
    at_limit.max(at_seen)
}

/// `1h02m`, `3m05s`, `42s`.
fn human_eta(secs: f64) -> String {
    let s = secs.ceil() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Progress of one run.
pub struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
}

/// Whether this process may draw on stderr.
fn can_draw(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

impl Progress {
    /// A counter of rows with no known total (a streamed file): count, rate, elapsed.
    pub fn rows(quiet: bool, label: &str) -> Progress {
        Self::new(quiet, None, label)
    }

    /// A bar of rows towards `total` when known (count, rate, ETA), else a counter.
    pub fn new(quiet: bool, total: Option<u64>, label: &str) -> Progress {
        Self::of(quiet, total, label, "rows")
    }

    /// A bar of `unit` (`rows`, `contacts`) towards `total` when known, else a counter.
    pub fn of(quiet: bool, total: Option<u64>, label: &str, unit: &'static str) -> Progress {
        if !can_draw(quiet) {
            return Progress { bar: None, quiet };
        }
        let bar = match total {
            Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr())
                .with_style(
                ProgressStyle::with_template(&format!(
                    "{{msg}} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit}  {{rate}}  ETA {{eta}}"
                ))
                .expect("valid template")
                .with_key("rate", rate(unit))
                .progress_chars("=> "),
            ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template(&format!(
                    "{{spinner}} {{msg}} {{human_pos}} {unit}  {{rate}}  {{elapsed}}"
                ))
                .expect("valid template")
                .with_key("rate", rate(unit)),
            ),
        };
        bar.set_message(label.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress {
            bar: Some(bar),
            quiet,
        }
    }

    /// The ETA from the rate limit, and the waiting status, of `pace` (a write phase's bar).
    pub fn with_pace(self, pace: Pace, unit: &'static str) -> Progress {
        let Some(bar) = &self.bar else {
            return self;
        };
        let start = (pace.requests)();
        let p = pace.clone();
        let eta = move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let len = state.len().unwrap_or(0);
            let done = state.pos();
            let requests = (p.requests)().saturating_sub(start);
            let secs = eta_secs(
                len.saturating_sub(done),
                done,
                requests,
                (p.limit_per_s)(),
                state.per_sec(),
            );
            let _ = write!(w, "{}", human_eta(secs));
        };
        let waiting = move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "  {}", (pace.concurrency)());
            if let Some(why) = (pace.waiting_on)() {
                let _ = write!(w, "  ({why})");
            }
        };
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{msg}} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit}  {{rate}}  ETA {{eta_limit}}{{waiting}}"
            ))
            .expect("valid template")
            .with_key("rate", rate(unit))
            .with_key("eta_limit", eta)
            .with_key("waiting", waiting)
            .progress_chars("=> "),
        );
        self
    }

    /// Move to `pos` of `total` (a listing whose total is learnt, and may change, as it goes).
    pub fn set(&self, pos: u64, total: u64) {
        if let Some(b) = &self.bar {
            b.set_length(total);
            b.set_position(pos);
        }
    }

    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Remove the bar (at the end, or before printing something else).
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }

    /// Print the end-of-run summary on stderr (not with `-q`), after clearing the bar.
    pub fn print_summary(&self, text: &str) {
        self.finish();
        if !self.quiet {
            eprint!("{text}");
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eta_follows_the_rate_limit_not_a_fast_start() {
        // 100 of 1,000 rows done in the first second (a burst), 1 request per row, limit 10/s:
        // 900 rows at 10/s is 90 s, not the 9 s the first second's speed suggests.
        assert_eq!(eta_secs(900, 100, 100, 10.0, 100.0), 90.0);
        // Two requests per row (a create and a note) double it.
        assert_eq!(eta_secs(900, 100, 200, 10.0, 100.0), 180.0);
        // A server slower than the limit: its speed rules.
        assert_eq!(eta_secs(900, 100, 100, 10.0, 2.0), 450.0);
        // Nothing done yet: one request per row at the limit.
        assert_eq!(eta_secs(50, 0, 0, 50.0, 0.0), 1.0);
        assert_eq!(human_eta(3725.0), "1h02m");
        assert_eq!(human_eta(185.0), "3m05s");
    }
}
