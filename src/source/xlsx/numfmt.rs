//! Number formats that put back digits: a zip code `02134` typed into a number cell is stored as
//! `2134` and shown as `02134` by a `00000` format (Excel's "Zip Code"); a phone kept as
//! `7911123456` with `00000 000000` shows `07911 123456`. The cell's text is what the sheet shows
//! for such formats, so the leading zeros a user sees are never lost.
//!
//! Only formats made of `0` placeholders and literal characters are applied (`00000`,
//! `00000-0000`, `000-00-0000`, `(000) 000-0000`, `"ID-"000000`): they show every digit of a
//! whole number. Anything with decimals, grouping, `#`/`?` placeholders, sections, colours,
//! conditions, exponents or text is not applied; the number keeps its plain digits.

/// A format of `0` placeholders and literal text, as pieces.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DigitFormat {
    pieces: Vec<Piece>,
    zeros: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Zero,
    Lit(String),
}

impl DigitFormat {
    /// The format, if `code` is made only of `0`s and literals, with at least two `0`s (a plain
    /// `0` pads nothing).
    pub fn parse(code: &str) -> Option<DigitFormat> {
        let mut pieces = Vec::new();
        let mut zeros = 0;
        let mut chars = code.chars();
        while let Some(c) = chars.next() {
            match c {
                '0' => {
                    pieces.push(Piece::Zero);
                    zeros += 1;
                }
                '\\' => pieces.push(Piece::Lit(chars.next()?.to_string())),
                '"' => {
                    let lit: String = chars.by_ref().take_while(|&c| c != '"').collect();
                    pieces.push(Piece::Lit(lit));
                }
                ' ' | '-' | '(' | ')' | '/' | '+' | ':' => pieces.push(Piece::Lit(c.to_string())),
                _ => return None,
            }
        }
        (zeros >= 2).then_some(DigitFormat { pieces, zeros })
    }

    /// `v` as the format shows it, when `v` is a whole number from 0 up to 2^53.
    pub fn show(&self, v: f64) -> Option<String> {
        if v.fract() != 0.0 || !(0.0..9_007_199_254_740_992.0).contains(&v) {
            return None;
        }
        let digits = format!("{:0>width$}", v as u64, width = self.zeros);
        // Digits beyond the placeholders go to the first one, as Excel shows them.
        let extra = digits.len() - self.zeros;
        let mut next = digits.chars();
        let mut out = String::with_capacity(digits.len() + self.pieces.len());
        let mut first = true;
        for p in &self.pieces {
            match p {
                Piece::Zero if first => {
                    out.extend(next.by_ref().take(extra + 1));
                    first = false;
                }
                Piece::Zero => out.extend(next.next()),
                Piece::Lit(s) => out.push_str(s),
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(code: &str, v: f64) -> Option<String> {
        DigitFormat::parse(code)?.show(v)
    }

    #[test]
    fn zero_formats_show_the_digits_the_sheet_shows() {
        assert_eq!(show("00000", 2134.0).as_deref(), Some("02134"));
        assert_eq!(show("00000", 123456.0).as_deref(), Some("123456"));
        assert_eq!(
            show("00000-0000", 21341234.0).as_deref(),
            Some("02134-1234")
        );
        assert_eq!(
            show("000-00-0000", 12345678.0).as_deref(),
            Some("012-34-5678")
        );
        assert_eq!(
            show("(000) 000-0000", 2125551234.0).as_deref(),
            Some("(212) 555-1234")
        );
        assert_eq!(
            show("00000 000000", 7911123456.0).as_deref(),
            Some("07911 123456")
        );
        assert_eq!(show("\"ID-\"000000", 42.0).as_deref(), Some("ID-000042"));
    }

    #[test]
    fn other_formats_and_values_are_left_alone() {
        for code in [
            "0",
            "0.00",
            "#,##0",
            "00000;[Red]-00000",
            "@",
            "General",
            "0%",
            "00E+00",
            "yyyy",
        ] {
            assert_eq!(DigitFormat::parse(code), None, "{code}");
        }
        assert_eq!(show("00000", 2134.5), None);
        assert_eq!(show("00000", -2134.0), None);
    }
}
