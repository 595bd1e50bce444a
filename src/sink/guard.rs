//! The formula guard: a CSV cell that a spreadsheet would run as a formula (first character `=`,
//! `+`, `-`, `@`, or a TAB / CR that some spreadsheets strip before looking) gets a leading `'`,
//! which spreadsheets show as text. Real phone numbers (E.164: `+` and 2 to 15 digits, the first
//! 1-9) and signed numbers (`-12.5`, `+3`, `-1e3`) are left alone: they are data, not formulas, and
//! guarding them would break every phone column.
use std::borrow::Cow;

/// Whether `s` must be guarded.
pub fn needs_guard(s: &str) -> bool {
    match s.as_bytes().first() {
        Some(b'=' | b'@' | b'\t' | b'\r') => true,
        Some(b'+' | b'-') => !is_e164(s) && !is_signed_number(s),
        _ => false,
    }
}

/// `s`, with a leading `'` when a spreadsheet would read it as a formula.
pub fn guard(s: &str) -> Cow<'_, str> {
    if needs_guard(s) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// `+` then 2 to 15 digits, the first 1-9: what the server stores as a phone number.
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// `[+-]digits[.digits][(e|E)[+-]digits]`: a number with a sign, nothing a formula could hide in.
pub fn is_signed_number(s: &str) -> bool {
    let b = s.as_bytes();
    if !matches!(b.first(), Some(b'+' | b'-')) {
        return false;
    }
    let mut i = 1;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let int = digits(&mut i);
    let mut frac = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        frac = digits(&mut i);
    }
    if int + frac == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_guarded() {
        for s in [
            "=1+1",
            "=HYPERLINK(\"http://x\")",
            "@SUM(A1)",
            "+1+2",
            "-2+3",
            "+cmd|' /C calc'!A0",
            "\t=1",
            "\r=1",
            "-",
            "+",
            "+1 555 123 4567",
            "-1e",
            "--1",
        ] {
            assert!(needs_guard(s), "{s:?} should be guarded");
            assert_eq!(guard(s), format!("'{s}"));
        }
    }

    #[test]
    fn phones_numbers_and_plain_text_are_not() {
        for s in [
            "+14155552671",
            "+447911123456",
            "-12.5",
            "+3",
            "-1e3",
            "-0.25",
            "+.5",
            "+0123",
            "Jane",
            "",
            "a=b",
            "jane@example.com",
            "1+1",
        ] {
            assert!(!needs_guard(s), "{s:?} should not be guarded");
            assert_eq!(guard(s), s);
        }
    }
}
