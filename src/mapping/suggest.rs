//! "Did you mean": the real header names closest to a column the mapping names but the file does
//! not have. Names are compared in a normalised spelling (case, spaces and punctuation ignored:
//! `Record ID` is `Record Id`, `E-mail` is `Email`), then ranked: the same name in another
//! spelling, then a header that starts with the name or is its start (`Person - Phone` →
//! `Person - Phone - Mobile`), then one that holds it or all of its words, then a small edit
//! distance (Levenshtein).

/// The header that is `wanted` written another way (case, spaces, punctuation: `Record Id` for
/// `Record ID`), if exactly one is.
pub fn same_spelling<'h>(wanted: &str, headers: &[&'h str]) -> Option<&'h str> {
    let w = normalised(wanted);
    if w.is_empty() {
        return None;
    }
    let mut same = headers.iter().filter(|h| normalised(h) == w);
    match (same.next(), same.next()) {
        (Some(h), None) => Some(*h),
        _ => None,
    }
}

/// How close a header is to the wanted name; lower is closer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Spelling,
    Prefix,
    Contains,
    Edits,
}

/// Up to `max` headers close to `wanted`, closest first.
pub fn closest<'h>(wanted: &str, headers: &'h [&'h str], max: usize) -> Vec<&'h str> {
    let w = normalised(wanted);
    let w_words = words(wanted);
    let mut scored: Vec<(Kind, usize, usize, &str)> = headers
        .iter()
        .enumerate()
        .filter_map(|(pos, h)| {
            let l = normalised(h);
            if l.is_empty() {
                return None;
            }
            let d = levenshtein(&w, &l);
            let kind = kind(&w, &l, d, &w_words, &words(h))?;
            Some((kind, d, pos, *h))
        })
        .collect();
    // By kind, then by distance, then in header order.
    scored.sort();
    scored.into_iter().take(max).map(|s| s.3).collect()
}

/// The kind of likeness of a header `l` (normalised) to the wanted `w`, if any.
fn kind(w: &str, l: &str, d: usize, w_words: &[String], l_words: &[String]) -> Option<Kind> {
    if w.is_empty() {
        return (d <= 2).then_some(Kind::Edits);
    }
    let all_in = |a: &[String], b: &[String]| !a.is_empty() && a.iter().all(|x| b.contains(x));
    if w == l {
        Some(Kind::Spelling)
    } else if l.starts_with(w) || w.starts_with(l) {
        Some(Kind::Prefix)
    } else if l.contains(w) || w.contains(l) || all_in(w_words, l_words) || all_in(l_words, w_words)
    {
        Some(Kind::Contains)
    } else {
        // Beyond about a third of the longer name, an edit distance says nothing useful.
        let limit = (w.chars().count().max(l.chars().count()) / 3).max(2);
        (d <= limit).then_some(Kind::Edits)
    }
}

/// Lower-case letters and digits only.
fn normalised(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The lower-case words of a name (runs of letters and digits).
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
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

    #[test]
    fn another_spelling_of_the_same_name_comes_first() {
        let h = ["Record", "Recorded", "Record Id", "Owner"];
        assert_eq!(closest("Record ID", &h, 1), ["Record Id"]);
        let h = ["Record ID", "Record Type"];
        assert_eq!(closest("Record Id", &h, 3)[0], "Record ID");
        let h = ["Zip Code", "Mailing Zip / Postal Code"];
        assert_eq!(
            closest("Mailing Zip/Postal Code", &h, 3)[0],
            "Mailing Zip / Postal Code"
        );
        let h = ["Fax", "mobile_phone"];
        assert_eq!(closest("Mobile Phone", &h, 3), ["mobile_phone"]);
    }

    /// The label-split columns of a Pipedrive export, asked for by the single column's name: the
    /// phones, not "Person - Name" (a few edits away, but not a phone).
    #[test]
    fn a_header_that_starts_with_the_name_beats_a_few_edits() {
        let h = [
            "Person - ID",
            "Person - Name",
            "Person - Email - Work",
            "Person - Phone - Work",
            "Person - Phone - Mobile",
        ];
        assert_eq!(
            closest("Person - Phone", &h, 3),
            ["Person - Phone - Work", "Person - Phone - Mobile"]
        );
        assert_eq!(closest("Person - Email", &h, 1), ["Person - Email - Work"]);
        // And the other way: a mapping naming a split column, a file with the single one.
        let h = ["Person - Name", "Person - Phone"];
        assert_eq!(
            closest("Person - Phone - Mobile", &h, 1),
            ["Person - Phone"]
        );
    }

    #[test]
    fn a_header_holding_every_word_of_the_name_is_close() {
        let h = ["Fax", "Phone Number (Mobile)", "Country"];
        assert_eq!(
            closest("Mobile Phone Number", &h, 3),
            ["Phone Number (Mobile)"]
        );
        let h = ["Mailing Country", "City"];
        assert_eq!(closest("Country", &h, 3), ["Mailing Country"]);
    }

    #[test]
    fn same_spelling_is_one_header_only() {
        let h = ["Record Id", "E-mail", "e mail", "City"];
        assert_eq!(same_spelling("Record ID", &h), Some("Record Id"));
        assert_eq!(same_spelling("Email", &h), None, "two headers: no guess");
        assert_eq!(same_spelling("Mailing City", &h), None);
        assert_eq!(same_spelling("-", &h), None);
    }

    #[test]
    fn punctuation_only_names_never_panic() {
        let h = ["-", "", "  ", "É"];
        assert!(closest("-", &h, 3).len() <= 3);
        assert!(closest("", &h, 3).len() <= 3);
    }
}
