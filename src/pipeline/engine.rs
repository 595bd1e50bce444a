//! The write phase of an import: rows taken in file order (streamed, at most [`WINDOW`] beyond the
//! oldest unfinished one) and chained so that rows sharing a key (or a matched contact) run in
//! file order and never concurrently, the others concurrently through one shared client (one rate
//! limit); each row goes decide → write → journal → notes.
//!
//! Exactly once, whatever the server does:
//! - a create rejected because its key was taken meanwhile (422) is looked up again and becomes an
//!   update;
//! - a create whose outcome is unknown (5xx, timeout, dropped connection) is never re-sent blindly:
//!   its keys are looked up first; found, it was applied (or the contact is updated to the row);
//!   not found, it is sent again;
//! - a note whose outcome is unknown, or a note of a row that was in flight when an earlier run
//!   died, is checked on the server (the contact's notes, same content) before it is sent again;
//! - an update is idempotent (the same PATCH twice leaves the same contact), so it is simply
//!   repeated.
//!
//! Every completed write is in the journal (synced) before the row counts as done, and a row the
//! journal says is done is not written again (`--resume`).
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::{Notify, Semaphore};

use crate::api::{ApiError, Client, ContactPatch, NewContact};
use crate::exit::Stop;
use crate::mapping::ContactDraft;
use crate::model::{ErrorCode, Outcome, RowError, RowWarning};

use super::journal::{Entry, GroupJournal, Journal, Ledger, Op, RowState};
use super::lookup::{self, Key, Known};
use super::plan::{self, Action, Change, FAKE_ID_BASE, Policy};

/// Attempts at one write before the row fails (on top of the client's own retries).
const MAX_ATTEMPTS: u32 = 4;
/// Groups waiting for a search at most, on top of the busy ones (bounds memory when the search
/// limit is far below the need).
const SEARCH_WAITERS: usize = 1024;

/// One valid row, ready to be applied.
#[derive(Debug, Clone)]
pub struct Row {
    /// Position in the file's rows (for putting results back in file order).
    pub idx: usize,
    pub line: u64,
    /// [`super::journal::row_hash`] of the row's fields.
    pub hash: String,
    pub draft: ContactDraft,
    /// The keys the mapping matches on, in order.
    pub keys: Vec<Key>,
    /// A later row of the file shares one of this row's keys (email, identifier or phone): a
    /// contact this row creates is remembered for it. `false` lets the engine forget it.
    pub later: bool,
    /// The first line of the file with this row's phone, when it is an earlier one.
    pub phone_of: Option<u64>,
}

/// How a row ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RowResult {
    pub idx: usize,
    pub outcome: Outcome,
    pub contact_id: Option<u64>,
    pub errors: Vec<RowError>,
    /// Found while writing (e.g. `phone_in_use`), on top of the draft's own warnings.
    pub warnings: Vec<RowWarning>,
    /// Dry run: the plan line.
    pub plan: Option<PlanLine>,
}

/// One line of `plan.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanLine {
    pub row: u64,
    pub action: &'static str,
    /// The matched contact (none for a create or a contact an earlier row would create).
    pub contact_id: Option<u64>,
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RowError>,
}

/// Rows taken from the file at most beyond the oldest unfinished one: what the write phase (and
/// the reports, which write in file order) hold at once.
pub const WINDOW: usize = 4096;

/// What rows wait for each other on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Link {
    Key(Key),
    /// A stored contact one of the row's keys matched when it was taken.
    Contact(u64),
}

/// A row taken by the engine and not finished.
struct Node {
    links: Vec<Link>,
    /// Rows taken later that wait for this one.
    next: Vec<usize>,
    /// Earlier rows this one still waits for.
    waits: usize,
    /// The row, while it waits.
    row: Option<Row>,
}

/// The rows the engine holds, chained so that rows sharing a link run in file order: each link
/// remembers the latest row taken holding it, and a row waits for those rows.
#[derive(Default)]
struct Chains {
    tails: HashMap<Link, usize>,
    nodes: BTreeMap<usize, Node>,
    /// Rows that wait for nothing, by position (the oldest starts first).
    ready: BTreeMap<usize, Row>,
    /// Position of the latest row taken.
    last: usize,
}

impl Chains {
    /// Take `row` (the next in file order), chained on its keys and the stored contacts they
    /// match.
    fn add(&mut self, row: Row, known: &Known) {
        let mut links: Vec<Link> = Vec::new();
        for k in lookup::all_keys(&row.draft) {
            if let Some(c) = known.find(&k) {
                links.push(Link::Contact(c.id));
            }
            links.push(Link::Key(k));
        }
        let idx = row.idx;
        let mut waits = 0;
        for l in &links {
            if let Some(p) = self.tails.insert(l.clone(), idx)
                && p != idx
                && let Some(prev) = self.nodes.get_mut(&p)
                && !prev.next.contains(&idx)
            {
                prev.next.push(idx);
                waits += 1;
            }
        }
        let row = if waits == 0 {
            self.ready.insert(idx, row);
            None
        } else {
            Some(row)
        };
        let node = Node {
            links,
            next: Vec::new(),
            waits,
            row,
        };
        self.nodes.insert(idx, node);
        self.last = idx;
    }

    fn next_ready(&mut self) -> Option<Row> {
        self.ready.pop_first().map(|(_, r)| r)
    }

    /// Whether another row may be taken.
    fn has_room(&self) -> bool {
        self.nodes
            .first_key_value()
            .is_none_or(|(oldest, _)| self.last - oldest < WINDOW)
    }

    /// Row `idx` is done: the rows waiting for it only may start. Returns whether any waited.
    fn finish(&mut self, idx: usize) -> bool {
        let Some(node) = self.nodes.remove(&idx) else {
            return false;
        };
        for l in node.links {
            if self.tails.get(&l) == Some(&idx) {
                self.tails.remove(&l);
            }
        }
        for n in &node.next {
            if let Some(w) = self.nodes.get_mut(n) {
                w.waits -= 1;
                if w.waits == 0
                    && let Some(r) = w.row.take()
                {
                    self.ready.insert(*n, r);
                }
            }
        }
        !node.next.is_empty()
    }
}

/// The write phase's shared state.
pub struct Engine {
    pub client: Client,
    pub known: Mutex<Known>,
    journal: Option<GroupJournal>,
    ledger: Ledger,
    policy: Policy,
    dry_run: bool,
    max_errors: Option<u64>,
    failures: AtomicU64,
    stop: Mutex<Option<Stop>>,
    interrupt: Arc<AtomicBool>,
    fake_ids: AtomicU64,
    /// The notes each contact of the rows in flight carries (as far as the run knows: read
    /// once from the server, or none for a contact the run created, plus the notes added).
    carried: Mutex<HashMap<u64, Vec<String>>>,
    /// Rows with a phone that a later row of the file shares: line → the row's contact (so that
    /// the later row's `phone_in_use` names the row).
    phone_rows: Mutex<HashMap<u64, u64>>,
    /// `GET /contacts/{id}/notes` requests sent to know a contact's notes.
    note_checks: AtomicU64,
    /// Search slots, apart from the write slots: a row waiting for the (lower) search limit
    /// never holds a write slot.
    search_slots: Semaphore,
    /// Groups waiting for (or sending) a search, and the signal that one more does.
    searching: AtomicUsize,
    search_waits: Notify,
}

/// How a row's attempts went so far.
#[derive(Debug, Default)]
struct Tries {
    /// Writes sent again (key taken meanwhile, outcome unknown).
    attempts: u32,
    /// The server refused the row's phone as taken (a 422 naming only `phone_number`).
    phone_refused: bool,
    /// The warning of the write being sent (journaled with it).
    warning: Option<RowWarning>,
}

/// Settings of an [`Engine`].
pub struct EngineOptions {
    pub policy: Policy,
    pub dry_run: bool,
    pub max_errors: Option<u64>,
    /// Set from outside (Ctrl-C): no new row starts.
    pub interrupt: Arc<AtomicBool>,
    /// Searches in flight at most (writes take the client's [`crate::api::Limit`]).
    pub concurrency: usize,
}

impl Engine {
    pub fn new(
        client: Client,
        known: Known,
        journal: Option<Journal>,
        ledger: Ledger,
        opts: EngineOptions,
    ) -> Engine {
        Engine {
            client,
            known: Mutex::new(known),
            journal: journal.map(GroupJournal::start),
            ledger,
            policy: opts.policy,
            dry_run: opts.dry_run,
            max_errors: opts.max_errors,
            failures: AtomicU64::new(0),
            stop: Mutex::new(None),
            interrupt: opts.interrupt,
            fake_ids: AtomicU64::new(FAKE_ID_BASE),
            carried: Mutex::new(HashMap::new()),
            phone_rows: Mutex::new(HashMap::new()),
            note_checks: AtomicU64::new(0),
            search_slots: Semaphore::new(opts.concurrency.max(1)),
            searching: AtomicUsize::new(0),
            search_waits: Notify::new(),
        }
    }

    /// `GET /contacts/{id}/notes` requests the run sent to avoid adding a note twice.
    pub fn note_checks(&self) -> u64 {
        self.note_checks.load(Ordering::Relaxed)
    }

    /// Run `f` (a write, or a read that decides one) in a write slot: a slot of the client's
    /// [`crate::api::Limit`], fixed by `--concurrency N` or adapted.
    async fn in_write_slot<T>(&self, f: impl Future<Output = T>) -> T {
        self.client.limit().run(f).await
    }

    /// The contents of the notes contact `id` carries, asked of the server now (counted in
    /// [`Engine::note_checks`]). Rate-limited and retried like every read.
    async fn stored_notes(&self, id: u64) -> Result<Vec<String>, ApiError> {
        self.note_checks.fetch_add(1, Ordering::Relaxed);
        let notes = self.in_write_slot(self.client.contacts().notes(id)).await?;
        Ok(notes.into_iter().filter_map(|n| n.content).collect())
    }

    /// The id of the contact's newest note with this content, if it has one (settles a note
    /// whose outcome was unknown; the journal keeps the id for revert).
    async fn find_note(&self, id: u64, content: &str) -> Result<Option<u64>, String> {
        self.note_checks.fetch_add(1, Ordering::Relaxed);
        let notes = self.in_write_slot(self.client.contacts().notes(id)).await;
        let notes = notes.map_err(|e| e.to_string())?;
        let same = notes
            .iter()
            .filter(|n| n.content.as_deref() == Some(content));
        Ok(same.map(|n| n.id).max())
    }

    /// Why the run stopped, if it did (the first reason wins).
    pub fn stopped(&self) -> Option<Stop> {
        let mut s = self.stop.lock().unwrap();
        if self.interrupt.load(Ordering::Relaxed) {
            s.get_or_insert(Stop::Interrupted);
        }
        s.clone()
    }

    fn is_stopped(&self) -> bool {
        self.interrupt.load(Ordering::Relaxed) || self.stop.lock().unwrap().is_some()
    }

    /// The circuit breaker opened (the server has not answered for `--give-up-after`): the run
    /// stops, and the row that just failed gets no result.
    fn server_gone(&self) -> bool {
        match self.client.unreachable() {
            Some(m) => {
                self.halt(Stop::Unreachable(m));
                true
            }
            None => false,
        }
    }

    /// Stop starting rows, for `why` (unless the run already stopped for another reason).
    fn halt(&self, why: Stop) {
        self.stop.lock().unwrap().get_or_insert(why);
    }

    /// Apply the rows `rows` yields in file order; `done` gets each finished row (in completion
    /// order). A row starts once every earlier row sharing one of its keys, or a stored contact
    /// one of its keys matched, is done: rows sharing a key run in file order and never
    /// concurrently, the others concurrently. At most [`WINDOW`] rows are taken from `rows`
    /// beyond the oldest unfinished one, so memory does not grow with the file.
    pub async fn run_stream(
        &self,
        rows: impl futures::Stream<Item = Row>,
        done: impl FnMut(RowResult) -> Result<()>,
    ) {
        self.drive(rows, done).await
    }

    /// [`Engine::run_stream`]'s loop. Up to twice the client limit's ceiling of rows are busy
    /// at a time, and a row waiting for a search does not count
    /// (up to [`SEARCH_WAITERS`] of those): rows waiting for the search limit never keep the
    /// others from writing. Rows not started because the run stopped get no result; an error
    /// from `done` (a report cannot be written) stops the run as fatal, and `done` is not called
    /// again.
    async fn drive(
        &self,
        rows: impl futures::Stream<Item = Row>,
        mut done: impl FnMut(RowResult) -> Result<()>,
    ) {
        let busy_max = 2 * self.client.limit().ceiling();
        let mut rows = std::pin::pin!(rows.fuse());
        let mut chains = Chains::default();
        let mut running = FuturesUnordered::new();
        let (mut ended, mut failed) = (false, false);
        loop {
            while running.len() < busy_max + SEARCH_WAITERS
                && running.len() - self.searching.load(Ordering::Relaxed).min(running.len())
                    < busy_max
                && !self.is_stopped()
                && let Some(row) = chains.next_ready()
            {
                running.push(self.run_row(row));
            }
            let take = !ended && !self.is_stopped() && chains.has_room();
            if running.is_empty() && !take {
                break;
            }
            let (row, result) = tokio::select! {
                r = rows.next(), if take => {
                    match r {
                        Some(row) => chains.add(row, &self.known.lock().unwrap()),
                        None => ended = true,
                    }
                    continue;
                }
                Some(r) = running.next() => r,
                // A row began to wait for a search: another may start.
                () = self.search_waits.notified() => continue,
            };
            let later = chains.finish(row.idx);
            let Some(r) = result else { continue };
            self.forget(&row, &r, later);
            if !failed && let Err(e) = done(r) {
                self.halt(Stop::Fatal(format!("{e:#}")));
                failed = true;
            }
        }
    }

    /// One row, unless the run stopped; `None`: no result (the run stops there).
    async fn run_row(&self, row: Row) -> (Row, Option<RowResult>) {
        let r = match self.apply_row(&row).await {
            // The server stopped answering: the row is left for --resume.
            Ok(r) if r.outcome.is_failure() && self.server_gone() => None,
            Ok(r) => {
                if r.outcome.is_failure() {
                    let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                    if self.max_errors.is_some_and(|m| n > m) {
                        self.halt(Stop::MaxErrors);
                    }
                }
                Some(r)
            }
            Err(e) => {
                self.halt(Stop::Fatal(format!("{e:#}")));
                None
            }
        };
        (row, r)
    }

    /// Row `row` finished as `r`; `waited_on`: a row taken already waits for it. What no later
    /// row needs is forgotten: the notes known of its contact (unless a later row may write to
    /// it), and a contact it created (unless a later row of the file shares one of its keys),
    /// so that what the engine holds does not grow with the file. A row with a phone that a
    /// later row shares is remembered (its line and contact: 16 bytes) for the later row's
    /// `phone_in_use` warning.
    fn forget(&self, row: &Row, r: &RowResult, waited_on: bool) {
        if row.later
            && row.draft.phone_number.is_some()
            && let Some(id) = r.contact_id
        {
            self.phone_rows.lock().unwrap().insert(row.line, id);
        }
        if !waited_on
            && !row.later
            && let Some(id) = r.contact_id
        {
            self.carried.lock().unwrap().remove(&id);
        }
        if row.later || r.outcome != Outcome::Created {
            return;
        }
        let mut known = self.known.lock().unwrap();
        // A dry run's contact has a made-up id, which the result does not name.
        let id = r.contact_id.or_else(|| {
            let ids = row.keys.iter().filter_map(|k| known.find(k)).map(|c| c.id);
            ids.into_iter().find(|id| *id >= FAKE_ID_BASE)
        });
        if let Some(id) = id {
            known.remove(id);
        }
    }

    async fn record(&self, e: Entry) -> Result<()> {
        match &self.journal {
            Some(j) => j.record(e).await,
            None => Ok(()),
        }
    }

    /// Look the row's match keys up on the server now, and make [`Known`] say what it found.
    /// Returns whether one matched. Searches are the scarcest budget (100/min per account), so
    /// the keys are asked in the mapping's order and the first match ends it.
    async fn refresh(&self, row: &Row) -> Result<bool, ApiError> {
        self.searching.fetch_add(1, Ordering::Relaxed);
        self.search_waits.notify_one();
        let found = self.search_keys(row).await;
        self.searching.fetch_sub(1, Ordering::Relaxed);
        found
    }

    /// [`Engine::refresh`]'s searches, in a search slot.
    async fn search_keys(&self, row: &Row) -> Result<bool, ApiError> {
        let _slot = self.search_slots.acquire().await.expect("never closed");
        for k in &row.keys {
            let found = lookup::fetch(&self.client, k).await?;
            let mut known = self.known.lock().unwrap();
            match found {
                Some(c) => {
                    known.insert(c);
                    return Ok(true);
                }
                None => known.forget_key(k),
            }
        }
        Ok(false)
    }

    /// What the row does now, and the warning on its phone if another contact holds it
    /// (`phone_refused`: the server said so).
    fn decide(&self, row: &Row, phone_refused: bool) -> (Action, Option<RowWarning>) {
        let known = self.known.lock().unwrap();
        let action = plan::decide(&row.draft, &row.keys, &known, self.policy);
        let rows = self.phone_rows.lock().unwrap();
        let row_of = |h| row.phone_of.filter(|l| rows.get(l) == Some(&h));
        let refused = (phone_refused, &row_of as &dyn Fn(u64) -> Option<u64>);
        plan::phone_in_use(action, &row.draft, &known, self.policy, refused)
    }

    /// Decide and apply one row: decide from what is known, write, and decide again after a
    /// write whose key was taken meanwhile or whose outcome is unknown (at most
    /// [`MAX_ATTEMPTS`] times).
    async fn apply_row(&self, row: &Row) -> Result<RowResult> {
        let state = self.ledger.row(row.line, &row.hash).cloned();
        if let Some(s) = &state
            && s.done
        {
            let outcome = s.outcome.or(s.intent).unwrap_or(Outcome::Unchanged);
            let mut r = result(row, outcome, s.contact_id, vec![]);
            r.warnings.clone_from(&s.warnings);
            return Ok(r);
        }
        if self.dry_run {
            return Ok(self.simulate(row));
        }
        let earlier = Earlier::of(state.unwrap_or_default());
        let mut begun = earlier.in_flight;
        let mut tries = Tries::default();
        loop {
            let (action, warning) = self.decide(row, tries.phone_refused);
            tries.warning.clone_from(&warning);
            if !begun && !row.draft.notes.is_empty() {
                begun = self.begin(row, &action).await?;
            }
            let settled = match action {
                Action::Skip { id, reason } => {
                    Some(result(row, Outcome::Skipped, id, vec![reason]))
                }
                Action::Fail { id, error } => Some(result(row, Outcome::Failed, id, vec![error])),
                Action::Unchanged { id } => Some(self.unchanged(row, id, &earlier).await?),
                Action::Create(new) => self.create(row, &new, &earlier, &mut tries).await?,
                Action::Update { id, patch, changes } => {
                    let update = (id, &patch, changes.as_slice());
                    self.update(row, update, &earlier, &mut tries).await?
                }
            };
            if let Some(mut r) = settled {
                r.warnings.extend(warning);
                return Ok(r);
            }
        }
    }

    /// Journal `begin` before the first write of a row with notes (so that after a kill its
    /// notes are checked before any is sent again); returns whether it did.
    async fn begin(&self, row: &Row, action: &Action) -> Result<bool> {
        let intent = match action {
            Action::Create(_) => Op::Create,
            Action::Update { .. } => Op::Update,
            _ => return Ok(false),
        };
        let mut e = Entry::new(row.line, &row.hash, Op::Begin);
        e.intent = Some(intent);
        self.record(e).await?;
        Ok(true)
    }

    /// The row already equals contact `id`: unchanged, or the outcome of an earlier run's write
    /// (whose notes are then finished).
    async fn unchanged(&self, row: &Row, id: u64, earlier: &Earlier) -> Result<RowResult> {
        if let Some((o, _)) = earlier.write {
            return self.notes(row, id, o, earlier).await;
        }
        if earlier.in_flight {
            // The earlier run's write landed but its line did not.
            let o = earlier.intent.unwrap_or(Outcome::Unchanged);
            return self.notes(row, id, o, earlier).await;
        }
        Ok(result(row, Outcome::Unchanged, Some(id), vec![]))
    }

    /// Send the create; `None`: decide again (the key was taken meanwhile, or the outcome is
    /// unknown and the contact is not there as the row wants it).
    async fn create(
        &self,
        row: &Row,
        new: &NewContact,
        earlier: &Earlier,
        tries: &mut Tries,
    ) -> Result<Option<RowResult>> {
        let err = match self.in_write_slot(self.client.contacts().create(new)).await {
            Ok(c) => {
                let id = c.id;
                self.known.lock().unwrap().insert(c);
                // A contact just created carries no note.
                self.carried.lock().unwrap().insert(id, Vec::new());
                return self.created(row, id, earlier, tries).await.map(Some);
            }
            // Only the phone is taken: sent again without it, no search (it would not help).
            Err(err) if is_phone_taken(&err) && !tries.phone_refused => {
                tries.phone_refused = true;
                return Ok(None);
            }
            Err(err) if is_taken(&err) || err.is_outcome_unknown() => err,
            Err(err) => return Ok(Some(self.api_failure(row, None, &err))),
        };
        tries.attempts += 1;
        if tries.attempts > MAX_ATTEMPTS {
            return Ok(Some(self.api_failure(row, None, &err)));
        }
        let found = match self.refresh(row).await {
            Ok(f) => f,
            Err(e) => return Ok(Some(self.api_failure(row, None, &e))),
        };
        if is_taken(&err) && !found {
            // Taken by a field we do not match on (e.g. the phone): a real refusal.
            return Ok(Some(self.api_failure(row, None, &err)));
        }
        // Our create went through if the contact now equals the row.
        if err.is_outcome_unknown()
            && found
            && let (Action::Unchanged { id }, _) = self.decide(row, tries.phone_refused)
        {
            return self.created(row, id, earlier, tries).await.map(Some);
        }
        Ok(None)
    }

    /// Contact `id` was created for the row: journal it, then its notes.
    async fn created(
        &self,
        row: &Row,
        id: u64,
        earlier: &Earlier,
        tries: &Tries,
    ) -> Result<RowResult> {
        let mut e = Entry::new(row.line, &row.hash, Op::Create);
        e.contact_id = Some(id);
        e.warnings.extend(tries.warning.clone());
        e.done = row.draft.notes.is_empty();
        self.record(e).await?;
        self.notes(row, id, Outcome::Created, earlier).await
    }

    /// Send the update (`id`, patch, the changes it makes); `None`: send it again (the same
    /// PATCH twice is harmless) after deciding again.
    async fn update(
        &self,
        row: &Row,
        (id, patch, changes): (u64, &ContactPatch, &[Change]),
        earlier: &Earlier,
        tries: &mut Tries,
    ) -> Result<Option<RowResult>> {
        match self
            .in_write_slot(self.client.contacts().update(id, patch))
            .await
        {
            Ok(c) => {
                self.known.lock().unwrap().insert(c);
                let mut e = Entry::new(row.line, &row.hash, Op::Update);
                e.contact_id = Some(id);
                let (before, after) = split_changes(changes);
                e.before = Some(before);
                e.after = Some(after);
                e.warnings.extend(tries.warning.clone());
                e.done = row.draft.notes.is_empty();
                self.record(e).await?;
                let o = earlier.write.map_or(Outcome::Updated, |(o, _)| o);
                self.notes(row, id, o, earlier).await.map(Some)
            }
            Err(err) if is_phone_taken(&err) && !tries.phone_refused => {
                tries.phone_refused = true;
                Ok(None)
            }
            Err(err) if err.is_outcome_unknown() || err.is_retryable() => {
                tries.attempts += 1;
                if tries.attempts > MAX_ATTEMPTS {
                    return Ok(Some(self.api_failure(row, Some(id), &err)));
                }
                Ok(None)
            }
            Err(err) => Ok(Some(self.api_failure(row, Some(id), &err))),
        }
    }

    /// Add the row's notes to contact `id` (those an earlier run did not journal, and those the
    /// contact does not carry already: notes once), then mark the row done.
    async fn notes(
        &self,
        row: &Row,
        id: u64,
        outcome: Outcome,
        earlier: &Earlier,
    ) -> Result<RowResult> {
        if row.draft.notes.is_empty() {
            return Ok(result(row, outcome, Some(id), vec![]));
        }
        let carried = match self.carried_notes(id).await {
            Ok(c) => c,
            Err(e) => return Ok(self.api_failure(row, Some(id), &e)),
        };
        let mut carried: BTreeSet<&str> = carried.iter().map(String::as_str).collect();
        for (n, content) in row.draft.notes.iter().enumerate() {
            if earlier.notes.contains(&n) || !carried.insert(content) {
                continue;
            }
            if let Some(failed) = self.add_note(row, id, n, content).await? {
                return Ok(failed);
            }
        }
        let mut e = Entry::new(row.line, &row.hash, Op::Done);
        e.contact_id = Some(id);
        self.record(e).await?;
        Ok(result(row, outcome, Some(id), vec![]))
    }

    /// The notes contact `id` carries: known to the run (it created the contact, or read them
    /// already), else read from the server once.
    async fn carried_notes(&self, id: u64) -> Result<Vec<String>, ApiError> {
        if let Some(c) = self.carried.lock().unwrap().get(&id) {
            return Ok(c.clone());
        }
        let stored = self.stored_notes(id).await?;
        self.carried.lock().unwrap().insert(id, stored.clone());
        Ok(stored)
    }

    /// Add note number `n` to contact `id` and journal it (with the note's id); `Some`: the row
    /// failed there. A note whose outcome is unknown is checked on the server before it is sent
    /// again.
    async fn add_note(
        &self,
        row: &Row,
        id: u64,
        n: usize,
        content: &str,
    ) -> Result<Option<RowResult>> {
        let mut check_first = false;
        let mut attempts = 0u32;
        let note_id = loop {
            if check_first {
                match self.find_note(id, content).await {
                    Ok(Some(note_id)) => break Some(note_id),
                    Ok(None) => {}
                    Err(msg) => return Ok(Some(unchecked_note(row, id, n, &msg))),
                }
            }
            let add = self.client.contacts().add_note(id, content);
            match self.in_write_slot(add).await {
                Ok(note) => break Some(note.id),
                Err(e) if e.is_outcome_unknown() || e.is_retryable() => {
                    attempts += 1;
                    if attempts > MAX_ATTEMPTS {
                        return Ok(Some(self.api_failure(row, Some(id), &e)));
                    }
                    check_first = e.is_outcome_unknown();
                }
                Err(e) => return Ok(Some(self.api_failure(row, Some(id), &e))),
            }
        };
        if let Some(c) = self.carried.lock().unwrap().get_mut(&id) {
            c.push(content.to_owned());
        }
        let mut e = Entry::new(row.line, &row.hash, Op::Note);
        e.contact_id = Some(id);
        e.note = Some(n);
        e.note_id = note_id;
        self.record(e).await?;
        Ok(None)
    }

    fn api_failure(&self, row: &Row, id: Option<u64>, err: &ApiError) -> RowResult {
        if matches!(
            err,
            ApiError::Unauthorized { .. } | ApiError::Forbidden { .. }
        ) {
            self.halt(Stop::Fatal(err.to_string()));
        }
        let field = match err {
            ApiError::Rejected { attributes, .. } => attributes.first().map(String::as_str),
            _ => None,
        };
        let message = match err {
            ApiError::Rejected { message, .. } => format!("the server refused it: {message}"),
            other => other.to_string(),
        };
        result(
            row,
            Outcome::Failed,
            id,
            vec![RowError::new(err.error_code(), field, message)],
        )
    }

    /// Dry run: decide, assume the write succeeded, and say so in the plan.
    fn simulate(&self, row: &Row) -> RowResult {
        let (action, warning) = self.decide(row, false);
        let real = |id: u64| (id < FAKE_ID_BASE).then_some(id);
        let (outcome, id, changes, errors) = match &action {
            Action::Create(new) => {
                let fake = self.fake_ids.fetch_add(1, Ordering::Relaxed);
                let c = plan::created(fake, new);
                let empty = plan::created(fake, &Default::default());
                let (_, changes) = plan::diff(&row.draft, &empty);
                self.known.lock().unwrap().insert(c);
                (Outcome::Created, None, changes, vec![])
            }
            Action::Update { id, patch, changes } => {
                let mut known = self.known.lock().unwrap();
                if let Some(c) = known.get(*id).cloned() {
                    known.insert(plan::apply_patch(&c, patch));
                }
                (Outcome::Updated, real(*id), changes.clone(), vec![])
            }
            Action::Unchanged { id } => (Outcome::Unchanged, real(*id), vec![], vec![]),
            Action::Skip { id, reason } => (
                Outcome::Skipped,
                id.and_then(real),
                vec![],
                vec![reason.clone()],
            ),
            Action::Fail { id, error } => (
                Outcome::Failed,
                id.and_then(real),
                vec![],
                vec![error.clone()],
            ),
        };
        let writes = matches!(outcome, Outcome::Created | Outcome::Updated);
        let plan = PlanLine {
            row: row.line,
            action: action.name(),
            contact_id: id,
            key: row.keys.first().map(Key::label),
            changes,
            notes: if writes {
                row.draft.notes.clone()
            } else {
                vec![]
            },
            error: errors.first().cloned(),
        };
        RowResult {
            idx: row.idx,
            outcome,
            contact_id: id,
            errors,
            warnings: warning.into_iter().collect(),
            plan: Some(plan),
        }
    }
}

/// What an earlier run (`--resume`) did for a row not finished.
#[derive(Debug, Default)]
struct Earlier {
    /// The row was in flight when that run stopped.
    in_flight: bool,
    /// The outcome of its create or update, with the contact.
    write: Option<(Outcome, u64)>,
    /// What its `begin` line said it was about to do.
    intent: Option<Outcome>,
    /// Notes it added (by number).
    notes: BTreeSet<usize>,
}

impl Earlier {
    fn of(s: RowState) -> Earlier {
        Earlier {
            in_flight: s.begun,
            write: s.outcome.zip(s.contact_id),
            intent: s.intent,
            notes: s.notes,
        }
    }
}

/// Note `n` may have been added to contact `id`, and it could not be checked (`why`): not sent
/// again, the row fails.
fn unchecked_note(row: &Row, id: u64, n: usize, why: &str) -> RowResult {
    let error = RowError::new(
        ErrorCode::OutcomeUnknown,
        Some("notes"),
        format!(
            "note {} on contact {id} may have been added; it could not be checked ({why}), so it \
             was not sent again",
            n + 1
        ),
    );
    result(row, Outcome::Failed, Some(id), vec![error])
}

fn result(row: &Row, outcome: Outcome, id: Option<u64>, errors: Vec<RowError>) -> RowResult {
    RowResult {
        idx: row.idx,
        outcome,
        contact_id: id,
        errors,
        warnings: vec![],
        plan: None,
    }
}

/// A 422 saying a unique key is taken (someone created the contact meanwhile).
fn is_taken(e: &ApiError) -> bool {
    matches!(e, ApiError::Rejected { status: 422, message, .. } if message.contains("has already been taken"))
}

/// A 422 naming only the phone, as taken (phones are unique, but no match key).
fn is_phone_taken(e: &ApiError) -> bool {
    matches!(e, ApiError::Rejected { status: 422, message, attributes, .. }
        if !attributes.is_empty()
            && attributes.iter().all(|a| a == "phone_number")
            && message.contains("has already been taken"))
}

fn split_changes(changes: &[Change]) -> (Map<String, Value>, Map<String, Value>) {
    let mut before = Map::new();
    let mut after = Map::new();
    for c in changes {
        before.insert(c.field.clone(), c.before.clone());
        after.insert(c.field.clone(), c.after.clone());
    }
    (before, after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalise::{Email, Identifier};

    fn row(idx: usize, email: Option<&str>, ident: Option<&str>) -> Row {
        let draft = ContactDraft {
            name: Some(format!("r{idx}")),
            email: email.map(|e| Email::parse(e).unwrap()),
            identifier: ident.map(|i| Identifier::parse(i).unwrap().unwrap()),
            ..ContactDraft::default()
        };
        Row {
            idx,
            line: idx as u64 + 2,
            hash: String::new(),
            keys: lookup::all_keys(&draft),
            draft,
            later: true,
            phone_of: None,
        }
    }

    /// A stored contact 9 with email s@x.com and identifier S.
    fn known_9() -> Known {
        let mut known = Known::new();
        let c = serde_json::json!({"id": 9, "email": "s@x.com", "identifier": "S"});
        known.insert(serde_json::from_value(c).unwrap());
        known
    }

    #[test]
    fn chained_rows_start_only_when_every_earlier_row_sharing_a_link_is_done() {
        let known = known_9();
        let mut c = Chains::default();
        let rows = [
            row(0, Some("a@x.com"), Some("A")),
            row(1, Some("b@x.com"), None),
            row(2, Some("c@x.com"), Some("A")), // waits for 0
            row(3, Some("s@x.com"), None),      // contact 9
            row(4, Some("a@x.com"), Some("S")), // waits for 0 (a@x.com) and 3 (contact 9 by S)
        ];
        for r in rows {
            c.add(r, &known);
        }
        fn started(c: &mut Chains) -> Vec<usize> {
            std::iter::from_fn(|| c.next_ready().map(|r| r.idx)).collect()
        }
        assert_eq!(started(&mut c), [0, 1, 3]);
        assert!(c.finish(0), "row 2 waited for row 0");
        assert!(!c.finish(1));
        assert_eq!(started(&mut c), [2]);
        c.finish(2);
        assert_eq!(
            started(&mut c),
            Vec::<usize>::new(),
            "row 4 still waits for row 3"
        );
        c.finish(3);
        assert_eq!(started(&mut c), [4]);
        c.finish(4);
        assert!(c.tails.is_empty() && c.nodes.is_empty());
    }

    #[test]
    fn rows_sharing_a_key_or_a_matched_contact_form_one_chain_in_file_order() {
        let known = known_9();
        let rows = vec![
            row(0, Some("a@x.com"), Some("A")),
            row(1, Some("b@x.com"), None),
            row(2, None, Some("A")),            // shares A with row 0
            row(3, Some("s@x.com"), None),      // matches contact 9 by email
            row(4, Some("t@x.com"), Some("S")), // matches contact 9 by identifier
            row(5, Some("A@X.com"), Some("Z")), // shares a@x.com with row 0 (case-insensitive)
            row(6, Some("c@x.com"), Some("a")), // identifiers are case-sensitive: alone
        ];
        let mut c = Chains::default();
        for r in rows {
            c.add(r, &known);
        }
        let started = |c: &mut Chains| -> Vec<usize> {
            std::iter::from_fn(|| c.next_ready().map(|r| r.idx)).collect()
        };
        assert_eq!(started(&mut c), [0, 1, 3, 6]);
        c.finish(0);
        assert_eq!(started(&mut c), [2, 5]);
        c.finish(3);
        assert_eq!(started(&mut c), [4]);
    }
}
