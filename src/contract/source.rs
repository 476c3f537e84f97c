//! Reading an uploaded file into a [`RawTable`]: named columns of not-yet-validated cells.
//!
//! CSV arrives as UTF-8 (with or without BOM) or Windows-1252 (what Swedish Excel writes),
//! separated by `,` or `;`. Parquet arrives with any integer or string types. Both end up
//! behind the same accessors, so validation is written once for both formats.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, ListArray, StringArray, StringBuilder, UInt64Array,
};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Field};
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::basic::Type as PhysicalType;
use parquet::column::page::Page;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::reader::{FileReader, SerializedFileReader};

use super::Problem;

/// The most data rows a file may have: a school-month is tens of rows, a county's school
/// year in one bulk file a few hundred thousand.
pub const MAX_ROWS: usize = 1_000_000;
/// The most columns a file may have (the widest contract form, attendance with its
/// histograms as wide columns, has 415).
pub const MAX_COLUMNS: usize = 1000;
/// The longest CSV line, in bytes.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// The longest cell, in bytes; no field of the contract comes near it.
pub const MAX_CELL_BYTES: usize = 1024;
/// The most memory a file's cells may take once read, in bytes. A Parquet file's is
/// estimated from its footer and dictionaries before anything is decoded.
pub const MAX_DECODED_BYTES: usize = 512 * 1024 * 1024;

/// The format a file arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
}

impl Format {
    /// Parquet files start with the magic `PAR1`; everything else is read as CSV.
    pub fn sniff(bytes: &[u8]) -> Format {
        if bytes.len() >= 4 && &bytes[..4] == b"PAR1" {
            Format::Parquet
        } else {
            Format::Csv
        }
    }
}

enum RawColumn {
    Str(StringArray),
    Int(Int64Array),
    /// Unsigned 64-bit integers, kept apart so a value beyond `i64` is named, not lost.
    UInt(UInt64Array),
    List(ListArray),
    Other(DataType),
}

/// An uploaded file's cells by column name, before validation.
pub struct RawTable {
    /// The spreadsheet row number of the first data row: 2 for CSV (the header is row 1),
    /// 1 for Parquet (no header row).
    pub first_row: usize,
    pub nrows: usize,
    /// Column names in file order, normalised (trimmed, lower case).
    pub columns: Vec<String>,
    cols: HashMap<String, RawColumn>,
}

/// A cell that could not be read as the type its column needs; carries the raw text.
pub struct BadCell(pub String);

impl RawTable {
    pub fn has(&self, col: &str) -> bool {
        self.cols.contains_key(col)
    }

    /// The spreadsheet row number of data row `i` (0-based).
    pub fn row_number(&self, i: usize) -> usize {
        self.first_row + i
    }

    /// The cell as text; `None` when empty, null or the column is absent.
    pub fn text(&self, col: &str, i: usize) -> Option<String> {
        let s = match self.cols.get(col)? {
            RawColumn::Str(a) => {
                if a.is_null(i) {
                    return None;
                }
                a.value(i).trim().to_string()
            }
            RawColumn::Int(a) => {
                if a.is_null(i) {
                    return None;
                }
                a.value(i).to_string()
            }
            RawColumn::UInt(a) => {
                if a.is_null(i) {
                    return None;
                }
                a.value(i).to_string()
            }
            RawColumn::List(_) | RawColumn::Other(_) => return None,
        };
        (!s.is_empty()).then_some(s)
    }

    /// The cell as an integer. `Ok(None)` when empty; `Err` with the raw text when it is not a
    /// whole number.
    pub fn int(&self, col: &str, i: usize) -> Result<Option<i64>, BadCell> {
        match self.cols.get(col) {
            None => Ok(None),
            Some(RawColumn::Int(a)) => Ok((!a.is_null(i)).then(|| a.value(i))),
            Some(RawColumn::UInt(a)) => {
                if a.is_null(i) {
                    return Ok(None);
                }
                let v = a.value(i);
                i64::try_from(v)
                    .map(Some)
                    .map_err(|_| BadCell(v.to_string()))
            }
            Some(RawColumn::Str(a)) => {
                if a.is_null(i) {
                    Ok(None)
                } else {
                    parse_int(a.value(i))
                }
            }
            Some(RawColumn::List(_)) => Err(BadCell("[lista]".into())),
            Some(RawColumn::Other(t)) => Err(BadCell(format!("<{t}>"))),
        }
    }

    /// The cell of a list column as integers; `None` when the column is not a list column
    /// or the cell is null. Elements that are null come back as `None`.
    pub fn list(&self, col: &str, i: usize) -> Option<Vec<Option<i64>>> {
        match self.cols.get(col)? {
            RawColumn::List(a) => {
                if a.is_null(i) {
                    return None;
                }
                let v = a.value(i);
                let ints = v.as_primitive::<arrow::datatypes::Int64Type>();
                Some(ints.iter().collect())
            }
            _ => None,
        }
    }

    /// Whether `col` is a list column (the list form of the histograms).
    pub fn is_list(&self, col: &str) -> bool {
        matches!(self.cols.get(col), Some(RawColumn::List(_)))
    }
}

fn parse_int(raw: &str) -> Result<Option<i64>, BadCell> {
    let t = raw.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse::<i64>()
        .map(Some)
        .map_err(|_| BadCell(t.to_string()))
}

/// Reads a file's bytes into a [`RawTable`], or the problems that stop it being read at all.
pub fn read(bytes: &[u8]) -> Result<RawTable, Vec<Problem>> {
    match Format::sniff(bytes) {
        // A malformed file must not take the server down: should the Parquet reader itself
        // panic on one, the file is refused like any other unreadable one.
        Format::Parquet => std::panic::catch_unwind(|| read_parquet(bytes)).unwrap_or_else(|_| {
            Err(vec![Problem::file(
                "unreadable_parquet",
                "filen kan inte läsas som Parquet: den är trasig",
            )])
        }),
        Format::Csv => read_csv(bytes),
    }
}

/// Decodes CSV bytes: UTF-8 (BOM stripped) when valid, otherwise Windows-1252.
pub fn decode_text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => encoding_rs::WINDOWS_1252.decode(bytes).0.into_owned(),
    }
}

fn read_csv(bytes: &[u8]) -> Result<RawTable, Vec<Problem>> {
    let text = decode_text(bytes);
    let header_line = text.lines().next().unwrap_or("");
    if header_line.trim().is_empty() {
        return Err(vec![Problem::file(
            "empty_file",
            "filen är tom eller saknar rubrikrad",
        )]);
    }
    check_csv_shape(&text)?;
    let delimiter = delimiter(header_line);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(normalise_name).collect(),
        Err(e) => {
            return Err(vec![Problem::file(
                "unreadable_csv",
                format!("rubrikraden kan inte läsas som CSV: {e}"),
            )]);
        }
    };
    if headers.len() > MAX_COLUMNS {
        return Err(vec![too_many_columns(headers.len())]);
    }
    let mut problems = super::Problems::default();
    check_duplicate_columns(&headers, &mut problems);
    // One Arrow string column per CSV column: 4 bytes per cell beside its text, where a
    // `String` per cell would take 24 and an allocation.
    let mut values: Vec<StringBuilder> = headers.iter().map(|_| StringBuilder::new()).collect();
    let mut nrows = 0;
    for (i, rec) in reader.records().enumerate() {
        let row = i + 2;
        match rec {
            Ok(rec) => {
                if rec.iter().all(|c| c.trim().is_empty()) {
                    // Excel leaves empty trailing lines; they are not data.
                    continue;
                }
                if rec.len() != headers.len() {
                    problems.push(
                        Problem::at("wrong_field_count", row)
                            .value(rec.len().to_string())
                            .msg(format!(
                                "raden har {} fält men rubrikraden har {}",
                                rec.len(),
                                headers.len()
                            )),
                    );
                }
                for (c, col) in values.iter_mut().enumerate() {
                    let v = rec.get(c).unwrap_or("").trim();
                    if v.len() > MAX_CELL_BYTES {
                        problems.push(too_long(&headers[c], row, v.len()));
                    }
                    col.append_value(v);
                }
                nrows += 1;
            }
            Err(e) => problems.push(
                Problem::at("unreadable_csv", row)
                    .msg(format!("raden kan inte läsas som CSV: {e}")),
            ),
        }
    }
    if !problems.is_empty() {
        return Err(problems.finish());
    }
    let cols = headers
        .iter()
        .cloned()
        .zip(values.iter_mut().map(|b| RawColumn::Str(b.finish())))
        .collect();
    Ok(RawTable {
        first_row: 2,
        nrows,
        columns: headers,
        cols,
    })
}

/// Refuses a CSV file whose lines, rows or cells would take more than the limits allow,
/// before any of it is split into cells.
fn check_csv_shape(text: &str) -> Result<(), Vec<Problem>> {
    let mut lines = 0usize;
    for (i, line) in text.split('\n').enumerate() {
        if line.len() > MAX_LINE_BYTES {
            return Err(vec![
                Problem::at("line_too_long", i + 1)
                    .value(format!("{} byte", line.len()))
                    .msg(format!(
                        "raden är längre än gränsen på {} kB; är det rätt fil och rätt avgränsare?",
                        MAX_LINE_BYTES / 1024
                    )),
            ]);
        }
        lines += 1;
    }
    let header = text.lines().next().unwrap_or("");
    let sep = delimiter(header) as char;
    let columns = header.matches(sep).count() + 1;
    if columns > MAX_COLUMNS {
        return Err(vec![too_many_columns(columns)]);
    }
    if lines > MAX_ROWS + 2 {
        return Err(vec![too_many_rows(lines - 1)]);
    }
    // Each cell is held as its text and an offset, in the decoded text's copy.
    let cells = lines.saturating_mul(columns);
    let estimate = cells.saturating_mul(8).saturating_add(text.len());
    if estimate > MAX_DECODED_BYTES {
        return Err(vec![too_large(estimate)]);
    }
    Ok(())
}

fn too_many_columns(n: usize) -> Problem {
    Problem::file(
        "too_many_columns",
        format!("filen har {n} kolumner; kontraktet har högst {MAX_COLUMNS}"),
    )
    .value(n.to_string())
}

fn too_many_rows(n: usize) -> Problem {
    Problem::file(
        "too_many_rows",
        format!("filen har {n} rader; en fil får ha högst {MAX_ROWS} (dela upp den per kommun eller månad)"),
    )
    .value(n.to_string())
}

fn too_large(bytes: usize) -> Problem {
    Problem::file(
        "file_too_large_decoded",
        format!(
            "filen skulle ta {} MB i minnet när den läses; gränsen är {} MB (dela upp den per kommun eller månad)",
            bytes / (1024 * 1024),
            MAX_DECODED_BYTES / (1024 * 1024)
        ),
    )
}

fn too_long(column: &str, row: usize, len: usize) -> Problem {
    Problem::at("value_too_long", row)
        .column(column)
        .value(format!("{len} byte"))
        .msg(format!("värdet är längre än {MAX_CELL_BYTES} byte"))
}

/// The separator of a CSV file from its header line: Swedish Excel writes `;` (the comma is
/// the decimal separator), others write `,`.
pub fn delimiter(header_line: &str) -> u8 {
    if header_line.matches(';').count() > header_line.matches(',').count() {
        b';'
    } else {
        b','
    }
}

/// The normalised column names of a CSV header line.
pub fn csv_columns(header_line: &str) -> Vec<String> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter(header_line))
        .has_headers(true)
        .from_reader(header_line.as_bytes())
        .headers()
        .map(|h| h.iter().map(normalise_name).collect())
        .unwrap_or_default()
}

fn read_parquet(bytes: &[u8]) -> Result<RawTable, Vec<Problem>> {
    let unreadable = |e: &dyn std::fmt::Display| {
        vec![Problem::file(
            "unreadable_parquet",
            format!("filen kan inte läsas som Parquet: {e}"),
        )]
    };
    let bytes = Bytes::copy_from_slice(bytes);
    // The file's own Arrow schema hint (e.g. LargeUtf8, Utf8View) is ignored: strings are
    // read as Utf8, within the limits checked below.
    let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(bytes.clone(), options)
        .map_err(|e| unreadable(&e))?;
    let schema = builder.schema().clone();
    if schema.fields().len() > MAX_COLUMNS {
        return Err(vec![too_many_columns(schema.fields().len())]);
    }
    check_parquet_size(builder.metadata(), &bytes).map_err(|p| vec![p])?;
    let reader = builder
        .with_batch_size(8192)
        .build()
        .map_err(|e| unreadable(&e))?;
    // The footer can lie: what is decoded is counted too, batch by batch.
    let mut batches = Vec::new();
    let mut held = 0usize;
    for b in reader {
        let b = b.map_err(|e| unreadable(&e))?;
        held += b.get_array_memory_size();
        if held > MAX_DECODED_BYTES {
            return Err(vec![too_large(held)]);
        }
        batches.push(b);
    }
    let batch = concat_batches(&schema, &batches).map_err(|e| unreadable(&e))?;
    drop(batches);
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| normalise_name(f.name()))
        .collect();
    let mut problems = super::Problems::default();
    check_duplicate_columns(&columns, &mut problems);
    let mut cols = HashMap::new();
    for (name, array) in columns.iter().zip(batch.columns()) {
        let column = classify(array).map_err(|e| unreadable(&format!("kolumn {name}: {e}")))?;
        if let RawColumn::Str(a) = &column {
            for (i, v) in a.iter().enumerate() {
                if let Some(v) = v
                    && v.len() > MAX_CELL_BYTES
                {
                    problems.push(too_long(name, i + 1, v.len()));
                }
            }
        }
        cols.insert(name.clone(), column);
    }
    if !problems.is_empty() {
        return Err(problems.finish());
    }
    Ok(RawTable {
        first_row: 1,
        nrows: batch.num_rows(),
        columns,
        cols,
    })
}

/// Refuses a Parquet file that would decode to more than the limits allow, from its footer
/// and dictionary pages alone: rows, values, uncompressed pages, and what dictionary-encoded
/// strings expand to (every row may repeat the longest dictionary value).
fn check_parquet_size(meta: &ParquetMetaData, bytes: &Bytes) -> Result<(), Problem> {
    let rows = meta.file_metadata().num_rows();
    let group_rows: i64 = meta.row_groups().iter().map(|g| g.num_rows().max(0)).sum();
    let rows = usize::try_from(rows.max(group_rows)).unwrap_or(usize::MAX);
    if rows > MAX_ROWS {
        return Err(too_many_rows(rows));
    }
    let unreadable = |e: parquet::errors::ParquetError| {
        Problem::file(
            "unreadable_parquet",
            format!("filen kan inte läsas som Parquet: {e}"),
        )
    };
    // One reader for every dictionary page (the footer is parsed once).
    let reader = SerializedFileReader::new(bytes.clone()).map_err(unreadable)?;
    let mut estimate = 0usize;
    for (g, group) in meta.row_groups().iter().enumerate() {
        let group_rows = usize::try_from(group.num_rows()).unwrap_or(usize::MAX);
        for (c, column) in group.columns().iter().enumerate() {
            let values = usize::try_from(column.num_values()).unwrap_or(usize::MAX);
            let pages = usize::try_from(column.uncompressed_size()).unwrap_or(usize::MAX);
            // Every value as an 8-byte integer (and its offsets), plus the pages themselves.
            estimate = estimate
                .saturating_add(values.max(group_rows).saturating_mul(8))
                .saturating_add(pages);
            if column.column_type() == PhysicalType::BYTE_ARRAY {
                let longest = longest_dictionary_value(&reader, g, c).map_err(unreadable)?;
                estimate = estimate.saturating_add(group_rows.saturating_mul(longest));
            }
            if estimate > MAX_DECODED_BYTES {
                return Err(too_large(estimate));
            }
        }
    }
    Ok(())
}

/// The longest value of a column chunk's dictionary page (0 without one).
fn longest_dictionary_value(
    reader: &SerializedFileReader<Bytes>,
    group: usize,
    column: usize,
) -> parquet::errors::Result<usize> {
    let mut pages = reader
        .get_row_group(group)?
        .get_column_page_reader(column)?;
    let Some(Page::DictionaryPage { buf, .. }) = pages.get_next_page()? else {
        return Ok(0);
    };
    // PLAIN byte arrays: a 4-byte little-endian length, then the bytes.
    let (mut at, mut longest) = (0usize, 0usize);
    while at + 4 <= buf.len() {
        let len = u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as usize;
        longest = longest.max(len.min(buf.len()));
        at = at.saturating_add(4).saturating_add(len);
    }
    Ok(longest)
}

fn classify(array: &ArrayRef) -> Result<RawColumn, arrow::error::ArrowError> {
    let t = array.data_type();
    if *t == DataType::UInt64 {
        return Ok(RawColumn::UInt(array.as_primitive().clone()));
    }
    if t.is_integer() {
        let a = cast(array, &DataType::Int64)?;
        return Ok(RawColumn::Int(a.as_primitive().clone()));
    }
    if matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
        let a = cast(array, &DataType::Utf8)?;
        return Ok(RawColumn::Str(a.as_string::<i32>().clone()));
    }
    if let DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) = t
        && f.data_type().is_integer()
    {
        let target = DataType::List(Arc::new(Field::new("item", DataType::Int64, true)));
        if let Ok(a) = cast(array, &target) {
            return Ok(RawColumn::List(a.as_list::<i32>().clone()));
        }
    }
    Ok(RawColumn::Other(t.clone()))
}

fn normalise_name(name: &str) -> String {
    name.trim().trim_start_matches('\u{feff}').to_lowercase()
}

fn check_duplicate_columns(names: &[String], problems: &mut super::Problems) {
    let mut seen = std::collections::HashSet::new();
    for n in names {
        if !seen.insert(n) {
            problems
                .push(Problem::file("duplicate_column", "kolumnen finns mer än en gång").column(n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_1252_is_decoded() {
        // "Örebro" in Windows-1252: Ö = 0xD6.
        assert_eq!(decode_text(b"\xD6rebro"), "Örebro");
        assert_eq!(decode_text("\u{feff}Örebro".as_bytes()), "Örebro");
    }

    #[test]
    fn semicolon_and_comma_csv_read_the_same() {
        let a = read(b"a;b\n1;2\n").ok().unwrap();
        let b = read(b"a,b\n1,2\n").ok().unwrap();
        for t in [&a, &b] {
            assert_eq!(t.columns, ["a", "b"]);
            assert_eq!(t.int("b", 0).ok().unwrap(), Some(2));
            assert_eq!(t.row_number(0), 2);
        }
    }
}
