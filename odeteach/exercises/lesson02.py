"""Checks for lesson 2, "Solvers: step size, tolerance and NFE".

* :func:`check_rk_step` — one explicit Runge–Kutta step for *any* tableau,
  ``my_rk_step(f, t, y, h, tableau)``: a method is data.
* :func:`check_orders` — measured orders of convergence, ``{"euler": …, "midpoint": …, "rk4": …}``.
* :func:`check_rk4_stable_step` — the largest stable RK4 step for dy/dt = −10 y.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from ..convergence import empirical_order
from ..integrate import rk_step
from ..problems import damped_spiral
from ..stability import max_stable_step, stability_function
from ..tableaux import TABLEAUX
from . import CheckResult, failed, passed, run_safely

__all__ = ["check_rk_step", "check_orders", "check_rk4_stable_step", "STIFF_LAMBDA", "ORDER_STEP_SIZES"]

_NOT_ATTEMPTED = "not attempted yet: replace the placeholder with your answer and run this cell again."

# The test equation of exercise 3: dy/dt = λ y with this λ.
STIFF_LAMBDA = -10.0
# Step sizes for measuring orders on the damped spiral: small enough that Euler is stable
# (h·λ inside its region needs h < 0.198 there), so the errors are in their asymptotic regime.
ORDER_STEP_SIZES = tuple(0.1 / 2 ** k for k in range(4))


def check_rk_step(my_rk_step) -> CheckResult:
    """``my_rk_step(f, t, y, h, tableau)`` must return y_new of one step of the tableau's method."""
    name = "one Runge–Kutta step from a tableau"
    if my_rk_step is None:
        return failed(name, _NOT_ATTEMPTED)
    if not callable(my_rk_step):
        return failed(name, f"pass your function itself (got a {type(my_rk_step).__name__}).")
    M = torch.tensor([[0.2, -1.0], [1.3, -0.4]], dtype=torch.float64)

    def f(t, y):  # nonlinear and time-dependent, so every c_i and A_ij matters
        return torch.tanh(y @ M.T) + torch.sin(2 * t) * y

    gen = torch.Generator().manual_seed(2)
    right = []
    for method, tab in TABLEAUX.items():
        y = torch.randn(3, 2, generator=gen, dtype=torch.float64)
        t = torch.tensor(0.4, dtype=torch.float64)
        h = 0.3
        err, got = run_safely(name, my_rk_step, f, t, y.clone(), h, tab)
        if err is not None:
            return err
        want, _, _ = rk_step(f, t, y, h, tab)
        if not isinstance(got, torch.Tensor):
            return failed(name, "return the new state y_new as a tensor (not the stages, not a tuple).")
        if got.shape != want.shape:
            return failed(name, f"y_new must have the shape of y, {tuple(y.shape)}; yours has {tuple(got.shape)}.")
        if torch.allclose(got, want, rtol=1e-10, atol=1e-12):
            right.append(method)
            continue
        if method == "euler":
            return failed(name, "even the one-stage method (Euler) comes out wrong: start from y + h Σ b_i k_i.")
        hint = (f"right for {', '.join(right)} but wrong for {method} ({tab.stages} stages). "
                "Check that stage i evaluates f at t + c_i h and at y + h Σ_j A_ij k_j (j < i), "
                "and that the result combines all stages with the weights b.")
        return failed(name, hint)
    return passed(name, f"your step matches all {len(right)} tableaux ({', '.join(right)}): "
                        "one function, every method.")


@lru_cache(maxsize=None)
def _measured_order(method: str) -> float:
    """The package's own measurement, made once per session."""
    return empirical_order(method, damped_spiral, ORDER_STEP_SIZES).order


def check_orders(slopes) -> CheckResult:
    """``slopes``: a dict of measured orders, e.g. ``{"euler": …, "midpoint": …, "rk4": …}``."""
    name = "orders of convergence"
    if slopes is None:
        return failed(name, _NOT_ATTEMPTED)
    if not isinstance(slopes, dict) or not slopes:
        return failed(name, "give a dict mapping method names to the slopes you fitted.")
    wanted = {"euler", "midpoint", "rk4"}
    missing = wanted - set(slopes)
    if missing:
        return failed(name, f"measure these methods too: {', '.join(sorted(missing))}.")
    off = []
    for method in sorted(wanted):
        try:
            slope = float(slopes[method])
        except (TypeError, ValueError):
            return failed(name, f"the slope for {method} must be a number.")
        if not math.isfinite(slope):
            return failed(name, f"the slope for {method} is not finite: are some errors zero or NaN?")
        measured = _measured_order(method)
        if slope < 0 < measured:
            return failed(name, f"the slope for {method} is negative: fit log(error) against log(h), "
                                "and the error falls as h falls.")
        if abs(slope - measured) > 0.25:
            off.append(method)
    if off:
        return failed(name, f"not what the solver does for {', '.join(off)}. Halve h several times from a step "
                            "small enough to be stable, measure the error at t1, and fit the slope of log(error) against log(h).")
    return passed(name, "each slope matches the method's measured order; compare them with the tableaux' orders.")


def check_rk4_stable_step(h_max) -> CheckResult:
    """``h_max``: the largest step for which RK4 stays stable on dy/dt = λ y, λ = STIFF_LAMBDA."""
    name = "the largest stable RK4 step"
    if h_max is None:
        return failed(name, _NOT_ATTEMPTED)
    try:
        h_max = float(h_max)
    except (TypeError, ValueError):
        return failed(name, f"give the step as a number (got {type(h_max).__name__}).")
    if not math.isfinite(h_max) or h_max <= 0:
        return failed(name, "a step size is a finite number > 0.")
    limit = max_stable_step("rk4", STIFF_LAMBDA)
    if abs(h_max - limit) <= 1e-3 * limit:
        return passed(name, f"h = {h_max:.4g}: beyond it |R(h·λ)| > 1 and RK4's solution grows "
                            "while the true one decays.")
    amp = abs(stability_function("rk4", h_max * STIFF_LAMBDA))
    if h_max > limit:
        return failed(name, f"too large: at your h, |R(h·λ)| = {amp:.4g} > 1. "
                            "Bisect on h between a stable and an unstable step.")
    return failed(name, f"still stable there (|R(h·λ)| = {amp:.4g} ≤ 1), and larger steps are too: "
                        "find where |R(h·λ)| crosses 1 to within 0.1%.")
