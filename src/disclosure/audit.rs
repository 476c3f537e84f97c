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
//! school, to it and the schools of its municipality whose figure of the same measure is
//! hidden too, to it and one other school, to the municipality, and only a cell still too
//! narrow is solved over everything published (its exact interval).
//!
//! Every solution any programme finds is such a table too, so it is checked against the
//! published sums and kept as a witness: the values it gives every other hidden cell widen
//! their ranges, and a cell whose range is already wide enough needs no programme of its own.
//! A published cell over all of a cell's unknowns caps it: when the cap alone is too narrow,
//! the cell fails at once.

use std::collections::{BTreeSet, HashMap};

use good_lp::{
    Expression, ResolutionError, Solution, SolverModel, Variable, microlp, variable, variables,
};
use serde::Serialize;

use super::key::{CellKey, Level};
use super::{Release, Rules, Status};

/// How many other localities a cell's own is paired with at each level, smallest first.
const SIBLINGS: usize = 8;

/// How many localities whose cell of the same measure is hidden join a cell's own, smallest
/// first, in the scopes tried before the parent's whole (see [`System::scopes`]).
const HIDDEN_SIBLINGS: [usize; 2] = [8, 48];

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

/// Receives each table found: the unknowns it sets, by variable, sorted.
type Witness<'a> = dyn FnMut(&[(usize, i64)]) + 'a;

/// An interval found: its lower and upper end (`None`: unbounded), whether it is exact, and
/// the published cell that caps it too narrowly, if one does.
type Found = (i64, Option<i64>, bool, Option<usize>);

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

    /// The smallest and largest sum of `target` over the non-negative integer points of the
    /// published system, with every unknown outside `scope` held at its true value (`None`:
    /// nothing held). The smallest is not sought below `low`, a value already found.
    ///
    /// Every solution found is a table the attacker cannot rule out; it goes to `witness` (the
    /// unknowns it sets, by variable) when it checks out against every published sum.
    fn bounds(
        &self,
        target: &[usize],
        scope: Option<&[usize]>,
        low: i64,
        witness: &mut Witness,
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
        let mut solve = |maximise: bool| -> Result<Option<f64>, ResolutionError> {
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
                Ok(sol) => {
                    let mut found: Vec<(usize, i64)> = x
                        .iter()
                        .map(|(&i, &v)| (i, sol.value(v).round() as i64))
                        .collect();
                    found.sort_unstable();
                    if self.feasible(&found) {
                        witness(&found);
                    }
                    Ok(Some(sol.eval(&objective)))
                }
                Err(ResolutionError::Unbounded) => Ok(None),
                Err(e) => Err(e),
            }
        };
        let known = known + held(&free);
        // The unknowns in scope are never negative: a low end at `known` needs no programme.
        let min = if low <= known {
            low
        } else {
            known + solve(false)?.map_or(0, |v| v.round() as i64)
        };
        let max = solve(true)?
            .filter(|v| *v < UNBOUNDED * 0.5)
            .map(|v| v.round() as i64);
        Ok((min, max.map(|m| known + m)))
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
        let touched: BTreeSet<usize> = witness
            .iter()
            .flat_map(|(v, _)| self.touching[*v].iter().copied())
            .collect();
        witness.iter().all(|(_, x)| *x >= 0)
            && touched.iter().all(|&k| {
                let c = &self.constraints[k];
                let sum: i64 = c.vars.iter().map(|&v| self.value_in(witness, v)).sum();
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
    fn interval(
        &self,
        key: &str,
        target: &[usize],
        seen: (i64, Option<i64>),
        width: i64,
        depth: Depth,
        witness: &mut Witness,
    ) -> Found {
        let (free, known) = split(&self.fixed, target);
        // A published cell holding every unknown of the cell caps their sum: when that alone
        // narrows the cell too far, no programme can widen it (a repair needs no more).
        if let Some(cap) = self
            .cap(&free)
            .filter(|c| depth == Depth::Local && c.0 < width)
        {
            return (known, Some(known + cap.0), false, Some(cap.1));
        }
        let (mut lo, mut hi) = seen;
        let scopes = match depth {
            Depth::Exact => vec![None],
            _ if hi.is_none_or(|h| h - lo >= width) => return (lo, hi, false, None),
            Depth::Whole => self.scopes(key, &free),
            Depth::Local => {
                let mut s = self.scopes(key, &free);
                if s.len() > 1 {
                    s.pop();
                }
                s
            }
        };
        for scope in scopes {
            let exact = scope.is_none();
            let started = std::time::Instant::now();
            let r = self.bounds(
                target,
                scope.as_deref(),
                if exact { i64::MAX } else { lo },
                witness,
            );
            tracing::debug!(
                cell = %key,
                scope = scope.as_ref().map_or(self.value.len(), |s| s.len()),
                ms = started.elapsed().as_millis() as u64,
                found = ?r.as_ref().ok(),
                "disclosure audit: programme"
            );
            match r {
                Ok((a, b)) if exact => return (a, b, true, None),
                Ok((a, b)) => {
                    lo = lo.min(a);
                    hi = hi.zip(b).map(|(h, b)| h.max(b));
                    if hi.is_none_or(|h| h - lo >= width) {
                        return (lo, hi, false, None);
                    }
                }
                // The true values satisfy every constraint, so this is the solver giving up:
                // over everything, count the cell as exposed (an audit never passes on a
                // programme it could not solve); in a scope, try the next.
                Err(e) if exact => {
                    tracing::warn!(cell = %key, error = %e, "disclosure audit: programme not solved");
                    let value = known + free.iter().map(|&v| self.value[v]).sum::<i64>();
                    return (value, Some(value), true, None);
                }
                Err(_) => {}
            }
        }
        (lo, hi, false, None)
    }
}

/// The interval of every cell hidden for its own sake (by a primary rule; a secondary
/// suppression protects others and needs no protection itself) or shown as a bound, and the
/// ones narrower than the rules allow (a bound: computable exactly). A figure under several
/// names is solved once.
pub fn audit(release: &Release, status: &[Status], rules: &Rules) -> Report {
    audit_cells(release, status, rules, Depth::Whole, None)
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

/// The audit of the cells `only` (`None`: every cell; `hidden` counts those audited) to
/// `depth`. A release without localities has only the whole as its scope.
pub fn audit_cells(
    release: &Release,
    status: &[Status],
    rules: &Rules,
    depth: Depth,
    only: Option<&[usize]>,
) -> Report {
    let system = System::new(release, status, rules);
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
    // widens the others it moves, often enough to prove them without one of their own.
    let mut seen: Vec<(i64, Option<i64>)> = targets
        .iter()
        .map(|(h, _, _)| (release.cells[*h].value, Some(release.cells[*h].value)))
        .collect();
    let mut solved: HashMap<(&[usize], i64), Found> = HashMap::new();
    for (t, (h, width, vars)) in targets.iter().enumerate() {
        let cell = &release.cells[*h];
        let (min, max, exact, capped_by) = match solved.get(&(cell.inner.as_slice(), *width)) {
            Some(found) => *found,
            None => {
                let first = seen[t];
                let mut witness = |w: &[(usize, i64)]| {
                    for ((_, _, vs), range) in targets.iter().zip(seen.iter_mut()) {
                        let v: i64 = vs.iter().map(|&v| system.value_in(w, v)).sum();
                        range.0 = range.0.min(v);
                        range.1 = range.1.map(|h| h.max(v));
                    }
                };
                let found = system.interval(&cell.key, vars, first, *width, depth, &mut witness);
                solved.insert((&cell.inner, *width), found);
                found
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
        };
        if interval.width().is_some_and(|w| w < *width) {
            report.failures.push(interval.clone());
        }
        report.intervals.push(interval);
    }
    report
        .failures
        .sort_by(|a, b| (a.width(), &a.key).cmp(&(b.width(), &b.key)));
    report
}
