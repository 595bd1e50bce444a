//! doto-bulk moves contacts in and out of a Doto (Chatwoot-compatible) account in bulk.
//!
//! Data flow of an import: a [`source`] reads CSV or XLSX into raw records that keep their line
//! numbers; the [`mapping`] (a YAML file resolved against the headers once) turns each record into a
//! [`mapping::ContactDraft`] whose values were parsed by [`normalise`]; `validate` stops there and
//! writes the [`report`]. `import` then looks the keys up through the [`api`] client (one rate-limited
//! `send()`), decides an action per row in [`pipeline`], writes, journals and reports. `export` pages
//! through the account into a [`sink`]. The [`sandbox`] is a local emulator of the contacts API that
//! every test and benchmark runs against.

pub mod api;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod confirm;
pub mod exit;
pub mod logging;
pub mod mapping;
pub mod model;
pub mod normalise;
pub mod pipeline;
pub mod progress;
pub mod report;
pub mod sandbox;
pub mod sink;
pub mod source;
pub mod words;
