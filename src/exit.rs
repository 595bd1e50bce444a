//! Exit codes with meaning (PRODUCT.md): the only place they are spelled.

/// Every row ended as created, updated, unchanged or deliberately skipped.
pub const OK: u8 = 0;
/// Could not run: bad mapping, unreadable file, token rejected, server unreachable, `--max-errors`.
pub const FATAL: u8 = 1;
/// Usage error (clap's own code).
pub const USAGE: u8 = 2;
/// Finished, but some rows failed or were invalid.
pub const ROWS_FAILED: u8 = 3;
/// Interrupted by Ctrl-C after flushing every report.
pub const INTERRUPTED: u8 = 130;
