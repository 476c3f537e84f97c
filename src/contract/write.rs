//! Contract v1 files as schools send them: CSV (Swedish Excel or UTF-8) and Parquet with wide
//! or list histograms. The fixture generator and `narvaro aggregate` both write through here.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Builder, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;

use crate::contract::attendance::{self, AttendanceRow};
use crate::contract::schema::{HISTOGRAMS, MINUTES};
use crate::{Error, Result};

/// The upload formats schools use; the county fixtures rotate through all of them.
#[derive(Debug, Clone, Copy)]
pub enum FileFormat {
    /// Swedish Excel: Windows-1252, `;`.
    CsvExcel,
    /// UTF-8 with BOM, `,`.
    CsvUtf8,
    ParquetWide,
    ParquetList,
}

impl FileFormat {
    pub fn ext(self) -> &'static str {
        match self {
            FileFormat::CsvExcel | FileFormat::CsvUtf8 => "csv",
            _ => "parquet",
        }
    }
}

pub fn write_csv(
    path: &Path,
    header: &[String],
    rows: &[Vec<String>],
    delimiter: u8,
    windows_1252: bool,
) -> Result<()> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_writer(Vec::new());
    let io = |e: csv::Error| Error::io(path, std::io::Error::other(e));
    w.write_record(header).map_err(io)?;
    for r in rows {
        w.write_record(r).map_err(io)?;
    }
    let text = String::from_utf8(
        w.into_inner()
            .map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))?,
    )
    .expect("utf-8");
    let bytes = if windows_1252 {
        encoding_rs::WINDOWS_1252.encode(&text).0.into_owned()
    } else {
        let mut b = b"\xEF\xBB\xBF".to_vec();
        b.extend(text.as_bytes());
        b
    };
    fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

fn attendance_header() -> Vec<String> {
    let mut h: Vec<String> = [
        "school_unit_code",
        "period",
        "window",
        "grade",
        "gender",
        "students",
    ]
    .map(String::from)
    .to_vec();
    h.extend(MINUTES.iter().map(|m| m.to_string()));
    for hist in HISTOGRAMS {
        h.extend((0..hist.bands).map(|b| hist.wide_column(b)));
    }
    h
}

pub fn write_attendance(path: &Path, rows: &[AttendanceRow], format: FileFormat) -> Result<()> {
    match format {
        FileFormat::CsvExcel | FileFormat::CsvUtf8 => {
            let records: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let mut v = vec![
                        r.school.clone(),
                        r.period.to_string(),
                        r.window.to_string(),
                        r.grade.clone(),
                        r.gender.clone(),
                        r.students.to_string(),
                    ];
                    v.extend(r.minutes.iter().map(|x| x.to_string()));
                    for h in &r.hists {
                        v.extend(h.iter().map(|x| x.to_string()));
                    }
                    v
                })
                .collect();
            let excel = matches!(format, FileFormat::CsvExcel);
            write_csv(
                path,
                &attendance_header(),
                &records,
                if excel { b';' } else { b',' },
                excel,
            )
        }
        FileFormat::ParquetWide | FileFormat::ParquetList => write_parquet(
            path,
            &attendance_batch(rows, matches!(format, FileFormat::ParquetWide))?,
        ),
    }
}

/// The rows as a contract v1 batch: list histograms (the lake's shape) or wide columns.
pub fn attendance_batch(rows: &[AttendanceRow], wide: bool) -> Result<RecordBatch> {
    let lists = attendance::to_batch(rows);
    if !wide {
        return Ok(lists);
    }
    let base = lists.schema();
    let mut fields: Vec<Field> = base
        .fields()
        .iter()
        .take(12)
        .map(|f| f.as_ref().clone())
        .collect();
    let mut columns: Vec<ArrayRef> = lists.columns()[..12].to_vec();
    for (hi, h) in HISTOGRAMS.iter().enumerate() {
        for band in 0..h.bands {
            fields.push(Field::new(h.wide_column(band), DataType::Int32, false));
            let mut b = Int32Builder::with_capacity(rows.len());
            for r in rows {
                b.append_value(r.hists[hi][band] as i32);
            }
            columns.push(Arc::new(b.finish()));
        }
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<()> {
    let file = fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = ArrowWriter::try_new(file, batch.schema(), None)?;
    w.write(batch)?;
    w.close()?;
    Ok(())
}
