//! The pupil-level truth oracle: the generator's simulated pupils
//! (`truth/pupil_months.parquet`) and the fixture files beside them, with the plain-Rust
//! arithmetic the indicator checks (`indicators.rs`, `aggregate.rs`, `cli.rs`) compare the SQL
//! against, independently of it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use narvaro::aggregate::{GRADE_NAMES, Gender, Grouping, plan_groups};
use narvaro::contract::attendance::MIN_GROUP;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// One pupil's minutes over a window.
#[derive(Clone)]
pub(crate) struct Pupil {
    pub(crate) school: String,
    pub(crate) school_year: String,
    pub(crate) grade: usize,
    pub(crate) gender: Gender,
    pub(crate) offered: i64,
    pub(crate) absence: i64,
    pub(crate) reported: i64,
}

impl Pupil {
    /// Whole percent, as the histograms band it.
    pub(crate) fn pct(&self) -> i64 {
        (100 * self.absence / self.offered).min(100)
    }
}

pub(crate) fn col_str(b: &RecordBatch, name: &str) -> Vec<String> {
    let a = arrow::compute::cast(b.column_by_name(name).unwrap(), &DataType::Utf8).unwrap();
    a.as_string::<i32>()
        .iter()
        .map(|s| s.unwrap_or("NULL").to_string())
        .collect()
}

pub(crate) fn col_int(b: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    let a = arrow::compute::cast(b.column_by_name(name).unwrap(), &DataType::Int64).unwrap();
    a.as_primitive::<Int64Type>().iter().collect()
}

pub(crate) fn col_f64(b: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    let a = arrow::compute::cast(b.column_by_name(name).unwrap(), &DataType::Float64).unwrap();
    a.as_primitive::<Float64Type>().iter().collect()
}

pub(crate) fn close(got: Option<f64>, want: f64, what: &str) {
    let got = got.unwrap_or_else(|| panic!("{what}: NULL, want {want}"));
    assert!((got - want).abs() < 1e-9, "{what}: {got} ≠ {want}");
}

/// The generator's truth and the fixture files beside it.
pub(crate) struct Truth {
    /// (pupil id, period, the pupil's minutes in that month)
    pub(crate) rows: Vec<(String, String, Pupil)>,
    /// school → municipality, and school → school types, from the register file.
    pub(crate) municipality: HashMap<String, String>,
    pub(crate) school_types: HashMap<String, String>,
    /// (school, period) the generator left out of the uploads.
    pub(crate) missing: HashSet<(String, String)>,
}

impl Truth {
    pub(crate) fn load(fixtures: &Path) -> Truth {
        let f = std::fs::File::open(fixtures.join("truth/pupil_months.parquet")).unwrap();
        let mut rows = Vec::new();
        for b in ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .build()
            .unwrap()
        {
            let b = b.unwrap();
            let [id, school, year, grade, gender, period] = [
                "pupil_id",
                "school_unit_code",
                "school_year",
                "grade",
                "gender",
                "period",
            ]
            .map(|c| col_str(&b, c));
            let [off, val, inv, rep] = [
                "offered_minutes",
                "valid_absence_minutes",
                "invalid_absence_minutes",
                "reported_minutes",
            ]
            .map(|c| col_int(&b, c));
            for i in 0..b.num_rows() {
                rows.push((
                    id[i].clone(),
                    period[i].clone(),
                    Pupil {
                        school: school[i].clone(),
                        school_year: year[i].clone(),
                        grade: GRADE_NAMES.iter().position(|g| *g == grade[i]).unwrap(),
                        gender: if gender[i] == "K" {
                            Gender::K
                        } else {
                            Gender::M
                        },
                        offered: off[i].unwrap(),
                        absence: val[i].unwrap() + inv[i].unwrap(),
                        reported: rep[i].unwrap(),
                    },
                ));
            }
        }
        let text = narvaro::contract::source::decode_text(
            &std::fs::read(fixtures.join("register.csv")).unwrap(),
        );
        let (mut municipality, mut school_types) = (HashMap::new(), HashMap::new());
        for l in text.lines().skip(1) {
            let f: Vec<&str> = l.split(';').collect();
            municipality.insert(f[0].to_string(), f[2].to_string());
            school_types.insert(f[0].to_string(), f[4].to_string());
        }
        let missing = std::fs::read_to_string(fixtures.join("truth/missing_uploads.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(';'))
            .map(|(s, p)| (s.to_string(), p.to_string()))
            .collect();
        Truth {
            rows,
            municipality,
            school_types,
            missing,
        }
    }

    /// Per pupil with offered time: minutes over `months`, at the schools that uploaded for
    /// the window's period (the last of `months`).
    pub(crate) fn window(&self, months: &[&str]) -> HashMap<String, Pupil> {
        let period = months.last().unwrap().to_string();
        let mut out: HashMap<String, Pupil> = HashMap::new();
        for (id, p, m) in &self.rows {
            if !months.contains(&p.as_str())
                || self.missing.contains(&(m.school.clone(), period.clone()))
            {
                continue;
            }
            let e = out.entry(id.clone()).or_insert_with(|| Pupil {
                offered: 0,
                absence: 0,
                reported: 0,
                ..m.clone()
            });
            e.offered += m.offered;
            e.absence += m.absence;
            e.reported += m.reported;
        }
        out.retain(|_, p| p.offered > 0);
        out
    }

    /// The generator's grouping of each school's pupils in a school year (as uploaded).
    pub(crate) fn groupings(&self) -> HashMap<(String, String), Grouping> {
        type Roster<'a> = HashMap<&'a str, (usize, Gender)>;
        let mut rosters: HashMap<(&str, &str), Roster> = HashMap::new();
        for (id, _, m) in &self.rows {
            rosters
                .entry((&m.school, &m.school_year))
                .or_default()
                .insert(id, (m.grade, m.gender));
        }
        rosters
            .into_iter()
            .map(|(k, r)| {
                let roster: Vec<(usize, Gender)> = r.into_values().collect();
                let key = (k.0.to_string(), k.1.to_string());
                (key, plan_groups(&roster, MIN_GROUP).unwrap())
            })
            .collect()
    }

    pub(crate) fn municipality_of(&self, p: &Pupil) -> String {
        self.municipality[&p.school].clone()
    }
}

/// Absence in percent from summed minutes.
pub(crate) fn pct(pupils: &[&Pupil]) -> f64 {
    let (a, o) = pupils
        .iter()
        .fold((0, 0), |(a, o), p| (a + p.absence, o + p.offered));
    100.0 * a as f64 / o as f64
}

/// Pupils grouped by a key.
pub(crate) fn group_by<K: Ord>(
    p: &HashMap<String, Pupil>,
    key: impl Fn(&Pupil) -> Option<K>,
) -> BTreeMap<K, Vec<&Pupil>> {
    let mut out: BTreeMap<K, Vec<&Pupil>> = BTreeMap::new();
    for v in p.values() {
        if let Some(k) = key(v) {
            out.entry(k).or_default().push(v);
        }
    }
    out
}

/// Figures per municipality: (students, offered, absence, reported, pupils at or above each
/// of `bands` in percent, pupils at or above each of `hours`).
pub(crate) fn by_municipality(
    t: &Truth,
    p: &HashMap<String, Pupil>,
    bands: &[i64],
    hours: &[i64],
) -> BTreeMap<String, Vec<i64>> {
    group_by(p, |v| Some(t.municipality_of(v)))
        .into_iter()
        .map(|(m, pupils)| {
            let mut e = vec![0; 4 + bands.len() + hours.len()];
            for v in pupils {
                e[0] += 1;
                e[1] += v.offered;
                e[2] += v.absence;
                e[3] += v.reported;
                for (k, b) in bands.iter().enumerate() {
                    e[4 + k] += (v.pct() >= *b) as i64;
                }
                for (k, h) in hours.iter().enumerate() {
                    e[4 + bands.len() + k] += ((v.absence / 60).min(200) >= *h) as i64;
                }
            }
            (m, e)
        })
        .collect()
}
