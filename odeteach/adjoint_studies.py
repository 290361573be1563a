"""Lesson 3's computations: the adjoint method's memory, NFE and backward drift, measured.

* :func:`memory_study`: the bytes autograd saves and the time of forward + backward against the
  number of fixed RK4 steps, for backprop through the solver and for the adjoint.
* :func:`nfe_study` (:func:`nfe_studies` for several fields): forward against backward NFE across
  tolerances, testing the article's remark that the backward pass costs about half the forward's.
* :func:`drift_study` (:func:`drift_studies` for several systems): z(t) reconstructed backwards from
  z(T) against the forward trajectory, and the adjoint gradient against backprop's, as T grows.
* :func:`restart_study`: the adjoint's gradient error when the backward pass restarts z at kept times.

The lesson's fields (:class:`MLPField`, :data:`lorenz`), its sweeps (:data:`STEPS`,
:data:`TOLERANCES`, :data:`HORIZONS`) and the settings it runs them with (:data:`LESSON`) live here
too, so that the notebook's explorers, the figures, the exercises and the claims tests all use the
same runs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from .adjoint import solve_adjoint
from .errors import SolverError
from .fast_mode import pick
from .integrate import odeint, solve
from .memory import measure_saved
from .problems import Problem, van_der_pol

__all__ = [
    "MLPField", "lorenz", "MemoryPoint", "memory_study", "NFEPoint", "nfe_study", "nfe_studies", "DriftPoint",
    "drift_study", "drift_studies", "restart_study", "STEPS", "TOLERANCES", "HORIZONS", "default_nfe_cases",
    "default_drift_systems", "horizon_subset", "LESSON",
]

STEPS = (10, 30, 100, 300, 1000)
TOLERANCES = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9)
HORIZONS = {"van_der_pol_mu1": (2.0, 4.0, 6.0, 8.0, 10.0, 12.0), "lorenz": (0.25, 0.5, 0.75, 1.0, 1.25, 1.5)}

# The sweeps lesson 3 runs (full lesson, or fast mode under the test command). The notebook builds its
# explorers from these, and tests/test_claims_lesson03.py checks the lesson's sentences on the same runs.
LESSON = {
    "memory_steps": pick(full=(10, 30, 100, 300), fast=(5, 10, 20)),
    "memory_batch": pick(full=32, fast=16),
    "nfe_tolerances": pick(full=(1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8), fast=(1e-4, 1e-6)),
    "drift_points": pick(full=200, fast=80),
    "drift_horizons": pick(full=None, fast=2),
}


class MLPField(torch.nn.Module):
    """f(z, t, θ) = W₂ tanh(W₁ [z, t] + b₁) + b₂: the lesson's small neural vector field."""

    def __init__(self, dim: int = 2, width: int = 32, seed: int = 0, dtype=torch.float64):
        super().__init__()
        if dim < 1 or width < 1:
            raise ValueError(f"dim and width must be positive; got dim={dim}, width={width}.")
        g = torch.Generator().manual_seed(seed)
        self.l1 = torch.nn.Linear(dim + 1, width, dtype=dtype)
        self.l2 = torch.nn.Linear(width, dim, dtype=dtype)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_((torch.rand(p.shape, generator=g, dtype=dtype) * 2 - 1) / math.sqrt(p.shape[-1]))

    def forward(self, t, z):
        return self.l2(torch.tanh(self.l1(torch.cat((z, t.expand(*z.shape[:-1], 1)), dim=-1))))


def _lorenz_rhs(t, y, sigma=10.0, rho=28.0, beta=8.0 / 3.0):
    x, yy, z = y.unbind(-1)     # as van_der_pol's rhs: unbind, and rsub(z, ρ) = ρ - z, a few µs a call less
    return torch.stack((sigma * (yy - x), x * torch.rsub(z, rho) - yy, x * yy - beta * z), dim=-1)


lorenz = Problem("lorenz", "the Lorenz system (σ=10, ρ=28, β=8/3): chaotic", _lorenz_rhs, (1.0, 1.0, 1.0), 0.0, 10.0)


@dataclass(frozen=True)
class MemoryPoint:
    steps: int
    backprop_bytes: int
    adjoint_bytes: int
    backprop_seconds: float
    adjoint_seconds: float
    max_grad_difference: float  # relative difference of the two gradients (they differ by O(h⁴))


def _timed(fn, repeats):
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def memory_study(steps=STEPS, *, batch: int = 64, width: int = 32, seed: int = 0, repeats: int = 1,
                 timing: bool = True) -> list[MemoryPoint]:
    """Saved bytes and forward+backward wall time (best of ``repeats``) at each number of RK4 steps.

    With ``timing=False`` only the bytes are measured (seconds and gradient difference are NaN).

    Workload: :class:`MLPField` (2-D, ``width`` hidden units) on a batch of ``batch`` points over
    t ∈ [0, 1], loss = sum of z(1)². Bytes count what autograd saves beyond the parameters and the
    input (:func:`odeteach.memory.measure_saved`).
    """
    steps = [int(n) for n in steps]
    if not steps or min(steps) < 1:
        raise ValueError(f"steps must be positive integers; got {steps}.")
    field = MLPField(width=width, seed=seed)
    params = list(field.parameters())
    z0 = torch.randn(batch, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    out = []
    for n in steps:
        opts = dict(method="rk4", options={"step_size": 1.0 / n})
        grads = {}

        def run(solver, name, **kw):
            for p in params:
                p.grad = None
            (solver(field, z0, t, **opts, **kw)[-1] ** 2).sum().backward()
            grads[name] = torch.cat([p.grad.reshape(-1) for p in params])

        kw_adj = dict(adjoint_params=params)
        b_bytes = measure_saved(odeint, field, z0, t, exclude=[z0, *params], cuda=False, **opts).saved_bytes
        a_bytes = measure_saved(_adjoint_ys, field, z0, t, exclude=[z0, *params], cuda=False, **opts, **kw_adj).saved_bytes
        if not timing:
            out.append(MemoryPoint(n, b_bytes, a_bytes, math.nan, math.nan, math.nan))
            continue
        b_time = _timed(lambda: run(odeint, "backprop"), repeats)
        a_time = _timed(lambda: run(_adjoint_ys, "adjoint", **kw_adj), repeats)
        diff = ((grads["adjoint"] - grads["backprop"]).norm() / grads["backprop"].norm()).item()
        out.append(MemoryPoint(n, b_bytes, a_bytes, b_time, a_time, diff))
    return out


def _adjoint_ys(func, y0, t, **kw):
    return solve_adjoint(func, y0, t, **kw).ys


@dataclass(frozen=True)
class NFEPoint:
    tol: float
    forward_nfe: int
    backward_nfe: int
    forward_steps: int
    backward_steps: int

    @property
    def ratio(self) -> float:
        return self.backward_nfe / self.forward_nfe


def nfe_study(func, y0, t, tolerances=TOLERANCES, *, method: str = "dopri5", adjoint_params=None) -> list[NFEPoint]:
    """Forward and backward NFE of :func:`odeteach.solve_adjoint` at ``rtol = atol = tol``, loss = Σ z(t_N)².

    The backward count is every call of ``func`` in the backward pass: one per stage of the
    augmented solve (each also back-propagates once through ``func``).
    """
    out = []
    for tol in tolerances:
        tol = float(tol)
        y = y0.detach().clone().requires_grad_(True)
        sol = solve_adjoint(func, y, t, rtol=tol, atol=tol, method=method, adjoint_params=adjoint_params)
        (sol.ys[-1] ** 2).sum().backward()
        b = sol.backward_stats
        out.append(NFEPoint(tol, sol.stats.nfe, b.nfe, sol.stats.n_steps, b.n_steps))
    return out


@dataclass(frozen=True)
class DriftPoint:
    horizon: float
    ts: np.ndarray            # times of the forward grid, 0 … T
    forward: np.ndarray       # z(t) forward, shape (len(ts), D)
    backward: np.ndarray      # z(t) reconstructed backwards from the forward z(T)
    drift: np.ndarray         # |backward - forward| (2-norm) at each time
    grad_adjoint: np.ndarray  # dL/dz0 by the adjoint, L = Σ z(T)
    grad_backprop: np.ndarray  # dL/dz0 by backprop through the same forward solve
    grad_error: float         # relative difference of the two (nan when the backward pass failed)
    forward_nfe: int
    backward_nfe: int         # 0 when the backward pass failed
    failure: str = ""         # the SolverError of a reconstruction or adjoint pass that blew up


def drift_study(problem: Problem, horizons, *, tol: float = 1e-6, n_points: int = 200,
                max_num_steps: int = 5000) -> list[DriftPoint]:
    """For each horizon T: solve z forward on [0, T], then backwards from z(T); compare, and compare gradients.

    The adjoint's backward pass integrates z backwards exactly like the second solve here, so where
    this reconstruction drifts, the adjoint evaluates ∂f/∂z in the wrong place. A backward solve
    that blows up (``SolverError``, or more than ``max_num_steps`` steps) is recorded in ``failure``.

    Backprop differentiates the forward solve itself: the solver's steps do not depend on the output
    times (those inside a step are interpolated, and the last step ends at T), so this solve takes the
    same steps as one on [0, T] alone: z(T), and the operations autograd goes back through, are the same.
    """
    opts = {"max_num_steps": int(max_num_steps)}
    out = []
    for T in horizons:
        T = float(T)
        if not T > 0:
            raise ValueError(f"horizons must be positive; got {T}.")
        ts = torch.linspace(0.0, T, n_points, dtype=torch.float64)
        z0 = problem.initial()
        zb = z0.clone().requires_grad_(True)
        fwd = solve(problem, zb, ts, rtol=tol, atol=tol)
        fwd.ys[-1].sum().backward()     # backprop's dL/dz0, L = Σ z(T)
        fwd_ys = fwd.ys.detach()
        failure = ""
        try:
            with torch.inference_mode():    # no graph here: autograd's bookkeeping would cost about a sixth
                back = solve(problem, fwd_ys[-1], ts.flip(0), rtol=tol, atol=tol, options=opts).ys.flip(0)
        except SolverError as exc:
            back = torch.full_like(fwd_ys, math.nan)
            failure = f"the backward reconstruction failed: {exc}"
        drift = (back - fwd_ys).norm(dim=-1)
        t_ends = torch.tensor([0.0, T], dtype=torch.float64)
        za = z0.clone().requires_grad_(True)
        sol = solve_adjoint(problem, za, t_ends, rtol=tol, atol=tol, adjoint_params=(), adjoint_options=opts)
        try:
            sol.ys[-1].sum().backward()
            grad_a, back_nfe = za.grad.numpy(), sol.backward_stats.nfe
            err = ((za.grad - zb.grad).norm() / zb.grad.norm()).item()
        except SolverError as exc:
            grad_a, back_nfe, err = np.full(z0.shape, np.nan), 0, math.nan
            failure = failure or f"the adjoint's backward pass failed: {exc}"
        out.append(DriftPoint(T, ts.numpy(), fwd_ys.numpy(), back.numpy(), drift.numpy(), grad_a,
                              zb.grad.numpy(), err, sol.stats.nfe, back_nfe, failure))
    return out


def restart_study(problem: Problem, horizon: float, intervals=(1, 10), *, tol: float = 1e-6) -> dict[int, float]:
    """The adjoint's dL/dz0 (L = Σ z(T)) against backprop's, relative error, with the forward solution kept at
    ``n + 1`` evenly spaced times for each ``n`` in ``intervals``: the backward pass restarts z at each of them.
    """
    out = {}
    for n in intervals:
        t_out = torch.linspace(0.0, float(horizon), int(n) + 1, dtype=torch.float64)
        grads = []
        for solver, extra in ((solve_adjoint, {"adjoint_params": ()}), (odeint, {})):
            z = problem.initial().requires_grad_(True)
            ys = solver(problem, z, t_out, rtol=tol, atol=tol, **extra)
            (ys.ys if solver is solve_adjoint else ys)[-1].sum().backward()
            grads.append(z.grad)
        out[int(n)] = ((grads[0] - grads[1]).norm() / grads[1].norm()).item()
    return out


def default_nfe_cases() -> dict:
    """The NFE explorer's fields: ``{name: (func, y0, t, adjoint_params)}``."""
    field = MLPField(width=32, seed=1)
    z0 = torch.randn(16, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    vdp = van_der_pol(1.0)
    return {"MLP field, batch 16": (field, z0, torch.tensor([0.0, 1.0], dtype=torch.float64), None),
            "Van der Pol, t ∈ [0, 5]": (vdp, vdp.initial(), torch.tensor([0.0, 5.0], dtype=torch.float64), ())}


def default_drift_systems() -> dict:
    """The drift explorer's systems: ``{name: (problem, horizons)}``."""
    return {"Van der Pol (attracting cycle)": (van_der_pol(1.0), HORIZONS["van_der_pol_mu1"]),
            "Lorenz (chaotic)": (lorenz, HORIZONS["lorenz"])}


def horizon_subset(horizons, n: int | None) -> list[float]:
    """All ``horizons`` (``n=None``), or ``n`` of them: the first, the last and evenly spaced ones between."""
    horizons = [float(h) for h in horizons]
    if n is None:
        return horizons
    keep = np.unique(np.linspace(0, len(horizons) - 1, max(1, int(n))).round().astype(int))
    return [horizons[i] for i in keep]



def nfe_studies(cases: dict | None = None, tolerances=TOLERANCES) -> dict[str, list[NFEPoint]]:
    """:func:`nfe_study` for each field of ``cases`` (``{name: (func, y0, t, adjoint_params)}``, default
    :func:`default_nfe_cases`): ``{name: points}``."""
    cases = default_nfe_cases() if cases is None else cases
    tolerances = [float(x) for x in tolerances]
    return {name: nfe_study(func, y0, t, tolerances, adjoint_params=params)
            for name, (func, y0, t, params) in cases.items()}


def drift_studies(systems: dict | None = None, *, tol: float = 1e-6, n_points: int = 200,
                  n_horizons: int | None = None, max_num_steps: int = 5000) -> dict[str, list[DriftPoint]]:
    """:func:`drift_study` for each system of ``systems`` (``{name: (problem, horizons)}``, default
    :func:`default_drift_systems`) over :func:`horizon_subset` of its horizons: ``{name: points}``."""
    systems = default_drift_systems() if systems is None else systems
    return {name: drift_study(problem, horizon_subset(horizons, n_horizons), tol=tol, n_points=n_points,
                              max_num_steps=max_num_steps)
            for name, (problem, horizons) in systems.items()}
