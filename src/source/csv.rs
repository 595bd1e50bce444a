//! The CSV source: a streaming reader over `csv-core` that keeps the physical line each record
//! starts on, with the encoding and the delimiter detected from the start of the file.
//!
//! Why `csv-core` and not `csv::Reader`: the `csv` crate skips blank lines silently and stamps a
//! record after blank lines (or after a CRLF) with the line where the previous record ended, so
//! neither the blank rows nor the line numbers could be reported right. Here the line terminators
//! between records are skipped by hand and counted, and the record's bytes go through the same
//! DFA `csv` uses. Memory is one input buffer, one record buffer and at most a few held footer
//! rows, whatever the length of the file.
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, bail};
use encoding_rs::{UTF_8, UTF_16BE, UTF_16LE};

use super::encoding::{self, DecodeReader, Detected};
use super::quote::{self, QuotedBreak, Replay};
use super::{
    DEFAULT_MAX_FIELD_BYTES as DEFAULT_MAX_FIELD, Item, Pending, Queue, ReadError, Record,
    RowIssue, Source, SourceOptions, Trailer, blank_issue, clean_headers, footer_issue,
    looks_like_footer, read_up_to, too_large_issue,
};
use crate::model::{ErrorCode, Outcome, RowError};
use layout::{Layout, Sample};

mod layout;

/// Bytes read up front to detect the encoding (a Windows-1252 byte late in a file that starts in
/// plain ASCII is still found).
const PREFIX: usize = 1 << 20;
/// Bytes (decoded) and records parsed with each candidate to detect the delimiter.
const SAMPLE: usize = 64 * 1024;
const SAMPLE_RECORDS: usize = 50;
const BUF: usize = 64 * 1024;
/// A record longer than this is not a contact but a quote left open swallowing the file: stop,
/// rather than hold the rest of the file in memory.
const MAX_RECORD: usize = 64 << 20;

/// Candidate delimiters, in order of preference when two fit equally well.
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// A record reader that knows the physical line where each record starts and ends.
pub(crate) struct RawReader<R> {
    rdr: Replay<R>,
    core: csv_core::Reader,
    delimiter: u8,
    /// The byte that ends a line: `\n`, or `\r` in a file with old Mac line endings (no `\n`).
    newline: u8,
    /// 1-based line of the next unread byte.
    line: u64,
    out: Vec<u8>,
    ends: Vec<usize>,
    nfields: usize,
    start_line: u64,
    end_line: u64,
    /// The record ended with a line terminator (not with the end of the input).
    terminated: bool,
    /// The record ended inside a quoted field: the input ended before its closing quote.
    open_quote: bool,
    done: bool,
    /// The input bytes of the record just read, while they fit in `raw_cap` (`raw_full` once
    /// they did not): where a quote opened, where an invalid byte is, and what to read again
    /// after a quote left open.
    raw: Vec<u8>,
    raw_cap: usize,
    raw_full: bool,
    /// Offset in the (decoded) input of the next unread byte, and of the record just read.
    pos: u64,
    start_pos: u64,
    /// A field longer than this is cut to its first bytes and reported (see [`Oversize`]).
    max_field: usize,
    /// Output bytes dropped from the record just read (the middle of oversized fields).
    dropped: usize,
    /// The fields of the record just read that were over the limit, in column order.
    oversize: Vec<Oversize>,
}

/// A field of the record just read that was longer than the limit: its 0-based index and size.
/// Only its first [`KEEP`] bytes are kept, so a huge field (or a quote left open over the rest
/// of the file) costs no memory; every such field of a record is noted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Oversize {
    pub field: usize,
    pub bytes: u64,
}

/// Bytes kept of an oversized field, for the failure report.
const KEEP: usize = 64;

fn count(b: &[u8], byte: u8) -> u64 {
    b.iter().filter(|&&c| c == byte).count() as u64
}

impl<R: BufRead> RawReader<R> {
    pub(crate) fn new(rdr: R, delimiter: u8) -> Self {
        Self::with_limit(rdr, delimiter, DEFAULT_MAX_FIELD)
    }

    pub(crate) fn with_limit(rdr: R, delimiter: u8, max_field: usize) -> Self {
        RawReader {
            rdr: Replay::new(rdr),
            core: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            delimiter,
            newline: b'\n',
            line: 1,
            out: vec![0; 4096],
            ends: vec![0; 64],
            nfields: 0,
            start_line: 0,
            end_line: 0,
            terminated: false,
            open_quote: false,
            done: false,
            raw: Vec::new(),
            raw_cap: max_field.saturating_mul(2).max(1 << 20),
            raw_full: false,
            pos: 0,
            start_pos: 0,
            max_field: max_field.max(KEEP),
            dropped: 0,
            oversize: Vec::new(),
        }
    }

    /// Read the next record; `false` at the end of the input. On an error, `start_line` is the
    /// line where reading failed.
    pub(crate) fn read(&mut self) -> io::Result<bool> {
        if self.done {
            return Ok(false);
        }
        match self.skip_terminators() {
            Ok(true) => {}
            Ok(false) => {
                self.done = true;
                return Ok(false);
            }
            Err(e) => {
                self.start_line = self.line;
                return Err(e);
            }
        }
        self.start_line = self.line;
        self.start_pos = self.pos;
        self.read_record()
    }

    /// Skip the terminators between records here, counting them: blank lines and the `\n` of a
    /// CRLF that csv-core leaves behind. `false` at the end of the input.
    fn skip_terminators(&mut self) -> io::Result<bool> {
        loop {
            let buf = self.rdr.fill_buf()?;
            if buf.is_empty() {
                return Ok(false);
            }
            let n = buf
                .iter()
                .position(|&b| b != b'\n' && b != b'\r')
                .unwrap_or(buf.len());
            let more = n == buf.len();
            self.line += count(&buf[..n], self.newline);
            self.pos += n as u64;
            self.rdr.consume(n);
            if !more {
                return Ok(true);
            }
        }
    }

    /// Read the record that starts at the next byte (not a terminator).
    ///
    /// At the end of the input csv-core is first fed one newline, the *probe*: outside quotes it
    /// ends the record as the end of the input would; inside a quoted field the file left open it
    /// becomes part of the field, which is how an unclosed quote is told from a closed one.
    fn read_record(&mut self) -> io::Result<bool> {
        let (mut outlen, mut endlen) = (0, 0);
        let mut ended_nl = false;
        let mut probed = false;
        self.open_quote = false;
        self.raw.clear();
        self.raw_full = false;
        self.dropped = 0;
        self.oversize.clear();
        // csv-core counts every `\n` it consumes (quoted ones too): add its count to ours.
        let core_line = self.core.line();
        loop {
            let real = self.rdr.fill_buf()?;
            let probe = real.is_empty() && !probed;
            let input: &[u8] = if probe { b"\n" } else { real };
            let (res, nin, nout, nend) =
                self.core
                    .read_record(input, &mut self.out[outlen..], &mut self.ends[endlen..]);
            if probe {
                probed = nin > 0;
            } else if nin > 0 {
                ended_nl = input[nin - 1] == self.newline;
                if self.newline != b'\n' {
                    self.line += count(&input[..nin], self.newline);
                }
                if !self.raw_full && self.raw.len() + nin <= self.raw_cap {
                    self.raw.extend_from_slice(&input[..nin]);
                } else {
                    self.raw_full = true;
                }
                self.pos += nin as u64;
                self.rdr.consume(nin);
            }
            // csv-core numbers field ends from the start of the record, dropped bytes included.
            for e in &mut self.ends[endlen..endlen + nend] {
                *e -= self.dropped;
            }
            outlen += nout;
            endlen += nend;
            match res {
                csv_core::ReadRecordResult::InputEmpty => self.open_quote |= probe && probed,
                csv_core::ReadRecordResult::OutputFull => {
                    outlen = self.make_room(outlen, endlen)?
                }
                csv_core::ReadRecordResult::OutputEndsFull => {
                    let n = self.ends.len() * 2;
                    self.ends.resize(n, 0);
                }
                csv_core::ReadRecordResult::Record => {
                    if self.newline == b'\n' {
                        self.line += self.core.line() - core_line - u64::from(probed);
                    }
                    self.open_quote &= endlen > 0 && outlen > 0 && self.out[outlen - 1] == b'\n';
                    if self.open_quote {
                        self.ends[endlen - 1] -= 1; // the probe's newline
                    }
                    self.nfields = endlen;
                    self.cut_oversize();
                    self.terminated = !probed;
                    self.end_line = self.line - u64::from(ended_nl);
                    return Ok(true);
                }
                csv_core::ReadRecordResult::End => {
                    if self.newline == b'\n' {
                        self.line += self.core.line() - core_line - u64::from(probed);
                    }
                    self.done = true;
                    return Ok(false);
                }
            }
        }
    }

    /// The output buffer is full at `outlen`: a field over the limit keeps its first [`KEEP`]
    /// bytes and drops the rest (noted in `oversize`); otherwise the buffer doubles, up to
    /// [`MAX_RECORD`]. Returns the new output length.
    fn make_room(&mut self, outlen: usize, endlen: usize) -> io::Result<usize> {
        let start = if endlen == 0 {
            0
        } else {
            self.ends[endlen - 1]
        };
        if outlen - start > self.max_field {
            let keep = start + KEEP;
            match self.oversize.last_mut() {
                Some(o) if o.field == endlen => o.bytes += (outlen - keep) as u64,
                _ => self.oversize.push(Oversize {
                    field: endlen,
                    bytes: (outlen - keep) as u64,
                }),
            }
            self.dropped += outlen - keep;
            return Ok(keep);
        }
        if self.out.len() >= MAX_RECORD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the record starting at line {} is over {} MiB (a quote left open?)",
                    self.start_line,
                    MAX_RECORD >> 20
                ),
            ));
        }
        let n = self.out.len() * 2;
        self.out.resize(n, 0);
        Ok(outlen)
    }

    /// The record is complete: every field over the limit (whether or not part of it was
    /// dropped while reading) keeps only its first [`KEEP`] bytes; `oversize` lists them with
    /// their whole sizes.
    fn cut_oversize(&mut self) {
        let n = self.nfields;
        let dropped = std::mem::take(&mut self.oversize);
        for i in 0..n {
            let from = if i == 0 { 0 } else { self.ends[i - 1] };
            let end = self.ends[i];
            let lost = dropped.iter().find(|o| o.field == i).map_or(0, |o| o.bytes);
            if end - from <= self.max_field && lost == 0 {
                continue;
            }
            let mut keep = from + KEEP.min(end - from);
            // Cut on a character boundary: half a character would read as bad encoding.
            while keep > from && keep < end && (self.out[keep] & 0xC0) == 0x80 {
                keep -= 1;
            }
            let last = self.ends[n - 1];
            self.out.copy_within(end..last, keep);
            for e in &mut self.ends[i..n] {
                *e -= end - keep;
            }
            let bytes = (end - from) as u64 + lost;
            self.oversize.push(Oversize { field: i, bytes });
        }
    }

    /// The fields of the record just read that were over the limit, with their whole sizes.
    pub(crate) fn oversize(&self) -> &[Oversize] {
        &self.oversize
    }

    /// The input bytes of the record just read, if they were all kept.
    pub(crate) fn raw_bytes(&self) -> Option<&[u8]> {
        (!self.raw_full).then_some(&self.raw[..])
    }

    /// Read again from byte `offset` of the record just read (which must have been kept whole),
    /// as from line `line`: after a quote left open, the lines it swallowed are records again.
    pub(crate) fn rewind(&mut self, offset: usize, line: u64) {
        let tail = self.raw[offset..].to_vec();
        self.rdr.replay(tail);
        self.core = csv_core::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .build();
        self.line = line;
        self.pos = self.start_pos + offset as u64;
        self.done = false;
    }

    /// The record just read ends inside a quoted field (the input ended first): the line where
    /// that field's quote opened.
    pub(crate) fn open_quote_line(&self) -> Option<u64> {
        let last = self.nfields.checked_sub(1)?;
        self.open_quote
            .then(|| self.line - count(self.field(last), self.newline))
    }

    pub(crate) fn len(&self) -> usize {
        self.nfields
    }

    pub(crate) fn field(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.out[start..self.ends[i]]
    }

    /// Every field of the record, concatenated.
    fn bytes(&self) -> &[u8] {
        &self.out[..self.nfields.checked_sub(1).map_or(0, |i| self.ends[i])]
    }

    fn is_blank(&self) -> bool {
        (0..self.nfields).all(|i| self.field(i).iter().all(u8::is_ascii_whitespace))
    }
}

fn show_delimiter(d: u8) -> String {
    match d {
        b'\t' => "TAB".to_owned(),
        d => format!("{:?}", d as char),
    }
}

/// Refuse files that are not text, with a hint of what they are.
fn refuse_binary(file: &str, prefix: &[u8], det: &Detected) -> anyhow::Result<()> {
    if det.encoding == UTF_16LE || det.encoding == UTF_16BE {
        return Ok(());
    }
    let head = &prefix[..prefix.len().min(SAMPLE)];
    let what = if head.starts_with(b"PK\x03\x04") {
        Some("a ZIP archive (an .xlsx workbook? give it the .xlsx extension)")
    } else if head.starts_with(b"\xD0\xCF\x11\xE0") {
        Some("an old Office document (an Excel 97-2003 .xls? save it as .xlsx or CSV)")
    } else if head.starts_with(b"%PDF") {
        Some("a PDF document")
    } else {
        None
    };
    if let Some(what) = what {
        bail!("{file}: not CSV text: the file is {what}");
    }
    // A stray NUL or two in text (a database export) is its row's `invisible_characters`
    // error; many are binary data, or UTF-16 without a byte-order mark.
    let nuls = count(head, 0);
    if let Some(at) = head.iter().position(|&b| b == 0)
        && (nuls > 4 || nuls * 20 > head.len() as u64)
    {
        let line = count(&head[..at], b'\n') + 1;
        bail!(
            "{file}: not CSV text: binary data ({nuls} NUL bytes in the first {} bytes, the first on line {line}, at byte {at}); if it is UTF-16 text without a byte-order mark, set the encoding in the mapping's source section",
            head.len()
        );
    }
    let controls = head
        .iter()
        .filter(|&&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c)) || b == 0x7f)
        .count();
    if controls > 8 && controls * 100 > head.len() {
        bail!(
            "{file}: not CSV text: {controls} control bytes in the first {} bytes",
            head.len()
        );
    }
    Ok(())
}

/// Read the start of the file (up to [`PREFIX`]) for the detections; `true` when the file is
/// longer than that.
fn read_prefix(file: &str, f: &mut impl Read) -> anyhow::Result<(Vec<u8>, bool)> {
    let mut prefix = vec![0; PREFIX];
    let n = read_up_to(f, &mut prefix).with_context(|| format!("{file}: cannot read"))?;
    prefix.truncate(n);
    if n == 0 {
        bail!("{file}: the file is empty: there is no header row");
    }
    Ok((prefix, n == PREFIX))
}

/// The encoding: the label in `opts`, a BOM, or detected from the prefix; a binary file is
/// refused. Warnings about it go to `warnings`, naming the file.
fn detect_encoding(
    file: &str,
    prefix: &[u8],
    truncated: bool,
    opts: &SourceOptions,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Detected> {
    let forced = opts
        .encoding
        .as_deref()
        .map(encoding::for_label)
        .transpose()
        .with_context(|| format!("{file}: the source encoding"))?;
    let mut found = Vec::new();
    let det = encoding::detect(prefix, truncated, forced, &mut found);
    refuse_binary(file, prefix, &det)?;
    warnings.extend(found.into_iter().map(|w| format!("{file}: {w}")));
    Ok(det)
}

/// The file from just after its BOM, decoded to UTF-8 as it is read.
fn decoded_reader<R>(
    file: &str,
    mut f: R,
    det: &Detected,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Box<dyn BufRead + Send>>
where
    R: Read + Seek + Send + 'static,
{
    f.seek(SeekFrom::Start(det.bom_len as u64))
        .with_context(|| format!("{file}: cannot read"))?;
    let mut rdr: Box<dyn BufRead + Send> = if det.encoding == UTF_8 {
        Box::new(BufReader::with_capacity(BUF, f))
    } else {
        Box::new(DecodeReader::new(f, det.encoding))
    };
    // csv-core drops a UTF-8 BOM at the start of its input without a word: a second BOM
    // (a file "fixed" twice) would vanish unreported, so look for it first.
    if rdr
        .fill_buf()
        .with_context(|| format!("{file}: cannot read"))?
        .starts_with("\u{FEFF}".as_bytes())
    {
        warnings.push(format!(
            "{file}: a second byte-order mark (U+FEFF) follows the first one; removed"
        ));
    }
    Ok(rdr)
}

/// Read up to the header record (the first at or after `header_line`) and return its names,
/// cleaned (see [`clean_headers`]).
fn read_header(
    file: &str,
    raw: &mut RawReader<Box<dyn BufRead + Send>>,
    header_line: u64,
    det: &Detected,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Vec<String>> {
    loop {
        if !raw.read().with_context(|| format!("{file}: cannot read"))? {
            if header_line > 1 {
                bail!(
                    "{file}: no header row: the file has no row at or after line {header_line} (header_row)"
                );
            }
            bail!("{file}: the file is empty: there is no header row");
        }
        if raw.start_line >= header_line {
            break;
        }
    }
    header_quote(file, raw)?;
    let mut headers: Vec<String> = (0..raw.len())
        .map(|i| String::from_utf8_lossy(raw.field(i)).into_owned())
        .collect();
    if (0..raw.len()).any(|i| std::str::from_utf8(raw.field(i)).is_err()) {
        warnings.push(format!(
            "{file}: the header row is not valid {}: undecodable bytes shown as U+FFFD",
            det.encoding.name()
        ));
    }
    clean_headers(file, &mut headers, |i| (i + 1).to_string(), warnings);
    Ok(headers)
}

/// A header record that spans lines because a quote in it is left open (it swallowed the rows
/// below, so every column would be "missing"): one error naming the line and the quote. A header
/// name on two lines in well-formed quotes is fine.
fn header_quote<R: BufRead>(file: &str, raw: &RawReader<R>) -> anyhow::Result<()> {
    let (start, end) = (raw.start_line, raw.end_line);
    if end <= start {
        return Ok(());
    }
    let Some(bytes) = raw.raw_bytes() else {
        bail!(
            "{file}: line {start}: the header row runs to line {end} and is over {} MiB: a quote in it is never closed",
            raw.raw_cap >> 20
        );
    };
    let qb = match quote::quoted_break(bytes, raw.delimiter) {
        Some(qb) if !qb.well_formed() || raw.open_quote => qb,
        _ => return Ok(()),
    };
    let line = start + count(&bytes[..qb.open], raw.newline);
    let text = String::from_utf8_lossy(&bytes[qb.open..quote::line_after(bytes, qb.open)]);
    let text: String = text.trim_end().chars().take(60).collect();
    let how = match qb.close {
        None => format!("is never closed: it runs to the end of the file (line {end})"),
        Some(_) => format!("is not closed on its line: it runs to line {end}"),
    };
    bail!(
        "{file}: line {line}: the header row has a quote that {how}, so the rows below it were read as one header name: the quote opens {text:?}; remove it (or close it: a quote inside a quoted name is written twice) and run again"
    )
}

/// The fields of the record just read, as text; the columns that did not decode (or hold
/// U+FFFD already); and whether any bytes were invalid (rather than U+FFFD in the text).
fn decode_fields<R: BufRead>(raw: &RawReader<R>) -> (Vec<String>, Vec<usize>, bool) {
    let n = raw.len();
    let mut fields = Vec::with_capacity(n);
    let mut undecodable = Vec::new();
    // Fast path: check the whole record once. Its fields are valid on their own only if each
    // boundary is also a character boundary (bytes split by a delimiter can rejoin).
    let ends = &raw.ends[..n];
    match std::str::from_utf8(raw.bytes()) {
        Ok(all) if ends.iter().all(|&e| all.is_char_boundary(e)) => {
            let mut start = 0;
            for &end in ends {
                fields.push(all[start..end].to_owned());
                start = end;
            }
        }
        _ => {
            for i in 0..n {
                match std::str::from_utf8(raw.field(i)) {
                    Ok(s) => fields.push(s.to_owned()),
                    Err(_) => {
                        undecodable.push(i);
                        fields.push(String::from_utf8_lossy(raw.field(i)).into_owned());
                    }
                }
            }
        }
    }
    let invalid_bytes = !undecodable.is_empty();
    // U+FFFD is EF BF BD: look for it only in the rare records holding an 0xEF byte.
    if !invalid_bytes && raw.bytes().contains(&0xEF) {
        undecodable.extend((0..n).filter(|&i| fields[i].contains('\u{FFFD}')));
    }
    (fields, undecodable, invalid_bytes)
}

/// What to do with a record that spans lines (see [`CsvSource::judge_quote`]).
enum Verdict {
    /// Not a quote left open.
    Fine,
    /// Stop reading at the record, for this cause.
    Stop(String),
    /// The record is this invalid row; read again from its byte `.1` as line `.2`.
    Resync(RowIssue, usize, u64),
}

/// The record just read has the header's `w` fields, or leaves out unnamed columns at the end
/// (down to `named`), or adds empty fields past it: nothing shifts.
fn fits_width<R: BufRead>(raw: &RawReader<R>, w: usize, named: usize) -> bool {
    let n = raw.len();
    n == w
        || (n < w && n >= named)
        || (n > w && (w..n).all(|i| raw.field(i).iter().all(u8::is_ascii_whitespace)))
}

/// How `region` reads on its own: records that are not blank (up to 64), how many of them fit
/// the header (see [`fits_width`]), and whether the first one does.
fn rows_again(
    region: &[u8],
    delimiter: u8,
    newline: u8,
    w: usize,
    named: usize,
) -> (usize, usize, bool) {
    let mut r = RawReader::new(region, delimiter);
    r.newline = newline;
    let (mut n, mut fit, mut first) = (0, 0, false);
    while n < 64 && r.read().unwrap_or(false) {
        if r.is_blank() {
            continue;
        }
        let ok = fits_width(&r, w, named) && !r.open_quote;
        first |= n == 0 && ok;
        n += 1;
        fit += usize::from(ok);
    }
    (n, fit, first)
}

/// The fields of the first record of `bytes`, as text, for a failure report.
fn fields_of(bytes: &[u8], delimiter: u8, newline: u8) -> Vec<String> {
    let mut r = RawReader::new(bytes, delimiter);
    r.newline = newline;
    if !r.read().unwrap_or(false) {
        return Vec::new();
    }
    (0..r.len())
        .map(|i| {
            let f = String::from_utf8_lossy(r.field(i));
            f.trim_end_matches(['\r', '\n']).to_owned()
        })
        .collect()
}

/// An invalid `ragged_row` issue: the values cannot be matched to their columns.
fn ragged_issue(line: u64, raw: Vec<String>, message: String) -> RowIssue {
    RowIssue {
        line,
        raw,
        outcome: Outcome::Invalid,
        error: RowError::new(ErrorCode::RaggedRow, None, message),
    }
}

/// A CSV (or TSV, or `;`-separated) file as a stream of records. See the module doc.
pub struct CsvSource {
    file: String,
    raw: RawReader<Box<dyn BufRead + Send>>,
    encoding: Detected,
    headers: Vec<String>,
    warnings: Vec<String>,
    describe: String,
    out: Queue,
    trailer: Trailer,
    /// Columns up to the last one with a name: a row may stop there.
    named_width: usize,
    /// Last line of the previous record (or of the header).
    prev_end: u64,
    delimiter: u8,
    /// Per column: the mapping reads it (`None`: every column counts).
    read: Option<Vec<bool>>,
    /// Lines of notes or a title above the header were skipped.
    preamble: bool,
    done: bool,
    error: Option<ReadError>,
}

impl CsvSource {
    /// Open `path`, detect what is not set in `opts`, and read the header.
    pub fn open(path: &Path, opts: &SourceOptions) -> anyhow::Result<CsvSource> {
        let file = path.display().to_string();
        let f = File::open(path).with_context(|| format!("{file}: cannot open"))?;
        CsvSource::from_reader(&file, f, opts)
    }

    /// [`CsvSource::open`] on any seekable reader; `file` names it in every message.
    pub fn from_reader<R>(file: &str, mut f: R, opts: &SourceOptions) -> anyhow::Result<CsvSource>
    where
        R: Read + Seek + Send + 'static,
    {
        let file = file.to_owned();
        let (prefix, truncated) = read_prefix(&file, &mut f)?;
        let mut warnings = Vec::new();
        let det = detect_encoding(&file, &prefix, truncated, opts, &mut warnings)?;
        // Old Mac files end lines with a lone CR: count those, or every row would be "line 1".
        let newline = if !prefix.contains(&b'\n') && prefix.contains(&b'\r') {
            b'\r'
        } else {
            b'\n'
        };
        let sample = Sample::new(&prefix, truncated, &det, newline);
        let Layout {
            header_line,
            delimiter,
            how,
            preamble,
        } = layout::decide(&file, &sample, opts, &mut warnings)?;
        drop(prefix);

        let rdr = decoded_reader(&file, f, &det, &mut warnings)?;
        let mut raw = RawReader::with_limit(rdr, delimiter, opts.max_field_bytes);
        raw.newline = newline;
        let headers = read_header(&file, &mut raw, header_line, &det, &mut warnings)?;
        let describe = format!(
            "CSV, {}, delimiter {} ({how}), header on line {}",
            det.describe(),
            show_delimiter(delimiter),
            raw.start_line
        );
        Ok(CsvSource {
            named_width: headers
                .iter()
                .rposition(|h| !h.is_empty())
                .map_or(0, |i| i + 1),
            file,
            prev_end: raw.end_line,
            raw,
            encoding: det,
            headers,
            warnings,
            describe,
            out: Queue::default(),
            trailer: Trailer::default(),
            delimiter,
            read: None,
            preamble,
            done: false,
            error: None,
        })
    }

    /// Lines between the previous record and `until` (exclusive) were blank.
    fn blank_lines(&mut self, until: u64) {
        if until > self.prev_end + 1 {
            let p = Pending::Blanks {
                from: self.prev_end + 1,
                to: until,
                what: "blank line",
            };
            self.trailer.blank(p, &mut self.out);
        }
    }

    /// Stop reading at `at`: the rows before it are handed out, none after.
    fn fail(&mut self, at: u64, cause: String) {
        self.trailer.release(&mut self.out);
        self.error = Some(ReadError {
            file: self.file.clone(),
            unit: "line",
            at,
            cause,
        });
        self.done = true;
    }

    fn step(&mut self) {
        match self.raw.read() {
            Err(e) => self.fail(self.raw.start_line, e.to_string()),
            Ok(false) => {
                self.blank_lines(self.raw.line);
                self.trailer.finish(&mut self.out);
                self.done = true;
            }
            Ok(true) => {
                self.blank_lines(self.raw.start_line);
                self.classify();
                self.prev_end = self.raw.end_line;
            }
        }
    }

    /// Turn the record just read into one item: a record, or why it is not one.
    fn classify(&mut self) {
        let line = self.raw.start_line;
        let n = self.raw.len();
        let (mut fields, undecodable, invalid_bytes) = decode_fields(&self.raw);
        let Some(first) = fields.iter().position(|f| !f.trim().is_empty()) else {
            let what = if n > 1 {
                "row of empty cells (delimiters only)"
            } else {
                "blank line"
            };
            let p = Pending::Item(blank_issue(line, fields, what));
            self.trailer.blank(p, &mut self.out);
            return;
        };
        if self.raw.end_line > line && self.quote_left_open() {
            return;
        }
        if let Some(quote) = self.raw.open_quote_line() {
            let issue = self.unclosed_quote(line, quote, fields);
            self.trailer
                .normal(Pending::Item(Err(issue)), &mut self.out);
            return;
        }

        let w = self.headers.len();
        // A trailing delimiter (empty fields past the header) shifts nothing: drop them. Nor does
        // leaving out the unnamed columns at the end of the header: add them back empty.
        if n > w && fields[w..].iter().all(|f| f.trim().is_empty()) {
            fields.truncate(w);
        } else if n < w && n >= self.named_width {
            fields.resize(w, String::new());
        }
        let ragged = fields.len() != w;
        let single = fields[first + 1..].iter().all(|f| f.trim().is_empty());
        // A short last row with no line end is a file cut mid-row, not a footer, unless its
        // text says it is one.
        let footer = ((ragged && single && self.raw.terminated)
            || ((ragged || single) && looks_like_footer(&fields[first])))
        .then(|| footer_issue(line, fields.clone(), fields[first].trim()));

        let over = self.oversize_read(&mut fields);
        let item = if ragged {
            Err(self.ragged(line, fields))
        } else if !over.is_empty() {
            Err(self.too_large(line, fields, &over))
        } else if let Some(&c) = undecodable.first() {
            Err(self.undecodable(line, fields, c, undecodable.len(), invalid_bytes))
        } else {
            Ok(Record {
                line,
                fields,
                numeric: Vec::new(),
            })
        };
        let p = Pending::Item(item);
        match footer {
            Some(f) => self.trailer.candidate(p, f, &mut self.out),
            None => self.trailer.normal(p, &mut self.out),
        }
    }

    /// The record just read spans lines: if a quote left open made it so, report it and return
    /// `true` (see the `quote` module): the damaged row is invalid and the lines after the one
    /// where the quote opened are read again as rows, or reading stops at the row.
    fn quote_left_open(&mut self) -> bool {
        match self.judge_quote() {
            Verdict::Fine => false,
            Verdict::Stop(cause) => {
                self.fail(self.raw.start_line, cause);
                true
            }
            Verdict::Resync(issue, resume, line) => {
                self.raw.rewind(resume, line);
                self.trailer
                    .normal(Pending::Item(Err(issue)), &mut self.out);
                true
            }
        }
    }

    fn judge_quote(&self) -> Verdict {
        let start = self.raw.start_line;
        let (w, named) = (self.headers.len(), self.named_width);
        let fits = fits_width(&self.raw, w, named);
        let Some(raw) = self.raw.raw_bytes() else {
            // Too long to keep, so it cannot be read again: stop if it looks damaged.
            if !self.raw.open_quote && fits && self.raw.oversize().is_empty() {
                return Verdict::Fine;
            }
            let q = self.raw.open_quote_line().unwrap_or(start);
            return Verdict::Stop(format!(
                "unterminated_quote: the record starting on line {start} runs to line {} and is over {} MiB (a quote opened on line {q} and never closed?): too long to read its lines again as rows",
                self.raw.end_line,
                self.raw.raw_cap >> 20
            ));
        };
        let Some(qb) = quote::quoted_break(raw, self.delimiter) else {
            return Verdict::Fine;
        };
        if qb.well_formed() && fits {
            return Verdict::Fine;
        }
        let nl = self.raw.newline;
        let quote_line = start + count(&raw[..qb.open], nl);
        let resume = quote::line_after(raw, qb.open);
        let (n, fit, first) = rows_again(&raw[resume..], self.delimiter, nl, w, named);
        let again = n == 0 || (first && fit * 4 >= n * 3 && (!qb.well_formed() || n >= 2));
        if !again && qb.well_formed() {
            return Verdict::Fine; // a ragged row with a note on several lines
        }
        let what = self.quote_problem(&qb, quote_line, raw);
        if !again {
            return Verdict::Stop(format!(
                "unterminated_quote: {what}, and the lines after line {quote_line} do not read as rows of {}: close the quote (a quote inside a quoted value is written twice) and run again",
                crate::words::count(w as u64, "field")
            ));
        }
        let after = if n == 0 {
            String::new()
        } else {
            format!("; the lines after line {quote_line} read as rows again and are read as such")
        };
        let issue = RowIssue {
            line: start,
            raw: fields_of(&raw[..resume], self.delimiter, nl),
            outcome: Outcome::Invalid,
            error: RowError::new(
                ErrorCode::UnterminatedQuote,
                self.headers.get(qb.field).map(String::as_str),
                format!(
                    "{what}{after}: only this row is left out; close its quote and import it again"
                ),
            ),
        };
        Verdict::Resync(issue, resume, quote_line + 1)
    }

    /// What is wrong with the quoted field `qb` of the record whose bytes are `raw`.
    fn quote_problem(&self, qb: &QuotedBreak, quote_line: u64, raw: &[u8]) -> String {
        let name = self.headers.get(qb.field).map_or("", String::as_str);
        let opened = format!("the quote opened on line {quote_line} (column {name:?})");
        match qb.close {
            None => format!(
                "{opened} is never closed: it runs to the end of the file (line {})",
                self.raw.end_line
            ),
            Some(c) => {
                let line = self.raw.start_line + count(&raw[..c.at], self.raw.newline);
                match c.then {
                    Some(b) => format!(
                        "{opened} is not closed on its line: it runs to line {line}, where a quote followed by {:?} ends it",
                        b as char
                    ),
                    None => format!(
                        "{opened} runs to line {line} and leaves the row with {}, not {}",
                        crate::words::count(self.raw.len() as u64, "field"),
                        self.headers.len()
                    ),
                }
            }
        }
    }

    /// The fields over the limit that the mapping reads (every one when it did not say which
    /// it reads). Each oversized field is marked cut with `…` in `fields`; one that no mapping
    /// reads costs its row nothing (only its start is kept, for the reports).
    fn oversize_read(&self, fields: &mut [String]) -> Vec<Oversize> {
        let mut read = Vec::new();
        for &o in self.raw.oversize() {
            if let Some(f) = fields.get_mut(o.field) {
                f.push('…');
            }
            if self
                .read
                .as_ref()
                .is_none_or(|r| r.get(o.field) == Some(&true))
            {
                read.push(o);
            }
        }
        read
    }

    /// The `field_too_large` issue of a record with fields over the limit that the mapping reads
    /// (their start is kept): the first is the error's column, the message names each with its
    /// size.
    fn too_large(&self, line: u64, fields: Vec<String>, over: &[Oversize]) -> RowIssue {
        let name_of = |o: &Oversize| self.headers.get(o.field).map_or("", String::as_str);
        let name = name_of(&over[0]);
        let what = format!("column {name:?}");
        let mut issue =
            too_large_issue(line, fields, name, what, over[0].bytes, self.raw.max_field);
        if over.len() > 1 {
            let more: Vec<String> = over[1..]
                .iter()
                .map(|o| format!("column {:?} ({} bytes)", name_of(o), o.bytes))
                .collect();
            let msg = &mut issue.error.message;
            msg.push_str(&format!("; also over the limit: {}", more.join(", ")));
        }
        issue
    }

    /// " (the record spans lines 2–5: …)" when the record just read spans several lines.
    fn span_note(&self, line: u64, why: &str) -> String {
        if self.raw.end_line > line {
            format!(
                " (the record spans lines {line}–{}{why})",
                self.raw.end_line
            )
        } else {
            String::new()
        }
    }

    /// The `ragged_row` issue of a record with more or fewer fields than the header.
    fn ragged(&self, line: u64, fields: Vec<String>) -> RowIssue {
        let (w, n) = (self.headers.len(), self.raw.len());
        let span = self.span_note(line, ": is a quote left open?");
        ragged_issue(
            line,
            fields,
            format!(
                "expected {} (one per header column), found {n}: the values cannot be matched to their columns{span}",
                crate::words::count(w as u64, "field")
            ),
        )
    }

    /// The issue of the last record when the file ends inside a quoted field opened on `quote`:
    /// the file was cut short (or the quote never closed), so the record is not whole.
    fn unclosed_quote(&self, line: u64, quote: u64, fields: Vec<String>) -> RowIssue {
        let span = self.span_note(line, "");
        RowIssue {
            line,
            raw: fields,
            outcome: Outcome::Invalid,
            error: RowError::new(
                ErrorCode::UnterminatedQuote,
                None,
                format!(
                    "the file ends inside a quoted field opened on line {quote}: the file was cut short or the quote was never closed, so this row is not whole{span}"
                ),
            ),
        }
    }

    /// The issue of a record whose column `c` (and `count - 1` others) did not decode:
    /// `invalid_encoding` (naming the line and byte offset of the first bad byte) when it holds
    /// bytes that are not valid in the file's encoding, `encoding` when it holds U+FFFD already.
    fn undecodable(
        &self,
        line: u64,
        fields: Vec<String>,
        c: usize,
        count: usize,
        invalid_bytes: bool,
    ) -> RowIssue {
        let name = self.headers.get(c).map_or("", String::as_str);
        let more = match count {
            1 => String::new(),
            k => format!(
                " (and {})",
                crate::words::count(k as u64 - 1, "more column")
            ),
        };
        let (code, message) = if invalid_bytes {
            let hint = if self.encoding.encoding == UTF_8 && self.encoding.how == "detected" {
                "; the file as a whole is UTF-8, this row is not: if the file is really a Windows export, set `encoding: windows-1252` in the mapping's source section"
            } else {
                ""
            };
            let at = self.first_bad_byte().map_or(String::new(), |(l, o)| {
                format!("line {l}, byte offset {o}: ")
            });
            let message = format!(
                "{at}column {name:?}: bytes that are not valid {}, read as {:?}{more}{hint}",
                self.encoding.encoding.name(),
                fields[c]
            );
            (ErrorCode::InvalidEncoding, message)
        } else {
            let message = format!(
                "column {name:?}: {:?} holds U+FFFD replacement characters: the text was damaged by an earlier failed decoding{more}",
                fields[c]
            );
            (ErrorCode::Encoding, message)
        };
        RowIssue {
            line,
            outcome: Outcome::Invalid,
            error: RowError::new(code, Some(name), message),
            raw: fields,
        }
    }

    /// The line and the byte offset in the file of the first byte of the record just read that
    /// is not valid UTF-8.
    fn first_bad_byte(&self) -> Option<(u64, u64)> {
        let raw = self.raw.raw_bytes()?;
        let off = std::str::from_utf8(raw).err()?.valid_up_to();
        let line = self.raw.start_line + count(&raw[..off], self.raw.newline);
        let at = self.encoding.bom_len as u64 + self.raw.start_pos + off as u64;
        Some((line, at))
    }
}

impl Iterator for CsvSource {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.out.pop() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            self.step();
        }
    }
}

impl Source for CsvSource {
    fn headers(&self) -> &[String] {
        &self.headers
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn take_error(&mut self) -> Option<ReadError> {
        self.error.take()
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn skipped_preamble(&self) -> bool {
        self.preamble
    }

    fn read_columns(&mut self, columns: &[usize]) {
        let mut read = vec![false; self.headers.len()];
        for &c in columns {
            if let Some(r) = read.get_mut(c) {
                *r = true;
            }
        }
        self.read = Some(read);
    }
}

#[cfg(test)]
mod tests {
    use super::layout::sniff_delimiter;
    use super::*;

    #[test]
    fn sniffing_needs_more_than_one_field_and_prefers_consistency() {
        assert_eq!(sniff_delimiter(b"email\na@x.com\n", false, 1), None);
        // `,` splits the header in two but the rows unevenly; `;` splits every line in three.
        let s = b"Name;Note, more;Id\nAnn;a, b, c;1\nBob;x;2\n";
        assert_eq!(sniff_delimiter(s, false, 1), Some(b';'));
        // Equally consistent: the wider header wins.
        assert_eq!(sniff_delimiter(b"a|b|c,d\n1|2|3,4\n", false, 1), Some(b'|'));
        // Title lines above the header are not part of the structure.
        assert_eq!(
            sniff_delimiter(b"Report, March\nName\tEmail\nAnn\ta@x.com\n", false, 2),
            Some(b'\t')
        );
    }

    #[test]
    fn a_record_cut_by_the_end_of_the_sample_is_ignored() {
        // The last line is cut inside a quoted field that would hold a `|`.
        let s = b"a|b\n1|2\n3|\"x";
        assert_eq!(sniff_delimiter(s, true, 1), Some(b'|'));
    }

    #[test]
    fn raw_reader_counts_lines_across_crlf_blank_lines_and_quoted_newlines() {
        let data: &[u8] = b"h1,h2\r\n\r\n\"a\nb\",c\r\n\n\nd,e";
        let mut r = RawReader::new(data, b',');
        let mut got = vec![];
        while r.read().unwrap() {
            got.push((r.start_line, r.end_line, r.len()));
        }
        assert_eq!(got, [(1, 1, 2), (3, 4, 2), (7, 7, 2)]);
        assert_eq!(r.line, 7);
    }
}
