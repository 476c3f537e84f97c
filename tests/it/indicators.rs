//! Every indicator on the county fixtures agrees with the generator's pupil-level truth,
//! recomputed here in plain Rust from `truth/pupil_months.parquet`, independently of the SQL.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type};
use narvaro::engine::Engine;
use narvaro::lake::Lake;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

#[derive(Default, Clone, Copy)]
struct Pupil {
    offered: i64,
    absence: i64,
    reported: i64,
}

fn col_str(b: &RecordBatch, name: &str) -> Vec<String> {
    let a = arrow::compute::cast(b.column_by_name(name).unwrap(), &DataType::Utf8).unwrap();
    a.as_string::<i32>()
        .iter()
        .map(|s| s.unwrap_or("NULL").to_string())
        .collect()
}

fn col_int(b: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    let a = arrow::compute::cast(b.column_by_name(name).unwrap(), &DataType::Int64).unwrap();
    a.as_primitive::<Int64Type>().iter().collect()
}

/// Per pupil: minutes over the months of `periods`, and the pupil's school.
fn pupils(truth: &Path, periods: &[&str]) -> HashMap<String, (String, Pupil)> {
    let f = std::fs::File::open(truth).unwrap();
    let mut out: HashMap<String, (String, Pupil)> = HashMap::new();
    for b in ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
    {
        let b = b.unwrap();
        let (id, school, period) = (
            col_str(&b, "pupil_id"),
            col_str(&b, "school_unit_code"),
            col_str(&b, "period"),
        );
        let (off, val, inv, rep) = (
            col_int(&b, "offered_minutes"),
            col_int(&b, "valid_absence_minutes"),
            col_int(&b, "invalid_absence_minutes"),
            col_int(&b, "reported_minutes"),
        );
        for i in 0..b.num_rows() {
            if !periods.contains(&period[i].as_str()) {
                continue;
            }
            let e = out
                .entry(id[i].clone())
                .or_insert_with(|| (school[i].clone(), Pupil::default()));
            e.1.offered += off[i].unwrap();
            e.1.absence += val[i].unwrap() + inv[i].unwrap();
            e.1.reported += rep[i].unwrap();
        }
    }
    out
}

/// The register's school → municipality, from the fixtures' Windows-1252 register file.
fn municipality_of(fixtures: &Path) -> HashMap<String, String> {
    let text = narvaro::contract::source::decode_text(
        &std::fs::read(fixtures.join("register.csv")).unwrap(),
    );
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(';').collect();
            (f[0].to_string(), f[2].to_string())
        })
        .collect()
}

/// Figures per municipality: (students, offered, absence, reported, pupils at or above each
/// of `bands` in percent, pupils at or above each of `hours`).
fn by_municipality(
    p: &HashMap<String, (String, Pupil)>,
    muni: &HashMap<String, String>,
    bands: &[i64],
    hours: &[i64],
) -> BTreeMap<String, Vec<i64>> {
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (school, m) in p.values() {
        let e = out
            .entry(muni[school].clone())
            .or_insert_with(|| vec![0; 4 + bands.len() + hours.len()]);
        if m.offered == 0 {
            continue;
        }
        e[0] += 1;
        e[1] += m.offered;
        e[2] += m.absence;
        e[3] += m.reported;
        let pct = (100 * m.absence / m.offered).min(100);
        for (k, b) in bands.iter().enumerate() {
            e[4 + k] += (pct >= *b) as i64;
        }
        for (k, h) in hours.iter().enumerate() {
            e[4 + bands.len() + k] += ((m.absence / 60).min(200) >= *h) as i64;
        }
    }
    out
}

async fn query(engine: &Engine, sql: &str) -> Vec<RecordBatch> {
    engine
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Checks the indicators for period `period` (the lake must hold its month, term and
/// school-year rows) against the truth.
pub async fn check_against_truth(
    lake_dir: &Path,
    fixtures: &Path,
    period: &str,
    term: &[&str],
    year: &[&str],
) {
    let truth = fixtures.join("truth/pupil_months.parquet");
    let muni = municipality_of(fixtures);
    let lake = Lake::open(lake_dir).await.unwrap();
    let engine = Engine::open(&lake, None).await.unwrap();
    let levels = [10, 15, 20, 50];
    let windows: [(&str, Vec<&str>); 3] = [
        ("month", vec![period]),
        ("term", term.to_vec()),
        ("school_year", year.to_vec()),
    ];
    for (window, months) in &windows {
        let want = by_municipality(&pupils(&truth, months), &muni, &levels, &[30, 50, 70]);
        // absence_rate and reporting_rate: exact minutes and pupils.
        let got = query(&engine, &format!(
            "SELECT a.area_code, a.students, a.offered_minutes, a.absence_minutes, r.reported_minutes
             FROM absence_rate a JOIN reporting_rate r USING (area_type, area_code, period, \"window\")
             WHERE a.area_type = 'municipality' AND a.period = '{period}' AND a.\"window\" = '{window}'")).await;
        let mut seen = 0;
        for b in &got {
            let (code, n, off, abs, rep) = (
                col_str(b, "area_code"),
                col_int(b, "students"),
                col_int(b, "offered_minutes"),
                col_int(b, "absence_minutes"),
                col_int(b, "reported_minutes"),
            );
            for i in 0..b.num_rows() {
                let w = &want[&code[i]];
                assert_eq!(
                    [n[i], off[i], abs[i], rep[i]].map(Option::unwrap),
                    [w[0], w[1], w[2], w[3]],
                    "{window} {}",
                    code[i]
                );
                seen += 1;
            }
        }
        assert_eq!(seen, want.len(), "{window}: every municipality");
        // at_or_above: pupils at each shared level.
        let mut checked = 0;
        for b in &query(
            &engine,
            &format!(
                "SELECT area_code, percent, pupils FROM at_or_above
             WHERE area_type = 'municipality' AND period = '{period}' AND \"window\" = '{window}'"
            ),
        )
        .await
        {
            let (code, pct, pupils) = (
                col_str(b, "area_code"),
                col_int(b, "percent"),
                col_int(b, "pupils"),
            );
            for i in 0..b.num_rows() {
                let k = levels.iter().position(|l| Some(*l) == pct[i]).unwrap();
                assert_eq!(
                    pupils[i].unwrap(),
                    want[&code[i]][4 + k],
                    "{window} {} {}%",
                    code[i],
                    levels[k]
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 12 * 4, "{window}: 12 municipalities × 4 levels");
        let mut checked = 0;
        // harmonisation: FNoFF's steps and the hours ladder, in their own windows.
        for b in &query(&engine, &format!(
            "SELECT municipality_code, measure, band, pupils FROM harmonisation
             WHERE period = '{period}' AND \"window\" = '{window}' AND model IN ('länets', 'referens')")).await {
            let (code, measure, band, pupils) = (col_str(b, "municipality_code"), col_str(b, "measure"), col_int(b, "band"), col_int(b, "pupils"));
            for i in 0..b.num_rows() {
                let w = &want[&code[i]];
                let expected = match measure[i].as_str() {
                    "percent" => w[4 + levels.iter().position(|l| Some(*l) == band[i]).expect("FNoFF bands are shared levels")],
                    _ => w[8 + [30, 50, 70].iter().position(|h| Some(*h) == band[i]).unwrap()],
                };
                assert_eq!(pupils[i].unwrap(), expected, "harmonisation {window} {} {} {:?}", code[i], measure[i], band[i]);
                checked += 1;
            }
        }
        // FNoFF: two month steps and one term step; the hours ladder: three school-year steps.
        let steps = match *window {
            "month" => 2,
            "term" => 1,
            _ => 3,
        };
        assert_eq!(checked, 12 * steps, "{window}: harmonisation steps checked");
    }
    // coverage: in 2025/26 every school uploads every month.
    let b = query(&engine, &format!(
        "SELECT schools_registered, schools_uploaded FROM coverage WHERE area_type = 'county' AND period = '{period}'")).await;
    assert_eq!(
        (
            col_int(&b[0], "schools_registered")[0],
            col_int(&b[0], "schools_uploaded")[0]
        ),
        (Some(129), Some(129))
    );
}
