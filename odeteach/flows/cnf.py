"""The flow itself: the base density, the two trace estimators, the joint dynamics of ``(z, Δ)``, and :class:`CNF`.

A point ``z(t)`` moved by ``dz/dt = f(z(t), t, θ)`` carries its density with it, and
``d log p(z(t))/dt = −tr(∂f/∂z)``. :class:`CNFDynamics` is that pair of equations as one right-hand side;
:class:`CNF` solves it to evaluate densities (data at ``t = 0`` → base at ``t = 1``) and to sample
(base → data).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..integrate import solve
from ..validation import integer
from .field import ConcatTimeMLP

__all__ = ["ESTIMATORS", "NOISES", "base_log_prob", "exact_trace", "hutchinson_trace", "draw_noise", "CNFDynamics",
           "FlowResult", "check_points", "check_estimator", "CNF"]

ESTIMATORS = ("exact", "hutchinson")
NOISES = ("gaussian", "rademacher")
LOG_2PI = math.log(2 * math.pi)


# --------------------------------------------------------------------------------------------
# The base density and the two trace estimators


def base_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dimension."""
    return -0.5 * (z.pow(2).sum(-1) + z.shape[-1] * LOG_2PI)


def exact_trace(f: torch.Tensor, z: torch.Tensor, *, create_graph: bool = False) -> torch.Tensor:
    """tr(∂f/∂z) for a batch: one vector–Jacobian product per dimension, keeping the diagonal.

    ``f`` has shape ``(N, D)`` and was computed from ``z`` (``requires_grad``) row by row, so
    ``∂(Σ_n f_ni)/∂z_ni = ∂f_ni/∂z_ni``. Cost: ``D`` backward passes.
    """
    total = torch.zeros(f.shape[:-1], dtype=f.dtype, device=f.device)
    for i in range(f.shape[-1]):
        row = torch.autograd.grad(f[..., i].sum(), z, create_graph=create_graph, retain_graph=True)[0]
        total = total + row[..., i]
    return total


def hutchinson_trace(f: torch.Tensor, z: torch.Tensor, e: torch.Tensor, *, create_graph: bool = False) -> torch.Tensor:
    """Hutchinson's estimate ``εᵀ(∂f/∂z)ε`` of the trace: one backward pass for any ``D``.

    Unbiased when ``E[εεᵀ] = I`` (Gaussian or Rademacher ε): ``E[εᵀJε] = tr(J E[εεᵀ]) = tr J``.
    """
    vjp = torch.autograd.grad((f * e).sum(), z, create_graph=create_graph, retain_graph=True)[0]
    return (vjp * e).sum(-1)


def draw_noise(shape, noise: str = "gaussian", *, generator: torch.Generator | None = None,
               dtype=torch.float32) -> torch.Tensor:
    """ε with E[εεᵀ] = I: standard Gaussian, or Rademacher (±1 with probability ½ each)."""
    if noise == "gaussian":
        return torch.randn(shape, generator=generator, dtype=dtype)
    if noise == "rademacher":
        return torch.randint(0, 2, shape, generator=generator).to(dtype) * 2 - 1
    raise ValueError(f"Unknown noise {noise!r}. Valid: {', '.join(NOISES)}.")


# --------------------------------------------------------------------------------------------
# The joint dynamics of (z, Δ)


class CNFDynamics:
    """The joint right-hand side ``(z, Δ) ↦ (f(z, t), −tr ∂f/∂z)`` for one solve.

    The Hutchinson noise ε is drawn once per solve and held fixed along the path (FFJORD), so
    the integrated estimate is unbiased too. Inside, autograd is switched on even when the
    caller runs under ``torch.no_grad()``; the graph of the trace is kept only when the caller
    needs gradients (training).
    """

    def __init__(self, field: nn.Module, estimator: str, e: torch.Tensor | None):
        self.field, self.estimator, self.e = field, estimator, e
        self.evals = 0

    def __call__(self, t, state):
        z = state[0]
        self.evals += 1
        keep_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            if not z.requires_grad:
                z = z.detach().requires_grad_(True)
            rates = self._rates(self.field(t, z), z, keep_graph)
        return rates if keep_graph else tuple(rate.detach() for rate in rates)

    def _rates(self, f, z, keep_graph):
        """The state's derivatives from ``f = field(t, z)``: ``(f, −tr ∂f/∂z)`` (subclasses add more)."""
        if self.estimator == "exact":
            trace = exact_trace(f, z, create_graph=keep_graph)
        else:
            trace = hutchinson_trace(f, z, self.e, create_graph=keep_graph)
        return f, -trace


@dataclass
class FlowResult:
    """Where points went and how their log-density changed.

    ``zs[k]`` are the points at ``ts[k]``; ``log_p[k]`` their log-density under the flow's
    density at that time (``None`` when only the points were integrated); ``nfe`` the solver's
    evaluations of the dynamics.
    """

    ts: torch.Tensor
    zs: torch.Tensor
    log_p: torch.Tensor | None
    nfe: int
    n_steps: int


# --------------------------------------------------------------------------------------------
# Checks of a flow's arguments (numbers and integers go through odeteach.validation)


def check_points(x, dim, what="x") -> torch.Tensor:
    """``x`` if it is a finite, non-empty floating-point tensor of shape ``(N, dim)``; else a ``ValueError``."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{what} must be a torch.Tensor of shape (N, {dim}); got {type(x).__name__}.")
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"{what} must have shape (N, {dim}); got {tuple(x.shape)}.")
    if x.shape[0] == 0:
        raise ValueError(f"{what} is empty: give at least one point.")
    if not x.is_floating_point():
        raise ValueError(f"{what} must be floating point; got dtype {x.dtype}.")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{what} holds NaN or inf values.")
    return x


def check_estimator(estimator, noise) -> None:
    """A ``ValueError`` listing the valid names unless ``estimator`` is in ESTIMATORS and ``noise`` in NOISES."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"Unknown trace estimator {estimator!r}. Valid: {', '.join(ESTIMATORS)}.")
    if noise not in NOISES:
        raise ValueError(f"Unknown noise {noise!r}. Valid: {', '.join(NOISES)}.")


def _check_times(times, first, last) -> torch.Tensor:
    """Output times from ``first`` to ``last`` (both included), e.g. 1 → 0 for sampling."""
    if times is None:
        return torch.tensor([first, last])
    times = torch.as_tensor(times, dtype=torch.float32).flatten()
    if times.numel() < 2 or float(times[0]) != first or float(times[-1]) != last:
        raise ValueError(f"times must run from {first} to {last} (both included); got {times.tolist()[:6]}.")
    return times


# --------------------------------------------------------------------------------------------
# The flow


class CNF(nn.Module):
    """A continuous normalizing flow on ``R^D``: data at ``t = 0``, N(0, I) at ``t = 1``.

    Parameters
    ----------
    dim, hidden, layers : the size of the field ``ConcatTimeMLP(dim, hidden, layers)``.
    rtol, atol, method : default solver settings for every solve (each method takes overrides).
    """

    def __init__(self, dim: int = 2, hidden: int = 64, layers: int = 3, *, rtol: float = 1e-5,
                 atol: float = 1e-5, method: str = "dopri5"):
        super().__init__()
        self.field = ConcatTimeMLP(dim, hidden, layers)
        self.dim = dim
        self.rtol, self.atol, self.method = rtol, atol, method

    @property
    def dtype(self) -> torch.dtype:
        return next(self.field.parameters(), torch.empty(0)).dtype

    @property
    def device(self) -> torch.device:
        return next(self.field.parameters(), torch.empty(0)).device

    def config(self) -> dict:
        return {"dim": self.dim, "hidden": self.field.hidden, "layers": self.field.layers,
                "rtol": self.rtol, "atol": self.atol, "method": self.method}

    def solver_settings(self, rtol=None, atol=None, method=None, options=None) -> dict:
        """The keyword arguments of :func:`odeteach.solve`: the given ones, else this flow's defaults."""
        return dict(rtol=self.rtol if rtol is None else rtol, atol=self.atol if atol is None else atol,
                    method=self.method if method is None else method, options=options)

    def flow(self, x: torch.Tensor, times, *, estimator: str = "exact", noise: str = "gaussian",
             generator: torch.Generator | None = None, with_log_p: bool = True, rtol=None, atol=None,
             method=None, options=None) -> tuple[torch.Tensor, torch.Tensor | None, object]:
        """Integrate points ``x`` (at ``times[0]``) through ``times``.

        Returns ``(zs, deltas, solution)``: ``zs[k]`` the points at ``times[k]`` and ``deltas[k]``
        the accumulated ``Δ = −∫ tr(∂f/∂z) dt`` from ``times[0]``, so that
        ``log p_{times[k]}(zs[k]) = log p_{times[0]}(x) + deltas[k]``. Without ``with_log_p`` only the
        points are integrated, about D + 1 times cheaper, and ``deltas`` is ``None``.
        """
        x = check_points(x, self.dim)
        check_estimator(estimator, noise)
        times = torch.as_tensor(times, dtype=x.dtype, device=x.device)
        settings = self.solver_settings(rtol, atol, method, options)
        if not with_log_p:
            solution = solve(self.field, x, times, **settings)
            return solution.ys, None, solution
        e = None
        if estimator == "hutchinson":
            e = draw_noise(x.shape, noise, generator=generator, dtype=x.dtype).to(x.device)
        delta0 = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        solution = solve(CNFDynamics(self.field, estimator, e), (x, delta0), times, **settings)
        zs, deltas = solution.ys
        return zs, deltas, solution

    def log_prob(self, x: torch.Tensor, *, estimator: str = "exact", noise: str = "gaussian",
                 generator: torch.Generator | None = None, t: float = 0.0, rtol=None, atol=None,
                 method=None, options=None, return_nfe: bool = False):
        """log p_t(x): integrate ``(x, 0)`` from ``t`` to 1, then ``log N(z(1)) − Δ(1)``.

        ``t = 0`` (default) is the model's density of the data; ``0 < t < 1`` the density part
        way along the flow. With ``estimator="hutchinson"`` the value is an unbiased estimate.
        """
        t = float(t)
        if not 0.0 <= t < 1.0:
            raise ValueError(f"t must be in [0, 1); got {t}.")
        zs, deltas, solution = self.flow(x, torch.tensor([t, 1.0]), estimator=estimator, noise=noise,
                                         generator=generator, rtol=rtol, atol=atol, method=method, options=options)
        log_p = base_log_prob(zs[-1]) - deltas[-1]
        return (log_p, solution.stats.nfe) if return_nfe else log_p

    def sample(self, n: int | None = None, *, z1: torch.Tensor | None = None, seed: int = 0, times=None,
               with_log_p: bool = True, estimator: str = "exact", noise: str = "gaussian",
               rtol=None, atol=None, method=None, options=None) -> FlowResult:
        """Draw ``n`` points ``z(1) ~ N(0, I)`` (or take ``z1``) and integrate backwards to ``t = 0``.

        ``times`` (default ``[1, 0]``) must run from 1 down to 0; the result holds the points and,
        with ``with_log_p``, their log-density at every one of those times: along the path
        ``log p_t(z(t)) = log N(z(1)) + Δ(t)``.
        """
        if z1 is None:
            n = integer("n (the number of samples)", n, minimum=1)
            z1 = torch.randn(n, self.dim, generator=torch.Generator().manual_seed(seed), dtype=self.dtype)
            z1 = z1.to(self.device)
        z1 = check_points(z1, self.dim, "z1")
        times = _check_times(times, 1.0, 0.0).to(z1.dtype)
        zs, deltas, solution = self.flow(z1, times, estimator=estimator, noise=noise, with_log_p=with_log_p,
                                         generator=torch.Generator().manual_seed(seed + 1), rtol=rtol, atol=atol,
                                         method=method, options=options)
        log_p = None if deltas is None else base_log_prob(z1) + deltas
        return FlowResult(times, zs, log_p, solution.stats.nfe, solution.stats.n_steps)
