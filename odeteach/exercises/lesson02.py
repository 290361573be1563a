"""Checks for lesson 2, "Solvers: step size, tolerance and NFE".

* :func:`check_rk_step` — one explicit Runge–Kutta step for *any* tableau,
  ``my_rk_step(f, t, y, h, tableau)``: a method is data.
* :func:`check_measure_order` — a function ``measure_order(run, exact, step_sizes)`` that measures
  the order of convergence of whatever solver ``run(h)`` is, by fitting log(error) against log(h).
* :func:`check_max_stable_step` — a function ``my_max_stable_step(R, lam)``: the largest step h for
  which every step in (0, h] keeps |R(h·λ)| ≤ 1.

The checks run the learner's function on methods, problems, stability functions and λ that the
lesson never shows, so no number copied from the lesson (or a textbook) passes.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from ..convergence import constant_step_runner, fitted_order
from ..integrate import rk_step
from ..problems import detest_a2, detest_a3, harmonic_oscillator
from ..stability import max_stable_step, stability_function
from ..tableaux import TABLEAUX
from . import CheckResult, failed, passed, run_safely

__all__ = ["check_rk_step", "check_measure_order", "check_max_stable_step", "ORDER_STEP_SIZES"]

_NOT_ATTEMPTED = "not attempted yet: replace the placeholder with your answer and run this cell again."

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


# Exercise 2's cases: (method, problem, step sizes). None is shown in the lesson, and their
# orders differ, so no constant (a textbook order, a slope the lesson prints) passes all three.
_ORDER_CASES = (
    ("heun", detest_a3, (0.4, 0.2, 0.1, 0.05)),
    ("bosh3", detest_a2, (1.0, 0.5, 0.25, 0.125)),
    ("rk4", harmonic_oscillator, (0.5, 0.25, 0.125, 0.0625)),
)
# How far a learner's slope may be from the package's fit on the same errors: room for another
# norm (2-norm, relative error) or a two-point slope, none for a wrong fit.
_ORDER_TOLERANCE = 0.1
# log10 of the errors against ln h (or the reverse) gives the slope times (or over) ln 10 exactly.
_LOG_MIX_TOLERANCE = 0.02


@lru_cache(maxsize=None)
def _order_case(k: int):
    """(description, run, exact, step sizes, the package's measured slope, and what three
    mistakes give: the fit's intercept, the slope of the state instead of the error)."""
    method, problem, hs = _ORDER_CASES[k]
    run = constant_step_runner(problem, method)
    exact = problem.exact_end()
    errors = [float((run(h) - exact).abs().max()) for h in hs]
    intercept = float(np.polyfit(np.log(hs), np.log(errors), 1)[1])
    state_slope = fitted_order(hs, [float(run(h).abs().max()) for h in hs])
    label = f"case {k + 1} of {len(_ORDER_CASES)} (a method on a problem the lesson does not use)"
    return label, run, exact, hs, fitted_order(hs, errors), intercept, state_slope


def check_measure_order(measure_order) -> CheckResult:
    """``measure_order(run, exact, step_sizes)`` must return the measured order of convergence.

    ``run(h)`` returns a solver's state at t1 after equal steps of size h, ``exact`` the exact state
    at t1. The order is the slope of log(max-norm error) against log(h) over ``step_sizes``.
    """
    name = "measuring the order of convergence"
    if measure_order is None:
        return failed(name, _NOT_ATTEMPTED)
    if isinstance(measure_order, dict):
        return failed(name, "pass your function measure_order(run, exact, step_sizes) itself, not a dict of slopes: "
                            "the check runs it on solvers and problems the lesson does not show.")
    if not callable(measure_order):
        return failed(name, f"pass your function itself (got a {type(measure_order).__name__}).")
    for k in range(len(_ORDER_CASES)):
        label, run, exact, hs, want, intercept, state_slope = _order_case(k)
        err, got = run_safely(name, measure_order, run, exact.clone(), list(hs))
        if err is not None:
            return err
        if got is None:
            return failed(name, "your function returns None: replace the placeholder with code that returns the slope.")
        try:
            got = float(got)
        except (TypeError, ValueError):
            return failed(name, f"return the slope as one number (got a {type(got).__name__}).")
        if not math.isfinite(got):
            return failed(name, f"your slope is not finite in {label}: is one of the errors zero or NaN?")
        if abs(got - want) <= _ORDER_TOLERANCE:
            continue
        if abs(got - intercept) <= _LOG_MIX_TOLERANCE:
            return failed(name, f"that is the intercept of the line in {label}: return its slope.")
        if abs(got - state_slope) <= _LOG_MIX_TOLERANCE:
            return failed(name, f"your slope is that of the state itself in {label}: measure the error, "
                                "run(h) − exact (its largest entry in absolute value).")
        if abs(got + want) <= _ORDER_TOLERANCE:
            return failed(name, f"right size, wrong sign in {label}: the error falls as h falls. Fit log(error) "
                                "against log(h), not against log(N) or log(1/h).")
        if min(abs(got * math.log(10) - want), abs(got / math.log(10) - want)) <= _LOG_MIX_TOLERANCE:
            return failed(name, f"off by a factor ln 10 in {label}: take the same logarithm of the errors and of h.")
        return failed(name, f"not the slope of this solver in {label}. For each h in step_sizes take the error "
                            "|run(h) − exact| (largest entry), then fit a straight line to log(error) against "
                            "log(h) and return its slope.")
    return passed(name, f"your function measures the order in all {len(_ORDER_CASES)} cases, methods on problems "
                        "the lesson does not use: the slope belongs to the method and the problem together, so "
                        "measure it whenever it matters.")


# Exercise 3's cases: (label, R, λ), every λ off the real axis (where the limit is not the
# printed real-axis limit over |λ|), and one stability function of no method in the course.
def _r_polynomial(*coefficients):
    def R(z):
        z = np.asarray(z, dtype=complex)
        out = sum(c * z ** k for k, c in enumerate(coefficients))
        return complex(out) if out.ndim == 0 else out
    return R


def _method_r(method):
    def R(z):
        return stability_function(method, z)
    return R


_STEP_CASES = (
    ("RK4's R(z) at λ = −2 + 3i", _method_r("rk4"), complex(-2.0, 3.0)),
    ("dopri5's R(z) at λ = −0.5 + 4i", _method_r("dopri5"), complex(-0.5, 4.0)),
    ("R(z) = 1 + z + z²/2 + z³/8 at λ = −2 + 1i", _r_polynomial(1.0, 1.0, 0.5, 0.125), complex(-2.0, 1.0)),
    ("bosh3's R(z) at λ = −1 + 6i", _method_r("bosh3"), complex(-1.0, 6.0)),
)
# Relative accuracy asked for: 0.1%.
_STEP_RTOL = 1e-3


@lru_cache(maxsize=None)
def _step_limit(k: int) -> float:
    _, R, lam = _STEP_CASES[k]
    return max_stable_step(R, lam)


def check_max_stable_step(my_max_stable_step) -> CheckResult:
    """``my_max_stable_step(R, lam)`` must return the largest h > 0 such that |R(s·λ)| ≤ 1 for all s in (0, h].

    ``R`` is a stability function (takes a complex z, returns a complex), ``lam`` a complex λ.
    """
    name = "the largest stable step"
    if my_max_stable_step is None:
        return failed(name, _NOT_ATTEMPTED)
    if not callable(my_max_stable_step):
        return failed(name, f"pass your function my_max_stable_step(R, lam) itself (got a "
                            f"{type(my_max_stable_step).__name__}): the check runs it on stability functions "
                            "and λ the lesson does not show.")
    for k, (label, R, lam) in enumerate(_STEP_CASES):
        err, h = run_safely(name, my_max_stable_step, R, lam)
        if err is not None:
            return err
        if h is None:
            return failed(name, "your function returns None: replace the placeholder with code that returns the step.")
        try:
            h = float(h)
        except (TypeError, ValueError):
            return failed(name, f"return the step as one number (got a {type(h).__name__}) for {label}.")
        if not math.isfinite(h) or h <= 0:
            return failed(name, f"a step size is a finite number > 0; yours is {h} for {label}. "
                                "Is z = h·λ complex, with λ's sign and imaginary part kept?")
        limit = _step_limit(k)
        if abs(h - limit) <= _STEP_RTOL * limit:
            continue
        amp = abs(complex(R(h * lam)))
        if h > limit:
            return failed(name, f"too large for {label}: some step in (0, your h] has |R(h·λ)| > 1 "
                                f"(at your h itself |R(h·λ)| = {amp:.4g}). Use z = h·λ with the complex λ, and "
                                "look for the first h where |R| crosses 1, walking out from 0.")
        return failed(name, f"still stable above your h for {label} (|R(h·λ)| = {amp:.4g} ≤ 1 there, and a little "
                            "further too). Use z = h·λ with the complex λ (not |λ| on the real axis), and narrow "
                            "the crossing of |R| = 1 down to 0.1%.")
    return passed(name, f"your function finds the limit for all {len(_STEP_CASES)} cases, off the real axis and "
                        "for a stability function of no method in the lesson.")
