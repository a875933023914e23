//! Unconstrained minimisation for the maximum-likelihood fits, on top of `argmin`.
//!
//! The models fit positive parameters; callers optimise their logarithms, so the problem is
//! unconstrained (as lifetimes does). We run L-BFGS with a Moré–Thuente line search and the
//! caller's analytic gradient, which reaches the optimum of the BG/NBD likelihood in a few dozen
//! evaluations. If L-BFGS stops early (a failed line search, or the iteration cap), Nelder–Mead
//! continues from the best point so far: it needs no gradient and is hard to derail.
//!
//! Convergence is judged by us, not by the solver's termination reason: the fit counts as
//! converged when the gradient of the objective at the returned point is small. That is the
//! property a caller cares about (a stationary point), whichever solver stopped for whatever
//! reason. A gradient can also be tiny far out on an asymptote (BG/NBD's a → 0, "nobody drops
//! out"), so a result on the boundary of the parameter space is followed by a few fixed
//! restarts and the best likelihood wins; no randomness is involved, fits are reproducible.
//!
//! argmin's executor does not read the clock unless its timer is switched on, which we never
//! do (the domain reads no clock). argmin and argmin-math are used without default features,
//! which would pull `rand` into the domain; vectors are `ndarray` arrays.

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::neldermead::NelderMead;
use argmin::solver::quasinewton::LBFGS;
use ndarray::Array1;
use std::cell::RefCell;

/// An objective with its gradient. Both are computed together because they share almost all
/// the work (the ln Γ and ln terms of every customer).
pub(crate) trait Objective {
    /// The value at `x` and its gradient written into `gradient`. May return a non-finite value
    /// where the objective is undefined; the optimiser treats that as "very bad".
    fn value_and_gradient(&self, x: &[f64], gradient: &mut [f64]) -> f64;
}

/// Limits and tolerances for one minimisation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Settings {
    pub max_iterations: u64,
    /// The largest absolute component of the gradient accepted as "converged".
    pub gradient_tolerance: f64,
}

/// What a minimisation found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Minimum {
    pub x: Vec<f64>,
    pub value: f64,
    /// L-BFGS iterations plus any Nelder–Mead iterations.
    pub iterations: u64,
    pub converged: bool,
}

/// Stand-in for an undefined objective value, large enough that every line search backs off.
const UNDEFINED_VALUE: f64 = 1e300;

/// Log-parameters beyond ±25 (parameters above 7e10 or below 1.4e-11) are treated as undefined:
/// out there ln Γ and the powers of the likelihoods lose all precision, and an optimiser that
/// wanders off would otherwise report numerical garbage as an optimum.
const MAX_ABS_LOG_PARAM: f64 = 25.0;

/// A result with a log-parameter beyond ±10 sits on a boundary of the parameter space (for
/// BG/NBD, a → 0 means "nobody ever drops out"). The likelihood is asymptotically flat there,
/// so the gradient test passes although a better interior optimum may exist: such results
/// trigger the next starting point in [`minimize_from_starts`].
const BOUNDARY_LOG_PARAM: f64 = 10.0;

/// Adapts an [`Objective`] to argmin, remembering the last evaluation because argmin asks for
/// the cost and the gradient at the same point in two separate calls.
/// The last point evaluated, with its value and gradient.
type Evaluation = (Vec<f64>, f64, Vec<f64>);

struct Problem<'a, O: Objective> {
    objective: &'a O,
    last: RefCell<Option<Evaluation>>,
}

impl<O: Objective> Problem<'_, O> {
    fn evaluate(&self, x: &Array1<f64>) -> (f64, Vec<f64>) {
        let x = x
            .as_slice()
            .expect("argmin keeps parameter vectors contiguous")
            .to_vec();
        if let Some((last_x, value, gradient)) = self.last.borrow().as_ref() {
            if *last_x == x {
                return (*value, gradient.clone());
            }
        }
        let mut gradient = vec![0.0; x.len()];
        let mut value = if x.iter().all(|v| v.abs() <= MAX_ABS_LOG_PARAM) {
            self.objective.value_and_gradient(&x, &mut gradient)
        } else {
            f64::NAN
        };
        if !value.is_finite() || gradient.iter().any(|g| !g.is_finite()) {
            value = UNDEFINED_VALUE;
            gradient.iter_mut().for_each(|g| *g = 0.0);
        }
        *self.last.borrow_mut() = Some((x, value, gradient.clone()));
        (value, gradient)
    }
}

impl<O: Objective> CostFunction for Problem<'_, O> {
    type Param = Array1<f64>;
    type Output = f64;

    fn cost(&self, x: &Self::Param) -> Result<Self::Output, argmin::core::Error> {
        Ok(self.evaluate(x).0)
    }
}

impl<O: Objective> Gradient for Problem<'_, O> {
    type Param = Array1<f64>;
    type Gradient = Array1<f64>;

    fn gradient(&self, x: &Self::Param) -> Result<Self::Gradient, argmin::core::Error> {
        Ok(Array1::from(self.evaluate(x).1))
    }
}

/// The largest absolute gradient component at `x`, or +∞ where the objective is undefined.
fn gradient_size<O: Objective>(objective: &O, x: &[f64]) -> (f64, f64) {
    if x.iter().any(|v| v.abs() > MAX_ABS_LOG_PARAM) {
        return (f64::INFINITY, f64::INFINITY);
    }
    let mut gradient = vec![0.0; x.len()];
    let value = objective.value_and_gradient(x, &mut gradient);
    let size = gradient.iter().fold(0.0_f64, |m, g| m.max(g.abs()));
    if value.is_finite() && size.is_finite() {
        (value, size)
    } else {
        (f64::INFINITY, f64::INFINITY)
    }
}

/// The starting points tried in turn: the caller's (or all log-parameters 0, i.e. all
/// parameters 1), then all 0, all −1 and all +1, without repeats.
pub(crate) fn default_starts(first: Option<&[f64]>, dimension: usize) -> Vec<Vec<f64>> {
    let mut starts: Vec<Vec<f64>> = Vec::new();
    let candidates = first
        .map(<[f64]>::to_vec)
        .into_iter()
        .chain([0.0, -1.0, 1.0].map(|v| vec![v; dimension]));
    for start in candidates {
        if !starts.contains(&start) {
            starts.push(start);
        }
    }
    starts
}

/// Minimises `objective` from each start in turn until one converges to an interior point
/// (see [`BOUNDARY_LOG_PARAM`]), and returns the best result seen: the lowest value among
/// converged results, or the lowest value overall when none converged. The starts are fixed,
/// so the fit stays deterministic; on well-behaved data the first start is the only one run.
pub(crate) fn minimize_from_starts<O: Objective>(
    objective: &O,
    starts: &[Vec<f64>],
    settings: Settings,
) -> Minimum {
    let mut best: Option<Minimum> = None;
    let mut iterations = 0;
    for start in starts {
        let candidate = minimize(objective, start, settings);
        iterations += candidate.iterations;
        let interior = candidate.x.iter().all(|v| v.abs() <= BOUNDARY_LOG_PARAM);
        let done = candidate.converged && interior;
        let better = best.as_ref().is_none_or(|current| {
            (candidate.converged, -candidate.value) > (current.converged, -current.value)
        });
        if better {
            best = Some(candidate);
        }
        if done {
            break;
        }
    }
    let mut best = best.expect("at least one start");
    best.iterations = iterations;
    best
}

/// Minimises `objective` from `start`.
pub(crate) fn minimize<O: Objective>(objective: &O, start: &[f64], settings: Settings) -> Minimum {
    let mut best = start.to_vec();
    let mut iterations = 0;

    let problem = Problem {
        objective,
        last: RefCell::new(None),
    };
    let lbfgs = MoreThuenteLineSearch::new()
        .with_c(1e-4, 0.9)
        .and_then(|line_search| {
            LBFGS::new(line_search, 7).with_tolerance_grad(settings.gradient_tolerance * 1e-2)
        })
        .and_then(|solver| solver.with_tolerance_cost(1e-15));
    if let Ok(solver) = lbfgs {
        let run = Executor::new(problem, solver)
            .configure(|state| {
                state
                    .param(Array1::from(start.to_vec()))
                    .max_iters(settings.max_iterations)
            })
            .run();
        if let Ok(result) = run {
            iterations += result.state().get_iter();
            if let Some(param) = result.state().get_best_param() {
                best = param.to_vec();
            }
        }
    }
    let (mut value, mut size) = gradient_size(objective, &best);
    if size <= settings.gradient_tolerance {
        return Minimum {
            x: best,
            value,
            iterations,
            converged: true,
        };
    }

    // L-BFGS stopped short of a stationary point: let Nelder–Mead walk on from its best point.
    let simplex: Vec<Array1<f64>> = std::iter::once(Array1::from(best.clone()))
        .chain((0..best.len()).map(|i| {
            let mut vertex = Array1::from(best.clone());
            vertex[i] += 0.25;
            vertex
        }))
        .collect();
    let problem = Problem {
        objective,
        last: RefCell::new(None),
    };
    if let Ok(solver) = NelderMead::new(simplex).with_sd_tolerance(1e-13) {
        let run = Executor::new(problem, solver)
            .configure(|state| state.max_iters(settings.max_iterations * 20))
            .run();
        if let Ok(result) = run {
            iterations += result.state().get_iter();
            if let Some(param) = result.state().get_best_param() {
                let candidate = param.to_vec();
                let (candidate_value, candidate_size) = gradient_size(objective, &candidate);
                if candidate_value <= value {
                    best = candidate;
                    value = candidate_value;
                    size = candidate_size;
                }
            }
        }
    }
    Minimum {
        x: best,
        value,
        iterations,
        converged: size <= settings.gradient_tolerance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rosenbrock's banana, the classic hard valley.
    struct Rosenbrock;

    impl Objective for Rosenbrock {
        fn value_and_gradient(&self, x: &[f64], gradient: &mut [f64]) -> f64 {
            let (a, b) = (x[0], x[1]);
            gradient[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            gradient[1] = 200.0 * (b - a * a);
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
        }
    }

    #[test]
    fn finds_the_rosenbrock_minimum() {
        let settings = Settings {
            max_iterations: 500,
            gradient_tolerance: 1e-8,
        };
        let minimum = minimize(&Rosenbrock, &[-1.2, 1.0], settings);
        assert!(minimum.converged);
        assert!(
            (minimum.x[0] - 1.0).abs() < 1e-6 && (minimum.x[1] - 1.0).abs() < 1e-6,
            "{minimum:?}"
        );
    }
}
