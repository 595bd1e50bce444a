//! The dry run's plan for people: once `plan.jsonl` is written, [`review`] reads it back (one
//! line at a time: memory does not grow with the file) and writes `plan.csv` beside it, one row per
//! planned row (row, action, contact id, changed fields, key, error) for spreadsheet review, while
//! counting the actions and the fields they change. [`PlanReview::text`] is the summary printed on
//! stderr: per action counts and the fields changed most often.
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::model::RowError;
use crate::report::Summary;
use crate::sink::guard::guard;

use super::plan::Change;

/// The actions of `plan.jsonl`, in the order the summary lists them.
const ORDER: [&str; 5] = ["create", "update", "unchanged", "skip", "fail"];

/// How many changed fields (or error codes) one summary line names before `...`.
const FIRST_FIELDS: usize = 5;

/// One line of `plan.jsonl`, as far as the review needs it.
#[derive(Deserialize)]
struct Line {
    row: u64,
    action: String,
    contact_id: Option<u64>,
    key: Option<String>,
    #[serde(default)]
    changes: Vec<Change>,
    error: Option<RowError>,
}

/// Counts of one action: rows, and per changed field (create, update) or error code (skip,
/// fail) how many of those rows.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ActionCount {
    pub rows: u64,
    pub by: BTreeMap<String, u64>,
}

/// What a dry run would do, counted from its `plan.jsonl`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PlanReview {
    /// By action (`create`, `update`, `unchanged`, `skip`, `fail`).
    pub actions: BTreeMap<String, ActionCount>,
    /// Rows that never reached the plan (invalid in the file).
    pub invalid: u64,
    /// Where `plan.csv` was written.
    pub csv: PathBuf,
}

/// Read `run_dir/plan.jsonl`, write `run_dir/plan.csv`, and count; `invalid` is the run's count of
/// invalid rows (they have no plan line).
pub fn review(run_dir: &Path, invalid: u64) -> Result<PlanReview> {
    let jsonl = run_dir.join("plan.jsonl");
    let csv = run_dir.join("plan.csv");
    let reader = BufReader::new(
        File::open(&jsonl).with_context(|| format!("cannot read {}", jsonl.display()))?,
    );
    let mut out =
        csv::Writer::from_path(&csv).with_context(|| format!("cannot write {}", csv.display()))?;
    out.write_record([
        "row",
        "action",
        "contact_id",
        "changed_fields",
        "key",
        "error",
    ])?;
    let mut review = PlanReview {
        invalid,
        csv: csv.clone(),
        ..PlanReview::default()
    };
    for (n, text) in reader.lines().enumerate() {
        let text = text.with_context(|| format!("cannot read {}", jsonl.display()))?;
        let line: Line = serde_json::from_str(&text)
            .with_context(|| format!("{}: line {} is not a plan line", jsonl.display(), n + 1))?;
        review.count(&line);
        let fields: Vec<&str> = line.changes.iter().map(|c| c.field.as_str()).collect();
        let error = line
            .error
            .as_ref()
            .map(|e| format!("{}: {}", e.code.as_str(), e.message));
        out.write_record([
            line.row.to_string().as_str(),
            &line.action,
            &line.contact_id.map(|id| id.to_string()).unwrap_or_default(),
            &fields.join(";"),
            &guard(line.key.as_deref().unwrap_or("")),
            &guard(error.as_deref().unwrap_or("")),
        ])?;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", csv.display()))?;
    Ok(review)
}

/// After a dry run: `plan.csv`, and unless `quiet` the plan's summary on stderr.
pub fn after_dry_run(summary: &Summary, quiet: bool) -> Result<PlanReview> {
    let invalid = summary.outcomes.get("invalid").copied().unwrap_or(0);
    let review = review(Path::new(&summary.run_dir), invalid)?;
    if !quiet {
        eprint!("{}", review.text());
    }
    Ok(review)
}

impl PlanReview {
    fn count(&mut self, line: &Line) {
        let a = self.actions.entry(line.action.clone()).or_default();
        a.rows += 1;
        for c in &line.changes {
            *a.by.entry(c.field.clone()).or_default() += 1;
        }
        if let Some(e) = &line.error {
            *a.by.entry(e.code.as_str().to_owned()).or_default() += 1;
        }
    }

    /// Rows of `action` in the plan.
    pub fn rows(&self, action: &str) -> u64 {
        self.actions.get(action).map_or(0, |a| a.rows)
    }

    /// The summary printed after a dry run, e.g. `  update 412: name 300, phone_number 120`.
    pub fn text(&self) -> String {
        let mut text = String::from("plan (dry run: nothing was written):\n");
        let known = ORDER.iter().map(|a| a.to_string());
        let others = self.actions.keys().filter(|a| !ORDER.contains(&a.as_str()));
        for action in known.chain(others.cloned()) {
            let Some(a) = self.actions.get(&action) else {
                continue;
            };
            text.push_str(&format!("  {action} {}{}\n", a.rows, most_common(&a.by)));
        }
        if self.invalid > 0 {
            text.push_str(&format!("  invalid {} (see failures.csv)\n", self.invalid));
        }
        if self.actions.is_empty() && self.invalid == 0 {
            text.push_str("  no rows\n");
        }
        text.push_str(&format!("  plan.csv: {}\n", self.csv.display()));
        text
    }
}

/// `: name 300, phone_number 120, ...`: the most common first (ties by name), at most
/// [`FIRST_FIELDS`] of them; empty when there are none.
fn most_common(by: &BTreeMap<String, u64>) -> String {
    if by.is_empty() {
        return String::new();
    }
    let mut v: Vec<(&String, &u64)> = by.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut parts: Vec<String> = v
        .iter()
        .take(FIRST_FIELDS)
        .map(|(f, n)| format!("{f} {n}"))
        .collect();
    if v.len() > FIRST_FIELDS {
        parts.push("...".into());
    }
    format!(": {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_common_fields_first_then_by_name_with_an_ellipsis_past_five() {
        let by: BTreeMap<String, u64> =
            [("a", 1), ("b", 7), ("c", 7), ("d", 2), ("e", 1), ("f", 1)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
        assert_eq!(most_common(&by), ": b 7, c 7, d 2, a 1, e 1, ...");
        assert_eq!(most_common(&BTreeMap::new()), "");
    }
}
