//! The search index of one account: every contact's searchable text packed into two contiguous
//! buffers (lower-cased name, email and phone for the case-insensitive `ILIKE`; the identifier for
//! the case-sensitive `LIKE`), so a search is one SIMD substring scan over a few hundred kilobytes
//! instead of a pointer chase through every contact. Writes append (O(1)); an updated or deleted
//! contact's old entry is marked dead and the buffers are compacted when dead entries pile up.
use std::collections::HashMap;

use memchr::memmem::Finder;

/// Ends an entry in a buffer; separates fields inside an entry. Neither can be typed into `q`
/// usefully, and a query containing them takes the slow path.
const END: u8 = 0;
const SEP: char = '\u{1}';

#[derive(Default)]
pub struct SearchIndex {
    ci: Vec<u8>,
    cs: Vec<u8>,
    ci_starts: Vec<usize>,
    cs_starts: Vec<usize>,
    ids: Vec<u64>,
    live: Vec<bool>,
    pos: HashMap<u64, usize>,
    dead: usize,
}

/// What the index needs of a contact.
pub struct Entry<'a> {
    pub id: u64,
    /// Lower-cased name, email, phone.
    pub fields: [&'a str; 3],
    pub identifier: &'a str,
}

impl SearchIndex {
    pub fn len(&self) -> usize {
        self.ids.len() - self.dead
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Add or replace a contact's entry.
    pub fn put(&mut self, e: Entry<'_>) {
        self.remove(e.id);
        self.ci_starts.push(self.ci.len());
        for (i, f) in e.fields.iter().enumerate() {
            if i > 0 {
                self.ci.extend_from_slice(SEP.to_string().as_bytes());
            }
            self.ci.extend_from_slice(f.as_bytes());
        }
        self.ci.push(END);
        self.cs_starts.push(self.cs.len());
        self.cs.extend_from_slice(e.identifier.as_bytes());
        self.cs.push(END);
        self.pos.insert(e.id, self.ids.len());
        self.ids.push(e.id);
        self.live.push(true);
    }

    pub fn remove(&mut self, id: u64) {
        if let Some(i) = self.pos.remove(&id) {
            self.live[i] = false;
            self.dead += 1;
        }
    }

    /// Whether enough entries are dead that the caller should rebuild the index.
    pub fn wants_compaction(&self) -> bool {
        self.dead > 1024 && self.dead > self.ids.len() / 2
    }

    fn segment<'a>(buf: &'a [u8], starts: &[usize], i: usize) -> &'a [u8] {
        let s = starts[i];
        let end = buf[s..]
            .iter()
            .position(|&b| b == END)
            .map_or(buf.len(), |p| s + p);
        &buf[s..end]
    }

    /// Entries whose buffer contains `needle`, each once, in buffer order.
    fn scan(buf: &[u8], starts: &[usize], needle: &[u8], out: &mut Vec<usize>) {
        let finder = Finder::new(needle);
        let mut from = 0;
        while let Some(p) = finder.find(&buf[from..]) {
            let at = from + p;
            // The entry holding `at` is the last one starting at or before it.
            let i = starts.partition_point(|&s| s <= at) - 1;
            out.push(i);
            // Skip to the next entry: one hit per entry is enough.
            from = starts.get(i + 1).copied().unwrap_or(buf.len());
            if from >= buf.len() {
                break;
            }
        }
    }

    /// Ids of live entries where `ci_match` accepts one of the lower-cased fields or `cs_match`
    /// accepts the identifier. `ci_needle`/`cs_needle` are literal substrings every match must
    /// contain (a prefilter); `None` means "check every entry". With `exact`, the needles are the
    /// whole patterns and a needle hit is the answer (it cannot span a separator, which it never
    /// contains), so the matchers are not called.
    pub fn query(
        &self,
        ci_needle: Option<&str>,
        cs_needle: Option<&str>,
        exact: bool,
        ci_match: &dyn Fn(&str) -> bool,
        cs_match: &dyn Fn(&str) -> bool,
    ) -> Vec<u64> {
        let mut cand: Vec<usize> = Vec::new();
        match ci_needle {
            Some(n) if !n.is_empty() => {
                Self::scan(&self.ci, &self.ci_starts, n.as_bytes(), &mut cand)
            }
            _ => cand.extend(0..self.ids.len()),
        }
        let mut hits: Vec<usize> = cand
            .into_iter()
            .filter(|&i| self.live[i])
            .filter(|&i| {
                if exact && ci_needle.is_some() {
                    return true;
                }
                let seg =
                    std::str::from_utf8(Self::segment(&self.ci, &self.ci_starts, i)).unwrap_or("");
                seg.split(SEP).any(ci_match)
            })
            .collect();
        let mut cs_cand: Vec<usize> = Vec::new();
        match cs_needle {
            Some(n) if !n.is_empty() => {
                Self::scan(&self.cs, &self.cs_starts, n.as_bytes(), &mut cs_cand)
            }
            _ => cs_cand.extend(0..self.ids.len()),
        }
        hits.extend(cs_cand.into_iter().filter(|&i| self.live[i]).filter(|&i| {
            if exact && cs_needle.is_some() {
                return true;
            }
            let seg =
                std::str::from_utf8(Self::segment(&self.cs, &self.cs_starts, i)).unwrap_or("");
            cs_match(seg)
        }));
        let mut ids: Vec<u64> = hits.into_iter().map(|i| self.ids[i]).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(id: u64, name: &'a str, email: &'a str, ident: &'a str) -> Entry<'a> {
        Entry {
            id,
            fields: [name, email, ""],
            identifier: ident,
        }
    }

    #[test]
    fn finds_each_contact_once_and_forgets_replaced_entries() {
        let mut ix = SearchIndex::default();
        ix.put(entry(1, "jane jane", "jane@x.com", "J-1"));
        ix.put(entry(2, "bob", "bob@x.com", "jane"));
        ix.put(entry(3, "mary", "mary.jane@x.com", ""));
        let contains = |n: &'static str| move |s: &str| s.contains(n);
        assert_eq!(
            ix.query(
                Some("jane"),
                Some("jane"),
                false,
                &contains("jane"),
                &contains("jane")
            ),
            vec![1, 2, 3]
        );
        ix.put(entry(1, "june", "june@x.com", "J-1"));
        ix.remove(3);
        assert_eq!(
            ix.query(
                Some("jane"),
                Some("jane"),
                true,
                &contains("jane"),
                &contains("jane")
            ),
            vec![2]
        );
        assert_eq!(ix.len(), 2);
        // A match never spans two fields or two entries.
        assert!(
            ix.query(Some("x.combob"), None, true, &contains("x.combob"), &|_| {
                false
            })
            .is_empty()
        );
    }
}
