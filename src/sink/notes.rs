//! The `--notes` table: every exported contact's notes (`GET /contacts/{id}/notes`, one request
//! per contact, fetched with the other per-contact tables by [`related`](super::related)), one row
//! per note keyed by `contact_id`.
//!
//! The API renders a note as `id`, `content`, `user` (who wrote it), `created_at`, `updated_at`
//! and `account_id` / `contact_id` (both `null`: a bug in Chatwoot's note template; the export
//! sets `contact_id` to the contact it asked for). JSONL keeps the whole object; the other formats
//! have these columns.
use super::table::{Col, Kind, col};

/// The columns of a CSV, XLSX or Parquet notes table.
pub const COLUMNS: [Col; 7] = [
    col("contact_id", Kind::Id, "/contact_id"),
    col("id", Kind::Id, "/id"),
    col("content", Kind::Text, "/content"),
    col("created_at", Kind::Time, "/created_at"),
    col("updated_at", Kind::Time, "/updated_at"),
    col("user_id", Kind::Int, "/user/id"),
    col("user_name", Kind::Text, "/user/name"),
];
