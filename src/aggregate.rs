//! From pupils to an anonymised aggregate: the measurement rules of the shared definition.
//!
//! One place computes a pupil's histogram bands and merges small groups, so the fixture
//! generator and (later) `narvaro aggregate` at the school produce aggregates the same way.

use crate::contract::schema::HISTOGRAMS;

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
/// (DESIGN.md §3). Returns `None` when the school is smaller than `min` even as `all`.
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
