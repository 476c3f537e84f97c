//! A county's release for one period and window, built from the lake: the pupils in each
//! shared-level band and in total, for every school, municipality and the county, for all
//! pupils, each stage and each grade, in total and by gender, all as sums of the uploaded
//! groups' band counts (the inner cells).

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Int64Type};

use super::{Cell, Kind, Release};
use crate::Result;
use crate::contract::attendance::grade_set;
use crate::engine::Engine;

/// One uploaded group's row: where it belongs and its band counts.
#[derive(Debug, Clone)]
pub struct Row {
    pub school: String,
    pub municipality: String,
    pub grade: String,
    pub gender: String,
    pub bands: Vec<i64>,
}

/// The slices a release shows: (label, grades as a bit set): the whole school and each stage.
const SLICES: [(&str, u16); 4] = [
    ("all", 0b11_1111_1111),
    ("F-3", 0b1111),
    ("4-6", 0b111 << 4),
    ("7-9", 0b111 << 7),
];

/// The bands between the shared levels' thresholds, e.g. `0-9`, `10-14`, `15-19`, `20-49`,
/// `50-100` for 10, 15, 20 and 50 %.
pub fn band_edges(levels: &[u32]) -> Vec<(u32, u32)> {
    let mut edges: Vec<u32> = levels.iter().copied().filter(|l| *l > 0).collect();
    edges.sort_unstable();
    edges.dedup();
    let mut out = Vec::new();
    let mut from = 0;
    for e in edges {
        out.push((from, e - 1));
        from = e;
    }
    out.push((from, 100));
    out
}

/// Builds the release of county `county` for `period` and `window` from the engine.
pub async fn county_release(
    engine: &Engine,
    county: &str,
    period: &str,
    window: &str,
    levels: &[u32],
) -> Result<Release> {
    for v in [county, period, window] {
        debug_assert!(
            v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }
    let batches = engine
        .sql(&format!(
            "SELECT school_unit_code, municipality_code, grade, gender, pct_total \
             FROM school_attendance WHERE county_code = '{county}' AND period = '{period}' \
             AND \"window\" = '{window}' ORDER BY school_unit_code, grade, gender"
        ))
        .await?;
    let edges = band_edges(levels);
    let mut rows = Vec::new();
    for b in &batches {
        let text = |c: usize| {
            let a = arrow::compute::cast(b.column(c), &DataType::Utf8).expect("text");
            a.as_string::<i32>().clone()
        };
        let (school, muni, grade, gender) = (text(0), text(1), text(2), text(3));
        let hist = b.column(4).as_list::<i32>();
        for r in 0..b.num_rows() {
            let h = arrow::compute::cast(&hist.value(r), &DataType::Int64)?;
            let h = h.as_primitive::<Int64Type>();
            let bands = edges
                .iter()
                .map(|(lo, hi)| (*lo..=*hi).map(|p| h.value(p as usize)).sum())
                .collect();
            rows.push(Row {
                school: school.value(r).to_string(),
                municipality: muni.value(r).to_string(),
                grade: grade.value(r).to_string(),
                gender: gender.value(r).to_string(),
                bands,
            });
        }
    }
    Ok(build(&rows, county, &edges))
}

/// The release over `rows` (one county's uploaded groups): for every school, municipality and
/// the county, every grade slice and gender, a cell per band and a total.
pub fn build(rows: &[Row], county: &str, edges: &[(u32, u32)]) -> Release {
    let nb = edges.len();
    let mut areas: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        areas
            .entry(format!("skolenhet:{}", r.school))
            .or_default()
            .push(i);
        areas
            .entry(format!("kommun:{}", r.municipality))
            .or_default()
            .push(i);
        areas.entry(format!("län:{county}")).or_default().push(i);
    }
    let mut cells = Vec::new();
    for (area, members) in &areas {
        for (slice, grades) in SLICES {
            for gender in ["T", "K", "M"] {
                let parts: Vec<usize> = members
                    .iter()
                    .copied()
                    .filter(|&i| {
                        let g = grade_set(&rows[i].grade);
                        g != 0 && g & !grades == 0 && (gender == "T" || rows[i].gender == gender)
                    })
                    .collect();
                if parts.is_empty() {
                    continue;
                }
                let schools: BTreeSet<&str> =
                    parts.iter().map(|&i| rows[i].school.as_str()).collect();
                let total: i64 = parts
                    .iter()
                    .map(|&i| rows[i].bands.iter().sum::<i64>())
                    .sum();
                let group = format!("{area}|{slice}{gender}");
                let is_area = !area.starts_with("skolenhet:");
                let mut all_inner = Vec::new();
                for (b, (lo, hi)) in edges.iter().enumerate() {
                    let inner: Vec<usize> = parts.iter().map(|&i| i * nb + b).collect();
                    all_inner.extend(&inner);
                    cells.push(Cell {
                        key: format!("{group}|{lo}-{hi}"),
                        kind: Kind::Band,
                        value: parts.iter().map(|&i| rows[i].bands[b]).sum(),
                        base: total,
                        schools: schools.len(),
                        area: is_area,
                        inner,
                    });
                }
                all_inner.sort_unstable();
                cells.push(Cell {
                    key: format!("{group}|totalt"),
                    kind: Kind::Total,
                    value: total,
                    base: total,
                    schools: schools.len(),
                    area: is_area,
                    inner: all_inner,
                });
            }
        }
    }
    Release {
        inner: rows.len() * nb,
        cells,
    }
}
