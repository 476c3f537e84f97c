//! The attacker's view of a release: for every cell hidden by a primary rule, the smallest and
//! largest value it can have given everything published (exact cells, bounds, non-negative whole numbers),
//! by integer linear programming (good_lp with the pure-Rust microlp solver). A release fails
//! when any hidden cell can be narrowed to fewer than `2 × protection` pupils either way.

use good_lp::{
    Expression, ResolutionError, Solution, SolverModel, Variable, microlp, variable, variables,
};
use serde::Serialize;

use super::{Release, Rules, Status};

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

/// The published system after presolve: inner cells that published cells fix (a published
/// cell with one unknown inner cell left fixes it, repeatedly) are substituted out, and the
/// remaining unknowns are grouped into components linked by the constraints they share.
struct System {
    fixed: Vec<Option<i64>>,
    /// (unknown inner cells, right-hand side, equality (else ≥)) per constraint.
    constraints: Vec<(Vec<usize>, i64, bool)>,
    /// Component of each unknown inner cell.
    comp: Vec<usize>,
    /// Constraints of each component.
    by_comp: std::collections::HashMap<usize, Vec<usize>>,
    /// Smallest published value containing each inner cell (an upper bound).
    cap: Vec<f64>,
}

/// The inner cells of `inner` not fixed yet, and the sum of the fixed ones.
fn split(fixed: &[Option<i64>], inner: &[usize]) -> (Vec<usize>, i64) {
    let free = inner
        .iter()
        .copied()
        .filter(|&i| fixed[i].is_none())
        .collect();
    (free, inner.iter().filter_map(|&i| fixed[i]).sum())
}

impl System {
    fn new(release: &Release, status: &[Status], rules: &Rules) -> System {
        let n = release.inner;
        let mut fixed: Vec<Option<i64>> = vec![None; n];
        let mut cap = vec![UNBOUNDED; n];
        let published: Vec<&super::Cell> = release
            .cells
            .iter()
            .zip(status)
            .filter(|(_, s)| **s == Status::Published)
            .map(|(c, _)| c)
            .collect();
        for c in &published {
            for &i in &c.inner {
                cap[i] = cap[i].min(c.value as f64);
            }
            if c.value == 0 {
                c.inner.iter().for_each(|&i| fixed[i] = Some(0));
            }
        }
        loop {
            let mut changed = false;
            for c in &published {
                let (free, known) = split(&fixed, &c.inner);
                if free.len() == 1 {
                    fixed[free[0]] = Some(c.value - known);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let mut constraints = Vec::new();
        for (c, s) in release.cells.iter().zip(status) {
            let eq = match s {
                Status::Published => true,
                Status::Bound => false,
                _ => continue,
            };
            let rhs = if eq {
                c.value
            } else {
                c.base - rules.dominance
            };
            let (free, known) = split(&fixed, &c.inner);
            if !free.is_empty() {
                constraints.push((free, rhs - known, eq));
            }
        }
        let mut parent: Vec<usize> = (0..n).collect();
        fn find(p: &mut [usize], mut x: usize) -> usize {
            while p[x] != x {
                p[x] = p[p[x]];
                x = p[x];
            }
            x
        }
        for (free, _, _) in &constraints {
            for &i in &free[1..] {
                let (a, b) = (find(&mut parent, free[0]), find(&mut parent, i));
                parent[a] = b;
            }
        }
        let comp: Vec<usize> = (0..n).map(|i| find(&mut parent, i)).collect();
        let mut by_comp: std::collections::HashMap<usize, Vec<usize>> = Default::default();
        for (k, (free, _, _)) in constraints.iter().enumerate() {
            by_comp.entry(comp[free[0]]).or_default().push(k);
        }
        System {
            fixed,
            constraints,
            comp,
            by_comp,
            cap,
        }
    }

    /// The smallest and largest value of a cell over `inner`: its fixed part plus the range of
    /// its unknown part over the non-negative integer points of the constraints it touches.
    fn bounds(&self, key: &str, inner: &[usize], value: i64) -> (i64, Option<i64>) {
        let (free, known) = split(&self.fixed, inner);
        if free.is_empty() {
            return (known, Some(known));
        }
        let mut comps: Vec<usize> = free.iter().map(|&i| self.comp[i]).collect();
        comps.sort_unstable();
        comps.dedup();
        let cons: Vec<usize> = comps
            .iter()
            .flat_map(|c| self.by_comp.get(c).into_iter().flatten().copied())
            .collect();
        let solve = |maximise: bool| -> Result<Option<f64>, ResolutionError> {
            let mut vars = variables!();
            let mut x: std::collections::HashMap<usize, Variable> = Default::default();
            let mut var = |i: usize, vars: &mut good_lp::ProblemVariables| {
                *x.entry(i)
                    .or_insert_with(|| vars.add(variable().integer().min(0).max(self.cap[i])))
            };
            let objective: Expression = free.iter().map(|&i| var(i, &mut vars)).sum();
            let rows: Vec<(Expression, i64, bool)> = cons
                .iter()
                .map(|&k| {
                    let (f, rhs, eq) = &self.constraints[k];
                    (f.iter().map(|&i| var(i, &mut vars)).sum(), *rhs, *eq)
                })
                .collect();
            let problem = if maximise {
                vars.maximise(objective.clone())
            } else {
                vars.minimise(objective.clone())
            };
            let mut model = problem.using(microlp);
            for (e, rhs, eq) in rows {
                if eq {
                    model.add_constraint(e.eq(rhs as f64));
                } else {
                    model.add_constraint(e.geq(rhs as f64));
                }
            }
            match model.solve() {
                Ok(sol) => Ok(Some(sol.eval(&objective))),
                Err(ResolutionError::Unbounded) => Ok(None),
                Err(e) => Err(e),
            }
        };
        match (solve(false), solve(true)) {
            (Ok(min), Ok(max)) => (
                known + min.map_or(0, |v| v.round() as i64),
                max.filter(|v| *v < UNBOUNDED * 0.5)
                    .map(|v| known + v.round() as i64),
            ),
            // The true values satisfy every constraint, so this is the solver giving up: count
            // the cell as exposed (an audit never passes on a programme it could not solve).
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(cell = %key, error = %e, "disclosure audit: programme not solved");
                (value, Some(value))
            }
        }
    }
}

/// The interval of every cell hidden for its own sake (by a primary rule; a secondary
/// suppression protects others and needs no protection itself), and the ones narrower than the
/// rules allow. A figure under several names is solved once.
pub fn audit(release: &Release, status: &[Status], rules: &Rules) -> Report {
    let system = System::new(release, status, rules);
    let mut report = Report::default();
    let mut solved: std::collections::HashMap<&[usize], (i64, Option<i64>)> = Default::default();
    for (h, cell) in release.cells.iter().enumerate() {
        if status[h].published() {
            continue;
        }
        report.hidden += 1;
        if matches!(status[h], Status::Secondary | Status::Bound) {
            continue;
        }
        let (min, max) = *solved
            .entry(&cell.inner)
            .or_insert_with(|| system.bounds(&cell.key, &cell.inner, cell.value));
        let interval = Interval {
            cell: h,
            key: cell.key.clone(),
            value: cell.value,
            min,
            max,
        };
        if interval.width().is_some_and(|w| w < 2 * rules.protection) {
            report.failures.push(interval.clone());
        }
        report.intervals.push(interval);
    }
    report
        .failures
        .sort_by(|a, b| (a.width(), &a.key).cmp(&(b.width(), &b.key)));
    report
}
