"""Explorers for lesson 3, the adjoint method: memory, NFE, and the drift of the backward pass.

* :class:`MemoryExplorer`: the number of fixed RK4 steps against the bytes autograd saves and
  the wall time of forward + backward, for backprop through the solver and for the adjoint.
* :class:`NFEExplorer`: forward NFE against backward NFE across tolerances, testing the
  article's remark that the backward pass costs about half the forward's evaluations.
* :class:`DriftExplorer`: z(t) reconstructed backwards from z(T) drifts away from the forward
  trajectory when the forward flow contracts (an attracting limit cycle) or is chaotic (Lorenz);
  the drift grows with the horizon T, and so does the adjoint gradient's error.

The numbers come from the study functions of :mod:`odeteach.adjoint_studies`, which the tests and
the figures call too (this module re-exports them, and the lesson's fields and settings, for the
notebook). Each explorer runs its study once, when it is built, for every slider position; moving
a slider only moves artists.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np

from ..adjoint_studies import (HORIZONS, LESSON, STEPS, TOLERANCES, DriftPoint, MemoryPoint, MLPField, NFEPoint,
                               default_drift_systems, default_nfe_cases, drift_studies, drift_study, horizon_subset,
                               lorenz, memory_study, nfe_studies, nfe_study, restart_study)
from ..memory import format_bytes
from .base import ACCEPTED_COLOUR, ADJOINT_COLOUR, REJECTED_COLOUR, Explorer, style_axes

__all__ = [
    "MLPField", "lorenz", "MemoryPoint", "memory_study", "NFEPoint", "nfe_study", "DriftPoint", "drift_study",
    "MemoryExplorer", "NFEExplorer", "DriftExplorer", "STEPS", "TOLERANCES", "HORIZONS",
    "default_nfe_cases", "default_drift_systems", "horizon_subset", "restart_study", "LESSON",
]

BACKPROP_COLOUR = ACCEPTED_COLOUR


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
            ax.loglog(ns, b, "o-", color=BACKPROP_COLOUR, label="backprop through the solver")
            ax.loglog(ns, a, "s-", color=ADJOINT_COLOUR, label="adjoint")
            ax.set_xlabel("number of RK4 steps", fontsize=9)
            ax.set_ylabel(label, fontsize=9)
            style_axes(ax, log_x=True, log_y=True)
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
        if cases is not None and not cases:
            raise ValueError("NFEExplorer needs at least one case.")
        self.tolerances = [float(x) for x in tolerances]
        if len(self.tolerances) < 2:
            raise ValueError("NFEExplorer needs at least two tolerances.")
        self.studies = nfe_studies(cases, self.tolerances)
        self.problem = widgets.ToggleButtons(options=list(self.studies), description="field",
                                             style={"button_width": "170px"})
        self.tol = _index_slider(self.tolerances, "rtol = atol", lambda v: f"{v:.0e}")
        self.nfe = widgets.HTML()
        self.fig, (self.ax_nfe, self.ax_ratio) = self._figure(1, 2, (9, 3.4))
        tols = np.array(self.tolerances)
        self.fwd_line, = self.ax_nfe.loglog(tols, tols, "o-", color=BACKPROP_COLOUR, label="forward NFE")
        self.back_line, = self.ax_nfe.loglog(tols, tols, "s-", color=ADJOINT_COLOUR, label="backward NFE")
        self.ratio_line, = self.ax_ratio.semilogx(tols, tols, "d-", color="0.2", label="backward / forward")
        self.ax_ratio.axhline(0.5, color=REJECTED_COLOUR, ls="--", lw=1, label="article: about ½")
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
        style_axes(self.ax_nfe, log_x=True, log_y=True)
        style_axes(self.ax_ratio, log_x=True)
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
        if systems is not None and not systems:
            raise ValueError("DriftExplorer needs at least one system: {name: (problem, horizons)}.")
        self.tol_value = float(tol)
        self.studies = drift_studies(systems, tol=tol, n_points=n_points, n_horizons=n_horizons,
                                     max_num_steps=max_num_steps)
        self.system = widgets.ToggleButtons(options=list(self.studies), description="system",
                                            style={"button_width": "200px"})
        first = self.studies[self.system.value]
        self.horizon = _index_slider([p.horizon for p in first], "horizon T", lambda v: f"{v:g}")
        self.drift, self.gradient = widgets.HTML(), widgets.HTML()
        self.fig, (self.ax_path, self.ax_drift) = self._figure(1, 2, (9, 3.6))
        self.fwd_line, = self.ax_path.plot([], [], color="0.55", lw=1.5, label="forward z(t)")
        self.back_line, = self.ax_path.plot([], [], color=ADJOINT_COLOUR, lw=1, ls="--", label="backwards from z(T)")
        self.start_dot, = self.ax_path.plot([], [], "o", color="k", ms=4, label="z(0)")
        self.drift_line, = self.ax_drift.semilogy([0.0, 1.0], [tol / 10, 1.0], color=REJECTED_COLOUR)
        self.ax_drift.axhline(tol, color="0.6", ls=":", lw=1)
        self.ax_path.set_xlabel("z₁", fontsize=9)
        self.ax_path.set_ylabel("z₂", fontsize=9)
        self.ax_path.legend(fontsize=7, loc="upper right")
        self.ax_drift.set_xlabel("t", fontsize=9)
        self.ax_drift.set_ylabel("|z_back(t) − z(t)|", fontsize=9)
        self.ax_drift.set_ylim(tol / 10, 1)
        self.ax_drift.set_xlim(0, 1)
        style_axes(self.ax_path)
        style_axes(self.ax_drift, log_y=True)
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

