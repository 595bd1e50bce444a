//! Email addresses: trimmed, lower-cased, and held to what a mail system accepts.
//!
//! The `validator` crate accepts addresses no mail system delivers to (`a..b@x.com`, `.a@x.com`,
//! `a.@x.com`, `a@hotmail`), so the rules are spelled out here, after RFC 5321/5322 and Python's
//! `email-validator` 2.4 (which the differential test compares us with):
//! - one `@`, no whitespace (the server's own check), nothing invisible;
//! - local part: a dot-atom of ASCII `atext` (`a-z 0-9 ! # $ % & ' * + - / = ? ^ _ ` { | } ~`),
//!   no leading, trailing or doubled dot, at most 64 characters. Quoted local parts (`"a b"@x.com`)
//!   are refused: legal, but few systems route them. Non-ASCII local parts (`josé@x.com`) are
//!   refused: they need SMTPUTF8 end to end, which most mailboxes (Gmail, Outlook) do not offer.
//! - domain: at least two labels; each 1–63 letters, digits or hyphens, not starting or ending
//!   with a hyphen; the last label ends with a letter; no IP literals (`[192.0.2.1]`); not a
//!   special-use name (`localhost`, `.local`, `.test`, `.invalid`, `.onion`, `.arpa`).
//!   Internationalised domains (`bücher.de`) are accepted when IDNA (UTS 46, strict) converts them
//!   and every non-ASCII character is a letter or mark. The domain keeps the form it was given,
//!   lower-cased: a Unicode domain stays Unicode (NFC), a Punycode one (`xn--bcher-kva.de`, checked
//!   to decode to letters) stays Punycode, since the server matches addresses as text and a
//!   contact stored with one form is not found by the other. (email-validator's `normalized`
//!   shows `xn--` labels in Unicode: the differential test compares the two forms' Unicode.)
//! - the whole address (with the domain in ASCII) is at most 254 characters.
use serde::Serialize;

use super::values::{is_invisible, is_joiner};
use crate::model::{ErrorCode, Field, Repair, RowError};

const FIELD: &str = Field::Email.as_str();

/// A trimmed, lower-cased email address that a mail system would accept.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Email(String);

/// Domains that can never receive mail from the Internet (IANA special-use names).
const SPECIAL_USE: &[&str] = &["arpa", "invalid", "local", "localhost", "onion", "test"];

/// An email read from a cell, and what was repaired to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailRead {
    pub email: Email,
    pub repairs: Vec<Repair>,
}

impl Email {
    /// Parse a raw cell as written, with no repair (see [`Email::read`]).
    pub fn parse(raw: &str) -> Result<Email, RowError> {
        Self::parse_exact(raw)
    }

    /// Read a raw cell. A value that is not an address as written but holds exactly one is
    /// repaired, and the repair returned (`EmailRepaired`, naming what was removed; the caller
    /// reports it with the original): a `mailto:` link (its `?subject=…` too), a display name
    /// with the address in angle brackets (`Ann Lee <ann@x.com>`, `<ann@x.com>`), a dot ending
    /// the domain (`ann@x.com.`: the DNS root), fullwidth characters typed with an Asian input
    /// method (`ann＠x．com`). Anything else, or a repair that is still not an address, is the
    /// error for the value as written.
    pub fn read(raw: &str) -> Result<EmailRead, RowError> {
        let err = match Self::parse_exact(raw) {
            Ok(email) => {
                return Ok(EmailRead {
                    email,
                    repairs: Vec::new(),
                });
            }
            Err(e) => e,
        };
        let Some((fixed, what)) = repair(raw.trim()) else {
            return Err(err);
        };
        let email = Self::parse_exact(&fixed).map_err(|_| err)?;
        let message = format!(
            "{raw:?} read as {:?}: removed {}",
            email.0,
            what.join(" and ")
        );
        Ok(EmailRead {
            email,
            repairs: vec![Repair::new(ErrorCode::EmailRepaired, message)],
        })
    }

    fn parse_exact(raw: &str) -> Result<Email, RowError> {
        let bad = |why: &str| {
            RowError::new(
                ErrorCode::InvalidEmail,
                Some(FIELD),
                format!("{raw:?} is not a valid email address ({why})"),
            )
        };
        let s = raw.trim_matches(char::is_whitespace);
        if s.is_empty() {
            return Err(bad("empty"));
        }
        if let Some(c) = s
            .chars()
            .find(|&c| is_invisible(c) || is_joiner(c) || (c.is_whitespace() && !c.is_ascii()))
        {
            return Err(RowError::new(
                ErrorCode::InvisibleCharacters,
                Some(FIELD),
                format!(
                    "{raw:?} contains the invisible character U+{:04X}",
                    c as u32
                ),
            ));
        }
        let s = s.to_lowercase();
        if s.contains(char::is_whitespace) {
            return Err(bad("contains a space"));
        }
        let Some((local, domain)) = s.split_once('@') else {
            return Err(bad("no '@'"));
        };
        if domain.contains('@') {
            return Err(bad("more than one '@'"));
        }
        check_local(local).map_err(|w| bad(&w))?;
        let (ascii, shown) = check_domain(domain).map_err(|w| bad(&w))?;
        if local.len() + 1 + ascii.len() > 254 {
            return Err(bad("longer than 254 characters"));
        }
        Ok(Email(format!("{local}@{shown}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The one address `s` holds when it is written in one of the forms [`Email::read`] repairs,
/// and what was taken away; `None` when it is in none of them.
fn repair(s: &str) -> Option<(String, Vec<&'static str>)> {
    let mut what = Vec::new();
    let mut s = s.to_owned();
    if s.contains(|c| matches!(c, '\u{FF01}'..='\u{FF5E}' | '\u{3002}')) {
        s = s.chars().map(halfwidth).collect();
        what.push("fullwidth characters (read as their ASCII forms)");
    }
    if let Some(open) = s.rfind('<')
        && s.ends_with('>')
        && s.matches('<').count() == 1
    {
        let named = !s[..open].trim().is_empty();
        s = s[open + 1..s.len() - 1].trim().to_owned();
        what.push(if !named {
            "the angle brackets"
        } else {
            "the display name and angle brackets"
        });
    }
    if s.get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("mailto:"))
    {
        s = s[7..].trim().to_owned();
        if let Some(q) = s.find('?') {
            s.truncate(q);
        }
        what.push("the \"mailto:\" link prefix");
    }
    if s.ends_with('.') && !s.ends_with("..") && s.contains('@') {
        s.pop();
        what.push("the dot ending the domain");
    }
    (!what.is_empty()).then_some((s, what))
}

/// A fullwidth ASCII form (`＠`, `．`, `ａ`) as its ASCII character; the ideographic full stop
/// `。` as `.`.
fn halfwidth(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3002}' => '.',
        c => c,
    }
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

fn check_local(local: &str) -> Result<(), String> {
    if local.is_empty() {
        return Err("nothing before the '@'".into());
    }
    if local.starts_with('"') {
        return Err("quoted local parts are not accepted".into());
    }
    if !local.is_ascii() {
        return Err("non-ASCII characters before the '@': most mail systems refuse them".into());
    }
    if local.len() > 64 {
        return Err("more than 64 characters before the '@'".into());
    }
    if local.starts_with('.') || local.ends_with('.') {
        return Err("a dot at the start or end of the part before the '@'".into());
    }
    if local.contains("..") {
        return Err("two dots in a row".into());
    }
    if let Some(c) = local.chars().find(|&c| c != '.' && !is_atext(c)) {
        return Err(format!("{c:?} before the '@'"));
    }
    Ok(())
}

/// Returns (ASCII form, form to keep).
fn check_domain(domain: &str) -> Result<(String, String), String> {
    if domain.is_empty() {
        return Err("nothing after the '@'".into());
    }
    if domain.starts_with('[') {
        return Err("IP address domains are not accepted".into());
    }
    if domain.len() > 253 {
        return Err("domain longer than 253 characters".into());
    }
    let ascii = if domain.is_ascii() {
        domain.to_owned()
    } else {
        if let Some(c) = domain
            .chars()
            .find(|&c| !c.is_ascii() && !c.is_alphabetic() && !is_mark(c))
        {
            return Err(format!("{c:?} in the domain"));
        }
        idna::domain_to_ascii_strict(domain)
            .map_err(|_| "the domain is not a valid internationalised name".to_owned())?
    };
    check_ascii_domain(&ascii)?;
    if !ascii.split('.').any(|l| l.starts_with("xn--")) {
        return Ok((ascii.clone(), ascii));
    }
    let (u, r) = idna::domain_to_unicode(&ascii);
    r.map_err(|_| "the domain is not valid IDNA".to_owned())?;
    if u.chars()
        .any(|c| !c.is_ascii() && !c.is_alphabetic() && !is_mark(c))
    {
        return Err("the domain decodes to symbols".into());
    }
    // Kept in the form it was given (Punycode stays Punycode): the server compares addresses as
    // text, and a contact stored as `xn--bcher-kva.example` must be found by the same text.
    let shown = if domain.is_ascii() { ascii.clone() } else { u };
    Ok((ascii, shown))
}

fn check_ascii_domain(d: &str) -> Result<(), String> {
    if d.len() > 253 {
        return Err("domain longer than 253 characters".into());
    }
    let labels: Vec<&str> = d.split('.').collect();
    if labels.len() < 2 {
        return Err("no top-level domain".into());
    }
    for l in &labels {
        if l.is_empty() {
            return Err(
                "an empty label in the domain (a dot at the start or end, or two in a row)".into(),
            );
        }
        if l.len() > 63 {
            return Err("a domain label longer than 63 characters".into());
        }
        if let Some(c) = l
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!("{c:?} in the domain"));
        }
        if l.starts_with('-') || l.ends_with('-') {
            return Err("a domain label starts or ends with '-'".into());
        }
        // RFC 5890: `ab--` is reserved except for Punycode's `xn--`.
        if l.len() >= 4 && &l[2..4] == "--" && !l.starts_with("xn") {
            return Err("a domain label has '--' in 3rd and 4th position".into());
        }
    }
    if !d.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return Err("the top-level domain must end with a letter".into());
    }
    let tld = labels[labels.len() - 1];
    if let Some(s) = SPECIAL_USE.iter().find(|s| **s == tld) {
        return Err(format!(
            "{s:?} is a special-use domain that cannot receive mail"
        ));
    }
    Ok(())
}

/// Combining marks (Mn, Mc, Me) common in scripts that need them: the ranges below cover the
/// combining diacritics and the Indic, Thai and other vowel signs. Good enough to keep symbols
/// and emoji out of domains; UTS 46 does the full check.
fn is_mark(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F | 0x0483..=0x0489 | 0x0591..=0x05C7 | 0x0610..=0x061A | 0x064B..=0x065F
        | 0x0670 | 0x06D6..=0x06ED | 0x0900..=0x0903 | 0x093A..=0x094F | 0x0951..=0x0957
        | 0x0962..=0x0963 | 0x0981..=0x0983 | 0x09BC..=0x09D7 | 0x0A01..=0x0A51 | 0x0A81..=0x0ACD
        | 0x0B01..=0x0B57 | 0x0B82..=0x0BD7 | 0x0C00..=0x0C56 | 0x0C81..=0x0CD6 | 0x0D00..=0x0D57
        | 0x0E31 | 0x0E34..=0x0E3A | 0x0E47..=0x0E4E | 0x0EB1..=0x0EBC | 0x0EC8..=0x0ECD
        | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0x302A..=0x302F | 0x3099..=0x309A
        | 0xFE20..=0xFE2F)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: &str) -> Result<(String, usize), ErrorCode> {
        Email::read(raw)
            .map(|r| (r.email.0, r.repairs.len()))
            .map_err(|e| e.code)
    }

    #[test]
    fn an_address_in_a_known_wrapping_is_read_and_reported_once() {
        assert_eq!(read("ann@x.com"), Ok(("ann@x.com".into(), 0)));
        for raw in [
            "mailto:ann@x.com",
            "MAILTO: Ann@X.com?subject=Hi",
            "Ann Lee <ann@x.com>",
            "\"Lee, Ann\" <ann@x.com>",
            "<ann@x.com>",
            "ann@x.com.",
            "ann＠x．com",
            "mailto:ann@x.com.",
        ] {
            assert_eq!(read(raw), Ok(("ann@x.com".into(), 1)), "{raw}");
        }
    }

    #[test]
    fn a_wrapping_that_does_not_hold_one_address_stays_invalid() {
        for raw in [
            "a@x.com;b@x.com",
            "Ann <a@x.com>, Bob <b@x.com>",
            "<>",
            "Ann Lee",
            "mailto:",
            "ann@x..com",
            "ann@x.com..",
            "<ann@x>",
        ] {
            assert_eq!(read(raw), Err(ErrorCode::InvalidEmail), "{raw}");
        }
        // The message is the one for the value as written.
        let e = Email::read("Ann <a@x.com> x").unwrap_err();
        assert!(e.message.contains("\"Ann <a@x.com> x\""), "{}", e.message);
    }
}
