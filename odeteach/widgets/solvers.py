"""Explorers for lesson 2: step size, tolerance and NFE, and stability, live.

* :class:`StepSizeExplorer`: a fixed-step method (Euler, midpoint, RK4) against the exact
  solution; move the step h and watch the trajectory, the error and the NFE.
* :class:`AdaptiveToleranceExplorer`: an adaptive method (dopri5, bosh3) at a tolerance; the accepted
  and rejected steps, h(t), each attempt's error ratio against 1, NFE and the true error, and the
  work–precision diagram of all methods (:func:`odeteach.convergence.work_precision`) with the
  current point marked.
* :class:`StabilityExplorer` (in :mod:`odeteach.widgets.stability`, re-exported here): the
  stability regions in the complex h·λ plane, the current h·λ, and the numerical solution of
  dy/dt = λ y growing when h·λ leaves the region.

All statistics and traces come from :func:`odeteach.solve` (``trace=True``); the explorers
never count anything themselves. Each explorer computes a slider position once and keeps the
result, and by default fills that cache for every slider position when it is built, so moving
a slider only updates artists. The base class and helpers live in :mod:`odeteach.widgets.base`
(``Explorer``, ``figure_view``, ``figure_widget`` and ``slider_values`` are re-exported here).
"""

from __future__ import annotations

import math

import ipywidgets as widgets
import numpy as np
import torch

from ..convergence import fixed_step_grid, reference_solution, work_precision
from ..errors import SolverError
from ..integrate import solve
from ..problems import Problem, damped_spiral, van_der_pol
from ..stability import check_step
from ..tableaux import TABLEAUX
from .base import (ACCEPTED_COLOUR, EXACT_COLOUR, REJECTED_COLOUR, Explorer, figure_view, figure_widget,
                   slider_values, style_axes, warning_html)
from .stability import StabilityExplorer

__all__ = [
    "Explorer", "figure_view", "figure_widget", "StepSizeExplorer", "AdaptiveToleranceExplorer", "StabilityExplorer",
    "reference_solution", "slider_values",
]

# Eigenvalues of the linear test problems, for the step-size explorer's stability message.
KNOWN_EIGENVALUES = {"damped_spiral": complex(-0.1, 1.0), "harmonic_oscillator": complex(0.0, 1.0)}


def _log10_key(method: str, value: float) -> tuple[str, float]:
    """A cache key: the method and the value's log10, rounded, so that 10**-3 and 0.001 are one entry."""
    return (method, round(math.log10(value), 9))


class StepSizeExplorer(Explorer):
    """Euler, midpoint and RK4 with a fixed step h against the exact solution.

    Controls: ``method`` (ToggleButtons), ``step_size`` (FloatLogSlider). Readouts: ``nfe``,
    ``error`` (max-norm error over the whole interval). The left panel is the trajectory in the
    (y₁, y₂) plane, the right one the error against t. For a linear problem with known
    eigenvalue λ (``lam``), a step with h·λ outside the method's stability region is named in
    ``message``.
    """

    controls = ("method", "step_size")

    def __init__(self, problem: Problem = damped_spiral, *, methods=("euler", "midpoint", "rk4"), lam=None,
                 h_range=(-1.5, 0.25), h_step=0.125, h0=0.1, precompute=True):
        for m in methods:
            if m not in TABLEAUX or TABLEAUX[m].adaptive:
                raise ValueError(f"StepSizeExplorer takes fixed-step methods; {m!r} is not one.")
        self.problem = problem
        self.lam = KNOWN_EIGENVALUES.get(problem.name) if lam is None else complex(lam)
        self.method = widgets.ToggleButtons(options=list(methods), value=methods[-1] if "rk4" not in methods else "rk4",
                                            description="method", style={"button_width": "80px"})
        self.step_size = widgets.FloatLogSlider(value=h0, base=10, min=h_range[0], max=h_range[1], step=h_step,
                                                description="step h", readout_format=".3g",
                                                continuous_update=bool(precompute))
        self.nfe = widgets.HTML()
        self.error = widgets.HTML()
        self._cache = {}

        self.fig, (self.ax_phase, self.ax_err) = self._figure(1, 2, (9, 3.6))
        t_fine = torch.linspace(problem.t0, problem.t1, 400, dtype=torch.float64)
        exact = reference_solution(problem, t_fine).numpy()
        self.ax_phase.plot(exact[:, 0], exact[:, 1], color=EXACT_COLOUR, lw=2, label="exact")
        (self.line,) = self.ax_phase.plot([], [], "o-", ms=3, lw=1, color=ACCEPTED_COLOUR, label="numerical")
        pad = 0.25 * (exact[:, :2].max(0) - exact[:, :2].min(0))
        self.ax_phase.set_xlim(exact[:, 0].min() - pad[0], exact[:, 0].max() + pad[0])
        self.ax_phase.set_ylim(exact[:, 1].min() - pad[1], exact[:, 1].max() + pad[1])
        self.ax_phase.set_xlabel("y₁", fontsize=9)
        self.ax_phase.set_ylabel("y₂", fontsize=9)
        self.ax_phase.legend(loc="upper right", fontsize=8)
        (self.err_line,) = self.ax_err.semilogy([], [], "o-", ms=3, lw=1, color=ACCEPTED_COLOUR)
        self.ax_err.set_xlim(problem.t0, problem.t1)
        self.ax_err.set_ylim(1e-12, 1e3)
        self.ax_err.set_xlabel("t", fontsize=9)
        self.ax_err.set_ylabel("|y − y_exact|", fontsize=9)
        style_axes(self.ax_phase)
        style_axes(self.ax_err, log_y=True)
        self.fig.tight_layout()
        if precompute:
            for m in methods:
                for h in slider_values(self.step_size):
                    self._result(m, h)
        self._animate(self.line, self.err_line)
        self._finish([self.nfe, widgets.HTML(" · "), self.error])

    def _result(self, method, h):
        key = _log10_key(method, h)
        if key not in self._cache:
            p = self.problem
            t = fixed_step_grid(p.t0, p.t1, h)
            try:
                sol = solve(p, p.initial(), t, method=method, options={"step_size": h})
                ys = sol.ys.numpy()
                err = np.abs(ys - reference_solution(p, t).numpy()).max(axis=1)
                self._cache[key] = (t.numpy(), ys, err, sol.stats, None)
            except SolverError as exc:
                self._cache[key] = (None, None, None, None, str(exc))
        return self._cache[key]

    def _update(self):
        method, h = self.method.value, self.step_size.value
        t, ys, err, stats, failure = self._result(method, h)
        notes = []
        if self.lam is not None:
            check = check_step(method, h, self.lam)
            if not check.stable:
                notes.append(check.message)
        if failure is not None:
            self.line.set_data([], [])
            self.err_line.set_data([], [])
            self.nfe.value = "NFE = –"
            self.error.value = "error = –"
            notes.append(failure)
        else:
            self.line.set_data(ys[:, 0], ys[:, 1])
            self.err_line.set_data(t, np.maximum(err, 1e-16))
            self.nfe.value = f"NFE = <b>{stats.nfe}</b> ({stats.n_steps} steps × {TABLEAUX[method].stages})"
            self.error.value = f"max error = <b>{err.max():.3g}</b>"
        return "<br>".join(warning_html(note) for note in notes)


class AdaptiveToleranceExplorer(Explorer):
    """An adaptive method at tolerance rtol = atol, and what its step-size control did.

    Controls: ``method`` (ToggleButtons: dopri5, bosh3), ``tolerance`` (FloatLogSlider).
    Readouts: ``nfe``, ``steps`` (accepted / rejected), ``error`` (true error at t₁). Panels: the
    solution y₁(t) with accepted step ends (dots) and rejected attempts (crosses); the step size
    h(t); each attempt's error ratio against the line at 1 (accepted iff ≤ 1); and the
    work–precision diagram (error at t₁ against NFE) for all methods, the current point starred.
    ``work_precision`` holds that diagram's points: ``{method: array of (NFE, error) rows}``.

    The slider moves by whole decades (``tol_step=1``), as the diagram's adaptive runs do: each slider
    position is one of the diagram's points, and those runs fill the explorer's cache. Half decades
    would add 12 solves, about a third of the build (bosh3 alone at 10^-7.5 costs 4,451 evaluations).
    """

    controls = ("method", "tolerance")

    def __init__(self, problem: Problem | None = None, *, methods=("dopri5", "bosh3"), tol_range=(-8.0, -2.0),
                 tol_step=1.0, tol0=1e-5, fixed_methods=("euler", "midpoint", "rk4"), precompute=True):
        problem = van_der_pol(1.0) if problem is None else problem
        for m in methods:
            if m not in TABLEAUX or not TABLEAUX[m].adaptive:
                raise ValueError(f"AdaptiveToleranceExplorer takes adaptive methods; {m!r} is not one.")
        self.problem = problem
        self.methods = tuple(methods)
        self.method = widgets.ToggleButtons(options=list(methods), value=methods[0], description="method",
                                            style={"button_width": "80px"})
        self.tolerance = widgets.FloatLogSlider(value=tol0, base=10, min=tol_range[0], max=tol_range[1], step=tol_step,
                                                description="tolerance", readout_format=".0e",
                                                continuous_update=bool(precompute))
        self.nfe = widgets.HTML()
        self.steps = widgets.HTML()
        self.error = widgets.HTML()
        self._cache = {}
        self.t_out = problem.times(300)
        # Every solve here runs in inference mode: the explorer keeps numbers, never a graph, and autograd's
        # bookkeeping would cost about a sixth of each solve. The results are the same, bit for bit.
        with torch.inference_mode():
            reference = reference_solution(problem, self.t_out)
        self.y_end = reference[-1]

        self.fig, axes = self._figure(2, 2, (9.5, 5.8))
        (self.ax_traj, self.ax_h), (self.ax_ratio, self.ax_wp) = axes
        self._draw_solution_axes(reference.numpy())
        decades = [10.0 ** d for d in np.arange(math.ceil(tol_range[0]), math.floor(tol_range[1]) + 1)]
        with torch.inference_mode():
            self._draw_work_precision(fixed_methods, decades)
        self.fig.tight_layout()
        # The cache holds the work–precision runs, and every slider position with ``precompute``. h(t)
        # keeps one log scale across slider moves (a new scale would mean a full redraw): the range of
        # every cached run; it grows when a new run needs it.
        if precompute:
            for m in methods:
                for tol in slider_values(self.tolerance):
                    self._result(m, tol)
        hs = [np.abs(r["h"]) for r in self._cache.values() if not r.get("failure")]
        self._h_limits = (min(h.min() for h in hs) / 2, max(h.max() for h in hs) * 2) if hs else None
        if self._h_limits is not None:
            self.ax_h.set_ylim(*self._h_limits)
        self._animate(self.curve, self.acc_pts, self.rej_pts, self.h_line, self.h_rej, self.ratio_acc,
                      self.ratio_rej, self.wp_point)
        self._finish([self.nfe, widgets.HTML(" · "), self.steps, widgets.HTML(" · "), self.error])

    def _draw_solution_axes(self, reference: np.ndarray):
        """The trajectory, h(t) and error-ratio panels: fixed artists, and empty ones that updates fill."""
        problem = self.problem
        self.ax_traj.plot(self.t_out.numpy(), reference[:, 0], color=EXACT_COLOUR, lw=3, alpha=0.6)
        (self.curve,) = self.ax_traj.plot([], [], color=ACCEPTED_COLOUR, lw=1)
        self.acc_pts = self.ax_traj.scatter([], [], s=12, color=ACCEPTED_COLOUR, zorder=3, label="accepted step ends")
        self.rej_pts = self.ax_traj.scatter([], [], s=30, marker="x", color=REJECTED_COLOUR, zorder=4,
                                            label="rejected attempts")
        self.ax_traj.set_xlim(problem.t0, problem.t1)
        span = reference[:, 0].max() - reference[:, 0].min()
        self.ax_traj.set_ylim(reference[:, 0].min() - 0.15 * span, reference[:, 0].max() + 0.15 * span)
        self.ax_traj.set_ylabel("y₁(t)", fontsize=9)
        self.ax_traj.legend(loc="lower left", fontsize=7)

        (self.h_line,) = self.ax_h.semilogy([], [], drawstyle="steps-post", color=ACCEPTED_COLOUR, lw=1)
        self.h_rej = self.ax_h.scatter([], [], s=20, marker="x", color=REJECTED_COLOUR)
        self.ax_h.set_xlim(problem.t0, problem.t1)
        self.ax_h.set_ylabel("step size h(t)", fontsize=9)

        self.ax_ratio.axhline(1.0, color="k", lw=1, ls="--")
        self.ratio_acc = self.ax_ratio.scatter([], [], s=10, color=ACCEPTED_COLOUR)
        self.ratio_rej = self.ax_ratio.scatter([], [], s=25, marker="x", color=REJECTED_COLOUR)
        self.ax_ratio.set_yscale("log")
        self.ax_ratio.set_xlim(problem.t0, problem.t1)
        self.ax_ratio.set_ylim(1e-4, 1e3)
        self.ax_ratio.set_xlabel("t", fontsize=9)
        self.ax_ratio.set_ylabel("error ratio (≤ 1: accept)", fontsize=9)
        for ax, log_y in ((self.ax_traj, False), (self.ax_h, True), (self.ax_ratio, True)):
            style_axes(ax, log_y=log_y)

    def _draw_work_precision(self, fixed_methods, tolerances):
        """Work–precision: fixed-step methods over step sizes, adaptive ones over the slider's decades."""
        problem, ax = self.problem, self.ax_wp
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("NFE", fontsize=9)
        ax.set_ylabel(f"error at t = {problem.t1:g}", fontsize=9)
        span = problem.t1 - problem.t0
        self.work_precision = {}
        for m in fixed_methods:
            self.work_precision[m] = work_precision(problem, m, step_sizes=[span / 2 ** k for k in range(4, 9)],
                                                    reference=self.y_end, max_error=1.0)
        for m in self.methods:   # on the explorer's own output times, with a trace: these runs fill its cache
            runs = {}
            self.work_precision[m] = work_precision(problem, m, tolerances=tolerances, reference=self.y_end,
                                                    t=self.t_out, trace=True, solutions=runs)
            for tol, sol in runs.items():
                self._store(m, tol, sol)
        for m, points in self.work_precision.items():
            if len(points):
                ax.plot(points[:, 0], np.maximum(points[:, 1], 1e-16), "o-", ms=3, lw=1, label=m)
        (self.wp_point,) = ax.plot([], [], "*", ms=16, color="k", zorder=5, label="now")
        ax.legend(fontsize=7, loc="lower left", ncol=2)
        style_axes(ax, log_x=True, log_y=True)

    def _store(self, method, tol, sol):
        """Keep what an update draws from one traced solve."""
        trace = sol.trace
        self._cache[_log10_key(method, tol)] = {
            "ys": sol.ys[:, 0].numpy(), "stats": sol.stats, "t_start": np.array([r.t for r in trace]),
            "h": np.array([r.h for r in trace]), "accepted": np.array([r.accepted for r in trace]),
            "ratio": np.array([r.error_ratio for r in trace], dtype=float),
            "error": float((sol.ys[-1] - self.y_end).abs().max()), "failure": None,
        }

    def _result(self, method, tol):
        key = _log10_key(method, tol)
        if key not in self._cache:
            p = self.problem
            try:
                with torch.inference_mode():
                    sol = solve(p, p.initial(), self.t_out, method=method, rtol=tol, atol=tol, trace=True)
            except SolverError as exc:
                self._cache[key] = {"failure": str(exc)}
                return None
            self._store(method, tol, sol)
        result = self._cache[key]
        return None if result.get("failure") else result

    def _show_failure(self, failure: str) -> str:
        for artist in (self.acc_pts, self.rej_pts, self.h_rej, self.ratio_acc, self.ratio_rej):
            artist.set_offsets(np.empty((0, 2)))
        self.curve.set_data([], [])
        self.h_line.set_data([], [])
        self.wp_point.set_data([], [])
        self.nfe.value = self.steps.value = self.error.value = ""
        return warning_html(failure)

    def _update(self):
        method, tol = self.method.value, self.tolerance.value
        r = self._result(method, tol)
        if r is None:
            return self._show_failure(self._cache[_log10_key(method, tol)]["failure"])
        t_out = self.t_out.numpy()
        acc, t0, h = r["accepted"], r["t_start"], r["h"]
        t_end = t0 + h
        self.curve.set_data(t_out, r["ys"])
        self.acc_pts.set_offsets(np.column_stack([t_end[acc], np.interp(t_end[acc], t_out, r["ys"])]))
        rej_t = np.clip(t_end[~acc], t_out[0], t_out[-1])
        self.rej_pts.set_offsets(np.column_stack([rej_t, np.interp(rej_t, t_out, r["ys"])]))
        # h(t): each accepted step drawn over [t, t + h).
        ha = np.abs(h[acc])
        self.h_line.set_data(np.append(t0[acc], t_end[acc][-1:]), np.append(ha, ha[-1:]))
        self.h_rej.set_offsets(np.column_stack([t0[~acc], np.abs(h[~acc])]))
        lo, hi = np.abs(h).min(), np.abs(h).max()
        if self._h_limits is None or lo < self._h_limits[0] or hi > self._h_limits[1]:
            old = self._h_limits or (np.inf, 0.0)
            self._h_limits = (min(old[0], lo / 2), max(old[1], hi * 2))
            self.ax_h.set_ylim(*self._h_limits)
        ratio = np.clip(np.nan_to_num(r["ratio"], nan=1e3, posinf=1e3), 1e-4, 1e3)
        self.ratio_acc.set_offsets(np.column_stack([t0[acc], ratio[acc]]))
        self.ratio_rej.set_offsets(np.column_stack([t0[~acc], ratio[~acc]]))
        stats = r["stats"]
        self.wp_point.set_data([stats.nfe], [max(r["error"], 1e-16)])
        self.nfe.value = f"NFE = <b>{stats.nfe}</b>"
        self.steps.value = (f"steps: {stats.n_accepted} accepted, "
                            f"<span style='color:{REJECTED_COLOUR}'>{stats.n_rejected} rejected</span>")
        self.error.value = f"true error at t = {self.problem.t1:g}: <b>{r['error']:.3g}</b>"
        return ""
