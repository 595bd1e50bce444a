//! A quote left open in a CSV file: finding where it opened in the bytes of the record it
//! swallowed, and reading those bytes again ([`Replay`]) when the lines after it turn out to be
//! rows.
//!
//! A record that spans lines is normal (a note with line breaks, in quotes). It is a quote left
//! open when the quoted field holding the line break (a) runs to the end of the file, (b) is
//! "closed" by a quote that a delimiter or a line end does not follow (in a swallowed file that
//! quote is the *opening* quote of a later field: `…,"Globex, Inc.",…`), or (c) leaves the record
//! with the wrong number of fields. The caller then reads the lines after the one where the quote
//! opened on their own: if they read as rows of the header's width, reading goes on from there
//! and only the damaged row is invalid; otherwise the run stops at that row.
use std::io::{self, BufRead, Read};

/// A `BufRead` that hands out bytes put back with [`Replay::replay`] before its inner reader's.
pub(crate) struct Replay<R> {
    pending: Vec<u8>,
    at: usize,
    inner: R,
}

impl<R> Replay<R> {
    pub(crate) fn new(inner: R) -> Self {
        Replay {
            pending: Vec::new(),
            at: 0,
            inner,
        }
    }

    /// Put `bytes` back in front of what is left to read.
    pub(crate) fn replay(&mut self, mut bytes: Vec<u8>) {
        bytes.extend_from_slice(&self.pending[self.at..]);
        self.pending = bytes;
        self.at = 0;
    }
}

impl<R: BufRead> BufRead for Replay<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.at < self.pending.len() {
            Ok(&self.pending[self.at..])
        } else {
            self.inner.fill_buf()
        }
    }

    fn consume(&mut self, amt: usize) {
        if self.at < self.pending.len() {
            self.at += amt;
            if self.at >= self.pending.len() {
                self.pending = Vec::new();
                self.at = 0;
            }
        } else {
            self.inner.consume(amt);
        }
    }
}

impl<R: BufRead> Read for Replay<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        super::encoding::read_buffered(self, buf)
    }
}

/// The first quoted field of a record's bytes that holds a line break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuotedBreak {
    /// 0-based field of the record.
    pub field: usize,
    /// Offset of its opening quote.
    pub open: usize,
    /// Its closing quote, `None` when the bytes end inside the field.
    pub close: Option<Close>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Close {
    /// Offset of the quote that ended the field.
    pub at: usize,
    /// The byte after it when that is neither a delimiter nor a line end: the quote was not a
    /// closing quote but the opening quote of a later field.
    pub then: Option<u8>,
}

impl QuotedBreak {
    /// The field's quotes are well formed: a line break inside a note, not a quote left open.
    pub fn well_formed(&self) -> bool {
        self.close.is_some_and(|c| c.then.is_none())
    }
}

/// Find the first badly quoted field holding a line break in `raw` (the bytes of one record, as
/// csv-core reads them: `"` quotes, `""` escapes one, a quote inside an unquoted field is text),
/// or else the first well-formed one.
pub(crate) fn quoted_break(raw: &[u8], delimiter: u8) -> Option<QuotedBreak> {
    #[derive(Clone, Copy)]
    enum St {
        Start,
        Field,
        Quoted,
        QuoteInQuoted,
    }
    let is_break = |b: u8| b == b'\n' || b == b'\r';
    let (mut st, mut field, mut open, mut broke) = (St::Start, 0, 0, false);
    let mut first_ok = None;
    for (i, &b) in raw.iter().enumerate() {
        st = match st {
            St::Start if b == b'"' => {
                (open, broke) = (i, false);
                St::Quoted
            }
            St::Start | St::Field if b == delimiter => {
                field += 1;
                St::Start
            }
            St::Start | St::Field => St::Field,
            St::Quoted if b == b'"' => St::QuoteInQuoted,
            St::Quoted => {
                broke |= is_break(b);
                St::Quoted
            }
            St::QuoteInQuoted if b == b'"' => St::Quoted,
            St::QuoteInQuoted => {
                if broke {
                    let then = (b != delimiter && !is_break(b)).then_some(b);
                    let close = Some(Close { at: i - 1, then });
                    let q = QuotedBreak { field, open, close };
                    if then.is_some() {
                        return Some(q);
                    }
                    first_ok.get_or_insert(q);
                }
                if b == delimiter {
                    field += 1;
                    St::Start
                } else {
                    St::Field
                }
            }
        };
    }
    match st {
        // Open at the end: the quote left open, whatever came before it.
        St::Quoted if broke => Some(QuotedBreak {
            field,
            open,
            close: None,
        }),
        St::QuoteInQuoted if broke => first_ok.or(Some(QuotedBreak {
            field,
            open,
            close: Some(Close {
                at: raw.len() - 1,
                then: None,
            }),
        })),
        _ => first_ok,
    }
}

/// The offset just after the first line break at or after `from` (a CRLF counts as one).
pub(crate) fn line_after(raw: &[u8], from: usize) -> usize {
    let Some(i) = raw[from..]
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .map(|i| from + i)
    else {
        return raw.len();
    };
    if raw[i] == b'\r' && raw.get(i + 1) == Some(&b'\n') {
        i + 2
    } else {
        i + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_with_a_line_break_is_well_formed() {
        let q = quoted_break(b"Ann,\"two\nlines\",3\n", b',').unwrap();
        assert_eq!((q.field, q.open), (1, 4));
        assert!(q.well_formed());
        assert_eq!(line_after(b"Ann,\"two\nlines\",3\n", q.open), 9);
        assert_eq!(quoted_break(b"Ann,\"one line\",3\n", b','), None);
        assert_eq!(quoted_break(b"Ann,5'11\",\"x\"\"\",3\n", b','), None);
    }

    #[test]
    fn a_quote_left_open_runs_to_the_end_or_closes_on_a_later_opening_quote() {
        let q = quoted_break(b"Ann,\"open,1\r\nBob,b@x.com,2\r\n", b',').unwrap();
        assert_eq!(q.close, None);
        assert_eq!(line_after(b"Ann,\"open,1\r\nBob", q.open), 13);
        let raw = b"Ann,\"open,1\nBob,\"Globex, Inc.\",2\n";
        let q = quoted_break(raw, b',').unwrap();
        assert_eq!(q.close.unwrap().then, Some(b'G'));
        assert!(!q.well_formed());
        // A note on two lines before it does not hide it.
        let raw = b"\"a\nb\",\"open,1\nBob,\"Globex\",2\n";
        let q = quoted_break(raw, b',').unwrap();
        assert_eq!((q.field, q.open), (1, 6));
        assert!(!q.well_formed());
    }

    #[test]
    fn replayed_bytes_come_first() {
        let mut r = Replay::new(&b"world"[..]);
        r.replay(b"hello ".to_vec());
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello world");
    }
}
