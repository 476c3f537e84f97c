//! The audit's linear programmes, solved with HiGHS's simplex. A programme is kept solved
//! between questions: the next objective (another cell's sum, the other direction) or
//! unknowns held at their true values (an insider's) start from its last basis, which takes a
//! few iterations where a fresh solve takes hundreds.

use std::fmt;

use highs::{Col, HighsModelStatus, Model, RowProblem, Sense};

/// The solver could not answer (it never should: the true table satisfies every constraint).
#[derive(Debug, Clone)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One published relation over the columns: their sum equals (or is at least) `rhs`.
#[derive(Debug, Clone)]
pub struct Row {
    pub cols: Vec<usize>,
    pub rhs: f64,
    pub eq: bool,
}

/// A programme over non-negative columns, each with an upper bound, and rows of sums.
pub struct Lp {
    upper: Vec<f64>,
    rows: Vec<Row>,
    integer: bool,
    /// The model and its columns, once built (`None` again after a solve that failed).
    model: Option<(Model, Vec<Col>)>,
    /// The columns whose cost is 1 now.
    costed: Vec<usize>,
    /// The columns held at a value now.
    held: Vec<usize>,
    /// The rows the last optimum rests on (a dual value other than 0).
    binding: Vec<usize>,
}

impl Lp {
    /// A programme over columns with upper bounds `upper` (lower bounds 0) and `rows`, its
    /// columns whole numbers if `integer`.
    pub fn new(upper: Vec<f64>, rows: Vec<Row>, integer: bool) -> Lp {
        Lp {
            upper,
            rows,
            integer,
            model: None,
            costed: Vec::new(),
            held: Vec::new(),
            binding: Vec::new(),
        }
    }

    /// The rows the last optimum found rests on: relaxing one of them (hiding the cell it
    /// publishes) is what can move it.
    pub fn binding(&self) -> &[usize] {
        &self.binding
    }

    fn build(&self) -> (Model, Vec<Col>) {
        let mut pb = RowProblem::default();
        let cols: Vec<Col> = self
            .upper
            .iter()
            .map(|&u| pb.add_column_with_integrality(0.0, 0.0..=u, self.integer))
            .collect();
        for r in &self.rows {
            let factors = r.cols.iter().map(|&c| (cols[c], 1.0));
            if r.eq {
                pb.add_row(r.rhs..=r.rhs, factors);
            } else {
                pb.add_row(r.rhs.., factors);
            }
        }
        let mut model = pb.optimise(Sense::Maximise);
        // One thread: the releases are solved in parallel already, and HiGHS's default (0, as
        // many as there are cores) has each run count the machine's cores from /sys, and each
        // calling thread start workers of its own. Every model here sets 1: a thread's
        // scheduler keeps the count its first model gave.
        model.set_option("threads", 1);
        if !self.integer {
            // The programmes are small and sparse, and most are solved again after a change
            // of objective, where primal simplex from the last basis needs a few iterations:
            // presolve would throw that basis away.
            model.set_option("presolve", "off");
            model.set_option("simplex_strategy", 4);
        }
        (model, cols)
    }

    /// The optimum of the sum of the columns `objective` (maximised or not), with the columns
    /// of `hold` fixed at their values: every column's value, or `None` when unbounded.
    pub fn solve(
        &mut self,
        objective: &[usize],
        hold: &[(usize, f64)],
        maximise: bool,
    ) -> Result<Option<Vec<f64>>, Error> {
        if self.upper.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let fresh = self.model.is_none();
        let (mut model, cols) = match self.model.take() {
            Some(m) => m,
            None => {
                self.costed.clear();
                self.held.clear();
                self.build()
            }
        };
        for &c in &self.costed {
            model.change_column_cost(cols[c], 0.0);
        }
        for &c in objective {
            model.change_column_cost(cols[c], 1.0);
        }
        self.costed = objective.to_vec();
        for &c in &self.held {
            model.change_column_bounds(cols[c], 0.0..=self.upper[c]);
        }
        for &(c, v) in hold {
            model.change_column_bounds(cols[c], v..=v);
        }
        self.held = hold.iter().map(|h| h.0).collect();
        model.set_sense(if maximise {
            Sense::Maximise
        } else {
            Sense::Minimise
        });
        let out = match model.try_solve() {
            Ok(solved) => match solved.status() {
                HighsModelStatus::Optimal => Ok((solved, true)),
                HighsModelStatus::Unbounded => Ok((solved, false)),
                status => Err(Error(format!("HiGHS: {status:?}"))),
            },
            Err(e) => Err(Error(format!("HiGHS: {e:?}"))),
        };
        match out {
            Ok((solved, bounded)) => {
                let solution = solved.get_solution();
                self.binding = (solution.dual_rows().iter().enumerate())
                    .filter(|(_, d)| d.abs() > 1e-7)
                    .map(|(r, _)| r)
                    .collect();
                let x = bounded.then(|| solution.columns().to_vec());
                self.model = Some((solved.into(), cols));
                Ok(x)
            }
            // A programme solved again that the solver gives up on (a status other than an
            // answer, or an error) is solved afresh.
            Err(e) if !fresh => {
                tracing::debug!(error = %e, "disclosure audit: warm start failed");
                self.solve(objective, hold, maximise)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two schools' counts `a`, `b` (girls, boys each) under published sums: the school totals
    /// and the girls' sum. Each question asked of the kept programme has the answer a fresh
    /// one gives.
    #[test]
    fn a_kept_programme_answers_as_a_fresh_one() {
        // Columns: a girls, a boys, b girls, b boys.
        let rows = vec![
            Row {
                cols: vec![0, 1],
                rhs: 7.0,
                eq: true,
            },
            Row {
                cols: vec![2, 3],
                rhs: 5.0,
                eq: true,
            },
            Row {
                cols: vec![0, 2],
                rhs: 6.0,
                eq: true,
            },
            Row {
                cols: vec![1],
                rhs: 2.0,
                eq: false,
            },
        ];
        let upper = vec![7.0, 7.0, 5.0, 5.0];
        let mut kept = Lp::new(upper.clone(), rows.clone(), false);
        // Each question: the objective's columns, the columns held and their values, maximised.
        type Question = (Vec<usize>, Vec<(usize, f64)>, bool);
        let questions: Vec<Question> = vec![
            (vec![0], vec![], true),
            (vec![0], vec![], false),
            (vec![2, 3], vec![], true),
            (vec![1], vec![(3, 1.0)], true),
            (vec![1], vec![(3, 1.0)], false),
            (vec![0], vec![], false),
            (vec![2], vec![(0, 3.0)], true),
        ];
        let optimum = |x: &[f64], cols: &[usize]| cols.iter().map(|&c| x[c]).sum::<f64>();
        let mut answers = Vec::new();
        for (objective, hold, maximise) in &questions {
            let warm = kept.solve(objective, hold, *maximise).unwrap().unwrap();
            let cold = Lp::new(upper.clone(), rows.clone(), false)
                .solve(objective, hold, *maximise)
                .unwrap()
                .unwrap();
            assert!((optimum(&warm, objective) - optimum(&cold, objective)).abs() < 1e-9);
            answers.push(optimum(&warm, objective).round() as i64);
        }
        // a girls: 7 - a boys, a boys ≥ 2, b girls = 6 - a girls ≤ 5: 1..=5.
        // b: 5. a boys with b boys held at 1 (b girls 4, a girls 2): 5 exactly.
        // b girls with a girls held at 3: 3.
        assert_eq!(answers, vec![5, 1, 5, 5, 5, 1, 3]);
        let whole = Lp::new(upper, rows, true).solve(&[0], &[], true).unwrap();
        assert_eq!(whole.map(|x| x[0].round() as i64), Some(5));
    }

    /// A pupil count bounded by its school's total less a published lower bound on the rest:
    /// the optimum rests on those two rows, not on the sum it shares with another school.
    #[test]
    fn an_optimum_names_the_rows_it_rests_on() {
        let row = |cols: Vec<usize>, rhs: f64, eq: bool| Row { cols, rhs, eq };
        let rows = vec![
            row(vec![0, 1], 7.0, true),
            row(vec![1], 2.0, false),
            row(vec![0, 2], 9.0, true),
        ];
        let mut lp = Lp::new(vec![100.0; 3], rows, false);
        let x = lp.solve(&[0], &[], true).unwrap().unwrap();
        assert_eq!(x[0].round() as i64, 5);
        assert_eq!(lp.binding(), [0, 1]);
        // Minimised, x0 is 0 at its own bound: no row holds it there.
        let x = lp.solve(&[0], &[], false).unwrap().unwrap();
        assert_eq!(x[0].round() as i64, 0);
        assert!(lp.binding().is_empty(), "{:?}", lp.binding());
    }

    #[test]
    fn unbounded_and_empty_programmes() {
        let mut lp = Lp::new(vec![f64::INFINITY], Vec::new(), false);
        assert_eq!(lp.solve(&[0], &[], true).unwrap(), None);
        let mut empty = Lp::new(Vec::new(), Vec::new(), false);
        assert_eq!(empty.solve(&[], &[], true).unwrap(), Some(Vec::new()));
    }
}
