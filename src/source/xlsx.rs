//! The XLSX source: one worksheet streamed with calamine's cell reader on a thread of its own,
//! converted to text with qsv's `excel` rules:
//!
//! | cell | text | `numeric` |
//! |---|---|---|
//! | whole float `3.0`, int | `3` | yes |
//! | other float | shortest round-trip (`0.1`, `1234.5678`) | yes |
//! | date / datetime / time | `2024-03-05`, `2024-03-05T14:30:00`, `14:30:00` | no |
//! | duration | `37:30:00` (hours may pass 24) | no |
//! | bool | `true` / `false` | no |
//! | whole number under a format of `0`s and literals (`00000`, `(000) 000-0000`) | as shown: `02134` | no |
//! | error, or a formula's error (`#N/A`, `#REF!`, `#SPILL!`, `#ERROR!`…) | the row is a `cell_error` issue that fails only the fields read from that cell | — |
//!
//! Writers other than Excel are read alike: inline strings, no shared strings, rich text runs,
//! `t="str"` formula results, a missing or oversized `dimension`, rows and cells without `r=`,
//! absolute part paths. Error texts calamine does not know (Excel 365's `#SPILL!`, `#CALC!`…,
//! Google's `#ERROR!`) stop its cell stream; [`scan`] finds those cells so they are put back in
//! place. With no sheet named, hidden sheets are passed over (with a warning). Rows after the
//! last value that hold only formatting are not rows. `.ods`, `.xls` and `.xlsb` go through
//! [`other`]: calamine reads the sheet whole, then the same header search and row checks apply.
//!
//! The cell reader (rather than `worksheet_range`) keeps memory to the shared-string table and one
//! row instead of the whole sheet; see `benches/README.md` for the measured difference. The
//! reader thread sends rows in batches over a bounded channel, so it runs at most a few batches
//! ahead of the consumer; it also parses the XML in parallel with the caller's work.
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use anyhow::{anyhow, bail};
use calamine::{DataRef, ExcelDateTime, Reader, Xlsx, XlsxError, open_workbook};

mod numfmt;
mod other;
mod scan;

use self::numfmt::DigitFormat;

use super::detect::{SEARCH_ROWS, holds_all, shown_columns};
use super::{
    Item, Pending, Queue, ReadError, Record, RowIssue, SHEET_PART_FACTOR, Source, SourceOptions,
    Trailer, clean_headers, footer_issue, looks_like_footer, too_large_issue,
};
use crate::model::{ErrorCode, Outcome, RowError};

/// Rows per message from the reader thread.
const BATCH: usize = 512;
/// Messages in flight.
const IN_FLIGHT: usize = 4;

/// One cell, converted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Empty,
    Text {
        text: String,
        numeric: bool,
    },
    /// An error cell: its text (`#N/A`, `#SPILL!`…).
    Error(String),
}

impl Cell {
    fn is_blank(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text { text, .. } => text.trim().is_empty(),
            Cell::Error(_) => false,
        }
    }
}

/// Format a float as qsv does: a whole number without `.0`, anything else in Rust's shortest
/// round-trip form.
pub(crate) fn format_float(f: f64) -> String {
    // Below 2^53 every whole float is an exact integer.
    if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        (f as i64).to_string()
    } else {
        f.to_string()
    }
}

/// A date cell as ISO 8601: the date alone at midnight, the time alone below one day.
pub(crate) fn format_datetime(d: &ExcelDateTime) -> String {
    if d.is_duration() {
        let ms = (d.as_f64() * 86_400_000.0).round() as i64;
        let (sign, ms) = if ms < 0 { ("-", -ms) } else { ("", ms) };
        let s = ms / 1000;
        return format!("{sign}{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    }
    let (y, mo, da, h, mi, s, ms) = d.to_ymd_hms_milli();
    let time = if ms != 0 {
        format!("{h:02}:{mi:02}:{s:02}.{ms:03}")
    } else {
        format!("{h:02}:{mi:02}:{s:02}")
    };
    let v = d.as_f64();
    if (0.0..1.0).contains(&v) {
        time
    } else if (h, mi, s, ms) == (0, 0, 0, 0) {
        format!("{y:04}-{mo:02}-{da:02}")
    } else {
        format!("{y:04}-{mo:02}-{da:02}T{time}")
    }
}

pub(crate) fn convert(d: &DataRef<'_>) -> Cell {
    let text = |text: String, numeric| Cell::Text { text, numeric };
    match d {
        DataRef::Empty => Cell::Empty,
        DataRef::String(s) => text(s.clone(), false),
        DataRef::SharedString(s) => text((*s).to_owned(), false),
        DataRef::Int(i) => text(i.to_string(), true),
        DataRef::Float(f) => text(format_float(*f), true),
        DataRef::Bool(b) => text(b.to_string(), false),
        DataRef::DateTime(dt) => text(format_datetime(dt), false),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => text(s.clone(), false),
        DataRef::Error(e) => Cell::Error(e.to_string()),
    }
}

/// Bytes kept of a cell over the limit, for the failure report.
const KEEP: usize = 64;

/// The first `n` bytes of `text` (fewer, to end on a character), and `…`.
fn cut_to(mut text: String, n: usize) -> String {
    let mut end = n.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
    text
}

/// Spreadsheet column letters for a 0-based column: 0 → `A`, 27 → `AB`.
pub fn column_letters(col: u32) -> String {
    let mut n = col as u64 + 1;
    let mut out = Vec::new();
    while n > 0 {
        let r = (n - 1) % 26;
        out.push(b'A' + r as u8);
        n = (n - 1) / 26;
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII letters")
}

/// Find the sheet: exact name, then a unique case-insensitive name, then a 1-based index; with
/// none asked for, the first sheet that is not hidden (or the first, when all are).
fn pick_sheet(
    file: &str,
    names: &[String],
    hidden: &[bool],
    want: Option<&str>,
) -> anyhow::Result<(String, usize)> {
    if names.is_empty() {
        bail!("{file}: the workbook has no sheets");
    }
    let list = || {
        names
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(want) = want else {
        let i = (0..names.len()).find(|&i| !hidden[i]).unwrap_or(0);
        return Ok((names[i].clone(), i));
    };
    if let Some(i) = names.iter().position(|n| n == want) {
        return Ok((names[i].clone(), i));
    }
    let folded: Vec<usize> = (0..names.len())
        .filter(|&i| names[i].trim().eq_ignore_ascii_case(want.trim()))
        .collect();
    if let [i] = folded[..] {
        return Ok((names[i].clone(), i));
    }
    if let Ok(k) = want.trim().parse::<usize>() {
        if (1..=names.len()).contains(&k) {
            return Ok((names[k - 1].clone(), k - 1));
        }
        bail!(
            "{file}: there is no sheet {k}: the workbook has {} sheet(s): {}",
            names.len(),
            list()
        );
    }
    bail!("{file}: no sheet named {want:?}; the sheets are {}", list())
}

/// A text run in a worksheet or the shared strings longer than this many times the cell limit
/// stops the run (see [`check_parts`]).
const HARD_CELL_FACTOR: u64 = 16;
/// A part that decompresses to more than this many times its compressed size is scanned for
/// huge texts before calamine reads it (ordinary sheets compress 5–20×; a bomb ~1000×).
const SUSPECT_RATIO: u64 = 100;

/// Refuse a workbook whose parts would make memory grow before a single row is read: a part
/// calamine reads (`.xml`, `.rels`) whose declared uncompressed size is over the limit (the ZIP
/// reader fails a part that decompresses past its declared size, so the size cannot lie), and,
/// in a part that decompresses suspiciously well, a text over [`HARD_CELL_FACTOR`] × the cell
/// limit (calamine would hold it whole to hand out one cell). Cells between the limit and that
/// are `field_too_large` errors for their rows. An archive the ZIP reader cannot open is left
/// to calamine, whose error names the problem.
fn check_parts(file: &str, path: &Path, opts: &SourceOptions) -> anyhow::Result<()> {
    let Ok(f) = File::open(path) else {
        return Ok(());
    };
    let Ok(mut zip) = zip::ZipArchive::new(BufReader::new(f)) else {
        return Ok(());
    };
    let hard = (opts.max_field_bytes as u64).saturating_mul(HARD_CELL_FACTOR);
    for i in 0..zip.len() {
        let Some((name, size, packed)) = zip.by_index_raw(i).ok().and_then(|e| {
            let name = e.name().ok()?.into_owned();
            Some((name, e.size(), e.compressed_size().max(1)))
        }) else {
            continue;
        };
        if !(name.ends_with(".xml") || name.ends_with(".rels")) {
            continue;
        }
        let sheet = name.contains("worksheets/");
        let cap = if sheet {
            opts.max_part_bytes.saturating_mul(SHEET_PART_FACTOR)
        } else {
            opts.max_part_bytes
        };
        let what = format!(
            "{file}: the workbook part {name} decompresses to {size} bytes ({}× its {packed} compressed bytes)",
            size / packed
        );
        if size > cap {
            bail!(
                "{what}, over the limit of {cap} bytes for one part: the file is not read (a decompression bomb, or a workbook too big for this tool: save the sheet as CSV)"
            );
        }
        if size > hard && size / packed > SUSPECT_RATIO {
            let mut part = zip
                .by_index(i)
                .map_err(|e| anyhow!("{file}: cannot read the workbook part {name}: {e}"))?;
            if let Some(at) = longest_text_over(&mut part, hard)
                .map_err(|e| anyhow!("{file}: cannot read the workbook part {name}: {e}"))?
            {
                bail!(
                    "{what} and holds a text of more than {hard} bytes at byte {at}: far over the limit of {} bytes for one cell, and too big to hold to report its row: the file is not read",
                    opts.max_field_bytes
                );
            }
        }
    }
    Ok(())
}

/// Stream XML and return the offset of the first text (between `>` and `<`) longer than
/// `limit` bytes, stopping there; memory is one buffer.
fn longest_text_over(r: &mut impl Read, limit: u64) -> std::io::Result<Option<u64>> {
    let mut buf = vec![0u8; 64 * 1024];
    let (mut offset, mut run, mut in_text, mut start) = (0u64, 0u64, false, 0u64);
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut i = 0;
        while i < n {
            let want = if in_text { b'<' } else { b'>' };
            match memchr::memchr(want, &buf[i..n]) {
                Some(k) if in_text => {
                    run += k as u64;
                    in_text = false;
                    i += k + 1;
                }
                Some(k) => {
                    (in_text, run, start) = (true, 0, offset + (i + k + 1) as u64);
                    i += k + 1;
                }
                None => {
                    if in_text {
                        run += (n - i) as u64;
                    }
                    i = n;
                }
            }
            if run > limit {
                return Ok(Some(start));
            }
        }
        offset += n as u64;
    }
}

/// The sheet and the header row to read. When the options leave the header row (or the sheet)
/// open and name `header_columns`, the first sheet allowed with a row among its first
/// [`SEARCH_ROWS`] holding those columns, and that row; skipped sheets and title rows are noted.
fn choose(
    mut search: impl FnMut(&str, Option<u64>, &[String]) -> Option<(u64, usize)>,
    (file, names, hidden): (&str, &[String], &[bool]),
    opts: &SourceOptions,
    notes: &mut Vec<String>,
) -> anyhow::Result<(String, usize, Option<u64>)> {
    let (sheet, index) = pick_sheet(file, names, hidden, opts.sheet.as_deref())?;
    if opts.sheet.is_none() {
        note_hidden(file, names, hidden, notes);
    }
    let want = &opts.header_columns;
    if want.is_empty() || (opts.sheet.is_some() && opts.header_row.is_some()) {
        return Ok((sheet, index, opts.header_row));
    }
    let order: Vec<usize> = match opts.sheet {
        Some(_) => vec![index],
        None if hidden.iter().all(|&h| h) => (0..names.len()).collect(),
        None => (0..names.len()).filter(|&i| !hidden[i]).collect(),
    };
    for (k, &i) in order.iter().enumerate() {
        let Some((row, above)) = search(&names[i], opts.header_row, want) else {
            continue;
        };
        for &j in &order[..k] {
            notes.push(format!(
                "{file}: sheet {:?} skipped: none of its first {SEARCH_ROWS} rows holds the mapping's columns ({}); reading sheet {:?}",
                names[j],
                shown_columns(want),
                names[i]
            ));
        }
        if above > 0 {
            notes.push(format!(
                "{file}, sheet {:?}: the header is on row {row}, the first row holding the mapping's columns; the {} of text above it {} not data and {} skipped",
                names[i],
                crate::words::count(above as u64, "row"),
                crate::words::agree(above as u64, "is", "are"),
                crate::words::agree(above as u64, "was", "were")
            ));
        }
        return Ok((names[i].clone(), i, Some(row)));
    }
    Ok((sheet, index, opts.header_row))
}

/// Say which hidden sheets are passed over when no sheet is named (a workbook from a CRM or a
/// colleague often hides a lookup or settings sheet before the data).
fn note_hidden(file: &str, names: &[String], hidden: &[bool], notes: &mut Vec<String>) {
    if hidden.iter().all(|&h| h) {
        return;
    }
    for (name, _) in names.iter().zip(hidden).filter(|(_, h)| **h) {
        notes.push(format!(
            "{file}: sheet {name:?} is hidden and is not read (name it in the mapping's source.sheet to read it)"
        ));
    }
}

/// The 1-based row of a sheet that holds every column of `want` (row `header_row` only, when
/// set), and the rows with a value above it; `None` when no row of the first [`SEARCH_ROWS`]
/// does (or the sheet cannot be read: the read proper reports that).
fn header_search(
    rows: &mut dyn RowStream,
    header_row: Option<u64>,
    want: &[String],
) -> Option<(u64, usize)> {
    let mut above = 0;
    while above < SEARCH_ROWS {
        let (idx, cells) = rows.next_row().ok()??;
        let row = u64::from(idx) + 1;
        if cells.iter().all(|(_, c)| c.is_blank()) || header_row.is_some_and(|h| row < h) {
            continue;
        }
        let texts: Vec<String> = cells
            .into_iter()
            .map(|(_, c)| match c {
                Cell::Text { text, .. } => text,
                _ => String::new(),
            })
            .collect();
        if holds_all(&texts, want) {
            return Some((row, if header_row.is_some() { 0 } else { above }));
        }
        if header_row.is_some() {
            return None;
        }
        above += 1;
    }
    None
}

struct Header {
    headers: Vec<String>,
    warnings: Vec<String>,
    line: u64,
}

enum Msg {
    Rows(Queue),
    Fatal(ReadError),
    End,
}

/// One worksheet of an XLSX workbook as a stream of records. See the module doc.
pub struct XlsxSource {
    headers: Vec<String>,
    warnings: Vec<String>,
    describe: String,
    /// The file and sheet, for messages.
    label: String,
    /// Line of the last item handed out (the header's at first).
    last_row: u64,
    rx: Receiver<Msg>,
    thread: Option<JoinHandle<()>>,
    out: Queue,
    done: bool,
    error: Option<ReadError>,
}

impl XlsxSource {
    /// Open the workbook, pick the sheet, and read up to the header row before returning, so every
    /// problem with the file as a whole is an error here.
    /// An `.ods`, `.xls` or `.xlsb` workbook (`kind`: `ODS`, `XLS`, `XLSB`), read sheet-whole
    /// by calamine and then as an XLSX sheet is read (see [`other`]).
    pub fn open_other(
        path: &Path,
        kind: &'static str,
        opts: &SourceOptions,
    ) -> anyhow::Result<XlsxSource> {
        other::open(path, kind, opts)
    }

    pub fn open(path: &Path, opts: &SourceOptions) -> anyhow::Result<XlsxSource> {
        let file = path.display().to_string();
        check_parts(&file, path, opts)?;
        let mut wb: Xlsx<BufReader<File>> = open_workbook(path)
            .map_err(|e| anyhow!("{file}: cannot read as an XLSX workbook: {e}"))?;
        let names = wb.sheet_names();
        let hidden = hidden_sheets(wb.sheets_metadata());
        let search = |wb: &mut Xlsx<_>, sheet: &str, h, want: &[String]| {
            let mut reader = wb.worksheet_cells_reader(sheet).ok()?;
            header_search(&mut Rows::new(&mut reader, path, sheet), h, want)
        };
        let (mut picked, sheet, header_row) = Picked::choose(
            ("XLSX", file, names, &hidden),
            |s, h, w| search(&mut wb, s, h, w),
            opts,
        )?;
        if wb.has_1904_epoch() {
            picked.notes.push(format!(
                "{}: the workbook counts dates from 1904 (date1904): date cells are read right, but a date kept as a plain number (no date format) is not, and a `type: date` column would read it four years early; format such a column as dates",
                picked.file
            ));
        }
        let path = path.to_path_buf();
        picked.start(move |label, channels, max_field| {
            let mut reader = match wb.worksheet_cells_reader(&sheet) {
                Ok(r) => r,
                Err(e) => {
                    let _ = channels
                        .0
                        .send(Err(anyhow!("{label}: cannot read the sheet: {e}")));
                    return;
                }
            };
            let mut rows = Rows::new(&mut reader, &path, &sheet);
            read_rows(&mut rows, header_row, label, channels, max_field);
        })
    }
}

/// Per sheet, whether it is hidden (or very hidden).
fn hidden_sheets(sheets: &[calamine::Sheet]) -> Vec<bool> {
    sheets
        .iter()
        .map(|s| s.visible != calamine::SheetVisible::Visible)
        .collect()
}

/// The header's sender and the rows' sender of the reader thread.
type Channels = (SyncSender<anyhow::Result<Header>>, SyncSender<Msg>);

/// A workbook whose sheet is chosen, ready to be read on a thread of its own.
struct Picked {
    /// `XLSX`, `ODS`, `XLS`… for the run summary.
    kind: &'static str,
    file: String,
    names: Vec<String>,
    index: usize,
    notes: Vec<String>,
    max_field: usize,
}

impl Picked {
    /// Choose the sheet of a workbook of `kind` (see [`choose`], `search` looking for the header
    /// in one sheet): the pick, the sheet's name and its header row.
    fn choose(
        (kind, file, names, hidden): (&'static str, String, Vec<String>, &[bool]),
        search: impl FnMut(&str, Option<u64>, &[String]) -> Option<(u64, usize)>,
        opts: &SourceOptions,
    ) -> anyhow::Result<(Picked, String, Option<u64>)> {
        if opts.header_row == Some(0) {
            bail!("{file}: header_row is 1-based; 0 is not a row");
        }
        let mut notes = Vec::new();
        let (sheet, index, header_row) = choose(search, (&file, &names, hidden), opts, &mut notes)?;
        let picked = Picked {
            kind,
            file,
            names,
            index,
            notes,
            max_field: opts.max_field_bytes,
        };
        Ok((picked, sheet, header_row))
    }

    /// Start `read` (given the label, the channels and the cell limit) on the reader thread
    /// and wait for the header.
    fn start(
        mut self,
        read: impl FnOnce(&str, Channels, usize) + Send + 'static,
    ) -> anyhow::Result<XlsxSource> {
        let (htx, hrx) = sync_channel(1);
        let (tx, rx) = sync_channel(IN_FLIGHT);
        let label = format!("{}, sheet {:?}", self.file, self.names[self.index]);
        let worker_label = label.clone();
        let max_field = self.max_field;
        let thread = std::thread::Builder::new()
            .name("xlsx-reader".into())
            .spawn(move || read(&worker_label, (htx, tx), max_field))
            .map_err(|e| anyhow!("{}: cannot start the {} reader: {e}", self.file, self.kind))?;
        let head = match hrx.recv() {
            Ok(head) => head?,
            Err(_) => {
                let _ = thread.join();
                bail!(
                    "{label}: the {} reader stopped before the header row",
                    self.kind
                );
            }
        };
        let describe = format!(
            "{}, sheet {:?} ({} of {}), header on row {}",
            self.kind,
            self.names[self.index],
            self.index + 1,
            self.names.len(),
            head.line
        );
        self.notes.extend(head.warnings);
        Ok(XlsxSource {
            headers: head.headers,
            warnings: self.notes,
            describe,
            last_row: head.line,
            label,
            rx,
            thread: Some(thread),
            out: Queue::default(),
            done: false,
            error: None,
        })
    }
}

impl Iterator for XlsxSource {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.out.pop() {
                self.last_row = match &item {
                    Ok(r) => r.line,
                    Err(i) => i.line,
                };
                return Some(item);
            }
            if self.done {
                return None;
            }
            match self.rx.recv() {
                Ok(Msg::Rows(q)) => self.out.0.extend(q.0),
                Ok(Msg::End) => self.done = true,
                Ok(Msg::Fatal(e)) => {
                    self.error = Some(e);
                    self.done = true;
                }
                Err(_) => {
                    // The thread went away without saying it had finished: it panicked.
                    self.done = true;
                    let panicked = self.thread.take().map(|t| t.join().is_err());
                    self.error = Some(ReadError {
                        file: self.label.clone(),
                        unit: "row",
                        at: self.last_row + 1,
                        cause: format!(
                            "the XLSX reader stopped unexpectedly{}",
                            if panicked == Some(true) {
                                " (it panicked)"
                            } else {
                                ""
                            }
                        ),
                    });
                }
            }
        }
    }
}

impl Source for XlsxSource {
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

    fn is_workbook(&self) -> bool {
        true
    }
}

/// A sheet row that has cells: its 0-based index and its `(column, cell)` pairs.
type SheetRow = (u32, Vec<(u32, Cell)>);

/// The rows of a sheet in order: from the XLSX cell stream, or from a whole sheet calamine
/// read (ODS, XLS, XLSB).
trait RowStream {
    /// The next row that has cells.
    fn next_row(&mut self) -> Result<Option<SheetRow>, String>;

    /// 0-based row being read when reading failed, if it had started one.
    fn failed_in(&self) -> Option<u32> {
        None
    }
}

/// Groups the cell stream into rows.
struct Rows<'a, 'b> {
    cells: &'b mut calamine::XlsxCellReader<'a, BufReader<File>>,
    next: Option<(u32, u32, Cell)>,
    /// The reader said `None` once: asking again would read past `</sheetData>`.
    finished: bool,
    /// 0-based row being read when the reader failed, if it had started one.
    failed_in: Option<u32>,
    /// Per style id: the digit format that shows a number cell's leading zeros, if any.
    formats: Vec<Option<DigitFormat>>,
    odd: OddCells,
}

/// Where to find the error cells calamine does not read (see [`scan`]), found on first need.
struct OddCells {
    path: std::path::PathBuf,
    sheet: String,
    found: Option<std::collections::VecDeque<scan::OddError>>,
}

impl OddCells {
    /// The position of the error cell calamine stopped on with `text`: the next one the scan
    /// found (they come in the same order).
    fn place(&mut self, text: String) -> Result<(u32, u32, Cell), String> {
        let found = match &mut self.found {
            Some(f) => f,
            None => self
                .found
                .insert(scan::odd_error_cells(&self.path, &self.sheet).map_err(|e| {
                    format!("a cell holds the error {text}, which could not be placed: {e}")
                })?),
        };
        match found.pop_front() {
            Some(e) if e.text == text && e.placed => Ok((e.row, e.col, Cell::Error(text))),
            Some(e) if e.text == text => Err(format!(
                "a cell of row {} holds the error {text} and has no reference (r=): its column cannot be told",
                e.row + 1
            )),
            _ => Err(format!(
                "a cell holds the error {text}, which was not found in the sheet's XML"
            )),
        }
    }
}

impl<'a, 'b> Rows<'a, 'b> {
    fn new(
        cells: &'b mut calamine::XlsxCellReader<'a, BufReader<File>>,
        path: &Path,
        sheet: &str,
    ) -> Self {
        let formats = cells
            .styles()
            .iter()
            .map(|s| {
                s.number_format
                    .as_ref()
                    .and_then(|f| DigitFormat::parse(&f.format_code))
            })
            .collect();
        Rows {
            cells,
            next: None,
            finished: false,
            failed_in: None,
            formats,
            odd: OddCells {
                path: path.to_path_buf(),
                sheet: sheet.to_owned(),
                found: None,
            },
        }
    }

    /// The next cell, converted: a whole number under a digit format as the sheet shows it, an
    /// error cell calamine does not know put back in its place.
    fn pull(&mut self) -> Result<Option<(u32, u32, Cell)>, String> {
        let (c, style) = match self.cells.next_cell_with_style_id() {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(None),
            Err(XlsxError::CellError(text)) => return self.odd.place(text).map(Some),
            Err(e) => return Err(e.to_string()),
        };
        let (r, col) = c.get_position();
        let shown = match c.get_value() {
            DataRef::Float(f) => Some(*f),
            DataRef::Int(i) => Some(*i as f64),
            _ => None,
        }
        .and_then(|v| self.formats.get(style)?.as_ref()?.show(v));
        let cell = match shown {
            Some(text) => Cell::Text {
                text,
                numeric: false,
            },
            None => convert(c.get_value()),
        };
        Ok(Some((r, col, cell)))
    }
}

impl RowStream for Rows<'_, '_> {
    fn failed_in(&self) -> Option<u32> {
        self.failed_in
    }

    fn next_row(&mut self) -> Result<Option<SheetRow>, String> {
        let first = match self.next.take() {
            Some(c) => c,
            None if self.finished => return Ok(None),
            None => match self.pull()? {
                Some(c) => c,
                None => {
                    self.finished = true;
                    return Ok(None);
                }
            },
        };
        let row = first.0;
        let mut cells = vec![(first.1, first.2)];
        loop {
            let next = self.pull().inspect_err(|_| self.failed_in = Some(row))?;
            let Some((r, col, cell)) = next else { break };
            if r != row {
                self.next = Some((r, col, cell));
                break;
            }
            cells.push((col, cell));
        }
        if self.next.is_none() {
            self.finished = true;
        }
        Ok(Some((row, cells)))
    }
}

/// The reader thread: header first (through `htx`), then batches of rows (through `tx`).
fn read_rows(
    rows: &mut dyn RowStream,
    header_row: Option<u64>,
    label: &str,
    (htx, tx): Channels,
    max_field: usize,
) {
    let (header_idx, header_cells) = match find_header(rows, header_row, label) {
        Ok(row) => row,
        Err(e) => {
            let _ = htx.send(Err(e));
            return;
        }
    };
    let (mut sheet_rows, head) = read_header(label, header_idx, &header_cells);
    sheet_rows.max_field = max_field;
    if htx.send(Ok(head)).is_ok() {
        sheet_rows.stream(rows, header_idx, label, &tx);
    }
}

/// The header: row `header_row` (1-based), or the first row with a value.
fn find_header(
    rows: &mut dyn RowStream,
    header_row: Option<u64>,
    label: &str,
) -> anyhow::Result<SheetRow> {
    loop {
        let row = match rows.next_row() {
            Ok(Some(row)) => row,
            Ok(None) => match header_row {
                Some(h) => bail!("{label}: header row {h} is empty or past the end of the sheet"),
                None => bail!("{label}: the sheet is empty: there is no header row"),
            },
            Err(e) => bail!("{label}: cannot read the sheet: {e}"),
        };
        let blank = row.1.iter().all(|(_, c)| c.is_blank());
        match header_row {
            None if !blank => return Ok(row),
            Some(h) if u64::from(row.0) + 1 == h && !blank => return Ok(row),
            Some(h) if u64::from(row.0) + 1 >= h => bail!("{label}: header row {h} is empty"),
            _ => {}
        }
    }
}

/// The header's names (from its first to its last non-blank cell, cleaned) and warnings, and
/// what the rows below it are read against.
fn read_header(label: &str, header_idx: u32, header_cells: &[(u32, Cell)]) -> (SheetRows, Header) {
    let used: Vec<&(u32, Cell)> = header_cells.iter().filter(|(_, c)| !c.is_blank()).collect();
    let first_col = used.first().map_or(0, |(c, _)| *c);
    let last_col = used.last().map_or(0, |(c, _)| *c);
    let mut headers = vec![String::new(); (last_col - first_col + 1) as usize];
    let mut warnings = Vec::new();
    for (col, cell) in header_cells {
        if (first_col..=last_col).contains(col) {
            headers[(col - first_col) as usize] = match cell {
                Cell::Empty => String::new(),
                Cell::Text { text, .. } => text.clone(),
                Cell::Error(e) => {
                    warnings.push(format!(
                        "{label}: header cell {}{} is the error {e}",
                        column_letters(*col),
                        header_idx + 1
                    ));
                    e.clone()
                }
            };
        }
    }
    clean_headers(
        label,
        &mut headers,
        |i| column_letters(first_col + i as u32),
        &mut warnings,
    );
    let sheet_rows = SheetRows {
        max_field: super::DEFAULT_MAX_FIELD_BYTES,
        headers: headers.clone(),
        first_col,
        width: headers.len() as u32,
    };
    let head = Header {
        headers,
        warnings,
        line: u64::from(header_idx) + 1,
    };
    (sheet_rows, head)
}

struct SheetRows {
    /// A cell's text longer than this makes its row a `field_too_large` issue.
    max_field: usize,
    headers: Vec<String>,
    first_col: u32,
    width: u32,
}

/// The cells of one data row, sorted out.
#[derive(Default)]
struct RowCells {
    fields: Vec<String>,
    numeric: Vec<bool>,
    errors: Vec<(u32, String)>,
    /// Text cells outside the header's columns.
    outside: Vec<(u32, String)>,
    /// Cells with text, and the first one's text (trimmed).
    texts: usize,
    only_text: String,
    /// Text cells over the limit: column and size (their field keeps only its start).
    too_large: Vec<(u32, usize)>,
}

impl SheetRows {
    /// The rows below the header, in batches through `tx`, then `End` (or a `Fatal` read error
    /// after the rows read before it).
    fn stream(&self, rows: &mut dyn RowStream, header_idx: u32, label: &str, tx: &SyncSender<Msg>) {
        let mut out = Queue::default();
        let mut trailer = Trailer::default();
        let mut prev = header_idx;
        // The first line of the blank rows (missing, or with empty cells only) since the last
        // row with a value: reported once a value follows them; at the end of the sheet they
        // are formatting, not rows, and are not reported.
        let mut blank_from: Option<u64> = None;
        loop {
            match rows.next_row() {
                Ok(Some((idx, cells))) => {
                    let line = u64::from(idx) + 1;
                    if idx > prev + 1 {
                        blank_from.get_or_insert(u64::from(prev) + 2);
                    }
                    prev = prev.max(idx);
                    if cells.iter().all(|(_, c)| c.is_blank()) {
                        blank_from.get_or_insert(line);
                        continue;
                    }
                    if let Some(from) = blank_from.take() {
                        let what = "blank row";
                        trailer.blank(
                            Pending::Blanks {
                                from,
                                to: line,
                                what,
                            },
                            &mut out,
                        );
                    }
                    self.classify(line, cells, &mut trailer, &mut out);
                    if out.len() >= BATCH && tx.send(Msg::Rows(std::mem::take(&mut out))).is_err() {
                        return;
                    }
                }
                Ok(None) => {
                    trailer.finish(&mut out);
                    let _ = tx.send(Msg::Rows(out));
                    let _ = tx.send(Msg::End);
                    return;
                }
                Err(e) => {
                    trailer.release(&mut out);
                    let _ = tx.send(Msg::Rows(out));
                    let _ = tx.send(Msg::Fatal(ReadError {
                        file: label.to_owned(),
                        unit: "row",
                        at: u64::from(rows.failed_in().unwrap_or(prev + 1)) + 1,
                        cause: e.to_string(),
                    }));
                    return;
                }
            }
        }
    }

    /// Sort a row's cells into the header's columns, errors and strays.
    fn sort_cells(&self, cells: Vec<(u32, Cell)>) -> RowCells {
        let w = self.width as usize;
        let mut r = RowCells {
            fields: vec![String::new(); w],
            numeric: vec![false; w],
            ..RowCells::default()
        };
        for (col, cell) in cells {
            if cell.is_blank() {
                continue;
            }
            match cell {
                Cell::Error(e) => r.errors.push((col, e)),
                Cell::Text { mut text, numeric } => {
                    if text.len() > self.max_field {
                        r.too_large.push((col, text.len()));
                        text = cut_to(text, KEEP);
                    }
                    r.texts += 1;
                    if r.texts == 1 {
                        r.only_text = text.trim().to_owned();
                    }
                    match col.checked_sub(self.first_col).filter(|&i| i < self.width) {
                        Some(i) => {
                            r.fields[i as usize] = text;
                            r.numeric[i as usize] = numeric;
                        }
                        None => r.outside.push((col, text)),
                    }
                }
                Cell::Empty => {}
            }
        }
        r
    }

    fn classify(&self, line: u64, cells: Vec<(u32, Cell)>, trailer: &mut Trailer, out: &mut Queue) {
        let mut r = self.sort_cells(cells);
        let footer = (r.texts == 1 && r.errors.is_empty() && looks_like_footer(&r.only_text))
            .then(|| footer_issue(line, r.fields.clone(), &r.only_text));
        let item = if !r.errors.is_empty() {
            Err(self.cell_errors(line, r.fields, &r.errors))
        } else if let Some(&(col, len)) = r.too_large.first() {
            Err(self.too_large(line, r.fields, col, len))
        } else if let Some((col, text)) = r.outside.first() {
            Err(self.outside(line, std::mem::take(&mut r.fields), *col, text))
        } else {
            Ok(Record {
                line,
                fields: r.fields,
                numeric: r.numeric,
            })
        };
        let p = Pending::Item(item);
        match footer {
            Some(f) => trailer.candidate(p, f, out),
            None => trailer.normal(p, out),
        }
    }

    /// The `cell_error` issue of a row with error cells (each shown in its column).
    fn cell_errors(
        &self,
        line: u64,
        mut fields: Vec<String>,
        errors: &[(u32, String)],
    ) -> RowIssue {
        let name = self.name(errors[0].0);
        let list: Vec<String> = errors
            .iter()
            .map(|(c, e)| {
                format!(
                    "column {:?} ({}{line}): {e}",
                    self.name(*c),
                    column_letters(*c)
                )
            })
            .collect();
        for (c, e) in errors {
            if let Some(i) = c.checked_sub(self.first_col).filter(|&i| i < self.width) {
                fields[i as usize] = e.clone();
            }
        }
        RowIssue {
            line,
            raw: fields,
            outcome: Outcome::Invalid,
            error: RowError::new(
                ErrorCode::CellError,
                Some(&name),
                format!(
                    "{}: the spreadsheet shows an error, not a value",
                    list.join("; ")
                ),
            ),
        }
    }

    /// The `field_too_large` issue of a row whose cell in `col` holds `len` bytes of text.
    fn too_large(&self, line: u64, fields: Vec<String>, col: u32, len: usize) -> RowIssue {
        let name = self.name(col);
        let what = format!("cell {}{line} (column {name:?})", column_letters(col));
        too_large_issue(line, fields, &name, what, len as u64, self.max_field)
    }

    /// The `ragged_row` issue of a row with a value in a column the header does not name.
    fn outside(&self, line: u64, fields: Vec<String>, col: u32, text: &str) -> RowIssue {
        RowIssue {
            line,
            raw: fields,
            outcome: Outcome::Invalid,
            error: RowError::new(
                ErrorCode::RaggedRow,
                None,
                format!(
                    "cell {}{line} holds {text:?} outside the header's columns {}–{}: it has no column name",
                    column_letters(col),
                    column_letters(self.first_col),
                    column_letters(self.first_col + self.width - 1),
                ),
            ),
        }
    }

    /// The header name of a 0-based sheet column, or its letters when it has none.
    fn name(&self, col: u32) -> String {
        col.checked_sub(self.first_col)
            .and_then(|i| self.headers.get(i as usize))
            .filter(|h| !h.is_empty())
            .cloned()
            .unwrap_or_else(|| column_letters(col))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::ExcelDateTimeType;

    #[test]
    fn floats_follow_qsv_rules() {
        assert_eq!(format_float(3.0), "3");
        assert_eq!(format_float(-0.0), "0");
        assert_eq!(format_float(447_000_000_000.0), "447000000000");
        assert_eq!(format_float(0.1), "0.1");
        assert_eq!(format_float(1234.5678), "1234.5678");
    }

    #[test]
    fn dates_are_iso_8601() {
        let dt = |v| ExcelDateTime::new(v, ExcelDateTimeType::DateTime, false);
        assert_eq!(format_datetime(&dt(45356.0)), "2024-03-05");
        assert_eq!(
            format_datetime(&dt(45356.6041666667)),
            "2024-03-05T14:30:00"
        );
        assert_eq!(format_datetime(&dt(0.5)), "12:00:00");
        let dur = ExcelDateTime::new(1.5625, ExcelDateTimeType::TimeDelta, false);
        assert_eq!(format_datetime(&dur), "37:30:00");
    }

    #[test]
    fn column_letters_roll_over_after_z() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(27), "AB");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
    }
}
