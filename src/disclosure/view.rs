//! Disclosure of a view's values (a report's figures and table cells, and what is exported
//! from them): each value's status from the release cells it rests on, the rules for values
//! outside the releases (counts, pupil shares, rows of few schools), secondary suppression
//! within a table for those, and the ordering that keeps a hidden value's rank from showing.
//! A view asks only for statuses; how it renders a hidden value is its own affair.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::key::{self, CellKey};
use super::release::Which;
use super::{Protection, Rules, Status};

/// How a view's values pass disclosure control: the protected releases its values rest on
/// (the report's own period's, and the earlier periods and months some blocks show), the
/// report's parameters for the cell keys, and the school (if any) whose own principal reads
/// it and sees it unsuppressed.
pub struct Disclose<'a> {
    pub releases: &'a HashMap<Which, Arc<Protection>>,
    /// The release of a cell key without `@`: the county's term up to the report's period.
    pub own_release: &'a Which,
    pub rules: Rules,
    /// The report's `$name` parameters, substituted into cell templates.
    pub params: &'a [(&'a str, String)],
    pub own_school: Option<&'a str>,
}

/// What one value of a table rests on, as its column declares (see the report definitions'
/// `cells`, `count`, `own_only`, `base`, `schools` and `pupil_share`).
pub struct Rests<'t> {
    /// Cell templates, filled from the value's row.
    pub cells: &'t [String],
    /// A count the primary count rule guards unless it is a cell of a release.
    pub count: bool,
    /// Shown to the school's own principal only.
    pub own_only: bool,
    /// The pupils the value rests on, when the column names them (`Some(None)`: unknown).
    pub pupils: Option<Option<f64>>,
    /// The schools the value rests on, when the column names them.
    pub schools: Option<Option<f64>>,
    /// A percentage of `pupils` that stands for a count of them.
    pub pupil_share: bool,
}

impl Disclose<'_> {
    /// Why a value resting on the cells `templates` is not shown (`None`: it is shown), with
    /// `{column}` in a template taken from `field`.
    pub fn note(
        &self,
        templates: &[String],
        field: impl Fn(&str) -> Option<String>,
    ) -> Option<String> {
        self.footnote(self.status(templates, field))
    }

    pub fn footnote(&self, status: Status) -> Option<String> {
        status.footnote(&self.rules)
    }

    /// The status of a value resting on the cells `templates`: the worst of theirs.
    pub fn status(&self, templates: &[String], field: impl Fn(&str) -> Option<String>) -> Status {
        let mut worst = Status::Published;
        for t in templates {
            let status = match self.key(t, &field) {
                Key::Skip => Status::Published,
                Key::Cell(k) if self.own_key(&k) => Status::Published,
                Key::Cell(k) => {
                    let (cell, which) = key::locate(&k, self.own_release);
                    // A release not loaded is one no row asked for when the report was built.
                    debug_assert!(self.releases.contains_key(&which), "{which:?}");
                    self.releases
                        .get(&which)
                        .map_or(Status::FewPupils, |p| p.status(cell))
                }
                Key::Missing => Status::FewPupils,
            };
            worst = worst.max(status);
        }
        worst
    }

    /// The status of one value of a table row (`field` reads the row), and whether the count
    /// rule guards it (a count resting on no release cell; see [`link_counts`]).
    pub fn value(
        &self,
        rests: &Rests,
        value: Option<f64>,
        field: impl Fn(&str) -> Option<String>,
    ) -> (Status, bool) {
        let mut st = self.status(rests.cells, &field);
        // A count resting on a release cell in this row is protected there; the count rule
        // guards the rest.
        let counted = rests.count && !self.resolved(rests.cells, &field);
        if counted {
            st = st.max(self.count_status(value));
        }
        if rests.own_only && self.own_school.is_none() {
            st = Status::OwnSchoolOnly;
        }
        if rests.pupils.is_some() || rests.schools.is_some() {
            let own = self.own(rests.cells, &field);
            // The rule of three schools guards areas: one school's figure is guarded by that
            // school's own cells (a confidential school's are hidden there).
            let schools = rests
                .schools
                .filter(|_| !self.one_school(rests.cells, &field));
            st = st.max(self.base_status(rests.pupils, schools, own));
            if rests.pupil_share && !own {
                st = st.max(self.share_status(value, rests.pupils.flatten()));
            }
        }
        (st, counted)
    }

    /// The bound of the first of the cells `templates` shown as one: its fewest pupils and
    /// its group's pupils.
    pub fn bound(
        &self,
        templates: &[String],
        field: impl Fn(&str) -> Option<String>,
    ) -> Option<(i64, i64)> {
        templates.iter().find_map(|t| {
            let Key::Cell(k) = self.key(t, &field) else {
                return None;
            };
            let (cell, which) = key::locate(&k, self.own_release);
            self.releases.get(&which)?.bound(cell)
        })
    }

    /// Adds the releases the cells `templates` lie in to `out`.
    pub fn wanted<'t>(
        &self,
        templates: impl IntoIterator<Item = &'t String>,
        field: impl Fn(&str) -> Option<String>,
        out: &mut BTreeSet<Which>,
    ) {
        for t in templates {
            if let Key::Cell(k) = self.key(t, &field) {
                out.insert(key::locate(&k, self.own_release).1);
            }
        }
    }

    /// Whether `templates` have an optional one (`{?column}`) and every such one gives this
    /// row a cell: the value is then a cell of a release, not a count outside them.
    fn resolved(&self, templates: &[String], field: impl Fn(&str) -> Option<String>) -> bool {
        let optional: Vec<&String> = templates.iter().filter(|t| t.contains("{?")).collect();
        !optional.is_empty()
            && optional
                .iter()
                .all(|t| matches!(self.key(t, &field), Key::Cell(_)))
    }

    /// Whether every cell of `templates` is the reading principal's own school's (no cells:
    /// a value of the report's own area, which for a principal is the school).
    fn own(&self, templates: &[String], field: impl Fn(&str) -> Option<String>) -> bool {
        self.own_school.is_some()
            && templates.iter().all(|t| match self.key(t, &field) {
                Key::Cell(k) => self.own_key(&k),
                Key::Skip => true,
                Key::Missing => false,
            })
    }

    /// Whether `templates` rest on cells of one school unit only (and on at least one).
    fn one_school(&self, templates: &[String], field: impl Fn(&str) -> Option<String>) -> bool {
        let mut schools = templates.iter().map(|t| match self.key(t, &field) {
            Key::Cell(k) => CellKey::parse(&k)
                .filter(|c| c.level == key::Level::School)
                .map(|c| c.code.to_string()),
            Key::Skip | Key::Missing => None,
        });
        match schools.next() {
            Some(Some(first)) => schools.all(|s| s.as_deref() == Some(first.as_str())),
            _ => false,
        }
    }

    /// Whether a cell key is the reading principal's own school's.
    fn own_key(&self, key: &str) -> bool {
        self.own_school.is_some_and(|o| CellKey::is_school(key, o))
    }

    /// The status of a value resting on `pupils` pupils of `schools` schools in its row
    /// (`None`: unknown, for a rule the column declares), unless it is the principal's own.
    fn base_status(
        &self,
        pupils: Option<Option<f64>>,
        schools: Option<Option<f64>>,
        own: bool,
    ) -> Status {
        let rules = &self.rules;
        let below = |n: Option<f64>, min: f64| n.is_none_or(|n| n < min);
        if own {
            Status::Published
        } else if !rules.confidential_organisers.is_empty()
            && schools.is_some_and(|n| below(n, rules.min_schools as f64))
        {
            // The row does not say whether a confidential school is among its schools: with
            // any organiser type confidential, every area row is held to the rule.
            Status::FewSchools
        } else if pupils.is_some_and(|n| below(n, rules.min_pupils as f64)) {
            Status::FewPupils
        } else {
            Status::Published
        }
    }

    /// The status of a percentage of `pupils`: the count it stands for, and the rest of the
    /// group, by the primary count rule.
    fn share_status(&self, share: Option<f64>, pupils: Option<f64>) -> Status {
        let (Some(share), Some(pupils)) = (share, pupils) else {
            return Status::Published;
        };
        let count = (share / 100.0 * pupils).round();
        if self.small(count) || self.small(pupils - count) {
            Status::SmallCount
        } else {
            Status::Published
        }
    }

    /// The status of a count outside the releases by the primary rules; a school's own
    /// principal reads its report unsuppressed.
    fn count_status(&self, v: Option<f64>) -> Status {
        match v {
            Some(n) if self.own_school.is_none() && self.small(n) => Status::SmallCount,
            _ => Status::Published,
        }
    }

    fn small(&self, n: f64) -> bool {
        n >= 1.0 && n <= self.rules.max_hidden_count as f64
    }

    fn key(&self, template: &str, field: impl Fn(&str) -> Option<String>) -> Key {
        fill(template, self.params, field)
    }
}

/// A cell key from its template: `$name` parameters, then `{column}` fields (`{?column}`:
/// when the column is empty in the row, the template does not apply to it).
pub fn fill(
    template: &str,
    params: &[(&str, String)],
    field: impl Fn(&str) -> Option<String>,
) -> Key {
    let mut s = template.to_string();
    for (k, v) in params {
        s = s.replace(k, v);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}').map(|c| c + open) else {
            return Key::Missing;
        };
        let name = &rest[open + 1..close];
        match (field(name.trim_start_matches('?')), name.starts_with('?')) {
            (Some(v), _) => out.push_str(&v),
            (None, true) => return Key::Skip,
            (None, false) => return Key::Missing,
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Key::Cell(key::resolve_area(out))
}

/// A cell template filled from a row.
pub enum Key {
    Cell(String),
    /// An optional field (`{?name}`) is empty: the value rests on no cell of this template.
    Skip,
    /// A field the template needs is missing or empty: treated as resting on too few pupils.
    Missing,
}

/// Secondary suppression within a table for counts outside the releases: a hidden count
/// hides every other non-zero count of its row and of its column within its group of rows
/// (rows and columns may sum to one another: a staircase's cumulative steps, a month's
/// actions), then a rate is hidden with the counts it is derived from. `counts` are the count
/// columns, `rate_of[k]` the columns column `k` is derived from, `counted[r][k]` whether the
/// count rule guards a value, `linked(r, r2)` whether two rows are of one group.
pub fn link_counts(
    counts: &[usize],
    rate_of: &[Vec<usize>],
    nonzero: impl Fn(usize, usize) -> bool,
    linked: impl Fn(usize, usize) -> bool,
    status: &mut [Vec<Status>],
    counted: &[Vec<bool>],
) {
    let rows = status.len();
    let primary: Vec<(usize, usize)> = (0..rows)
        .flat_map(|r| counts.iter().map(move |&k| (r, k)))
        .filter(|&(r, k)| counted[r][k] && !status[r][k].published())
        .collect();
    for (r, k) in primary {
        let linked = counts
            .iter()
            .map(|&k2| (r, k2))
            .chain((0..rows).filter(|&r2| linked(r, r2)).map(|r2| (r2, k)));
        for (r2, k2) in linked {
            if counted[r2][k2] && status[r2][k2].published() && nonzero(r2, k2) {
                status[r2][k2] = Status::Secondary;
            }
        }
    }
    for (k, sources) in rate_of.iter().enumerate() {
        for &j in sources {
            for srow in status.iter_mut() {
                if !srow[j].published() {
                    srow[k] = srow[k].max(srow[j]);
                }
            }
        }
    }
}

/// Puts the rows whose ranking value is hidden (`hidden`) below the others, ordered by
/// `name` rather than by anything their values decide, so that no row's place tells where
/// its hidden value lies.
pub fn unrank_hidden<T, K: Ord>(
    rows: &mut Vec<T>,
    hidden: impl Fn(&T) -> bool,
    name: impl Fn(&T) -> K,
) {
    let (ranked, mut below): (Vec<T>, Vec<T>) =
        std::mem::take(rows).into_iter().partition(|r| !hidden(r));
    below.sort_by_cached_key(|r| name(r));
    rows.extend(ranked);
    rows.extend(below);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hidden_ranking_value_leaves_no_place_behind() {
        // Ranked by absence, highest first: Örebro 12, Hallsberg (hidden) 11, Askersund 9,
        // Degerfors (hidden) 8.
        let mut rows = vec![
            ("Örebro", Some(12)),
            ("Hallsberg", None),
            ("Askersund", Some(9)),
            ("Degerfors", None),
        ];
        unrank_hidden(&mut rows, |r| r.1.is_none(), |r| r.0);
        let names: Vec<&str> = rows.iter().map(|r| r.0).collect();
        assert_eq!(names, ["Örebro", "Askersund", "Degerfors", "Hallsberg"]);
    }

    #[test]
    fn a_hidden_count_hides_its_row_and_column_and_the_rates_derived_from_it() {
        // Columns: 0 a count, 1 a count, 2 a rate of column 0.
        let values = [[3.0, 40.0, 0.5], [30.0, 0.0, 0.2], [25.0, 12.0, 0.1]];
        let mut status = vec![vec![Status::Published; 3]; 3];
        status[0][0] = Status::SmallCount;
        let counted = vec![vec![true, true, false]; 3];
        link_counts(
            &[0, 1],
            &[vec![], vec![], vec![0]],
            |r, k| values[r][k] != 0.0,
            |_, _| true,
            &mut status,
            &counted,
        );
        assert_eq!(
            status[0],
            [Status::SmallCount, Status::Secondary, Status::SmallCount]
        );
        assert_eq!(
            status[1],
            [Status::Secondary, Status::Published, Status::Secondary]
        );
        assert_eq!(
            status[2],
            [Status::Secondary, Status::Published, Status::Secondary]
        );

        // Rows 0 and 1 one municipality's steps, row 2 another's: its column stays.
        let mut status = vec![vec![Status::Published; 3]; 3];
        status[0][0] = Status::SmallCount;
        link_counts(
            &[0, 1],
            &[vec![], vec![], vec![0]],
            |r, k| values[r][k] != 0.0,
            |r, r2| (r < 2) == (r2 < 2),
            &mut status,
            &counted,
        );
        assert_eq!(status[1][0], Status::Secondary);
        assert_eq!(
            status[2],
            [Status::Published, Status::Published, Status::Published]
        );
    }
}
