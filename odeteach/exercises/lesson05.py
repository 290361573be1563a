"""Checks for lesson 5 (latent ODEs on the spirals).

1. ``check_kl(fn)``: ``fn(mean, logvar)`` is KL( N(μ, diag σ²) ‖ N(0, I) ), one number per row.
2. ``check_reparameterize(fn)``: ``fn(mean, logvar)`` draws z ~ N(μ, σ²) so that gradients reach μ and log σ².
3. ``check_backward_inputs(fn)``: ``fn(times, x)`` builds the recognition RNN's reversed (x_i, Δt_i) sequence.

Each check tests the learner's function on cases the notebook does not show and compares with
the package's own implementation in :mod:`odeteach.latent`.
"""

from __future__ import annotations

import torch

from ..latent import backward_inputs, kl_standard_normal
from . import CheckResult, failed, passed, run_safely

__all__ = ["check_kl", "check_reparameterize", "check_backward_inputs"]

_NOT_YET = "not attempted yet: replace the placeholder (None) with your function."


def _cases(seed):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(b, d, generator=gen, dtype=torch.float64), torch.randn(b, d, generator=gen, dtype=torch.float64))
            for b, d in ((3, 4), (1, 2), (5, 1))]


def check_kl(fn) -> CheckResult:
    """Exercise 1: the KL term of the ELBO in closed form."""
    name = "Exercise 1 (analytic KL)"
    if fn is None:
        return failed(name, _NOT_YET)
    if not callable(fn):
        return failed(name, f"pass a function fn(mean, logvar), not a {type(fn).__name__}.")
    zeros = torch.zeros(2, 4, dtype=torch.float64)
    for mean, logvar in [(zeros, zeros), *_cases(5)]:
        bad, got = run_safely(name, fn, mean, logvar)
        if bad is not None:  # a failed CheckResult is falsy
            return bad
        if not isinstance(got, torch.Tensor):
            return failed(name, f"return a tensor, not a {type(got).__name__}.")
        want = kl_standard_normal(mean, logvar)
        if got.shape != want.shape:
            return failed(name, f"for mean of shape {tuple(mean.shape)} return one KL per row, shape {tuple(want.shape)}; "
                                f"yours has shape {tuple(got.shape)}. Sum over the latent dimensions.")
        if not torch.allclose(got.to(want.dtype), want, rtol=1e-6, atol=1e-9):
            if torch.allclose(got.to(want.dtype), 2 * want, rtol=1e-6, atol=1e-9):
                return failed(name, "off by a factor of 2: check the ½ in front.")
            if mean.abs().sum() == 0 and logvar.abs().sum() == 0:
                return failed(name, "when q is exactly N(0, I) the KL must be 0; check the constant term.")
            return failed(name, "the values differ from the closed form. Which terms depend on σ² = exp(logvar), "
                                "and which on log σ² directly?")
    return passed(name, "your KL matches the closed form on every case, including q = N(0, I) (KL = 0).")


def check_reparameterize(fn) -> CheckResult:
    """Exercise 2: z = μ + σ ε with gradients to μ and log σ²."""
    name = "Exercise 2 (reparameterisation)"
    if fn is None:
        return failed(name, _NOT_YET)
    if not callable(fn):
        return failed(name, f"pass a function fn(mean, logvar), not a {type(fn).__name__}.")
    n = 20000
    mean = torch.tensor([[1.5, -2.0, 0.0]], dtype=torch.float64).repeat(n, 1).requires_grad_(True)
    logvar = torch.log(torch.tensor([[0.25, 4.0, 1.0]], dtype=torch.float64)).repeat(n, 1).requires_grad_(True)
    torch.manual_seed(12345)
    bad, z = run_safely(name, fn, mean, logvar)
    if bad is not None:  # a failed CheckResult is falsy
        return bad
    if not isinstance(z, torch.Tensor) or z.shape != mean.shape:
        got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        return failed(name, f"return a tensor shaped like mean, {tuple(mean.shape)}; got {got}.")
    if not z.requires_grad:
        return failed(name, "no gradient reaches mean and logvar: build z from them with tensor arithmetic "
                            "(sampling z directly from a distribution object cuts the graph).")
    with torch.no_grad():
        m, s = z.mean(dim=0), z.std(dim=0)
    want_m, want_s = torch.tensor([1.5, -2.0, 0.0], dtype=torch.float64), torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    if not torch.allclose(m, want_m, atol=0.06):
        return failed(name, "the samples are not centred on the mean. Where does μ go?")
    if not torch.allclose(s, want_s, rtol=0.05):
        if torch.allclose(s, want_s ** 2, rtol=0.05):
            return failed(name, "the spread is σ², not σ: logvar is log σ², so σ = exp(logvar / 2).")
        return failed(name, "the samples have the wrong spread. logvar is log σ²: what is σ?")
    z.sum().backward()
    if mean.grad is None or logvar.grad is None or not torch.allclose(mean.grad, torch.ones_like(mean.grad)):
        return failed(name, "gradients do not flow as they should: z should depend on μ with slope 1.")
    if logvar.grad.abs().sum() == 0:
        return failed(name, "no gradient reaches logvar: the noise must be scaled by σ computed from logvar.")
    return passed(name, "samples have the right mean and spread, and gradients reach both μ and log σ².")


def check_backward_inputs(fn) -> CheckResult:
    """Exercise 3: the reversed (x_i, Δt_i) sequence the recognition RNN reads."""
    name = "Exercise 3 (the recognition RNN's inputs)"
    if fn is None:
        return failed(name, _NOT_YET)
    if not callable(fn):
        return failed(name, f"pass a function fn(times, x), not a {type(fn).__name__}.")
    gen = torch.Generator().manual_seed(7)
    for b, n in ((2, 5), (1, 1), (3, 9)):
        times = torch.rand(b, n, generator=gen).mul(2.0).sort(dim=1).values
        x = torch.randn(b, n, 2, generator=gen)
        bad, got = run_safely(name, fn, times, x)
        if bad is not None:  # a failed CheckResult is falsy
            return bad
        want = backward_inputs(times, x)
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            return failed(name, f"for times {tuple(times.shape)} and x {tuple(x.shape)} return shape {tuple(want.shape)} "
                                f"(each row: the 2 coordinates, then Δt); got {shape}.")
        if torch.allclose(got, want, atol=1e-6):
            continue
        if torch.allclose(got.flip(1), want, atol=1e-6):
            return failed(name, "the order is reversed: the RNN reads the *last* observation first.")
        if torch.allclose(got[..., :2], want[..., :2], atol=1e-6):
            return failed(name, "the points are right but Δt is not: Δt_i = t_i − t_(i−1), and the first point's "
                                "gap is measured from t0 = 0.")
        return failed(name, "the points are not where they should be: each row is (x_i, Δt_i), in reversed time order.")
    return passed(name, "your sequence matches, reversed order and time gaps included.")
