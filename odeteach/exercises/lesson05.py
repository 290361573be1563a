"""Checks for lesson 5 (latent ODEs on the spirals).

1. ``check_kl(fn)``: ``fn(mean, logvar)`` is KL( N(μ, diag σ²) ‖ N(0, I) ), one number per row.
2. ``check_reparameterize(fn)``: ``fn(mean, logvar)`` draws z ~ N(μ, σ²) so that gradients reach μ and log σ².
3. ``check_backward_inputs(fn)``: ``fn(times, x)`` builds the recognition RNN's reversed (x_i, Δt_i) sequence.

Each check tests the learner's function on cases the notebook does not show and compares with
the package's own implementation in :mod:`odeteach.latent`; common mistakes get their own hint.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from ..latent import backward_inputs, kl_standard_normal
from . import CheckResult, failed, passed, run_safely

__all__ = ["check_kl", "check_reparameterize", "check_backward_inputs"]

_NOT_YET = "not attempted yet: replace the placeholder (None) with your function."


def _callable_or_hint(name, fn, signature):
    if fn is None:
        return failed(name, _NOT_YET)
    if not callable(fn):
        return failed(name, f"pass a function {signature}, not a {type(fn).__name__}.")
    return None


# ---------------------------------------------------------------- exercise 1: the analytic KL
def _kl_cases(seed=5):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(b, d, generator=gen, dtype=torch.float64), torch.randn(b, d, generator=gen, dtype=torch.float64))
            for b, d in ((3, 4), (1, 2), (5, 3))]


def _kl_hint(mean, logvar, got, want):
    """The hint for a KL that does not match ``want``, naming the mistake when it is a common one."""
    close = lambda a, b: torch.allclose(a, b, rtol=1e-6, atol=1e-9)  # noqa: E731
    sigma2 = logvar.exp()
    if close(got, torch.zeros_like(want)):
        return "your function returns 0 for every row (the placeholder?). Most of these q are far from N(0, I)."
    if close(got, 2 * want):
        return "off by a factor of 2: check the ½ in front."
    if close(got, want / mean.shape[-1]):
        return "you averaged over the latent dimensions; the KL of independent dimensions adds up."
    if close(got, -want):
        return "the sign is flipped: a KL divergence is never negative."
    if close(got - want, torch.full_like(want, 0.5 * mean.shape[-1])) or close(got - want, torch.full_like(want, -0.5 * mean.shape[-1])):
        return "off by a constant: check the constant term (the KL must be 0 when q is exactly N(0, I))."
    reverse = 0.5 * ((1 + mean ** 2) / sigma2 + logvar - 1).sum(dim=-1)
    if close(got, reverse):
        return "that is KL(N(0, I) ‖ q), the other direction. The ELBO subtracts KL(q ‖ p) with q first."
    if (got < -1e-9).any():
        return "some of your KLs are negative, which a KL divergence never is: check the signs of the terms."
    return ("the values differ from the closed form. Which terms depend on σ² = exp(logvar), "
            "and which on log σ² directly?")


def check_kl(fn) -> CheckResult:
    """Exercise 1: the KL term of the ELBO in closed form."""
    name = "Exercise 1 (analytic KL)"
    hint = _callable_or_hint(name, fn, "fn(mean, logvar)")
    if hint is not None:
        return hint
    zeros = torch.zeros(2, 4, dtype=torch.float64)
    for mean, logvar in [*_kl_cases(), (zeros, zeros)]:
        bad, got = run_safely(name, fn, mean, logvar)
        if bad is not None:  # a failed CheckResult is falsy
            return bad
        if not isinstance(got, torch.Tensor):
            return failed(name, f"return a tensor, not a {type(got).__name__}.")
        want = kl_standard_normal(mean, logvar)
        if got.shape != want.shape:
            return failed(name, f"for mean of shape {tuple(mean.shape)} return one KL per row, shape {tuple(want.shape)}; "
                                f"yours has shape {tuple(got.shape)}. Sum over the latent dimensions, not over the rows.")
        got = got.detach().to(want.dtype)
        if not torch.allclose(got, want, rtol=1e-6, atol=1e-9):
            if mean.abs().sum() == 0 and logvar.abs().sum() == 0:
                return failed(name, "when q is exactly N(0, I) the KL must be 0; check the constant term.")
            return failed(name, _kl_hint(mean, logvar, got, want))
    return passed(name, "your KL matches the closed form on every case, including q = N(0, I) (KL = 0).")


# ---------------------------------------------------------------- exercise 2: the reparameterisation trick
_SEED = 12345          # the check seeds torch, NumPy and `random`, so a verdict never changes from run to run
_N = 20000             # samples per coordinate
_MEAN = (1.5, -2.0, 0.25)
_SIGMA = (0.5, 2.0, 1.5)  # none equal to 1, so σ and σ² differ in every coordinate
# Margins far outside the sampling noise of a correct answer (n = 20000): the mean of the
# standardised samples has standard error 0.007, their std 0.005, a correlation 0.007, and the
# Kolmogorov–Smirnov distance of N(0, 1) samples exceeds 0.02 with probability below 1e-6.
_MEAN_TOL, _STD_RTOL, _CORR_TOL, _KS_TOL = 0.05, 0.04, 0.05, 0.02


def _draw(name, fn, mean, logvar):
    """Call the learner's sampler with torch, NumPy and Python's RNGs seeded, restoring them after."""
    np_state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED)
        np.random.seed(_SEED)
        random.seed(_SEED)
        try:
            return run_safely(name, fn, mean, logvar)
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


def _ks_distance(u: torch.Tensor) -> torch.Tensor:
    """Kolmogorov–Smirnov distance of each column of ``u`` (n, d) from N(0, 1)."""
    n = u.shape[0]
    cdf = torch.special.ndtr(u.sort(dim=0).values)
    ranks = torch.arange(1, n + 1, dtype=u.dtype)[:, None]
    return torch.maximum((ranks / n - cdf).abs(), (cdf - (ranks - 1) / n).abs()).max(dim=0).values


def _sample_hint(z, mean, sigma, logvar):
    """A hint for samples that are not N(μ, σ²), independent across entries; None when they are."""
    if not torch.isfinite(z).all():
        return "some samples are NaN or infinite. logvar can be negative: did you take a log or a square root of it?"
    if (z - mean).abs().max() == 0:
        return "your samples equal the mean: no noise is added yet (the placeholder?)."
    spread = z.std(dim=0)
    if (spread < 1e-6 * sigma).any():
        return "every row got the same noise: draw a fresh ε for every entry, not one for all rows."
    if (((z.mean(dim=0) - mean[0]) / sigma).abs() > _MEAN_TOL).any():
        return "the samples are not centred on the mean. Is your noise ε centred on 0, and where does μ go?"
    if not torch.allclose(spread, sigma, rtol=_STD_RTOL):
        if torch.allclose(spread, sigma ** 2, rtol=_STD_RTOL):
            return "the spread is σ², not σ: logvar is log σ², so what is σ?"
        if torch.allclose(spread, logvar[0].abs(), rtol=_STD_RTOL):
            return "the noise is scaled by logvar itself; logvar is log σ², not σ."
        return "the samples have the wrong spread. logvar is log σ²: what is σ?"
    u = (z - mean) / sigma
    corr = torch.corrcoef(u.T) - torch.eye(u.shape[1], dtype=u.dtype)
    if corr.abs().max() > _CORR_TOL:
        return "the coordinates move together: each latent dimension needs its own ε, not one shared by all."
    if (_ks_distance(u) > _KS_TOL).any():
        return ("the mean and spread are right but the samples are not Gaussian: ε must be standard *normal*, "
                "not any noise of mean 0 and variance 1. Compare a histogram of your ε with N(0, 1).")
    return None


def check_reparameterize(fn) -> CheckResult:
    """Exercise 2: z = μ + σ ε with ε ~ N(0, I), with gradients to μ and log σ²."""
    name = "Exercise 2 (reparameterisation)"
    hint = _callable_or_hint(name, fn, "fn(mean, logvar)")
    if hint is not None:
        return hint
    sigma = torch.tensor(_SIGMA, dtype=torch.float64)
    mean = torch.tensor([_MEAN], dtype=torch.float64).repeat(_N, 1).requires_grad_(True)
    logvar = torch.log(sigma ** 2)[None].repeat(_N, 1).requires_grad_(True)
    bad, z = _draw(name, fn, mean, logvar)
    if bad is not None:  # a failed CheckResult is falsy
        return bad
    if not isinstance(z, torch.Tensor) or z.shape != mean.shape:
        got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        return failed(name, f"return a tensor shaped like mean, {tuple(mean.shape)}; got {got}.")
    if not z.requires_grad:
        return failed(name, "no gradient reaches mean and logvar: build z from them with tensor arithmetic "
                            "(sampling z directly from a distribution object cuts the graph).")
    with torch.no_grad():
        hint = _sample_hint(z.to(mean.dtype), mean.detach(), sigma, logvar.detach())
    if hint is not None:
        return failed(name, hint)
    bad, _ = run_safely(name, lambda: z.sum().backward())
    if bad is not None:
        return bad
    if mean.grad is None or not torch.allclose(mean.grad, torch.ones_like(mean.grad)):
        return failed(name, "gradients do not flow as they should: z should move one-for-one with μ.")
    if logvar.grad is None or logvar.grad.abs().sum() == 0:
        return failed(name, "no gradient reaches logvar: compute σ from logvar inside the graph (no .detach(), "
                            "no .item(), no NumPy) and scale the noise by it.")
    want = 0.5 * (z.detach().to(mean.dtype) - mean.detach())  # dz/dlogvar for z = μ + exp(logvar / 2) ε
    if not torch.allclose(logvar.grad, want, rtol=1e-4, atol=1e-5 * float(want.abs().max())):
        return failed(name, "the gradient with respect to logvar is not that of z = μ + σ ε with this ε: "
                            "is σ computed from logvar, and ε drawn independently of μ and logvar?")
    return passed(name, "your samples have the right mean, spread and Gaussian shape, independently in every entry, "
                        "and gradients reach both μ and log σ² as they should.")


# ---------------------------------------------------------------- exercise 3: the recognition RNN's inputs
def _backward_inputs_hint(got, want):
    close = lambda a, b: torch.allclose(a, b, atol=1e-6)  # noqa: E731
    if close(got.flip(1), want):
        return "the order is reversed: the RNN reads the *last* observation first."
    if close(got[..., 0], want[..., 2]) and close(got[..., 1:], want[..., :2]):
        return "the columns are in the wrong order: each row holds the 2 coordinates first, then Δt."
    if close(got[..., :2], want[..., :2]):
        if close(got[..., 2], -want[..., 2]):
            return "Δt has the wrong sign: the gaps between increasing times are positive."
        if close(got[..., 2], want[..., 2].flip(1)):
            return "the gaps are in forward order while the points are reversed: each Δt_i must stay with its own x_i."
        return ("the points are right but Δt is not: Δt_i = t_i − t_(i−1), and the first point's "
                "gap is measured from t0 = 0.")
    if close(got[..., :2].flip(1), want[..., :2]):
        return "the gaps are reversed but the points are not: flip the whole (x_i, Δt_i) sequence."
    return "the points are not where they should be: each row is (x_i, Δt_i), in reversed time order."


def check_backward_inputs(fn) -> CheckResult:
    """Exercise 3: the reversed (x_i, Δt_i) sequence the recognition RNN reads."""
    name = "Exercise 3 (the recognition RNN's inputs)"
    hint = _callable_or_hint(name, fn, "fn(times, x)")
    if hint is not None:
        return hint
    gen = torch.Generator().manual_seed(7)
    for b, n in ((2, 5), (1, 1), (3, 9)):
        times = torch.rand(b, n, generator=gen).mul(2.0).add(0.1).sort(dim=1).values
        x = torch.randn(b, n, 2, generator=gen)
        bad, got = run_safely(name, fn, times.clone(), x.clone())
        if bad is not None:  # a failed CheckResult is falsy
            return bad
        want = backward_inputs(times, x)
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            return failed(name, f"for times {tuple(times.shape)} and x {tuple(x.shape)} return shape {tuple(want.shape)} "
                                f"(each row: the 2 coordinates, then Δt); got {shape}.")
        got = got.detach().to(want.dtype)
        if not torch.allclose(got, want, atol=1e-6):
            return failed(name, _backward_inputs_hint(got, want))
    return passed(name, "your sequence matches, reversed order and time gaps included.")
