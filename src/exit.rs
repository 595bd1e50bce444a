//! Exit codes with meaning (PRODUCT.md): the only place they are spelled, with why a run stopped
//! early ([`Stop`]) and the one mapping from a run's end to its code ([`code`]).
use serde::{Serialize, Serializer};

/// Every row ended as created, updated, unchanged or deliberately skipped.
pub const OK: u8 = 0;
/// Could not run: bad mapping, unreadable file, token rejected, server unreachable, `--max-errors`.
pub const FATAL: u8 = 1;
/// Usage error (clap's own code).
pub const USAGE: u8 = 2;
/// Finished, but some rows failed or were invalid.
pub const ROWS_FAILED: u8 = 3;
/// The user answered no to `Proceed? [y/N]`: nothing was written.
pub const DECLINED: u8 = 4;
/// Interrupted by Ctrl-C after flushing every report.
pub const INTERRUPTED: u8 = 130;

/// Why a run ended before the end of its input. Written to `summary.json` as `stopped`:
/// `"interrupted"`, `"max_errors"`, `"fatal"`, `"read_error"` or `"server_unreachable"` (the
/// message goes to stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Ctrl-C: no new row started; the rows in flight finished and every report was flushed.
    Interrupted,
    /// More rows failed or were invalid than `--max-errors` allows.
    MaxErrors,
    /// The server refused the token, or the journal or a report cannot be written.
    Fatal(String),
    /// The input could not be read to its end (the message names the file and the line).
    ReadError(String),
    /// The circuit breaker opened: every request for `--give-up-after` failed (connection
    /// errors, timeouts, 5xx). The rows in flight are left for `--resume`.
    Unreachable(String),
}

impl Stop {
    /// The name written to `summary.json`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Stop::Interrupted => "interrupted",
            Stop::MaxErrors => "max_errors",
            Stop::Fatal(_) => "fatal",
            Stop::ReadError(_) => "read_error",
            Stop::Unreachable(_) => "server_unreachable",
        }
    }

    /// What to tell the user when the run ends with it; `failures` is the count of failed or
    /// invalid rows. Ctrl-C is not an error and says nothing.
    pub fn message(&self, failures: u64) -> Option<String> {
        match self {
            Stop::Interrupted => None,
            Stop::MaxErrors => Some(format!(
                "stopped after {failures} failed or invalid rows (--max-errors)"
            )),
            Stop::Fatal(m) | Stop::ReadError(m) => Some(m.clone()),
            Stop::Unreachable(m) => Some(format!(
                "{m}; stopped: the rows not finished can be continued with --resume"
            )),
        }
    }
}

impl Serialize for Stop {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The exit code of a run that ended with `stop` (none: it reached the end) and `failures` failed
/// or invalid rows.
pub fn code(stop: Option<&Stop>, failures: u64) -> u8 {
    match stop {
        Some(Stop::Interrupted) => INTERRUPTED,
        Some(_) => FATAL,
        None if failures > 0 => ROWS_FAILED,
        None => OK,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stop_reason_decides_before_the_failures() {
        assert_eq!(code(None, 0), OK);
        assert_eq!(code(None, 2), ROWS_FAILED);
        assert_eq!(code(Some(&Stop::Interrupted), 2), INTERRUPTED);
        assert_eq!(code(Some(&Stop::MaxErrors), 0), FATAL);
        assert_eq!(code(Some(&Stop::ReadError("x".into())), 0), FATAL);
        assert_eq!(code(Some(&Stop::Fatal("x".into())), 5), FATAL);
        assert_eq!(code(Some(&Stop::Unreachable("x".into())), 0), FATAL);
    }

    #[test]
    fn stop_reasons_serialise_as_their_names() {
        let v = serde_json::to_value([
            Stop::Interrupted,
            Stop::MaxErrors,
            Stop::Fatal("token refused".into()),
            Stop::ReadError("a.csv: line 9".into()),
        ])
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!(["interrupted", "max_errors", "fatal", "read_error"])
        );
        assert!(Stop::Interrupted.message(3).is_none());
        assert!(Stop::MaxErrors.message(3).unwrap().contains("--max-errors"));
    }
}
