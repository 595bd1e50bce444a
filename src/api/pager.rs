//! The one way through `GET /contacts` for everything that needs every contact (the listing
//! stream, the import's lookup index, export): [`ListRequest::pages`] fetches the pages of a pass
//! several at a time under the client's shared rate limit, hands them on in page order, each
//! contact once (dedupe by id), and each page with the server's total as it stood when that page
//! was served.
//!
//! The server has no tie-breaker and rows move between pages while contacts are created or
//! deleted, so one pass can skip contacts. One policy decides what then: a pass is *clean* when
//! the total held still from its first page to its last and at least that many distinct contacts
//! were seen. Otherwise the range where rows can have moved is read again (from before the first
//! page that saw a different total, widened by the pages in flight and by how far the writes can
//! have shifted rows, to the current end; the whole listing when the total held but contacts are
//! missing, or when there is no order), until a pass is clean or `max_passes` are spent. Then the
//! listing ends: with every counted contact seen the drift is left unrepaired
//! ([`Drift::repaired`] false); with fewer it fails with [`ApiError::Incomplete`].
use std::collections::HashSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use super::client::Client;
use super::contacts::{ListRequest, endpoint, fetch_list_page};
use super::error::ApiError;
use super::types::{Contact, PAGE_SIZE, Page};

/// Pages a slow consumer may leave waiting before the pager stops fetching.
const QUEUED_PAGES: usize = 4;
/// How long the first page of a listing is out before pages are guessed (see [`guesses`]).
const GUESS_AFTER: Duration = Duration::from_millis(100);

/// One page of the listing as the pager hands it on.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedPage {
    /// 1-based page number.
    pub number: u32,
    /// The server's total when this page was served (`meta.count`; the last known total when the
    /// server sent none).
    pub total: u64,
    /// The page's contacts not handed on before, in the page's order.
    pub contacts: Vec<Contact>,
    /// Distinct contacts handed on so far, these included.
    pub seen: u64,
}

/// Rows moving between pages while the listing ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// The total changed, or contacts went missing, during a pass.
    pub detected: bool,
    /// A re-fetch of the affected range ended with a stable total and every contact counted.
    pub repaired: bool,
    /// Re-fetch rounds made.
    pub rounds: u32,
    /// Pages fetched again.
    pub pages_refetched: u64,
    /// Contacts found only by the re-fetch.
    pub recovered: u64,
}

/// What a finished (or running) listing saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListSummary {
    /// Distinct contacts handed on.
    pub seen: u64,
    /// The server's total on the first page.
    pub total_start: Option<u64>,
    /// The server's total on the last page fetched.
    pub total: Option<u64>,
    /// Passes made: the first one and the re-fetch rounds.
    pub passes: u32,
    /// Pages fetched.
    pub pages: u64,
    /// Rows that repeated an id already handed on (pages overlapping), dropped.
    pub duplicates: u64,
    pub drift: Drift,
}

/// Why a listing stopped short: a page that could not be fetched (`page`), or paging that ended
/// without every contact the server counts (`page` is `None`, the source is
/// [`ApiError::Incomplete`]).
#[derive(Debug, thiserror::Error)]
#[error("listing contacts{}", page.map(|p| format!(", page {p}")).unwrap_or_default())]
pub struct ListError {
    pub page: Option<u32>,
    #[source]
    pub source: ApiError,
}

impl From<ListError> for ApiError {
    fn from(e: ListError) -> ApiError {
        e.source
    }
}

/// The pages of [`ListRequest::pages`]; [`PageStream::summary`] tells what the pager saw so far.
pub struct PageStream {
    rx: mpsc::Receiver<Result<ListedPage, ListError>>,
    summary: Arc<Mutex<ListSummary>>,
}

impl PageStream {
    pub fn summary(&self) -> ListSummary {
        self.summary.lock().unwrap().clone()
    }
}

impl Stream for PageStream {
    type Item = Result<ListedPage, ListError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// Lets a listing started with [`ListRequest::pages_on_hold`] go on past its first page.
pub struct Resume(oneshot::Sender<()>);

impl Resume {
    pub fn resume(self) {
        let _ = self.0.send(());
    }
}

impl ListRequest {
    /// Every page of the listing under the policy of this module (see the module doc). Pages are
    /// fetched by a task of their own, at most `QUEUED_PAGES` ahead of the consumer; dropping the
    /// stream stops it.
    pub fn pages(self) -> PageStream {
        self.start(None)
    }

    /// [`ListRequest::pages`] for a caller that decides on the first page whether it wants the
    /// rest: once page 1 has answered, no page it says exists is asked for until
    /// [`Resume::resume`] (the pages guessed meanwhile still arrive); dropping the `Resume` ends
    /// the listing there.
    pub fn pages_on_hold(self) -> (PageStream, Resume) {
        let (tx, rx) = oneshot::channel();
        (self.start(Some(rx)), Resume(tx))
    }

    fn start(self, hold: Option<oneshot::Receiver<()>>) -> PageStream {
        let summary = Arc::new(Mutex::new(ListSummary::default()));
        let (tx, rx) = mpsc::channel(QUEUED_PAGES);
        let pager = Pager {
            client: self.client.clone(),
            sort: None,
            concurrency: self.concurrency.map(|n| n.max(1)),
            max_passes: self
                .max_passes
                .unwrap_or(self.client.config().max_list_passes)
                .max(1),
            burst: self.guess_burst,
            hold,
            seen: HashSet::new(),
            total: 0,
            summary: summary.clone(),
            tx,
        };
        tokio::spawn(pager.run(self));
        PageStream { rx, summary }
    }
}

/// Why the pager stopped before the end.
enum Stop {
    /// The consumer dropped the stream.
    Gone,
    Failed(ListError),
}

impl From<ListError> for Stop {
    fn from(e: ListError) -> Stop {
        Stop::Failed(e)
    }
}

/// The totals one pass observed, by page, and how it ended.
#[derive(Default)]
struct Pass {
    /// `(page, total)` in page order.
    totals: Vec<(u32, u64)>,
    /// Contacts new in this pass.
    new: u64,
    /// The last page: its number, whether it was full, and the total it said (if it said one).
    last: Option<(u32, bool, Option<u64>)>,
}

impl Pass {
    fn first_total(&self) -> u64 {
        self.totals.first().map_or(0, |t| t.1)
    }
    fn last_total(&self) -> u64 {
        self.totals.last().map_or(0, |t| t.1)
    }
    fn stable(&self) -> bool {
        let f = self.first_total();
        self.totals.iter().all(|t| t.1 == f)
    }
    /// Whether rows lie past the last page fetched: it was full and the total says there are more
    /// (a total that is a multiple of 15 costs no request for an empty page), or it said no total.
    fn more_after(&self) -> Option<u32> {
        match self.last {
            Some((n, true, total)) if total.is_none_or(|t| t > u64::from(n) * PAGE_SIZE as u64) => {
                Some(n + 1)
            }
            _ => None,
        }
    }
}

fn pages_for(total: u64) -> u32 {
    total.div_ceil(PAGE_SIZE as u64).max(1) as u32
}

/// Where a pass that was not clean is read again from: before the first page that saw a different
/// total, back by the pages in flight with it (they may have been served in either state) and by
/// as many pages as the writes seen can have shifted rows (every change of the total, summed in
/// page order: an over-estimate when creates and deletes interleave, which only costs pages). When
/// the total held but contacts are missing, ties swapped across pages: from the first page.
fn repair_start(totals: &[(u32, u64)], concurrency: usize) -> u32 {
    let base = totals.first().map_or(0, |t| t.1);
    match totals.iter().position(|t| t.1 != base) {
        Some(i) => {
            let shift: u64 = totals.windows(2).map(|w| w[0].1.abs_diff(w[1].1)).sum();
            let back = 1 + concurrency as u64 + shift.div_ceil(PAGE_SIZE as u64);
            u64::from(totals[i].0).saturating_sub(back).max(1) as u32
        }
        None => 1,
    }
}

/// The producer behind [`PageStream`].
struct Pager {
    client: Client,
    /// The checked sort (`None`: the server's unstable order).
    sort: Option<String>,
    /// Pages at once when the listing fixed it; else the client's [`super::Limit`] decides.
    concurrency: Option<usize>,
    max_passes: u32,
    /// Guesses sent at once, and no others (see [`guesses`]); `None`: paced guesses.
    burst: Option<u32>,
    /// Wait for this once page 1 has answered (see [`ListRequest::pages_on_hold`]).
    hold: Option<oneshot::Receiver<()>>,
    seen: HashSet<u64>,
    /// The last total the server said.
    total: u64,
    summary: Arc<Mutex<ListSummary>>,
    tx: mpsc::Sender<Result<ListedPage, ListError>>,
}

impl Pager {
    /// Pages in flight at most now.
    fn in_flight(&self) -> usize {
        self.concurrency
            .unwrap_or_else(|| self.client.limit().current())
    }

    async fn run(mut self, req: ListRequest) {
        let result = match req.checked_sort() {
            Ok(sort) => {
                self.sort = sort;
                self.list(req.first).await
            }
            Err(e) => Err(Stop::Failed(ListError {
                page: None,
                source: e,
            })),
        };
        if let Err(Stop::Failed(e)) = result {
            let _ = self.tx.send(Err(e)).await;
        }
    }

    /// The first pass, then re-fetch rounds until a pass is clean or the passes are spent.
    async fn list(&mut self, first: Option<Page<Contact>>) -> Result<(), Stop> {
        let mut pass = Pass::default();
        match first {
            Some(page) => {
                self.accept(&mut pass, 1, page).await?;
                self.summary.lock().unwrap().total_start = Some(self.total);
                self.pass(&mut pass, 2, Some(pages_for(self.total))).await?;
            }
            None => self.pass(&mut pass, 1, None).await?,
        }
        let mut passes = 1;
        loop {
            let total = pass.last_total();
            let seen = self.seen.len() as u64;
            if self.settle(&pass, passes, seen) {
                return Ok(());
            }
            if passes >= self.max_passes {
                return self.give_up(seen, total);
            }
            let start = match self.sort {
                Some(_) => repair_start(&pass.totals, self.in_flight()),
                None => 1,
            };
            let end = pages_for(total).max(start);
            tracing::debug!(start, end, total, seen, "listing drifted, re-fetching");
            let before = self.summary.lock().unwrap().pages;
            pass = Pass::default();
            self.pass(&mut pass, start, Some(end)).await?;
            {
                let mut s = self.summary.lock().unwrap();
                s.drift.rounds += 1;
                s.drift.pages_refetched += s.pages - before;
                s.drift.recovered += pass.new;
            }
            passes += 1;
        }
    }

    /// Record the end of pass number `passes`; true when it was clean.
    fn settle(&self, pass: &Pass, passes: u32, seen: u64) -> bool {
        let clean = pass.stable() && seen >= pass.last_total();
        let mut s = self.summary.lock().unwrap();
        s.passes = passes;
        if clean {
            s.drift.repaired = s.drift.detected;
        } else {
            s.drift.detected = true;
        }
        clean
    }

    /// The passes are spent: fine when every counted contact was seen, else incomplete.
    fn give_up(&self, seen: u64, total: u64) -> Result<(), Stop> {
        if seen >= total {
            return Ok(());
        }
        Err(Stop::Failed(ListError {
            page: None,
            source: ApiError::Incomplete {
                endpoint: endpoint(&self.client, "GET", ""),
                seen,
                total,
            },
        }))
    }

    /// Pages `from..=to` several at once, handed on in page order, then on while the last page
    /// says there is more (contacts created meanwhile push rows past the planned end). `to`
    /// unknown (the first pass without page 1): page `from` says it (`total_start`); until it
    /// answers, more pages go on the chance that they exist (see [`guesses`]).
    async fn pass(&mut self, pass: &mut Pass, from: u32, to: Option<u32>) -> Result<(), Stop> {
        let (client, sort) = (self.client.clone(), self.sort.clone());
        let adaptive = self.concurrency.is_none();
        let width = self.concurrency.unwrap_or_else(|| client.limit().ceiling());
        let (end_tx, end) = watch::channel(to);
        let guess = match adaptive && client.limit().adapts() {
            true => Guess {
                most: self.burst.unwrap_or(width as u32),
                burst: self.burst.unwrap_or(0),
                after: GUESS_AFTER,
                pace: Duration::from_secs_f64(1.0 / client.metrics().rate.rate_per_sec.max(1e-3)),
            },
            false => Guess::NONE,
        };
        let mut pages = Box::pin(guesses(from, end, guess))
            .map(|(n, guessed)| {
                let (client, sort) = (client.clone(), sort.clone());
                async move {
                    let fetch = fetch_list_page(&client, sort.as_deref(), n);
                    // A guess goes outside the slots: the limit is sized by its first answer.
                    let page = match adaptive && !guessed {
                        true => client.limit().run(fetch).await,
                        false => fetch.await,
                    };
                    (n, page)
                }
            })
            .buffered(width);
        while let Some((n, page)) = pages.next().await {
            let page = page.map_err(|e| page_error(n, e))?;
            self.accept(pass, n, page).await?;
            if to.is_none() && n == from {
                self.summary.lock().unwrap().total_start = Some(self.total);
                if let Some(hold) = self.hold.take() {
                    hold.await.map_err(|_| Stop::Gone)?;
                }
                let _ = end_tx.send(Some(pages_for(self.total).max(from)));
            }
        }
        drop(pages);
        while let Some(n) = pass.more_after() {
            let page = self.fetch(n).await?;
            self.accept(pass, n, page).await?;
        }
        Ok(())
    }

    async fn fetch(&self, n: u32) -> Result<Page<Contact>, ListError> {
        fetch_list_page(&self.client, self.sort.as_deref(), n)
            .await
            .map_err(|e| page_error(n, e))
    }

    /// Note page `n` in the pass and the summary, and hand its new contacts on.
    async fn accept(&mut self, pass: &mut Pass, n: u32, page: Page<Contact>) -> Result<(), Stop> {
        self.total = page
            .count
            .unwrap_or(self.total.max(page.items.len() as u64));
        pass.totals.push((n, self.total));
        pass.last = Some((n, page.items.len() >= PAGE_SIZE, page.count));
        let before = page.items.len();
        let contacts: Vec<Contact> = page
            .items
            .into_iter()
            .filter(|c| self.seen.insert(c.id))
            .collect();
        pass.new += contacts.len() as u64;
        let seen = self.seen.len() as u64;
        {
            let mut s = self.summary.lock().unwrap();
            s.pages += 1;
            s.seen = seen;
            s.total = Some(self.total);
            s.duplicates += (before - contacts.len()) as u64;
        }
        let listed = ListedPage {
            number: n,
            total: self.total,
            contacts,
            seen,
        };
        self.tx.send(Ok(listed)).await.map_err(|_| Stop::Gone)
    }
}

/// How pages are guessed while the first page of a pass is out (see [`guesses`]).
#[derive(Debug, Clone, Copy)]
struct Guess {
    /// Guesses at most.
    most: u32,
    /// The first guesses sent at once.
    burst: u32,
    /// How long the first page is out before anything is guessed.
    after: Duration,
    /// The rate's pace, for the guesses after the burst.
    pace: Duration,
}

impl Guess {
    const NONE: Guess = Guess {
        most: 0,
        burst: 0,
        after: Duration::ZERO,
        pace: Duration::ZERO,
    };

    /// When guess number `i` (1-based) goes, after the first page went.
    fn at(&self, i: u32) -> Duration {
        match i <= self.burst {
            true => self.after,
            false => self.after + self.pace * (i - 1),
        }
    }
}

/// The page numbers of a pass from `from`, each with whether it is a guess: up to the end `end`
/// says; while it says nothing yet (the first page has not answered), once the first page has
/// been out for `after`, up to `most` more pages, guess number `i` at `after + (i - 1) × pace`
/// (the client's rate), the first `burst` of them at once. A paced guess past the end costs one
/// request that returns empty, but no time: while the first page is out the limiter would let
/// those permits lapse (its burst is full), and at the pace no more go than the round trip lets
/// lapse (rate × RTT), which at 1 s is most of a second of the run saved. The burst borrows
/// permits that the round trip gives back when it is long enough (rate × RTT of them); it serves
/// a caller that needs every page before it can go on (the import's index), whose listing then
/// takes one round trip instead of two. A first page back within `after` costs too little to be
/// worth a guess (nor does a small account then pay for empty pages).
fn guesses(
    from: u32,
    end: watch::Receiver<Option<u32>>,
    guess: Guess,
) -> impl Stream<Item = (u32, bool)> {
    let start = tokio::time::Instant::now();
    futures::stream::unfold((from, end), move |(n, mut end)| async move {
        loop {
            let known = *end.borrow_and_update();
            match known {
                Some(e) => return (n <= e).then_some(((n, false), (n + 1, end))),
                None if n == from => return Some(((n, true), (n + 1, end))),
                None if n - from <= guess.most => {
                    let at = start + guess.at(n - from);
                    let slept = tokio::select! {
                        () = tokio::time::sleep_until(at) => true,
                        r = end.changed() => match r {
                            Ok(()) => false,
                            Err(_) => return None,
                        },
                    };
                    if slept && end.borrow().is_none() {
                        return Some(((n, true), (n + 1, end)));
                    }
                }
                None => end.changed().await.ok()?,
            }
        }
    })
}

fn page_error(n: u32, source: ApiError) -> ListError {
    ListError {
        page: Some(n),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_total_that_held_but_fell_short_reads_again_from_the_first_page() {
        assert_eq!(repair_start(&[(1, 100), (2, 100), (3, 100)], 4), 1);
    }

    #[test]
    fn a_moving_total_reads_again_from_before_the_first_page_that_saw_it() {
        // Page 20 saw 30 contacts fewer: back by 1, by the 2 pages in flight and by 2 pages of
        // shift.
        let mut totals: Vec<(u32, u64)> = (1..20).map(|p| (p, 500)).collect();
        totals.extend((20..=30).map(|p| (p, 470)));
        assert_eq!(repair_start(&totals, 2), 15);
        // Near the start it cannot go below page 1.
        assert_eq!(repair_start(&[(1, 500), (2, 530)], 8), 1);
    }

    #[test]
    fn a_pass_is_stable_only_when_every_page_saw_the_same_total() {
        let mut p = Pass {
            totals: vec![(1, 30), (2, 30)],
            ..Pass::default()
        };
        assert!(p.stable());
        p.totals.push((3, 31));
        assert!(!p.stable());
        assert_eq!((p.first_total(), p.last_total()), (30, 31));
    }

    #[test]
    fn a_list_error_names_the_page_once_and_keeps_the_cause_as_its_source() {
        let e = anyhow::Error::new(page_error(
            40,
            ApiError::InvalidInput("page numbers start at 1".into()),
        ));
        assert_eq!(
            format!("{e:#}"),
            "listing contacts, page 40: invalid request: page numbers start at 1"
        );
    }

    #[tokio::test]
    async fn pages_are_guessed_at_the_pace_until_the_first_answer_says_where_the_end_is() {
        let pace = Duration::from_millis(2);
        let paced = |most| Guess {
            most,
            burst: 0,
            after: pace,
            pace,
        };
        type Guesses = Pin<Box<dyn Stream<Item = (u32, bool)> + Send>>;
        async fn next(s: &mut Guesses) -> Result<Option<(u32, bool)>, impl std::fmt::Debug> {
            tokio::time::timeout(Duration::from_millis(200), s.next()).await
        }
        // No guessing (fixed concurrency): the first page alone, then the pages the end says.
        let (tx, rx) = watch::channel(None);
        let mut s: Guesses = Box::pin(guesses(1, rx, paced(0)));
        assert_eq!(next(&mut s).await.unwrap(), Some((1, true)));
        assert!(
            next(&mut s).await.is_err(),
            "a guess went without a guess allowed"
        );
        tx.send(Some(3)).unwrap();
        assert_eq!(next(&mut s).await.unwrap(), Some((2, false)));
        assert_eq!(next(&mut s).await.unwrap(), Some((3, false)));
        assert_eq!(next(&mut s).await.unwrap(), None);
        // Three guesses at most, then it waits for the end; an end below them stops it.
        let (tx, rx) = watch::channel(None);
        let mut s: Guesses = Box::pin(guesses(5, rx, paced(3)));
        for n in 5..=8 {
            assert_eq!(next(&mut s).await.unwrap(), Some((n, true)));
        }
        assert!(next(&mut s).await.is_err(), "more than three guesses");
        tx.send(Some(6)).unwrap();
        assert_eq!(next(&mut s).await.unwrap(), None);
        // A known end: no guess at all.
        let (_tx, rx) = watch::channel(Some(2));
        let all: Vec<_> = guesses(1, rx, paced(3)).collect().await;
        assert_eq!(all, vec![(1, false), (2, false)]);
    }

    #[test]
    fn a_burst_sends_its_guesses_together_and_the_rest_keep_their_pace() {
        let g = Guess {
            most: 6,
            burst: 3,
            after: Duration::from_millis(100),
            pace: Duration::from_millis(20),
        };
        let at: Vec<u64> = (1..=6).map(|i| g.at(i).as_millis() as u64).collect();
        assert_eq!(at, vec![100, 100, 100, 160, 180, 200]);
        let paced = Guess { burst: 0, ..g };
        let at: Vec<u64> = (1..=3).map(|i| paced.at(i).as_millis() as u64).collect();
        assert_eq!(at, vec![100, 120, 140]);
    }

    #[test]
    fn only_a_full_last_page_below_the_total_asks_for_the_next() {
        let with = |last| Pass {
            last: Some(last),
            ..Pass::default()
        };
        assert_eq!(with((2, true, Some(30))).more_after(), None);
        assert_eq!(with((2, true, Some(31))).more_after(), Some(3));
        assert_eq!(with((2, false, Some(99))).more_after(), None);
        assert_eq!(with((2, true, None)).more_after(), Some(3));
    }
}
