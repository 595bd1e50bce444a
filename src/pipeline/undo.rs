//! The write phase of `revert`: every contact the import touched reverted `concurrency` at a
//! time through one client ([`Reverter`]), each finished one journaled (the shared
//! [`journal`](super::journal)) before it counts, so that `--resume` skips it. What to do for one
//! contact comes from [`super::revert`] (targets from the import's journal, the restoring PATCH).
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, Client};
use crate::exit::Stop;
use crate::report;

use super::journal::GroupJournal;
use super::revert::{Target, plan_restore};

/// One contact's line in `results.csv`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RevertResult {
    pub contact_id: u64,
    /// `deleted`, `restored`, `skipped`, `failed` (dry run: `would_delete`, `would_restore`).
    pub action: String,
    pub reason: String,
    /// Attribute keys the import added that PATCH cannot remove (`;`-separated).
    pub not_removed: String,
}

/// One line of a revert's journal: a contact finished.
#[derive(Debug, Serialize, Deserialize)]
pub struct Finished {
    pub contact_id: u64,
    action: String,
    at: String,
}

/// The revert of every contact: one client, the revert's own journal, the contacts an earlier
/// revert finished.
pub struct Reverter {
    pub client: Client,
    pub dry_run: bool,
    /// Restore contacts changed since the import too.
    pub force: bool,
    /// Contacts reverted at once.
    pub concurrency: usize,
    /// Contacts an earlier revert finished (`--resume`): skipped.
    pub finished: HashSet<u64>,
    /// The revert's own journal (none in a dry run).
    pub journal: Option<GroupJournal<Finished>>,
    pub quiet: bool,
}

impl Reverter {
    /// Revert `todo`, `--concurrency` contacts at a time, each result to `csv` in `todo`'s order,
    /// until the end or `interrupt` (no new contact starts; those in flight finish). Returns the
    /// results, the writes sent and why it stopped early.
    pub async fn all(
        &self,
        todo: &[Target],
        interrupt: &AtomicBool,
        csv: &mut csv::Writer<std::fs::File>,
    ) -> Result<(Vec<RevertResult>, u64, Option<Stop>)> {
        let mut done = futures::stream::iter(todo)
            .take_while(|_| std::future::ready(!interrupt.load(Ordering::Relaxed)))
            .map(|t| self.client.limit().run(self.one(t)))
            .buffered(self.client.limit().ceiling());
        let (mut results, mut writes, mut stop) = (Vec::new(), 0, None);
        while let Some(r) = done.next().await {
            match r {
                Ok((r, wrote)) => {
                    csv.serialize(&r)?;
                    writes += wrote;
                    results.push(r);
                }
                Err(e) => {
                    stop = Some(Stop::Fatal(format!("{e:#}")));
                    break;
                }
            }
        }
        if stop.is_none() && results.len() < todo.len() {
            stop = Some(Stop::Interrupted);
        }
        Ok((results, writes, stop))
    }

    /// Revert one contact and journal it once finished (so that `--resume` skips it).
    async fn one(&self, t: &Target) -> Result<(RevertResult, u64)> {
        let id = t.id();
        if self.finished.contains(&id) {
            return Ok((result(id, "skipped", "done by the resumed revert", &[]), 0));
        }
        let (r, wrote) = revert_one(&self.client, t, self.dry_run, self.force).await;
        if matches!(r.action.as_str(), "deleted" | "restored")
            && let Some(j) = &self.journal
        {
            // Durable before it counts, as the import's journal.
            let line = Finished {
                contact_id: id,
                action: r.action.clone(),
                at: report::now(),
            };
            j.record(line).await?;
        }
        if !self.quiet && r.action == "failed" {
            eprintln!("contact {id}: {}", r.reason);
        }
        Ok((r, wrote))
    }
}

fn result(id: u64, action: &str, reason: &str, not_removed: &[String]) -> RevertResult {
    RevertResult {
        contact_id: id,
        action: action.into(),
        reason: reason.into(),
        not_removed: not_removed.join(";"),
    }
}

/// Revert one contact; returns its result and the writes sent.
async fn revert_one(
    client: &Client,
    t: &Target,
    dry_run: bool,
    force: bool,
) -> (RevertResult, u64) {
    match t {
        Target::Created { id } => {
            let id = *id;
            // Looked up first, so that a second revert finds it gone and sends nothing.
            match client.contacts().get(id).await {
                Ok(_) if dry_run => {
                    return (result(id, "would_delete", "created by the import", &[]), 0);
                }
                Ok(_) => {}
                Err(ApiError::NotFound { .. }) => {
                    return (result(id, "deleted", "already gone", &[]), 0);
                }
                Err(e) => return (result(id, "failed", &e.to_string(), &[]), 0),
            }
            match client.contacts().delete(id).await {
                Ok(()) => (result(id, "deleted", "created by the import", &[]), 1),
                // Gone already: deleted by an earlier revert (perhaps a retry of this one).
                Err(ApiError::NotFound { .. }) => (result(id, "deleted", "already gone", &[]), 1),
                Err(e) => (result(id, "failed", &e.to_string(), &[]), 1),
            }
        }
        Target::Updated { id, before, after } => {
            let id = *id;
            let now = match client.contacts().get(id).await {
                Ok(c) => c,
                Err(ApiError::NotFound { .. }) => {
                    return (result(id, "skipped", "deleted since the import", &[]), 0);
                }
                Err(e) => return (result(id, "failed", &e.to_string(), &[]), 0),
            };
            let plan = plan_restore(&now, before, after);
            let nr = &plan.not_removable;
            if plan.patch.is_empty() {
                let why = if nr.is_empty() {
                    "already restored"
                } else {
                    "nothing to restore but the added attribute keys"
                };
                return (result(id, "restored", why, nr), 0);
            }
            if !plan.changed_since.is_empty() && !force {
                let why = format!(
                    "changed since the import: {} (use --force)",
                    plan.changed_since.join(", ")
                );
                return (result(id, "skipped", &why, nr), 0);
            }
            if dry_run {
                return (result(id, "would_restore", "updated by the import", nr), 0);
            }
            match client.contacts().update(id, &plan.patch).await {
                Ok(_) => (result(id, "restored", "updated by the import", nr), 1),
                Err(e) => (result(id, "failed", &e.to_string(), nr), 1),
            }
        }
    }
}
