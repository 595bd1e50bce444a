//! The other workbooks calamine reads: OpenDocument (`.ods`, LibreOffice's own format), Excel
//! 97–2003 (`.xls`) and Excel binary (`.xlsb`). Each sheet is read whole by calamine (these
//! formats have no cell stream), then handed out row by row through the same header search, row
//! checks and reports as an XLSX sheet. An `.xls` that is really a web page or an XML
//! spreadsheet (what several CRMs' "Export to Excel" write) is refused with what to do.
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::{anyhow, bail};
use calamine::{Data, Range, Reader, Sheets, open_workbook_auto};

use super::{
    Cell, Picked, RowStream, SheetRow, XlsxSource, check_parts, format_datetime, format_float,
    header_search, hidden_sheets, read_rows,
};
use crate::source::SourceOptions;

/// One cell of a sheet read whole, converted as the XLSX reader converts it.
fn convert(d: &Data) -> Cell {
    let text = |text: String, numeric| Cell::Text { text, numeric };
    match d {
        Data::Empty => Cell::Empty,
        Data::String(s) => text(s.clone(), false),
        Data::Int(i) => text(i.to_string(), true),
        Data::Float(f) => text(format_float(*f), true),
        Data::Bool(b) => text(b.to_string(), false),
        Data::DateTime(dt) => text(format_datetime(dt), false),
        Data::DateTimeIso(s) | Data::DurationIso(s) => text(s.clone(), false),
        Data::Error(e) => Cell::Error(e.to_string()),
    }
}

/// The rows of a sheet read whole, those with a value only (the others are gaps).
pub(super) struct RangeRows {
    range: Range<Data>,
    /// Next row of the range to look at, counted from its first.
    next: usize,
}

impl RangeRows {
    pub fn new(range: Range<Data>) -> Self {
        RangeRows { range, next: 0 }
    }
}

impl RowStream for RangeRows {
    fn next_row(&mut self) -> Result<Option<SheetRow>, String> {
        let Some((row0, col0)) = self.range.start() else {
            return Ok(None);
        };
        while let Some(cells) = self.range.rows().nth(self.next) {
            let idx = row0 + self.next as u32;
            self.next += 1;
            let cells: Vec<(u32, Cell)> = cells
                .iter()
                .enumerate()
                .filter(|(_, d)| !matches!(d, Data::Empty))
                .map(|(i, d)| (col0 + i as u32, convert(d)))
                .collect();
            if !cells.is_empty() {
                return Ok(Some((idx, cells)));
            }
        }
        Ok(None)
    }
}

/// What the first bytes of a file named `.xls` say it really is, when it is not a workbook.
fn disguised(path: &Path) -> Option<&'static str> {
    let mut head = [0u8; 512];
    let n = File::open(path)
        .ok()
        .and_then(|mut f| super::super::read_up_to(&mut f, &mut head).ok())?;
    let text = String::from_utf8_lossy(&head[..n]).to_ascii_lowercase();
    let text = text.trim_start_matches('\u{feff}').trim_start();
    if text.contains("urn:schemas-microsoft-com:office:spreadsheet") {
        Some("an XML Spreadsheet 2003 file")
    } else if text.starts_with("<!doctype html")
        || text.starts_with("<html")
        || text.starts_with("<table")
        || (text.starts_with('<') && text.contains("<table"))
    {
        Some("a web page (an HTML table)")
    } else {
        None
    }
}

/// Open an `.ods`, `.xls` or `.xlsb` workbook (`kind` names it) and read its sheet as an XLSX
/// sheet is read.
pub(super) fn open(
    path: &Path,
    kind: &'static str,
    opts: &SourceOptions,
) -> anyhow::Result<XlsxSource> {
    let file = path.display().to_string();
    if let Some(what) = disguised(path) {
        bail!(
            "{file}: this is {what} saved with a .{} name, as some CRMs export \"Excel\" files; open it in a spreadsheet and save it as .xlsx or .csv",
            kind.to_ascii_lowercase()
        );
    }
    check_parts(&file, path, opts)?;
    let mut wb: Sheets<BufReader<File>> = open_workbook_auto(path)
        .map_err(|e| anyhow!("{file}: cannot read as an {kind} workbook: {e}"))?;
    let names = wb.sheet_names();
    let hidden = hidden_sheets(wb.sheets_metadata());
    let (picked, sheet, header_row) = Picked::choose(
        (kind, file, names, &hidden),
        |s, h, w| header_search(&mut RangeRows::new(wb.worksheet_range(s).ok()?), h, w),
        opts,
    )?;
    let range = wb.worksheet_range(&sheet).map_err(|e| {
        anyhow!(
            "{}, sheet {sheet:?}: cannot read the sheet: {e}",
            picked.file
        )
    })?;
    picked.start(move |label, channels, max_field| {
        read_rows(
            &mut RangeRows::new(range),
            header_row,
            label,
            channels,
            max_field,
        );
    })
}
