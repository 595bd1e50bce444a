//! Counted nouns in messages, right for every count: `1 row`, `2 rows`, `0 rows`.

/// `n` and `noun`, plural unless `n` is 1: `count(1, "other column")` is `1 other column`.
/// Nouns ending in `s`, `x`, `ch` or `sh` take `es`; a consonant and `y` take `ies`.
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    match n {
        1 => format!("1 {noun}"),
        _ => format!("{n} {}", plural(noun)),
    }
}

/// `one` when `n` is 1, else `many` (verbs and irregular words: `is`/`are`).
pub fn agree<'a>(n: impl Into<u64>, one: &'a str, many: &'a str) -> &'a str {
    if n.into() == 1 { one } else { many }
}

fn plural(noun: &str) -> String {
    let consonant_y =
        noun.ends_with('y') && !noun[..noun.len() - 1].ends_with(['a', 'e', 'i', 'o', 'u']);
    if consonant_y {
        format!("{}ies", &noun[..noun.len() - 1])
    } else if noun.ends_with(['s', 'x']) || noun.ends_with("ch") || noun.ends_with("sh") {
        format!("{noun}es")
    } else {
        format!("{noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singular_only_for_one() {
        assert_eq!(count(1u64, "other column"), "1 other column");
        assert_eq!(count(0u64, "row"), "0 rows");
        assert_eq!(count(2u64, "distinct key"), "2 distinct keys");
        assert_eq!(count(3u64, "entry"), "3 entries");
        assert_eq!(count(3u64, "day"), "3 days");
        assert_eq!(count(2u64, "match"), "2 matches");
        assert_eq!(agree(1u64, "is", "are"), "is");
        assert_eq!(agree(5u64, "is", "are"), "are");
    }
}
