"""Measuring a solver: empirical order of convergence and work–precision.

Halve the step a few times, and the global error of a method of order p falls like h^p: the
slope of log(error) against log(h) is p. For adaptive methods the honest comparison is error
against work (NFE) as the tolerance tightens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .errors import SolverError
from .integrate import rk_step, solve
from .problems import Problem
from .tableaux import TABLEAUX

__all__ = ["ConvergenceResult", "empirical_order", "endpoint_error", "fitted_order", "constant_step_runner",
           "work_precision", "Rejection", "worst_rejection", "reference_solution", "fixed_step_grid"]


@dataclass
class ConvergenceResult:
    method: str
    step_sizes: np.ndarray
    errors: np.ndarray
    nfe: np.ndarray
    order: float  # the fitted slope of log(error) against log(h)


def reference_solution(problem: Problem, t: torch.Tensor) -> torch.Tensor:
    """The exact solution at ``t`` when known, else dopri5 at rtol = atol = 1e-12."""
    if problem.has_exact:
        return problem.exact(t)
    return solve(problem, problem.initial(t.dtype), t, rtol=1e-12, atol=1e-12).ys


def fixed_step_grid(t0: float, t1: float, h: float) -> torch.Tensor:
    """t0, t0 + h, t0 + 2h, …, and t1 itself: the fixed-step solver's own grid."""
    n = int(math.floor((t1 - t0) / h * (1 + 1e-12)))
    pts = [t0 + k * h for k in range(n + 1)]
    if t1 - pts[-1] > 1e-9 * h:
        pts.append(t1)
    else:
        pts[-1] = t1
    return torch.tensor(pts, dtype=torch.float64)


def endpoint_error(sol, problem: Problem) -> float:
    """Max-norm error of the solution at ``t1`` against the problem's exact end state."""
    y_end = sol.ys[-1] if isinstance(sol.ys, torch.Tensor) else sol.ys[0][-1]
    return float((y_end.double() - problem.exact_end()).abs().max())


def fitted_order(step_sizes, errors) -> float:
    """The least-squares slope of log(error) against log(h): the measured order."""
    hs, errs = np.asarray(step_sizes, dtype=float), np.asarray(errors, dtype=float)
    if hs.shape != errs.shape or hs.size < 2:
        raise ValueError(f"need at least two (step size, error) pairs of equal length; got {hs.size} and {errs.size}.")
    if not (np.all(hs > 0) and np.all(errs > 0) and np.all(np.isfinite(errs))):
        raise ValueError("step sizes and errors must be finite and > 0 to fit a slope on log–log axes.")
    return float(np.polyfit(np.log(hs), np.log(errs), 1)[0])


def constant_step_runner(problem: Problem, method: str, dtype=torch.float64):
    """``run(h)``: the state at ``t1`` after equal steps of size h (``(t1 - t0) / h`` rounded)
    of ``method``; an adaptive pair steps with its propagated solution, its error estimate unused."""
    if method not in TABLEAUX:
        raise ValueError(f"Unknown method {method!r}; choose one of {', '.join(TABLEAUX)}.")
    span = problem.t1 - problem.t0

    def run(h):
        h = float(h)
        if not (np.isfinite(h) and 0 < h <= span):
            raise ValueError(f"h must be a number in (0, {span:g}]; got {h}.")
        return _constant_steps(problem, method, round(span / h), dtype)[0]

    return run


def _constant_steps(problem: Problem, method: str, n_steps: int, dtype) -> tuple[torch.Tensor, int]:
    """``n_steps`` equal steps of any method, ignoring an adaptive method's error estimate.

    Used to measure the order of the propagated solution of adaptive pairs too."""
    tableau = TABLEAUX[method]
    h = (problem.t1 - problem.t0) / n_steps
    y, t, k1, nfe = problem.initial(dtype), torch.tensor(problem.t0, dtype=dtype), None, 0
    for _ in range(n_steps):
        y, _, ks = rk_step(problem, t, y, h, tableau, k1)
        t = t + h
        nfe += tableau.stages - (k1 is not None)
        k1 = ks[-1] if tableau.fsal else None
    return y, nfe


def empirical_order(method: str, problem: Problem, step_sizes=None, dtype=torch.float64) -> ConvergenceResult:
    """Take equal steps of ``method`` at each step size and fit the order from the end-point error.

    The default step sizes halve five times from ``(t1 - t0) / 8``. Fixed-step methods go
    through :func:`odeteach.solve`; adaptive pairs step with their propagated solution at a
    constant h (their error estimate is ignored), so their order can be measured the same way.
    """
    if method not in TABLEAUX:
        raise ValueError(f"Unknown method {method!r}; choose one of {', '.join(TABLEAUX)}.")
    span = problem.t1 - problem.t0
    hs = np.asarray(step_sizes if step_sizes is not None else [span / 8 / 2 ** k for k in range(6)], dtype=float)
    y0, t = problem.initial(dtype), problem.times(2, dtype)
    errors, nfe = [], []
    for h in hs:
        if TABLEAUX[method].adaptive:
            y_end, n = _constant_steps(problem, method, round(span / h), dtype)
            errors.append(float((y_end.double() - problem.exact_end()).abs().max()))
            nfe.append(n)
        else:
            sol = solve(problem, y0, t, method=method, options={"step_size": float(h)})
            errors.append(endpoint_error(sol, problem))
            nfe.append(sol.stats.nfe)
    errors = np.asarray(errors)
    return ConvergenceResult(method, hs, errors, np.asarray(nfe), fitted_order(hs, errors))


def work_precision(problem: Problem, method: str, tolerances=None, step_sizes=None, dtype=torch.float64, *,
                   reference: torch.Tensor | None = None, max_error: float = math.inf, t: torch.Tensor | None = None,
                   trace: bool = False, solutions: dict | None = None) -> np.ndarray:
    """(NFE, endpoint error) pairs, one row per run: over ``tolerances`` (rtol = atol) for an adaptive
    method, over ``step_sizes`` for a fixed-step one.

    The error is the max-norm distance of the state at ``t1`` from ``reference`` (default: the
    problem's exact end state). A run the solver refuses (:class:`~odeteach.errors.SolverError`)
    gives no row, nor does one whose error is ``max_error`` or more (a step so large that the error
    is O(1) tells nothing). Each run solves on the output times ``t`` (default ``t0, t1``; they must
    end at ``t1``), with ``trace`` passed on. With a ``solutions`` dict, every run that succeeded
    is stored in it under its tolerance or step size, so that a caller that shows the runs (an
    explorer) need not solve them again.
    """
    y0 = problem.initial(dtype)
    t = problem.times(2, dtype) if t is None else t
    y_end = problem.exact_end() if reference is None else reference
    if TABLEAUX[method].adaptive:
        tolerances = np.logspace(-3, -10, 8) if tolerances is None else tolerances
        runs = {float(tol): dict(rtol=float(tol), atol=float(tol)) for tol in tolerances}
    else:
        span = problem.t1 - problem.t0
        step_sizes = [span / 2 ** k for k in range(3, 11)] if step_sizes is None else step_sizes
        runs = {float(h): dict(options={"step_size": float(h)}) for h in step_sizes}
    points = []
    for value, settings in runs.items():
        try:
            sol = solve(problem, y0, t, method=method, trace=trace, **settings)
        except SolverError:
            continue
        if solutions is not None:
            solutions[value] = sol
        error = float((sol.ys[-1].double() - y_end).abs().max())
        if error < max_error:
            points.append((sol.stats.nfe, error))
    return np.asarray(points, dtype=float).reshape(-1, 2)


@dataclass(frozen=True)
class Rejection:
    """The rejected attempt with the largest error ratio in a trace, and the steps around it."""

    index: int          # its position in the trace
    t: float            # where the attempt started
    h: float            # its step size
    ratio: float        # its error ratio: estimated local error over the tolerance
    prev_h: float       # the attempt before it (nan if none)
    prev_ratio: float   # that attempt's error ratio (nan if none)
    prev_accepted: bool  # whether that attempt was accepted (False if none)
    next_h: float       # the step tried right after it (nan if none)


def worst_rejection(trace) -> Rejection | None:
    """The rejected attempt of ``solve(..., trace=True).trace`` with the largest error ratio
    (``None`` when no attempt was rejected)."""
    rejected = [i for i, r in enumerate(trace) if not r.accepted]
    if not rejected:
        return None
    i = max(rejected, key=lambda j: trace[j].error_ratio)
    prev = trace[i - 1] if i > 0 else None
    nxt = trace[i + 1] if i + 1 < len(trace) else None
    nan = float("nan")
    return Rejection(i, trace[i].t, abs(trace[i].h), trace[i].error_ratio,
                     abs(prev.h) if prev else nan, prev.error_ratio if prev else nan, bool(prev and prev.accepted),
                     abs(nxt.h) if nxt else nan)
