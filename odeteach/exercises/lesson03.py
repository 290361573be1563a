"""Checks for lesson 3, "The adjoint method: gradients at O(1) memory".

* :func:`check_augmented_dynamics` — the right-hand side of the backward ODE,
  ``my_rhs(f, t, z, a, theta) -> (dz/dt, da/dt, d(dL/dθ)/dt)``.
* :func:`check_time_gradients` — ``my_time_grads(f, t0, t1, z0, z1, a_end) -> (dL/dt0, dL/dt1)``
  for a loss of z(t1) alone, with ``a_end = dL/dz(t1)``.
* :func:`check_memory_prediction` — ``my_predict(n_steps) -> bytes``: from two measurements,
  predict what backprop through RK4 saves at step counts you have not measured.
"""

from __future__ import annotations

import math

import torch

from ..adjoint import odeint_adjoint
from ..integrate import odeint
from ..memory import measure_saved
from . import CheckResult, failed, passed, run_safely

__all__ = ["check_augmented_dynamics", "check_time_gradients", "check_memory_prediction", "memory_workload",
           "MEASURED_STEPS"]

_NOT_ATTEMPTED = "not attempted yet: replace the placeholder with your answer and run this cell again."
F64 = torch.float64

# Exercise 3: the learner sees the saved bytes at these step counts; the check asks about others.
MEASURED_STEPS = (10, 20)
_CHECKED_STEPS = (7, 50, 120)


def _fields():
    """Vector fields f(t, z, θ) the checks use: linear, nonlinear, time-dependent."""
    g = torch.Generator().manual_seed(3)
    W = torch.randn(3, 3, generator=g, dtype=F64)
    yield "a linear field θ z", (lambda t, z, th: th * z), torch.randn(3, generator=g, dtype=F64), torch.tensor(-0.7, dtype=F64)
    yield "tanh(W z) θ", (lambda t, z, th: torch.tanh(z @ W) * th), torch.randn(3, generator=g, dtype=F64), \
        torch.randn(3, generator=g, dtype=F64)
    yield "a time-dependent field", (lambda t, z, th: torch.sin(t * th[0]) * z ** 2 - th[1] * z), \
        torch.randn(3, generator=g, dtype=F64), torch.tensor([1.3, 0.4], dtype=F64)


def _reference_rhs(f, t, z, a, theta):
    z = z.detach().requires_grad_(True)
    th = theta.detach().requires_grad_(True)
    with torch.enable_grad():
        dz = f(t, z, th)
        vz, vth = torch.autograd.grad(dz, (z, th), -a, allow_unused=True)
    return dz.detach(), vz if vz is not None else torch.zeros_like(z), vth if vth is not None else torch.zeros_like(th)


def check_augmented_dynamics(my_rhs) -> CheckResult:
    """``my_rhs(f, t, z, a, theta)`` must return ``(f, -aᵀ ∂f/∂z, -aᵀ ∂f/∂θ)``, the backward ODE's right-hand side."""
    name = "the augmented dynamics [z, a, dL/dθ]"
    if my_rhs is None:
        return failed(name, _NOT_ATTEMPTED)
    if not callable(my_rhs):
        return failed(name, f"pass your function itself (got a {type(my_rhs).__name__}).")
    g = torch.Generator().manual_seed(11)
    for what, f, z, theta in _fields():
        t = torch.tensor(0.6, dtype=F64)
        a = torch.randn(z.shape, generator=g, dtype=F64)
        problem, out = run_safely(name, my_rhs, f, t, z.clone(), a.clone(), theta.clone())
        if problem is not None:  # a failed CheckResult is falsy
            return problem
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            return failed(name, "return three things: (dz/dt, da/dt, d(dL/dθ)/dt).")
        want = _reference_rhs(f, t, z, a, theta)
        for part, got, ref in zip(("dz/dt", "da/dt", "d(dL/dθ)/dt"), out, want):
            if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(ref.shape):
                shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
                return failed(name, f"{part} for {what} should have the shape of the "
                                    f"{'state' if part != 'd(dL/dθ)/dt' else 'parameter'} {tuple(ref.shape)}; got {shape}.")
            got = got.detach().to(F64)
            if torch.allclose(got, -ref, atol=1e-10, rtol=1e-8) and ref.abs().max() > 0:
                return failed(name, f"{part} for {what} has the wrong sign. Which way does the adjoint ODE run, "
                                    "and what sign does the article put in front of a(t)ᵀ ∂f/∂z?")
            if not torch.allclose(got, ref, atol=1e-10, rtol=1e-8):
                return failed(name, f"{part} is off for {what}. A vector–Jacobian product aᵀ ∂f/∂x is "
                                    "torch.autograd.grad(f_value, x, grad_outputs=a): no Jacobian needed.")
    return passed(name, "right on a linear, a nonlinear and a time-dependent field.")


def check_time_gradients(my_time_grads) -> CheckResult:
    """``my_time_grads(f, t0, t1, z0, z1, a_end)`` must return ``(dL/dt0, dL/dt1)`` for a loss of z(t1).

    ``f(t, z)``; ``a_end = dL/dz(t1)``. The check compares with autograd through the adjoint.
    """
    name = "gradients with respect to the start and end times"
    if my_time_grads is None:
        return failed(name, _NOT_ATTEMPTED)
    if not callable(my_time_grads):
        return failed(name, f"pass your function itself (got a {type(my_time_grads).__name__}).")
    cases = [((lambda t, z: -0.5 * z ** 3), torch.tensor([1.0, 0.4], dtype=F64), (0.0, 2.0)),
             ((lambda t, z: torch.cos(t) * z), torch.tensor([0.8, -1.1], dtype=F64), (0.3, 1.7))]
    for f, z0, (t0, t1) in cases:
        t = torch.tensor([t0, t1], dtype=F64, requires_grad=True)
        ys = odeint_adjoint(f, z0, t, rtol=1e-10, atol=1e-10, adjoint_params=())
        z1 = ys[-1].detach()
        a_end = 2 * z1  # L = |z(t1)|²
        (ys[-1] ** 2).sum().backward()
        problem, out = run_safely(name, my_time_grads, f, torch.tensor(t0, dtype=F64), torch.tensor(t1, dtype=F64),
                                  z0.clone(), z1.clone(), a_end.clone())
        if problem is not None:  # a failed CheckResult is falsy
            return problem
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            return failed(name, "return two numbers: (dL/dt0, dL/dt1).")
        try:
            g0, g1 = (float(x) for x in out)
        except (TypeError, ValueError):
            return failed(name, "each of dL/dt0 and dL/dt1 should be a number (or a 0-dim tensor).")
        ref0, ref1 = t.grad.tolist()
        if not math.isclose(g1, ref1, rel_tol=1e-6, abs_tol=1e-9):
            if math.isclose(g1, -ref1, rel_tol=1e-6):
                return failed(name, "dL/dt1 has the wrong sign: moving t1 later moves z(t1) along f.")
            return failed(name, "dL/dt1 is off. How much does z(t1) move when t1 moves a little, and what does "
                                "that change in z(t1) cost through a(t1)?")
        if not math.isclose(g0, ref0, rel_tol=1e-5, abs_tol=1e-8):
            return failed(name, "dL/dt1 is right, dL/dt0 is not. You know a(t1), not a(t0): you need the adjoint "
                                "at the start, from solving it backwards (the article's algorithm 1).")
    return passed(name, "both time gradients agree with the adjoint's to 1e-6.")


def memory_workload(n_steps: int) -> int:
    """Bytes autograd saves for backprop through ``n_steps`` RK4 steps of the exercise's field.

    The field is ``tanh(z W)`` on a batch of 32 points in 4 dimensions, t ∈ [0, 1]; parameters and
    input are not counted.
    """
    n_steps = int(n_steps)
    if n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer; got {n_steps}.")
    g = torch.Generator().manual_seed(5)
    W = (torch.randn(4, 4, generator=g, dtype=F64) * 0.3).requires_grad_(True)
    z0 = torch.randn(32, 4, generator=g, dtype=F64, requires_grad=True)
    return measure_saved(odeint, lambda t, z: torch.tanh(z @ W), z0, torch.tensor([0.0, 1.0], dtype=F64),
                         method="rk4", options={"step_size": 1.0 / n_steps}, exclude=[z0, W], cuda=False).saved_bytes


def check_memory_prediction(my_predict) -> CheckResult:
    """``my_predict(n_steps) -> bytes`` must predict :func:`memory_workload` within 2 % at unseen step counts."""
    name = "predict the memory of backprop through the solver"
    if my_predict is None:
        return failed(name, _NOT_ATTEMPTED)
    if not callable(my_predict):
        return failed(name, f"pass your function itself (got a {type(my_predict).__name__}).")
    for n in _CHECKED_STEPS:
        problem, guess = run_safely(name, my_predict, n)
        if problem is not None:  # a failed CheckResult is falsy
            return problem
        try:
            guess = float(guess)
        except (TypeError, ValueError):
            return failed(name, f"my_predict({n}) should return a number of bytes; got {type(guess).__name__}.")
        actual = memory_workload(n)
        if not math.isfinite(guess) or abs(guess - actual) > 0.02 * actual:
            return failed(name, f"my_predict({n}) is off by more than 2 %. Each RK4 step saves the same tensors: "
                                "how does the total grow with the number of steps, and is there a part that does "
                                "not grow at all?")
    return passed(name, f"within 2 % at {', '.join(map(str, _CHECKED_STEPS))} steps.")
