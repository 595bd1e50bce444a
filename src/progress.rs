//! The only module that draws: an indicatif bar (count, rate, elapsed; ETA when the total is
//! known) while a run works, and the end-of-run summary on stderr. Nothing is drawn when stderr
//! is not a terminal or with `-q`, so logs and pipes stay clean.
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// `12,345 rows/s`: indicatif's own `{per_sec}` prints three decimals.
fn rate(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{} rows/s", HumanCount(state.per_sec() as u64));
}

/// Progress of one run.
pub struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
}

/// Whether this process may draw on stderr.
pub fn can_draw(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

impl Progress {
    /// A counter of rows with no known total (a streamed file): count, rate, elapsed.
    pub fn rows(quiet: bool, label: &str) -> Progress {
        Self::new(quiet, None, label)
    }

    /// A bar towards `total` when known (count, rate, ETA), else a counter.
    pub fn new(quiet: bool, total: Option<u64>, label: &str) -> Progress {
        if !can_draw(quiet) {
            return Progress { bar: None, quiet };
        }
        let bar = match total {
            Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr())
                .with_style(
                    ProgressStyle::with_template(
                        "{msg} [{bar:30}] {human_pos}/{human_len} rows  {rate}  ETA {eta}",
                    )
                    .expect("valid template")
                    .with_key("rate", rate)
                    .progress_chars("=> "),
                ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template("{spinner} {msg} {human_pos} rows  {rate}  {elapsed}")
                    .expect("valid template")
                    .with_key("rate", rate),
            ),
        };
        bar.set_message(label.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress {
            bar: Some(bar),
            quiet,
        }
    }

    /// A bar that draws nothing (tests, quiet runs).
    pub fn hidden() -> Progress {
        Progress {
            bar: None,
            quiet: true,
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
