//! Identifiers and the checks every text value goes through: mojibake and invisible characters.
//!
//! Decisions (documented in `benches/README.md`, Normalisation):
//! - Whitespace at the ends of a value (NBSP included, a copy from a web page) is trimmed by the
//!   parsers; `check_text` only looks inside.
//! - Refused everywhere (`InvisibleCharacters`): control characters other than tab, CR and LF,
//!   zero-width space U+200B, word joiner and invisible operators U+2060–U+2064, BOM U+FEFF, soft
//!   hyphen U+00AD, the bidi marks and controls (U+200E/F, U+061C, U+202A–U+202E, U+2066–U+2069:
//!   they reorder what is displayed). They make two equal-looking values differ.
//! - Allowed in free text, refused in emails, phones and identifiers: ZWNJ/ZWJ (U+200C/D), which
//!   Persian and Indic names and emoji need, and NBSP inside the text (French typography).
//! - Mojibake (`JosÃ©`, `MÃ¼ller`, `Itâ€™s`): UTF-8 that was decoded as Windows-1252 or Latin-1.
//!   Detected as a run of characters that, mapped back to their Windows-1252 bytes, form one valid
//!   multi-byte UTF-8 sequence: a lead `Â`–`ô` followed by continuation-byte characters, which are
//!   all symbols or C1 controls (`€`, `™`, `©`, `¼`, NBSP, …), so real words rarely produce it.
use serde::Serialize;

use crate::model::{ErrorCode, Field, Repair, RowError};

/// The text inside Excel's text wrapper `="…"` (what a CSV written for Excel puts around a value
/// to keep it text: leading zeros, long digits), when `s` is one and holds no other quote.
pub(crate) fn excel_text(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("=\"")?.strip_suffix('"')?;
    (!inner.contains('"')).then_some(inner)
}

const FIELD: &str = Field::Identifier.as_str();

/// A non-empty, case-sensitive external identifier of at most 255 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Identifier(String);

impl Identifier {
    /// An empty or blank identifier is absent (`Ok(None)`): the server crashes on two empty ones.
    /// Surrounding whitespace is trimmed; case is kept (the server compares identifiers
    /// case-sensitively); invisible characters inside are refused.
    pub fn parse(raw: &str) -> Result<Option<Identifier>, RowError> {
        let s = raw.trim();
        if s.is_empty() {
            return Ok(None);
        }
        if let Some(c) = s.chars().find(|&c| is_invisible(c) || is_joiner(c)) {
            return Err(invisible(FIELD, raw, c));
        }
        let n = s.chars().count();
        if n > 255 {
            return Err(RowError::new(
                ErrorCode::TooLong,
                Some(FIELD),
                format!("identifier is {n} characters long (at most 255)"),
            ));
        }
        Ok(Some(Identifier(s.to_owned())))
    }

    /// [`Identifier::parse`], and Excel's text wrapper taken off (`="00123"`, which a CSV
    /// written for Excel uses to keep leading zeros): the text inside is the identifier, reported
    /// as a repair (`IdentifierCleaned`).
    pub fn read(raw: &str) -> Result<Option<(Identifier, Vec<Repair>)>, RowError> {
        let Some(inner) = excel_text(raw.trim()) else {
            return Ok(Identifier::parse(raw)?.map(|i| (i, Vec::new())));
        };
        let Some(id) = Identifier::parse(inner)? else {
            return Ok(None);
        };
        let msg = format!("{raw:?} read as {inner:?}: removed the spreadsheet text wrapper =\"…\"");
        Ok(Some((
            id,
            vec![Repair::new(ErrorCode::IdentifierCleaned, msg)],
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Refuse text that a spreadsheet or an encoding round trip damaged: mojibake (`JosÃ©`) and
/// invisible or control characters. `column` names the source column (it becomes the error's
/// field and leads the message).
pub fn check_text(column: &str, value: &str) -> Result<(), RowError> {
    if let Some(c) = value.chars().find(|&c| is_invisible(c)) {
        return Err(invisible(column, value, c));
    }
    if let Some((bad, good)) = find_mojibake(value) {
        return Err(RowError::new(
            ErrorCode::Mojibake,
            Some(column),
            format!(
                "column {column:?}: {value:?} is mojibake ({bad:?} is {good:?} read in the wrong \
                 encoding); fix the file's encoding and export again"
            ),
        ));
    }
    Ok(())
}

fn invisible(column: &str, value: &str, c: char) -> RowError {
    RowError::new(
        ErrorCode::InvisibleCharacters,
        Some(column),
        format!(
            "column {column:?}: {value:?} contains the invisible character U+{:04X}",
            c as u32
        ),
    )
}

/// Characters refused inside any value (see the module doc).
pub(crate) fn is_invisible(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// Zero-width (non-)joiners: legitimate in text, never in an address or a key.
pub(crate) fn is_joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

/// The Windows-1252 byte a character came from, when it is one that a UTF-8 continuation byte
/// (0x80–0xBF) decodes to (Latin-1 C1 controls and symbols, and Windows-1252's 0x80–0x9F).
fn continuation_byte(c: char) -> Option<u8> {
    let b = match c {
        '\u{80}'..='\u{BF}' => c as u32 as u8,
        '€' => 0x80,
        '‚' => 0x82,
        'ƒ' => 0x83,
        '„' => 0x84,
        '…' => 0x85,
        '†' => 0x86,
        '‡' => 0x87,
        'ˆ' => 0x88,
        '‰' => 0x89,
        'Š' => 0x8A,
        '‹' => 0x8B,
        'Œ' => 0x8C,
        'Ž' => 0x8E,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '•' => 0x95,
        '–' => 0x96,
        '—' => 0x97,
        '˜' => 0x98,
        '™' => 0x99,
        'š' => 0x9A,
        '›' => 0x9B,
        'œ' => 0x9C,
        'ž' => 0x9E,
        'Ÿ' => 0x9F,
        _ => return None,
    };
    Some(b)
}

/// The first mojibake sequence in `s` and what it was meant to be.
pub(crate) fn find_mojibake(s: &str) -> Option<(String, char)> {
    let chars: Vec<char> = s.chars().collect();
    for (i, &lead) in chars.iter().enumerate() {
        let need = match lead as u32 {
            0xC2..=0xDF => 1,
            0xE0..=0xEF => 2,
            0xF0..=0xF4 => 3,
            _ => continue,
        };
        let Some(tail) = chars.get(i + 1..=i + need) else {
            continue;
        };
        let mut bytes = vec![lead as u32 as u8];
        if !tail.iter().all(|&c| match continuation_byte(c) {
            Some(b) => {
                bytes.push(b);
                true
            }
            None => false,
        }) {
            continue;
        }
        if let Ok(good) = std::str::from_utf8(&bytes)
            && let Some(g) = good.chars().next()
        {
            return Some((chars[i..=i + need].iter().collect(), g));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excel_text_wrapped_ids_lose_the_wrapper_with_a_repair() {
        let (id, reps) = Identifier::read(" =\"00123\" ").unwrap().unwrap();
        assert_eq!((id.as_str(), reps.len()), ("00123", 1));
        assert_eq!(reps[0].code, ErrorCode::IdentifierCleaned);
        let (id, reps) = Identifier::read("=00123").unwrap().unwrap();
        assert_eq!((id.as_str(), reps.len()), ("=00123", 0));
        assert_eq!(Identifier::read("=\"\"").unwrap(), None);
        assert_eq!(excel_text("=\"a\"b\""), None);
    }

    #[test]
    fn mojibake_maps_back_to_the_intended_character() {
        assert_eq!(find_mojibake("JosÃ©"), Some(("Ã©".into(), 'é')));
        assert_eq!(find_mojibake("Itâ€™s"), Some(("â€™".into(), '’')));
        assert_eq!(find_mojibake("MÃ¼ller"), Some(("Ã¼".into(), 'ü')));
        assert_eq!(find_mojibake("José Müller, Ærøskøbing, « Zoë »"), None);
    }
}
