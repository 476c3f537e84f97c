//! Deterministic synthetic data: a county (or the whole country) of schools, two school years
//! of monthly uploads in all three windows, actions, outcomes and the register.
//!
//! Every pupil is simulated individually, month by month, and the uploads are aggregated from
//! those pupils with the shared arithmetic in [`crate::aggregate`], so every histogram is
//! exact and tests can check any figure against the pupil-level truth (`--truth`).
//!
//! The absence model: a pupil's monthly absence rate is log-normal around a few percent with
//! a long tail (about a tenth at or above 15 % in a term), shifted by school, municipality,
//! grade (older pupils more), gender (girls in grades 7–9 more), month (winter illness in
//! February) and year; a few pupils are long-term absent (hemmasittare). Invalid absence is a
//! minority of absence that grows with it. Files are written the ways schools send them:
//! Windows-1252 `;` CSV from Excel, UTF-8 CSV, and Parquet with wide or list histograms.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Builder, Int64Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution, Normal};
use serde::Serialize;

use crate::aggregate::{GRADE_NAMES, Gender, Minutes, plan_groups, school_rows};
use crate::contract::Period;
use crate::contract::attendance::{self, AttendanceRow, MIN_GROUP};
use crate::contract::schema::{ACTIONS, HISTOGRAMS, MINUTES};
use crate::{Error, Result, reference};

/// How much of Sweden to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    /// Örebro county: 12 municipalities, 35,978 pupils in 129 schools (FNoFF).
    County,
    /// All 290 municipalities, for benchmarks.
    National,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub out: PathBuf,
    pub scale: Scale,
    pub seed: u64,
    /// Also write the simulated pupils under `out/truth/`.
    pub truth: bool,
    /// Also write each municipality's pupils as SS 12000 exports under `out/ss12000/`.
    pub ss12000: Option<Ss12000>,
    /// Only this municipality (a code), e.g. for a benchmark of one large municipality.
    pub municipality: Option<String>,
}

/// What the SS 12000 export holds: the school year up to `period`, each pupil's month split
/// over `activities` activities.
#[derive(Debug, Clone, Copy)]
pub struct Ss12000 {
    pub period: Period,
    pub activities: usize,
}

/// The school years generated: 2024/25 and 2025/26.
pub const SCHOOL_YEARS: [i32; 2] = [2024, 2025];

/// What was written, for the summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub municipalities: usize,
    pub schools: usize,
    pub pupils: usize,
    pub attendance_files: usize,
    pub attendance_rows: usize,
    pub files: Vec<PathBuf>,
}

/// Teaching days per month (Aug … Jun) and whether a pupil's month is in the autumn term.
const MONTHS: [(u32, u32); 11] = [
    (8, 8),
    (9, 22),
    (10, 18),
    (11, 20),
    (12, 15),
    (1, 16),
    (2, 15),
    (3, 21),
    (4, 17),
    (5, 18),
    (6, 8),
];

/// Relative absence by month: autumn colds, February's winter illness, a calmer spring.
const SEASON: [f64; 11] = [0.8, 0.9, 1.0, 1.1, 1.15, 1.1, 1.3, 1.1, 0.95, 0.95, 0.9];

/// Scheduled minutes a day by grade (F, 1 … 9).
const MINUTES_PER_DAY: [i64; 10] = [180, 240, 240, 240, 285, 285, 285, 330, 330, 330];

/// School organisations: (name, first grade, last grade, weight).
const SCHOOL_TYPES: [(&str, usize, usize, f64); 6] = [
    ("F-6", 0, 6, 0.40),
    ("F-9", 0, 9, 0.25),
    ("7-9", 7, 9, 0.15),
    ("F-3", 0, 3, 0.08),
    ("4-9", 4, 9, 0.07),
    ("4-6", 4, 6, 0.05),
];

const NAME_STEMS: [&str; 32] = [
    "Björk", "Ek", "Lind", "Tall", "Gran", "Asp", "Hag", "Äng", "Berg", "Sjö", "Norr", "Söder",
    "Väster", "Öster", "Mosse", "Lärk", "Solbacka", "Kyrk", "Central", "Bro", "Dal", "Strand",
    "Skog", "Park", "Vall", "Rosen", "Lunda", "Myr", "Ås", "Ljung", "Hälle", "Rönn",
];
const NAME_ENDS: [&str; 4] = ["skolan", "backeskolan", "ängsskolan", "dalsskolan"];

/// A municipality to generate: code, pupils, schools.
struct Muni {
    code: String,
    pupils: u32,
    schools: u32,
}

/// One school unit as the register knows it, with its simulation parameters.
#[derive(Debug, Clone)]
pub struct School {
    pub code: String,
    pub name: String,
    pub municipality: String,
    pub organiser: &'static str,
    pub first_grade: usize,
    pub last_grade: usize,
    pub pupils: u32,
    effect: f64,
    reporting: f64,
}

/// A simulated pupil for one school year.
struct Pupil {
    id: u64,
    grade: usize,
    gender: Gender,
    /// Log of the pupil's base monthly absence rate.
    log_rate: f64,
    /// Share of the pupil's absence that is invalid.
    invalid_share: f64,
    /// Reduced timetable factor (anpassad studiegång), usually 1.
    schedule: f64,
}

/// A stable, well-mixed seed for one part of the simulation, so each municipality, school and
/// year has its own stream regardless of how much else is generated.
fn sub_seed(seed: u64, parts: &[u64]) -> u64 {
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
    for p in parts {
        h ^= p
            .wrapping_add(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(h << 6)
            .wrapping_add(h >> 2);
        // splitmix64 finaliser
        h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 31;
    }
    h
}

fn rng(seed: u64, parts: &[u64]) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(sub_seed(seed, parts))
}

fn code_num(code: &str) -> u64 {
    code.parse().unwrap_or(0)
}

fn municipalities(scale: Scale, seed: u64) -> Vec<Muni> {
    let county = |code: &str| reference::OREBRO_COUNTY.iter().find(|m| m.0 == code);
    match scale {
        Scale::County => reference::OREBRO_COUNTY
            .iter()
            .map(|(c, p, s)| Muni {
                code: c.to_string(),
                pupils: *p,
                schools: *s,
            })
            .collect(),
        Scale::National => reference::municipalities()
            .iter()
            .map(|m| {
                if let Some((c, p, s)) = county(&m.code) {
                    return Muni {
                        code: c.to_string(),
                        pupils: *p,
                        schools: *s,
                    };
                }
                // Log-normal municipality sizes: median ≈ 2,100 pupils, the big cities far
                // above; about 190 pupils a school.
                let mut r = rng(seed, &[1, code_num(&m.code)]);
                let z: f64 = Normal::new(0.0, 0.9).expect("sd").sample(&mut r);
                let big = match m.code.as_str() {
                    "0180" => 90_000,
                    "1480" => 55_000,
                    "1280" => 35_000,
                    "0380" => 26_000,
                    _ => 0,
                };
                let pupils = if big > 0 {
                    big
                } else {
                    (2_100.0 * z.exp()).clamp(350.0, 25_000.0) as u32
                };
                Muni {
                    code: m.code.clone(),
                    pupils,
                    schools: (pupils / 190).max(2),
                }
            })
            .collect(),
    }
}

/// Splits `total` into parts proportional to `weights`, exactly (largest remainder).
fn apportion(total: u32, weights: &[f64]) -> Vec<u32> {
    let sum: f64 = weights.iter().sum();
    let raw: Vec<f64> = weights.iter().map(|w| total as f64 * w / sum).collect();
    let mut parts: Vec<u32> = raw.iter().map(|r| r.floor() as u32).collect();
    let mut rest = total - parts.iter().sum::<u32>();
    let mut order: Vec<usize> = (0..raw.len()).collect();
    order.sort_by(|a, b| {
        (raw[*b] - raw[*b].floor())
            .total_cmp(&(raw[*a] - raw[*a].floor()))
            .then(a.cmp(b))
    });
    for i in order.into_iter().cycle() {
        if rest == 0 {
            break;
        }
        parts[i] += 1;
        rest -= 1;
    }
    parts
}

fn schools_of(m: &Muni, seed: u64) -> Vec<School> {
    let mut r = rng(seed, &[2, code_num(&m.code)]);
    let n = m.schools as usize;
    let mut types = Vec::with_capacity(n);
    for i in 0..n {
        // Every municipality has at least one school with grades 7–9.
        let t = if i == 0 {
            SCHOOL_TYPES[1]
        } else {
            let mut x: f64 = r.random();
            *SCHOOL_TYPES
                .iter()
                .find(|t| {
                    x -= t.3;
                    x < 0.0
                })
                .unwrap_or(&SCHOOL_TYPES[0])
        };
        types.push(t);
    }
    let weights: Vec<f64> = types
        .iter()
        .map(|t| (t.2 - t.1 + 1) as f64 * (0.45 * r.random::<f64>() + 0.8))
        .collect();
    // At least 3 pupils a grade, so no school is too small to upload.
    let min: u32 = types.iter().map(|t| 3 * (t.2 - t.1 + 1) as u32).sum();
    let extra = apportion(m.pupils.saturating_sub(min), &weights);
    let mut names: Vec<usize> = (0..NAME_STEMS.len() * NAME_ENDS.len()).collect();
    for i in (1..names.len()).rev() {
        names.swap(i, r.random_range(0..=i));
    }
    types
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let k = names[i % names.len()];
            let mut name = format!(
                "{}{}",
                NAME_STEMS[k % NAME_STEMS.len()],
                NAME_ENDS[k / NAME_STEMS.len()]
            );
            if i >= names.len() {
                name = format!("{name} {}", i / names.len() + 1);
            }
            let reporting = if r.random::<f64>() < 0.1 {
                0.78 + 0.1 * r.random::<f64>()
            } else {
                0.95 + 0.05 * r.random::<f64>()
            };
            School {
                code: format!("{}{:04}", m.code, 101 + 7 * i),
                name,
                municipality: m.code.clone(),
                organiser: if r.random::<f64>() < 0.15 {
                    "ENSKILD"
                } else {
                    "KOMMUN"
                },
                first_grade: t.1,
                last_grade: t.2,
                pupils: 3 * (t.2 - t.1 + 1) as u32 + extra[i],
                effect: Normal::new(0.0, 0.25).expect("sd").sample(&mut r),
                reporting,
            }
        })
        .collect()
}

fn pupils_of(s: &School, year: i32, muni_effect: f64, seed: u64) -> Vec<Pupil> {
    let mut r = rng(seed, &[3, code_num(&s.code), year as u64]);
    let grades: Vec<usize> = (s.first_grade..=s.last_grade).collect();
    let per_grade = apportion(
        s.pupils,
        &grades
            .iter()
            .map(|_| 1.0 + 0.2 * r.random::<f64>())
            .collect::<Vec<_>>(),
    );
    let z = Normal::new(0.0, 1.0).expect("sd");
    let mut out = Vec::with_capacity(s.pupils as usize);
    for (g, n) in grades.iter().zip(per_grade) {
        for _ in 0..n {
            let gender = if r.random::<bool>() {
                Gender::K
            } else {
                Gender::M
            };
            let mut log_rate = (0.034f64).ln()
                + 0.8 * z.sample(&mut r)
                + s.effect
                + muni_effect
                + 0.045 * *g as f64
                + if gender == Gender::K && *g >= 7 {
                    0.15
                } else {
                    0.0
                };
            // Long-term absence: a few pupils are away most of the time.
            if r.random::<f64>() < 0.004 {
                log_rate = (0.5 + 0.5 * r.random::<f64>()).ln();
            }
            let base = log_rate.exp();
            let invalid_share =
                (0.07 + 0.8 * (base - 0.04).max(0.0) + 0.05 * z.sample(&mut r)).clamp(0.0, 0.9);
            let schedule = if r.random::<f64>() < 0.01 { 0.5 } else { 1.0 };
            let id = sub_seed(seed, &[4, code_num(&s.code), year as u64, out.len() as u64]);
            out.push(Pupil {
                id,
                grade: *g,
                gender,
                log_rate,
                invalid_share,
                schedule,
            });
        }
    }
    out
}

/// One pupil's minutes for each of the 11 months of a school year.
fn simulate_months(p: &Pupil, s: &School, year_effect: f64, r: &mut ChaCha8Rng) -> [Minutes; 11] {
    let noise = Normal::new(0.0, 0.45).expect("sd");
    std::array::from_fn(|mi| {
        let (_, days) = MONTHS[mi];
        let offered = (days as f64 * MINUTES_PER_DAY[p.grade] as f64 * p.schedule) as i64;
        let rate = (p.log_rate + year_effect + SEASON[mi].ln() + noise.sample(r))
            .exp()
            .min(1.0);
        let absence = (offered as f64 * rate).round() as i64;
        let invalid = (absence as f64 * p.invalid_share).round() as i64;
        let other = ((offered - absence) as f64 * 0.02 * r.random::<f64>()).round() as i64;
        let reported =
            (offered as f64 * (s.reporting + 0.01 * r.random::<f64>()).min(1.0)).round() as i64;
        Minutes {
            offered,
            attendance: offered - absence - other,
            valid: absence - invalid,
            invalid,
            other,
            reported,
        }
    })
}

/// The upload formats schools use; the county fixtures rotate through all of them.
#[derive(Debug, Clone, Copy)]
enum FileFormat {
    /// Swedish Excel: Windows-1252, `;`.
    CsvExcel,
    /// UTF-8 with BOM, `,`.
    CsvUtf8,
    ParquetWide,
    ParquetList,
}

impl FileFormat {
    fn ext(self) -> &'static str {
        match self {
            FileFormat::CsvExcel | FileFormat::CsvUtf8 => "csv",
            _ => "parquet",
        }
    }
}

/// Generates the fixtures into `opts.out`.
pub fn generate(opts: &Options, progress: &indicatif::ProgressBar) -> Result<Summary> {
    let out = &opts.out;
    let mkdir = |p: &Path| fs::create_dir_all(p).map_err(|e| Error::io(p, e));
    mkdir(out)?;
    let mut munis = municipalities(opts.scale, opts.seed);
    if let Some(code) = &opts.municipality {
        munis.retain(|m| &m.code == code);
        if munis.is_empty() {
            return Err(Error::usage(format!(
                "kommunen {code} finns inte i fixturerna för denna skala"
            )));
        }
    }
    let schools: Vec<Vec<School>> = munis.iter().map(|m| schools_of(m, opts.seed)).collect();
    let mut summary = Summary {
        municipalities: munis.len(),
        schools: schools.iter().map(|s| s.len()).sum(),
        pupils: munis.iter().map(|m| m.pupils as usize).sum(),
        ..Summary::default()
    };
    let all_schools: Vec<&School> = schools.iter().flatten().collect();
    let register = out.join("register.csv");
    write_register(&register, &all_schools)?;
    summary.files.push(register);

    progress.set_length(munis.len() as u64);
    let mut actions: Vec<Vec<String>> = Vec::new();
    let mut outcomes: Vec<Vec<String>> = Vec::new();
    let mut truth = TruthWriter::new(opts.truth.then(|| out.join("truth")))?;
    let mut missing = vec!["school_unit_code;period".to_string()];
    for (mi, (m, schools)) in munis.iter().zip(&schools).enumerate() {
        let format = match opts.scale {
            Scale::National => FileFormat::ParquetList,
            Scale::County => [
                FileFormat::CsvExcel,
                FileFormat::ParquetWide,
                FileFormat::CsvUtf8,
                FileFormat::ParquetList,
            ][mi % 4],
        };
        let mut mr = rng(opts.seed, &[5, code_num(&m.code)]);
        let muni_effect = Normal::new(0.0, 0.15).expect("sd").sample(&mut mr);
        let year_trend = Normal::new(-0.05, 0.08).expect("sd").sample(&mut mr);
        let escalation = 0.5 + 0.6 * mr.random::<f64>();
        let passing = reference::PASSING_ALL_SUBJECTS
            .iter()
            .find(|p| p.0 == m.code)
            .map_or(
                (
                    reference::PASSING_ALL_SUBJECTS_COUNTY,
                    reference::PASSING_ALL_SUBJECTS_COUNTY,
                ),
                |p| (p.1, p.2),
            );
        for (yi, year) in SCHOOL_YEARS.into_iter().enumerate() {
            let year_effect = yi as f64 * year_trend;
            // rows[month] for this municipality
            let mut rows: Vec<Vec<AttendanceRow>> = (0..11).map(|_| Vec::new()).collect();
            let export = opts
                .ss12000
                .filter(|x| x.period.school_year_start() == year);
            let mut exported: Vec<Exported> = Vec::new();
            for s in schools {
                let pupils = pupils_of(s, year, muni_effect, opts.seed);
                let mut r = rng(opts.seed, &[6, code_num(&s.code), year as u64]);
                let months: Vec<[Minutes; 11]> = pupils
                    .iter()
                    .map(|p| simulate_months(p, s, year_effect, &mut r))
                    .collect();
                let roster: Vec<(usize, Gender)> =
                    pupils.iter().map(|p| (p.grade, p.gender)).collect();
                let grouping =
                    plan_groups(&roster, MIN_GROUP).expect("fixture schools are large enough");
                // The first year, a few schools miss a month's upload (the coverage indicator
                // has something to find); the second year every school reports.
                let lapse =
                    (yi == 0 && r.random::<f64>() < 0.08).then(|| 1 + r.random_range(0..9usize));
                for mi_ in 0..11 {
                    let period = Period {
                        year: if MONTHS[mi_].0 >= 8 { year } else { year + 1 },
                        month: MONTHS[mi_].0,
                    };
                    if lapse == Some(mi_) {
                        missing.push(format!("{};{period}", s.code));
                        continue;
                    }
                    rows[mi_].extend(school_rows(
                        &s.code,
                        period,
                        &grouping,
                        pupils
                            .iter()
                            .zip(&months)
                            .map(|(p, m)| (p.grade, p.gender, m)),
                    ));
                    actions.push(actions_row(s, period, &months, mi_, escalation, &mut r));
                }
                outcomes.extend(outcomes_rows(s, year, &pupils, &months, passing, &mut r));
                truth.add(s, year, &pupils, &months)?;
                if export.is_some() {
                    exported.push((s, pupils, months));
                }
            }
            for (mi_, rows) in rows.into_iter().enumerate() {
                let period = Period {
                    year: if MONTHS[mi_].0 >= 8 { year } else { year + 1 },
                    month: MONTHS[mi_].0,
                };
                let dir = out.join("attendance").join(period.to_string());
                mkdir(&dir)?;
                let path = dir.join(format!("{}.{}", m.code, format.ext()));
                summary.attendance_rows += rows.len();
                write_attendance(&path, &rows, format)?;
                summary.attendance_files += 1;
                summary.files.push(path);
            }
            if let Some(x) = export {
                let dir = out.join("ss12000").join(&m.code);
                summary
                    .files
                    .extend(write_ss12000(&dir, mi, x, opts.seed, &exported)?);
            }
        }
        progress.inc(1);
    }
    let actions_path = out.join("actions.csv");
    let mut header = vec!["school_unit_code".to_string(), "period".to_string()];
    header.extend(ACTIONS.iter().map(|s| s.to_string()));
    write_csv(&actions_path, &header, &actions, b',', false)?;
    summary.files.push(actions_path);
    let outcomes_path = out.join("outcomes.csv");
    let header = [
        "school_unit_code",
        "school_year",
        "gender",
        "grade9_students",
        "passed_all_subjects",
    ]
    .map(String::from);
    write_csv(&outcomes_path, &header, &outcomes, b',', false)?;
    summary.files.push(outcomes_path);
    truth.finish(&missing)?;
    Ok(summary)
}

fn actions_row(
    s: &School,
    period: Period,
    months: &[[Minutes; 11]],
    mi: usize,
    escalation: f64,
    r: &mut ChaCha8Rng,
) -> Vec<String> {
    let rate = |m: &Minutes| m.absence() as f64 / m.offered.max(1) as f64;
    let high = months.iter().filter(|m| rate(&m[mi]) >= 0.2).count() as u64;
    let very_high = months.iter().filter(|m| rate(&m[mi]) >= 0.5).count() as u64;
    let binom = |n: u64, p: f64, r: &mut ChaCha8Rng| {
        Binomial::new(n, p.clamp(0.0, 1.0))
            .expect("p in range")
            .sample(r)
    };
    let investigations = binom(high, 0.3 * escalation, r);
    let to_organiser = binom(investigations, 0.6, r);
    let social = binom(very_high, 0.3 * escalation, r);
    let sip = binom(very_high, 0.15, r);
    let injunction = binom(very_high, 0.02, r);
    let mut row = vec![s.code.clone(), period.to_string()];
    row.extend([investigations, to_organiser, social, sip, injunction].map(|v| v.to_string()));
    row
}

fn outcomes_rows(
    s: &School,
    year: i32,
    pupils: &[Pupil],
    months: &[[Minutes; 11]],
    passing: (f64, f64),
    r: &mut ChaCha8Rng,
) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (gender, label, base) in [(Gender::K, "K", passing.0), (Gender::M, "M", passing.1)] {
        let mut n = 0;
        let mut passed = 0;
        for (p, m) in pupils.iter().zip(months) {
            if p.grade != 9 || p.gender != gender {
                continue;
            }
            let mut year_sum = Minutes::default();
            m.iter().for_each(|x| year_sum.add(x));
            let rate = year_sum.absence() as f64 / year_sum.offered.max(1) as f64;
            // Absence goes with failing: each percentage point above the typical 6 % costs
            // about 1.5 points of passing probability.
            let pr = (base + 0.04 - 1.5 * (rate - 0.06)).clamp(0.02, 0.99);
            n += 1;
            if r.random::<f64>() < pr {
                passed += 1;
            }
        }
        if n > 0 {
            out.push(vec![
                s.code.clone(),
                Period {
                    year: year + 1,
                    month: 6,
                }
                .school_year(),
                label.to_string(),
                n.to_string(),
                passed.to_string(),
            ]);
        }
    }
    out
}

fn write_register(path: &Path, schools: &[&School]) -> Result<()> {
    let header = [
        "school_unit_code",
        "school_name",
        "municipality_code",
        "organiser_type",
        "school_types",
        "valid_from",
        "valid_to",
    ]
    .map(String::from);
    let rows: Vec<Vec<String>> = schools
        .iter()
        .map(|s| {
            vec![
                s.code.clone(),
                s.name.clone(),
                s.municipality.clone(),
                s.organiser.to_string(),
                format!(
                    "GR {}-{}",
                    GRADE_NAMES[s.first_grade], GRADE_NAMES[s.last_grade]
                ),
                "2000-07-01".to_string(),
                String::new(),
            ]
        })
        .collect();
    // As Skolverket's register export opens in Swedish Excel and is saved again.
    write_csv(path, &header, &rows, b';', true)
}

fn write_csv(
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

/// Writes rows as UTF-8 CSV (`csv`) or Parquet with list histograms (for `narvaro aggregate`).
pub(crate) fn write_attendance_as(path: &Path, rows: &[AttendanceRow], csv: bool) -> Result<()> {
    let format = if csv {
        FileFormat::CsvUtf8
    } else {
        FileFormat::ParquetList
    };
    write_attendance(path, rows, format)
}

fn write_attendance(path: &Path, rows: &[AttendanceRow], format: FileFormat) -> Result<()> {
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
fn attendance_batch(rows: &[AttendanceRow], wide: bool) -> Result<RecordBatch> {
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

const GIVEN_K: [&str; 8] = [
    "Alice", "Maja", "Elsa", "Astrid", "Wilma", "Freja", "Ebba", "Alma",
];
const GIVEN_M: [&str; 8] = [
    "Noah", "William", "Hugo", "Lucas", "Liam", "Oscar", "Elias", "Adam",
];
const FAMILY: [&str; 8] = [
    "Andersson",
    "Johansson",
    "Karlsson",
    "Nilsson",
    "Eriksson",
    "Larsson",
    "Olsson",
    "Persson",
];

/// A school, its pupils and their months, kept for the SS 12000 export.
type Exported<'a> = (&'a School, Vec<Pupil>, Vec<[Minutes; 11]>);

/// A stable UUID-shaped id from a seed.
fn uuid_of(h: u64) -> String {
    let l = sub_seed(h, &[1]);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        l >> 52,
        l & 0xffff_ffff_ffff
    )
}

/// Splits a pupil's month over `k` activities so the records sum to it exactly: offered time
/// is shared out evenly, and the minutes (valid, invalid, other, attended, in that order) are
/// laid end to end and cut at the activities' boundaries; reported time fills each activity
/// in turn.
fn split_minutes(m: &Minutes, k: usize) -> Vec<Minutes> {
    let k = k.max(1) as i64;
    let mut out = Vec::with_capacity(k as usize);
    let fields = [m.valid, m.invalid, m.other, m.attendance];
    let (mut from, mut reported) = (0i64, m.reported);
    for j in 0..k {
        let offered = m.offered / k + i64::from(j < m.offered % k);
        let to = from + offered;
        let mut cut = [0i64; 4];
        let mut at = 0;
        for (c, f) in cut.iter_mut().zip(fields) {
            *c = (to.min(at + f) - from.max(at)).max(0);
            at += f;
        }
        let rep = reported.min(offered);
        reported -= rep;
        out.push(Minutes {
            offered,
            valid: cut[0],
            invalid: cut[1],
            other: cut[2],
            attendance: cut[3],
            reported: rep,
        });
        from = to;
    }
    out
}

/// Writes one municipality's pupils as its school system would export them by SS 12000
/// (docs/contract.md): `roster.json` (persons with enrolments, and organisations) or
/// `roster.csv`, and `attendance/YYYY-MM.json` with one `AggregatedAttendance` record per pupil,
/// activity and month up to the period. The three export shapes rotate by municipality: a JSON
/// array, pages `{"data": [...]}` one per line, and JSON lines of records.
fn write_ss12000(
    dir: &Path,
    form: usize,
    x: Ss12000,
    seed: u64,
    schools: &[Exported],
) -> Result<Vec<PathBuf>> {
    use crate::ss12000::{RawRecord, Ref};
    use std::io::Write;
    let adir = dir.join("attendance");
    fs::create_dir_all(&adir).map_err(|e| Error::io(&adir, e))?;
    let year = x.period.school_year_start();
    let pupil_id = |p: &Pupil| uuid_of(p.id);
    let name = |p: &Pupil| {
        let h = sub_seed(p.id, &[7]) as usize;
        let given = if p.gender == Gender::K {
            GIVEN_K
        } else {
            GIVEN_M
        };
        format!("{} {}", given[h % 8], FAMILY[(h / 8) % 8])
    };
    let mut files = Vec::new();
    // The roster.
    let org_id = |s: &School| uuid_of(sub_seed(seed, &[8, code_num(&s.code)]));
    let roster_path = if form.is_multiple_of(2) {
        let mut persons = Vec::new();
        for (s, pupils, _) in schools {
            for p in pupils {
                let h = sub_seed(p.id, &[9]);
                let born = year - 6 - p.grade as i32;
                let (month, day) = (1 + h % 12, 1 + (h >> 8) % 28);
                let (given, family) = name(p)
                    .split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .expect("two names");
                persons.push(serde_json::json!({
                    "id": pupil_id(p),
                    "givenName": given,
                    "familyName": family,
                    "birthDate": format!("{born}-{month:02}-{day:02}"),
                    "civicNo": {"value": format!("{born}{month:02}{day:02}-{:04}", (h >> 16) % 10_000)},
                    "sex": if p.gender == Gender::K { "Kvinna" } else { "Man" },
                    "enrolments": [{
                        "enroledAt": {"id": org_id(s)},
                        "schoolYear": p.grade,
                        "schoolType": if p.grade == 0 { "FKLASS" } else { "GR" },
                        "startDate": format!("{}-08-{:02}", year - (p.grade as i32) % 3, 10 + h % 10),
                    }],
                }));
            }
        }
        let orgs: Vec<_> = schools
            .iter()
            .map(|(s, _, _)| {
                serde_json::json!({
                    "id": org_id(s),
                    "displayName": s.name,
                    "schoolUnitCode": s.code,
                    "organisationType": "Skolenhet",
                })
            })
            .collect();
        let path = dir.join("roster.json");
        let body = serde_json::json!({"persons": persons, "organisations": orgs});
        fs::write(&path, serde_json::to_vec(&body)?).map_err(|e| Error::io(&path, e))?;
        path
    } else {
        let mut text = String::from("student,school_unit_code,grade,gender\n");
        for (s, pupils, _) in schools {
            for p in pupils {
                let g = if p.gender == Gender::K { "K" } else { "M" };
                text.push_str(&format!(
                    "{},{},{},{g}\n",
                    pupil_id(p),
                    s.code,
                    GRADE_NAMES[p.grade]
                ));
            }
        }
        let path = dir.join("roster.csv");
        fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        path
    };
    files.push(roster_path);
    // One attendance file a month, as one API call a month gives.
    for mi in 0..=crate::aggregate::month_index(x.period) {
        let period = Period {
            year: if MONTHS[mi].0 >= 8 { year } else { year + 1 },
            month: MONTHS[mi].0,
        };
        let (start, end) = (
            period.first_day().to_string(),
            period.last_day().to_string(),
        );
        let path = adir.join(format!("{period}.json"));
        let f = fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        let mut w = std::io::BufWriter::new(f);
        let io = |e: std::io::Error| Error::io(&path, e);
        let mut page: Vec<RawRecord> = Vec::new();
        let mut first = true;
        if form.is_multiple_of(3) {
            w.write_all(b"[").map_err(io)?;
        }
        for (s, pupils, months) in schools {
            for (p, pm) in pupils.iter().zip(months) {
                for (ai, part) in split_minutes(&pm[mi], x.activities).iter().enumerate() {
                    let r = RawRecord {
                        student: Some(Ref {
                            id: pupil_id(p),
                            display_name: Some(name(p)),
                        }),
                        activity: Some(Ref {
                            id: uuid_of(sub_seed(
                                seed,
                                &[10, code_num(&s.code), p.grade as u64, ai as u64],
                            )),
                            display_name: None,
                        }),
                        start_date: Some(start.clone()),
                        end_date: Some(end.clone()),
                        attendance_sum: Some(part.attendance),
                        valid_absence_sum: Some(part.valid),
                        invalid_absence_sum: Some(part.invalid),
                        other_attendance_sum: Some(part.other),
                        reported_sum: Some(part.reported),
                        offered_sum: Some(part.offered),
                        data: None,
                    };
                    match form % 3 {
                        0 => {
                            if !first {
                                w.write_all(b",\n").map_err(io)?;
                            }
                            serde_json::to_writer(&mut w, &r)?;
                        }
                        1 => {
                            page.push(r);
                            if page.len() == 1000 {
                                let full = RawRecord {
                                    data: Some(std::mem::take(&mut page)),
                                    ..RawRecord::default()
                                };
                                serde_json::to_writer(&mut w, &full)?;
                                w.write_all(b"\n").map_err(io)?;
                            }
                        }
                        _ => {
                            serde_json::to_writer(&mut w, &r)?;
                            w.write_all(b"\n").map_err(io)?;
                        }
                    }
                    first = false;
                }
            }
        }
        match form % 3 {
            0 => w.write_all(b"]\n").map_err(io)?,
            1 if !page.is_empty() => {
                let last = RawRecord {
                    data: Some(page),
                    ..RawRecord::default()
                };
                serde_json::to_writer(&mut w, &last)?;
                w.write_all(b"\n").map_err(io)?;
            }
            _ => {}
        }
        w.flush().map_err(io)?;
        files.push(path);
    }
    Ok(files)
}

/// Writes the simulated pupils: one row per pupil and month.
struct TruthWriter {
    dir: Option<PathBuf>,
    writer: Option<ArrowWriter<fs::File>>,
}

fn truth_schema() -> Arc<Schema> {
    let mut f = vec![
        Field::new("pupil_id", DataType::Utf8, false),
        Field::new("school_unit_code", DataType::Utf8, false),
        Field::new("school_year", DataType::Utf8, false),
        Field::new("grade", DataType::Utf8, false),
        Field::new("gender", DataType::Utf8, false),
        Field::new("period", DataType::Utf8, false),
    ];
    f.extend(
        MINUTES
            .iter()
            .map(|m| Field::new(*m, DataType::Int64, false)),
    );
    Arc::new(Schema::new(f))
}

impl TruthWriter {
    fn new(dir: Option<PathBuf>) -> Result<Self> {
        let Some(dir) = dir else {
            return Ok(TruthWriter {
                dir: None,
                writer: None,
            });
        };
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = dir.join("pupil_months.parquet");
        let file = fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        let writer = ArrowWriter::try_new(file, truth_schema(), None)?;
        Ok(TruthWriter {
            dir: Some(dir),
            writer: Some(writer),
        })
    }

    fn add(
        &mut self,
        s: &School,
        year: i32,
        pupils: &[Pupil],
        months: &[[Minutes; 11]],
    ) -> Result<()> {
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        let mut text: [StringBuilder; 6] = Default::default();
        let mut minutes: [Int64Builder; 6] = Default::default();
        let sy = Period {
            year: year + 1,
            month: 6,
        }
        .school_year();
        for (p, pm) in pupils.iter().zip(months) {
            for (mi, m) in pm.iter().enumerate() {
                let period = Period {
                    year: if MONTHS[mi].0 >= 8 { year } else { year + 1 },
                    month: MONTHS[mi].0,
                };
                let gender = if p.gender == Gender::K { "K" } else { "M" };
                for (b, v) in text.iter_mut().zip([
                    &format!("{:016x}", p.id),
                    &s.code,
                    &sy,
                    GRADE_NAMES[p.grade],
                    gender,
                    &period.to_string(),
                ]) {
                    b.append_value(v);
                }
                for (b, v) in minutes.iter_mut().zip(m.as_array()) {
                    b.append_value(v);
                }
            }
        }
        let mut columns: Vec<ArrayRef> = text
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        columns.extend(minutes.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        w.write(&RecordBatch::try_new(truth_schema(), columns)?)?;
        Ok(())
    }

    fn finish(self, missing: &[String]) -> Result<()> {
        if let (Some(dir), Some(w)) = (self.dir, self.writer) {
            w.close()?;
            let path = dir.join("missing_uploads.csv");
            fs::write(&path, missing.join("\n") + "\n").map_err(|e| Error::io(&path, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_minutes_sums_to_the_month_and_keeps_each_part_possible() {
        let m = Minutes {
            offered: 1003,
            attendance: 700,
            valid: 180,
            invalid: 90,
            other: 33,
            reported: 950,
        };
        let parts = split_minutes(&m, 4);
        let mut sum = Minutes::default();
        for p in &parts {
            assert!(
                p.valid + p.invalid + p.other + p.attendance == p.offered,
                "{p:?}"
            );
            assert!(p.reported <= p.offered);
            sum.add(p);
        }
        assert_eq!(sum, m);
    }

    #[test]
    fn apportion_is_exact() {
        let parts = apportion(100, &[1.0, 1.0, 1.0]);
        assert_eq!(parts.iter().sum::<u32>(), 100);
        assert_eq!(parts, [34, 33, 33]);
    }

    #[test]
    fn county_schools_match_fnoff_counts() {
        let munis = municipalities(Scale::County, 7);
        let schools: Vec<School> = munis.iter().flat_map(|m| schools_of(m, 7)).collect();
        assert_eq!(schools.len(), 129);
        assert_eq!(schools.iter().map(|s| s.pupils).sum::<u32>(), 35_978);
        let codes: std::collections::HashSet<_> = schools.iter().map(|s| &s.code).collect();
        assert_eq!(codes.len(), 129, "school unit codes are unique");
    }

    #[test]
    fn national_scale_covers_every_municipality() {
        let munis = municipalities(Scale::National, 7);
        assert_eq!(munis.len(), 290);
        let schools: u32 = munis.iter().map(|m| m.schools).sum();
        assert!((4_500..=7_000).contains(&schools), "{schools} schools");
    }
}
