//! The text encoding of a CSV file: detected from its first bytes (a BOM, else UTF-8 if the prefix
//! is valid UTF-8, else UTF-16 without a BOM if the NUL pattern says so, else Windows-1252), or set by
//! the mapping; and [`DecodeReader`], a `BufRead` that transcodes to UTF-8 chunk by chunk so memory
//! stays flat however long the file is.
//!
//! UTF-8 files are not transcoded at all: the CSV reader validates each field, so a stray invalid
//! byte in a file that is UTF-8 as a whole becomes one `invalid_encoding` row issue (naming the
//! line and the byte offset), not a crash and not a switch of the whole file to Windows-1252.
use std::io::{self, BufRead, Read};

use anyhow::bail;
use encoding_rs::{CoderResult, Decoder, Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252};

/// How the bytes of a file become text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Detected {
    pub encoding: &'static Encoding,
    /// Bytes of byte-order mark to skip at the start of the file.
    pub bom_len: usize,
    /// Why: `"BOM"`, `"detected"` or `"set"`.
    pub how: &'static str,
}

impl Detected {
    /// The name shown to users, e.g. `UTF-8 (BOM)`, `windows-1252 (detected)`.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.encoding.name(), self.how)
    }
}

/// Resolve a user's encoding label (`utf-8`, `utf-16`, `utf-16be`, `windows-1252`, `latin1`…).
/// WHATWG labels: `latin1` and `iso-8859-1` mean Windows-1252, which is what such files really are.
pub(crate) fn for_label(label: &str) -> anyhow::Result<&'static Encoding> {
    match Encoding::for_label(label.trim().as_bytes()) {
        Some(e) if e == UTF_8 || e == UTF_16LE || e == UTF_16BE || e.is_single_byte() => Ok(e),
        Some(e) => bail!(
            "encoding {label:?} ({}) is not supported; use utf-8, utf-16le, utf-16be or a single-byte encoding such as windows-1252",
            e.name()
        ),
        None => bail!("unknown encoding {label:?}; use utf-8, utf-16le, utf-16be or windows-1252"),
    }
}

/// Decide the encoding from the first bytes of the file. `truncated` says the prefix is not the
/// whole file (so an incomplete character at its end is not an error). A BOM always wins over a
/// label that disagrees with it, with a warning: the BOM is evidence, the label a guess.
pub(crate) fn detect(
    prefix: &[u8],
    truncated: bool,
    forced: Option<&'static Encoding>,
    warnings: &mut Vec<String>,
) -> Detected {
    if let Some((enc, bom_len)) = Encoding::for_bom(prefix) {
        if let Some(f) = forced
            && f != enc
        {
            warnings.push(format!(
                "encoding {} was set, but the file starts with a {} byte-order mark; read as {}",
                f.name(),
                enc.name(),
                enc.name()
            ));
        }
        return Detected {
            encoding: enc,
            bom_len,
            how: "BOM",
        };
    }
    if let Some(enc) = forced {
        return Detected {
            encoding: enc,
            bom_len: 0,
            how: "set",
        };
    }
    if let Some(enc) = utf16_without_bom(prefix) {
        return Detected {
            encoding: enc,
            bom_len: 0,
            how: "detected",
        };
    }
    let utf8 = looks_utf8(prefix, truncated);
    Detected {
        encoding: if utf8 { UTF_8 } else { WINDOWS_1252 },
        bom_len: 0,
        how: "detected",
    }
}

/// Valid UTF-8, or UTF-8 with some damage: at least as many well-formed multi-byte characters as
/// invalid sequences (a Windows-1252 file almost never forms a valid multi-byte sequence by
/// chance, so its accents are nearly all invalid). Reading a damaged UTF-8 file as UTF-8 costs
/// only its bad rows (`invalid_encoding` issues naming line and byte offset); reading it as
/// Windows-1252 would silently turn every accent of the file into mojibake. Windows-1252 is
/// chosen only when invalid sequences outnumber the valid multi-byte ones: the file is not UTF-8
/// as a whole.
fn looks_utf8(prefix: &[u8], truncated: bool) -> bool {
    let (mut multibyte, mut invalid) = (0usize, 0usize);
    let mut chunks = prefix.utf8_chunks().peekable();
    while let Some(chunk) = chunks.next() {
        multibyte += chunk.valid().bytes().filter(|&b| b >= 0xC0).count();
        // An incomplete character cut by the end of the prefix is not an error.
        let cut = truncated && chunks.peek().is_none();
        if !chunk.invalid().is_empty() && !cut {
            invalid += 1;
        }
    }
    invalid == 0 || multibyte >= invalid
}

/// UTF-16 written without a BOM shows as a NUL in every other byte of ASCII text.
fn utf16_without_bom(prefix: &[u8]) -> Option<&'static Encoding> {
    let sample = &prefix[..prefix.len().min(4096) & !1];
    let pairs = sample.len() / 2;
    if pairs < 4 {
        return None;
    }
    let (mut even, mut odd) = (0usize, 0usize);
    for p in sample.chunks_exact(2) {
        even += usize::from(p[0] == 0);
        odd += usize::from(p[1] == 0);
    }
    // Mostly-ASCII text: at least a third of the high bytes are NUL and almost no low bytes.
    if odd * 3 >= pairs && even * 20 < pairs {
        Some(UTF_16LE)
    } else if even * 3 >= pairs && odd * 20 < pairs {
        Some(UTF_16BE)
    } else {
        None
    }
}

/// Decode a sample (for delimiter detection) the same way the stream will be decoded.
pub(crate) fn decode_sample(d: &Detected, prefix: &[u8], truncated: bool) -> Vec<u8> {
    let body = &prefix[d.bom_len.min(prefix.len())..];
    if d.encoding == UTF_8 {
        return body.to_vec();
    }
    let mut decoder = d.encoding.new_decoder_without_bom_handling();
    let mut out = String::with_capacity(body.len() * 2 + 16);
    let cap = decoder
        .max_utf8_buffer_length(body.len())
        .unwrap_or(body.len() * 3 + 16);
    out.reserve(cap);
    let _ = decoder.decode_to_string(body, &mut out, !truncated);
    out.into_bytes()
}

const IN_CAP: usize = 64 * 1024;

/// A `BufRead` of UTF-8 text decoded incrementally from another encoding. Malformed input (an
/// unpaired UTF-16 surrogate) becomes U+FFFD, which the CSV reader turns into an `encoding` row
/// issue for the row that holds it.
pub(crate) struct DecodeReader<R> {
    inner: R,
    decoder: Decoder,
    inbuf: Box<[u8]>,
    in_start: usize,
    in_end: usize,
    in_eof: bool,
    out: Box<[u8]>,
    out_start: usize,
    out_end: usize,
    done: bool,
}

impl<R: Read> DecodeReader<R> {
    /// `inner` must be positioned after any BOM.
    pub(crate) fn new(inner: R, encoding: &'static Encoding) -> Self {
        let decoder = encoding.new_decoder_without_bom_handling();
        // Room to decode a whole input chunk in one call (3 UTF-8 bytes per input byte at worst).
        let out_cap = decoder
            .max_utf8_buffer_length(IN_CAP)
            .unwrap_or(IN_CAP * 3 + 16);
        DecodeReader {
            inner,
            decoder,
            inbuf: vec![0; IN_CAP].into_boxed_slice(),
            in_start: 0,
            in_end: 0,
            in_eof: false,
            out: vec![0; out_cap].into_boxed_slice(),
            out_start: 0,
            out_end: 0,
            done: false,
        }
    }
}

impl<R: Read> BufRead for DecodeReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.out_start == self.out_end && !self.done {
            if self.in_start == self.in_end && !self.in_eof {
                let n = loop {
                    match self.inner.read(&mut self.inbuf) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                };
                self.in_start = 0;
                self.in_end = n;
                self.in_eof = n == 0;
            }
            let (res, read, written, _) = self.decoder.decode_to_utf8(
                &self.inbuf[self.in_start..self.in_end],
                &mut self.out,
                self.in_eof,
            );
            self.in_start += read;
            self.out_start = 0;
            self.out_end = written;
            if self.in_eof && res == CoderResult::InputEmpty {
                self.done = true;
            }
        }
        Ok(&self.out[self.out_start..self.out_end])
    }

    fn consume(&mut self, amt: usize) {
        self.out_start = (self.out_start + amt).min(self.out_end);
    }
}

impl<R: Read> Read for DecodeReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_buffered(self, buf)
    }
}

/// `Read::read` for a `BufRead` that reads through its own buffer.
pub(crate) fn read_buffered(r: &mut impl BufRead, buf: &mut [u8]) -> io::Result<usize> {
    let avail = r.fill_buf()?;
    let n = avail.len().min(buf.len());
    buf[..n].copy_from_slice(&avail[..n]);
    r.consume(n);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8], enc: &'static Encoding) -> String {
        // A tiny inner reader so characters are split across chunk boundaries.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(3);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut s = String::new();
        DecodeReader::new(Trickle(bytes), enc)
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    #[test]
    fn windows_1252_maps_the_c1_range_to_typographic_characters() {
        assert_eq!(
            decode_all(b"\x80 \x92\x93x\x94 \xe9", WINDOWS_1252),
            "€ ’“x” é"
        );
    }

    #[test]
    fn utf16_split_across_reads_decodes_whole() {
        let bytes: Vec<u8> = "José,€\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(decode_all(&bytes, UTF_16LE), "José,€\n");
    }

    #[test]
    fn detection_prefers_bom_then_utf8_then_windows_1252() {
        let mut w = vec![];
        assert_eq!(detect(b"\xef\xbb\xbfa,b", false, None, &mut w).bom_len, 3);
        assert_eq!(detect(b"a,\xc3\xa9", false, None, &mut w).encoding, UTF_8);
        assert_eq!(
            detect(b"a,\xe9", false, None, &mut w).encoding,
            WINDOWS_1252
        );
        // A character cut by the end of the prefix is still UTF-8.
        assert_eq!(detect(b"a,\xc3", true, None, &mut w).encoding, UTF_8);
        assert_eq!(
            detect(b"a\0,\0b\0\n\0", false, None, &mut w).encoding,
            UTF_16LE
        );
        // Many accents in UTF-8 and one bad byte: UTF-8 with damage, not Windows-1252.
        let mut damaged = "José Zoë Müller\n".repeat(10).into_bytes();
        damaged.extend(b"Ren\xe9\n");
        assert_eq!(detect(&damaged, false, None, &mut w).encoding, UTF_8);
        let cp1252 = b"Jos\xe9 M\xfcller \xc3\xa9";
        assert_eq!(detect(cp1252, false, None, &mut w).encoding, WINDOWS_1252);
        // One accent in UTF-8 and one bad byte: still UTF-8 (the bad row is invalid), not a
        // whole file of `CafÃ©`.
        let mut one = "Name\nCafé\n".as_bytes().to_vec();
        one.extend(b"Ren\xe9\n");
        assert_eq!(detect(&one, false, None, &mut w).encoding, UTF_8);
        // Two bad bytes against one accent: not UTF-8 as a whole.
        one.extend(b"Zo\xeb\n");
        assert_eq!(detect(&one, false, None, &mut w).encoding, WINDOWS_1252);
        assert!(w.is_empty());
        let forced = detect(b"\xef\xbb\xbfa", false, Some(WINDOWS_1252), &mut w);
        assert_eq!(forced.encoding, UTF_8);
        assert_eq!(w.len(), 1, "a BOM overriding the label is warned about");
    }

    #[test]
    fn labels_resolve_latin1_to_windows_1252_and_reject_unknown() {
        assert_eq!(for_label("latin1").unwrap(), WINDOWS_1252);
        assert_eq!(for_label("UTF-16").unwrap(), UTF_16LE);
        assert!(for_label("klingon").is_err());
    }
}
