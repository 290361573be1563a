"""Checks for lesson 3, "The adjoint method: gradients at O(1) memory".

* :func:`check_augmented_dynamics` — the right-hand side of the backward ODE,
  ``my_rhs(f, t, z, a, theta) -> (dz/dt, da/dt, da_θ/dt, da_t/dt)``.
* :func:`check_time_gradients` — ``my_time_grads(f, t0, t1, z0, z1, a_end) -> (dL/dt0, dL/dt1)``
  for a loss of z(t1) alone, with ``a_end = dL/dz(t1)``.
* :func:`check_memory_prediction` — ``my_predict(method, n_steps, batch, width) -> bytes``: what
  backprop through a fixed-step solver saves for the lesson's MLP field, at sizes the lesson never shows.
"""

from __future__ import annotations

import math

import torch

from ..adjoint import odeint_adjoint
from ..adjoint_studies import MLPField
from ..integrate import odeint
from ..memory import measure_saved
from . import CheckResult, failed, passed, run_safely

__all__ = ["check_augmented_dynamics", "check_time_gradients", "check_memory_prediction", "saved_by_backprop",
           "MEMORY_CASES"]

_NOT_ATTEMPTED = "not attempted yet: replace the placeholder with your answer and run this cell again."
F64 = torch.float64

# Exercise 3 is checked at these (method, n_steps, batch, width): none of them appears in the lesson.
MEMORY_CASES = (("midpoint", 7, 16, 8), ("rk4", 3, 5, 50), ("euler", 1, 7, 3), ("heun", 12, 24, 20))


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
    inputs = [x.detach().requires_grad_(True) for x in (z, theta, t)]
    with torch.enable_grad():
        dz = f(inputs[2], inputs[0], inputs[1])
        vjps = torch.autograd.grad(dz, inputs, -a, allow_unused=True)
    return (dz.detach(), *(torch.zeros_like(x) if v is None else v for x, v in zip(inputs, vjps)))


_PARTS = ("dz/dt", "da/dt", "da_θ/dt", "da_t/dt")
_SHAPE_OF = {"dz/dt": "state", "da/dt": "state", "da_θ/dt": "parameter", "da_t/dt": "time (a number)"}


def _as_part(part, got, ref):
    """The learner's part as a float64 tensor of the reference's shape, or a hint."""
    if part == "da_t/dt" and isinstance(got, (int, float)):
        got = torch.tensor(float(got), dtype=F64)
    if not isinstance(got, torch.Tensor) or got.numel() != ref.numel() or (part != "da_t/dt" and got.shape != ref.shape):
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        return None, f"{part} should have the shape of the {_SHAPE_OF[part]} {tuple(ref.shape)}; got {shape}."
    return got.detach().to(F64).reshape(ref.shape), None


def check_augmented_dynamics(my_rhs) -> CheckResult:
    """``my_rhs(f, t, z, a, theta)`` must return ``(f, -aᵀ ∂f/∂z, -aᵀ ∂f/∂θ, -aᵀ ∂f/∂t)``."""
    name = "the augmented dynamics [z, a, a_θ, a_t]"
    if my_rhs is None:
        return failed(name, _NOT_ATTEMPTED)
    if not callable(my_rhs):
        return failed(name, f"pass your function itself (got a {type(my_rhs).__name__}).")
    g = torch.Generator().manual_seed(11)
    for what, f, z, theta in _fields():
        t = torch.tensor(0.6, dtype=F64)
        a = torch.randn(z.shape, generator=g, dtype=F64)
        problem, out = run_safely(name, my_rhs, f, t.clone(), z.clone(), a.clone(), theta.clone())
        if problem is not None:  # a failed CheckResult is falsy
            return problem
        if not isinstance(out, (tuple, list)) or len(out) != 4:
            return failed(name, "return four things: (dz/dt, da/dt, da_θ/dt, da_t/dt), one for each part of "
                                "the augmented state.")
        for part, got, ref in zip(_PARTS, out, _reference_rhs(f, t, z, a, theta)):
            got, hint = _as_part(part, got, ref)
            if hint:
                return failed(name, f"for {what}, {hint}")
            if torch.allclose(got, -ref, atol=1e-10, rtol=1e-8) and ref.abs().max() > 0:
                return failed(name, f"{part} for {what} has the wrong sign. Which way does the adjoint ODE run, "
                                    "and what sign does the article put in front of a(t)ᵀ ∂f/∂(·)?")
            if not torch.allclose(got, ref, atol=1e-10, rtol=1e-8):
                if part == "da_t/dt":
                    return failed(name, f"da_t/dt is off for {what}. It is the same kind of product as the two "
                                        "before it, with t in the place of z or θ (t can require grad too).")
                return failed(name, f"{part} is off for {what}. A vector–Jacobian product aᵀ ∂f/∂x is "
                                    "torch.autograd.grad(f_value, x, grad_outputs=a): no Jacobian needed. "
                                    "Mind the order: aᵀ J is not J a.")
    return passed(name, "right on a linear, a nonlinear and a time-dependent field.")


def _time_cases():
    """(description, f, z0, (t0, t1), autonomous) for check_time_gradients: fields the lesson does not use."""
    yield "an autonomous field", (lambda t, z: -0.5 * z ** 3), torch.tensor([1.0, 0.4], dtype=F64), (0.0, 2.0), True
    yield "a field that depends on t", (lambda t, z: torch.cos(t) * z), torch.tensor([0.8, -1.1], dtype=F64), \
        (0.3, 1.7), False


def _time_hint(g0, g1, ref0, autonomous):
    """Why a dL/dt0 is wrong, without giving it away."""
    if math.isclose(g0, -ref0, rel_tol=1e-5, abs_tol=1e-8):
        return ("dL/dt0 has the wrong sign. Starting later from the same z0 leaves less time to integrate: "
                "which way does that move z(t1)? And what does the article start a_t at?")
    if not autonomous and math.isclose(g0, -g1, rel_tol=1e-5, abs_tol=1e-8):
        return ("dL/dt0 = −dL/dt1 holds when f does not depend on t (a_t stays constant); this f does. "
                "You need the adjoint and f at the start, not at the end.")
    return ("dL/dt1 is right, dL/dt0 is not. You know a(t1), not a(t0): you need the adjoint at the start, "
            "from solving it backwards (the article's algorithm 1), and f evaluated there.")


def check_time_gradients(my_time_grads) -> CheckResult:
    """``my_time_grads(f, t0, t1, z0, z1, a_end)`` must return ``(dL/dt0, dL/dt1)`` for a loss of z(t1).

    ``f(t, z)``; ``a_end = dL/dz(t1)``. The check compares with autograd through the adjoint, on an
    autonomous field and on one that depends on t.
    """
    name = "gradients with respect to the start and end times"
    if my_time_grads is None:
        return failed(name, _NOT_ATTEMPTED)
    if not callable(my_time_grads):
        return failed(name, f"pass your function itself (got a {type(my_time_grads).__name__}).")
    for what, f, z0, (t0, t1), autonomous in _time_cases():
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
        except (TypeError, ValueError, RuntimeError):
            return failed(name, "each of dL/dt0 and dL/dt1 should be a number (or a 0-dim tensor).")
        ref0, ref1 = t.grad.tolist()
        if not math.isclose(g1, ref1, rel_tol=1e-6, abs_tol=1e-9):
            if math.isclose(g1, -ref1, rel_tol=1e-6):
                return failed(name, f"dL/dt1 has the wrong sign for {what}: moving t1 later moves z(t1) along f.")
            return failed(name, f"dL/dt1 is off for {what}. How much does z(t1) move when t1 moves a little, "
                                "and what does that change in z(t1) cost through a(t1)?")
        if not math.isclose(g0, ref0, rel_tol=1e-5, abs_tol=1e-8):
            return failed(name, f"for {what}: " + _time_hint(g0, g1, ref0, autonomous))
    return passed(name, "both time gradients agree with the adjoint's to 1e-6, with f autonomous and not.")


_STAGES = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}


def saved_by_backprop(method: str, n_steps: int, batch: int, width: int) -> int:
    """Bytes autograd saves for backprop through ``n_steps`` fixed steps of ``method`` (the reference).

    The lesson's :class:`~odeteach.adjoint_studies.MLPField` (2-D state, ``width`` hidden units,
    float64) on ``batch`` points over t ∈ [0, 1]; the parameters and the input batch are not counted
    (:func:`odeteach.measure_saved`'s ``exclude``).
    """
    if method not in _STAGES:
        raise ValueError(f"method must be one of {', '.join(_STAGES)}; got {method!r}.")
    field = MLPField(width=int(width), seed=0)
    z0 = torch.randn(int(batch), 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    return measure_saved(odeint, field, z0, torch.tensor([0.0, 1.0], dtype=F64), method=method,
                         options={"step_size": 1.0 / int(n_steps)}, exclude=[z0, *field.parameters()],
                         cuda=False).saved_bytes


def check_memory_prediction(my_predict) -> CheckResult:
    """``my_predict(method, n_steps, batch, width) -> bytes`` must match :func:`saved_by_backprop` to 0.1 %.

    It is called (under ``torch.no_grad()``, so it must predict, not measure) at :data:`MEMORY_CASES`.
    """
    name = "predict the memory of backprop through the solver"
    if my_predict is None:
        return failed(name, _NOT_ATTEMPTED)
    if not callable(my_predict):
        return failed(name, f"pass your function itself (got a {type(my_predict).__name__}).")
    for method, n, batch, width in MEMORY_CASES:
        with torch.no_grad():
            problem, guess = run_safely(name, my_predict, method, n, batch, width)
        if problem is not None:  # a failed CheckResult is falsy
            return problem
        call = f"my_predict({method!r}, n_steps={n}, batch={batch}, width={width})"
        try:
            guess = float(guess)
        except (TypeError, ValueError, RuntimeError):
            return failed(name, f"{call} should return a number of bytes; got {type(guess).__name__}.")
        actual = saved_by_backprop(method, n, batch, width)
        if guess == 0:
            return failed(name, f"{call} returned 0 bytes. The check runs my_predict without autograd, so "
                                "measuring inside it saves nothing: compute the bytes from what one call of "
                                "the field saves and how many calls the solver makes.")
        if not math.isfinite(guess) or abs(guess - actual) > 1e-3 * actual:
            return failed(name, f"{call} is off by more than 0.1 %. How many times does {method} call the field "
                                "per step? What does one call save (measure one call with measure_saved), and how "
                                "does that depend on the batch and the width? Each storage counts once.")
    return passed(name, f"exact at {len(MEMORY_CASES)} sizes and methods the lesson never showed.")
