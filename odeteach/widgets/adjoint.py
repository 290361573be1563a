"""Explorers for lesson 3, the adjoint method: memory, NFE, and the drift of the backward pass.

* :class:`MemoryExplorer`: the number of fixed RK4 steps against the bytes autograd saves and
  the wall time of forward + backward, for backprop through the solver and for the adjoint.
* :class:`NFEExplorer`: forward NFE against backward NFE across tolerances, testing the
  article's remark that the backward pass costs about half the forward's evaluations.
* :class:`DriftExplorer`: z(t) reconstructed backwards from z(T) drifts away from the forward
  trajectory when the forward flow contracts (an attracting limit cycle) or is chaotic (Lorenz);
  the drift grows with the horizon T, and so does the adjoint gradient's error.

The numbers come from the study functions :func:`memory_study`, :func:`nfe_study` and
:func:`drift_study`, which the tests and the figures call too. Each explorer runs its study once,
when it is built, for every slider position; moving a slider only moves artists.
"""

from __future__ import annotations

import html
import math
import time
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import torch

from ..adjoint import solve_adjoint
from ..errors import SolverError
from ..fast_mode import pick
from ..integrate import odeint, solve
from ..memory import format_bytes, measure_saved
from ..problems import Problem, van_der_pol
from .solvers import _ACCEPTED, _REJECTED, Explorer, _tidy

__all__ = [
    "MLPField", "lorenz", "MemoryPoint", "memory_study", "NFEPoint", "nfe_study", "DriftPoint", "drift_study",
    "MemoryExplorer", "NFEExplorer", "DriftExplorer", "STEPS", "TOLERANCES", "HORIZONS",
    "default_nfe_cases", "default_drift_systems", "horizon_subset", "restart_study", "LESSON",
]

_ADJOINT = "#2ca02c"
_BACKPROP = _ACCEPTED

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
    x, yy, z = y[..., 0], y[..., 1], y[..., 2]
    return torch.stack((sigma * (yy - x), x * (rho - z) - yy, x * yy - beta * z), dim=-1)


lorenz = Problem("lorenz", "the Lorenz system (σ=10, ρ=28, β=8/3): chaotic", _lorenz_rhs, (1.0, 1.0, 1.0), 0.0, 10.0)


# --------------------------------------------------------------------------------------------
# Studies


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

        def run(solver, key, **kw):
            for p in params:
                p.grad = None
            (solver(field, z0, t, **opts, **kw)[-1] ** 2).sum().backward()
            grads[key] = torch.cat([p.grad.reshape(-1) for p in params])

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
    """
    opts = {"max_num_steps": int(max_num_steps)}
    out = []
    for T in horizons:
        T = float(T)
        if not T > 0:
            raise ValueError(f"horizons must be positive; got {T}.")
        ts = torch.linspace(0.0, T, n_points, dtype=torch.float64)
        z0 = problem.initial()
        fwd = solve(problem, z0, ts, rtol=tol, atol=tol)
        failure = ""
        try:
            back = solve(problem, fwd.ys[-1], ts.flip(0), rtol=tol, atol=tol, options=opts).ys.flip(0)
        except SolverError as exc:
            back = torch.full_like(fwd.ys, math.nan)
            failure = f"the backward reconstruction failed: {exc}"
        drift = (back - fwd.ys).norm(dim=-1)
        t_ends = torch.tensor([0.0, T], dtype=torch.float64)
        zb = z0.clone().requires_grad_(True)
        odeint(problem, zb, t_ends, rtol=tol, atol=tol)[-1].sum().backward()
        za = z0.clone().requires_grad_(True)
        sol = solve_adjoint(problem, za, t_ends, rtol=tol, atol=tol, adjoint_params=(), adjoint_options=opts)
        try:
            sol.ys[-1].sum().backward()
            grad_a, back_nfe = za.grad.numpy(), sol.backward_stats.nfe
            err = ((za.grad - zb.grad).norm() / zb.grad.norm()).item()
        except SolverError as exc:
            grad_a, back_nfe, err = np.full(z0.shape, np.nan), 0, math.nan
            failure = failure or f"the adjoint's backward pass failed: {exc}"
        out.append(DriftPoint(T, ts.numpy(), fwd.ys.numpy(), back.numpy(), drift.numpy(), grad_a,
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


# --------------------------------------------------------------------------------------------
# Explorers


def _index_slider(values, description, fmt):
    return widgets.SelectionSlider(options=[(fmt(v), i) for i, v in enumerate(values)], value=0,
                                   description=description, continuous_update=True)


class MemoryExplorer(Explorer):
    """Saved bytes and time against the number of RK4 steps: backprop grows, the adjoint stays flat.

    Control: ``steps`` (SelectionSlider over the measured step counts). Readouts: ``memory``,
    ``timing``. Left: saved bytes against steps (log–log); right: forward + backward seconds.
    ``points`` holds the :class:`MemoryPoint` measurements.
    """

    controls = ("steps",)

    def __init__(self, steps=STEPS, *, batch: int = 64, width: int = 32, seed: int = 0, repeats: int = 1):
        self.points = memory_study(steps, batch=batch, width=width, seed=seed, repeats=repeats)
        ns = np.array([p.steps for p in self.points], dtype=float)
        self.steps = _index_slider([p.steps for p in self.points], "RK4 steps", str)
        self.memory, self.timing = widgets.HTML(), widgets.HTML()
        self.fig, (self.ax_mem, self.ax_time) = self._figure(1, 2, (9, 3.4))
        for ax, key, label in ((self.ax_mem, "bytes", "bytes saved for backward"), (self.ax_time, "seconds", "forward + backward (s)")):
            b = [getattr(p, f"backprop_{key}") for p in self.points]
            a = [getattr(p, f"adjoint_{key}") for p in self.points]
            ax.loglog(ns, b, "o-", color=_BACKPROP, label="backprop through the solver")
            ax.loglog(ns, a, "s-", color=_ADJOINT, label="adjoint")
            ax.set_xlabel("number of RK4 steps", fontsize=9)
            ax.set_ylabel(label, fontsize=9)
            _tidy(ax, log_x=True, log_y=True)
        self.ax_mem.legend(fontsize=8, loc="center right")
        self.ax_mem.set_title("memory", fontsize=10)
        self.ax_time.set_title("time (this machine, best of %d)" % repeats, fontsize=10)
        self.marks = [ax.axvline(ns[0], color="0.5", lw=1, ls=":") for ax in (self.ax_mem, self.ax_time)]
        self.fig.tight_layout()
        self._finish([self.memory, self.timing])

    @property
    def point(self) -> MemoryPoint:
        return self.points[self.steps.value]

    def _update(self):
        p = self.point
        for m in self.marks:
            m.set_xdata([p.steps, p.steps])
        self.memory.value = (f"<b>saved</b>: backprop {format_bytes(p.backprop_bytes)} · adjoint "
                             f"{format_bytes(p.adjoint_bytes)} (×{p.backprop_bytes / max(p.adjoint_bytes, 1):.0f})&emsp;")
        self.timing.value = (f"<b>time</b>: backprop {p.backprop_seconds * 1e3:.0f} ms · adjoint "
                             f"{p.adjoint_seconds * 1e3:.0f} ms · gradients differ by {p.max_grad_difference:.1e}")


class NFEExplorer(Explorer):
    """Forward and backward NFE across tolerances, for a few vector fields.

    Controls: ``problem`` (ToggleButtons) and ``tol`` (SelectionSlider). Readout: ``nfe``. Left:
    NFE against tolerance, forward and backward; right: the ratio backward / forward with the
    article's ½ drawn as a reference line.
    """

    controls = ("problem", "tol")

    def __init__(self, cases: dict | None = None, tolerances=TOLERANCES):
        if cases is None:
            cases = default_nfe_cases()
        if not cases:
            raise ValueError("NFEExplorer needs at least one case.")
        self.tolerances = [float(x) for x in tolerances]
        self.studies = {name: nfe_study(f, y0, t, self.tolerances, adjoint_params=ap) for name, (f, y0, t, ap) in cases.items()}
        self.problem = widgets.ToggleButtons(options=list(cases), description="field", style={"button_width": "170px"})
        self.tol = _index_slider(self.tolerances, "rtol = atol", lambda v: f"{v:.0e}")
        self.nfe = widgets.HTML()
        self.fig, (self.ax_nfe, self.ax_ratio) = self._figure(1, 2, (9, 3.4))
        tols = np.array(self.tolerances)
        if len(tols) < 2:
            raise ValueError("NFEExplorer needs at least two tolerances.")
        self.fwd_line, = self.ax_nfe.loglog(tols, tols, "o-", color=_BACKPROP, label="forward NFE")
        self.back_line, = self.ax_nfe.loglog(tols, tols, "s-", color=_ADJOINT, label="backward NFE")
        self.ratio_line, = self.ax_ratio.semilogx(tols, tols, "d-", color="0.2", label="backward / forward")
        self.ax_ratio.axhline(0.5, color=_REJECTED, ls="--", lw=1, label="article: about ½")
        self.ax_ratio.axhline(1.0, color="0.6", ls=":", lw=1)
        self.marks = [ax.axvline(tols[0], color="0.5", lw=1, ls=":") for ax in (self.ax_nfe, self.ax_ratio)]
        for ax in (self.ax_nfe, self.ax_ratio):
            ax.set_xlabel("tolerance (rtol = atol)", fontsize=9)
            ax.invert_xaxis()
        self.ax_nfe.set_ylabel("evaluations of f", fontsize=9)
        self.ax_ratio.set_ylabel("NFE backward / NFE forward", fontsize=9)
        self.ax_nfe.set_ylim(1, 1e4)
        self.ax_ratio.set_ylim(0, 2)
        self.ax_nfe.legend(fontsize=8)
        self.ax_ratio.legend(fontsize=8)
        _tidy(self.ax_nfe, log_x=True, log_y=True)
        _tidy(self.ax_ratio, log_x=True)
        self.fig.tight_layout()
        self._shown = None
        self._finish([self.nfe])

    @property
    def points(self) -> list[NFEPoint]:
        return self.studies[self.problem.value]

    def _update(self):
        pts = self.points
        if self._shown != self.problem.value:
            fwd = np.array([p.forward_nfe for p in pts], dtype=float)
            back = np.array([p.backward_nfe for p in pts], dtype=float)
            ratio = back / fwd
            self.fwd_line.set_ydata(fwd)
            self.back_line.set_ydata(back)
            self.ratio_line.set_ydata(ratio)
            self.ax_nfe.set_ylim(min(fwd.min(), back.min()) / 1.5, max(fwd.max(), back.max()) * 1.5)
            self.ax_ratio.set_ylim(0, max(1.2, ratio.max() * 1.15))
            self._shown = self.problem.value
        p = pts[self.tol.value]
        for m in self.marks:
            m.set_xdata([p.tol, p.tol])
        self.nfe.value = (f"tol {p.tol:.0e}: forward NFE <b>{p.forward_nfe}</b> ({p.forward_steps} steps) · "
                          f"backward NFE <b>{p.backward_nfe}</b> ({p.backward_steps} steps) · "
                          f"ratio <b>{p.ratio:.2f}</b>")


class DriftExplorer(Explorer):
    """The backward reconstruction of z(t) against the forward one, as the horizon T grows.

    Controls: ``system`` (ToggleButtons: Van der Pol, Lorenz) and ``horizon`` (SelectionSlider over
    each system's own horizons, from a reconstruction that holds to one that is lost).
    Readouts: ``drift`` (the reconstruction error at t = 0) and ``gradient`` (the adjoint's
    dL/dz0 against backprop's). Left: the first two coordinates forward (grey) and reconstructed
    (green); right: |z_back(t) − z(t)| on a log scale.
    """

    controls = ("system", "horizon")

    def __init__(self, systems: dict | None = None, *, tol: float = 1e-6, n_points: int = 200, n_horizons: int | None = None,
                 max_num_steps: int = 5000):
        if systems is None:
            systems = default_drift_systems()
        if not systems:
            raise ValueError("DriftExplorer needs at least one system: {name: (problem, horizons)}.")
        self.tol_value = float(tol)
        self.studies = {}
        for name, (problem, horizons) in systems.items():
            horizons = horizon_subset(horizons, n_horizons)
            self.studies[name] = drift_study(problem, horizons, tol=tol, n_points=n_points, max_num_steps=max_num_steps)
        self.system = widgets.ToggleButtons(options=list(systems), description="system", style={"button_width": "200px"})
        first = self.studies[self.system.value]
        self.horizon = _index_slider([p.horizon for p in first], "horizon T", lambda v: f"{v:g}")
        self.drift, self.gradient = widgets.HTML(), widgets.HTML()
        self.fig, (self.ax_path, self.ax_drift) = self._figure(1, 2, (9, 3.6))
        self.fwd_line, = self.ax_path.plot([], [], color="0.55", lw=1.5, label="forward z(t)")
        self.back_line, = self.ax_path.plot([], [], color=_ADJOINT, lw=1, ls="--", label="backwards from z(T)")
        self.start_dot, = self.ax_path.plot([], [], "o", color="k", ms=4, label="z(0)")
        self.drift_line, = self.ax_drift.semilogy([0.0, 1.0], [tol / 10, 1.0], color=_REJECTED)
        self.ax_drift.axhline(tol, color="0.6", ls=":", lw=1)
        self.ax_path.set_xlabel("z₁", fontsize=9)
        self.ax_path.set_ylabel("z₂", fontsize=9)
        self.ax_path.legend(fontsize=7, loc="upper right")
        self.ax_drift.set_xlabel("t", fontsize=9)
        self.ax_drift.set_ylabel("|z_back(t) − z(t)|", fontsize=9)
        self.ax_drift.set_ylim(tol / 10, 1)
        self.ax_drift.set_xlim(0, 1)
        _tidy(self.ax_path)
        _tidy(self.ax_drift, log_y=True)
        self.fig.tight_layout()
        self._finish([self.drift, self.gradient])

    @property
    def point(self) -> DriftPoint:
        pts = self.studies[self.system.value]
        return pts[min(self.horizon.value, len(pts) - 1)]

    def _update(self):
        labels = [f"{q.horizon:g}" for q in self.studies[self.system.value]]
        if [o[0] for o in self.horizon.options] != labels:  # another system: its own horizons
            index = min(self.horizon.value, len(labels) - 1)
            self.horizon.unobserve(self._on_change, names="value")
            self.horizon.options = [(lab, i) for i, lab in enumerate(labels)]
            self.horizon.value = index
            self.horizon.observe(self._on_change, names="value")
        p = self.point
        self.fwd_line.set_data(p.forward[:, 0], p.forward[:, 1])
        back = np.where(np.isfinite(p.backward), p.backward, np.nan)
        self.back_line.set_data(back[:, 0], back[:, 1])
        self.start_dot.set_data([p.forward[0, 0]], [p.forward[0, 1]])
        lo, hi = np.nanmin(p.forward[:, :2], 0), np.nanmax(p.forward[:, :2], 0)
        pad = 0.1 * (hi - lo) + 1e-6 * np.maximum(1.0, np.maximum(np.abs(lo), np.abs(hi)))  # never a zero-width axis
        self.ax_path.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
        self.ax_path.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
        d = np.where(np.isfinite(p.drift), np.maximum(p.drift, 1e-17), np.nan)
        self.drift_line.set_data(p.ts, d)
        self.ax_drift.set_xlim(0, p.horizon)
        finite = d[np.isfinite(d)]
        lo = min(finite.min(), self.tol_value) if finite.size else self.tol_value
        hi = max(finite.max(), self.tol_value) if finite.size else 1.0
        self.ax_drift.set_ylim(lo / 10, hi * 10)
        drift0 = "blew up" if not np.isfinite(p.drift[0]) else f"{p.drift[0]:.1e}"
        self.drift.value = f"T = {p.horizon:g}: reconstruction error at t = 0: <b>{drift0}</b> (tol {self.tol_value:.0e})&emsp;"
        grad = "no gradient (backward pass failed)" if not np.isfinite(p.grad_error) else f"differ by <b>{p.grad_error:.1e}</b> (relative)"
        self.gradient.value = (f"dL/dz(0), adjoint vs backprop: {grad} · NFE forward {p.forward_nfe}, backward {p.backward_nfe}")
        return f"⚠ {html.escape(p.failure[:200])}" if p.failure else None
