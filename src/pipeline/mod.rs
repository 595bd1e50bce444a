//! The row pipeline shared by `validate` and `import`: a [`Source`] is read on one thread, its
//! records go in batches through a bounded channel to worker threads that run
//! [`Resolved::apply`], and [`MappedRows`] hands the results back **in file order** to the one
//! loop that owns the side effects (reports, progress, dedupe, later the API calls).
//!
//! Memory is flat in the number of rows: at most `window` batches are in flight between the
//! reader and the consumer, whatever the speed of each stage. In-file duplicate detection lives in
//! [`dupes`] and runs in the consumer, because "the earlier row" only means something in file order.
pub mod dupes;
pub mod engine;
pub mod import;
pub mod input;
pub mod journal;
pub mod lookup;
pub mod plan;
pub mod plan_review;
pub mod revert;
pub mod rundir;
pub mod undo;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::mapping::{ContactDraft, Resolved};
use crate::model::{ErrorCode, Outcome, RowError};
use crate::source::{ReadError, Record, RowIssue, Source};

/// How the pipeline spreads the work.
#[derive(Debug, Clone, Copy)]
pub struct PipelineOptions {
    /// Threads running the mapping; the reader and the consumer are extra.
    pub workers: usize,
    /// Records per batch: large enough that channel and lock costs vanish, small enough to stay
    /// a few hundred KiB.
    pub batch: usize,
    /// Batches in flight at most between the reader and the consumer (bounds memory).
    pub window: usize,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        PipelineOptions {
            workers,
            batch: 1024,
            // Enough that no worker waits for the reader or the consumer, few enough that the
            // rows in flight stay a few MiB.
            window: 2 * workers.max(1) + 2,
        }
    }
}

/// What mapping one row gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// Mapped and normalised: the contact the row wants.
    Valid(Box<ContactDraft>),
    /// Nothing to import and nothing wrong (a blank or delimiter-only row).
    Skipped(RowError),
    /// The row is bad: source damage, mapping or normalisation errors (all of them, in order).
    Invalid(Vec<RowError>),
}

/// One row of the file after mapping, with its fields as read (for `failures.csv`).
#[derive(Debug, Clone, PartialEq)]
pub struct MappedRow {
    /// Physical line (CSV) or sheet row (XLSX) where the row starts.
    pub line: u64,
    /// The fields exactly as read, in header order (ragged rows keep their own length).
    pub fields: Vec<String>,
    pub mapped: Mapped,
}

impl MappedRow {
    /// The row's errors (or the reason it was skipped); empty for a valid row.
    pub fn errors(&self) -> &[RowError] {
        match &self.mapped {
            Mapped::Valid(_) => &[],
            Mapped::Skipped(e) => std::slice::from_ref(e),
            Mapped::Invalid(errs) => errs,
        }
    }
}

/// Map one source item; a panic inside the mapping becomes an invalid row rather than a lost
/// batch (an error in one row is reported and the run goes on). A row whose spreadsheet error
/// cells (`#N/A`, …) are its only trouble is mapped too: those cells fail the fields built from
/// them, not the row.
pub fn map_one<M: RowMapper>(mapper: &M, item: Result<Record, RowIssue>) -> MappedRow {
    let (record, cell_errors) = match item {
        Ok(record) => (record, None),
        Err(issue) if issue.error.code == ErrorCode::CellError && !issue.raw.is_empty() => {
            let record = Record {
                line: issue.line,
                fields: issue.raw,
                numeric: Vec::new(),
            };
            (record, Some(issue.error))
        }
        Err(issue) => {
            return MappedRow {
                line: issue.line,
                fields: issue.raw,
                mapped: match issue.outcome {
                    Outcome::Skipped => Mapped::Skipped(issue.error),
                    _ => Mapped::Invalid(vec![issue.error]),
                },
            };
        }
    };
    let map = || match &cell_errors {
        None => mapper.map(&record),
        Some(why) => mapper.map_with_cell_errors(&record, why),
    };
    let mapped = match catch_unwind(AssertUnwindSafe(map)) {
        Ok(Ok(draft)) => Mapped::Valid(Box::new(draft)),
        Ok(Err(errors)) if errors.is_empty() => Mapped::Invalid(vec![RowError::new(
            ErrorCode::InvalidValue,
            None,
            "the mapping refused the row without saying why",
        )]),
        Ok(Err(errors)) => Mapped::Invalid(errors),
        Err(_) => Mapped::Invalid(vec![RowError::new(
            ErrorCode::InvalidValue,
            None,
            "internal error while mapping this row (a bug: please report it)",
        )]),
    };
    MappedRow {
        line: record.line,
        fields: record.fields,
        mapped,
    }
}

type Batch<T> = (u64, Vec<T>);

/// What the workers run on each record: [`Resolved`] in the product, a closure in tests.
/// Each worker gets its own clone, so the mapper only needs to be `Send`.
pub trait RowMapper: Clone + Send + 'static {
    fn map(&self, record: &Record) -> Result<ContactDraft, Vec<RowError>>;

    /// A row whose error cells (`why`, the source's `cell_error`) hold their error text: by
    /// default the row is invalid.
    fn map_with_cell_errors(
        &self,
        _record: &Record,
        why: &RowError,
    ) -> Result<ContactDraft, Vec<RowError>> {
        Err(vec![why.clone()])
    }
}

impl RowMapper for Resolved {
    fn map(&self, record: &Record) -> Result<ContactDraft, Vec<RowError>> {
        self.apply(record)
    }

    fn map_with_cell_errors(
        &self,
        record: &Record,
        _why: &RowError,
    ) -> Result<ContactDraft, Vec<RowError>> {
        self.apply_with_cell_errors(record)
    }
}

impl<F> RowMapper for F
where
    F: Fn(&Record) -> Result<ContactDraft, Vec<RowError>> + Clone + Send + 'static,
{
    fn map(&self, record: &Record) -> Result<ContactDraft, Vec<RowError>> {
        self(record)
    }
}

/// Start the pipeline on `source`; iterate the result to get every row, in file order.
/// Dropping the iterator early stops the threads.
pub fn map_rows<M: RowMapper>(
    source: Box<dyn Source>,
    mapper: M,
    opts: &PipelineOptions,
) -> MappedRows {
    map_rows_with(source, move |item| map_one(&mapper, item), opts)
}

/// [`map_rows`] with the whole per-row work of the worker threads given: `work` runs on the
/// workers, in parallel, and the iterator hands its results back in file order. A command uses
/// it to do on the workers what does not need file order (e.g. fingerprinting keys, dropping the
/// draft), so that the one ordered loop does as little as possible.
pub fn map_rows_with<T, F>(
    mut source: Box<dyn Source>,
    work: F,
    opts: &PipelineOptions,
) -> Ordered<T>
where
    T: Send + 'static,
    F: Fn(Result<Record, RowIssue>) -> T + Clone + Send + 'static,
{
    let workers = opts.workers.max(1);
    let batch_size = opts.batch.max(1);
    let window = opts.window.max(1);
    // A token per batch in flight: the reader sends one before each batch, the consumer takes
    // one back when it has handed out a whole batch. This bounds the reorder buffer too.
    let (window_tx, window_rx) = mpsc::sync_channel::<()>(window);
    let (in_tx, in_rx) = mpsc::sync_channel::<Batch<Result<Record, RowIssue>>>(window);
    let (out_tx, out_rx) = mpsc::channel::<Batch<T>>();
    let mut threads = Vec::with_capacity(workers + 1);
    let read_error = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&read_error);

    threads.push(
        std::thread::Builder::new()
            .name("doto-reader".into())
            .spawn(move || read_batches(&mut *source, batch_size, &window_tx, &in_tx, &slot))
            .expect("spawn reader thread"),
    );
    let in_rx = Arc::new(Mutex::new(in_rx));
    for i in 0..workers {
        let in_rx = Arc::clone(&in_rx);
        let out_tx = out_tx.clone();
        let work = work.clone();
        threads.push(
            std::thread::Builder::new()
                .name(format!("doto-map-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next batch.
                        let next = in_rx.lock().map(|rx| rx.recv());
                        let Ok(Ok((seq, items))) = next else { break };
                        let rows: Vec<T> = items.into_iter().map(&work).collect();
                        if out_tx.send((seq, rows)).is_err() {
                            break;
                        }
                    }
                })
                .expect("spawn mapping thread"),
        );
    }
    drop(out_tx);
    Ordered {
        out_rx: Some(out_rx),
        window_rx: Some(window_rx),
        pending: BTreeMap::new(),
        next_seq: 0,
        current: Vec::new().into_iter(),
        threads,
        read_error,
        exhausted: false,
    }
}

/// The reader thread: the source's items in batches; at its end, the source's read error (if
/// any) into `read_error`, before the last batch goes out.
fn read_batches(
    source: &mut dyn Source,
    batch_size: usize,
    window_tx: &SyncSender<()>,
    in_tx: &SyncSender<Batch<Result<Record, RowIssue>>>,
    read_error: &Mutex<Option<ReadError>>,
) {
    let mut seq = 0u64;
    loop {
        let batch: Vec<_> = (&mut *source).take(batch_size).collect();
        let last = batch.len() < batch_size;
        if last && let Some(e) = source.take_error() {
            *read_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        }
        if batch.is_empty() {
            return;
        }
        if window_tx.send(()).is_err() || in_tx.send((seq, batch)).is_err() {
            return; // the consumer stopped
        }
        seq += 1;
        if last {
            return;
        }
    }
}

/// The mapped rows of a file, in file order (see [`map_rows`]).
pub type MappedRows = Ordered<MappedRow>;

/// The workers' results, in file order (see [`map_rows_with`]).
pub struct Ordered<T> {
    out_rx: Option<Receiver<Batch<T>>>,
    window_rx: Option<Receiver<()>>,
    pending: BTreeMap<u64, Vec<T>>,
    next_seq: u64,
    current: std::vec::IntoIter<T>,
    threads: Vec<JoinHandle<()>>,
    read_error: Arc<Mutex<Option<ReadError>>>,
    /// The iterator returned `None`: every row read was handed out.
    exhausted: bool,
}

impl<T> Ordered<T> {
    /// Call after the last row: `Err` when reading stopped on an error before the end of the
    /// file (the rows handed out are all those before it). A caller that stopped early (Ctrl-C,
    /// `--max-errors`) gets `Ok`: what lies past its stop does not matter.
    pub fn finish(self) -> Result<(), ReadError> {
        if !self.exhausted {
            return Ok(());
        }
        let e = self
            .read_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        e.map_or(Ok(()), Err)
    }

    /// Wait for every thread; a panic in the reader (a bug in a source) is passed on, so a
    /// crashed read never looks like the end of the file.
    fn join(&mut self) {
        self.out_rx = None;
        self.window_rx = None;
        for t in self.threads.drain(..) {
            if let Err(panic) = t.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

impl<T> Iterator for Ordered<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        loop {
            if let Some(row) = self.current.next() {
                return Some(row);
            }
            let out_rx = self.out_rx.as_ref()?;
            if let Some(batch) = self.pending.remove(&self.next_seq) {
                self.next_seq += 1;
                if let Some(w) = &self.window_rx {
                    let _ = w.recv();
                }
                self.current = batch.into_iter();
                continue;
            }
            match out_rx.recv() {
                Ok((seq, rows)) => {
                    self.pending.insert(seq, rows);
                }
                Err(_) => {
                    // Every worker is gone: the file is done (or a thread died, checked here).
                    let missing = !self.pending.is_empty();
                    self.join();
                    self.exhausted = true;
                    assert!(!missing, "the row pipeline lost a batch");
                    return None;
                }
            }
        }
    }
}

impl<T> Drop for Ordered<T> {
    fn drop(&mut self) {
        // Closing the channels makes every thread return; do not re-panic while unwinding.
        self.out_rx = None;
        self.window_rx = None;
        if !std::thread::panicking() {
            for t in self.threads.drain(..) {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct VecSource {
        headers: Vec<String>,
        items: std::vec::IntoIter<Result<Record, RowIssue>>,
    }
    impl Iterator for VecSource {
        type Item = Result<Record, RowIssue>;
        fn next(&mut self) -> Option<Self::Item> {
            self.items.next()
        }
    }
    impl Source for VecSource {
        fn headers(&self) -> &[String] {
            &self.headers
        }
    }

    fn source(n: u64) -> Box<dyn Source> {
        let items: Vec<_> = (0..n)
            .map(|i| {
                if i % 7 == 3 {
                    Err(RowIssue {
                        line: i + 2,
                        raw: vec![],
                        outcome: Outcome::Skipped,
                        error: RowError::new(ErrorCode::RaggedRow, None, "blank"),
                    })
                } else {
                    Ok(Record {
                        line: i + 2,
                        fields: vec![format!("v{i}")],
                        numeric: vec![],
                    })
                }
            })
            .collect();
        Box::new(VecSource {
            headers: vec!["a".into()],
            items: items.into_iter(),
        })
    }

    /// [`source`]'s `n` items, then a read error at line `n + 2`.
    fn failing_source(n: u64) -> Box<dyn Source> {
        let mut src = source(n);
        let error = ReadError {
            file: "f.csv".into(),
            unit: "line",
            at: n + 2,
            cause: "I/O error".into(),
        };
        Box::new(FailingSource(
            src.by_ref().collect::<Vec<_>>().into_iter(),
            Some(error),
        ))
    }

    struct FailingSource(
        std::vec::IntoIter<Result<Record, RowIssue>>,
        Option<ReadError>,
    );
    impl Iterator for FailingSource {
        type Item = Result<Record, RowIssue>;
        fn next(&mut self) -> Option<Self::Item> {
            self.0.next()
        }
    }
    impl Source for FailingSource {
        fn headers(&self) -> &[String] {
            &[]
        }
        fn take_error(&mut self) -> Option<ReadError> {
            self.1.take()
        }
    }

    #[test]
    fn a_read_error_comes_after_every_row_read_before_it() {
        let opts = PipelineOptions {
            workers: 2,
            batch: 4,
            window: 2,
        };
        for n in [0, 3, 4, 9] {
            let mut rows = map_rows(failing_source(n), mapper, &opts);
            let lines: Vec<u64> = rows.by_ref().map(|r| r.line).collect();
            assert_eq!(lines, (2..n + 2).collect::<Vec<_>>());
            let e = rows.finish().expect_err("the read error");
            assert_eq!(e.at, n + 2);
        }
        // A consumer that stops early has nothing to report.
        let mut rows = map_rows(failing_source(9), mapper, &opts);
        assert!(rows.next().is_some());
        assert_eq!(rows.finish(), Ok(()));
        // A source read to its end without an error.
        let mut rows = map_rows(source(9), mapper, &opts);
        assert_eq!(rows.by_ref().count(), 9);
        assert_eq!(rows.finish(), Ok(()));
    }

    fn mapper(r: &Record) -> Result<ContactDraft, Vec<RowError>> {
        if r.fields[0].ends_with('5') {
            return Err(vec![RowError::new(ErrorCode::InvalidEmail, None, "x")]);
        }
        Ok(ContactDraft {
            name: Some(r.fields[0].clone()),
            ..ContactDraft::default()
        })
    }

    #[test]
    fn a_panicking_mapper_makes_an_invalid_row_not_a_lost_batch() {
        let opts = PipelineOptions {
            workers: 2,
            batch: 4,
            window: 2,
        };
        let m = |r: &Record| -> Result<ContactDraft, Vec<RowError>> {
            assert!(r.line != 9, "boom");
            Ok(ContactDraft::default())
        };
        let rows: Vec<MappedRow> = map_rows(source(20), m, &opts).collect();
        assert_eq!(rows.len(), 20);
        assert!(matches!(rows[7].mapped, Mapped::Invalid(_)));
        assert!(matches!(rows[8].mapped, Mapped::Valid(_)));
    }

    #[test]
    fn rows_come_back_in_file_order_with_many_small_batches() {
        let opts = PipelineOptions {
            workers: 3,
            batch: 5,
            window: 2,
        };
        // Records whose value ends in 5 are refused; issues stay skipped.
        let rows: Vec<MappedRow> = map_rows(source(1003), mapper, &opts).collect();
        assert_eq!(rows.len(), 1003);
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r.line, i as u64 + 2);
            let want = if i % 7 == 3 {
                "skipped"
            } else if i % 10 == 5 {
                "invalid"
            } else {
                "valid"
            };
            let got = match &r.mapped {
                Mapped::Valid(d) => {
                    assert_eq!(d.name.as_deref(), Some(format!("v{i}").as_str()));
                    "valid"
                }
                Mapped::Skipped(_) => "skipped",
                Mapped::Invalid(_) => "invalid",
            };
            assert_eq!(got, want, "row {i}");
        }
    }

    #[test]
    fn dropping_the_iterator_early_stops_the_threads() {
        let opts = PipelineOptions {
            workers: 2,
            batch: 3,
            window: 1,
        };
        let mut rows = map_rows(source(10_000), mapper, &opts);
        assert_eq!(rows.next().map(|r| r.line), Some(2));
        drop(rows); // must return, not hang
    }
}
