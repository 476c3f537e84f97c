//! Reading an uploaded file into a [`RawTable`]: named columns of not-yet-validated cells.
//!
//! CSV arrives as UTF-8 (with or without BOM) or Windows-1252 (what Swedish Excel writes),
//! separated by `,` or `;`. Parquet arrives with any integer or string types. Both end up
//! behind the same accessors, so validation is written once for both formats.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, ListArray, StringArray};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Field};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::Problem;

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
    Text(Vec<String>),
    Str(StringArray),
    Int(Int64Array),
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
            RawColumn::Text(v) => v[i].clone(),
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
            Some(RawColumn::Text(v)) => parse_int(&v[i]),
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
        Format::Parquet => read_parquet(bytes),
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
    let mut problems = Vec::new();
    check_duplicate_columns(&headers, &mut problems);
    let mut values: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
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
                    col.push(rec.get(c).unwrap_or("").trim().to_string());
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
        return Err(problems);
    }
    let cols = headers
        .iter()
        .cloned()
        .zip(values.into_iter().map(RawColumn::Text))
        .collect();
    Ok(RawTable {
        first_row: 2,
        nrows,
        columns: headers,
        cols,
    })
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
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::copy_from_slice(bytes))
        .map_err(|e| unreadable(&e))?;
    let schema = builder.schema().clone();
    let reader = builder.build().map_err(|e| unreadable(&e))?;
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(&e))?;
    let batch = concat_batches(&schema, &batches).map_err(|e| unreadable(&e))?;
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| normalise_name(f.name()))
        .collect();
    let mut problems = Vec::new();
    check_duplicate_columns(&columns, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut cols = HashMap::new();
    for (name, array) in columns.iter().zip(batch.columns()) {
        cols.insert(name.clone(), classify(array));
    }
    Ok(RawTable {
        first_row: 1,
        nrows: batch.num_rows(),
        columns,
        cols,
    })
}

fn classify(array: &ArrayRef) -> RawColumn {
    let t = array.data_type();
    if t.is_integer() {
        let a = cast(array, &DataType::Int64).expect("integers cast to Int64");
        return RawColumn::Int(a.as_primitive().clone());
    }
    if matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
        let a = cast(array, &DataType::Utf8).expect("strings cast to Utf8");
        return RawColumn::Str(a.as_string::<i32>().clone());
    }
    if let DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) = t
        && f.data_type().is_integer()
    {
        let target = DataType::List(Arc::new(Field::new("item", DataType::Int64, true)));
        if let Ok(a) = cast(array, &target) {
            return RawColumn::List(a.as_list::<i32>().clone());
        }
    }
    RawColumn::Other(t.clone())
}

fn normalise_name(name: &str) -> String {
    name.trim().trim_start_matches('\u{feff}').to_lowercase()
}

fn check_duplicate_columns(names: &[String], problems: &mut Vec<Problem>) {
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
