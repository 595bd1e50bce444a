//! "Did you mean": the real header names closest to a column the mapping names but the file does
//! not have. Case-insensitive Levenshtein distance; a header that contains the name (or is
//! contained in it) counts as close whatever its length.

/// Up to `max` headers close to `wanted`, closest first.
pub fn closest<'h>(wanted: &str, headers: &'h [&'h str], max: usize) -> Vec<&'h str> {
    let w = wanted.trim().to_lowercase();
    let mut scored: Vec<(bool, usize, usize, &str)> = headers
        .iter()
        .enumerate()
        .filter_map(|(pos, h)| {
            let l = h.trim().to_lowercase();
            if l.is_empty() {
                return None;
            }
            let d = levenshtein(&w, &l);
            let contains = !w.is_empty() && (l.contains(&w) || w.contains(&l));
            // Beyond about a third of the longer name, an edit distance says nothing useful.
            let limit = (w.chars().count().max(l.chars().count()) / 3).max(2);
            (d <= limit || contains).then_some((d > limit, d, pos, *h))
        })
        .collect();
    // Within the limit first, then by distance, then in header order.
    scored.sort();
    scored.into_iter().take(max).map(|s| s.3).collect()
}

/// Edit distance in characters (insert, delete, substitute).
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("same", "same"), 0);
    }

    #[test]
    fn closest_ignores_case_and_ranks_by_distance() {
        let h = ["First Name", "Last Name", "E-mail", "Phone", "Company"];
        assert_eq!(closest("email", &h, 3), ["E-mail"]);
        assert_eq!(closest("first name", &h, 3)[0], "First Name");
        // "Last Name" is one edit closer to "name" than "First Name".
        assert_eq!(closest("Name", &h, 3), ["Last Name", "First Name"]);
        assert!(closest("zzzzzzzz", &h, 3).is_empty());
    }
}
