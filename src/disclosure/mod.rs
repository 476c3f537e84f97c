//! Disclosure control (docs/disclosure.md): which cells of a release may be published.
//!
//! A release is a set of linked tables over one set of *inner cells*: the finest counts the
//! warehouse holds (a school's uploaded group's pupils in one histogram band). Every published
//! cell (a school's, a municipality's or a county's pupils in a band, a gender, a total) is the
//! sum of some inner cells, so every hierarchy the tables expose (school → municipality →
//! county, grade → stage → all, K + M = T, bands → total, months → term) is a linear relation
//! between cells.
//!
//! 1. **Primary suppression** hides cells by the policy's rules ([`Rules`]).
//! 2. **Secondary suppression** by Gaussian elimination (the method of Statistics Norway's
//!    `GaussSuppression`): cells are taken in priority order and published only when doing so
//!    does not put a hidden cell in the span of the published ones, i.e. make it computable.
//! 3. **Interval protection**: the [`audit`] computes, by integer linear programming, the
//!    interval each hidden cell can be narrowed to from everything published; while one is
//!    narrower than the policy allows, the narrowest published cell that constrains it is
//!    hidden too (one overlapping it, or the same measure of a sibling area), so that the cost
//!    falls on small cells rather than on the big figures.
//!
//! The result is deterministic: the same release gives the same statuses, whatever view asks.

pub mod audit;
pub mod key;
mod lp;
pub mod release;
pub mod view;

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// The policy's disclosure rules (`[disclosure]` in `policies/shared.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// A count or rate based on fewer pupils than this is suppressed (Skolverket: 10).
    #[serde(default = "d_min_pupils")]
    pub min_pupils: i64,
    /// Band counts from 1 up to this are hidden (4: counts 1–4).
    #[serde(default = "d_max_hidden_count")]
    pub max_hidden_count: i64,
    /// When all but at most this many pupils of a group are in one band, that band is shown
    /// as a bound and the rest hidden.
    #[serde(default = "d_max_hidden_count")]
    pub dominance: i64,
    /// An area figure with a confidential school in it needs at least this many contributing
    /// schools, so that no school can take its own figures from the area's and learn a
    /// confidential one's.
    #[serde(default = "d_min_schools")]
    pub min_schools: usize,
    /// The organiser types (`huvudmannatyp` of the register, e.g. `ENSKILD`) whose schools'
    /// figures are confidential: not published per school, and guarded in areas by
    /// `min_schools`. None by default: every school's figures are published as the pupil rules
    /// allow, and so are its municipality's.
    #[serde(default)]
    pub confidential_organisers: Organisers,
    /// No hidden cell may be narrowed to an interval of fewer than `2 × protection + 1`
    /// values (bounded within ± this many pupils).
    #[serde(default = "d_protection")]
    pub protection: i64,
    /// Whether the protection also holds against an insider: an attacker who knows any one
    /// school's true figures (its principal). On by default. Its cost: on the county fixtures
    /// a county's publication takes 50 s instead of 28 s, the national one 23.6 minutes
    /// instead of 15.5 (docs/disclosure.md).
    #[serde(default = "d_insiders")]
    pub insiders: bool,
}

/// A set of organiser types ([`crate::contract::other::ORGANISER_TYPES`]), written in the
/// policy as a list of their codes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Organisers(u8);

impl Organisers {
    pub fn contains(self, organiser_type: &str) -> bool {
        ORGANISERS
            .iter()
            .position(|t| t.eq_ignore_ascii_case(organiser_type.trim()))
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn bits(self) -> u8 {
        self.0
    }
}

const ORGANISERS: [&str; 4] = crate::contract::other::ORGANISER_TYPES;

impl Serialize for Organisers {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let names: Vec<&str> = (0..ORGANISERS.len())
            .filter(|i| self.0 & (1 << i) != 0)
            .map(|i| ORGANISERS[i])
            .collect();
        names.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Organisers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        let mut bits = 0;
        for n in &names {
            let i = ORGANISERS
                .iter()
                .position(|t| t.eq_ignore_ascii_case(n.trim()))
                .ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "'{n}' är ingen huvudmannatyp; möjliga: {}",
                        ORGANISERS.join(", ")
                    ))
                })?;
            bits |= 1 << i;
        }
        Ok(Organisers(bits))
    }
}

fn d_min_pupils() -> i64 {
    10
}
fn d_max_hidden_count() -> i64 {
    4
}
fn d_min_schools() -> usize {
    3
}
fn d_insiders() -> bool {
    true
}
fn d_protection() -> i64 {
    5
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            min_pupils: d_min_pupils(),
            max_hidden_count: d_max_hidden_count(),
            dominance: d_max_hidden_count(),
            min_schools: d_min_schools(),
            protection: d_protection(),
            confidential_organisers: Organisers::default(),
            insiders: d_insiders(),
        }
    }
}

/// What a cell counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Kind {
    /// Pupils in one band of a group (e.g. 15–19 % absence).
    Band,
    /// All pupils of a group.
    Total,
    /// Events counted apart from the pupils' bands (a school's reported absence
    /// investigations): 1 to `max_hidden_count` is hidden, no group to dominate.
    Count,
}

/// One cell of a release.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// A stable name, e.g. `skolenhet:18800101|K|minst15`; orders ties deterministically.
    pub key: String,
    pub kind: Kind,
    /// The count.
    pub value: i64,
    /// The pupils the figure is based on: the group's total.
    pub base: i64,
    /// Contributing schools (1 for a school's own cell).
    pub schools: usize,
    /// Contributing schools whose figures are confidential
    /// ([`Rules::confidential_organisers`]).
    pub confidential: usize,
    /// Whether the cell is an area's (municipality, county), which needs `min_schools`.
    pub area: bool,
    /// The inner cells it sums, sorted and distinct.
    pub inner: Vec<usize>,
}

/// A set of linked tables over a set of inner cells.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Release {
    /// Each inner cell's count; cells sum these.
    pub values: Vec<i64>,
    /// Where each inner cell lies, finest level first (e.g. its school, then its
    /// municipality). The audit looks for the other tables an attacker cannot tell apart
    /// within a school, then a pair of schools of one municipality, then the municipality,
    /// before it solves the whole release; empty when there are no such levels.
    pub localities: Vec<Vec<u32>>,
    /// What each inner cell is (e.g. `18800101|7|K|15-19`: a school's group's band), so that
    /// the same pupils' cell can be found in another version of the same release; empty when
    /// the release is not compared with others.
    pub names: Vec<String>,
    pub cells: Vec<Cell>,
}

impl Release {
    /// The number of inner cells.
    pub fn inner(&self) -> usize {
        self.values.len()
    }
}

/// Why a cell is not published as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Status {
    Published,
    /// Shown as a bound: at least `base − dominance` pupils (e.g. `≥ 95 %`).
    Bound,
    /// Based on fewer than `min_pupils` pupils.
    FewPupils,
    /// A band count of 1 to `max_hidden_count`.
    SmallCount,
    /// An area figure from fewer than `min_schools` schools.
    FewSchools,
    /// The rest of a group that is nearly all in one band.
    Dominance,
    /// Hidden so that another hidden cell cannot be computed or narrowed.
    Secondary,
    /// Not published for a school at all (its actions by kind); its own principal sees it.
    OwnSchoolOnly,
    /// A school whose figures are confidential (its organiser's type is among
    /// [`Rules::confidential_organisers`]); its own principal sees them.
    Confidential,
}

impl Status {
    pub fn published(self) -> bool {
        self == Status::Published
    }

    /// The footnote of a value shown as a bound (`≥ 95,0`), in Swedish.
    pub fn bound_note(rules: &Rules) -> String {
        format!(
            "≥ Nästan alla elever i gruppen (alla utom högst {}) finns här; talet är en nedre gräns så att de övriga inte kan urskiljas.",
            rules.dominance
        )
    }

    /// The footnote a suppressed cell carries, in Swedish.
    pub fn footnote(self, rules: &Rules) -> Option<String> {
        Some(match self {
            Status::Published => return None,
            Status::Bound => format!(
                ".. Nästan alla elever i gruppen (alla utom högst {}) finns här; uppgiften visas inte.",
                rules.dominance
            ),
            Status::FewPupils => format!(
                ".. Uppgiften bygger på färre än {} elever och visas inte.",
                rules.min_pupils
            ),
            Status::SmallCount => format!(
                ".. Antal mellan 1 och {} visas inte, så att enskilda elever inte kan urskiljas.",
                rules.max_hidden_count
            ),
            Status::FewSchools => format!(
                ".. Uppgiften bygger på färre än {} skolenheter, varav någon med sekretessbelagda uppgifter, och visas inte.",
                rules.min_schools
            ),
            Status::Confidential => {
                ".. Skolenhetens uppgifter är sekretessbelagda (huvudmannens typ) och visas inte; skolans rektor ser dem med sin egen inloggning."
                    .into()
            }
            Status::Dominance => {
                ".. Visas inte: nästan alla elever i gruppen har samma värde.".into()
            }
            Status::Secondary => {
                ".. Dold för att en annan dold uppgift inte ska kunna räknas fram ur summorna."
                    .into()
            }
            Status::OwnSchoolOnly => {
                ".. Publiceras inte per skolenhet, så att små antal inte kan urskiljas; skolans rektor ser uppgiften med sin egen inloggning."
                    .into()
            }
        })
    }
}

/// The primary status of every cell by the rules alone.
pub fn primary(release: &Release, rules: &Rules) -> Vec<Status> {
    let mut status: Vec<Status> = release
        .cells
        .iter()
        .map(|c| {
            if !c.area && c.confidential > 0 {
                Status::Confidential
            } else if c.area && c.confidential > 0 && c.schools < rules.min_schools {
                Status::FewSchools
            } else if c.base < rules.min_pupils {
                Status::FewPupils
            } else if c.kind != Kind::Total && (1..=rules.max_hidden_count).contains(&c.value) {
                Status::SmallCount
            } else {
                Status::Published
            }
        })
        .collect();
    // Dominance: a band holding all but 1..=dominance pupils of its group is shown as a bound;
    // the group's other bands are hidden.
    let mut groups: HashMap<(&str, i64), Vec<usize>> = HashMap::new();
    for (i, c) in release.cells.iter().enumerate() {
        if c.kind == Kind::Band {
            groups
                .entry((key::group(&c.key), c.base))
                .or_default()
                .push(i);
        }
    }
    // Several cells of a group can hold nearly all of it (at or above 10 % and at or above
    // 15 %): the largest is the bound, whatever order the cells came in.
    for members in groups.values() {
        let bound = members
            .iter()
            .copied()
            .filter(|&i| {
                let c = &release.cells[i];
                status[i] == Status::Published
                    && (1..=rules.dominance).contains(&(c.base - c.value))
            })
            .max_by(|&a, &b| {
                let (x, y) = (&release.cells[a], &release.cells[b]);
                x.value.cmp(&y.value).then(y.key.cmp(&x.key))
            });
        if let Some(i) = bound {
            status[i] = Status::Bound;
            for &j in members {
                if j != i && release.cells[j].value > 0 && status[j] == Status::Published {
                    status[j] = Status::Dominance;
                }
            }
        }
    }
    status
}

/// A sparse integer vector over inner cells, sorted by index, without zeros.
type Vector = Vec<(usize, i64)>;

fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.abs(), b.abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `a·x − b·y`, normalised by the gcd of its coefficients and sign of its first.
fn combine(x: &Vector, a: i64, y: &Vector, b: i64) -> Vector {
    let mut out = Vec::with_capacity(x.len() + y.len());
    let (mut i, mut j) = (0, 0);
    while i < x.len() || j < y.len() {
        let (k, v) = match (x.get(i), y.get(j)) {
            (Some(&(kx, vx)), Some(&(ky, _))) if kx < ky => {
                i += 1;
                (kx, a * vx)
            }
            (Some(&(kx, _)), Some(&(ky, vy))) if ky < kx => {
                j += 1;
                (ky, -b * vy)
            }
            (Some(&(kx, vx)), Some(&(_, vy))) => {
                i += 1;
                j += 1;
                (kx, a * vx - b * vy)
            }
            (Some(&(kx, vx)), None) => {
                i += 1;
                (kx, a * vx)
            }
            (None, Some(&(ky, vy))) => {
                j += 1;
                (ky, -b * vy)
            }
            (None, None) => unreachable!(),
        };
        if v != 0 {
            out.push((k, v));
        }
    }
    normalise(out)
}

fn normalise(mut v: Vector) -> Vector {
    let g = v.iter().fold(0, |g, (_, x)| gcd(g, *x));
    if g > 1 {
        v.iter_mut().for_each(|(_, x)| *x /= g);
    }
    if v.first().is_some_and(|(_, x)| *x < 0) {
        v.iter_mut().for_each(|(_, x)| *x = -*x);
    }
    v
}

/// Published vectors in echelon form: each row's pivot (its first index) appears in no other
/// row's leading position, and rows are eliminated against earlier pivots.
#[derive(Default)]
struct Basis {
    /// Per pivot: the place in the elimination's order of the cell that added the row, and
    /// the row.
    rows: HashMap<usize, (usize, Vector)>,
}

impl Basis {
    /// The part of `v` outside the span of the basis.
    fn reduce(&self, v: &Vector) -> Vector {
        let mut v = v.clone();
        let mut at = 0;
        while at < v.len() {
            let (k, x) = v[at];
            match self.rows.get(&k) {
                Some((_, row)) => {
                    // row[0] = (k, p): v·p − row·x removes index k.
                    let p = row[0].1;
                    v = combine(&v, p / gcd(p, x), row, x / gcd(p, x));
                    at = v.partition_point(|(i, _)| *i < k);
                }
                None => at += 1,
            }
        }
        v
    }

    /// Adds a reduced, non-zero vector, added by the cell at place `at`.
    fn add(&mut self, at: usize, r: Vector) {
        self.rows.insert(r[0].0, (at, r));
    }
}

/// Whether `a` is a non-zero multiple of `b` (both normalised).
fn parallel(a: &Vector, b: &Vector) -> bool {
    !a.is_empty() && a == b
}

fn vector(c: &Cell) -> Vector {
    c.inner.iter().map(|&i| (i, 1)).collect()
}

/// The order cells are offered for publication: totals before bands, larger values and
/// wider cells (more schools, more inner cells) first, then by key. Cells offered later are
/// the ones hidden when something must give.
fn priority(release: &Release) -> Vec<usize> {
    let mut order: Vec<usize> = (0..release.cells.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&release.cells[a], &release.cells[b]);
        (y.kind == Kind::Total)
            .cmp(&(x.kind == Kind::Total))
            .then(y.inner.len().cmp(&x.inner.len()))
            .then(y.value.cmp(&x.value))
            .then(x.key.cmp(&y.key))
    });
    order
}

/// Secondary suppression by Gaussian elimination: starting from `status` (primary), publishes
/// each cell in priority order only when no hidden cell becomes computable. Cells `forced`
/// (already published elsewhere: an attacker knows them) come first and stay published.
pub fn gauss(release: &Release, status: &mut [Status], forced: &[bool]) {
    Elimination::default().run(release, status, forced);
}

/// One cell's step in a run of the Gaussian elimination.
enum Step {
    /// Hidden when the run started.
    Hidden,
    /// Published and implied by the cells published before it.
    Implied,
    /// Published: its part outside the span before it is the basis row with this pivot.
    Row(usize),
    /// Hidden by the run: published, it would have made a hidden cell computable.
    Secondary,
}

/// The Gaussian secondary suppression ([`gauss`]) kept between runs over one release, for the
/// repair, which reruns it after hiding a few more cells. A rerun gives what a run from scratch
/// gives, but replays the last run's steps for as long as they stay the same and eliminates
/// afresh only from the first step that changes: the place of a newly hidden cell, or an
/// earlier cell whose part outside the span before it equals a newly hidden cell's there (it
/// would now make that cell computable). Those are the only changes: the cells published
/// before that step, and so the span, are the same as in the last run.
#[derive(Default)]
pub struct Elimination {
    /// Cells in the order they are offered.
    order: Vec<usize>,
    /// The last run's step per place in `order`.
    steps: Vec<Step>,
    /// The rows of the last run's basis.
    basis: Basis,
    forced: Vec<bool>,
}

impl Elimination {
    /// [`gauss`], replaying the last run where it stays the same. A run that follows one with
    /// other forced cells, or with a cell hidden then and published now, starts from scratch.
    /// Returns the place in the order it eliminated afresh from.
    pub fn run(&mut self, release: &Release, status: &mut [Status], forced: &[bool]) -> usize {
        let n = release.cells.len();
        let forced: Vec<bool> = (0..n)
            .map(|i| forced.get(i).copied().unwrap_or(false))
            .collect();
        let from = self.replay(release, status, &forced);
        if from == 0 {
            self.order = priority(release);
            // Stable: the forced cells first, each group in priority order.
            self.order.sort_by_key(|&i| !forced[i]);
            self.forced = forced;
            self.basis = Basis::default();
        }
        // The steps kept: what the last run hid is hidden from the start of this one.
        self.steps.truncate(from);
        for s in &mut self.steps {
            if let Step::Secondary = s {
                *s = Step::Hidden;
            }
        }
        self.basis.rows.retain(|_, (at, _)| *at < from);
        if from == n {
            return from;
        }
        // Hidden cells with their part outside the published span.
        let mut hidden: Vec<(usize, Vector)> = Vec::new();
        for &i in &self.order {
            if !status[i].published() {
                let h = self.basis.reduce(&vector(&release.cells[i]));
                // A hidden cell the forced cells alone determine cannot be protected any
                // more (an earlier publication gave it away); it constrains nothing.
                if !h.is_empty() {
                    hidden.push((i, h));
                }
            }
        }
        for at in from..n {
            let i = self.order[at];
            if !status[i].published() {
                self.steps.push(Step::Hidden);
                continue;
            }
            let r = self.basis.reduce(&vector(&release.cells[i]));
            if r.is_empty() {
                // Already implied by what is published: no new information.
                self.steps.push(Step::Implied);
                continue;
            }
            if !self.forced[i] && hidden.iter().any(|(_, h)| parallel(h, &r)) {
                status[i] = Status::Secondary;
                self.steps.push(Step::Secondary);
                hidden.push((i, r));
                continue;
            }
            eliminate(&mut hidden, &r);
            self.steps.push(Step::Row(r[0].0));
            self.basis.add(at, r);
        }
        from
    }

    /// The first place where a run over `status` steps differently from the last run (0
    /// without a last run to follow).
    fn replay(&self, release: &Release, status: &[Status], forced: &[bool]) -> usize {
        let n = release.cells.len();
        if self.steps.len() != n || self.forced != forced {
            return 0;
        }
        // Cells hidden since the last run started, with their part outside the span so far.
        let mut hidden: Vec<(usize, Vector)> = Vec::new();
        for (&i, step) in self.order.iter().zip(&self.steps) {
            match (step, status[i].published()) {
                // Published again: not a run this one can follow.
                (Step::Hidden | Step::Secondary, true) => return 0,
                (Step::Hidden, false) | (_, true) => {}
                (_, false) => hidden.push((i, vector(&release.cells[i]))),
            }
        }
        for (at, (&i, step)) in self.order.iter().zip(&self.steps).enumerate() {
            match step {
                Step::Hidden => {}
                // From here the last run held it hidden as this run does.
                Step::Secondary => hidden.retain(|(j, _)| *j != i),
                Step::Implied if status[i].published() => {}
                Step::Row(pivot) if status[i].published() => {
                    let r = &self.basis.rows[pivot].1;
                    if !forced[i] && hidden.iter().any(|(_, h)| parallel(h, r)) {
                        return at;
                    }
                    eliminate(&mut hidden, r);
                }
                // Newly hidden here.
                Step::Implied | Step::Row(_) => return at,
            }
        }
        n
    }
}

/// Removes the pivot of the new basis row `r` from every hidden cell's part, and drops the
/// cells it leaves with nothing outside the span.
fn eliminate(hidden: &mut Vec<(usize, Vector)>, r: &Vector) {
    let pivot = r[0];
    for (_, h) in hidden.iter_mut() {
        if let Ok(p) = h.binary_search_by_key(&pivot.0, |(k, _)| *k) {
            let x = h[p].1;
            let g = gcd(pivot.1, x);
            *h = combine(h, pivot.1 / g, r, x / g);
        }
    }
    hidden.retain(|(_, h)| !h.is_empty());
}

/// Cells with the same inner cells are one figure under several names (a school with one
/// group; a municipality with one school): they get one status, the strictest any of them
/// needs. Returns the release of distinct cells, in the order of their keys, and, per cell,
/// its distinct cell's index.
fn distinct(release: &Release) -> (Release, Vec<usize>) {
    // The twin with the smallest key stands for the others, whatever order the cells came in.
    let mut first: HashMap<&[usize], usize> = HashMap::new();
    for (i, c) in release.cells.iter().enumerate() {
        let e = first.entry(&c.inner).or_insert(i);
        if c.key < release.cells[*e].key {
            *e = i;
        }
    }
    // In the order of their keys: the repair takes failures, and the solver rows, in the
    // release's order, so this keeps the statuses independent of the order cells come in.
    let mut reps: Vec<usize> = first.values().copied().collect();
    reps.sort_unstable_by(|&a, &b| {
        release.cells[a]
            .key
            .cmp(&release.cells[b].key)
            .then(a.cmp(&b))
    });
    let index: HashMap<usize, usize> = reps.iter().enumerate().map(|(k, &i)| (i, k)).collect();
    let of = release
        .cells
        .iter()
        .map(|c| index[&first[c.inner.as_slice()]])
        .collect();
    (
        Release {
            values: release.values.clone(),
            localities: release.localities.clone(),
            names: release.names.clone(),
            cells: reps.iter().map(|&i| release.cells[i].clone()).collect(),
        },
        of,
    )
}

/// Primary and Gaussian secondary suppression (no interval repair), twins kept together.
pub fn suppress(release: &Release, rules: &Rules) -> Vec<Status> {
    let (uniq, of) = distinct(release);
    let status = suppress_distinct(release, &uniq, &of, rules);
    of.iter().map(|&k| status[k]).collect()
}

fn primary_distinct(release: &Release, of: &[usize], n: usize, rules: &Rules) -> Vec<Status> {
    let mut status = vec![Status::Published; n];
    for (i, p) in primary(release, rules).into_iter().enumerate() {
        let s = &mut status[of[i]];
        // A twin hidden for any reason outranks one shown as a bound.
        if !p.published() && (s.published() || p > *s) {
            *s = p;
        }
    }
    status
}

fn suppress_distinct(
    release: &Release,
    uniq: &Release,
    of: &[usize],
    rules: &Rules,
) -> Vec<Status> {
    let mut status = primary_distinct(release, of, uniq.cells.len(), rules);
    gauss(uniq, &mut status, &[]);
    status
}

/// The full protection: primary rules and Gaussian secondary suppression; then, while the
/// audit finds a hidden cell narrowed too far, the narrowest published cell that overlaps it
/// or is the same measure of a sibling area ([`sibling`]) is hidden too, and the Gaussian step
/// rerun so that cell cannot be computed either (an [`Elimination`], which replays the last
/// run up to the first step the newly hidden cells change). Twins (the same figure under
/// several names) share a status.
///
/// The repair only ever hides more: every round publishes a subset of the round before, so an
/// attacker's intervals only widen, and a cell the audit has proven safe stays safe. Each
/// round after the first audits only the cells that failed the round before.
pub fn protect(release: &Release, rules: &Rules) -> Vec<Status> {
    protect_fixed(release, rules, &[])
}

/// [`protect`] with some cells' statuses `fixed` (`Some`): cells another publication already
/// showed or hid. A fixed published cell stays published and is counted as known; a fixed
/// hidden cell stays hidden and is protected like any other. A twin of a fixed cell takes its
/// status: the figure is the same.
pub fn protect_fixed(release: &Release, rules: &Rules, fixed: &[Option<Status>]) -> Vec<Status> {
    let (uniq, of) = distinct(release);
    let mut status = primary_distinct(release, &of, uniq.cells.len(), rules);
    let mut forced = vec![false; uniq.cells.len()];
    let fixed_of = |i: usize| fixed.get(i).copied().flatten();
    // Hidden first, so that a figure one publication showed and another hid counts as shown.
    for published in [false, true] {
        for (i, f) in (0..release.cells.len()).filter_map(|i| Some((i, fixed_of(i)?))) {
            if f.published() == published {
                status[of[i]] = f;
                forced[of[i]] = f.published();
            }
        }
    }
    let release = &uniq;
    let mut elimination = Elimination::default();
    elimination.run(release, &mut status, &forced);
    let mut pending: Option<Vec<usize>> = None;
    let mut repairs: HashMap<(usize, Option<u32>), u32> = HashMap::new();
    // Cells proven exactly against an insider, who stay proven: the repair only hides more.
    let mut proven: HashSet<(usize, u32)> = HashSet::new();
    // The tables found so far: each round hides more, so they stay the attacker's.
    let mut tables = audit::Tables::default();
    loop {
        // Cells the local scopes cannot prove safe are repaired without the whole-release
        // programme: it found no extra room in any county tried, and it is the slow part.
        let started = std::time::Instant::now();
        // One view of the release for the round: its audit and the exact checks after it.
        let round = audit::Round::new(release, &status, rules);
        let report = round.audit_cells(
            audit::Depth::Local,
            pending.as_deref(),
            &proven,
            &mut tables,
        );
        tracing::debug!(
            audited = pending.as_ref().map_or(release.cells.len(), |p| p.len()),
            failures = report.failures.len(),
            ms = started.elapsed().as_millis() as u64,
            "disclosure: repair round"
        );
        let mut changed = false;
        for failure in &report.failures {
            let h = &release.cells[failure.cell];
            // A cell that still fails after its repair takes twice as many cells the next
            // round, so that a cell far from safe costs a few rounds rather than one a cell.
            // Counted apart against an outsider and against insiders: each is its own search
            // for room. Against an insider one at a time: the candidates there are sums.
            let tries = repairs
                .entry((failure.cell, failure.insider_locality))
                .or_insert(0u32);
            let n = match failure.insider_locality {
                None => 1usize << (*tries).min(6),
                Some(_) => 1,
            };
            *tries += 1;
            let again = *tries > 1;
            // A published cell whose value alone caps the failing one too narrowly is the one
            // that bounds it: it gives way.
            let cap = failure
                .capped_by
                .filter(|&j| status[j] == Status::Published && !forced[j]);
            // Against an insider, a cell whose upper bound is a hidden figure of its own
            // area that the insider computes (at ≥ 15 % bounds at ≥ 20 %) is widened beside
            // that figure: more room beside the cell itself leaves the bound where it is.
            let h = match failure.insider_locality {
                Some(_) => bounding(release, &status, failure).unwrap_or(h),
                None => h,
            };
            let picks: Vec<usize> = match cap {
                Some(j) => vec![j],
                None => {
                    let mut candidates: Vec<usize> = (0..release.cells.len())
                        .filter(|&j| status[j] == Status::Published && !forced[j])
                        .filter(|&j| {
                            let c = &release.cells[j];
                            overlaps(&c.inner, &h.inner)
                                || sibling(release, c, h)
                                || (failure.insider_locality.is_some() && beside(c, h))
                        })
                        .collect();
                    // Another municipality's figure is room in the county's sum only for a
                    // cell whose own municipality's figure of the measure moves there (is
                    // hidden): while that is published, it and the insider's own figures
                    // bound the cell whatever the county's sum allows. (Only an insider's
                    // failure asks.)
                    let parent_hidden = failure.insider_locality.is_some()
                        && key::CellKey::parse(&h.key).is_some_and(|kh| {
                            release.cells.iter().zip(status.iter()).any(|(c, s)| {
                                !s.published()
                                    && holds(&c.inner, &h.inner)
                                    && key::CellKey::parse(&c.key).is_some_and(|kc| {
                                        kc.level == key::Level::Municipality
                                            && kc.measure == kh.measure
                                    })
                            })
                        });
                    // Against an insider, first room beside the cell that the insider cannot
                    // subtract: a sibling school's figure of the same measure (in the
                    // municipality's sum), else another municipality's (in the county's);
                    // then the sum the insider subtracts their own figures from, the
                    // municipality's before the county's.
                    let tier = |c: &Cell| -> u8 {
                        let Some(id) = failure.insider_locality else {
                            return 0;
                        };
                        let (Some(kc), Some(kh)) =
                            (key::CellKey::parse(&c.key), key::CellKey::parse(&h.key))
                        else {
                            return 3;
                        };
                        let theirs = release
                            .localities
                            .first()
                            .is_some_and(|l| c.inner.iter().any(|&i| l[i] == id));
                        let over = overlaps(&c.inner, &h.inner);
                        // Beside the cell and not the insider's own: room they cannot subtract.
                        let beside = kc.measure == kh.measure && !over && !theirs;
                        match kc.level {
                            key::Level::County | key::Level::Country if theirs && over => 4,
                            _ if theirs && over => 2,
                            key::Level::School if beside && sibling(release, c, h) => 0,
                            key::Level::Municipality if beside && parent_hidden => 1,
                            _ => 3,
                        }
                    };
                    let order = |&j: &usize| {
                        (
                            tier(&release.cells[j]),
                            release.cells[j].kind == Kind::Total,
                            release.cells[j].inner.len(),
                            release.cells[j].value,
                            &release.cells[j].key,
                        )
                    };
                    candidates.sort_by_key(order);
                    // An area's own sum is hidden for an insider, and a cell that still fails
                    // against them after a repair is repaired again, only when the whole
                    // release, solved exactly, proves the cell no better than the local scopes
                    // did: the room may lie further away than they reach.
                    if let (Some(id), Some(&j)) = (failure.insider_locality, candidates.first())
                        && (again || tier(&release.cells[j]) >= 2)
                    {
                        let (schools, binding) =
                            round.proven_against(failure.cell, id, &failure.insiders_next);
                        let held = schools.contains(&id);
                        proven.extend(schools.into_iter().map(|s| (failure.cell, s)));
                        if held {
                            // Audited again next round, against the next insider.
                            changed = true;
                            continue;
                        }
                        // Where the exact interval names the published cells it rests on,
                        // one of those gives way: the candidates among them, else the first
                        // of them in the same order.
                        let mut binding: Vec<usize> =
                            binding.into_iter().filter(|&j| !forced[j]).collect();
                        binding.sort_by_key(order);
                        let among: Vec<usize> = candidates
                            .iter()
                            .copied()
                            .filter(|j| binding.contains(j))
                            .collect();
                        if !among.is_empty() {
                            candidates = among;
                        } else if !binding.is_empty() {
                            candidates = binding;
                        }
                    }
                    candidates.truncate(n);
                    candidates
                }
            };
            tracing::trace!(
                cell = %failure.key,
                beside = %h.key,
                insider = ?failure.insider,
                min = failure.min,
                max = ?failure.max,
                hides = ?picks.iter().map(|&j| &release.cells[j].key).collect::<Vec<_>>(),
                "disclosure: repair"
            );
            for j in picks {
                status[j] = Status::Secondary;
                changed = true;
            }
        }
        if !changed {
            break;
        }
        let started = std::time::Instant::now();
        let from = elimination.run(release, &mut status, &forced);
        tracing::debug!(
            from,
            cells = release.cells.len(),
            ms = started.elapsed().as_millis() as u64,
            "disclosure: secondary suppression"
        );
        pending = Some(report.failures.iter().map(|f| f.cell).collect());
    }
    of.iter().map(|&k| status[k]).collect()
}

/// The release `now` as an attacker sees it who also holds earlier publications of the same
/// tables (`earlier`: each one's release and the statuses it was published with): their cells
/// after `now`'s, over shared inner cells where an inner cell (by name) has the value it has
/// in `now` or in an earlier one of them, and over inner cells of their own where it has a
/// value of its own or is gone. An attacker takes equal figures for the same figure, so two
/// publications of the same content are one (and their cells are solved once). Returns the
/// combined release and the earlier cells' statuses, fixed (`None` for `now`'s cells).
pub fn beside_earlier(
    now: &Release,
    earlier: &[(&Release, &Protection)],
) -> (Release, Vec<Option<Status>>) {
    let mut combined = now.clone();
    let mut fixed: Vec<Option<Status>> = vec![None; now.cells.len()];
    let by_name: HashMap<&str, usize> = now
        .names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    // Every inner cell of the combined release by name and value.
    let mut by_value: HashMap<(&str, i64), usize> = now
        .names
        .iter()
        .zip(&now.values)
        .enumerate()
        .map(|(i, (n, v))| ((n.as_str(), *v), i))
        .collect();
    for (k, (release, protection)) in earlier.iter().enumerate() {
        // Each earlier locality id in terms of `now`'s, by an inner cell they share.
        let mut ids: Vec<HashMap<u32, u32>> = vec![HashMap::new(); now.localities.len()];
        for (i, n) in release.names.iter().enumerate() {
            if let Some(&j) = by_name.get(n.as_str()) {
                for (level, map) in ids.iter_mut().enumerate() {
                    if let (Some(a), Some(b)) =
                        (release.localities.get(level), now.localities.get(level))
                    {
                        map.insert(a[i], b[j]);
                    }
                }
            }
        }
        let mut inner_of = Vec::with_capacity(release.inner());
        for (i, n) in release.names.iter().enumerate() {
            let value = release.values[i];
            inner_of.push(match by_value.get(&(n.as_str(), value)) {
                Some(&j) => j,
                None => {
                    combined.values.push(value);
                    combined.names.push(format!("{n}@{k}"));
                    for (level, l) in combined.localities.iter_mut().enumerate() {
                        let old = release.localities.get(level).map_or(0, |a| a[i]);
                        // A locality `now` no longer has gets an id of its own.
                        let id = ids[level].get(&old).copied().unwrap_or(u32::MAX - old);
                        l.push(id);
                    }
                    let j = combined.values.len() - 1;
                    by_value.insert((n.as_str(), value), j);
                    j
                }
            });
        }
        for c in &release.cells {
            let mut inner: Vec<usize> = c.inner.iter().map(|&i| inner_of[i]).collect();
            inner.sort_unstable();
            inner.dedup();
            combined.cells.push(Cell {
                key: key::in_publication(&c.key, k),
                inner,
                ..c.clone()
            });
            fixed.push(Some(protection.status(&c.key)));
        }
    }
    (combined, fixed)
}

/// A county's protected release for one period: every published cell's status by key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Protection {
    pub rules: Rules,
    pub status: HashMap<String, Status>,
    /// The cells shown as a bound: the fewest pupils they hold (`base − dominance`, as the
    /// audit assumes an attacker knows) and their group's pupils.
    pub bounds: HashMap<String, (i64, i64)>,
}

/// What an attacker who holds the `earlier` publications and one of `release` protected by
/// `protection` can narrow: the audit of them all as one system ([`beside_earlier`]).
pub fn audit_beside(
    release: &Release,
    earlier: &[(&Release, &Protection)],
    protection: &Protection,
    rules: &Rules,
    depth: audit::Depth,
) -> audit::Report {
    let (both, fixed) = beside_earlier(release, earlier);
    let status: Vec<Status> = both
        .cells
        .iter()
        .zip(&fixed)
        .map(|(c, f)| f.unwrap_or_else(|| protection.status(&c.key)))
        .collect();
    audit::audit_cells(
        &both,
        &status,
        rules,
        depth,
        None,
        &HashSet::new(),
        &mut audit::Tables::default(),
    )
}

impl Protection {
    pub fn new(release: &Release, rules: &Rules) -> Protection {
        Protection::from_statuses(release, rules, protect(release, rules))
    }

    /// The protection of `release` where earlier publications of the same tables are known
    /// ([`beside_earlier`]): a cell whose figure did not change keeps its status, and no
    /// hidden cell of any of them can be narrowed by differencing them.
    pub fn after(
        release: &Release,
        earlier: &[(&Release, &Protection)],
        rules: &Rules,
    ) -> Protection {
        let (combined, fixed) = beside_earlier(release, earlier);
        let mut status = protect_fixed(&combined, rules, &fixed);
        status.truncate(release.cells.len());
        Protection::from_statuses(release, rules, status)
    }

    /// The protection that publishes `release` with `status`.
    pub fn from_statuses(release: &Release, rules: &Rules, status: Vec<Status>) -> Protection {
        let bounds = release
            .cells
            .iter()
            .zip(&status)
            .filter(|(_, s)| **s == Status::Bound)
            .map(|(c, _)| (c.key.clone(), (c.base - rules.dominance, c.base)))
            .collect();
        Protection {
            rules: *rules,
            status: release
                .cells
                .iter()
                .zip(status)
                .map(|(c, s)| (c.key.clone(), s))
                .collect(),
            bounds,
        }
    }

    /// A bound cell's fewest pupils and its group's pupils.
    pub fn bound(&self, key: &str) -> Option<(i64, i64)> {
        self.bounds.get(key).copied()
    }

    /// A cell's status; a cell the release does not hold (no data that period) is treated as
    /// resting on too few pupils.
    pub fn status(&self, key: &str) -> Status {
        self.status.get(key).copied().unwrap_or(Status::FewPupils)
    }
}

/// Whether `c` is the same measure as `h` of another area of the same level under the same
/// parent (another school of its municipality, another municipality of its county): hiding it
/// puts one more unknown beside `h` in the sums above them both, which is what widens `h` at
/// the least cost, rather than hiding the sums themselves.
fn sibling(release: &Release, c: &Cell, h: &Cell) -> bool {
    let (Some(kc), Some(kh)) = (key::CellKey::parse(&c.key), key::CellKey::parse(&h.key)) else {
        return false;
    };
    if kc.level != kh.level || kc.measure != kh.measure || kc.code == kh.code {
        return false;
    }
    // Schools: the same municipality (the coarsest locality); areas: the same release.
    match (c.inner.first(), h.inner.first(), release.localities.last()) {
        (Some(&a), Some(&b), Some(parent)) if kc.level == key::Level::School => {
            parent[a] == parent[b]
        }
        _ => true,
    }
}

/// Whether `c` is the same measure as the school cell `h` of an area beside `h`'s (another
/// municipality's): room in the county's sum that an insider of `h`'s municipality cannot
/// subtract, where every sibling school's figure is hidden already.
fn beside(c: &Cell, h: &Cell) -> bool {
    let (Some(kc), Some(kh)) = (key::CellKey::parse(&c.key), key::CellKey::parse(&h.key)) else {
        return false;
    };
    kh.level == key::Level::School
        && kc.level == key::Level::Municipality
        && kc.measure == kh.measure
        && !overlaps(&c.inner, &h.inner)
}

/// The widest hidden cell of the failing cell's own area that holds all its pupils and whose
/// value is the attacker's upper bound of it: the figure the attacker computes that caps it.
fn bounding<'a>(
    release: &'a Release,
    status: &[Status],
    failure: &audit::Interval,
) -> Option<&'a Cell> {
    let h = &release.cells[failure.cell];
    let max = failure.max?;
    fn area(c: &Cell) -> Option<(key::Level, &str)> {
        key::CellKey::parse(&c.key).map(|k| (k.level, k.code))
    }
    let own = area(h)?;
    release
        .cells
        .iter()
        .zip(status)
        .filter(|&(c, s)| {
            !s.published()
                && c.value == max
                && c.inner.len() > h.inner.len()
                && holds(&c.inner, &h.inner)
                && area(c) == Some(own)
        })
        .map(|(c, _)| c)
        .max_by(|a, b| a.inner.len().cmp(&b.inner.len()).then(b.key.cmp(&a.key)))
}

/// Whether the sorted `a` holds every element of the sorted `b`.
fn holds(a: &[usize], b: &[usize]) -> bool {
    let mut i = 0;
    b.iter().all(|x| {
        while i < a.len() && a[i] < *x {
            i += 1;
        }
        a.get(i) == Some(x)
    })
}

fn overlaps(a: &[usize], b: &[usize]) -> bool {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduce_finds_a_difference_of_published_sums() {
        let mut b = Basis::default();
        let total: Vector = vec![(0, 1), (1, 1), (2, 1)];
        b.add(0, b.reduce(&total));
        let part: Vector = vec![(0, 1), (1, 1)];
        let r = b.reduce(&part);
        b.add(1, r);
        // The third cell is total − part: in the span.
        assert!(b.reduce(&vec![(2, 1)]).is_empty());
        assert!(!b.reduce(&vec![(0, 1)]).is_empty());
    }

    /// A school's pupils at ≥ 20 % (3) are bounded above by its pupils at ≥ 10 % (7): when an
    /// insider's upper bound of the one is the other's value and that one is hidden too, the
    /// room must come beside the wider figure.
    #[test]
    fn the_hidden_figure_that_bounds_a_failing_cell_is_the_widest_at_its_bound() {
        let row = |school: &str, bands: [i64; 3]| release::Row {
            school: school.into(),
            municipality: "0101".into(),
            grade: "7".into(),
            gender: "T".into(),
            bands: bands.to_vec(),
            confidential: false,
        };
        let r = release::build(
            &[row("01010101", [100, 4, 3]), row("01010102", [80, 20, 10])],
            "01",
            &release::band_edges(&[10, 20]),
        );
        let at = |key: &str| r.cells.iter().position(|c| c.key == key).unwrap();
        let (narrow, wide) = (
            at("skolenhet:01010101|T|minst20"),
            at("skolenhet:01010101|T|minst10"),
        );
        assert_eq!((r.cells[narrow].value, r.cells[wide].value), (3, 7));
        let mut status = vec![Status::Published; r.cells.len()];
        status[narrow] = Status::SmallCount;
        status[wide] = Status::Secondary;
        let failure = |max| audit::Interval {
            cell: narrow,
            key: r.cells[narrow].key.clone(),
            value: 3,
            min: 0,
            max: Some(max),
            exact: true,
            capped_by: None,
            insider: Some("01010102".into()),
            insider_locality: Some(1),
            insiders_next: Vec::new(),
        };
        let found = |max, status: &[Status]| bounding(&r, status, &failure(max)).map(|c| &c.key);
        assert_eq!(found(7, &status), Some(&r.cells[wide].key));
        // Another bound, or the wider figure published (then it is `capped_by`): none.
        assert_eq!(found(8, &status), None);
        status[wide] = Status::Published;
        assert_eq!(found(7, &status), None);
    }

    /// Four schools of one municipality before and after a correction of school A's pupils at
    /// ≥ 15 % (3 → 8).
    fn corrected() -> (Release, Release) {
        let row = |school: &str, bands: [i64; 2]| release::Row {
            school: school.into(),
            municipality: "0101".into(),
            grade: "7".into(),
            gender: "K".into(),
            bands: bands.to_vec(),
            confidential: false,
        };
        let edges = release::band_edges(&[15]);
        let others = [row("B", [40, 20]), row("C", [60, 40]), row("D", [70, 50])];
        let before: Vec<_> = [row("A", [30, 3])]
            .into_iter()
            .chain(others.clone())
            .collect();
        let after: Vec<_> = [row("A", [25, 8])].into_iter().chain(others).collect();
        (
            release::build(&before, "01", &edges),
            release::build(&after, "01", &edges),
        )
    }

    /// Two earlier publications of the same content are one to an attacker (equal figures are
    /// taken for the same figure): beside both, the combined release has the inner cells it
    /// has beside one, and the protection is the same.
    #[test]
    fn earlier_publications_of_the_same_content_are_one() {
        let (old, new) = corrected();
        let rules = Rules::default();
        let first = Protection::new(&old, &rules);
        let (one, _) = beside_earlier(&new, &[(&old, &first)]);
        let (two, _) = beside_earlier(&new, &[(&old, &first), (&old, &first)]);
        assert!(one.values.len() > new.values.len(), "A's old groups");
        assert_eq!(one.values.len(), two.values.len());
        assert_eq!(two.cells.len(), new.cells.len() + 2 * old.cells.len());
        assert_eq!(
            Protection::after(&new, &[(&old, &first)], &rules).status,
            Protection::after(&new, &[(&old, &first), (&old, &first)], &rules).status
        );
    }

    /// Two publications of one municipality's period, before and after a correction of
    /// school A: the first hides A's 3 pupils at ≥ 15 % and, to protect them, B's 20; the
    /// correction gives A 8, which may be shown. Protected alone, the second publication shows
    /// B's 20, and the first publication's municipality figure less B, C and D gives A's old 3.
    /// Protected beside the first, B stays hidden and nothing can be narrowed.
    #[test]
    fn a_correction_protected_beside_the_earlier_publication_cannot_be_differenced() {
        let (old, new) = corrected();
        let rules = Rules::default();
        let first = Protection::new(&old, &rules);
        assert!(!first.status("skolenhet:A|T|minst15").published());
        assert!(!first.status("skolenhet:B|T|minst15").published());
        assert!(first.status("kommun:0101|T|minst15").published());

        // What an attacker holding both publications can narrow.
        let attack = |second: &Protection| {
            audit_beside(&new, &[(&old, &first)], second, &rules, audit::Depth::Exact)
        };
        let alone = Protection::new(&new, &rules);
        assert!(alone.status("skolenhet:B|T|minst15").published());
        let leak = attack(&alone);
        assert!(
            leak.failures
                .iter()
                .any(|f| f.key == "skolenhet:A|T|minst15@0" && f.min == 3 && f.max == Some(3)),
            "{:?}",
            leak.failures
        );

        let beside = Protection::after(&new, &[(&old, &first)], &rules);
        let safe = attack(&beside);
        assert!(safe.passed(), "{:?}", safe.failures);
        assert!(safe.hidden > 0);
        // B's figure did not change, so it keeps its status. The municipality's new figure is
        // shown; with it, A's corrected one would give A's old one away.
        assert_eq!(
            beside.status("skolenhet:B|T|minst15"),
            first.status("skolenhet:B|T|minst15")
        );
        assert!(beside.status("kommun:0101|T|minst15").published());
        assert!(!beside.status("skolenhet:A|T|minst15").published());
        for key in first.status.keys() {
            let unchanged = !key.starts_with("skolenhet:A")
                && !key.starts_with("kommun")
                && !key.starts_with("län");
            if unchanged {
                assert_eq!(beside.status(key), first.status(key), "{key}");
            }
        }
    }
}
