//! Paging every contact of the account once, in a stable order, under the client's shared rate
//! limit: the first page's `meta.count` says how many pages there are; the rest are fetched several
//! at a time (in page order, so the output keeps the sort order); each contact is handed on once
//! (dedupe by id). The server has no tie-breaker and pages move while contacts are created or
//! deleted, so every page's `meta.count` is recorded: when it changed during the pass, or fewer
//! distinct contacts were seen than the total, the affected range (from just before the first page
//! that saw the change, widened by how far rows can have shifted, to the current end) is fetched
//! again, until a round sees a total that holds still from its first page to its last.
//!
//! Built on `ListRequest::page(n)`: the client's own `stream()` does whole passes and does not say
//! which pages drifted, which an export has to record in its manifest.
use std::collections::HashSet;

use futures::StreamExt;

use crate::api::{ApiError, Client, Contact, PAGE_SIZE};
use crate::sink::manifest::Drift;

/// Repair rounds after the first pass before giving up.
pub const MAX_REPAIR_ROUNDS: u32 = 6;

/// What the paging saw.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    pub total_start: u64,
    pub total_end: u64,
    pub pages_fetched: u64,
    pub duplicates: u64,
    pub drift: Drift,
    /// Ids handed on, in order.
    pub ids: Vec<u64>,
}

struct State<'f> {
    seen: HashSet<u64>,
    out: Fetched,
    sink: &'f mut dyn FnMut(Contact) -> anyhow::Result<()>,
    progress: &'f dyn Fn(u64, u64),
}

/// The counts one round observed, by page.
struct Round {
    /// `(page, meta.count)` in page order.
    counts: Vec<(u32, u64)>,
    /// Contacts that were new in this round.
    new: u64,
}

impl Round {
    fn first_count(&self) -> u64 {
        self.counts.first().map(|c| c.1).unwrap_or(0)
    }
    fn last_count(&self) -> u64 {
        self.counts.last().map(|c| c.1).unwrap_or(0)
    }
    fn stable(&self) -> bool {
        let f = self.first_count();
        self.counts.iter().all(|c| c.1 == f)
    }
}

fn pages_for(total: u64) -> u32 {
    total.div_ceil(PAGE_SIZE as u64).max(1) as u32
}

impl State<'_> {
    fn accept(&mut self, items: Vec<Contact>) -> anyhow::Result<u64> {
        let mut new = 0;
        for c in items {
            if self.seen.insert(c.id) {
                self.out.ids.push(c.id);
                new += 1;
                (self.sink)(c)?;
            } else {
                self.out.duplicates += 1;
            }
        }
        Ok(new)
    }

    /// Fetch pages `from..=to` (several at once, handed on in page order), then on while the last
    /// page is full (contacts created meanwhile push rows past the planned end).
    async fn round(
        &mut self,
        client: &Client,
        sort: &str,
        concurrency: usize,
        from: u32,
        to: u32,
    ) -> anyhow::Result<Round> {
        let list = client.contacts().list().sort(sort);
        let mut round = Round {
            counts: vec![],
            new: 0,
        };
        let mut last_len = 0;
        let mut last_count = 0;
        let mut stream = futures::stream::iter(from..=to)
            .map(|p| {
                let list = &list;
                async move { (p, list.page(p).await) }
            })
            .buffered(concurrency.max(1));
        while let Some((p, page)) = stream.next().await {
            let page = page.map_err(|e| page_error(p, e))?;
            self.out.pages_fetched += 1;
            let count = page.count.unwrap_or(0);
            round.counts.push((p, count));
            last_len = page.items.len();
            last_count = count;
            round.new += self.accept(page.items)?;
            (self.progress)(self.seen.len() as u64, count.max(self.seen.len() as u64));
        }
        drop(stream);
        // Only while the server's total says there is more: a total that is a multiple of 15
        // costs no extra request for an empty page.
        let mut p = to;
        while last_len >= PAGE_SIZE && last_count > u64::from(p) * PAGE_SIZE as u64 {
            p += 1;
            let page = list.page(p).await.map_err(|e| page_error(p, e))?;
            self.out.pages_fetched += 1;
            last_count = page.count.unwrap_or(0);
            round.counts.push((p, last_count));
            last_len = page.items.len();
            round.new += self.accept(page.items)?;
        }
        Ok(round)
    }
}

fn page_error(p: u32, e: ApiError) -> anyhow::Error {
    anyhow::Error::new(e).context(format!("listing contacts, page {p}"))
}

/// Page through every contact with `sort`, handing each new one to `sink`; `progress(seen,
/// total)` after every page.
pub async fn fetch_all(
    client: &Client,
    sort: &str,
    concurrency: usize,
    sink: &mut dyn FnMut(Contact) -> anyhow::Result<()>,
    progress: &dyn Fn(u64, u64),
) -> anyhow::Result<Fetched> {
    let mut st = State {
        seen: HashSet::new(),
        out: Fetched::default(),
        sink,
        progress,
    };
    let list = client.contacts().list().sort(sort);
    let first = list.page(1).await.map_err(|e| page_error(1, e))?;
    st.out.pages_fetched += 1;
    let t0 = first.count.unwrap_or(first.items.len() as u64);
    st.out.total_start = t0;
    st.accept(first.items)?;
    progress(st.seen.len() as u64, t0);
    let mut round = if pages_for(t0) > 1 {
        st.round(client, sort, concurrency, 2, pages_for(t0).max(2))
            .await?
    } else {
        Round {
            counts: vec![],
            new: 0,
        }
    };
    round.counts.insert(0, (1, t0));
    let mut rounds = 0;
    loop {
        let total = round.last_count();
        let clean = round.stable() && st.seen.len() as u64 >= total;
        if clean {
            st.out.total_end = total;
            if st.out.drift.detected {
                st.out.drift.repaired = true;
            }
            return Ok(st.out);
        }
        st.out.drift.detected = true;
        if rounds == MAX_REPAIR_ROUNDS {
            st.out.total_end = total;
            let seen = st.seen.len() as u64;
            if seen < total {
                anyhow::bail!(
                    "the listing kept moving: {seen} distinct contacts seen but the server \
                     counts {total} after {rounds} re-fetch rounds (sort {sort:?}); nothing was written"
                );
            }
            return Ok(st.out);
        }
        rounds += 1;
        // Where rows can have moved: from the first page that saw a different total, back by the
        // pages in flight with it (they may have been served in either state) and by as many pages
        // as the writes seen can have shifted rows (every change of the total, summed in page
        // order: an over-estimate when creates and deletes interleave, which only costs pages).
        let base = round.first_count();
        let start = match round.counts.iter().position(|c| c.1 != base) {
            Some(i) => {
                let shift: u64 = round
                    .counts
                    .windows(2)
                    .map(|w| w[0].1.abs_diff(w[1].1))
                    .sum();
                let back = 1 + concurrency as u64 + shift.div_ceil(PAGE_SIZE as u64);
                (round.counts[i].0 as u64).saturating_sub(back).max(1) as u32
            }
            // The total held but contacts are missing: ties swapped across pages; read it all.
            None => 1,
        };
        let end = pages_for(total).max(start);
        tracing::debug!(
            start,
            end,
            total,
            seen = st.seen.len(),
            "listing drifted, re-fetching"
        );
        let before = st.out.pages_fetched;
        round = st.round(client, sort, concurrency, start, end).await?;
        st.out.drift.rounds = rounds;
        st.out.drift.pages_refetched += st.out.pages_fetched - before;
        st.out.drift.recovered += round.new;
    }
}
