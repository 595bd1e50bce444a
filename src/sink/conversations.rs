//! The `--conversations` table: every exported contact's conversations as the API gives them (at
//! most the 20 with the newest activity, newest first, no paging: older ones are not reachable
//! through the contacts API), one request per contact, fetched with the other per-contact tables
//! by [`related`](super::related), one row per conversation keyed by `contact_id`.
//!
//! JSONL keeps the whole object as the API renders it (its `meta.sender` is the contact itself);
//! CSV, XLSX and Parquet have these columns, `labels`, the attribute objects and `messages` as
//! JSON text.
use super::table::{Col, Kind, col};

/// The columns of a CSV, XLSX or Parquet conversations table.
pub const COLUMNS: [Col; 17] = [
    col("contact_id", Kind::Id, "/contact_id"),
    col("id", Kind::Id, "/id"),
    col("uuid", Kind::Text, "/uuid"),
    col("inbox_id", Kind::Int, "/inbox_id"),
    col("channel", Kind::Text, "/meta/channel"),
    col("status", Kind::Text, "/status"),
    col("priority", Kind::Text, "/priority"),
    col("assignee_id", Kind::Int, "/meta/assignee/id"),
    col("unread_count", Kind::Int, "/unread_count"),
    col("muted", Kind::Flag, "/muted"),
    col("created_at", Kind::Time, "/created_at"),
    col("last_activity_at", Kind::Time, "/last_activity_at"),
    col("updated_at", Kind::Time, "/updated_at"),
    col("labels", Kind::Json, "/labels"),
    col("custom_attributes", Kind::Json, "/custom_attributes"),
    col(
        "additional_attributes",
        Kind::Json,
        "/additional_attributes",
    ),
    col("messages", Kind::Json, "/messages"),
];
