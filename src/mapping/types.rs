//! Typed conversions for `type:` (string, integer, number, bool, date, datetime): text in, a JSON
//! value of the right type out. Date formats are parsed once, when the mapping loads, so that a
//! row costs no format parsing.
use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
use serde_json::{Number, Value};

/// What a value becomes. `Date` and `Datetime` carry their extra input formats.
#[derive(Debug, Clone)]
pub enum ValueType {
    String,
    Integer,
    Number,
    Bool,
    Date(Formats),
    Datetime(Formats),
    /// Ruby `Hash#inspect` text, spread into the attributes (see `ruby_hash`).
    RubyHash,
}

/// Input formats (chrono strftime), parsed once.
#[derive(Debug, Clone, Default)]
pub struct Formats(Vec<Vec<Item<'static>>>);

impl Formats {
    /// Parse each format; the error names the bad one.
    pub fn parse(formats: &[String]) -> Result<Formats, String> {
        let mut out = Vec::with_capacity(formats.len());
        for f in formats {
            let items = StrftimeItems::new(f).parse_to_owned().map_err(|_| {
                format!("{f:?} is not a valid date format (chrono strftime syntax)")
            })?;
            if items.iter().any(|i| matches!(i, Item::Error)) {
                return Err(format!(
                    "{f:?} is not a valid date format (chrono strftime syntax)"
                ));
            }
            out.push(items);
        }
        Ok(Formats(out))
    }
}

impl ValueType {
    pub fn name(&self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Integer => "integer",
            ValueType::Number => "number",
            ValueType::Bool => "bool",
            ValueType::Date(_) => "date",
            ValueType::Datetime(_) => "datetime",
            ValueType::RubyHash => "ruby_hash",
        }
    }

    /// Convert non-blank text. The error is the tail of a message: `is not an integer`.
    pub fn convert(&self, s: &str) -> Result<Value, String> {
        match self {
            ValueType::String => Ok(Value::String(s.to_owned())),
            ValueType::Integer => parse_integer(s)
                .map(|i| Value::Number(i.into()))
                .ok_or_else(|| "is not an integer".to_owned()),
            ValueType::Number => parse_number(s).ok_or_else(|| "is not a number".to_owned()),
            ValueType::Bool => parse_bool(s).map(Value::Bool).ok_or_else(|| {
                "is not a yes/no value (true/false, yes/no, y/n, 1/0, x)".to_owned()
            }),
            ValueType::Date(f) => parse_date(s, f)
                .map(|d| Value::String(d.to_string()))
                .ok_or_else(|| {
                    "is not a date (YYYY-MM-DD, an Excel serial, or the mapping's formats)"
                        .to_owned()
                }),
            ValueType::Datetime(f) => parse_datetime(s, f).map(Value::String).ok_or_else(|| {
                "is not a date and time (ISO 8601, an Excel serial, or the mapping's formats)"
                    .to_owned()
            }),
            ValueType::RubyHash => super::ruby_hash::parse(s),
        }
    }
}

/// `42`, `+42`, `-42`. No thousands separators, no decimals.
fn parse_integer(s: &str) -> Option<i64> {
    s.trim().parse::<i64>().ok()
}

/// An integer stays an integer (`3`, not `3.0`); otherwise a finite float.
fn parse_number(s: &str) -> Option<Value> {
    let s = s.trim();
    if let Ok(i) = s.parse::<i64>() {
        return Some(Value::Number(i.into()));
    }
    // Rust accepts `inf`, `NaN`, `infinity`: JSON has no such numbers, and no CRM means them.
    let f = s.parse::<f64>().ok().filter(|f| f.is_finite())?;
    Number::from_f64(f).map(Value::Number)
}

/// true/false, yes/no, y/n, 1/0, and `x` (a ticked checkbox), case-insensitively.
fn parse_bool(s: &str) -> Option<bool> {
    const TRUE: [&str; 5] = ["true", "yes", "y", "1", "x"];
    const FALSE: [&str; 4] = ["false", "no", "n", "0"];
    let s = s.trim();
    if TRUE.iter().any(|t| t.eq_ignore_ascii_case(s)) {
        Some(true)
    } else if FALSE.iter().any(|t| t.eq_ignore_ascii_case(s)) {
        Some(false)
    } else {
        None
    }
}

/// The mapping's formats first, then ISO 8601 (a date, or a date and time whose date is kept),
/// then an Excel serial day number.
fn parse_date(s: &str, formats: &Formats) -> Option<NaiveDate> {
    let s = s.trim();
    for items in &formats.0 {
        let mut p = Parsed::new();
        if chrono::format::parse(&mut p, s, items.iter()).is_ok()
            && let Ok(d) = p.to_naive_date()
        {
            return Some(d);
        }
    }
    if let Some(d) = iso_date(s) {
        return Some(d);
    }
    if let Some(dt) = parse_iso_datetime(s) {
        return Some(dt.date);
    }
    excel_serial(s).map(|dt| dt.date())
}

/// `YYYY-MM-DD`, the common case, without chrono's format machinery (it re-reads the format
/// string on every call).
fn iso_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)
}

/// A parsed date and time: naive (as written) or with an offset (then written in UTC).
struct IsoDateTime {
    date: NaiveDate,
    text: String,
}

fn parse_iso_datetime(s: &str) -> Option<IsoDateTime> {
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(IsoDateTime {
            date: dt.date_naive(),
            text: utc_text(dt),
        });
    }
    // A space instead of the `T`, as spreadsheets write it, with an offset.
    for f in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.fZ"] {
        if let Ok(dt) = chrono::DateTime::parse_from_str(s, f) {
            return Some(IsoDateTime {
                date: dt.date_naive(),
                text: utc_text(dt),
            });
        }
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, f) {
            return Some(IsoDateTime {
                date: dt.date(),
                text: naive_text(dt),
            });
        }
    }
    None
}

/// `2023-07-17T10:30:00` (fractional seconds only when there are some).
fn naive_text(dt: NaiveDateTime) -> String {
    format!("{}T{}", dt.date(), dt.time())
}

/// The same instant in UTC: `2023-07-17T08:30:00Z`.
fn utc_text(dt: chrono::DateTime<chrono::FixedOffset>) -> String {
    format!("{}Z", naive_text(dt.naive_utc()))
}

/// The mapping's formats first, then ISO 8601 / RFC 3339, then an Excel serial. A value with an
/// offset is written in UTC with `Z`; one without stays naive (`2023-07-17T10:30:00`); a date
/// alone is midnight.
fn parse_datetime(s: &str, formats: &Formats) -> Option<String> {
    let s = s.trim();
    for items in &formats.0 {
        let mut p = Parsed::new();
        if chrono::format::parse(&mut p, s, items.iter()).is_err() {
            continue;
        }
        if p.offset().is_some() {
            if let Ok(dt) = p.to_datetime() {
                return Some(utc_text(dt));
            }
        } else if let Ok(dt) = p.to_naive_datetime_with_offset(0) {
            return Some(naive_text(dt));
        } else if let Ok(d) = p.to_naive_date() {
            return Some(naive_text(d.and_time(NaiveTime::MIN)));
        }
    }
    if let Some(dt) = parse_iso_datetime(s) {
        return Some(dt.text);
    }
    if let Some(d) = iso_date(s) {
        return Some(naive_text(d.and_time(NaiveTime::MIN)));
    }
    excel_serial(s).map(naive_text)
}

/// The largest serial Excel accepts: 9999-12-31.
const EXCEL_MAX_SERIAL: f64 = 2_958_465.999_999;

/// An Excel serial day number (`45123`, `45123.5`) → date and time. Excel counts 1900-01-01 as
/// day 1 and believes 1900 was a leap year, so day 60 (29 February 1900) does not exist and
/// days from 61 on are counted from 1899-12-30.
fn excel_serial(s: &str) -> Option<NaiveDateTime> {
    // Digits with at most one decimal point: a signed or exponent form is not a serial.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    if !(1.0..=EXCEL_MAX_SERIAL).contains(&f) {
        return None;
    }
    let days = f.trunc() as i64;
    if days == 60 {
        return None;
    }
    let epoch = if days < 60 {
        NaiveDate::from_ymd_opt(1899, 12, 31)?
    } else {
        NaiveDate::from_ymd_opt(1899, 12, 30)?
    };
    let date = epoch.checked_add_signed(TimeDelta::days(days))?;
    let secs = ((f - f.trunc()) * 86_400.0).round() as i64;
    let time = NaiveTime::MIN + TimeDelta::seconds(secs.min(86_399));
    Some(date.and_time(time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excel_serials_follow_excels_calendar() {
        let d = |s| excel_serial(s).map(|dt| dt.date().to_string());
        assert_eq!(d("1").as_deref(), Some("1900-01-01"));
        assert_eq!(d("59").as_deref(), Some("1900-02-28"));
        assert_eq!(d("60"), None, "29 February 1900 never existed");
        assert_eq!(d("61").as_deref(), Some("1900-03-01"));
        assert_eq!(d("44927").as_deref(), Some("2023-01-01"));
        assert_eq!(d("45123").as_deref(), Some("2023-07-16"));
        assert_eq!(d("0"), None);
        assert_eq!(d("-5"), None);
        assert_eq!(d("1e4"), None);
        assert_eq!(d("99999999"), None);
        let dt = excel_serial("45123.75").unwrap();
        assert_eq!(naive_text(dt), "2023-07-16T18:00:00");
    }

    #[test]
    fn a_date_format_with_a_time_part_still_gives_the_date() {
        let f = Formats::parse(&["%Y-%m-%d %H:%M".to_owned()]).unwrap();
        assert_eq!(
            parse_date("2023-07-17 10:30", &f).map(|d| d.to_string()),
            Some("2023-07-17".to_owned())
        );
    }

    #[test]
    fn iso_dates_take_the_fast_path_and_stay_checked() {
        let f = Formats::default();
        let d = |s| parse_date(s, &f).map(|d| d.to_string());
        assert_eq!(d("2024-02-29").as_deref(), Some("2024-02-29"));
        assert_eq!(d("2023-02-29"), None);
        assert_eq!(d("2023-1-05"), None);
        assert_eq!(d("2023-01-0x"), None);
        assert_eq!(
            parse_datetime("2023-07-17T10:30:00.250", &f).as_deref(),
            Some("2023-07-17T10:30:00.250")
        );
    }

    #[test]
    fn bad_formats_are_refused() {
        assert!(Formats::parse(&["%Q-%m".to_owned()]).is_err());
        assert!(Formats::parse(&["%d/%m/%Y".to_owned()]).is_ok());
    }

    #[test]
    fn datetimes_with_an_offset_are_written_in_utc() {
        let f = Formats::default();
        assert_eq!(
            parse_datetime("2023-07-17T10:00:00+02:00", &f).as_deref(),
            Some("2023-07-17T08:00:00Z")
        );
        assert_eq!(
            parse_datetime("2023-07-17 10:00", &f).as_deref(),
            Some("2023-07-17T10:00:00")
        );
        assert_eq!(
            parse_datetime("2023-07-17", &f).as_deref(),
            Some("2023-07-17T00:00:00")
        );
    }
}
