"""Checks for lesson 1, "ResNets are Euler steps".

* :func:`check_euler_step` — one Euler step ``euler_step(f, t, z, dt)``.
* :func:`check_resnet_as_euler` — a ResNet of N blocks scaled 1/N, ``resnet_forward(f, h0, N)``.
* :func:`check_depth_slope` — the measured slope of log(global error) against log(N).

Each check runs the learner's answer on cases it has not seen and compares with the package.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from ..integrate import rk_step
from ..resnet import Dynamics, depth_study, euler_hidden_states
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
            err, got = run_safely(name, euler_step, f, t_t, z.clone(), dt)
            if err is not None:
                return err
            want, _, _ = rk_step(f, t_t, z, dt, EULER)
            got = _as_tensor(got)
            if got is None:
                return failed(name, "your function must return a tensor (the new state).")
            if got.shape != want.shape:
                return failed(name, f"the new state must have the shape of z, {tuple(z.shape)}; yours has {tuple(got.shape)}.")
            if torch.allclose(got, want, rtol=1e-10, atol=1e-12):
                continue
            if torch.allclose(got, z):
                return failed(name, "your step returns z unchanged: the state must move along the field f.")
            if torch.allclose(got, f(t_t + dt, z + dt * f(t_t, z)) * dt + z):
                return failed(name, "Euler evaluates f only once, at the start of the step.")
            if torch.allclose(got, z + f(t_t, z)):
                return failed(name, "the move along f must be scaled by the step size dt.")
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
            return failed(name, f"wrong h_N for {label} with N = {n}. Check the number of blocks, "
                                "their scaling, and the t each block passes to f.")
    return passed(name, "your network equals Euler's method with step 1/N for N = 1, 3 and 10 on two fields.")


@lru_cache(maxsize=None)
def _measured_depth_slope() -> float:
    """The package's own measurement for Dynamics(seed=0), made once per session."""
    h0 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.5]], dtype=torch.float64)
    with torch.no_grad():
        return depth_study(Dynamics(seed=0), h0, depths=(4, 8, 16, 32, 64, 128)).slope


def check_depth_slope(slope) -> CheckResult:
    """``slope``: the fitted slope of log(error at t = 1) against log(N) for tied ResNets."""
    name = "the order of convergence in depth"
    if slope is None:
        return failed(name, _NOT_ATTEMPTED)
    try:
        slope = float(slope)
    except (TypeError, ValueError):
        return failed(name, f"give the slope as a number (got {type(slope).__name__}).")
    if not math.isfinite(slope):
        return failed(name, "the slope is not a finite number: are some errors zero or NaN before taking logs?")
    measured = _measured_depth_slope()
    if slope > 0:
        return failed(name, "a positive slope would mean deeper networks are further from the ODE. "
                            "Fit log(error) against log(N), in that order.")
    if abs(slope - measured) <= 0.1:
        return passed(name, f"{slope:.2f} is what deeper and deeper tied ResNets do. "
                            "Compare it with the order of Euler's method.")
    if abs(slope - 1 / measured) <= 0.1:
        return failed(name, "you may have fitted log(N) against log(error): swap the axes.")
    return failed(name, "not what the networks show. Use depths spread over a wide range (powers of 2), "
                        "measure max |h_N − h(1)| for each, and fit a straight line on log–log axes.")
