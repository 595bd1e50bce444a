//! The write phase of `revert`: every contact the import touched reverted `concurrency` at a
//! time through one client ([`Reverter`]), each finished one journaled (the shared
//! [`journal`](super::journal)) before it counts, so that `--resume` skips it. What to do for one
//! contact comes from [`super::revert`] (targets from the import's journal, the restoring PATCH).
//!
//! An updated contact gets, in this order: the restoring PATCH (which also sets the additional
//! attribute keys the import added to `null`), one `destroy_custom_attributes` for the custom
//! attribute keys it added, and a DELETE per note it added. Each step is decided from the
//! contact as it is now (the notes listed first), so a revert resumed or run again sends only
//! what is still to do. Before the first write, the token's right to delete is checked once
//! ([`Reverter::may_delete`]); a token refused (401/403) at any write stops the whole revert.
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, bail};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use crate::api::{ApiError, Client, Served};
use crate::exit::Stop;
use crate::report;

use super::journal::GroupJournal;
use super::revert::{AddedNote, Restore, Target, plan_restore};

/// One contact's line in `results.csv` (and, with the time, in the revert's journal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevertResult {
    pub contact_id: u64,
    /// `deleted`, `restored`, `partly_restored`, `unchanged`, `skipped`, `failed` (dry run:
    /// `would_delete`, `would_restore`).
    pub action: String,
    #[serde(default)]
    pub reason: String,
    /// What the import changed that is still not as before (`;`-separated): attribute keys the
    /// server could not remove, `note ID`, fields changed since the import (skipped).
    #[serde(default)]
    pub left: String,
    /// Additional attribute keys the import added, `null` now (the API cannot remove them).
    #[serde(default)]
    pub nulled: String,
}

impl RevertResult {
    /// Whether the contact is not as it was before the import once this revert ended.
    pub fn not_reverted(&self) -> bool {
        matches!(
            self.action.as_str(),
            "skipped" | "failed" | "partly_restored"
        )
    }
}

/// One line of a revert's journal: a contact finished.
#[derive(Debug, Serialize, Deserialize)]
pub struct Finished {
    #[serde(flatten)]
    pub result: RevertResult,
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
    /// Contacts an earlier revert finished (`--resume`), with their results: not touched again.
    pub finished: HashMap<u64, RevertResult>,
    /// The revert's own journal (none in a dry run).
    pub journal: Option<GroupJournal<Finished>>,
    pub quiet: bool,
    /// Whether the revert has contacts to delete (the import created some): then the token's
    /// right to delete is checked before the first write.
    pub deletes: bool,
    /// The outcome of that check (made once): `Err` is what the user is told.
    pub delete_check: OnceCell<Result<(), String>>,
}

/// One contact's result and the writes it sent, or why the token was refused (which stops the
/// revert).
type Step = Result<(RevertResult, u64), String>;

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
        if let Some(done) = self.finished.get(&id) {
            let mut r = done.clone();
            r.reason = format!("{} (done before the resume)", r.reason);
            return Ok((r, 0));
        }
        let step = match t {
            Target::Created { id } => self.delete_created(*id).await,
            Target::Updated {
                id,
                before,
                after,
                notes,
            } => self.restore_updated(*id, before, after, notes).await,
        };
        let (r, wrote) = match step {
            Ok(x) => x,
            Err(message) => bail!(message),
        };
        let settled = !matches!(r.action.as_str(), "failed" | "skipped");
        if settled && let Some(j) = &self.journal {
            // Durable before it counts, as the import's journal.
            let line = Finished {
                result: r.clone(),
                at: report::now(),
            };
            j.record(line).await?;
        }
        if !self.quiet && r.action == "failed" {
            eprintln!("contact {id}: {}", r.reason);
        }
        Ok((r, wrote))
    }

    /// Before the first write: may this token delete contacts? One `DELETE /contacts/0` (no such
    /// contact): the server checks the right before it looks the contact up, so an agent's token
    /// gets 401/403 and an administrator's 404. Made once, and only when there is something to
    /// delete; `Err` stops the revert before it writes anything.
    async fn may_delete(&self) -> Result<(), String> {
        if !self.deletes {
            return Ok(());
        }
        let check = self.delete_check.get_or_init(|| async {
            match self.client.contacts().delete(0).await {
                Err(e) if is_refusal(&e) => Err(refused(&e)),
                _ => Ok(()),
            }
        });
        check.await.clone()
    }

    /// A contact the import created: deleted (looked up first, so that a second revert finds
    /// it gone and sends nothing).
    async fn delete_created(&self, id: u64) -> Step {
        match self.client.contacts().get(id).await {
            Ok(_) if self.dry_run => {
                return Ok((result(id, "would_delete", "created by the import"), 0));
            }
            Ok(_) => {}
            Err(ApiError::NotFound { .. }) => {
                return Ok((result(id, "unchanged", "already gone"), 0));
            }
            Err(e) => return failure(id, e, 0, ""),
        }
        self.may_delete().await?;
        match self.client.contacts().delete(id).await {
            Ok(()) => Ok((result(id, "deleted", "created by the import"), 1)),
            // Gone already: deleted by an earlier revert (perhaps a retry of this one).
            Err(ApiError::NotFound { .. }) => Ok((result(id, "deleted", "already gone"), 1)),
            Err(e) => failure(id, e, 1, ""),
        }
    }

    /// A contact the import updated: its fields, the attribute keys and the notes the import
    /// added, each restored or removed as far as the server allows.
    async fn restore_updated(
        &self,
        id: u64,
        before: &Map<String, Value>,
        after: &Map<String, Value>,
        notes: &[AddedNote],
    ) -> Step {
        let now = match self.client.contacts().get(id).await {
            Ok(c) => c,
            Err(ApiError::NotFound { .. }) => {
                return Ok((result(id, "skipped", "deleted since the import"), 0));
            }
            Err(e) => return failure(id, e, 0, ""),
        };
        let plan = plan_restore(&now, before, after);
        if !plan.changed_since.is_empty() && !self.force {
            let why = format!(
                "changed since the import: {} (use --force)",
                plan.changed_since.join(", ")
            );
            let mut r = result(id, "skipped", &why);
            r.left = plan.changed_since.join(";");
            return Ok((r, 0));
        }
        let (present, mut left) = match self.notes_present(id, notes).await {
            Ok(x) => x,
            Err(e) => return failure(id, e, 0, ""),
        };
        let nothing = plan.patch.is_empty() && plan.remove_custom.is_empty() && present.is_empty();
        let (action, why, writes) = if nothing {
            ("unchanged", "already as before the import", 0)
        } else if self.dry_run {
            ("would_restore", "updated by the import", 0)
        } else {
            self.may_delete().await?;
            match self.send_restore(id, &plan, &present, &mut left).await {
                Ok(writes) => ("restored", "updated by the import", writes),
                Err((e, writes)) => return failure(id, e, writes, &plan.nulled.join(";")),
            }
        };
        let mut r = result(id, action, why);
        if !left.is_empty() && matches!(action, "restored" | "unchanged") {
            r.action = "partly_restored".into();
            r.reason = "the server cannot remove what is left".into();
        }
        r.left = left.join(";");
        r.nulled = plan.nulled.join(";");
        Ok((r, writes))
    }

    /// The ids of the notes the import added that the contact still has (one read, when it
    /// added any), and the notes whose id the journal does not know (left).
    async fn notes_present(
        &self,
        id: u64,
        notes: &[AddedNote],
    ) -> Result<(Vec<u64>, Vec<String>), ApiError> {
        let left = notes.iter().filter(|n| n.note_id.is_none());
        let left: Vec<String> = left.map(AddedNote::label).collect();
        let ids: Vec<u64> = notes.iter().filter_map(|n| n.note_id).collect();
        if ids.is_empty() {
            return Ok((ids, left));
        }
        let stored: HashSet<u64> = self
            .client
            .contacts()
            .notes(id)
            .await?
            .iter()
            .map(|n| n.id)
            .collect();
        Ok((
            ids.into_iter().filter(|n| stored.contains(n)).collect(),
            left,
        ))
    }

    /// The PATCH, the custom attribute keys' removal, the notes' deletion; what the server does
    /// not serve goes to `left`. Returns the writes sent (with the error that ended it).
    async fn send_restore(
        &self,
        id: u64,
        plan: &Restore,
        notes: &[u64],
        left: &mut Vec<String>,
    ) -> Result<u64, (ApiError, u64)> {
        let contacts = self.client.contacts();
        let mut writes = 0;
        if !plan.patch.is_empty() {
            writes += 1;
            contacts
                .update(id, &plan.patch)
                .await
                .map_err(|e| (e, writes))?;
        }
        if !plan.remove_custom.is_empty() {
            writes += 1;
            let served = contacts
                .destroy_custom_attributes(id, &plan.remove_custom)
                .await;
            if served.map_err(|e| (e, writes))? == Served::NotServed {
                let keys = plan.remove_custom.iter();
                left.extend(keys.map(|k| format!("custom_attributes.{k}")));
            }
        }
        for (i, &note) in notes.iter().enumerate() {
            writes += 1;
            match contacts.delete_note(id, note).await {
                Ok(Served::Done(())) | Err(ApiError::NotFound { .. }) => {}
                Ok(Served::NotServed) => {
                    left.extend(notes[i..].iter().map(|n| format!("note {n}")));
                    break;
                }
                Err(e) => return Err((e, writes)),
            }
        }
        Ok(writes)
    }
}

/// What the user is told when the server refuses the token at a write.
fn refused(e: &ApiError) -> String {
    match e {
        ApiError::Forbidden { .. } => format!(
            "{e}: this token may not delete contacts, and revert deletes the contacts the \
             import created; use an administrator's token (an agent's may not delete). \
             Nothing more was written"
        ),
        _ => format!("{e}: the server refused the token; nothing more was written"),
    }
}

fn is_refusal(e: &ApiError) -> bool {
    matches!(
        e,
        ApiError::Unauthorized { .. } | ApiError::Forbidden { .. }
    )
}

/// A contact that failed (`Ok`), or the token refused (`Err`: the revert stops).
fn failure(id: u64, e: ApiError, writes: u64, nulled: &str) -> Step {
    if is_refusal(&e) {
        return Err(refused(&e));
    }
    let mut r = result(id, "failed", &e.to_string());
    r.nulled = nulled.into();
    Ok((r, writes))
}

fn result(id: u64, action: &str, reason: &str) -> RevertResult {
    RevertResult {
        contact_id: id,
        action: action.into(),
        reason: reason.into(),
        left: String::new(),
        nulled: String::new(),
    }
}
