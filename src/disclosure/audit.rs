//! The attacker's view of a release: for every cell hidden by a primary rule, the smallest and
//! largest value it can have given everything published (exact cells, bounds, non-negative
//! whole numbers), by integer linear programming (good_lp with the pure-Rust microlp solver).
//! A release fails when any hidden cell can be narrowed to fewer than `2 × protection` pupils.
//!
//! Solving every hidden cell over a whole county (thousands of unknowns linked by the county's
//! band totals) is slow, so the audit searches locally first. Fixing every unknown outside a
//! scope at its true value leaves a smaller programme whose solutions are all tables the
//! attacker cannot rule out, so its interval lies inside the attacker's: once the intervals
//! found reach the required width the cell is proven safe. Scopes grow from the cell's own
//! school, to it and one other school of its municipality, to the municipality, and only a
//! cell still too narrow is solved over everything published (its exact interval).

use std::collections::{BTreeSet, HashMap};

use good_lp::{
    Expression, ResolutionError, Solution, SolverModel, Variable, microlp, variable, variables,
};
use serde::Serialize;

use super::{Release, Rules, Status};

/// How many other localities a cell's own is paired with at each level, smallest first.
const SIBLINGS: usize = 8;

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

/// An interval found: its lower and upper end (`None`: unbounded) and whether it is exact.
type Found = (i64, Option<i64>, bool);

/// One published relation over the unknowns: their sum equals (or, for a bound, is at
/// least) `rhs`.
struct Constraint {
    vars: Vec<usize>,
    rhs: i64,
    eq: bool,
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
        let mut constraints = Vec::new();
        for (c, s) in release.cells.iter().zip(status) {
            let (eq, rhs) = match s {
                Status::Published => (true, c.value),
                Status::Bound => (false, c.base - rules.dominance),
                _ => continue,
            };
            let (free, known) = split(&fixed, &vars(&c.inner));
            if !free.is_empty() {
                constraints.push(Constraint {
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
        }
    }

    /// The variables of a cell over `inner`.
    fn vars(&self, inner: &[usize]) -> Vec<usize> {
        vars_of(&self.var_of, inner)
    }

    /// The scopes to search for a cell with unknowns `free`, smallest first: per level, its
    /// own localities, then those with another locality under the same parent (at the coarsest
    /// level: any other), the [`SIBLINGS`] smallest. `None` is the whole release.
    fn scopes(&self, free: &[usize]) -> Vec<Option<Vec<usize>>> {
        let levels = self.locality.len();
        let own = |level: usize| -> BTreeSet<u32> {
            free.iter().map(|&v| self.locality[level][v]).collect()
        };
        let gather = |level: usize, ls: &BTreeSet<u32>| -> Vec<usize> {
            let mut vs: Vec<usize> = ls
                .iter()
                .flat_map(|l| self.members[level].get(l).into_iter().flatten().copied())
                .collect();
            vs.sort_unstable();
            vs
        };
        let mut out = Vec::new();
        for level in 0..levels {
            let mine = own(level);
            out.push(Some(gather(level, &mine)));
            let parents = (level + 1 < levels).then(|| own(level + 1));
            let mut siblings: Vec<(usize, u32)> = self.members[level]
                .iter()
                .filter(|(l, vs)| {
                    !mine.contains(l)
                        && parents
                            .as_ref()
                            .is_none_or(|p| p.contains(&self.locality[level + 1][vs[0]]))
                })
                .map(|(l, vs)| (vs.len(), *l))
                .collect();
            siblings.sort_unstable();
            for (_, s) in siblings.into_iter().take(SIBLINGS) {
                let mut with = mine.clone();
                with.insert(s);
                out.push(Some(gather(level, &with)));
            }
        }
        out.push(None);
        out
    }

    /// The smallest and largest sum of `target` over the non-negative integer points of the
    /// published system, with every unknown outside `scope` held at its true value (`None`:
    /// nothing held).
    fn bounds(
        &self,
        target: &[usize],
        scope: Option<&[usize]>,
    ) -> Result<(i64, Option<i64>), ResolutionError> {
        let (free, known) = split(&self.fixed, target);
        if free.is_empty() {
            return Ok((known, Some(known)));
        }
        let inside = |v: usize| scope.is_none_or(|s| s.binary_search(&v).is_ok());
        let cons: Vec<usize> = match scope {
            None => {
                let comps: BTreeSet<usize> = free.iter().map(|&i| self.comp[i]).collect();
                comps
                    .iter()
                    .flat_map(|c| self.by_comp.get(c).into_iter().flatten().copied())
                    .collect()
            }
            Some(s) => {
                let set: BTreeSet<usize> = s
                    .iter()
                    .flat_map(|&v| self.touching[v].iter().copied())
                    .collect();
                set.into_iter().collect()
            }
        };
        let held = |vs: &[usize]| -> i64 {
            vs.iter()
                .filter(|&&v| !inside(v))
                .map(|&v| self.value[v])
                .sum()
        };
        let solve = |maximise: bool| -> Result<Option<f64>, ResolutionError> {
            let mut problem = variables!();
            let mut x: HashMap<usize, Variable> = HashMap::new();
            let mut var = |i: usize, problem: &mut good_lp::ProblemVariables| {
                *x.entry(i)
                    .or_insert_with(|| problem.add(variable().integer().min(0).max(self.cap[i])))
            };
            let objective: Expression = free
                .iter()
                .filter(|&&v| inside(v))
                .map(|&v| var(v, &mut problem))
                .sum();
            let rows: Vec<(Expression, f64, bool)> = cons
                .iter()
                .map(|&k| {
                    let c = &self.constraints[k];
                    let e: Expression = c
                        .vars
                        .iter()
                        .filter(|&&v| inside(v))
                        .map(|&v| var(v, &mut problem))
                        .sum();
                    (e, (c.rhs - held(&c.vars)) as f64, c.eq)
                })
                .collect();
            let problem = if maximise {
                problem.maximise(objective.clone())
            } else {
                problem.minimise(objective.clone())
            };
            let mut model = problem.using(microlp);
            for (e, rhs, eq) in rows {
                if eq {
                    model.add_constraint(e.eq(rhs));
                } else {
                    model.add_constraint(e.geq(rhs));
                }
            }
            match model.solve() {
                Ok(sol) => Ok(Some(sol.eval(&objective))),
                Err(ResolutionError::Unbounded) => Ok(None),
                Err(e) => Err(e),
            }
        };
        let known = known + held(&free);
        let min = solve(false)?.map_or(0, |v| v.round() as i64);
        let max = solve(true)?
            .filter(|v| *v < UNBOUNDED * 0.5)
            .map(|v| v.round() as i64);
        Ok((known + min, max.map(|m| known + m)))
    }

    /// The interval of a cell over `inner`: the union of what the scopes find, stopping as
    /// soon as it is wide enough (`width` values apart); else, with `whole`, the exact one.
    fn interval(&self, key: &str, inner: &[usize], value: i64, width: i64, whole: bool) -> Found {
        let target = self.vars(inner);
        let (free, _) = split(&self.fixed, &target);
        let (mut lo, mut hi) = (value, Some(value));
        let mut scopes = self.scopes(&free);
        if !whole && scopes.len() > 1 {
            scopes.pop();
        }
        for scope in scopes {
            let exact = scope.is_none();
            let r = self.bounds(&target, scope.as_deref());
            match r {
                Ok((a, b)) if exact => return (a, b, true),
                Ok((a, b)) => {
                    lo = lo.min(a);
                    hi = hi.zip(b).map(|(h, b)| h.max(b));
                    if hi.is_none_or(|h| h - lo >= width) {
                        return (lo, hi, false);
                    }
                }
                // The true values satisfy every constraint, so this is the solver giving up:
                // over everything, count the cell as exposed (an audit never passes on a
                // programme it could not solve); in a scope, try the next.
                Err(e) if exact => {
                    tracing::warn!(cell = %key, error = %e, "disclosure audit: programme not solved");
                    return (value, Some(value), true);
                }
                Err(_) => {}
            }
        }
        (lo, hi, false)
    }
}

/// The interval of every cell hidden for its own sake (by a primary rule; a secondary
/// suppression protects others and needs no protection itself) or shown as a bound, and the
/// ones narrower than the rules allow (a bound: computable exactly). A figure under several names is solved once.
pub fn audit(release: &Release, status: &[Status], rules: &Rules) -> Report {
    audit_with(release, status, rules, true)
}

/// The audit; without `whole`, a cell the local scopes cannot prove safe counts as a failure
/// without solving the whole release (quicker, and never passes a cell the full audit fails).
/// A release without localities has only the whole as its scope.
pub(super) fn audit_with(
    release: &Release,
    status: &[Status],
    rules: &Rules,
    whole: bool,
) -> Report {
    let system = System::new(release, status, rules);
    let mut report = Report::default();
    let mut solved: HashMap<(&[usize], i64), Found> = HashMap::new();
    for (h, cell) in release.cells.iter().enumerate() {
        // A cell hidden by a rule needs ± protection; a bound (which hides the few pupils
        // outside it) must not be computable exactly; a secondary suppression protects others.
        let width = match status[h] {
            Status::Published => continue,
            Status::Secondary => {
                report.hidden += 1;
                continue;
            }
            Status::Bound => {
                report.hidden += 1;
                1
            }
            _ => {
                report.hidden += 1;
                2 * rules.protection
            }
        };
        let (min, max, exact) = *solved
            .entry((&cell.inner, width))
            .or_insert_with(|| system.interval(&cell.key, &cell.inner, cell.value, width, whole));
        let interval = Interval {
            cell: h,
            key: cell.key.clone(),
            value: cell.value,
            min,
            max,
            exact,
        };
        if interval.width().is_some_and(|w| w < width) {
            report.failures.push(interval.clone());
        }
        report.intervals.push(interval);
    }
    report
        .failures
        .sort_by(|a, b| (a.width(), &a.key).cmp(&(b.width(), &b.key)));
    report
}
