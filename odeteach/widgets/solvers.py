"""Explorers for lesson 2: step size, tolerance and NFE, and stability, live.

* :class:`StepSizeExplorer`: a fixed-step method (Euler, midpoint, RK4) against the exact
  solution; move the step h and watch the trajectory, the error and the NFE.
* :class:`ToleranceExplorer`: an adaptive method (dopri5, bosh3) at a tolerance; the accepted
  and rejected steps, h(t), each attempt's error ratio against 1, NFE and the true error, and the
  work–precision diagram of all methods with the current point marked.
* :class:`StabilityExplorer`: the stability regions in the complex h·λ plane, the current h·λ,
  and the numerical solution of dy/dt = λ y growing when h·λ leaves the region.

All statistics and traces come from :func:`odeteach.solve` (``trace=True``); the explorers
never count anything themselves. Each explorer computes a slider position once and keeps the
result, and by default fills that cache for every slider position when it is built, so moving
a slider only updates artists. :class:`Explorer` is the small base class the other lessons'
explorers may reuse.
"""

from __future__ import annotations

import html
import math
import time
import warnings

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.ticker import LogLocator, MaxNLocator, NullLocator

from ..errors import SolverError
from ..integrate import solve
from ..problems import Problem, damped_spiral, van_der_pol
from ..stability import check_step, stability_region
from ..tableaux import TABLEAUX

__all__ = [
    "Explorer", "figure_view", "figure_widget", "StepSizeExplorer", "ToleranceExplorer", "StabilityExplorer",
    "reference_solution", "slider_values",
]

# Eigenvalues of the linear test problems, for the step-size explorer's stability message.
KNOWN_EIGENVALUES = {"damped_spiral": complex(-0.1, 1.0), "harmonic_oscillator": complex(0.0, 1.0)}

_ACCEPTED = "#1f77b4"
_REJECTED = "#d62728"
_EXACT = "0.55"


def figure_view(fig):
    """The widget that shows ``fig``, and a function to call after each redraw.

    With ipympl (``%matplotlib widget``) the canvas is itself a widget and redraws itself on
    ``draw_idle``. Otherwise (inline backend, Agg in tests) the figure is shown as an image in an
    ``Output`` widget that is re-rendered after each update, when a kernel is there to show it.
    """
    if isinstance(fig.canvas, widgets.DOMWidget):
        fig.canvas.header_visible = False
        fig.canvas.toolbar_visible = False
        fig.canvas.footer_visible = False
        return fig.canvas, lambda: None
    out = widgets.Output()

    def refresh():
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - IPython comes with ipywidgets
            return
        if get_ipython() is None:
            return
        from IPython.display import display
        with out:
            out.clear_output(wait=True)
            display(fig)

    return out, refresh


def figure_widget(fig):
    """The widget that shows ``fig`` now: :func:`figure_view`'s view, with the figure already drawn into
    it when that view is an ``Output`` (inline backend in a kernel). Explorers that redraw through
    ipympl's canvas need nothing more."""
    view, refresh = figure_view(fig)
    refresh()
    return view


def _tidy(ax, log_x=False, log_y=False, n=4):
    """Few ticks: tick labels are most of a redraw's cost."""
    ax.xaxis.set_major_locator(LogLocator(numticks=n) if log_x else MaxNLocator(n))
    ax.yaxis.set_major_locator(LogLocator(numticks=n) if log_y else MaxNLocator(n))
    if log_x:
        ax.xaxis.set_minor_locator(NullLocator())
    if log_y:
        ax.yaxis.set_minor_locator(NullLocator())
    ax.tick_params(labelsize=8)


def slider_values(slider) -> list:
    """Every value a slider can take, in order (for precomputation and the benchmark)."""
    if isinstance(slider, widgets.FloatLogSlider):
        n = int(round((slider.max - slider.min) / slider.step))
        return [float(slider.base ** (slider.min + k * slider.step)) for k in range(n + 1)]
    if isinstance(slider, (widgets.IntSlider, widgets.FloatSlider)):
        n = int(round((slider.max - slider.min) / slider.step))
        vals = [slider.min + k * slider.step for k in range(n + 1)]
        return [int(v) for v in vals] if isinstance(slider, widgets.IntSlider) else [round(float(v), 10) for v in vals]
    if hasattr(slider, "options"):
        return [o[1] if isinstance(o, tuple) else o for o in slider.options]
    raise TypeError(f"don't know the values of a {type(slider).__name__}")


def reference_solution(problem: Problem, t: torch.Tensor) -> torch.Tensor:
    """The exact solution at ``t`` when known, else dopri5 at rtol = atol = 1e-12."""
    if problem.has_exact:
        return problem.exact(t)
    return solve(problem, problem.initial(t.dtype), t, rtol=1e-12, atol=1e-12).ys


class Explorer:
    """Base class: controls as attributes, one figure made once, safe updates, a cache.

    A subclass builds its controls and artists, lists the controls' attribute names in
    ``controls`` and the readout widgets in ``readouts``, then calls ``self._finish()``. It
    implements ``_update()``, which reads the controls and mutates the artists. Any exception in
    an update is shown in ``self.message`` instead of reaching the user as a traceback.

    Blitting (opt-in): a subclass that calls ``self._animate(artist, …)`` before ``_finish`` names
    the only artists its updates change. Everything else (axes, ticks, labels, legends: the text
    that makes a full redraw slow) is drawn once into a cached background, on every full draw of
    the canvas (a ``draw_event``). An update then restores that background, draws the named
    artists over it and blits: no text is laid out again. When the background no longer matches
    the figure (first draw, an axis limit changed, the canvas was resized), the update asks for a
    full redraw with ``draw_idle`` instead, which refreshes the background. Without
    ``_animate`` every update is a full ``draw_idle``.
    """

    controls: tuple[str, ...] = ()
    _dynamic: tuple = ()

    def _figure(self, nrows, ncols, figsize, **kwargs):
        with plt.ioff():
            fig, axes = plt.subplots(nrows, ncols, figsize=figsize, dpi=80, **kwargs)
        return fig, axes

    def _animate(self, *artists):
        """Name the artists that updates change; they are drawn over a cached background."""
        self._dynamic = tuple(artists)
        for artist in artists:
            artist.set_animated(True)

    def _finish(self, readouts):
        self.message = widgets.HTML("")
        self.view, self._refresh = figure_view(self.fig)
        self._background = None
        self._background_key = None
        self.full_draws = 0      # full redraws of the figure so far (for tests and the benchmark)
        self.blits = 0           # updates drawn by blitting
        if self._dynamic:
            for ax in self.fig.axes:   # freeze autoscaling: updates change data, never limits
                ax.set_xlim(ax.get_xlim())
                ax.set_ylim(ax.get_ylim())
            self.fig.canvas.mpl_connect("draw_event", self._on_draw)
        for name in self.controls:
            getattr(self, name).observe(self._on_change, names="value")
        controls = [getattr(self, name) for name in self.controls]
        self.widget = widgets.VBox([widgets.HBox(controls, layout=widgets.Layout(flex_flow="row wrap")),
                                    self.view, widgets.HBox(readouts), self.message])
        self.update()

    def _on_change(self, change=None):
        self.update()

    def _figure_key(self):
        """What the cached background depends on: the canvas size and every axis's limits."""
        return (self.fig.canvas.get_width_height(physical=True), self.fig.dpi,
                tuple((ax.get_xlim(), ax.get_ylim()) for ax in self.fig.axes))

    def _on_draw(self, event):
        """After a full draw (which skips animated artists): keep the background, draw the artists."""
        canvas = self.fig.canvas
        if canvas.is_saving():   # savefig draws the animated artists itself, at its own size
            return
        self.full_draws += 1
        self._background = canvas.copy_from_bbox(self.fig.bbox)
        self._background_key = self._figure_key()
        self._draw_dynamic()

    def _draw_dynamic(self):
        for artist in self._dynamic:
            if artist.get_visible():
                artist.axes.draw_artist(artist)

    def _redraw(self):
        """Blit the changed artists when the background is still valid, else ask for a full redraw."""
        canvas = self.fig.canvas
        if self._dynamic and self._background is not None and self._figure_key() == self._background_key:
            canvas.restore_region(self._background)
            self._draw_dynamic()
            canvas.blit(self.fig.bbox)
            self.blits += 1
        else:
            self._background = None   # stale until the requested draw has happened
            canvas.draw_idle()

    def update(self):
        """Recompute for the controls' current values and redraw; never raises."""
        start = time.perf_counter()
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                note = self._update()
            self.message.value = "" if not note else note
        except Exception as exc:  # a learner must never see a traceback from a slider
            self.message.value = (f"<span style='color:{_REJECTED}'>⚠ {html.escape(type(exc).__name__)}: "
                                  f"{html.escape(str(exc))}</span>")
        self._redraw()
        self._refresh()
        self.last_update_s = time.perf_counter() - start

    def _update(self):  # pragma: no cover - abstract
        raise NotImplementedError


def _warn(text):
    return f"<span style='color:{_REJECTED}'>⚠ {html.escape(text)}</span>"


def _grid(t0: float, t1: float, h: float) -> torch.Tensor:
    """t0, t0 + h, t0 + 2h, …, and t1 itself: the fixed-step solver's own grid."""
    n = int(math.floor((t1 - t0) / h * (1 + 1e-12)))
    pts = [t0 + k * h for k in range(n + 1)]
    if t1 - pts[-1] > 1e-9 * h:
        pts.append(t1)
    else:
        pts[-1] = t1
    return torch.tensor(pts, dtype=torch.float64)


# --------------------------------------------------------------------------------------------


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
        self.ax_phase.plot(exact[:, 0], exact[:, 1], color=_EXACT, lw=2, label="exact")
        (self.line,) = self.ax_phase.plot([], [], "o-", ms=3, lw=1, color=_ACCEPTED, label="numerical")
        pad = 0.25 * (exact[:, :2].max(0) - exact[:, :2].min(0))
        self.ax_phase.set_xlim(exact[:, 0].min() - pad[0], exact[:, 0].max() + pad[0])
        self.ax_phase.set_ylim(exact[:, 1].min() - pad[1], exact[:, 1].max() + pad[1])
        self.ax_phase.set_xlabel("y₁", fontsize=9)
        self.ax_phase.set_ylabel("y₂", fontsize=9)
        self.ax_phase.legend(loc="upper right", fontsize=8)
        (self.err_line,) = self.ax_err.semilogy([], [], "o-", ms=3, lw=1, color=_ACCEPTED)
        self.ax_err.set_xlim(problem.t0, problem.t1)
        self.ax_err.set_ylim(1e-12, 1e3)
        self.ax_err.set_xlabel("t", fontsize=9)
        self.ax_err.set_ylabel("|y − y_exact|", fontsize=9)
        _tidy(self.ax_phase)
        _tidy(self.ax_err, log_y=True)
        self.fig.tight_layout()
        if precompute:
            for m in methods:
                for h in slider_values(self.step_size):
                    self._result(m, h)
        self._animate(self.line, self.err_line)
        self._finish([self.nfe, widgets.HTML(" · "), self.error])

    def _result(self, method, h):
        key = (method, round(math.log10(h), 9))
        if key not in self._cache:
            p = self.problem
            t = _grid(p.t0, p.t1, h)
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
        return "<br>".join(_warn(n) for n in notes)


# --------------------------------------------------------------------------------------------


def _endpoint_error(ys: torch.Tensor, y_end: torch.Tensor) -> float:
    return float((ys[-1] - y_end).abs().max())


class ToleranceExplorer(Explorer):
    """An adaptive method at tolerance rtol = atol, and what its step-size control did.

    Controls: ``method`` (ToggleButtons: dopri5, bosh3), ``tolerance`` (FloatLogSlider).
    Readouts: ``nfe``, ``steps`` (accepted / rejected), ``error`` (true error at t₁). Panels: the
    solution y₁(t) with accepted step ends (dots) and rejected attempts (crosses); the step size
    h(t); each attempt's error ratio against the line at 1 (accepted iff ≤ 1); and the
    work–precision diagram (error at t₁ against NFE) for all methods, the current point starred.
    """

    controls = ("method", "tolerance")

    def __init__(self, problem: Problem | None = None, *, methods=("dopri5", "bosh3"), tol_range=(-8.0, -2.0),
                 tol_step=0.5, tol0=1e-5, fixed_methods=("euler", "midpoint", "rk4"), precompute=True):
        problem = van_der_pol(1.0) if problem is None else problem
        for m in methods:
            if m not in TABLEAUX or not TABLEAUX[m].adaptive:
                raise ValueError(f"ToleranceExplorer takes adaptive methods; {m!r} is not one.")
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
        ref_t = reference_solution(problem, self.t_out)
        self.y_end = ref_t[-1]

        self.fig, axes = self._figure(2, 2, (9.5, 5.8))
        (self.ax_traj, self.ax_h), (self.ax_ratio, self.ax_wp) = axes
        ref = ref_t.numpy()
        self.ax_traj.plot(self.t_out.numpy(), ref[:, 0], color=_EXACT, lw=3, alpha=0.6)
        (self.curve,) = self.ax_traj.plot([], [], color=_ACCEPTED, lw=1)
        self.acc_pts = self.ax_traj.scatter([], [], s=12, color=_ACCEPTED, zorder=3, label="accepted step ends")
        self.rej_pts = self.ax_traj.scatter([], [], s=30, marker="x", color=_REJECTED, zorder=4, label="rejected attempts")
        self.ax_traj.set_xlim(problem.t0, problem.t1)
        span = ref[:, 0].max() - ref[:, 0].min()
        self.ax_traj.set_ylim(ref[:, 0].min() - 0.15 * span, ref[:, 0].max() + 0.15 * span)
        self.ax_traj.set_ylabel("y₁(t)", fontsize=9)
        self.ax_traj.legend(loc="lower left", fontsize=7)

        (self.h_line,) = self.ax_h.semilogy([], [], drawstyle="steps-post", color=_ACCEPTED, lw=1)
        self.h_rej = self.ax_h.scatter([], [], s=20, marker="x", color=_REJECTED)
        self.ax_h.set_xlim(problem.t0, problem.t1)
        self.ax_h.set_ylabel("step size h(t)", fontsize=9)

        self.ax_ratio.axhline(1.0, color="k", lw=1, ls="--")
        self.ratio_acc = self.ax_ratio.scatter([], [], s=10, color=_ACCEPTED)
        self.ratio_rej = self.ax_ratio.scatter([], [], s=25, marker="x", color=_REJECTED)
        self.ax_ratio.set_yscale("log")
        self.ax_ratio.set_xlim(problem.t0, problem.t1)
        self.ax_ratio.set_ylim(1e-4, 1e3)
        self.ax_ratio.set_xlabel("t", fontsize=9)
        self.ax_ratio.set_ylabel("error ratio (≤ 1: accept)", fontsize=9)

        self.ax_wp.set_xscale("log")
        self.ax_wp.set_yscale("log")
        self.ax_wp.set_xlabel("NFE", fontsize=9)
        self.ax_wp.set_ylabel(f"error at t = {problem.t1:g}", fontsize=9)

        # Work–precision: fixed-step methods over step sizes, adaptive ones over the slider's decades.
        self.work_precision = {}
        span_t = problem.t1 - problem.t0
        for m in fixed_methods:
            pts = []
            for k in range(4, 9):
                h = span_t / 2 ** k
                try:
                    sol = solve(problem, problem.initial(), problem.times(2), method=m, options={"step_size": h})
                except SolverError:
                    continue
                err = _endpoint_error(sol.ys, self.y_end)
                if err < 1.0:  # a step so large that the error is O(1) or worse tells nothing
                    pts.append((sol.stats.nfe, err))
            self.work_precision[m] = np.asarray(pts).reshape(-1, 2)
        decades = np.arange(math.ceil(tol_range[0]), math.floor(tol_range[1]) + 1)
        for m in methods:
            pts = [self._result(m, 10.0 ** d) for d in decades]
            self.work_precision[m] = np.asarray([(r["stats"].nfe, r["error"]) for r in pts if r is not None]).reshape(-1, 2)
        for m, pts in self.work_precision.items():
            if len(pts):
                self.ax_wp.plot(pts[:, 0], np.maximum(pts[:, 1], 1e-16), "o-", ms=3, lw=1, label=m)
        (self.wp_point,) = self.ax_wp.plot([], [], "*", ms=16, color="k", zorder=5, label="now")
        self.ax_wp.legend(fontsize=7, loc="lower left", ncol=2)
        for ax, ly in ((self.ax_traj, False), (self.ax_h, True), (self.ax_ratio, True)):
            _tidy(ax, log_y=ly)
        _tidy(self.ax_wp, log_x=True, log_y=True)
        self.fig.tight_layout()
        if precompute:
            for m in methods:
                for tol in slider_values(self.tolerance):
                    self._result(m, tol)
        # h(t) keeps one log scale across slider moves (a new scale would mean a full redraw):
        # with the cache filled, the range of every cached run; otherwise it grows when needed.
        hs = [np.abs(r["h"]) for r in self._cache.values() if not r.get("failure")]
        self._h_limits = (min(h.min() for h in hs) / 2, max(h.max() for h in hs) * 2) if hs else None
        if self._h_limits is not None:
            self.ax_h.set_ylim(*self._h_limits)
        self._animate(self.curve, self.acc_pts, self.rej_pts, self.h_line, self.h_rej, self.ratio_acc,
                      self.ratio_rej, self.wp_point)
        self._finish([self.nfe, widgets.HTML(" · "), self.steps, widgets.HTML(" · "), self.error])

    def _result(self, method, tol):
        key = (method, round(math.log10(tol), 9))
        if key not in self._cache:
            p = self.problem
            try:
                sol = solve(p, p.initial(), self.t_out, method=method, rtol=tol, atol=tol, trace=True)
            except SolverError as exc:
                self._cache[key] = {"failure": str(exc)}
                return None
            tr = sol.trace
            t_start = np.array([r.t for r in tr])
            h = np.array([r.h for r in tr])
            acc = np.array([r.accepted for r in tr])
            ratio = np.array([r.error_ratio for r in tr], dtype=float)
            self._cache[key] = {
                "ys": sol.ys[:, 0].numpy(), "stats": sol.stats, "t_start": t_start, "h": h, "accepted": acc,
                "ratio": ratio, "error": _endpoint_error(sol.ys, self.y_end), "failure": None,
            }
        r = self._cache[key]
        return None if r.get("failure") else r

    def _update(self):
        method, tol = self.method.value, self.tolerance.value
        r = self._result(method, tol)
        if r is None:
            failure = self._cache[(method, round(math.log10(tol), 9))]["failure"]
            for art in (self.acc_pts, self.rej_pts, self.h_rej, self.ratio_acc, self.ratio_rej):
                art.set_offsets(np.empty((0, 2)))
            self.curve.set_data([], [])
            self.h_line.set_data([], [])
            self.wp_point.set_data([], [])
            self.nfe.value = self.steps.value = self.error.value = ""
            return _warn(failure)
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
        s = r["stats"]
        self.wp_point.set_data([s.nfe], [max(r["error"], 1e-16)])
        self.nfe.value = f"NFE = <b>{s.nfe}</b>"
        self.steps.value = f"steps: {s.n_accepted} accepted, <span style='color:{_REJECTED}'>{s.n_rejected} rejected</span>"
        self.error.value = f"true error at t = {self.problem.t1:g}: <b>{r['error']:.3g}</b>"
        return ""


# --------------------------------------------------------------------------------------------


class StabilityExplorer(Explorer):
    """Stability regions |R(h·λ)| ≤ 1 and the test equation dy/dt = λ y solved with step h.

    Controls: ``method`` (ToggleButtons), ``step_size`` (h), ``lam_re`` and ``lam_im`` (λ).
    Readouts: ``amplification`` (|R(h·λ)|) and ``message`` ("unstable at h·λ = …"). Left: the
    region of every method (outlines) with the selected one filled and h·λ marked. Right: |y_n|
    for ``n_steps`` steps of the selected method against the exact |e^{λt}|.
    """

    controls = ("method", "step_size", "lam_re", "lam_im")

    def __init__(self, methods=("euler", "midpoint", "rk4"), *, n_steps=40, h0=0.5, lam0=complex(-2.0, 0.0)):
        for m in methods:
            if m not in TABLEAUX or TABLEAUX[m].adaptive:
                raise ValueError(f"StabilityExplorer solves with a fixed step; {m!r} is adaptive.")
        if n_steps < 1:
            raise ValueError(f"n_steps must be positive; got {n_steps}.")
        self.n_steps = int(n_steps)
        self.method = widgets.ToggleButtons(options=list(methods), value=methods[0], description="method",
                                            style={"button_width": "80px"})
        self.step_size = widgets.FloatSlider(value=h0, min=0.05, max=3.0, step=0.05, description="step h")
        self.lam_re = widgets.FloatSlider(value=lam0.real, min=-4.0, max=1.0, step=0.1, description="Re λ")
        self.lam_im = widgets.FloatSlider(value=lam0.imag, min=0.0, max=4.0, step=0.1, description="Im λ")
        self.amplification = widgets.HTML()

        self.fig, (self.ax_region, self.ax_sol) = self._figure(1, 2, (9, 3.8))
        colors = dict(zip(methods, ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]))
        self.fills = {}
        for m in methods:
            X, Y, R = stability_region(m, re=(-5, 1.5), im=(-4, 4), n=201)
            self.ax_region.contour(X, Y, R, levels=[1.0], colors=[colors[m]], linewidths=1.2)
            fill = self.ax_region.contourf(X, Y, R, levels=[0, 1.0], colors=[colors[m]], alpha=0.25)
            fill.set_visible(False)
            self.fills[m] = fill
            self.ax_region.plot([], [], color=colors[m], label=m)
        self.ax_region.axhline(0, color="k", lw=0.5)
        self.ax_region.axvline(0, color="k", lw=0.5)
        (self.z_point,) = self.ax_region.plot([], [], "*", ms=14, color=_REJECTED, zorder=5, label="h·λ")
        self.ax_region.set_xlabel("Re(h·λ)", fontsize=9)
        self.ax_region.set_ylabel("Im(h·λ)", fontsize=9)
        self.ax_region.set_aspect("equal")
        self.ax_region.legend(fontsize=7, loc="upper left")
        (self.exact_line,) = self.ax_sol.semilogy([], [], color=_EXACT, lw=2, label="exact |exp(λt)|")
        (self.num_line,) = self.ax_sol.semilogy([], [], "o-", ms=3, lw=1, color=_ACCEPTED, label="numerical |y_n|")
        self.ax_sol.set_ylim(1e-8, 1e8)
        # Against the step number n, so that the axis keeps its limits when h moves (t = n·h).
        self.ax_sol.set_xlim(0, self.n_steps)
        self.ax_sol.set_xlabel("step n  (t = n·h)", fontsize=9)
        self.ax_sol.legend(fontsize=7, loc="upper left")
        _tidy(self.ax_region)
        _tidy(self.ax_sol, log_y=True)
        self.fig.tight_layout()
        self._animate(*self.fills.values(), self.z_point, self.exact_line, self.num_line)
        self._finish([self.amplification])

    @property
    def lam(self) -> complex:
        return complex(self.lam_re.value, self.lam_im.value)

    def _update(self):
        method, h, lam = self.method.value, float(self.step_size.value), self.lam
        for m, fill in self.fills.items():
            fill.set_visible(m == method)
        z = h * lam
        self.z_point.set_data([z.real], [z.imag])
        check = check_step(method, h, lam)
        self.amplification.value = (f"{method}, {self.n_steps} steps of h = {h:.3g} (t = {self.n_steps * h:.3g}) · "
                                    f"|R(h·λ)| = <b>{check.amplification:.3g}</b>")
        # dy/dt = λ y for complex λ = a + ib, as a real 2-D system.
        a, b = lam.real, lam.imag
        M = torch.tensor([[a, -b], [b, a]], dtype=torch.float64)
        n = np.arange(self.n_steps + 1)
        t = torch.from_numpy(n * h)
        n_fine = np.linspace(0, self.n_steps, 200)
        self.exact_line.set_data(n_fine, np.clip(np.exp(a * h * n_fine), 1e-300, 1e300))
        try:
            sol = solve(lambda _t, y: y @ M.T, torch.tensor([1.0, 0.0], dtype=torch.float64), t, method=method,
                        options={"step_size": h})
        except SolverError as exc:
            self.num_line.set_data([], [])
            return _warn(f"{check.message}. {exc}")
        norms = sol.ys.norm(dim=1).numpy()
        self.num_line.set_data(n, np.clip(norms, 1e-300, 1e300))
        if check.stable:
            return html.escape(check.message)
        return _warn(check.message)
