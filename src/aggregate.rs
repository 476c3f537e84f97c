//! From pupils to an anonymised aggregate: the measurement rules of the shared definition.
//!
//! One place computes a pupil's histogram bands, merges small groups and sums the windows, so
//! the fixture generator and `narvaro aggregate` at the school produce aggregates the same way.
//! [`from_ss12000`] is the school side: SS 12000 attendance and a roster in, contract v1 rows
//! out, with nothing identifying in them.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::NaiveDate;
use serde::Serialize;

use crate::contract::Period;
use crate::contract::Problems;
use crate::contract::attendance::{AttendanceRow, WINDOWS};
use crate::contract::schema::HISTOGRAMS;
use crate::contract::write::FileFormat;
use crate::ss12000::{self, Record, record_problem};
use crate::{Error, Result};

/// One pupil's minutes over a window (SS 12000 `AggregatedAttendance` sums).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Minutes {
    pub offered: i64,
    pub attendance: i64,
    pub valid: i64,
    pub invalid: i64,
    pub other: i64,
    pub reported: i64,
}

impl Minutes {
    pub fn add(&mut self, o: &Minutes) {
        self.offered += o.offered;
        self.attendance += o.attendance;
        self.valid += o.valid;
        self.invalid += o.invalid;
        self.other += o.other;
        self.reported += o.reported;
    }

    pub fn absence(&self) -> i64 {
        self.valid + self.invalid
    }

    /// In the order of the contract's minute columns.
    pub fn as_array(&self) -> [i64; 6] {
        [
            self.offered,
            self.attendance,
            self.valid,
            self.invalid,
            self.other,
            self.reported,
        ]
    }
}

/// A school year's teaching months, August (0) to June (10).
pub const MONTHS_IN_YEAR: usize = 11;

/// The index of a teaching month in its school year: August 0 … June 10 (July: 11, none).
pub fn month_index(p: Period) -> usize {
    ((p.month + 4) % 12) as usize
}

/// The first month index of each window ending at month index `m`: the month itself, its
/// term (HT from August, VT from January) and the school year.
pub fn window_starts(m: usize) -> [usize; 3] {
    [m, if m < 5 { 0 } else { 5 }, 0]
}

/// A pupil's minutes over months `start..=end`.
pub fn window_sum(months: &[Minutes; MONTHS_IN_YEAR], start: usize, end: usize) -> Minutes {
    let mut sum = Minutes::default();
    for m in &months[start..=end] {
        sum.add(m);
    }
    sum
}

/// One school's contract rows for `period`: for each window (month, term, school year), each
/// planned group's totals over `pupils` (grade, gender, minutes per month of the school year).
pub fn school_rows<'a>(
    school: &str,
    period: Period,
    grouping: &Grouping,
    pupils: impl Iterator<Item = (usize, Gender, &'a [Minutes; MONTHS_IN_YEAR])> + Clone,
) -> Vec<AttendanceRow> {
    let m = month_index(period);
    let mut rows = Vec::with_capacity(3 * grouping.groups.len());
    for (window, start) in WINDOWS.iter().zip(window_starts(m)) {
        let mut groups = vec![GroupTotals::default(); grouping.groups.len()];
        for (grade, gender, months) in pupils.clone() {
            groups[grouping.group_of(grade, gender)].add_pupil(&window_sum(months, start, m));
        }
        for ((grade, gender), totals) in grouping.groups.iter().zip(groups) {
            rows.push(AttendanceRow {
                line: 0,
                school: school.to_string(),
                period,
                window: window.to_string(),
                grade: grade.clone(),
                gender: gender.clone(),
                students: totals.students,
                minutes: totals.minutes.as_array(),
                hists: totals.hists,
            });
        }
    }
    rows
}

/// The whole-percent band of `part` of `offered`, floored: 14.99 % is band 14.
pub fn pct_band(part: i64, offered: i64) -> usize {
    if offered <= 0 {
        return 0;
    }
    ((100 * part) / offered).clamp(0, 100) as usize
}

/// The whole-hour band of absence minutes, floored; 200 h or more is band 200.
pub fn hours_band(minutes: i64) -> usize {
    (minutes / 60).clamp(0, 200) as usize
}

/// The sums and histograms of one group of pupils in one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupTotals {
    pub students: i64,
    pub minutes: Minutes,
    /// `pct_total`, `pct_invalid`, `hours_total`.
    pub hists: [Vec<i64>; 3],
}

impl Default for GroupTotals {
    fn default() -> Self {
        GroupTotals {
            students: 0,
            minutes: Minutes::default(),
            hists: HISTOGRAMS.map(|h| vec![0; h.bands]),
        }
    }
}

impl GroupTotals {
    /// Adds a pupil; pupils without offered time in the window are not counted (§3 `students`).
    pub fn add_pupil(&mut self, m: &Minutes) {
        if m.offered <= 0 {
            return;
        }
        self.students += 1;
        self.minutes.add(m);
        self.hists[0][pct_band(m.absence(), m.offered)] += 1;
        self.hists[1][pct_band(m.invalid, m.offered)] += 1;
        self.hists[2][hours_band(m.absence())] += 1;
    }
}

/// Grades as indices: F = 0, 1 … 9.
pub const GRADE_NAMES: [&str; 10] = ["F", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
const STAGES: [(&str, std::ops::RangeInclusive<usize>); 3] =
    [("F-3", 0..=3), ("4-6", 4..=6), ("7-9", 7..=9)];

/// A pupil's gender as the roster has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gender {
    K,
    M,
    /// Not known (SS 12000 `Okänt`): the pupil's group is uploaded as `T` only.
    Unknown,
}

/// How a school's pupils are grouped in its upload: a list of (grade, gender) groups and,
/// for every (grade index, gender), the group it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    pub groups: Vec<(String, String)>,
    assign: [[Option<usize>; 3]; 10],
}

impl Grouping {
    pub fn group_of(&self, grade: usize, gender: Gender) -> usize {
        self.assign[grade][gender as usize].expect("pupil's grade and gender were planned")
    }
}

/// Plans the groups for a school from its pupils' (grade, gender), merging every group under
/// `min` pupils: gender to `T`, then the grade into its stage, then the whole school to `all`
/// (docs/contract.md). Returns `None` when the school is smaller than `min` even as `all`.
///
/// Plan once per school year from the roster, so the rows keep the same shape every month.
pub fn plan_groups(pupils: &[(usize, Gender)], min: i64) -> Option<Grouping> {
    let mut counts = [[0i64; 3]; 10];
    for &(g, s) in pupils {
        counts[g][s as usize] += 1;
    }
    let total = |grades: &[usize]| {
        grades
            .iter()
            .map(|g| counts[*g].iter().sum::<i64>())
            .sum::<i64>()
    };
    let gender_split = |grades: &[usize]| {
        let k: i64 = grades.iter().map(|g| counts[*g][0]).sum();
        let m: i64 = grades.iter().map(|g| counts[*g][1]).sum();
        let u: i64 = grades.iter().map(|g| counts[*g][2]).sum();
        k >= min && m >= min && u == 0
    };
    let all: Vec<usize> = (0..10).filter(|g| total(&[*g]) > 0).collect();
    if total(&all) < min {
        return None;
    }
    // Units: each a set of grades that becomes one group, or two (K, M).
    let mut units: Vec<(String, Vec<usize>)> = Vec::new();
    for (stage, range) in STAGES {
        let grades: Vec<usize> = range.filter(|g| total(&[*g]) > 0).collect();
        if grades.is_empty() {
            continue;
        }
        if grades.iter().all(|g| total(&[*g]) >= min) {
            units.extend(
                grades
                    .iter()
                    .map(|g| (GRADE_NAMES[*g].to_string(), vec![*g])),
            );
        } else {
            units.push((stage.to_string(), grades));
        }
    }
    if units.iter().any(|(_, grades)| total(grades) < min) {
        units = vec![("all".to_string(), all)];
    }
    let mut groups = Vec::new();
    let mut assign = [[None; 3]; 10];
    for (name, grades) in units {
        if gender_split(&grades) {
            for (gi, gender) in [(0, "K"), (1, "M")] {
                groups.push((name.clone(), gender.to_string()));
                for g in &grades {
                    assign[*g][gi] = Some(groups.len() - 1);
                }
            }
        } else {
            groups.push((name, "T".to_string()));
            for g in &grades {
                assign[*g] = [Some(groups.len() - 1); 3];
            }
        }
    }
    Some(Grouping { groups, assign })
}

/// How many records and pupils went into one window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WindowCount {
    pub window: &'static str,
    pub records: usize,
    pub pupils: i64,
}

/// What `narvaro aggregate` read and wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub period: String,
    pub records: usize,
    pub roster_pupils: usize,
    pub schools: usize,
    pub rows: usize,
    pub windows: Vec<WindowCount>,
    /// Counted conditions that were safe to handle (each says how).
    pub warnings: Vec<String>,
    /// Schools left out, each with the reason.
    pub refused: Vec<String>,
}

/// An input file's name and bytes.
pub struct Input<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
}

/// The school side of the shared definition: SS 12000 attendance records (any number of files,
/// e.g. one per month) and a roster in; contract v1 rows for `period` in all three windows out,
/// with small groups merged to at least `min_group` pupils. Every problem in the input is
/// reported at once and nothing is produced; a school too small to report even as one group
/// is left out and named in the summary.
pub fn from_ss12000(
    attendance: &[Input],
    roster: Input,
    period: Period,
    min_group: i64,
) -> Result<(Vec<AttendanceRow>, Summary)> {
    if !period.is_teaching_month() {
        return Err(Error::usage(format!(
            "{period} är ingen undervisningsmånad (augusti–juni)"
        )));
    }
    let year_start = NaiveDate::from_ymd_opt(period.school_year_start(), 8, 1).expect("date");
    let end = period.last_day();
    let pupils = ss12000::read_roster(roster.name, roster.bytes, year_start, end)?;
    let mut ids: Vec<&String> = pupils.keys().collect();
    ids.sort();
    let index: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut rejections = Vec::new();
    let mut accepted: Vec<(usize, usize, Record)> = Vec::new();
    let mut before_year = 0;
    for (fi, f) in attendance.iter().enumerate() {
        let records = match ss12000::read_attendance(f.name, f.bytes) {
            Ok(r) => r,
            Err(e) => {
                rejections.push(e);
                continue;
            }
        };
        let mut problems = Problems::default();
        for r in records {
            let n = r.number;
            if r.end < year_start {
                // Before this school year: in no window; safe to leave out.
                before_year += 1;
                continue;
            }
            let Some(&pupil) = index.get(r.student.as_str()) else {
                problems.push(record_problem(
                    "unknown_pupil",
                    n,
                    "student",
                    format!("eleven finns inte i elevlistan {}", roster.name),
                ));
                continue;
            };
            if r.start < year_start || r.end > end {
                problems.push(
                    record_problem(
                        "outside_period",
                        n,
                        if r.end > end { "endDate" } else { "startDate" },
                        format!(
                            "{} – {} ligger utanför läsåret {} till och med {period} ({year_start} – {end})",
                            r.start,
                            r.end,
                            period.school_year()
                        ),
                    )
                    .value(if r.end > end { r.end } else { r.start }.to_string()),
                );
                continue;
            }
            if Period::of(r.start) != Period::of(r.end) {
                problems.push(
                    record_problem(
                        "spans_months",
                        n,
                        "endDate",
                        format!(
                            "{} – {} sträcker sig över flera månader; hämta närvaron en månad i taget",
                            r.start, r.end
                        ),
                    )
                    .value(r.end.to_string()),
                );
                continue;
            }
            accepted.push((pupil, fi, r));
        }
        if let Err(e) = problems.into_result(f.name) {
            rejections.push(e);
        }
    }
    // The same pupil and activity twice over the same days would count the time twice.
    accepted.sort_by(|a, b| {
        (a.0, &a.2.activity, a.2.start, a.1, a.2.number).cmp(&(
            b.0,
            &b.2.activity,
            b.2.start,
            b.1,
            b.2.number,
        ))
    });
    let mut overlaps: BTreeMap<usize, Problems> = BTreeMap::new();
    for w in accepted.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if a.0 == b.0 && a.2.activity == b.2.activity && b.2.start <= a.2.end {
            let other = if a.1 == b.1 {
                format!("post {}", a.2.number)
            } else {
                format!("post {} i {}", a.2.number, attendance[a.1].name)
            };
            overlaps.entry(b.1).or_default().push(
                record_problem(
                    "overlapping_records",
                    b.2.number,
                    "startDate",
                    format!("samma elev och aktivitet har redan {other} för dagar som överlappar"),
                )
                .value(b.2.start.to_string()),
            );
        }
    }
    for (fi, problems) in overlaps {
        if let Err(e) = problems.into_result(attendance[fi].name) {
            match rejections.iter_mut().find(|r| r.file == e.file) {
                Some(r) => r.problems.extend(e.problems),
                None => rejections.push(e),
            }
        }
    }
    if !rejections.is_empty() {
        return Err(Error::Refused(rejections));
    }

    let m = month_index(period);
    let starts = window_starts(m);
    let mut months = vec![[Minutes::default(); MONTHS_IN_YEAR]; ids.len()];
    let mut windows: Vec<WindowCount> = WINDOWS
        .iter()
        .map(|w| WindowCount {
            window: w,
            ..WindowCount::default()
        })
        .collect();
    let mut lacking = [0usize; 6];
    for (pupil, _, r) in &accepted {
        for (l, v) in lacking.iter_mut().zip(r.sums) {
            *l += v.is_none() as usize;
        }
        let [off, att, val, inv, oth, rep] = r.sums.map(|v| v.unwrap_or(0));
        let mi = month_index(Period::of(r.start));
        months[*pupil][mi].add(&Minutes {
            // Absent is not zero: without offeredSum the offered time is what was accounted for.
            offered: r.sums[0].map_or(att + val + inv + oth, |_| off),
            attendance: att,
            valid: val,
            invalid: inv,
            other: oth,
            reported: rep,
        });
        for (w, s) in windows.iter_mut().zip(starts) {
            w.records += (mi >= s) as usize;
        }
    }
    let mut summary = Summary {
        period: period.to_string(),
        records: accepted.len(),
        roster_pupils: ids.len(),
        ..Summary::default()
    };
    if before_year > 0 {
        summary.warnings.push(format!(
            "{before_year} poster slutade före läsårets början {year_start} och räknades inte"
        ));
    }
    for (field, n) in ss12000::SUM_FIELDS.iter().zip(lacking) {
        if n == 0 {
            continue;
        }
        summary.warnings.push(if *field == "offeredSum" {
            format!("{n} poster saknade offeredSum; erbjuden tid räknades som närvaro + frånvaro + annan närvaro")
        } else {
            format!("{n} poster saknade {field}; räknades som 0 minuter")
        });
    }

    // Schools in code order, each planned from its roster for the school year.
    let mut schools: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        schools
            .entry(pupils[*id].school.as_str())
            .or_default()
            .push(i);
    }
    let mut rows = Vec::new();
    for (school, members) in schools {
        let of = |i: &usize| {
            let p = &pupils[ids[*i]];
            (p.grade, p.gender, &months[*i])
        };
        let with_time: Vec<(usize, Gender)> = members
            .iter()
            .filter(|i| months[**i][m].offered > 0)
            .map(|i| (of(i).0, of(i).1))
            .collect();
        if members
            .iter()
            .all(|i| months[*i].iter().all(|x| x.offered == 0))
        {
            summary.refused.push(format!(
                "skolenhet {school}: inga närvaroposter läsåret {} till och med {period}; inga rader skrivs",
                period.school_year()
            ));
            continue;
        }
        let roster_plan: Vec<(usize, Gender)> =
            members.iter().map(|i| (of(i).0, of(i).1)).collect();
        let small = |rows: &[AttendanceRow]| rows.iter().any(|r| r.students < min_group);
        let mut school_rows_ = plan_groups(&roster_plan, min_group)
            .map(|g| school_rows(school, period, &g, members.iter().map(of)))
            .filter(|r| !small(r));
        if school_rows_.is_none() {
            // Pupils without time this month leave a group short: plan from those with time.
            school_rows_ = plan_groups(&with_time, min_group)
                .map(|g| school_rows(school, period, &g, members.iter().map(of)));
            if school_rows_.is_some() {
                summary.warnings.push(format!(
                    "skolenhet {school}: grupperna planerades efter de {} elever som hade erbjuden tid i {period}",
                    with_time.len()
                ));
            }
        }
        let Some(r) = school_rows_ else {
            summary.refused.push(format!(
                "skolenhet {school}: för få elever ({}) med erbjuden tid i {period} även som hel skola; minst {min_group} krävs, så skolan kan inte redovisas utan att enskilda elever kan urskiljas",
                with_time.len()
            ));
            continue;
        };
        for w in windows.iter_mut() {
            w.pupils += r
                .iter()
                .filter(|row| row.window == w.window)
                .map(|row| row.students)
                .sum::<i64>();
        }
        summary.schools += 1;
        rows.extend(r);
    }
    if rows.is_empty() {
        let mut msg = format!("inga rader att skriva för {period}");
        for r in &summary.refused {
            msg.push_str("\n  ");
            msg.push_str(r);
        }
        return Err(Error::usage(msg));
    }
    summary.rows = rows.len();
    summary.windows = windows;
    Ok((rows, summary))
}

/// Writes rows to `path` as the extension says (`.csv`: UTF-8 with `,`; else Parquet with list
/// histograms), through a temporary file so a crash never leaves half a file.
pub fn write_rows(path: &Path, rows: &[AttendanceRow]) -> Result<()> {
    let csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("out")
    ));
    let format = if csv {
        FileFormat::CsvUtf8
    } else {
        FileFormat::ParquetList
    };
    crate::contract::write::write_attendance(&tmp, rows, format)?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_floor_to_whole_percent_and_hour() {
        assert_eq!(pct_band(1499, 10_000), 14);
        assert_eq!(pct_band(1500, 10_000), 15);
        assert_eq!(pct_band(10_000, 10_000), 100);
        assert_eq!(hours_band(59), 0);
        assert_eq!(hours_band(60), 1);
        assert_eq!(hours_band(500 * 60), 200);
    }

    fn pupils(spec: &[(usize, usize, usize)]) -> Vec<(usize, Gender)> {
        let mut v = Vec::new();
        for &(g, k, m) in spec {
            v.extend(std::iter::repeat_n((g, Gender::K), k));
            v.extend(std::iter::repeat_n((g, Gender::M), m));
        }
        v
    }

    fn names(g: &Grouping) -> Vec<String> {
        g.groups.iter().map(|(a, b)| format!("{a}{b}")).collect()
    }

    #[test]
    fn small_groups_merge_gender_then_stage_then_all() {
        // Grade 7 splits by gender, grade 8 only as T.
        let g = plan_groups(&pupils(&[(7, 6, 6), (8, 3, 4)]), 5).unwrap();
        assert_eq!(names(&g), ["7K", "7M", "8T"]);
        // Grade 9 too small even as T: the whole stage merges.
        let g = plan_groups(&pupils(&[(7, 6, 6), (8, 3, 4), (9, 1, 2)]), 5).unwrap();
        assert_eq!(names(&g), ["7-9K", "7-9M"]);
        assert_eq!(g.group_of(9, Gender::M), 1);
        // A stage too small even merged: the school is one group.
        let g = plan_groups(&pupils(&[(1, 6, 6), (4, 1, 1)]), 5).unwrap();
        assert_eq!(names(&g), ["allK", "allM"]);
        assert!(plan_groups(&pupils(&[(1, 2, 2)]), 5).is_none());
    }

    #[test]
    fn an_unknown_gender_keeps_its_group_total_only() {
        let mut p = pupils(&[(3, 6, 6)]);
        p.push((3, Gender::Unknown));
        let g = plan_groups(&p, 5).unwrap();
        assert_eq!(names(&g), ["3T"]);
    }
}
