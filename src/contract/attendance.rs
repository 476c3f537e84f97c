//! Attendance aggregates: one row per (school, period, window, grade, gender).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Builder, Int64Builder, ListBuilder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field};

use super::schema::{HISTOGRAMS, Histogram, Kind, MINUTES, SCHOOL};
use super::source::RawTable;
use super::{Context, KeySet, Period, Problem, Problems, Row, missing_columns, unknown_columns};

pub const WINDOWS: [&str; 3] = ["month", "term", "school_year"];
pub const GRADES: [&str; 14] = [
    "F", "1", "2", "3", "4", "5", "6", "7", "8", "9", "F-3", "4-6", "7-9", "all",
];
pub const GENDERS: [&str; 3] = ["K", "M", "T"];

/// Smallest group a school may upload (docs/contract.md); smaller groups are merged before upload.
pub const MIN_GROUP: i64 = 5;
const MAX_STUDENTS: i64 = 1_000_000;
const MAX_MINUTES: i64 = 1_000_000_000_000;

const BASE_COLUMNS: [&str; 6] = [SCHOOL, "period", "window", "grade", "gender", "students"];

/// The grades (F = 0 … 9) a grade value covers, as a bit set.
pub fn grade_set(grade: &str) -> u16 {
    match grade {
        "F" => 1,
        "F-3" => 0b1111,
        "4-6" => 0b111 << 4,
        "7-9" => 0b111 << 7,
        "all" => 0b11_1111_1111,
        g => g.parse::<u16>().map(|n| 1 << n).unwrap_or(0),
    }
}

/// The genders a gender value covers, as a bit set.
fn gender_set(gender: &str) -> u8 {
    match gender {
        "K" => 1,
        "M" => 2,
        _ => 3,
    }
}

/// One validated attendance row (the fixture generator builds these directly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendanceRow {
    /// The spreadsheet row it came from (0 when generated).
    pub line: usize,
    pub school: String,
    pub period: Period,
    pub window: String,
    pub grade: String,
    pub gender: String,
    pub students: i64,
    /// In the order of [`MINUTES`].
    pub minutes: [i64; 6],
    /// `pct_total`, `pct_invalid`, `hours_total`.
    pub hists: [Vec<i64>; 3],
}

fn required_columns(table: &RawTable) -> Vec<Problem> {
    let mut problems = missing_columns(table, &BASE_COLUMNS);
    problems.extend(missing_columns(table, &MINUTES));
    for h in HISTOGRAMS {
        if table.is_list(h.name) {
            continue;
        }
        let wide: Vec<String> = (0..h.bands).map(|b| h.wide_column(b)).collect();
        if wide.iter().any(|c| table.has(c)) {
            // Some bands present: name each missing one, it is likely a typo.
            for c in wide.iter().filter(|c| !table.has(c)) {
                problems.push(Problem::file("missing_column", "kolumnen saknas").column(c));
            }
        } else {
            problems.push(
                Problem::file(
                    "missing_column",
                    format!(
                        "histogrammet saknas: ange kolumnerna {} (eller listkolumnen {} i Parquet)",
                        h.wide_range(),
                        h.name
                    ),
                )
                .column(h.name),
            );
        }
    }
    problems
}

fn read_histogram(r: &mut Row, h: &Histogram) -> Option<Vec<i64>> {
    if r.table.is_list(h.name) {
        let Some(cells) = r.table.list(h.name, r.i) else {
            let p = r
                .problem("missing_value", h.name)
                .msg("histogrammet saknas på raden");
            r.push(p);
            return None;
        };
        if cells.len() != h.bands {
            let p = r
                .problem("histogram_length", h.name)
                .value(cells.len().to_string())
                .msg(format!(
                    "histogrammet ska ha {} band, har {}",
                    h.bands,
                    cells.len()
                ));
            r.push(p);
            return None;
        }
        let mut out = Vec::with_capacity(h.bands);
        let mut ok = true;
        for (b, c) in cells.into_iter().enumerate() {
            let col = format!("{}[{b}]", h.name);
            match c {
                Some(v) => match r.check_count(&col, v, MAX_STUDENTS) {
                    Some(v) => out.push(v),
                    None => ok = false,
                },
                None => {
                    let p = r.problem("missing_value", &col).msg("värde saknas");
                    r.push(p);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    } else {
        let mut out = Vec::with_capacity(h.bands);
        let mut ok = true;
        for b in 0..h.bands {
            match r.count(&h.wide_column(b), MAX_STUDENTS) {
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

fn parse_row(r: &mut Row, ctx: &Context) -> Option<AttendanceRow> {
    let school = r.school_unit_code();
    let period = r.period(ctx.today);
    let window = r.one_of("window", "invalid_window", &WINDOWS);
    let grade = r.one_of("grade", "invalid_grade", &GRADES);
    let gender = r.one_of("gender", "invalid_gender", &GENDERS);
    let students = r.count("students", MAX_STUDENTS);
    let minutes: Vec<Option<i64>> = MINUTES.iter().map(|m| r.count(m, MAX_MINUTES)).collect();
    let hists: Vec<Option<Vec<i64>>> = HISTOGRAMS.iter().map(|h| read_histogram(r, h)).collect();
    if let (Some(school), Some(period)) = (&school, period) {
        r.check_registered(ctx, school, period);
    }
    let minutes: Vec<i64> = minutes.into_iter().collect::<Option<_>>()?;
    let hists: Vec<Vec<i64>> = hists.into_iter().collect::<Option<_>>()?;
    Some(AttendanceRow {
        line: r.number(),
        school: school?,
        period: period?,
        window: window?,
        grade: grade?,
        gender: gender?,
        students: students?,
        minutes: minutes.try_into().ok()?,
        hists: hists.try_into().ok()?,
    })
}

/// The arithmetic rules of §3 within one row.
fn check_row(p: &AttendanceRow, problems: &mut Problems) {
    let at = |code, col: &str| Problem::at(code, p.line).column(col);
    let [offered, attendance, valid, invalid, other, reported] = p.minutes;
    if p.students < MIN_GROUP {
        problems.push(
            at("group_too_small", "students")
                .value(p.students.to_string())
                .msg(format!(
                    "gruppen har färre än {MIN_GROUP} elever; slå ihop små grupper före uppladdning (kön till T, årskurs till stadium, sedan all)"
                )),
        );
    }
    for (h, hist) in HISTOGRAMS.iter().zip(&p.hists) {
        let sum: i64 = hist.iter().sum();
        if sum != p.students {
            problems.push(
                at("histogram_sum_mismatch", &h.wide_range())
                    .value(sum.to_string())
                    .msg(format!(
                        "histogrammet {} summerar till {sum} elever men students är {}",
                        h.name, p.students
                    )),
            );
        }
    }
    if p.students > 0 && offered == 0 {
        problems.push(at("no_offered_time", "offered_minutes").value("0").msg(
            "gruppen har elever men ingen erbjuden tid; students räknar bara elever med erbjuden tid",
        ));
    }
    if valid + invalid > offered {
        problems.push(
            at(
                "absence_exceeds_offered",
                "valid_absence_minutes + invalid_absence_minutes",
            )
            .value((valid + invalid).to_string())
            .msg(format!(
                "frånvaron ({}) är större än den erbjudna tiden ({offered} minuter)",
                valid + invalid
            )),
        );
    }
    let accounted = attendance + valid + invalid + other;
    if accounted > offered {
        problems.push(
            at(
                "minutes_exceed_offered",
                "attendance_minutes + valid_absence_minutes + invalid_absence_minutes + other_attendance_minutes",
            )
            .value(accounted.to_string())
            .msg(format!(
                "närvaro, frånvaro och annan närvaro ({accounted}) är mer än den erbjudna tiden ({offered} minuter)"
            )),
        );
    }
    if reported > offered {
        problems.push(
            at("reported_exceeds_offered", "reported_minutes")
                .value(reported.to_string())
                .msg(format!(
                    "rapporterad tid ({reported}) är mer än den erbjudna tiden ({offered} minuter)"
                )),
        );
    }
    // Each pupil in hours band b was absent 60·b to 60·b + 59 minutes (band 200: at least
    // 12,000), so the group's absence minutes are bounded by its hours histogram.
    let hours = &p.hists[2];
    let low: i64 = hours
        .iter()
        .enumerate()
        .map(|(b, n)| n * 60 * b as i64)
        .sum();
    let open = hours[200] > 0;
    let high: i64 = hours[..200]
        .iter()
        .enumerate()
        .map(|(b, n)| n * (60 * b as i64 + 59))
        .sum();
    let absence = valid + invalid;
    if p.hists[2].iter().sum::<i64>() == p.students && (absence < low || (!open && absence > high))
    {
        problems.push(
            at("hours_histogram_mismatch", "hours_total")
                .value(absence.to_string())
                .msg(format!(
                    "frånvaron ({absence} minuter) stämmer inte med timhistogrammet, som ger {low}–{} minuter",
                    if open { "…".to_string() } else { high.to_string() }
                )),
        );
    }
    // A pupil's invalid absence is part of the total, so at every threshold no more pupils can
    // be at or above it in invalid absence than in total absence.
    let (total, inv) = (&p.hists[0], &p.hists[1]);
    let (mut t_above, mut i_above) = (0, 0);
    for b in (0..total.len()).rev() {
        t_above += total[b];
        i_above += inv[b];
        if i_above > t_above {
            problems.push(
                at("pct_invalid_exceeds_total", "pct_invalid")
                    .value(format!("{b} %"))
                    .msg(format!(
                        "{i_above} elever har minst {b} % ogiltig frånvaro men bara {t_above} har minst {b} % total frånvaro"
                    )),
            );
            break;
        }
    }
}

/// Groups in one (school, period, window) must not overlap: grade 7 and stage 7-9, or K and T
/// for the same grade, would count the same pupils twice.
fn check_groups(rows: &[AttendanceRow], problems: &mut Problems) {
    let mut by_key: HashMap<(&str, Period, &str), Vec<&AttendanceRow>> = HashMap::new();
    for p in rows {
        by_key
            .entry((p.school.as_str(), p.period, p.window.as_str()))
            .or_default()
            .push(p);
    }
    for p in rows {
        let earlier = &by_key[&(p.school.as_str(), p.period, p.window.as_str())];
        let clash = earlier.iter().take_while(|q| q.line != p.line).find(|q| {
            grade_set(&q.grade) & grade_set(&p.grade) != 0
                && gender_set(&q.gender) & gender_set(&p.gender) != 0
        });
        if let Some(q) = clash {
            let (code, what) = if q.grade == p.grade && q.gender == p.gender {
                ("duplicate_group", "samma grupp finns redan")
            } else {
                ("overlapping_groups", "gruppen överlappar")
            };
            problems.push(
                Problem::at(code, p.line)
                    .column("grade, gender")
                    .value(format!("{} {}", p.grade, p.gender))
                    .msg(format!(
                        "{what} rad {} ({} {}) för samma skolenhet, period och fönster; eleverna skulle räknas två gånger",
                        q.line, q.grade, q.gender
                    )),
            );
        }
    }
}

pub fn parse(
    table: &RawTable,
    ctx: &Context,
) -> Result<(RecordBatch, KeySet, Vec<Problem>), Vec<Problem>> {
    let missing = required_columns(table);
    if !missing.is_empty() {
        return Err(missing);
    }
    let mut problems = Problems::default();
    let mut rows = Vec::with_capacity(table.nrows);
    for i in 0..table.nrows {
        let mut r = Row {
            table,
            i,
            problems: &mut problems,
        };
        if let Some(p) = parse_row(&mut r, ctx) {
            check_row(&p, &mut problems);
            rows.push(p);
        }
    }
    check_groups(&rows, &mut problems);
    if !problems.is_empty() {
        return Err(problems.finish());
    }
    let warnings = unknown_columns(table, |c| {
        BASE_COLUMNS.contains(&c)
            || MINUTES.contains(&c)
            || HISTOGRAMS
                .iter()
                .any(|h| h.name == c || h.is_wide_column(c))
    });
    let mut keys = KeySet::default();
    for p in &rows {
        keys.insert(
            vec![p.period.to_string(), p.window.clone()],
            p.school.clone(),
        );
    }
    Ok((to_batch(&rows), keys, warnings))
}

/// Rows in the lake's shape (list histograms), without `upload_id`.
pub fn to_batch(rows: &[AttendanceRow]) -> RecordBatch {
    let mut text: [StringBuilder; 5] = Default::default();
    let mut students = Int32Builder::new();
    let mut minutes: [Int64Builder; 6] = Default::default();
    let mut hists: [ListBuilder<Int32Builder>; 3] = std::array::from_fn(|_| {
        ListBuilder::new(Int32Builder::new()).with_field(Arc::new(Field::new(
            "element",
            DataType::Int32,
            true,
        )))
    });
    for p in rows {
        let period = p.period.to_string();
        for (b, v) in text
            .iter_mut()
            .zip([&p.school, &period, &p.window, &p.grade, &p.gender])
        {
            b.append_value(v);
        }
        students.append_value(p.students as i32);
        for (b, v) in minutes.iter_mut().zip(p.minutes) {
            b.append_value(v);
        }
        for (b, h) in hists.iter_mut().zip(&p.hists) {
            b.values()
                .append_slice(&h.iter().map(|v| *v as i32).collect::<Vec<_>>());
            b.append(true);
        }
    }
    let mut columns: Vec<ArrayRef> = text
        .iter_mut()
        .map(|b| Arc::new(b.finish()) as ArrayRef)
        .collect();
    columns.push(Arc::new(students.finish()));
    columns.extend(minutes.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.extend(hists.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    RecordBatch::try_new(Kind::Attendance.validated_schema(), columns)
        .expect("attendance batch matches its schema")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grade_sets_overlap_as_stages_do() {
        assert_ne!(grade_set("7") & grade_set("7-9"), 0);
        assert_eq!(grade_set("6") & grade_set("7-9"), 0);
        assert_eq!(grade_set("F") & grade_set("1"), 0);
        assert_eq!(
            grade_set("all"),
            grade_set("F-3") | grade_set("4-6") | grade_set("7-9")
        );
    }
}
