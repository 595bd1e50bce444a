//! Phone numbers to E.164, on the libphonenumber metadata that the `phonenumber` crate ships.
//!
//! Why not `phonenumber::parse` + `is_valid`: measured against Google's libphonenumber (the
//! differential test in `tests/it/normalise.rs`, table in `benches/README.md`), the crate's
//! parser and validator go wrong in ways that produce *wrong numbers marked valid*: its
//! descriptors match a pattern as a prefix rather than the whole number, the general
//! descriptor has no possible lengths (the XML leaves them to Google's build step, which
//! computes their union), the default region's metadata is used for a number that carries
//! another `+country code`, and the national prefix can be stripped twice. Its regexes also sit
//! in one 100-entry LRU behind one lock, which thrashes on mixed-country data.
//!
//! So this module keeps the crate's *metadata* (the same libphonenumber 9.0.33 data as Google's
//! Python port we test against) and runs Google's parsing and validation algorithm on it
//! (`PhoneNumberUtil.parseHelper`, `maybeStripNationalPrefixAndCarrierCode`,
//! `testNumberLength`, `getNumberTypeHelper`), with full-match regexes compiled once per
//! region and shared read-only between threads. On top of Google's rules it refuses what it
//! cannot read without guessing: letters (vanity numbers, `O` typed for `0`), `+` followed by a
//! bad country code, two numbers in one cell, input that is valid two ways, and spreadsheet
//! damage (scientific notation, numeric cells that lost a leading `0` or `+`).
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{LazyLock, OnceLock};

use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use regex::{Regex, RegexBuilder};
use serde::Serialize;

use crate::model::{ErrorCode, Field, Repair, RowError};

const FIELD: &str = Field::PhoneNumber.as_str();
/// Google's bounds on a national significant number.
const MIN_NSN: usize = 2;
const MAX_NSN: usize = 17;

/// A region (ISO 3166 alpha-2) used for numbers written without `+country code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region(phonenumber::country::Id);

impl Region {
    /// From an ISO alpha-2 code in any case (`GB`, `gb`) or an English country name, with the
    /// common variants and a few native names (`United Kingdom`, `UK`, `Great Britain`, `USA`,
    /// `Deutschland`); see [`super::regions`]. Only regions the phone metadata knows are returned.
    pub fn parse(raw: &str) -> Option<Region> {
        let t = raw.trim();
        let by_code = (t.len() == 2 && t.is_ascii())
            .then(|| {
                t.to_ascii_uppercase()
                    .parse::<phonenumber::country::Id>()
                    .ok()
            })
            .flatten();
        // "UK" is not an ISO code but is what people write.
        let id = match by_code {
            Some(id) => id,
            None => super::regions::code_for_name(t)?.parse().ok()?,
        };
        // The crate's Id list is CLDR's; keep only regions with phone metadata.
        DATABASE.by_id(id.as_ref())?;
        Some(Region(id))
    }

    /// The region of a row's `region_from` value. In a column whose header names states or
    /// provinces (`State`, `Mailing State`, `State/Province`), US state and Canadian province codes
    /// and names come first (`CO`: Colorado, `DE`: Delaware, `Georgia`: the state); in any other
    /// column countries come first (`CO`: Colombia, `DE`: Germany, `Georgia`: the country), and a
    /// value that is not a country but is a state or province (`NY`, `Ontario`) gives US/CA.
    /// When a value in a country column also names a US state or Canadian province (`DE`, `CO`,
    /// `Georgia`), the state's country is returned in [`RowRegion::other`], so that a number it
    /// reads differently is reported: a column of states under a header that does not say so
    /// (`Region`) is then never read silently as countries. (The other way round, a country in a
    /// column named State, is not looked for.)
    pub fn from_row(column: &str, value: &str) -> Option<RowRegion> {
        let state = super::regions::state_country(value).and_then(Region::parse);
        if super::regions::is_state_column(column) {
            let region = state.or_else(|| Region::parse(value))?;
            return Some(RowRegion {
                region,
                other: None,
            });
        }
        let Some(region) = Region::parse(value) else {
            return state.map(|region| RowRegion {
                region,
                other: None,
            });
        };
        let other = state.filter(|o| *o != region);
        Some(RowRegion { region, other })
    }

    /// The country an email address's country-code domain names (`jan@example.nl` → NL,
    /// `.co.uk` → GB), `None` for generic domains and the country codes sold as generic names
    /// (`.io`, `.co`, `.me`, `.tv`, …; the list is in `regions.rs`).
    pub fn of_email(email: &str) -> Option<Region> {
        let domain = email.rsplit_once('@')?.1;
        Region::parse(&super::regions::tld_country(domain)?)
    }

    pub fn id(self) -> phonenumber::country::Id {
        self.0
    }

    /// The ISO alpha-2 code (`GB`).
    pub fn as_str(&self) -> &'static str {
        static_code(self.0.as_ref())
    }
}

/// A `region_from` value read by [`Region::from_row`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowRegion {
    pub region: Region,
    /// The region of the value's other meaning (`DE` in a country column: Germany, and
    /// Delaware, US), when it has one in another region.
    pub other: Option<Region>,
}

/// Interned region codes (the crate hands them out borrowed from its database, which lives for
/// the whole program).
fn static_code(id: &str) -> &'static str {
    DATABASE.by_id(id).map(|m| m.id()).unwrap_or("??")
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A phone number in E.164 (`+14155552671`), valid for its region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PhoneE164(String);

impl PhoneE164 {
    /// Parse a raw cell into its number, dropping what [`PhoneE164::read`] reports as repaired.
    /// Code that keeps the value must use `read` and report the repairs.
    pub fn parse(
        raw: &str,
        region: Option<Region>,
        numeric_cell: bool,
    ) -> Result<PhoneE164, RowError> {
        Self::read(raw, region, numeric_cell).map(|r| r.phone)
    }

    /// Read a raw cell. `region` is used for numbers written without `+country code` (a number
    /// with one is checked against its own country). `numeric_cell` says the value came from a
    /// spreadsheet number cell, which cannot hold a leading `0` or `+`.
    ///
    /// Repairs, each returned as a [`Repair`] (the caller reports it with the original value),
    /// made only where one number is possible:
    /// - `tel:`, a doubled `++` and invisible characters (zero-width space, BOM, soft hyphen, bidi
    ///   marks) are removed (`PhoneCleaned`);
    /// - an extension (`x123`, `ext. 123`, `#123`, `;ext=123`) is kept out of the number: E.164 and
    ///   the server's phone field have no place for it (`PhoneExtension`, the extension in the
    ///   message);
    /// - a vanity number (`1-800-FLOWERS`: 3 digits or more, then letters in runs of 2 or more
    ///   with one run of 3 or more) is read on the phone keypad (`PhoneVanity`); a lone letter
    ///   among digits (`3518O79447`, `O` typed for `0`) is refused;
    /// - a number cell that lost its leading `0` or `+` is read with it put back when exactly one
    ///   number fits (`PhoneLostPrefix`); when several do, the value is refused.
    pub fn read(
        raw: &str,
        region: Option<Region>,
        numeric_cell: bool,
    ) -> Result<PhoneRead, RowError> {
        read_phone(raw, region, numeric_cell).map(|(cc, nsn, national, repairs)| PhoneRead {
            phone: PhoneE164(nsn_with_plus(cc, &nsn)),
            repairs,
            national,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone read from a cell: the number, what was repaired to read it, and whether it was read
/// with the region's national rules (it had no `+country code` or international prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneRead {
    pub phone: PhoneE164,
    pub repairs: Vec<Repair>,
    pub national: bool,
}

fn nsn_with_plus(cc: u16, nsn: &str) -> String {
    format!("+{cc}{nsn}")
}

impl fmt::Display for PhoneE164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a number was refused, before it becomes a [`RowError`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Why {
    Invalid(&'static str),
    InvalidFor(String),
}

/// (country code, national significant number, read nationally, repairs).
type Reading = (u16, String, bool, Vec<Repair>);

fn read_phone(raw: &str, region: Option<Region>, numeric_cell: bool) -> Result<Reading, RowError> {
    let where_ = match region {
        Some(r) => format!(" for region {r}"),
        None => String::new(),
    };
    let invalid = |why: &str| {
        RowError::new(
            ErrorCode::InvalidPhone,
            Some(FIELD),
            if why.is_empty() {
                format!("{raw:?} is not a valid phone number{where_}")
            } else {
                format!("{raw:?} is not a valid phone number{where_} ({why})")
            },
        )
    };
    let mut repairs = Vec::new();
    // Harmless spaces at the ends (NBSP included: a copy from a web page) are trimmed.
    let s = clean(raw, &mut repairs);
    if s.is_empty() {
        return Err(invalid("empty"));
    }
    if let Some(lost) = scientific(&s) {
        return Err(RowError::new(
            ErrorCode::PhoneScientificNotation,
            Some(FIELD),
            format!(
                "{raw:?} is a phone number in scientific notation: the spreadsheet stored it as a \
                 number, {lost}, so the number cannot be read back; format the column as text \
                 and export again"
            ),
        ));
    }
    let (main, ext) = split_extension(&s);
    if let Some(ext) = ext {
        repairs.push(Repair::new(
            ErrorCode::PhoneExtension,
            format!(
                "extension {ext} left out of the number: the server's phone field cannot hold it"
            ),
        ));
    }
    let main = keypad(main, &mut repairs).map_err(|why| invalid(&why))?;
    let (plus, digits) = scan(&main).map_err(|why| invalid(&why))?;
    let rules = region.map(rules_for);
    if numeric_cell
        && !plus
        && let Some(e) = lost_prefix(&digits, rules)
    {
        let (cc, nsn, national) = put_prefix_back(raw, &digits, rules, &e)?;
        let msg = format!(
            "a spreadsheet number cell dropped {e}: read as {}",
            nsn_with_plus(cc, &nsn)
        );
        repairs.push(Repair::new(ErrorCode::PhoneLostPrefix, msg));
        return Ok((cc, nsn, national, repairs));
    }
    let national = international_part(&digits, plus, rules).is_none();
    match e164(&digits, plus, rules) {
        Ok((cc, nsn)) => Ok((cc, nsn, national, repairs)),
        Err(Why::Invalid(w)) => Err(invalid(w)),
        Err(Why::InvalidFor(w)) => Err(invalid(&w)),
    }
}

/// Trim, then remove what is never part of a number and has one reading: invisible characters
/// anywhere, a `tel:` URI scheme, a doubled `+`. Each removal is reported (one `PhoneCleaned`).
fn clean<'a>(raw: &'a str, repairs: &mut Vec<Repair>) -> Cow<'a, str> {
    let ends = |c: char| c.is_whitespace();
    let mut s = Cow::Borrowed(raw.trim_matches(ends));
    let mut done = Vec::new();
    let hidden = |c: char| super::values::is_invisible(c) || super::values::is_joiner(c);
    if s.contains(hidden) {
        let mut codes: Vec<String> = s
            .chars()
            .filter(|&c| hidden(c))
            .map(|c| format!("U+{:04X}", c as u32))
            .collect();
        codes.dedup();
        done.push(format!("the invisible character {}", codes.join(", ")));
        s = Cow::Owned(s.chars().filter(|&c| !hidden(c)).collect::<String>());
        s = Cow::Owned(s.trim_matches(ends).to_owned());
    }
    if let Some(inner) = super::values::excel_text(&s) {
        done.push("the spreadsheet text wrapper =\"…\"".to_owned());
        s = Cow::Owned(inner.trim_matches(ends).to_owned());
    } else if let Some(rest) = s.strip_prefix('\'') {
        done.push("the leading apostrophe (a spreadsheet's mark for text)".to_owned());
        s = Cow::Owned(rest.trim_start_matches(ends).to_owned());
    }
    if s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("tel:")) {
        done.push(format!("the {:?} prefix", &s[..4]));
        s = Cow::Owned(s[4..].trim_start_matches(ends).to_owned());
    }
    let pluses = s.chars().take_while(|&c| c == '+').count();
    if pluses > 1 {
        done.push(format!("{} of {pluses} '+' signs", pluses - 1));
        s = Cow::Owned(s[pluses - 1..].to_owned());
    }
    if !done.is_empty() {
        repairs.push(Repair::new(
            ErrorCode::PhoneCleaned,
            format!("removed {}", done.join(" and ")),
        ));
    }
    s
}

/// The digits a number cell stands for when it lost `lost` (see [`lost_prefix`]): every reading
/// of the digits with a `0` or `+` put back, and as written, that is a valid number. Exactly one
/// distinct number is the repair; more than one is refused (`PhoneLostPrefix`), never a guess.
fn put_prefix_back(
    raw: &str,
    digits: &str,
    rules: Option<&Rules>,
    lost: &str,
) -> Result<(u16, String, bool), RowError> {
    let mut found: Vec<(u16, String, bool)> = Vec::new();
    let mut add = |r: Result<(u16, String), Why>, national: bool| {
        if let Ok((cc, nsn)) = r
            && !found.iter().any(|(c, n, _)| *c == cc && *n == nsn)
        {
            found.push((cc, nsn, national));
        }
    };
    if let Some(r) = rules {
        add(e164(&format!("0{digits}"), false, Some(r)), true);
        add(e164(digits, false, Some(r)), true);
    }
    add(e164(digits, true, None), false);
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(RowError::new(
            ErrorCode::PhoneLostPrefix,
            Some(FIELD),
            format!(
                "{raw:?} comes from a number cell that lost {lost}, and is not a valid number \
                 with it put back either; format the column as text and export again"
            ),
        )),
        _ => {
            let fits: Vec<String> = found.iter().map(|(c, n, _)| nsn_with_plus(*c, n)).collect();
            Err(RowError::new(
                ErrorCode::PhoneLostPrefix,
                Some(FIELD),
                format!(
                    "{raw:?} comes from a number cell that lost {lost}, and more than one number \
                     fits ({}); format the column as text and export again",
                    fits.join(", ")
                ),
            ))
        }
    }
}

/// `4.47E+11`, `4,47E+11`, `4.4712E11`: what a spreadsheet shows for a long number cell. Says
/// what was lost: the digits past those shown (`4.47911E+11` keeps 6 of 12), or, when every
/// digit is shown, the leading `0` or `+` a number cannot hold.
fn scientific(s: &str) -> Option<String> {
    static RE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^[+-]?(\d+)(?:[.,](\d+))?[eE]([+-]?\d{1,3})$").unwrap());
    let c = RE.captures(s)?;
    let (int, frac) = (&c[1], c.get(2).map_or("", |m| m.as_str()));
    let exp: i64 = c[3].parse().ok()?;
    let shown = int.trim_start_matches('0').len() + frac.trim_end_matches('0').len();
    let total = int.trim_start_matches('0').len() as i64 + exp;
    Some(if total > shown as i64 {
        format!("which keeps {shown} of its {total} digits: the others are lost")
    } else {
        "which cannot hold a leading 0 or +".to_owned()
    })
}

/// Split off a trailing extension. Google's markers, the ones seen in exports: `x`, `ext`, `ext.`,
/// `extn`, `extension`, `#`, `;ext=` (RFC 3966), followed by 1–7 digits (20 for `;ext=`).
/// Returns the number before it and the extension's digits.
fn split_extension(s: &str) -> (&str, Option<&str>) {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?i)(?:;ext=(\d{1,20})|[\s,]*(?:extension|extn|ext\.?|x|\#)\s*[:.]?\s*(\d{1,7})\#?)$",
        )
        .unwrap()
    });
    match RE.captures(s) {
        // A bare number ending in `x12` is still a number before it.
        Some(c) if c.get(0).is_some_and(|m| m.start() > 0) => {
            let start = c.get(0).map_or(0, |m| m.start());
            let ext = c.get(1).or(c.get(2)).map(|m| m.as_str());
            (s[..start].trim_end(), ext)
        }
        _ => (s, None),
    }
}

/// A vanity number (`1-800-FLOWERS`) with its letters read on the phone keypad (ITU E.161, as
/// Google's `ALPHA_PHONE_MAPPINGS`), reported as `PhoneVanity`. Read as one only when it has the
/// shape of one: at least 3 digits before the first letter (Google's viability rule), ASCII
/// letters in runs of 2 or more, one run of 3 or more. Anything else with letters is refused:
/// a lone letter among digits is a typo (`O` for `0`, `l` for `1`), not a word, and Google
/// reading it as a digit, or dropping it, turns `7912O23456` into another number.
fn keypad<'a>(s: &'a str, repairs: &mut Vec<Repair>) -> Result<Cow<'a, str>, String> {
    let Some(first) = s.find(|c: char| c.is_alphabetic()) else {
        return Ok(Cow::Borrowed(s));
    };
    let refuse = || Err("contains letters".to_owned());
    if !s.is_ascii() || s[..first].chars().filter(char::is_ascii_digit).count() < 3 {
        return refuse();
    }
    let runs: Vec<usize> = s
        .split(|c: char| !c.is_ascii_alphabetic())
        .map(str::len)
        .filter(|&n| n > 0)
        .collect();
    if runs.iter().any(|&n| n < 2) || !runs.iter().any(|&n| n >= 3) {
        return refuse();
    }
    let letters: String = s.chars().filter(char::is_ascii_alphabetic).collect();
    let out: String = s.chars().map(|c| keypad_digit(c).unwrap_or(c)).collect();
    let digits: String = letters.chars().filter_map(keypad_digit).collect();
    repairs.push(Repair::new(
        ErrorCode::PhoneVanity,
        format!("read the letters {letters} as the keypad digits {digits}"),
    ));
    Ok(Cow::Owned(out))
}

/// The phone keypad digit of an ASCII letter.
fn keypad_digit(c: char) -> Option<char> {
    Some(match c.to_ascii_uppercase() {
        'A'..='C' => '2',
        'D'..='F' => '3',
        'G'..='I' => '4',
        'J'..='L' => '5',
        'M'..='O' => '6',
        'P'..='S' => '7',
        'T'..='V' => '8',
        'W'..='Z' => '9',
        _ => return None,
    })
}

/// The digits of the main part and whether it starts with `+`. Separators people type are
/// skipped; letters (left after [`keypad`]) and anything else are refused.
fn scan(s: &str) -> Result<(bool, String), String> {
    let mut digits = String::with_capacity(s.len());
    let mut plus = false;
    for c in s.chars() {
        match c {
            '0'..='9' => digits.push(c),
            // Digits of other scripts, as Google reads them (fullwidth from CJK input methods,
            // Arabic-Indic, Persian, Devanagari).
            c if other_digit(c).is_some() => digits.push(other_digit(c).unwrap_or('0')),
            '+' | '\u{FF0B}' => {
                if plus || !digits.is_empty() {
                    return Err("a '+' in the middle".into());
                }
                plus = true;
            }
            ' '
            | '\t'
            | '-'
            | '.'
            | '/'
            | '('
            | ')'
            | '['
            | ']'
            | '\u{A0}'
            | '\u{202F}'
            | '\u{2009}'
            | '\u{2007}'
            | '\u{2010}'..='\u{2015}'
            | '\u{2212}'
            | '\u{3000}' => {}
            c if c.is_alphabetic() => return Err("contains letters".into()),
            c => return Err(format!("contains {c:?}")),
        }
    }
    if digits.is_empty() {
        return Err("no digits".into());
    }
    // `0161 234 5678 / 0161 876 5432`: two numbers in one cell; which one is meant is a guess.
    if s.split('/')
        .filter(|p| p.chars().filter(char::is_ascii_digit).count() >= 6)
        .count()
        >= 2
    {
        return Err("two numbers in one cell".into());
    }
    Ok((plus, digits))
}

/// The ASCII digit for a decimal digit of another script we accept.
fn other_digit(c: char) -> Option<char> {
    let zero = match c {
        '\u{FF10}'..='\u{FF19}' => 0xFF10,
        '\u{0660}'..='\u{0669}' => 0x0660,
        '\u{06F0}'..='\u{06F9}' => 0x06F0,
        '\u{0966}'..='\u{096F}' => 0x0966,
        _ => return None,
    };
    char::from_digit(c as u32 - zero, 10)
}

/// A numeric spreadsheet cell holds digits only: a leading `0` (trunk prefix, or the Italian
/// leading zero) or a `+` cannot survive. Returns what was lost when the region's rules say so:
/// - the digits are a valid national significant number of the region, its trunk prefix starts
///   with `0`, and the region's national format for that number writes the prefix and does not
///   mark it optional (GB `07911…`, DE `030…`, FR `06…`): the `0` was dropped. Not flagged: US
///   (trunk `1`, never written), Indian mobiles (`98765 43210`: the `0` is optional when
///   formatting, people leave it out);
/// - `0` + the digits is a valid number of the region but the digits alone are not (IT `06…`);
/// - `+` + the digits is a valid international number (`447911123456`) and the digits are not
///   a valid number of the region as written.
fn lost_prefix(digits: &str, rules: Option<&Rules>) -> Option<String> {
    let plus_reading = || {
        e164(digits, true, None)
            .ok()
            .map(|(cc, nsn)| format!("its leading '+' (+{cc}{nsn} is a valid number)"))
    };
    let Some(r) = rules else {
        return plus_reading();
    };
    if let Some(p) = r.national_prefix.as_deref().filter(|p| p.starts_with('0'))
        && valid_nsn(r.cc, digits).is_some()
        && r.writes_national_prefix(digits)
    {
        return Some(format!(
            "its leading {p:?} (region {} numbers are written {p}{digits})",
            r.id
        ));
    }
    // Valid as written (no country code taken off): nothing was lost (US `4155552671`), unless
    // a `0` put back gives another valid number (GA `06 03 12 34` in a number cell is `6031234`,
    // itself a valid number): then which one the cell held is a guess.
    let as_written = strip_national_prefix_if_possible(digits, r);
    if valid_nsn(r.cc, &as_written).is_some() {
        let zero = e164(&format!("0{digits}"), false, Some(r));
        return match (zero, e164(digits, false, Some(r))) {
            (Ok(z), Ok(w)) if z != w => Some(format!(
                "its leading \"0\" or nothing (0{digits} and {digits} are different valid \
                 numbers for region {})",
                r.id
            )),
            _ => None,
        };
    }
    if e164(&format!("0{digits}"), false, Some(r)).is_ok() {
        return Some(format!(
            "its leading \"0\" (0{digits} is a valid number for region {})",
            r.id
        ));
    }
    plus_reading()
}

/// Google's parse + validity check on already-scanned digits. `plus`: the text started with `+`.
/// Returns (country code, national significant number).
fn e164(digits: &str, plus: bool, region: Option<&Rules>) -> Result<(u16, String), Why> {
    let (cc, national, strip_with) = if let Some(intl) = international_part(digits, plus, region) {
        if intl.len() <= MIN_NSN {
            return Err(Why::Invalid("too short after the international prefix"));
        }
        let (cc, rest) = country_code(intl).ok_or(Why::Invalid("unknown country code"))?;
        // Google strips the national prefix with the rules of the number's own country (the
        // region's when they share a code, e.g. CA for +1 from CA).
        let rules = match region {
            Some(r) if r.cc == cc => rules_for_meta(r.meta),
            _ => main_rules(cc).ok_or(Why::Invalid("unknown country code"))?,
        };
        (cc, rest.to_owned(), rules)
    } else {
        let r = region.ok_or(Why::Invalid(
            "no '+country code' and no region to read it in",
        ))?;
        let chosen = national_candidates(digits, r)?;
        (r.cc, chosen, rules_for_meta(r.meta))
    };
    if national.len() < MIN_NSN {
        return Err(Why::Invalid("too short"));
    }
    let nsn = strip_national_prefix_if_possible(&national, strip_with);
    if nsn.len() < MIN_NSN {
        return Err(Why::Invalid("too short"));
    }
    if nsn.len() > MAX_NSN {
        return Err(Why::Invalid("too long"));
    }
    let nsn = match valid_nsn(cc, &nsn) {
        Some(_) => nsn,
        None => return Err(Why::InvalidFor(length_reason(&nsn, strip_with))),
    };
    // Cross-check: our E.164 read back as an international number must give the same number.
    // It catches a national prefix that would be stripped again (the crate's double strip).
    if region.is_some() || !plus {
        match e164(&nsn_with_cc(cc, &nsn), true, None) {
            Ok((c2, n2)) if c2 == cc && n2 == nsn => {}
            _ => return Err(Why::Invalid("does not read back as the same number")),
        }
    }
    Ok((cc, nsn))
}

fn nsn_with_cc(cc: u16, nsn: &str) -> String {
    format!("{cc}{nsn}")
}

/// For input without `+`: Google reads a number that starts with the region's country code as
/// international when that is the only sensible reading (`447911123456` in GB). We do the same,
/// but when the national reading and the country-code reading are *both* valid and differ, the
/// cell is ambiguous and refused.
fn national_candidates(digits: &str, r: &Rules) -> Result<String, Why> {
    let code = r.cc.to_string();
    let Some(potential) = digits.strip_prefix(code.as_str()) else {
        return Ok(digits.to_owned());
    };
    let stripped = strip_national_prefix(potential, r).unwrap_or_else(|| potential.to_owned());
    let general = &r.general;
    let take_cc = (!general.pattern_full(digits) && general.pattern_full(&stripped))
        || test_length(digits, r) == Length::TooLong;
    let (chosen, other) = if take_cc {
        (stripped, digits.to_owned())
    } else {
        (digits.to_owned(), stripped)
    };
    let read = |n: &str| {
        let nsn = strip_national_prefix_if_possible(n, r);
        valid_nsn(r.cc, &nsn).map(|_| nsn)
    };
    if let (Some(a), Some(b)) = (read(&chosen), read(&other))
        && a != b
    {
        return Err(Why::Invalid(
            "ambiguous: valid both as a national number and after the country code",
        ));
    }
    Ok(chosen)
}

/// The digits after `+` or after the region's international (IDD) prefix (`00`, `011`, `0011`…),
/// or `None` when the number is written nationally.
fn international_part<'a>(digits: &'a str, plus: bool, region: Option<&Rules>) -> Option<&'a str> {
    if plus {
        return Some(digits);
    }
    let idd = region?.idd.as_ref()?;
    let m = idd.find(digits)?;
    // Google: a country code never starts with 0, so `00 0…` is not an IDD.
    let rest = &digits[m.end()..];
    if rest.starts_with('0') {
        return None;
    }
    Some(rest)
}

/// Google's `extractCountryCode`: the first 1–3 digit prefix that is a country calling code.
fn country_code(intl: &str) -> Option<(u16, &str)> {
    if intl.starts_with('0') {
        return None;
    }
    (1..=3.min(intl.len())).find_map(|len| {
        let code: u16 = intl[..len].parse().ok()?;
        DATABASE.region(&code).map(|_| (code, &intl[len..]))
    })
}

/// Google's parseHelper step: strip the national prefix (and carrier code) when what is left is
/// still a possible length for the region.
fn strip_national_prefix_if_possible(national: &str, r: &Rules) -> String {
    if let Some(potential) = strip_national_prefix(national, r) {
        match test_length(&potential, r) {
            Length::TooShort | Length::LocalOnly | Length::Invalid => {}
            _ => return potential,
        }
    }
    national.to_owned()
}

/// Google's `maybeStripNationalPrefixAndCarrierCode` (the carrier code is not kept): the number
/// without its national prefix, or rewritten by the region's transform rule (AR, MX, …).
fn strip_national_prefix(number: &str, r: &Rules) -> Option<String> {
    let npp = r.npp.as_ref()?;
    if number.is_empty() {
        return None;
    }
    let caps = npp.captures(number)?;
    let whole = caps.get(0)?;
    let viable = r.general.pattern_full(number);
    let groups = caps.len() - 1;
    let last_group = if groups > 0 { caps.get(groups) } else { None };
    match (&r.transform, last_group) {
        (Some(rule), Some(_)) => {
            let mut out = String::new();
            caps.expand(rule, &mut out);
            out.push_str(&number[whole.end()..]);
            if viable && !r.general.pattern_full(&out) {
                return None;
            }
            Some(out)
        }
        _ => {
            let rest = &number[whole.end()..];
            if viable && !r.general.pattern_full(rest) {
                return None;
            }
            Some(rest.to_owned())
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Length {
    Possible,
    LocalOnly,
    TooShort,
    TooLong,
    Invalid,
}

/// Google's `testNumberLength` for an unknown type (the general descriptor's lengths, which are
/// the union over the number types).
fn test_length(n: &str, r: &Rules) -> Length {
    let len = n.len() as u16;
    let lengths = &r.general.lengths;
    let Some((&min, &max)) = lengths.first().zip(lengths.last()) else {
        return Length::Invalid;
    };
    if r.local_lengths.contains(&len) {
        Length::LocalOnly
    } else if len == min {
        Length::Possible
    } else if len < min {
        Length::TooShort
    } else if len > max {
        Length::TooLong
    } else if lengths.contains(&len) {
        Length::Possible
    } else {
        Length::Invalid
    }
}

fn length_reason(nsn: &str, r: &Rules) -> String {
    match test_length(nsn, r) {
        Length::TooShort | Length::LocalOnly => "too short".into(),
        Length::TooLong => "too long".into(),
        Length::Invalid => format!("wrong number of digits ({})", nsn.len()),
        Length::Possible => "not a number in use".into(),
    }
}

/// Google's `isValidNumber` for (country code, NSN): the region of the number (by leading digits
/// or type, for codes shared by several regions), then a type other than unknown there.
fn valid_nsn(cc: u16, nsn: &str) -> Option<&'static str> {
    let regions = DATABASE.by_code(&cc)?;
    let meta: &'static Metadata = if regions.len() == 1 {
        regions[0]
    } else {
        regions.into_iter().find(|m| {
            let r = rules_for_meta(m);
            match &r.leading {
                Some(ld) => ld.is_match(nsn),
                None => r.is_valid(nsn),
            }
        })?
    };
    let r = rules_for_meta(meta);
    if r.is_valid(nsn) {
        Some(static_code(meta.id()))
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Compiled rules, one per region, shared by all threads.

/// A number-type descriptor: a full-match pattern and the possible lengths.
struct Desc {
    re: Regex,
    lengths: Vec<u16>,
}

impl Desc {
    fn new(d: &Descriptor) -> Desc {
        Desc {
            re: full(d.national_number().as_str()),
            lengths: d.possible_length().to_vec(),
        }
    }
    /// Google's `isNumberMatchingDesc`: possible length, then the whole pattern.
    fn full(&self, n: &str) -> bool {
        (self.lengths.is_empty() || self.lengths.contains(&(n.len() as u16))) && self.re.is_match(n)
    }
    /// Google's `matchNationalNumber` (pattern only).
    fn pattern_full(&self, n: &str) -> bool {
        self.re.is_match(n)
    }
}

/// A national format: which numbers it applies to and whether it writes the trunk prefix.
struct Fmt {
    leading: Option<Regex>,
    pattern: Regex,
    writes_prefix: bool,
}

struct Rules {
    meta: &'static Metadata,
    id: &'static str,
    cc: u16,
    national_prefix: Option<String>,
    /// National prefix for parsing, anchored at the start.
    npp: Option<Regex>,
    /// Transform rule, in `regex` replacement syntax (`${1}`).
    transform: Option<String>,
    /// International (IDD) prefix, anchored at the start.
    idd: Option<Regex>,
    /// Leading digits that pick this region among those sharing its code.
    leading: Option<Regex>,
    /// General descriptor with its lengths set to the union over the types (Google's build step).
    general: Desc,
    local_lengths: Vec<u16>,
    /// premium, toll free, shared cost, voip, personal, pager, uan, voicemail (Google's order).
    others: Vec<Desc>,
    /// National formats, compiled on first need (numeric cells only).
    formats: OnceLock<Vec<Fmt>>,
    fixed: Option<Desc>,
    mobile: Option<Desc>,
    same_fixed_mobile: bool,
}

impl Rules {
    fn build(meta: &'static Metadata) -> Rules {
        let d = meta.descriptors();
        let kinds: [Option<&Descriptor>; 10] = [
            d.premium_rate(),
            d.toll_free(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
            d.fixed_line(),
            d.mobile(),
        ];
        let mut lengths: Vec<u16> = kinds
            .iter()
            .flatten()
            .flat_map(|k| k.possible_length().iter().copied())
            .collect();
        lengths.sort_unstable();
        lengths.dedup();
        let mut local: Vec<u16> = kinds
            .iter()
            .flatten()
            .flat_map(|k| k.possible_local_length().iter().copied())
            .filter(|l| !lengths.contains(l))
            .collect();
        local.sort_unstable();
        local.dedup();
        let mut general = Desc::new(d.general());
        general.lengths = lengths;
        let npp_src = meta
            .national_prefix_for_parsing()
            .map(|r| r.as_str().to_owned())
            .or_else(|| meta.national_prefix().map(regex::escape));
        Rules {
            meta,
            id: static_code(meta.id()),
            cc: meta.country_code(),
            national_prefix: meta.national_prefix().map(str::to_owned),
            npp: npp_src.map(|s| anchored(&s)),
            transform: meta.national_prefix_transform_rule().map(dollar_braces),
            idd: meta.international_prefix().map(|r| anchored(r.as_str())),
            leading: meta.leading_digits().map(|r| anchored(r.as_str())),
            general,
            local_lengths: local,
            others: kinds[..8].iter().flatten().map(|k| Desc::new(k)).collect(),
            formats: OnceLock::new(),
            fixed: d.fixed_line().map(Desc::new),
            mobile: d.mobile().map(Desc::new),
            same_fixed_mobile: match (d.fixed_line(), d.mobile()) {
                (Some(f), Some(m)) => f.national_number().as_str() == m.national_number().as_str(),
                _ => false,
            },
        }
    }

    /// Whether the national format of `nsn` starts with the trunk prefix as a rule (Google's
    /// `chooseFormattingPatternForNumber`, then the format's `nationalPrefixFormattingRule`
    /// has `$NP` and `nationalPrefixOptionalWhenFormatting` is false).
    fn writes_national_prefix(&self, nsn: &str) -> bool {
        let formats = self.formats.get_or_init(|| {
            self.meta
                .formats()
                .iter()
                .map(|f| Fmt {
                    leading: f.leading_digits().last().map(|r| anchored(r.as_str())),
                    pattern: full(f.pattern().as_str()),
                    writes_prefix: f.national_prefix().is_some_and(|r| r.contains("$NP"))
                        && !f.is_national_prefix_optional(),
                })
                .collect()
        });
        formats
            .iter()
            .find(|f| f.leading.as_ref().is_none_or(|l| l.is_match(nsn)) && f.pattern.is_match(nsn))
            .is_some_and(|f| f.writes_prefix)
    }

    /// Google's `getNumberTypeHelper(..) != UNKNOWN`.
    fn is_valid(&self, nsn: &str) -> bool {
        if !self.general.full(nsn) {
            return false;
        }
        if self.others.iter().any(|d| d.full(nsn)) {
            return true;
        }
        if self.fixed.as_ref().is_some_and(|d| d.full(nsn)) {
            return true;
        }
        !self.same_fixed_mobile && self.mobile.as_ref().is_some_and(|d| d.full(nsn))
    }
}

/// `^(?:src)$` with the metadata's layout whitespace ignored.
fn full(src: &str) -> Regex {
    build(&format!("^(?:{src})$"))
}

/// `^(?:src)`: Java's `lookingAt`.
fn anchored(src: &str) -> Regex {
    build(&format!("^(?:{src})"))
}

fn build(src: &str) -> Regex {
    RegexBuilder::new(src)
        .ignore_whitespace(true)
        // The input is ASCII digits. Unicode `\d` (every script's digits) compiles each `\d{8}`
        // into a large UTF-8 automaton: 10 countries' rules took 34 MiB with it, 6 MiB without.
        .unicode(false)
        .build()
        .unwrap_or_else(|e| panic!("phone metadata regex {src:?} does not compile: {e}"))
}

/// `9$1` → `9${1}` (the `regex` crate would read `$1x` as a group named `1x`).
fn dollar_braces(rule: &str) -> String {
    static RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\$(\d)").unwrap());
    RE.replace_all(rule, "$${${1}}").into_owned()
}

/// One slot per region of the crate's database, filled on first use. The map is built once
/// and only read afterwards, and a filled `OnceLock` is read with one atomic load: threads share
/// the rules without a lock or a reference count to fight over (an `RwLock` + `Arc` version ran
/// slower on two threads than on one).
static RULES: LazyLock<HashMap<usize, OnceLock<Rules>>> = LazyLock::new(|| {
    // By code, not `DATABASE.iter()`: that walks the by-id map, where the non-geographic
    // entries (all `001`) overwrite each other.
    (1..1000u16)
        .filter_map(|cc| DATABASE.by_code(&cc))
        .flatten()
        .map(|m| (m as *const Metadata as usize, OnceLock::new()))
        .collect()
});

/// The compiled rules of one region, built on first use (a few milliseconds). Keyed by the
/// metadata's address: the crate's database is a program-long static, and the non-geographic
/// entries (`001`) share an id.
fn rules_for_meta(meta: &'static Metadata) -> &'static Rules {
    let slot = RULES
        .get(&(meta as *const Metadata as usize))
        .expect("metadata from the crate's default database");
    slot.get_or_init(|| Rules::build(meta))
}

fn rules_for(region: Region) -> &'static Rules {
    let meta = DATABASE
        .by_id(region.0.as_ref())
        .expect("Region::parse only returns regions with metadata");
    rules_for_meta(meta)
}

/// The main region's rules for a country code (US for +1).
fn main_rules(cc: u16) -> Option<&'static Rules> {
    let metas = DATABASE.by_code(&cc)?;
    metas.into_iter().next().map(rules_for_meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_is_cut_only_at_the_end() {
        assert_eq!(
            split_extension("+1 415 555 2671 ext. 12"),
            ("+1 415 555 2671", Some("12"))
        );
        assert_eq!(
            split_extension("020 7946 0958;ext=1234"),
            ("020 7946 0958", Some("1234"))
        );
        assert_eq!(
            split_extension("020 7946 0958 #12"),
            ("020 7946 0958", Some("12"))
        );
        assert_eq!(split_extension("x12"), ("x12", None));
    }

    #[test]
    fn keypad_reads_words_not_lone_letters() {
        let mut r = Vec::new();
        assert_eq!(keypad("1-800-FLOWERS", &mut r).unwrap(), "1-800-3569377");
        assert_eq!(keypad("1-800-go-fedex", &mut r).unwrap(), "1-800-46-33339");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].code, ErrorCode::PhoneVanity);
        assert!(r[0].message.contains("FLOWERS"), "{}", r[0].message);
        for bad in [
            "3518O79447",
            "1-800-A-LAWYER",
            "call me",
            "80-FLOWERS",
            "0800 AB 12",
        ] {
            assert!(keypad(bad, &mut r).is_err(), "{bad:?}");
        }
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn clean_removes_tel_doubled_plus_and_invisible_characters() {
        let mut r = Vec::new();
        assert_eq!(clean(" tel:+1-415-555-2676 ", &mut r), "+1-415-555-2676");
        assert_eq!(clean("++44 20 7946 0963", &mut r), "+44 20 7946 0963");
        assert_eq!(
            clean("020\u{200b}7946\u{ad}0958\u{feff}", &mut r),
            "02079460958"
        );
        assert_eq!(clean("020 7946 0958", &mut r), "020 7946 0958");
        let codes: Vec<_> = r.iter().map(|x| x.code).collect();
        assert_eq!(codes, [ErrorCode::PhoneCleaned; 3]);
        assert!(r[0].message.contains("\"tel:\""), "{}", r[0].message);
        assert!(
            r[2].message.contains("U+200B, U+00AD, U+FEFF"),
            "{}",
            r[2].message
        );
    }

    #[test]
    fn transform_rules_keep_literal_digits() {
        assert_eq!(dollar_braces("9$1"), "9${1}");
        assert_eq!(dollar_braces("$2"), "${2}");
    }
}
