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
notebook). Each explorer reads a study for every slider position: one passed in (``points=`` or
``studies=``, as the lesson does: it runs the study in a cell of its own), or one it runs when it is
built. Moving a control then only moves artists: the axes keep limits that hold every position,
and the changed artists are blitted over a cached background (:class:`~odeteach.widgets.base.Explorer`).
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
    "MLPField", "lorenz", "MemoryPoint", "memory_study", "NFEPoint", "nfe_study", "nfe_studies", "DriftPoint",
    "drift_study", "drift_studies", "MemoryExplorer", "NFEExplorer", "DriftExplorer", "STEPS", "TOLERANCES",
    "HORIZONS", "default_nfe_cases", "default_drift_systems", "horizon_subset", "restart_study", "LESSON",
]

BACKPROP_COLOUR = ACCEPTED_COLOUR


def _index_slider(values, description, fmt):
    return widgets.SelectionSlider(options=[(fmt(v), i) for i, v in enumerate(values)], value=0,
                                   description=description, continuous_update=True)


def _study_points(points, kind, source: str, minimum: int = 1) -> list:
    """``points`` as a list of ``kind``, or a clear error naming the study function that makes them."""
    if isinstance(points, (str, bytes, dict)) or not hasattr(points, "__iter__"):
        raise TypeError(f"expected a list of {kind.__name__}s from {source}; got {type(points).__name__}.")
    points = list(points)
    strangers = [type(p).__name__ for p in points if not isinstance(p, kind)]
    if strangers:
        raise TypeError(f"expected {kind.__name__}s from {source}; got a {strangers[0]}.")
    if len(points) < minimum:
        raise ValueError(f"need at least {minimum} {kind.__name__}{'s' if minimum > 1 else ''} from {source}; "
                         f"got {len(points)}.")
    return points


def _studies(studies, kind, source: str, minimum: int = 1) -> dict:
    """``{name: [kind, …]}`` checked, for explorers with a toggle over studies."""
    if not isinstance(studies, dict) or not studies:
        raise TypeError(f"studies must be a non-empty dict {{name: [{kind.__name__}, …]}} from {source}; "
                        f"got {type(studies).__name__ if not isinstance(studies, dict) else 'an empty dict'}.")
    return {str(name): _study_points(pts, kind, source, minimum) for name, pts in studies.items()}


def _padded(lo, hi, log=False):
    """Limits a little wider than [lo, hi] (by 10 %, or a factor 10 on a log axis), never of zero width."""
    if log:
        return lo / 10, hi * 10
    pad = 0.1 * (hi - lo) + 1e-6 * max(1.0, abs(lo), abs(hi))
    return lo - pad, hi + pad


def _milliseconds(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if np.isfinite(seconds) else "not timed"


class MemoryExplorer(Explorer):
    """Saved bytes and time against the number of RK4 steps: backprop grows, the adjoint stays flat.

    Control: ``steps`` (SelectionSlider over the measured step counts). Readouts: ``memory``,
    ``timing``. Left: saved bytes against steps (log–log); right: forward + backward seconds; the
    selected step count is marked in both. ``points`` holds the :class:`MemoryPoint` measurements:
    those passed in (from :func:`memory_study`, timed best of ``repeats``), or the study run here with
    ``steps``, ``batch``, ``width``, ``seed`` and ``repeats``.
    """

    controls = ("steps",)

    def __init__(self, steps=STEPS, *, batch: int = 64, width: int = 32, seed: int = 0, repeats: int = 1,
                 points=None):
        if points is None:
            points = memory_study(steps, batch=batch, width=width, seed=seed, repeats=repeats)
        self.points = _study_points(points, MemoryPoint, "odeteach.adjoint_studies.memory_study")
        ns = np.array([p.steps for p in self.points], dtype=float)
        self.steps = _index_slider([p.steps for p in self.points], "RK4 steps", str)
        self.memory, self.timing = widgets.HTML(), widgets.HTML()
        self.fig, (self.ax_mem, self.ax_time) = self._figure(1, 2, (9, 3.4))
        self.marks, self.dots = [], []
        for ax, key, label in ((self.ax_mem, "bytes", "bytes saved for backward"),
                               (self.ax_time, "seconds", "forward + backward (s)")):
            b = [getattr(p, f"backprop_{key}") for p in self.points]
            a = [getattr(p, f"adjoint_{key}") for p in self.points]
            ax.loglog(ns, b, "o-", color=BACKPROP_COLOUR, label="backprop through the solver")
            ax.loglog(ns, a, "s-", color=ADJOINT_COLOUR, label="adjoint")
            ax.set_xlabel("number of RK4 steps", fontsize=9)
            ax.set_ylabel(label, fontsize=9)
            style_axes(ax, log_x=True, log_y=True)
            self.marks.append(ax.axvline(ns[0], color="0.5", lw=1, ls=":"))
            self.dots.append(ax.plot([], [], "o", ms=9, mfc="none", mec="k", mew=1.2)[0])
        self.ax_mem.legend(fontsize=8, loc="center right")
        self.ax_mem.set_title("memory", fontsize=10)
        self.ax_time.set_title(f"time (this machine, best of {repeats})", fontsize=10)
        self.fig.tight_layout()
        self._animate(*self.marks, *self.dots)
        self._finish([self.memory, self.timing])

    @property
    def point(self) -> MemoryPoint:
        return self.points[self.steps.value]

    def _update(self):
        p = self.point
        for m in self.marks:
            m.set_xdata([p.steps, p.steps])
        self.dots[0].set_data([p.steps, p.steps], [p.backprop_bytes, p.adjoint_bytes])
        self.dots[1].set_data([p.steps, p.steps], [p.backprop_seconds, p.adjoint_seconds])
        self.memory.value = (f"<b>saved</b>: backprop {format_bytes(p.backprop_bytes)} · adjoint "
                             f"{format_bytes(p.adjoint_bytes)} (×{p.backprop_bytes / max(p.adjoint_bytes, 1):.0f})&emsp;")
        self.timing.value = (f"<b>time</b>: backprop {_milliseconds(p.backprop_seconds)} · adjoint "
                             f"{_milliseconds(p.adjoint_seconds)} · gradients differ by {p.max_grad_difference:.1e}")


class NFEExplorer(Explorer):
    """Forward and backward NFE across tolerances, for a few vector fields.

    Controls: ``problem`` (ToggleButtons) and ``tol`` (SelectionSlider). Readout: ``nfe``. Left:
    NFE against tolerance, forward and backward; right: the ratio backward / forward with the
    article's ½ drawn as a reference line. The y-ranges hold every field's counts, so changing the
    field moves only the curves. ``studies`` (``{name: [NFEPoint, …]}``, the same tolerances in
    each) holds the counts: those passed in (from :func:`nfe_studies`), or the study run here on
    ``cases`` (default :func:`default_nfe_cases`) at ``tolerances``.
    """

    controls = ("problem", "tol")

    def __init__(self, cases: dict | None = None, tolerances=TOLERANCES, *, studies: dict | None = None):
        if studies is None:
            if cases is not None and not cases:
                raise ValueError("NFEExplorer needs at least one case.")
            if len([float(x) for x in tolerances]) < 2:
                raise ValueError("NFEExplorer needs at least two tolerances.")
            studies = nfe_studies(cases, tolerances)
        self.studies = _studies(studies, NFEPoint, "odeteach.adjoint_studies.nfe_studies", minimum=2)
        first = next(iter(self.studies.values()))
        self.tolerances = [p.tol for p in first]
        for name, pts in self.studies.items():
            if [p.tol for p in pts] != self.tolerances:
                raise ValueError(f"every study must use the same tolerances; {name!r} has "
                                 f"{[p.tol for p in pts]}, not {self.tolerances}.")
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
        self.ax_nfe.set_ylabel("evaluations of f", fontsize=9)
        self.ax_ratio.set_ylabel("NFE backward / NFE forward", fontsize=9)
        # One y-range for every field and tolerance: switching the field keeps the axes.
        counts = np.array([[p.forward_nfe, p.backward_nfe] for pts in self.studies.values() for p in pts], float)
        ratios = np.array([p.ratio for pts in self.studies.values() for p in pts])
        self.ax_nfe.set_ylim(max(counts.min(), 1.0) / 1.5, counts.max() * 1.5)
        self.ax_ratio.set_ylim(0, max(1.2, ratios.max() * 1.15))
        pad = (tols.max() / tols.min()) ** 0.05
        for ax in (self.ax_nfe, self.ax_ratio):
            ax.set_xlim(tols.max() * pad, tols.min() / pad)   # loose tolerances on the left
        self.ax_nfe.legend(fontsize=8)
        self.ax_ratio.legend(fontsize=8)
        style_axes(self.ax_nfe, log_x=True, log_y=True)
        style_axes(self.ax_ratio, log_x=True)
        self.fig.tight_layout()
        self._animate(self.fwd_line, self.back_line, self.ratio_line, *self.marks)
        self._finish([self.nfe])

    @property
    def points(self) -> list[NFEPoint]:
        return self.studies[self.problem.value]

    def _update(self):
        pts = self.points
        fwd = np.array([p.forward_nfe for p in pts], dtype=float)
        back = np.array([p.backward_nfe for p in pts], dtype=float)
        self.fwd_line.set_ydata(fwd)
        self.back_line.set_ydata(back)
        self.ratio_line.set_ydata(back / fwd)
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
    (green); right: |z_back(t) − z(t)| on a log scale, tol dotted.

    ``studies`` (``{name: [DriftPoint, …]}``) holds the runs: those passed in (from
    :func:`drift_studies`, computed at ``tol``), or the study run here on ``systems`` (default
    :func:`default_drift_systems`). Each system has its own axis limits, which hold all its
    horizons; the figure keeps one background per system, so switching systems blits too.
    """

    controls = ("system", "horizon")

    def __init__(self, systems: dict | None = None, *, tol: float = 1e-6, n_points: int = 200, n_horizons: int | None = None,
                 max_num_steps: int = 5000, studies: dict | None = None):
        if studies is None:
            if systems is not None and not systems:
                raise ValueError("DriftExplorer needs at least one system: {name: (problem, horizons)}.")
            studies = drift_studies(systems, tol=tol, n_points=n_points, n_horizons=n_horizons,
                                    max_num_steps=max_num_steps)
        self.studies = _studies(studies, DriftPoint, "odeteach.adjoint_studies.drift_studies")
        self.tol_value = float(tol)
        self.system = widgets.ToggleButtons(options=list(self.studies), description="system",
                                            style={"button_width": "200px"})
        first = self.studies[self.system.value]
        self.horizon = _index_slider([p.horizon for p in first], "horizon T", lambda v: f"{v:g}")
        self.drift, self.gradient = widgets.HTML(), widgets.HTML()
        self.fig, (self.ax_path, self.ax_drift) = self._figure(1, 2, (9, 3.6))
        self.fwd_line, = self.ax_path.plot([], [], color="0.55", lw=1.5, label="forward z(t)")
        self.back_line, = self.ax_path.plot([], [], color=ADJOINT_COLOUR, lw=1, ls="--", label="backwards from z(T)")
        self.start_dot, = self.ax_path.plot([], [], "o", color="k", ms=4, label="z(0)")
        self.drift_line, = self.ax_drift.semilogy([], [], color=REJECTED_COLOUR)
        self.ax_drift.axhline(self.tol_value, color="0.6", ls=":", lw=1)
        self.ax_path.set_xlabel("z₁", fontsize=9)
        self.ax_path.set_ylabel("z₂", fontsize=9)
        self.ax_path.legend(fontsize=7, loc="upper right")
        self.ax_drift.set_xlabel("t", fontsize=9)
        self.ax_drift.set_ylabel("|z_back(t) − z(t)|", fontsize=9)
        style_axes(self.ax_path)
        style_axes(self.ax_drift, log_y=True)
        self.limits = {name: self._system_limits(pts) for name, pts in self.studies.items()}
        self._set_limits(self.system.value)
        self.fig.tight_layout()
        self._animate(self.fwd_line, self.back_line, self.start_dot, self.drift_line)
        self._finish([self.drift, self.gradient])

    def _system_limits(self, pts):
        """Axis limits that hold every horizon of one system: (path x, path y, drift t, drift y)."""
        path = np.concatenate([p.forward[:, :2] for p in pts])
        lo, hi = np.nanmin(path, 0), np.nanmax(path, 0)
        drift = np.concatenate([np.maximum(p.drift, 1e-17) for p in pts])
        finite = drift[np.isfinite(drift)]
        d_lo = min(finite.min(), self.tol_value) if finite.size else self.tol_value
        d_hi = max(finite.max(), self.tol_value) if finite.size else 1.0
        return (_padded(lo[0], hi[0]), _padded(lo[1], hi[1]), (0.0, max(p.horizon for p in pts)),
                _padded(d_lo, d_hi, log=True))

    def _set_limits(self, system):
        self._limits_of = system
        px, py, dx, dy = self.limits[system]
        for ax in (self.ax_path, self.ax_drift):
            ax.set_autoscale_on(False)
        self.ax_path.set_xlim(px)
        self.ax_path.set_ylim(py)
        self.ax_drift.set_xlim(dx)
        self.ax_drift.set_ylim(dy)

    # Each system is a view (Explorer._views): its own limits, its background rendered at every full draw, so a
    # switch of system blits instead of redrawing every tick label.
    def _views(self):
        return tuple(self.studies)

    def _view(self):
        return self._limits_of

    def _set_view(self, system):
        self._set_limits(system)

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
        self._set_limits(self.system.value)
        p = self.point
        self.fwd_line.set_data(p.forward[:, 0], p.forward[:, 1])
        back = np.where(np.isfinite(p.backward), p.backward, np.nan)
        self.back_line.set_data(back[:, 0], back[:, 1])
        self.start_dot.set_data([p.forward[0, 0]], [p.forward[0, 1]])
        self.drift_line.set_data(p.ts, np.where(np.isfinite(p.drift), np.maximum(p.drift, 1e-17), np.nan))
        drift0 = "blew up" if not np.isfinite(p.drift[0]) else f"{p.drift[0]:.1e}"
        self.drift.value = f"T = {p.horizon:g}: reconstruction error at t = 0: <b>{drift0}</b> (tol {self.tol_value:.0e})&emsp;"
        grad = "no gradient (backward pass failed)" if not np.isfinite(p.grad_error) else f"differ by <b>{p.grad_error:.1e}</b> (relative)"
        self.gradient.value = (f"dL/dz(0), adjoint vs backprop: {grad} · NFE forward {p.forward_nfe}, backward {p.backward_nfe}")
        return f"⚠ {html.escape(p.failure[:200])}" if p.failure else None
