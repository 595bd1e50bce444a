//! `FILE.mapping.yaml`: the import mapping that reads one CSV or XLSX export back into an account
//! unchanged. Unlike the shipped `mappings/doto-export.yaml` (`from_prefix`, attributes as text),
//! it lists every attribute column of this export with the type its values had (integer, number,
//! bool; text otherwise), so numbers and booleans come back as numbers and booleans. Rows match
//! on the keys the export holds (identifier, email, phone number), CSV cells lose the export's
//! formula guard (`source.unguard`), and the server's own columns are left out.
use std::fmt::Write;

use super::Format;
use super::columns::{AttrKind, Column, ColumnSet, Layout};

/// The keys a row is matched on, in the order tried.
const KEYS: [&str; 3] = ["identifier", "email", "phone_number"];

/// A YAML double-quoted scalar (JSON's escapes are YAML's).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// The mapping for an export of `layout` (attribute types from `set`) to a file named `file`;
/// `None` when the export holds no column a row could be matched by.
pub fn import_mapping(
    file: &str,
    format: Format,
    layout: &Layout,
    set: &ColumnSet,
) -> Option<String> {
    let has = |c: &str| {
        layout
            .columns
            .iter()
            .any(|col| matches!(col, Column::Core(n) if *n == c))
    };
    let keys: Vec<&str> = KEYS.into_iter().filter(|k| has(k)).collect();
    if keys.is_empty() {
        return None;
    }
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# Written by `doto-bulk export` beside {file}: `doto-bulk import {file} -m THIS_FILE`\n\
         # puts every row back into the account; a row whose contact holds these values already\n\
         # changes nothing. Not imported: id, availability_status, created_at, last_activity_at,\n\
         # contact_inboxes (the server owns them).\nversion: 1"
    );
    if format == Format::Csv {
        y.push_str("source:\n  unguard: true\n");
    }
    let missing = if has("name") { "create" } else { "skip" };
    let _ = writeln!(
        y,
        "match:\n  on: [{}]\n  existing: update\n  missing: {missing}\n  blank: keep\nfields:",
        keys.join(", ")
    );
    for f in ["name", "email", "phone_number", "identifier"] {
        if has(f) {
            let _ = writeln!(y, "  {f}: {f}");
        }
    }
    if has("blocked") {
        y.push_str("  blocked: { from: blocked, type: bool }\n");
    }
    attributes(&mut y, "custom_attributes", layout, set, |c| match c {
        Column::Custom(k) => Some(k),
        _ => None,
    });
    attributes(&mut y, "additional_attributes", layout, set, |c| match c {
        Column::Additional(k) => Some(k),
        _ => None,
    });
    Some(y)
}

/// One attribute section: each column of it, with the type of its values.
fn attributes(
    y: &mut String,
    section: &str,
    layout: &Layout,
    set: &ColumnSet,
    key: impl Fn(&Column) -> Option<&String>,
) {
    let mut lines = String::new();
    for c in &layout.columns {
        let Some(k) = key(c) else { continue };
        let column = c.to_string();
        let ty = match set.kinds.get(&column) {
            Some(AttrKind::Int) => "integer",
            Some(AttrKind::Number) => "number",
            Some(AttrKind::Bool) => "bool",
            _ => "string",
        };
        let note = match set.kinds.get(&column) {
            Some(AttrKind::Other) => "  # mixed or nested values: read back as text",
            _ => "",
        };
        // A mapping cannot name an empty key: the line is there, commented out, to say so.
        let (hash, note) = match k.is_empty() {
            true => ("# ", "  # an empty key: a mapping cannot write one"),
            false => ("", note),
        };
        let _ = writeln!(
            lines,
            "  {hash}{}: {{ from: {}, type: {ty}, optional: true }}{note}",
            quoted(k),
            quoted(&column)
        );
    }
    if !lines.is_empty() {
        let _ = writeln!(y, "{section}:\n{lines}");
    }
}
