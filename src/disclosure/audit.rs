//! The attacker's view of a release: for every cell hidden by a primary rule, the smallest and
//! largest value it can have given everything published (exact cells, bounds, non-negative
//! whole numbers), by linear programming (HiGHS, see [`super::lp`]).
//! A release fails when any hidden cell can be narrowed to fewer than `2 × protection` pupils.
//!
//! Solving every hidden cell over a whole county (thousands of unknowns linked by the county's
//! band totals) is slow, so the audit searches locally first. Fixing every unknown outside a
//! scope at its true value leaves a smaller programme whose solutions are all tables the
//! attacker cannot rule out, so its interval lies inside the attacker's: once the intervals
//! found reach the required width the cell is proven safe. Scopes grow from the cell's own
//! school, to it and the schools of its municipality whose figure of the same measure is
//! hidden too, to it and one other school, to the municipality, and only a cell still too
//! narrow is solved over everything published (its exact interval).
//!
//! Every solution any programme finds is such a table too, so it is checked against the
//! published sums and kept as a witness: the values it gives every other hidden cell widen
//! their ranges, and a cell whose range is already wide enough needs no programme of its own.
//! A published cell over all of a cell's unknowns caps it: when the cap alone is too narrow,
//! the cell fails at once.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};

use serde::Serialize;

use super::key::{CellKey, Level};
use super::lp::{self, Lp, Row};
use super::{Release, Rules, Status};

/// How many other localities a cell's own is paired with at each level, smallest first.
const SIBLINGS: usize = 8;

/// How many localities whose cell of the same measure is hidden join a cell's own, smallest
/// first, in the scopes tried before the parent's whole (see [`System::scopes`]).
const HIDDEN_SIBLINGS: [usize; 2] = [8, 48];

/// How many pairs of a cell's locality and another whose cell is hidden too are tried
/// against insiders before each insider's own search (see [`System::pairs`]).
const PAIRS: usize = 4;

/// How many local scopes after the one that proved a cell against an outsider are tried
/// against one insider: a cell they cannot prove is repaired (a cheaper audit that hides more,
/// never less).
const INSIDER_SCOPES: usize = 4;

/// Larger than any count; a hidden cell that can reach it is unbounded above.
const UNBOUNDED: f64 = 1.0e7;

/// What an attacker can learn about one hidden cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interval {
    pub cell: usize,
    pub key: String,
    pub value: i64,
    pub min: i64,
    /// `None` when nothing published bounds it above.
    pub max: Option<i64>,
    /// Whether `min..=max` is the attacker's whole interval (solved over everything
    /// published), or a part of it wide enough to prove the cell safe.
    pub exact: bool,
    /// The published cell whose value alone caps the cell's unknowns too narrowly, when
    /// that is why it fails (hiding it is the repair).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capped_by: Option<usize>,
    /// The school whose true figures this interval assumes the attacker knows (its own
    /// principal, an insider), when it is that attacker's interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insider: Option<String>,
    /// That school's locality (see [`Release::localities`]).
    #[serde(skip)]
    pub insider_locality: Option<u32>,
    /// The other schools (localities, sorted) whose principals the search had yet to prove
    /// the cell against when this one failed: [`Round::proven_against`] tries them all at once.
    #[serde(skip)]
    pub insiders_next: Vec<u32>,
}

impl Interval {
    pub fn width(&self) -> Option<i64> {
        self.max.map(|m| m - self.min)
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub hidden: usize,
    pub intervals: Vec<Interval>,
    /// Hidden cells narrowed more than the policy allows, narrowest first.
    pub failures: Vec<Interval>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Receives each table found: the unknowns it sets to other than their true values, by
/// variable, sorted (the rest keep theirs).
type Witness<'a> = dyn FnMut(&[(usize, i64)]) + 'a;

/// An interval found: its lower and upper end (`None`: unbounded), whether it is exact, and
/// the published cell that caps it too narrowly, if one does.
type Found = (i64, Option<i64>, bool, Option<usize>);

/// How many tables moving a cell away from its true value are kept on each side, each for a
/// different set of schools.
const MOVES: usize = 8;

/// Tables found that move one hidden cell away from its true value: the value each gives it
/// and the schools whose unknowns it changed. An insider who knows one school's true figures
/// rules out every table that changes that school, so what the cell can take for them is
/// what the other tables give.
#[derive(Debug, Clone, Default)]
struct Moves {
    low: Vec<Move>,
    high: Vec<Move>,
}

/// A value a table gives a cell, and the schools (sorted) whose unknowns it changed.
type Move = (i64, Vec<u32>);

/// A cell's interval against an outsider, and its failure against an insider if it has one.
type Solved = (Found, Option<Interval>);

impl Moves {
    fn add(&mut self, truth: i64, value: i64, schools: &[u32]) {
        let low = value < truth;
        if value == truth {
            return;
        }
        let further = |a: i64, b: i64| if low { a < b } else { a > b };
        let side = if low { &mut self.low } else { &mut self.high };
        match side.iter_mut().find(|(_, s)| s == schools) {
            Some(r) if further(value, r.0) => r.0 = value,
            Some(_) => return,
            None => side.push((value, schools.to_vec())),
        }
        // Furthest first; among as far, the fewest schools (ruled out by fewer insiders).
        side.sort_by(|a, b| {
            if further(a.0, b.0) {
                std::cmp::Ordering::Less
            } else if further(b.0, a.0) {
                std::cmp::Ordering::Greater
            } else {
                a.1.len().cmp(&b.1.len())
            }
        });
        side.truncate(MOVES);
    }

    /// The range the tables that leave the schools `known` alone give the cell.
    fn without(&self, truth: i64, known: &[u32]) -> (i64, i64) {
        let keep = |r: &&Move| known.iter().all(|k| r.1.binary_search(k).is_err());
        let lo = self.low.iter().filter(keep).map(|r| r.0).min();
        let hi = self.high.iter().filter(keep).map(|r| r.0).max();
        (
            lo.unwrap_or(truth).min(truth),
            hi.unwrap_or(truth).max(truth),
        )
    }

    /// Every school some kept table changed.
    fn schools(&self) -> BTreeSet<u32> {
        self.low
            .iter()
            .chain(&self.high)
            .flat_map(|r| r.1.iter().copied())
            .collect()
    }
}

/// Which programme a question is asked of: a scope's unknowns, or the whole release's linked
/// to a cell's (its components).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Over {
    Scope(Vec<usize>),
    Whole(Vec<usize>),
}

/// How many programmes of scopes are kept at once (those of the whole release all are: a
/// release has few components).
const KEPT_SCOPES: usize = 64;

/// The programmes solved so far, kept solved: the next question of the same programme, for
/// another cell or an insider, starts from its last basis.
#[derive(Default)]
struct Kept(HashMap<Over, Built>);

/// A programme built: its unknowns by column (sorted), the constraint of each row, and the
/// programme.
struct Built {
    cols: Vec<usize>,
    rows: Vec<usize>,
    lp: Lp,
}

/// A programme to solve for a cell: every unknown outside `scope` (`None`: the whole
/// release) and every one in `hold` held at its true value; `exact` when what it leaves free
/// is everything linked to the cell (its interval is the attacker's).
struct Programme {
    scope: Option<Vec<usize>>,
    hold: Vec<usize>,
    exact: bool,
}

/// Whether a programme over `scope` (`None`: the whole release) holding the unknowns `hold`
/// (sorted) at their true values leaves the unknown `v` free.
fn left_free(scope: Option<&[usize]>, hold: &[usize], v: usize) -> bool {
    scope.is_none_or(|s| s.binary_search(&v).is_ok()) && hold.binary_search(&v).is_err()
}

/// One published relation over the unknowns: their sum equals (or, for a bound, is at
/// least) `rhs`.
struct Constraint {
    /// The release cell it publishes.
    cell: usize,
    /// That cell's place in key order, so that ties are broken whatever order cells come in.
    rank: usize,
    vars: Vec<usize>,
    rhs: i64,
    eq: bool,
    /// The sum of its unknowns' true values.
    truth: i64,
}

/// The published system over *variables*: the inner cells that lie in exactly the same cells
/// (e.g. the grades of one stage at one school) are one variable, their sum, which changes no
/// interval. After presolve, variables that published cells fix (a published cell with one
/// unknown left fixes it, repeatedly) are substituted out, and the remaining unknowns are
/// grouped into components linked by the constraints they share.
struct System {
    /// The variable of each inner cell.
    var_of: Vec<usize>,
    /// Each variable's true value.
    value: Vec<i64>,
    /// Smallest published value containing each variable (an upper bound).
    cap: Vec<f64>,
    fixed: Vec<Option<i64>>,
    /// Each variable's locality per level (see [`Release::localities`]).
    locality: Vec<Vec<u32>>,
    constraints: Vec<Constraint>,
    /// The constraints each variable appears in.
    touching: Vec<Vec<usize>>,
    /// Component of each variable.
    comp: Vec<usize>,
    /// Constraints of each component.
    by_comp: HashMap<usize, Vec<usize>>,
    /// Per level, the unknown variables of each locality.
    members: Vec<HashMap<u32, Vec<usize>>>,
    /// Per level and measure (`T|minst50`), the localities whose own cell of that measure is
    /// hidden (a school's at level 0, a municipality's at level 1).
    hidden: Vec<HashMap<String, BTreeSet<u32>>>,
    /// The programmes built so far, kept solved for every cell after (see [`System::optimum`]).
    kept: RefCell<Kept>,
    /// The published cells the optima found rest on, while recorded (`Some`).
    binding: RefCell<Option<Vec<usize>>>,
}

/// The distinct variables, sorted, of the inner cells `inner`.
fn vars_of(var_of: &[usize], inner: &[usize]) -> Vec<usize> {
    let set: BTreeSet<usize> = inner.iter().map(|&i| var_of[i]).collect();
    set.into_iter().collect()
}

/// The unknown variables of `vars`, and the sum of the fixed ones.
fn split(fixed: &[Option<i64>], vars: &[usize]) -> (Vec<usize>, i64) {
    let free = vars
        .iter()
        .copied()
        .filter(|&i| fixed[i].is_none())
        .collect();
    (free, vars.iter().filter_map(|&i| fixed[i]).sum())
}

impl System {
    fn new(release: &Release, status: &[Status], rules: &Rules) -> System {
        // Variables: inner cells with the same cells (and localities) are summed.
        let n = release.inner();
        let mut cells_of: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (k, c) in release.cells.iter().enumerate() {
            for &i in &c.inner {
                cells_of[i].push(k as u32);
            }
        }
        for (i, cells) in cells_of.iter_mut().enumerate() {
            cells.extend(release.localities.iter().map(|l| l[i]));
        }
        let mut class: HashMap<&[u32], usize> = HashMap::new();
        let var_of: Vec<usize> = cells_of
            .iter()
            .map(|c| {
                let next = class.len();
                *class.entry(c.as_slice()).or_insert(next)
            })
            .collect();
        let nv = class.len();
        let mut value = vec![0; nv];
        let mut locality = vec![vec![0; nv]; release.localities.len()];
        for (i, &v) in var_of.iter().enumerate() {
            value[v] += release.values[i];
            for (level, l) in release.localities.iter().enumerate() {
                locality[level][v] = l[i];
            }
        }
        let vars = |inner: &[usize]| vars_of(&var_of, inner);

        let mut fixed: Vec<Option<i64>> = vec![None; nv];
        let mut cap = vec![UNBOUNDED; nv];
        let published: Vec<(Vec<usize>, i64)> = release
            .cells
            .iter()
            .zip(status)
            .filter(|(_, s)| **s == Status::Published)
            .map(|(c, _)| (vars(&c.inner), c.value))
            .collect();
        for (vs, v) in &published {
            for &i in vs {
                cap[i] = cap[i].min(*v as f64);
            }
            if *v == 0 {
                vs.iter().for_each(|&i| fixed[i] = Some(0));
            }
        }
        loop {
            let mut changed = false;
            for (vs, v) in &published {
                let (free, known) = split(&fixed, vs);
                if free.len() == 1 {
                    fixed[free[0]] = Some(v - known);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let mut by_key: Vec<usize> = (0..release.cells.len()).collect();
        by_key.sort_by(|&a, &b| release.cells[a].key.cmp(&release.cells[b].key));
        let mut rank = vec![0; by_key.len()];
        for (r, &k) in by_key.iter().enumerate() {
            rank[k] = r;
        }
        let mut constraints = Vec::new();
        for (k, (c, s)) in release.cells.iter().zip(status).enumerate() {
            let (eq, rhs) = match s {
                Status::Published => (true, c.value),
                Status::Bound => (false, c.base - rules.dominance),
                _ => continue,
            };
            let (free, known) = split(&fixed, &vars(&c.inner));
            if !free.is_empty() {
                constraints.push(Constraint {
                    cell: k,
                    rank: rank[k],
                    truth: free.iter().map(|&v| value[v]).sum(),
                    vars: free,
                    rhs: rhs - known,
                    eq,
                });
            }
        }
        let mut touching = vec![Vec::new(); nv];
        let mut parent: Vec<usize> = (0..nv).collect();
        fn find(p: &mut [usize], mut x: usize) -> usize {
            while p[x] != x {
                p[x] = p[p[x]];
                x = p[x];
            }
            x
        }
        for (k, c) in constraints.iter().enumerate() {
            for &i in &c.vars {
                touching[i].push(k);
                let (a, b) = (find(&mut parent, c.vars[0]), find(&mut parent, i));
                parent[a] = b;
            }
        }
        let comp: Vec<usize> = (0..nv).map(|i| find(&mut parent, i)).collect();
        let mut by_comp: HashMap<usize, Vec<usize>> = HashMap::new();
        for (k, c) in constraints.iter().enumerate() {
            by_comp.entry(comp[c.vars[0]]).or_default().push(k);
        }
        let mut members: Vec<HashMap<u32, Vec<usize>>> = vec![HashMap::new(); locality.len()];
        for (level, l) in locality.iter().enumerate() {
            for v in (0..nv).filter(|&v| fixed[v].is_none()) {
                members[level].entry(l[v]).or_default().push(v);
            }
        }
        let mut hidden: Vec<HashMap<String, BTreeSet<u32>>> = vec![HashMap::new(); locality.len()];
        for (c, s) in release.cells.iter().zip(status) {
            let level = match CellKey::parse(&c.key).map(|k| (k.level, k.measure)) {
                Some((Level::School, m)) => Some((0, m)),
                Some((Level::Municipality, m)) => Some((1, m)),
                _ => None,
            };
            if let (Some((level, measure)), Some(&first), false) =
                (level, c.inner.first(), s.published())
                && level < locality.len()
            {
                hidden[level]
                    .entry(measure.to_string())
                    .or_default()
                    .insert(locality[level][var_of[first]]);
            }
        }
        System {
            var_of,
            value,
            cap,
            fixed,
            locality,
            constraints,
            touching,
            comp,
            by_comp,
            members,
            hidden,
            kept: RefCell::default(),
            binding: RefCell::default(),
        }
    }

    /// The variables of a cell over `inner`.
    fn vars(&self, inner: &[usize]) -> Vec<usize> {
        vars_of(&self.var_of, inner)
    }

    /// The scopes to search for a cell (`key`) with unknowns `free`, smallest first: per
    /// level, its own localities; then with those under the same parent (at the coarsest
    /// level: any other) whose cell of the same measure is hidden too, the
    /// [`HIDDEN_SIBLINGS`] smallest, in two steps (where an attacker's room lies: a pupil moved between
    /// two hidden cells of one published sum); then with each of the [`SIBLINGS`] smallest
    /// others, and all of those. `None` is the whole release.
    fn scopes(&self, key: &str, free: &[usize]) -> Vec<Option<Vec<usize>>> {
        let measure = CellKey::parse(key).map(|k| k.measure);
        let levels = self.locality.len();
        // Unknowns that share no published sum with the cell's (another component, such as
        // a month's actions beside its pupil counts) do not move it: a scope leaves them out.
        let comps: BTreeSet<usize> = free.iter().map(|&v| self.comp[v]).collect();
        let linked = |v: &usize| comps.contains(&self.comp[*v]);
        let own = |level: usize| -> BTreeSet<u32> {
            free.iter().map(|&v| self.locality[level][v]).collect()
        };
        let gather = |level: usize, ls: &BTreeSet<u32>| -> Vec<usize> {
            let mut vs: Vec<usize> = ls
                .iter()
                .flat_map(|l| self.members[level].get(l).into_iter().flatten())
                .copied()
                .filter(linked)
                .collect();
            vs.sort_unstable();
            vs
        };
        let mut out: Vec<Option<Vec<usize>>> = Vec::new();
        let mut push = |scope: Vec<usize>| {
            if out.last().is_none_or(|last| last.as_ref() != Some(&scope)) {
                out.push(Some(scope));
            }
        };
        for level in 0..levels {
            let mine = own(level);
            push(gather(level, &mine));
            let parents = (level + 1 < levels).then(|| own(level + 1));
            let mut siblings: Vec<(usize, u32)> = self.members[level]
                .iter()
                .filter(|(l, vs)| {
                    !mine.contains(l)
                        && parents
                            .as_ref()
                            .is_none_or(|p| p.contains(&self.locality[level + 1][vs[0]]))
                })
                .map(|(l, vs)| (vs.iter().filter(|v| linked(v)).count(), *l))
                .filter(|(n, _)| *n > 0)
                .collect();
            siblings.sort_unstable();
            if let Some(hidden) = measure.and_then(|m| self.hidden[level].get(m)) {
                let hidden: Vec<u32> = siblings
                    .iter()
                    .filter(|(_, l)| hidden.contains(l))
                    .map(|(_, l)| *l)
                    .collect();
                let mut last = 0;
                for n in HIDDEN_SIBLINGS.map(|n| n.min(hidden.len())) {
                    if n > last {
                        let mut with = mine.clone();
                        with.extend(&hidden[..n]);
                        push(gather(level, &with));
                        last = n;
                    }
                }
            }
            siblings.truncate(SIBLINGS);
            for (_, s) in &siblings {
                let mut with = mine.clone();
                with.insert(*s);
                push(gather(level, &with));
            }
            // Then all of them together: room that no single one has.
            if siblings.len() > 1 {
                let mut with = mine.clone();
                with.extend(siblings.iter().map(|(_, s)| *s));
                push(gather(level, &with));
            }
        }
        out.push(None);
        out
    }

    /// Scopes of the cell's own locality with one other whose cell of the same measure is
    /// hidden too, at the cell's own level (a school's: another school of its municipality;
    /// a municipality's: another of its county), smallest first. A table found in one moves
    /// those two localities only, so pairs with two different partners prove a cell against
    /// every insider.
    fn pairs(&self, key: &str, free: &[usize]) -> Vec<Vec<usize>> {
        let Some(measure) = CellKey::parse(key).map(|k| k.measure) else {
            return Vec::new();
        };
        let levels = self.locality.len();
        let Some(level) = (0..levels).find(|&l| {
            let first = free.first().map(|&v| self.locality[l][v]);
            free.iter().all(|&v| Some(self.locality[l][v]) == first)
        }) else {
            return Vec::new();
        };
        let (Some(&first), Some(hidden)) = (free.first(), self.hidden[level].get(measure)) else {
            return Vec::new();
        };
        let own = self.locality[level][first];
        let parent = (level + 1 < levels).then(|| self.locality[level + 1][first]);
        let comps: BTreeSet<usize> = free.iter().map(|&v| self.comp[v]).collect();
        let linked = |v: &&usize| comps.contains(&self.comp[**v]);
        let mut partners: Vec<(usize, u32)> = hidden
            .iter()
            .filter(|&&l| l != own)
            .filter_map(|l| Some((l, self.members[level].get(l)?)))
            .filter(|(_, vs)| {
                parent.is_none_or(|p| {
                    vs.first()
                        .is_some_and(|&v| self.locality[level + 1][v] == p)
                })
            })
            .map(|(l, vs)| (vs.iter().filter(linked).count(), *l))
            .filter(|(n, _)| *n > 0)
            .collect();
        partners.sort_unstable();
        let mine: Vec<usize> = self.members[level]
            .get(&own)
            .into_iter()
            .flatten()
            .filter(linked)
            .copied()
            .collect();
        partners
            .iter()
            .take(PAIRS)
            .map(|(_, l)| {
                let mut scope = mine.clone();
                scope.extend(self.members[level][l].iter().filter(linked));
                scope.sort_unstable();
                scope
            })
            .collect()
    }

    /// The school of a variable (its locality at the finest level), if the release has one.
    fn school(&self, v: usize) -> Option<u32> {
        self.locality.first().map(|l| l[v])
    }

    /// The schools whose unknowns a table found (by variable, sorted) sets to other than
    /// their true values.
    fn moved(&self, witness: &[(usize, i64)]) -> Vec<u32> {
        let set: BTreeSet<u32> = witness
            .iter()
            .filter(|(v, x)| *x != self.value[*v])
            .filter_map(|(v, _)| self.school(*v))
            .collect();
        set.into_iter().collect()
    }

    /// `scopes` with every unknown of `schools` (sorted) held at its true value: each scope
    /// with the unknowns of those schools it holds (`None`, the whole release, holds those
    /// linked to the cell's, `free`), and whether it stands for the whole release. The first
    /// `tried` scopes were solved without holding them: those before the last found too
    /// little, and the last finds nothing new if it holds none of their unknowns, so they are
    /// left out. Several insiders at once are tried in that last scope alone (a set it cannot
    /// prove is halved), one insider in it and the [`INSIDER_SCOPES`] after it, and then the
    /// whole release's (when the depth asks for it).
    fn scopes_without(
        &self,
        free: &[usize],
        scopes: Vec<Option<Vec<usize>>>,
        schools: &[u32],
        tried: usize,
    ) -> Vec<Programme> {
        let insider = |v: &usize| {
            self.school(*v)
                .is_some_and(|s| schools.binary_search(&s).is_ok())
        };
        let mut out: Vec<Programme> = Vec::new();
        // The unknowns each programme leaves free, to skip one that repeats the last.
        let mut last: Option<Vec<usize>> = None;
        for (n, scope) in scopes.into_iter().enumerate() {
            let (hold, free_vars): (Vec<usize>, Vec<usize>) = match &scope {
                // A scope before the one that proved the cell proved nothing: without
                // the insiders' unknowns it finds less still.
                Some(_) if n + 1 < tried => continue,
                // Several insiders at once are tried in the scope that proved the cell only.
                Some(_) if schools.len() > 1 && n + 1 > tried.max(1) => continue,
                // One insider: the proving scope and the next few, larger ones.
                Some(_) if n + 1 > tried.max(1) + INSIDER_SCOPES => continue,
                Some(s) if n < tried && !s.iter().any(insider) => continue,
                Some(s) => s.iter().partition(|v| insider(v)),
                None => {
                    let comps: BTreeSet<usize> = free.iter().map(|&v| self.comp[v]).collect();
                    (0..self.value.len())
                        .filter(|&v| self.fixed[v].is_none() && comps.contains(&self.comp[v]))
                        .partition(insider)
                }
            };
            let exact = scope.is_none();
            if last.as_ref() != Some(&free_vars) {
                out.push(Programme { scope, hold, exact });
                last = Some(free_vars);
            } else if exact && let Some(last) = out.last_mut() {
                last.exact = true;
            }
        }
        out
    }

    /// The smallest and largest sum of `target` over the non-negative integer points of the
    /// published system, with every unknown outside `scope` (`None`: nothing) and every one
    /// in `hold` held at its true value. The smallest is not sought below `low`, a value
    /// already found, nor at all when `enough` is given and the largest is that far above the
    /// true value: the truth, which no attacker can rule out, is then the smallest given.
    ///
    /// Every solution found is a table the attacker cannot rule out; it goes to `witness` (the
    /// unknowns it sets, by variable) when it checks out against every published sum.
    fn bounds(
        &self,
        target: &[usize],
        scope: Option<&[usize]>,
        hold: &[usize],
        (low, enough): (i64, Option<i64>),
        witness: &mut Witness,
    ) -> Result<(i64, Option<i64>), lp::Error> {
        let (free, known) = split(&self.fixed, target);
        if free.is_empty() {
            return Ok((known, Some(known)));
        }
        let inside = |v: usize| left_free(scope, hold, v);
        let known = known
            + free
                .iter()
                .filter(|&&v| !inside(v))
                .map(|&v| self.value[v])
                .sum::<i64>();
        let max = self
            .optimum(&free, scope, hold, true, witness)?
            .filter(|v| *v < UNBOUNDED * 0.5)
            .map(|v| known + v.round() as i64);
        let truth = known
            + free
                .iter()
                .filter(|&&v| inside(v))
                .map(|&v| self.value[v])
                .sum::<i64>();
        let min = if enough.is_some_and(|w| max.is_none_or(|m| m - truth >= w)) {
            truth
        } else if low <= known {
            // The unknowns in scope are never negative: a low end at `known` needs no
            // programme.
            low
        } else {
            known
                + self
                    .optimum(&free, scope, hold, false, witness)?
                    .map_or(0, |v| v.round() as i64)
        };
        Ok((min, max))
    }

    /// The optimum of the sum of the unknowns `free` (a cell's) that a programme over `scope`
    /// holding `hold` at their true values leaves free (`None`: unbounded). Each programme
    /// (a scope's, or the whole release's components linked to the cell) is built once and
    /// kept solved: every question asked of it (another cell, the other direction, an
    /// insider's unknowns held) starts from its last basis. The published system's linear
    /// programmes have whole-number optima (their vertices are); one that does not is solved
    /// again in whole numbers.
    fn optimum(
        &self,
        free: &[usize],
        scope: Option<&[usize]>,
        hold: &[usize],
        maximise: bool,
        witness: &mut Witness,
    ) -> Result<Option<f64>, lp::Error> {
        let over = match scope {
            Some(s) => Over::Scope(s.to_vec()),
            None => Over::Whole(
                free.iter()
                    .map(|&v| self.comp[v])
                    .collect::<BTreeSet<usize>>()
                    .into_iter()
                    .collect(),
            ),
        };
        let sum: f64;
        let found: Vec<(usize, i64)> = {
            let mut kept = self.kept.borrow_mut();
            if !kept.0.contains_key(&over) {
                if matches!(over, Over::Scope(_))
                    && kept
                        .0
                        .keys()
                        .filter(|k| matches!(k, Over::Scope(_)))
                        .count()
                        >= KEPT_SCOPES
                {
                    kept.0.retain(|k, _| matches!(k, Over::Whole(_)));
                }
                let built = self.programme(&over, false);
                kept.0.insert(over.clone(), built);
            }
            let Built { cols, rows, lp } = kept.0.get_mut(&over).expect("just kept");
            let col = |v: &usize| cols.binary_search(v).ok();
            let objective: Vec<usize> = free
                .iter()
                .filter(|v| hold.binary_search(v).is_err())
                .filter_map(col)
                .collect();
            let held: Vec<(usize, f64)> = hold
                .iter()
                .filter_map(|v| Some((col(v)?, self.value[*v] as f64)))
                .collect();
            let whole = |x: &[f64]| x.iter().all(|x| (x - x.round()).abs() < 1e-6);
            let x = match lp.solve(&objective, &held, maximise)? {
                None => return Ok(None),
                Some(x) if whole(&x) => {
                    if let Some(cells) = self.binding.borrow_mut().as_mut() {
                        cells.extend(lp.binding().iter().map(|&r| self.constraints[rows[r]].cell));
                    }
                    x
                }
                Some(_) => {
                    let mut integer = self.programme(&over, true).lp;
                    match integer.solve(&objective, &held, maximise)? {
                        None => return Ok(None),
                        Some(x) => x,
                    }
                }
            };
            // The cell's unknowns the programme left free (a held one is counted as known).
            sum = objective.iter().map(|&c| x[c].round()).sum();
            // Only the unknowns the table moves: the rest keep their true values.
            cols.iter()
                .zip(x)
                .map(|(&v, x)| (v, x.round() as i64))
                .filter(|&(v, x)| x != self.value[v])
                .collect()
        };
        if self.feasible(&found) {
            witness(&found);
        }
        Ok(Some(sum))
    }

    /// The programme over a scope's unknowns (every one outside held at its true value), or
    /// over the whole release's components: its unknowns by column (sorted), and its published
    /// sums over them (in whole numbers if `integer`).
    fn programme(&self, over: &Over, integer: bool) -> Built {
        let (cols, cons): (Vec<usize>, Vec<usize>) = match over {
            Over::Scope(s) => {
                let cons: BTreeSet<usize> = s
                    .iter()
                    .flat_map(|&v| self.touching[v].iter().copied())
                    .collect();
                (s.clone(), cons.into_iter().collect())
            }
            Over::Whole(comps) => {
                let cols = (0..self.value.len())
                    .filter(|&v| {
                        self.fixed[v].is_none() && comps.binary_search(&self.comp[v]).is_ok()
                    })
                    .collect();
                let cons = comps
                    .iter()
                    .flat_map(|c| self.by_comp.get(c).into_iter().flatten().copied())
                    .collect();
                (cols, cons)
            }
        };
        let (rows, lp_rows): (Vec<usize>, Vec<Row>) = cons
            .iter()
            .filter_map(|&k| {
                let c = &self.constraints[k];
                let (inside, outside): (Vec<usize>, Vec<usize>) =
                    c.vars.iter().partition(|v| cols.binary_search(v).is_ok());
                if inside.is_empty() {
                    return None;
                }
                let held: i64 = outside.iter().map(|&v| self.value[v]).sum();
                let row = Row {
                    cols: inside
                        .iter()
                        .map(|v| cols.binary_search(v).expect("inside"))
                        .collect(),
                    rhs: (c.rhs - held) as f64,
                    eq: c.eq,
                };
                Some((k, row))
            })
            .unzip();
        let upper = cols.iter().map(|&v| self.cap[v]).collect();
        Built {
            cols,
            rows,
            lp: Lp::new(upper, lp_rows, integer),
        }
    }

    /// A variable's value in `witness` (sorted by variable), else its true value.
    fn value_in(&self, witness: &[(usize, i64)], v: usize) -> i64 {
        match witness.binary_search_by_key(&v, |(i, _)| *i) {
            Ok(k) => witness[k].1,
            Err(_) => self.value[v],
        }
    }

    /// Whether the unknowns set as in `witness`, the rest at their true values, give every
    /// published sum (and meet every bound) in non-negative whole numbers.
    fn feasible(&self, witness: &[(usize, i64)]) -> bool {
        // Each published sum the table changes, by how much: the rest hold as the truth does.
        let mut change: HashMap<usize, i64> = HashMap::new();
        for &(v, x) in witness {
            for &k in &self.touching[v] {
                *change.entry(k).or_default() += x - self.value[v];
            }
        }
        witness.iter().all(|(_, x)| *x >= 0)
            && change.iter().all(|(&k, d)| {
                let c = &self.constraints[k];
                let sum = c.truth + d;
                if c.eq { sum == c.rhs } else { sum >= c.rhs }
            })
    }

    /// The smallest published sum over a superset of the unknowns `free`, a bound on theirs,
    /// and the cell that publishes it.
    fn cap(&self, free: &[usize]) -> Option<(i64, usize)> {
        let first = *free.first()?;
        self.touching[first]
            .iter()
            .map(|&k| &self.constraints[k])
            .filter(|c| c.eq && free.iter().all(|v| c.vars.binary_search(v).is_ok()))
            .min_by_key(|c| (c.rhs, c.rank))
            .map(|c| (c.rhs, c.cell))
    }

    /// The interval of a cell over `inner`: the union of what the scopes find, stopping as
    /// soon as it is wide enough (`width` values apart); else, unless `depth` is
    /// [`Depth::Local`], the exact one. [`Depth::Exact`] solves only the whole release.
    ///
    /// `seen` is the range the cell already takes in tables found before (its true value at
    /// least); `witness` receives every table found (see [`System::bounds`]).
    ///
    /// With `without` (insiders' schools, sorted, and how many scopes the outsider's interval
    /// tried), every unknown of those schools is held at its true value in every scope, the
    /// whole release's too: an interval that holds for an attacker who knows any one of those
    /// schools' figures (all of them: it lies inside each one's). A scope already tried that
    /// holds none of their unknowns finds nothing new.
    ///
    /// Returns the interval and how many scopes it tried.
    #[allow(clippy::too_many_arguments)]
    fn interval(
        &self,
        key: &str,
        target: &[usize],
        seen: (i64, Option<i64>),
        width: i64,
        depth: Depth,
        without: Option<(&[u32], usize)>,
        witness: &mut Witness,
    ) -> (Found, usize) {
        let (free, known) = split(&self.fixed, target);
        // A published cell holding every unknown of the cell caps their sum: when that alone
        // narrows the cell too far, no programme can widen it (a repair needs no more).
        if let Some(cap) = self
            .cap(&free)
            .filter(|c| depth == Depth::Local && c.0 < width)
        {
            return ((known, Some(known + cap.0), false, Some(cap.1)), 0);
        }
        let (mut lo, mut hi) = seen;
        let scopes = match depth {
            Depth::Exact => vec![None],
            _ if hi.is_none_or(|h| h - lo >= width) => return ((lo, hi, false, None), 0),
            Depth::Whole => self.scopes(key, &free),
            Depth::Local => {
                let mut s = self.scopes(key, &free);
                if s.len() > 1 {
                    s.pop();
                }
                s
            }
        };
        // Each scope with whether it is the whole release (its interval exact).
        let programmes: Vec<Programme> = match without {
            None => scopes
                .into_iter()
                .map(|scope| Programme {
                    exact: scope.is_none(),
                    scope,
                    hold: Vec::new(),
                })
                .collect(),
            Some((schools, tried)) => self.scopes_without(&free, scopes, schools, tried),
        };
        for (n, Programme { scope, hold, exact }) in programmes.into_iter().enumerate() {
            let tried = n + 1;
            let started = std::time::Instant::now();
            let r = self.bounds(
                target,
                scope.as_deref(),
                &hold,
                match (exact, without) {
                    // Against insiders only whether the cell holds counts (a failure is exact).
                    (true, Some(_)) => (i64::MAX, Some(width)),
                    (true, None) => (i64::MAX, None),
                    (false, _) => (lo, None),
                },
                witness,
            );
            tracing::debug!(
                cell = %key,
                scope = scope.as_ref().map_or(self.value.len(), |s| s.len()),
                held = hold.len(),
                insiders = ?without.map(|w| w.0),
                ms = started.elapsed().as_millis() as u64,
                found = ?r.as_ref().ok(),
                "disclosure audit: programme"
            );
            match r {
                Ok((a, b)) if exact => return ((a, b, true, None), tried),
                Ok((a, b)) => {
                    lo = lo.min(a);
                    hi = hi.zip(b).map(|(h, b)| h.max(b));
                    if hi.is_none_or(|h| h - lo >= width) {
                        return ((lo, hi, false, None), tried);
                    }
                }
                // The true values satisfy every constraint, so this is the solver giving up:
                // over everything, count the cell as exposed (an audit never passes on a
                // programme it could not solve); in a scope, try the next.
                Err(e) if exact => {
                    tracing::warn!(cell = %key, error = %e, "disclosure audit: programme not solved");
                    let value = known + free.iter().map(|&v| self.value[v]).sum::<i64>();
                    return ((value, Some(value), true, None), tried);
                }
                Err(_) => {}
            }
        }
        ((lo, hi, false, None), usize::MAX)
    }
}

/// The interval of every cell hidden for its own sake (by a primary rule; a secondary
/// suppression protects others and needs no protection itself) or shown as a bound, and the
/// ones narrower than the rules allow (a bound: computable exactly). A figure under several
/// names is solved once.
pub fn audit(release: &Release, status: &[Status], rules: &Rules) -> Report {
    audit_cells(
        release,
        status,
        rules,
        Depth::Whole,
        None,
        &HashSet::new(),
        &mut Tables::default(),
    )
}

/// The code of the school a locality id stands for, from a school cell over it.
fn school_code(release: &Release, system: &System, school: u32) -> String {
    release
        .cells
        .iter()
        .filter(|c| {
            c.inner
                .first()
                .and_then(|&i| system.school(system.var_of[i]))
                == Some(school)
        })
        .find_map(|c| {
            CellKey::parse(&c.key)
                .filter(|k| k.level == Level::School)
                .map(|k| k.code.to_string())
        })
        .unwrap_or_else(|| format!("#{school}"))
}

/// How far the audit goes for a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Local scopes and tables found for other cells only: a cell they cannot prove safe
    /// counts as a failure (quicker, and never passes a cell the full audit fails).
    Local,
    /// Local proofs first, then the whole release for a cell they cannot prove safe.
    Whole,
    /// Every cell's exact interval over the whole release, no local proofs (slow; for checks).
    Exact,
}

/// A release under one set of statuses as the attacker sees it: the published system built
/// once, and its programmes kept solved, for every question asked of it (a repair round's
/// audit and the exact checks against insiders after it: each question after the first of a
/// programme starts from its last basis).
///
/// The statuses are copied: a repair goes on hiding cells while it asks. What it hides after
/// the copy only narrows the attacker's view, so a cell proven safe here stays safe.
pub struct Round<'a> {
    release: &'a Release,
    rules: &'a Rules,
    status: Vec<Status>,
    system: System,
}

impl<'a> Round<'a> {
    pub fn new(release: &'a Release, status: &[Status], rules: &'a Rules) -> Round<'a> {
        Round {
            release,
            rules,
            status: status.to_vec(),
            system: System::new(release, status, rules),
        }
    }

    /// The schools among `school` and `others` (localities at the finest level) against whose
    /// principal the hidden cell `cell` keeps the interval the rules ask for, solved exactly over
    /// the whole release: first against all of them at once (an attacker who knows every one of
    /// those schools' true figures, whose interval lies inside each one's), else against each
    /// half of them, and so on down to single schools. For the repair, before it hides more for
    /// a cell the local scopes could not prove: the room may lie further away than they reach
    /// (a school's figure bounded by its municipality's less the insider's own, where the
    /// municipality's moves in the county's sum). The others are the schools the audit would
    /// have tried next, one repair round each.
    ///
    /// With the schools, the published cells the exact interval against `school`'s principal
    /// rests on when it is too narrow (the constraints binding at its ends): the cells whose
    /// hiding can widen it.
    pub fn proven_against(
        &self,
        cell: usize,
        school: u32,
        others: &[u32],
    ) -> (Vec<u32>, Vec<usize>) {
        let (release, status, rules, system) =
            (self.release, &self.status[..], self.rules, &self.system);
        let mut all: Vec<u32> = others.iter().copied().chain([school]).collect();
        all.sort_unstable();
        all.dedup();
        let width = match status[cell] {
            Status::Published | Status::Secondary | Status::OwnSchoolOnly => {
                return (all, Vec::new());
            }
            Status::Bound => 1,
            _ => 2 * rules.protection,
        };
        let h = &release.cells[cell];
        let vars = system.vars(&h.inner);
        let holds = |schools: &[u32]| {
            let ((min, max, _, _), _) = system.interval(
                &h.key,
                &vars,
                (h.value, Some(h.value)),
                width,
                Depth::Exact,
                Some((schools, 0)),
                &mut |_| {},
            );
            tracing::debug!(cell = %h.key, ?schools, min, max, "disclosure: exact against insiders");
            max.is_none_or(|m| m - min >= width)
        };
        // A set that does not hold is halved, down to single schools: one school whose
        // figures narrow the cell leaves the rest proven in the same round.
        let mut proven = Vec::new();
        let mut binding = Vec::new();
        let mut sets = vec![all];
        while let Some(set) = sets.pop() {
            // Only the check against `school` alone records what its optima rest on.
            let alone = set == [school];
            if alone {
                *system.binding.borrow_mut() = Some(Vec::new());
            }
            let held = holds(&set);
            let rests_on = system.binding.borrow_mut().take();
            if held {
                proven.extend(set);
            } else if set.len() > 1 {
                let (a, b) = set.split_at(set.len() / 2);
                sets.push(b.to_vec());
                sets.push(a.to_vec());
            } else if alone {
                binding = rests_on.unwrap_or_default();
            }
        }
        proven.sort_unstable();
        binding.sort_unstable();
        binding.dedup();
        binding.retain(|&c| status[c] == Status::Published);
        (proven, binding)
    }
}

/// The tables found by the audits of a release, by cell: the range each gives the cell and
/// the moves they make (see [`Moves`]). A table the attacker could not rule out stays one
/// when more cells are hidden, so a repair's next round starts from those of the rounds
/// before it rather than finding them again.
#[derive(Debug, Default)]
pub struct Tables(HashMap<usize, ((i64, Option<i64>), Moves)>);

/// The audit of the cells `only` (`None`: every cell; `hidden` counts those audited) to
/// `depth`. A release without localities has only the whole as its scope. A cell is not
/// searched again against an insider it is `proven` against (cell and school, see
/// [`Round::proven_against`]), so the search goes on to the next. It starts from the tables found
/// before (`tables`), and adds to them: the statuses must hide no less than they did when
/// those were found.
pub fn audit_cells(
    release: &Release,
    status: &[Status],
    rules: &Rules,
    depth: Depth,
    only: Option<&[usize]>,
    proven: &HashSet<(usize, u32)>,
    tables: &mut Tables,
) -> Report {
    Round::new(release, status, rules).audit_cells(depth, only, proven, tables)
}

impl Round<'_> {
    /// See [`audit_cells`].
    pub fn audit_cells(
        &self,
        depth: Depth,
        only: Option<&[usize]>,
        proven: &HashSet<(usize, u32)>,
        tables: &mut Tables,
    ) -> Report {
        let (release, status, rules, system) =
            (self.release, &self.status[..], self.rules, &self.system);
        let mut report = Report::default();
        let cells: Vec<usize> = match only {
            Some(only) => only.to_vec(),
            None => (0..release.cells.len()).collect(),
        };
        // The cells to audit, each with the width it needs: ± protection for a cell hidden by a
        // rule; a bound (which hides the few pupils outside it) must not be computable exactly; a
        // secondary suppression protects others and needs none.
        let mut targets: Vec<(usize, i64, Vec<usize>)> = Vec::new();
        for h in cells {
            let width = match status[h] {
                Status::Published => continue,
                Status::Secondary | Status::OwnSchoolOnly => 0,
                Status::Bound => 1,
                _ => 2 * rules.protection,
            };
            report.hidden += 1;
            if width > 0 {
                targets.push((h, width, system.vars(&release.cells[h].inner)));
            }
        }
        // The range each cell takes over the tables found so far: a programme solved for one cell
        // widens the others it moves, often enough to prove them without one of their own. With
        // it, the tables that moved each cell and the schools they changed, for the insiders.
        let (seen, moves): (Vec<(i64, Option<i64>)>, Vec<Moves>) = targets
            .iter()
            .map(|(h, _, _)| match tables.0.get(h) {
                Some((range, moves)) => (*range, moves.clone()),
                None => {
                    let v = release.cells[*h].value;
                    ((v, Some(v)), Moves::default())
                }
            })
            .unzip();
        let found = RefCell::new((seen, moves));
        // The targets over each variable: a table changes only those over what it moves.
        let mut over: HashMap<usize, Vec<usize>> = HashMap::new();
        for (t, (_, _, vars)) in targets.iter().enumerate() {
            for &v in vars {
                over.entry(v).or_default().push(t);
            }
        }
        let insiders = rules.insiders && depth != Depth::Exact && !release.localities.is_empty();
        // What a principal learns about others from a hidden cell is the cell less their own
        // school's part. Where that part is itself a published figure (a municipality's count
        // that is all the principal's own pupils beside the other school's published 0), the
        // principal learns nothing the public does not know.
        let published: HashSet<&[usize]> = if insiders {
            release
                .cells
                .iter()
                .zip(status)
                .filter(|(_, s)| s.published())
                .map(|(c, _)| c.inner.as_slice())
                .collect()
        } else {
            HashSet::new()
        };
        // The schools with a part in `inner` whose rest is published, found once per cell.
        let rest_published = |inner: &[usize]| -> BTreeSet<u32> {
            let schools = &release.localities[0];
            let within: BTreeSet<u32> = inner.iter().map(|&i| schools[i]).collect();
            within
                .into_iter()
                .filter(|&school| {
                    let rest: Vec<usize> = inner
                        .iter()
                        .copied()
                        .filter(|&i| schools[i] != school)
                        .collect();
                    published.contains(rest.as_slice())
                })
                .collect()
        };
        let mut solved: HashMap<(&[usize], i64), Solved> = HashMap::new();
        for (t, (h, width, vars)) in targets.iter().enumerate() {
            let cell = &release.cells[*h];
            let ((min, max, exact, capped_by), insider) = match solved
                .get(&(cell.inner.as_slice(), *width))
            {
                Some(found) => found.clone(),
                None => {
                    let mut witness = |w: &[(usize, i64)]| {
                        let schools = if insiders {
                            system.moved(w)
                        } else {
                            Vec::new()
                        };
                        let (seen, moves) = &mut *found.borrow_mut();
                        let mut moved: Vec<usize> = w
                            .iter()
                            .flat_map(|(v, _)| over.get(v).into_iter().flatten().copied())
                            .collect();
                        moved.sort_unstable();
                        moved.dedup();
                        for t in moved {
                            let (h, _, vs) = &targets[t];
                            let v: i64 = vs.iter().map(|&v| system.value_in(w, v)).sum();
                            let range = &mut seen[t];
                            range.0 = range.0.min(v);
                            range.1 = range.1.map(|h| h.max(v));
                            if insiders {
                                moves[t].add(release.cells[*h].value, v, &schools);
                            }
                        }
                    };
                    let first = found.borrow().0[t];
                    let (outsider, tried) =
                        system.interval(&cell.key, vars, first, *width, depth, None, &mut witness);
                    let passed = outsider.1.is_none_or(|m| m - outsider.0 >= *width);
                    // Proven against an outsider: now against each school's own principal
                    // whose figures the tables that proved it changed.
                    let mut insider = None;
                    if insiders && passed && outsider.1.is_some() {
                        let own: BTreeSet<u32> =
                            vars.iter().filter_map(|&v| system.school(v)).collect();
                        let excused = rest_published(&cell.inner);
                        // The schools whose principal could narrow the cell with the tables
                        // found so far: a principal knows their own school's figure.
                        let exposed = |width: i64| -> Vec<u32> {
                            let found = found.borrow();
                            let moves = &found.1[t];
                            moves
                                .schools()
                                .into_iter()
                                .filter(|s| !(own.len() == 1 && own.contains(s)))
                                .filter(|&s| !proven.contains(&(*h, s)))
                                .filter(|s| !excused.contains(s))
                                .filter(|&s| {
                                    let (lo, hi) = moves.without(cell.value, &[s]);
                                    hi - lo < width
                                })
                                .collect()
                        };
                        // Sorted: the schools come from a set.
                        let mut exposed_to = exposed(*width);
                        // Small programmes first: the cell's locality with one other.
                        if !exposed_to.is_empty() {
                            for pair in system.pairs(&cell.key, vars) {
                                // The truth satisfies every constraint: an error is the
                                // solver giving up, which proves nothing.
                                let _ = system.bounds(
                                    vars,
                                    Some(&pair),
                                    &[],
                                    (i64::MAX, None),
                                    &mut witness,
                                );
                                exposed_to = exposed(*width);
                                if exposed_to.is_empty() {
                                    break;
                                }
                            }
                        }
                        // Then an interval holding a whole set of them at their true values,
                        // which holds against each one of them; a set it cannot prove is
                        // halved, down to one insider's own interval.
                        let mut sets = vec![exposed_to];
                        while let Some(set) = sets.pop() {
                            let set: Vec<u32> = {
                                let now = exposed(*width);
                                set.into_iter().filter(|s| now.contains(s)).collect()
                            };
                            if set.is_empty() {
                                continue;
                            }
                            let (lo, hi) = found.borrow().1[t].without(cell.value, &set);
                            let (f, _) = system.interval(
                                &cell.key,
                                vars,
                                (lo, Some(hi)),
                                *width,
                                depth,
                                Some((&set, tried)),
                                &mut witness,
                            );
                            if f.1.is_none_or(|m| m - f.0 >= *width) {
                                continue;
                            }
                            if let [school] = set[..] {
                                let next = exposed(*width)
                                    .into_iter()
                                    .filter(|&s| s != school)
                                    .collect();
                                insider = Some(Interval {
                                    cell: *h,
                                    key: cell.key.clone(),
                                    value: cell.value,
                                    min: f.0,
                                    max: f.1,
                                    exact: f.2,
                                    capped_by: f.3,
                                    insider: Some(school_code(release, system, school)),
                                    insider_locality: Some(school),
                                    insiders_next: next,
                                });
                                break;
                            }
                            let (a, b) = set.split_at(set.len() / 2);
                            sets.push(b.to_vec());
                            sets.push(a.to_vec());
                        }
                    }
                    solved.insert((&cell.inner, *width), (outsider, insider.clone()));
                    (outsider, insider)
                }
            };
            let interval = Interval {
                cell: *h,
                key: cell.key.clone(),
                value: cell.value,
                min,
                max,
                exact,
                capped_by,
                insider: None,
                insider_locality: None,
                insiders_next: Vec::new(),
            };
            if interval.width().is_some_and(|w| w < *width) {
                report.failures.push(interval.clone());
            } else if let Some(insider) = insider {
                report.failures.push(insider);
            }
            report.intervals.push(interval);
        }
        let (seen, moves) = found.into_inner();
        for (((h, _, _), range), moves) in targets.iter().zip(seen).zip(moves) {
            tables.0.insert(*h, (range, moves));
        }
        report
            .failures
            .sort_by(|a, b| (a.width(), &a.key).cmp(&(b.width(), &b.key)));
        report
    }
}
