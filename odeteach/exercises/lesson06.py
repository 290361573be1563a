"""Checks for lesson 6, continuous normalizing flows.

1. ``check_divergence(divergence)``: ``divergence(func, z)`` returns tr(∂f/∂z) for every row of
   a batch ``z`` of shape ``(N, D)``, by automatic differentiation.
2. ``check_linear_flow(log_prob)``: ``log_prob(x, A)`` is log p₁(x) when N(0, I) at t = 0 is
   carried to t = 1 by ``dz/dt = A z``.
3. ``check_hutchinson(hutchinson)``: ``hutchinson(func, z, e)`` returns ``eᵀ (∂f/∂z) e`` row by row.

Each check runs the learner's function on cases built here (random fields and matrices the
learner has not seen) and compares with the package's own computation.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import CheckResult, failed, passed, run_safely
from ..flows import base_log_prob, draw_noise, exact_trace, hutchinson_trace

__all__ = ["check_divergence", "check_hutchinson", "check_linear_flow"]


class _TanhField(nn.Module):
    """A small random nonlinear field R^D → R^D with a non-symmetric Jacobian."""

    def __init__(self, dim, seed):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w1 = torch.randn(16, dim, generator=g, dtype=torch.float64) / math.sqrt(dim)
        self.w2 = torch.randn(dim, 16, generator=g, dtype=torch.float64) / 4
        self.b = torch.randn(16, generator=g, dtype=torch.float64)

    def forward(self, z):
        return torch.tanh(z @ self.w1.T + self.b) @ self.w2.T + 0.3 * z.roll(1, dims=-1)


def _cases():
    """(name, func, z) triples: a linear field, and nonlinear fields in 2 and 5 dimensions."""
    g = torch.Generator().manual_seed(606)
    a = torch.randn(3, 3, generator=g, dtype=torch.float64)
    yield "a linear field f(z) = A z in 3-D", (lambda z: z @ a.T), torch.randn(7, 3, generator=g, dtype=torch.float64)
    for dim, seed in ((2, 1), (5, 2)):
        yield f"a nonlinear field in {dim}-D", _TanhField(dim, seed), torch.randn(9, dim, generator=g, dtype=torch.float64)


def _reference_trace(func, z):
    z = z.detach().requires_grad_(True)
    return exact_trace(func(z), z).detach()


def _as_rows(answer, n, what):
    """The learner's answer as a float64 tensor of shape (n,), or a hint string."""
    if answer is None:
        return None, "not attempted yet: your function returned None."
    if not isinstance(answer, torch.Tensor):
        return None, f"{what} should return a torch.Tensor with one number per row of z; it returned {type(answer).__name__}."
    answer = answer.detach()
    if answer.numel() != n:
        return None, (f"{what} should return one number per row of z (shape ({n},)); it returned shape "
                      f"{tuple(answer.shape)}. Sum over the dimension, not over the batch.")
    return answer.reshape(n).double(), None


def _run(name, fn, *args):
    """``run_safely``, with a pointed hint for the commonest autograd slip."""
    error, answer = run_safely(name, fn, *args)
    if error is not None and "does not require grad" in error.message:
        return failed(name, "autograd had nothing to differentiate: make z require gradients "
                            "(z.requires_grad_(True) on a detached copy) before computing f(z)."), None
    return error, answer


def _compare_rows(name, run, what, want, tolerance, hint):
    """A failed check, or None when the learner's rows match ``want``: ``run`` is ``(error, answer)`` from running
    their function, ``tolerance`` is ``(rtol, atol)`` and ``hint(got)`` says what went wrong."""
    error, answer = run
    if error is not None:
        return error
    got, problem = _as_rows(answer, want.shape[0], what)
    if problem:
        return failed(name, problem)
    if not torch.allclose(got, want, rtol=tolerance[0], atol=tolerance[1]):
        return failed(name, hint(got))
    return None


def check_divergence(divergence) -> CheckResult:
    """``divergence(func, z)`` must return tr(∂func/∂z) for each row of ``z`` (shape ``(N,)``)."""
    name = "exercise 1, the divergence tr(∂f/∂z)"
    if divergence is None:
        return failed(name, "not attempted yet: define divergence(func, z) and run this cell again.")
    for label, func, z in _cases():
        want = _reference_trace(func, z)
        mismatch = _compare_rows(name, _run(name, divergence, func, z.clone()), "divergence", want, (1e-5, 1e-6),
                                 lambda got: _divergence_hint(label, func, z, got, want))
        if mismatch is not None:
            return mismatch
    return passed(name, "it matches the trace of the Jacobian on linear and nonlinear fields in 2, 3 and 5 dimensions.")


def _divergence_hint(label, func, z, got, want) -> str:
    close = lambda other: torch.allclose(got, other, rtol=1e-5, atol=1e-6)  # noqa: E731
    if close(_sum_of_all_entries(func, z)):
        return (f"on {label} your values add up every entry of the Jacobian, not just its diagonal. "
                "Keep ∂f_i/∂z_i only: one gradient per output dimension i.")
    if close(-want):
        return f"on {label} your values have the wrong sign: the divergence is +tr(∂f/∂z)."
    if any(close(_partial_trace(func, z, k)) for k in range(1, z.shape[1])):
        return (f"on {label} your sum stops before the last dimension: loop over all D = z.shape[1] "
                "output dimensions, not a fixed number.")
    return (f"on {label} your values differ from tr(∂f/∂z). Take the gradient of f[:, i].sum() "
            "with respect to z and keep its column i, for each i.")


def _partial_trace(func, z, k):
    """∂f_0/∂z_0 + … + ∂f_{k−1}/∂z_{k−1}: a loop that stopped after k dimensions."""
    z = z.detach().requires_grad_(True)
    f = func(z)
    return sum(torch.autograd.grad(f[:, i].sum(), z, retain_graph=True)[0][:, i] for i in range(k)).detach()


def _sum_of_all_entries(func, z):
    z = z.detach().requires_grad_(True)
    return torch.autograd.grad(func(z).sum(), z)[0].sum(-1).detach()


def check_hutchinson(hutchinson) -> CheckResult:
    """``hutchinson(func, z, e)`` must return ``eᵀ (∂func/∂z) e`` for each row (shape ``(N,)``)."""
    name = "exercise 3, Hutchinson's estimate εᵀ(∂f/∂z)ε"
    if hutchinson is None:
        return failed(name, "not attempted yet: define hutchinson(func, z, e) and run this cell again.")
    g = torch.Generator().manual_seed(6062)
    for label, func, z in _cases():
        e = draw_noise(z.shape, "rademacher" if z.shape[1] == 5 else "gaussian", generator=g, dtype=z.dtype)
        error, answer = _run(name, hutchinson, func, z.clone(), e.clone())
        if error is not None:
            return error
        got, hint = _as_rows(answer, z.shape[0], "hutchinson")
        if hint:
            return failed(name, hint)
        zz = z.detach().requires_grad_(True)
        want = hutchinson_trace(func(zz), zz, e).detach()
        if not torch.allclose(got, want, rtol=1e-5, atol=1e-6):
            return failed(name, _hutchinson_hint(label, hutchinson, func, z, e, got))
    return passed(name, "it matches εᵀ(∂f/∂z)ε for every field and noise tried (Gaussian and Rademacher).")


def _hutchinson_hint(label, hutchinson, func, z, e, got) -> str:
    if torch.allclose(got, _reference_trace(func, z), rtol=1e-5, atol=1e-6):
        return (f"on {label} you returned the exact trace: use the noise e instead, with a single "
                "vector–Jacobian product.")
    _, again = run_safely("", hutchinson, func, z.clone(), e.clone())
    again, _ = _as_rows(again, z.shape[0], "")
    if again is not None and not torch.allclose(got, again, rtol=1e-5, atol=1e-6):
        return ("two calls with the same z and e gave different values: use the noise e you are given, "
                "do not draw your own.")
    return (f"on {label} your values differ from εᵀJε. Compute v = εᵀJ as the gradient of (f * e).sum() "
            "with respect to z, then take the dot product of v and e in each row.")


def _linear_flow_reference(x, a):
    """log p₁(x) for N(0, I) carried by dz/dt = A z over [0, 1]: z(1) = e^A z(0)."""
    z0 = x @ torch.linalg.matrix_exp(-a).T
    return base_log_prob(z0) - torch.diagonal(a).sum()


def check_linear_flow(log_prob) -> CheckResult:
    """``log_prob(x, A)``: the density at t = 1 of N(0, I) moved by ``dz/dt = A z``, at the rows of ``x``."""
    name = "exercise 2, the density of a linear flow"
    if log_prob is None:
        return failed(name, "not attempted yet: define linear_flow_log_prob(x, A) and run this cell again.")
    g = torch.Generator().manual_seed(6063)
    for dim in (2, 3):
        a = 0.6 * torch.randn(dim, dim, generator=g, dtype=torch.float64)
        x = torch.randn(6, dim, generator=g, dtype=torch.float64)
        want = _linear_flow_reference(x, a)
        mismatch = _compare_rows(name, run_safely(name, log_prob, x.clone(), a.clone()), "linear_flow_log_prob", want,
                                 (1e-4, 1e-4), lambda got: _linear_flow_hint(x, a, got, want))
        if mismatch is not None:
            return mismatch
    return passed(name, "log p₁(x) = log N(e^{−A}x) − tr A: det(e^A) = e^{tr A}, the determinant became a trace.")


def _linear_flow_hint(x, a, got, want) -> str:
    close = lambda other: torch.allclose(got, other, rtol=1e-4, atol=1e-4)  # noqa: E731
    trace = torch.diagonal(a).sum()
    if close(base_log_prob(x)):
        return ("your function returns log N(x; 0, I), the density before the flow moved anything. "
                "Find where x started at t = 0 first.")
    if close(want + 2 * trace):
        return ("the trace term has the wrong sign. A flow that spreads points out (tr A > 0) "
                "must lower the density: d log p/dt = −tr(∂f/∂z).")
    if close(want + trace):
        return "the change of volume is missing: add the integral of −tr(A) over [0, 1]."
    volume = got - want
    if float(volume.max() - volume.min()) < 1e-4:
        return ("your values are off by the same amount at every x, so the position term is right and the "
                "volume term is not: it must come from this A, not from a number in the lesson.")
    shift = got - base_log_prob(x @ torch.linalg.matrix_exp(-a).T)
    if float(shift.max() - shift.min()) > 1e-4:
        forwards = base_log_prob(x @ torch.linalg.matrix_exp(a).T)
        if any(close(forwards + v) for v in (-trace, trace)):
            return ("you moved x forwards in time. x is where a point is at t = 1; its starting point z(0) "
                    "comes from running the flow backwards.")
        if any(close(base_log_prob(x @ torch.linalg.matrix_exp(-a)) + v) for v in (-trace, trace)):
            return ("check how you apply the matrix to the rows of x: a row vector times M is Mᵀ applied "
                    "to it, so use x @ M.T.")
    return ("first map x back to z(0) (solve the linear ODE backwards: a matrix exponential), evaluate "
            "log N(z(0); 0, I) there, then add the integral of −tr(∂f/∂z).")
