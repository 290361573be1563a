"""Measuring a solver: empirical order of convergence and work–precision.

Halve the step a few times, and the global error of a method of order p falls like h^p: the
slope of log(error) against log(h) is p. For adaptive methods the honest comparison is error
against work (NFE) as the tolerance tightens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .integrate import rk_step, solve
from .problems import Problem
from .tableaux import TABLEAUX

__all__ = ["ConvergenceResult", "empirical_order", "endpoint_error", "work_precision"]


@dataclass
class ConvergenceResult:
    method: str
    step_sizes: np.ndarray
    errors: np.ndarray
    nfe: np.ndarray
    order: float  # the fitted slope of log(error) against log(h)


def endpoint_error(sol, problem: Problem) -> float:
    """Max-norm error of the solution at ``t1`` against the problem's exact end state."""
    y_end = sol.ys[-1] if isinstance(sol.ys, torch.Tensor) else sol.ys[0][-1]
    return float((y_end.double() - problem.exact_end()).abs().max())


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
    slope = float(np.polyfit(np.log(hs), np.log(errors), 1)[0])
    return ConvergenceResult(method, hs, errors, np.asarray(nfe), slope)


def work_precision(problem: Problem, method: str, tolerances=None, step_sizes=None, dtype=torch.float64):
    """(NFE, endpoint error) pairs: over ``tolerances`` (rtol = atol) for an adaptive method,
    over ``step_sizes`` for a fixed-step one."""
    y0, t = problem.initial(dtype), problem.times(2, dtype)
    points = []
    if TABLEAUX[method].adaptive:
        for tol in (tolerances if tolerances is not None else np.logspace(-3, -10, 8)):
            sol = solve(problem, y0, t, method=method, rtol=float(tol), atol=float(tol))
            points.append((sol.stats.nfe, endpoint_error(sol, problem)))
    else:
        span = problem.t1 - problem.t0
        for h in (step_sizes if step_sizes is not None else [span / 2 ** k for k in range(3, 11)]):
            sol = solve(problem, y0, t, method=method, options={"step_size": float(h)})
            points.append((sol.stats.nfe, endpoint_error(sol, problem)))
    return np.asarray(points)
