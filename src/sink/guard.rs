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

/// Whether [`guard`] puts a `'` before `s`: a spreadsheet would read it as a formula, or it is
/// such a value behind `'`s of its own (`'=x`), so that [`unguard`] can tell a guard from a `'`
/// that was there (`'=x` is written `''=x` and read back `'=x`; `'Jane` stays `'Jane`).
fn guarded(s: &str) -> bool {
    needs_guard(s.trim_start_matches('\''))
}

/// `s`, with a leading `'` when a spreadsheet would read it as a formula (see [`guarded`]).
pub fn guard(s: &str) -> Cow<'_, str> {
    if guarded(s) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// `s` without the `'` that [`guard`] put before it (a cell of a report or an export fed back as
/// input): exactly the inverse of [`guard`] on whatever it wrote.
pub fn unguard(s: &str) -> &str {
    match s.strip_prefix('\'') {
        Some(rest) if guarded(s) => rest,
        _ => s,
    }
}

/// A value that starts like a spreadsheet formula, for a `formula_like` warning: one that
/// [`needs_guard`] guards, less what is only data-like: a lone sign, phone-shaped text after a
/// sign (`+44 20 7946 0958`, `-(555) 123`), and `@` with no call in it (`@handle`).
pub fn formula_like(s: &str) -> bool {
    if !needs_guard(s) {
        return false;
    }
    let rest = s[1..].trim();
    match s.as_bytes()[0] {
        b'=' => !rest.is_empty(),
        b'@' => rest.contains('('),
        b'+' | b'-' => {
            !rest.is_empty()
                && !rest
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b" -.()/".contains(&b))
        }
        // A TAB or CR first: what follows decides.
        _ => formula_like(rest),
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
    fn formula_like_flags_formulas_not_phones_signs_or_handles() {
        for s in [
            "=HYPERLINK(\"http://x\")",
            "=1+1",
            "@SUM(A1)",
            "+cmd|' /C calc'!A0",
            "-2+3",
            "- Tom",
            "\t=1",
        ] {
            assert!(formula_like(s), "{s:?} should be formula-like");
        }
        for s in [
            "+44 20 7946 0958",
            "-",
            "+",
            "=",
            "@jane",
            "-(555) 123",
            "Jane",
            "-12.5",
        ] {
            assert!(!formula_like(s), "{s:?} should not be formula-like");
        }
    }

    #[test]
    fn unguard_removes_only_the_guard() {
        for s in [
            "=1+1",
            "@SUM(A1)",
            "+cmd",
            "-",
            "Jane",
            "'Jane",
            "O'Brien",
            "+14155552671",
        ] {
            assert_eq!(unguard(&guard(s)), s);
        }
        assert_eq!(unguard("'Connor"), "'Connor");
        // A `'` of the value's own before a formula sign survives the round trip.
        for s in ["'=1+1", "''@x", "'+cmd", "'", "''"] {
            assert_eq!(unguard(&guard(s)), s, "{s:?}");
        }
        assert_eq!(guard("'=1"), "''=1");
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
