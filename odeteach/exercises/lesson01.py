"""Checks for lesson 1, "ResNets are Euler steps".

* :func:`check_euler_step` — one Euler step ``euler_step(f, t, z, dt)``.
* :func:`check_resnet_as_euler` — a ResNet of N blocks scaled 1/N, ``resnet_forward(f, h0, N)``.
* :func:`check_depth_slope` — a function ``depth_slope(f, h0, depths)`` that measures the slope of
  log(global error) against log(N).

Each check runs the learner's function on fields, depths and starting points the lesson does not
show and compares with the package's own computation, so no number copied from the lesson (nor
the textbook order −1) passes.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from ..integrate import rk_step
from ..resnet import Dynamics, euler_hidden_states, fitted_slope, ode_hidden_states
from ..tableaux import EULER
from . import CheckResult, failed, passed, run_safely

__all__ = ["check_euler_step", "check_resnet_as_euler", "check_depth_slope"]

_NOT_ATTEMPTED = "not attempted yet: replace the placeholder with your answer and run this cell again."


def _fields():
    """Fields the learner has not seen: linear, nonlinear, and time-dependent."""
    M = torch.tensor([[-0.3, -1.2], [0.9, -0.1]], dtype=torch.float64)
    return [
        ("dz/dt = M z", lambda t, z: z @ M.T),
        ("dz/dt = sin(z) + t", lambda t, z: torch.sin(z) + t),
        ("dz/dt = -z³ cos(3t)", lambda t, z: -(z ** 3) * torch.cos(3 * t)),
    ]


def _as_tensor(x):
    return x if isinstance(x, torch.Tensor) else None


def _euler_mistake(f, t, z, dt, got, n_calls):
    """A hint for the usual wrong Euler steps, or None."""
    close = lambda want: torch.allclose(got, want, rtol=1e-10, atol=1e-12)  # noqa: E731
    if close(z):
        return "your step returns z unchanged: the state must move along the field f."
    if close(z + f(t, z)):
        return "the move along f must be scaled by the step size dt."
    if close(z + dt * f(t + dt, z)) or close(z + dt * f(t + dt, z + dt * f(t, z))):
        return "take the slope at the start of the step, (t, z), not at its end."
    if n_calls > 1:
        return f"your step evaluates f {n_calls} times; Euler evaluates it only once, at the start of the step."
    return None


def check_euler_step(euler_step) -> CheckResult:
    """``euler_step(f, t, z, dt)`` must return z after one Euler step of size dt from (t, z)."""
    name = "one Euler step"
    if euler_step is None:
        return failed(name, _NOT_ATTEMPTED)
    if not callable(euler_step):
        return failed(name, f"pass your function itself (got a {type(euler_step).__name__}).")
    gen = torch.Generator().manual_seed(11)
    for label, f in _fields():
        for shape, t, dt in (((2,), 0.3, 0.1), ((5, 2), 1.7, 0.25), ((2,), -0.4, -0.05)):
            z = torch.randn(*shape, generator=gen, dtype=torch.float64)
            t_t = torch.tensor(t, dtype=torch.float64)
            calls = []
            counted = lambda t_, z_, f=f: calls.append(1) or f(t_, z_)  # noqa: E731
            err, got = run_safely(name, euler_step, counted, t_t, z.clone(), dt)
            if err is not None:
                return err
            if got is None:
                return failed(name, "your function returns None: " + _NOT_ATTEMPTED)
            want, _, _ = rk_step(f, t_t, z, dt, EULER)
            got = _as_tensor(got)
            if got is None:
                return failed(name, "your function must return a tensor (the new state).")
            if got.shape != want.shape:
                return failed(name, f"the new state must have the shape of z, {tuple(z.shape)}; yours has {tuple(got.shape)}.")
            if torch.allclose(got, want, rtol=1e-10, atol=1e-12):
                continue
            hint = _euler_mistake(f, t_t, z, dt, got, len(calls))
            if hint:
                return failed(name, hint)
            return failed(name, f"wrong new state for {label} (t = {t}, dt = {dt}). Write the step as "
                                "the state plus the step size times the slope at the start.")
    return passed(name, "your step matches Euler's method on three different fields, forwards and backwards in time.")


def check_resnet_as_euler(resnet_forward) -> CheckResult:
    """``resnet_forward(f, h0, N)`` must return h_N of N residual blocks scaled by 1/N.

    Block k sees its depth t_k = k/N: ``h_{k+1} = h_k + (1/N) f(t_k, h_k)``, with ``f(t, h)`` called
    in the solver's argument order.
    """
    name = "a ResNet of N blocks scaled 1/N"
    if resnet_forward is None:
        return failed(name, _NOT_ATTEMPTED)
    if not callable(resnet_forward):
        return failed(name, f"pass your function itself (got a {type(resnet_forward).__name__}).")
    gen = torch.Generator().manual_seed(5)
    fields = [("a time-dependent network", Dynamics(seed=3, wobble=0.7)), _fields()[2]]
    for label, f in fields:
        for n in (1, 3, 10):
            h0 = torch.randn(4, 2, generator=gen, dtype=torch.float64)
            with torch.no_grad():
                err, got = run_safely(name, resnet_forward, f, h0.clone(), n)
                if err is not None:
                    return err
                want = euler_hidden_states(f, h0, n)[-1]
            if got is None:
                return failed(name, "your function returns None: " + _NOT_ATTEMPTED)
            got = _as_tensor(got)
            if got is None:
                return failed(name, "return the last hidden state h_N as a tensor.")
            if got.shape != want.shape:
                if got.shape == (n + 1, *h0.shape):
                    return failed(name, "return only the last hidden state h_N, not all of them.")
                return failed(name, f"h_N must have the shape of h0, {tuple(h0.shape)}; yours has {tuple(got.shape)}.")
            if torch.allclose(got.double(), want, rtol=1e-9, atol=1e-11):
                continue
            if torch.allclose(got.double(), h0):
                return failed(name, "your network returns h0 unchanged: each block must add its residual update.")
            with torch.no_grad():
                h = h0.clone()
                for _ in range(n):
                    h = h + f(torch.tensor(0.0, dtype=torch.float64), h) / n
            if torch.allclose(got.double(), h, rtol=1e-9, atol=1e-11):
                return failed(name, "every block gets the same t: each block k must see its own depth t_k.")
            with torch.no_grad():
                h = h0.clone()
                for k in range(n):
                    h = h + f(torch.tensor(k / n, dtype=torch.float64), h)
            if torch.allclose(got.double(), h, rtol=1e-9, atol=1e-11):
                return failed(name, "the blocks are not scaled: each residual update must be scaled so that "
                                    "N blocks together span t from 0 to 1.")
            with torch.no_grad():
                h = h0.clone()
                for k in range(n):
                    h = h + f(torch.tensor((k + 1) / n, dtype=torch.float64), h) / n
            if torch.allclose(got.double(), h, rtol=1e-9, atol=1e-11):
                return failed(name, "block k must see the depth at the start of its step, t_k = k/N, not at its end.")
            return failed(name, f"wrong h_N for {label} with N = {n}. Check the number of blocks, "
                                "their scaling, and the t each block passes to f.")
    return passed(name, "your network equals Euler's method with step 1/N for N = 1, 3 and 10 on two fields.")


_SLOPE_TOL = 0.01


@lru_cache(maxsize=None)
def _slope_cases():
    """(label, field, h0, depths, answers): cases the lesson never shows, with the package's answers.

    ``answers`` maps "right" to the slope of log max|h_N − h(1)| against log N (Euler with step 1/N
    is the tied ResNet, bit for bit), and each usual mistake to the slope it gives.
    """
    gen = torch.Generator().manual_seed(21)
    cases = [("dz/dt = sin(z) + t", _fields()[1][1], (1, 2, 4, 8)),
             ("a network whose weights vary with t", Dynamics(seed=7, hidden=8, wobble=0.8), (8, 16, 32, 64, 128)),
             ("a tied network", Dynamics(seed=7, hidden=8), (1, 2, 3, 4, 6))]
    out = []
    for label, f, depths in cases:
        h0 = torch.randn(4, 2, generator=gen, dtype=torch.float64)
        with torch.no_grad():
            h_end = ode_hidden_states(f, h0, torch.tensor([0.0, 1.0], dtype=torch.float64))[-1]
            diffs = [euler_hidden_states(f, h0, n)[-1] - h_end for n in depths]
            same_t = [_same_t_network(f, h0, n) - h_end for n in depths]
        err = [float(d.abs().max()) for d in diffs]
        right = fitted_slope(depths, err)
        answers = {
            "right": right,
            "a positive slope would mean deeper networks are further from the ODE. Fit log(error) "
            "against log(N), the depth, not against the step 1/N.": -right,
            "you may have fitted log(N) against log(error): swap the axes.": 1 / right,
            "fit the straight line to the logarithms of N and of the error (log–log axes).":
                float(np.polyfit(depths, err, 1)[0]),
            "the error is the largest |h_N − h(1)| over every point and coordinate, not an average.":
                fitted_slope(depths, [float(d.abs().mean()) for d in diffs]),
            "the error is the largest |h_N − h(1)| in any single coordinate (.abs().max()), not a vector norm.":
                fitted_slope(depths, [float(d.norm(dim=-1).max()) for d in diffs]),
            "your errors hardly fall with N, so the network is not converging to this ODE: does each "
            "block see its own depth t_k (exercise 2)?": fitted_slope(depths, [float(d.abs().max()) for d in same_t]),
        }
        out.append((label, f, h0, depths, answers))
    return tuple(out)


def _same_t_network(f, h0, n):
    h = h0
    for _ in range(n):
        h = h + f(torch.tensor(0.0, dtype=torch.float64), h) / n
    return h


def _as_slope(value):
    """The learner's slope as a float, or a hint saying why it is not one."""
    if value is None:
        return None, "your function returns None: " + _NOT_ATTEMPTED
    if isinstance(value, (np.ndarray, torch.Tensor, list, tuple)) and np.size(value) == 2:
        return None, "return one number, the slope: np.polyfit(x, y, 1) returns [slope, intercept]."
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None, f"your function must return the slope as a number (got {type(value).__name__})."
    if not math.isfinite(value):
        return None, "the slope is not a finite number: are some errors zero or NaN before taking logs?"
    return value, None


def check_depth_slope(depth_slope) -> CheckResult:
    """``depth_slope(f, h0, depths)``: the fitted slope of log max|h_N − h(1)| against log N.

    h_N is the output of the tied ResNet of N blocks scaled 1/N on the field ``f(t, h)``, h(1) the
    ODE's solution at t = 1. The check runs it on three fields, starting points and sets of depths
    that the lesson never shows, and compares with the package's measurement.
    """
    name = "the order of convergence in depth"
    if depth_slope is None:
        return failed(name, _NOT_ATTEMPTED)
    if not callable(depth_slope):
        return failed(name, f"pass your function itself, depth_slope (got a {type(depth_slope).__name__}): "
                            "the check runs it on fields of its own.")
    slopes = []
    for label, f, h0, depths, _ in _slope_cases():
        with torch.no_grad():
            err, got = run_safely(name, depth_slope, f, h0.clone(), list(depths))
        if err is not None:
            return err
        got, hint = _as_slope(got)
        if hint:
            return failed(name, hint)
        slopes.append(got)
    cases = _slope_cases()
    wrong = [(case, s) for case, s in zip(cases, slopes) if abs(s - case[4]["right"]) > _SLOPE_TOL]
    if not wrong:
        return passed(name, "your function measures the slope on fields and depths it has not seen. Compare "
                            "its values with the order of Euler's method: where are they close to it, and where not?")
    if max(abs(s) for s in slopes) < 0.05:
        return failed(name, "your slopes are about 0: the errors do not fall with N. Does your resnet_forward "
                            "pass its check (exercise 2), and do you compare h_N with the ODE's h(1)?")
    if max(slopes) - min(slopes) < 1e-9:
        return failed(name, f"your function returns {slopes[0]:.3g} for every field and every set of depths. "
                            "The slope must come from errors your function measures, not from a number you know.")
    (label, _, _, depths, answers), got = wrong[0]
    for hint, value in answers.items():
        if hint != "right" and abs(got - value) <= _SLOPE_TOL:
            return failed(name, hint)
    return failed(name, f"wrong slope for {label} at depths {list(depths)}. For each N run your tied ResNet, "
                        "take max |h_N − h(1)| with h(1) from ode_hidden_states, and fit log(error) against log(N).")
