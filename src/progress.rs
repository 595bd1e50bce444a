//! The only module that draws: an indicatif bar (count, rate, elapsed; ETA when the total is
//! known) while a run works, and the end-of-run summary on stderr. Nothing is drawn when stderr
//! is not a terminal or with `-q`, so logs and pipes stay clean.
use std::io::IsTerminal;
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
