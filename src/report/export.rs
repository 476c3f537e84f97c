//! A report's alternates: CSV that opens right in Swedish Excel (`;`, decimal comma, UTF-8
//! with BOM), XLSX (a summary sheet and one sheet per table, real numbers) and JSON (the
//! report as data, raw numbers, for BI tools and R/Python). Every format carries the same
//! cells, the definition id and hash, the data version and the generation time.

use rust_xlsxwriter::{DocProperties, ExcelDateTime, Workbook};

use super::{Block, Cell, Format, Report, html, sv};
use crate::{Error, Result};

/// The formats a report is written in, named by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Html,
    Csv,
    Xlsx,
    Json,
    Pdf,
}

impl Output {
    pub fn from_extension(ext: &str) -> Option<Output> {
        match ext.to_ascii_lowercase().as_str() {
            "html" | "htm" => Some(Output::Html),
            "csv" => Some(Output::Csv),
            "xlsx" => Some(Output::Xlsx),
            "json" => Some(Output::Json),
            "pdf" => Some(Output::Pdf),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Output::Html => "text/html; charset=utf-8",
            Output::Csv => "text/csv; charset=utf-8",
            Output::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Output::Json => "application/json",
            Output::Pdf => "application/pdf",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Output::Html => "html",
            Output::Csv => "csv",
            Output::Xlsx => "xlsx",
            Output::Json => "json",
            Output::Pdf => "pdf",
        }
    }
}

/// The report in a format. `links` (HTML only) adds links to the other formats.
pub fn render(r: &Report, out: Output, links: Option<html::Links>) -> Result<Vec<u8>> {
    match out {
        Output::Html => Ok(html::report_page(r, links).into_bytes()),
        Output::Csv => Ok(csv(r)?.into_bytes()),
        Output::Xlsx => xlsx(r),
        Output::Json => Ok(serde_json::to_vec_pretty(r).map_err(|e| Error::usage(e.to_string()))?),
        Output::Pdf => super::pdf::pdf(r),
    }
}

/// A cell as CSV text: numbers as Swedish Excel reads them, `..` for missing.
pub(crate) fn csv_cell(format: Format, c: &Cell) -> String {
    match (c, format) {
        (Cell::Null, _) => "..".into(),
        (Cell::AtLeast { at_least }, Format::Int) => format!("≥{}", sv::plain(*at_least, 0)),
        (Cell::AtLeast { at_least }, _) => format!("≥{}", sv::plain(*at_least, 1)),
        (Cell::Int(i), _) => i.to_string(),
        (Cell::Num(f), Format::Int) => sv::plain(*f, 0),
        (Cell::Num(f), _) => sv::plain(*f, 3),
        (Cell::Bool(b), _) => if *b { "Ja" } else { "Nej" }.into(),
        (Cell::Text(s), Format::Month) => s.clone(),
        (Cell::Text(s), Format::Term) => sv::term_of(s),
        (Cell::Text(s), _) => s.clone(),
    }
}

fn meta(r: &Report) -> Vec<(&'static str, String)> {
    vec![
        ("Rapport", r.title.clone()),
        ("Område", format!("{} ({})", r.area.name, r.area.code)),
        ("Termin", format!("{} (läsår {})", r.term, r.school_year)),
        ("Uppgifter till och med", r.period.clone()),
        (
            "Definition",
            format!("{} (hash {})", r.definition_id, r.definition_hash),
        ),
        ("Dataversion", r.data_version.to_string()),
        (
            "Publicerad",
            r.generated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        ),
    ]
}

fn figure_row(f: &super::Figure) -> Vec<String> {
    vec![
        f.label.clone(),
        f.value
            .map(|v| format!("{}{}", if f.at_least { "≥" } else { "" }, sv::plain(v, 3)))
            .unwrap_or_else(|| "..".into()),
        f.change_pp
            .map(|v| sv::plain(v, 3))
            .unwrap_or_else(|| "..".into()),
        f.compared_with.clone().unwrap_or_default(),
        if f.uncertain { "Ja" } else { "Nej" }.into(),
        f.note.clone().unwrap_or_default(),
    ]
}

const FIGURE_HEADER: [&str; 6] = [
    "Nyckeltal",
    "Värde",
    "Förändring (procentenheter)",
    "Jämfört med",
    "Osäker",
    "Anmärkning",
];

/// Every table of the report under its heading, one after the other, as Swedish Excel opens
/// it: `;`-separated, decimal comma, UTF-8 with a BOM.
pub fn csv(r: &Report) -> Result<String> {
    let mut w = ::csv::WriterBuilder::new()
        .delimiter(b';')
        .flexible(true)
        .from_writer(Vec::new());
    let csv_err = |e: ::csv::Error| Error::usage(format!("csv: {e}"));
    for (k, v) in meta(r) {
        w.write_record([k, v.as_str()]).map_err(csv_err)?;
    }
    w.write_record(std::iter::empty::<&str>())
        .map_err(csv_err)?;
    w.write_record(["Sammanfattning"]).map_err(csv_err)?;
    w.write_record(FIGURE_HEADER).map_err(csv_err)?;
    for f in &r.summary {
        w.write_record(figure_row(f)).map_err(csv_err)?;
    }
    for s in &r.sections {
        for b in &s.blocks {
            w.write_record(std::iter::empty::<&str>())
                .map_err(csv_err)?;
            w.write_record([format!("Steg {}. {}: {}", s.step, s.title, b.title)])
                .map_err(csv_err)?;
            w.write_record(b.columns.iter().map(|c| c.label.as_str()))
                .map_err(csv_err)?;
            for row in &b.rows {
                w.write_record(
                    b.columns
                        .iter()
                        .zip(row)
                        .map(|(c, v)| csv_cell(c.format, v)),
                )
                .map_err(csv_err)?;
            }
            for n in &b.footnotes {
                w.write_record([n.as_str()]).map_err(csv_err)?;
            }
        }
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::usage(format!("csv: {e}")))?;
    let body = String::from_utf8(bytes).map_err(|e| Error::usage(format!("csv: {e}")))?;
    // The csv writer quotes an empty record as `""`; a blank line separates tables.
    let body: String = body
        .lines()
        .map(|l| if l == "\"\"" { "" } else { l })
        .flat_map(|l| [l, "\n"])
        .collect();
    Ok(format!("\u{FEFF}{body}"))
}

/// A sheet name: at most 31 characters, none of `[]:*?/\`, unique in the workbook.
fn sheet_name(step: u8, n: usize, b: &Block) -> String {
    let clean: String = b
        .short
        .chars()
        .filter(|c| !"[]:*?/\\".contains(*c))
        .collect();
    let s = format!("{step}.{n} {clean}");
    s.chars().take(31).collect()
}

/// A workbook: `Sammanfattning` (the metadata and key figures), then one sheet per table, with
/// numbers as numbers (Excel shows them with the reader's decimal comma).
pub fn xlsx(r: &Report) -> Result<Vec<u8>> {
    let err = |e: rust_xlsxwriter::XlsxError| Error::usage(format!("xlsx: {e}"));
    let mut wb = Workbook::new();
    let created =
        ExcelDateTime::parse_from_str(&r.generated_at.format("%Y-%m-%dT%H:%M:%S").to_string())
            .map_err(err)?;
    wb.set_properties(
        &DocProperties::new()
            .set_title(r.heading())
            .set_creation_datetime(&created),
    );
    let bold = rust_xlsxwriter::Format::new().set_bold();
    let one = rust_xlsxwriter::Format::new().set_num_format("0.0");
    let int = rust_xlsxwriter::Format::new().set_num_format("# ##0");
    {
        let ws = wb.add_worksheet();
        ws.set_name("Sammanfattning").map_err(err)?;
        let mut row = 0u32;
        for (k, v) in meta(r) {
            ws.write_string_with_format(row, 0, k, &bold).map_err(err)?;
            ws.write_string(row, 1, v).map_err(err)?;
            row += 1;
        }
        row += 1;
        for (c, h) in FIGURE_HEADER.iter().enumerate() {
            ws.write_string_with_format(row, c as u16, *h, &bold)
                .map_err(err)?;
        }
        for f in &r.summary {
            row += 1;
            ws.write_string(row, 0, &f.label).map_err(err)?;
            for (c, v) in [(1u16, f.value), (2, f.change_pp)] {
                match v {
                    Some(v) if c == 1 && f.at_least => {
                        ws.write_string(row, c, format!("≥{}", sv::plain(v, 1)))
                    }
                    Some(v) => ws.write_number_with_format(row, c, v, &one),
                    None => ws.write_string(row, c, ".."),
                }
                .map_err(err)?;
            }
            ws.write_string(row, 3, f.compared_with.clone().unwrap_or_default())
                .map_err(err)?;
            ws.write_string(row, 4, if f.uncertain { "Ja" } else { "Nej" })
                .map_err(err)?;
            if let Some(n) = &f.note {
                ws.write_string(row, 5, n).map_err(err)?;
            }
        }
        ws.autofit();
    }
    for s in &r.sections {
        for (n, b) in s.blocks.iter().enumerate() {
            let ws = wb.add_worksheet();
            ws.set_name(sheet_name(s.step, n + 1, b)).map_err(err)?;
            ws.write_string_with_format(0, 0, format!("Steg {}. {}", s.step, s.title), &bold)
                .map_err(err)?;
            ws.write_string(1, 0, &b.title).map_err(err)?;
            for (c, col) in b.columns.iter().enumerate() {
                ws.write_string_with_format(3, c as u16, &col.label, &bold)
                    .map_err(err)?;
            }
            let mut row = 3u32;
            for cells in &b.rows {
                row += 1;
                for (c, (col, v)) in b.columns.iter().zip(cells).enumerate() {
                    let c = c as u16;
                    match v {
                        Cell::Null => ws.write_string(row, c, ".."),
                        Cell::Int(i) => ws.write_number_with_format(row, c, *i as f64, &int),
                        Cell::Num(f) if col.format == Format::Int => {
                            ws.write_number_with_format(row, c, *f, &int)
                        }
                        Cell::Num(f) => ws.write_number_with_format(row, c, *f, &one),
                        other => ws.write_string(row, c, csv_cell(col.format, other)),
                    }
                    .map_err(err)?;
                }
            }
            for n in &b.footnotes {
                row += 2;
                ws.write_string(row, 0, n).map_err(err)?;
            }
            ws.set_freeze_panes(4, 0).map_err(err)?;
            ws.autofit();
        }
    }
    wb.save_to_buffer().map_err(err)
}
