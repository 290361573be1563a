"""Lesson 4's explorers: a live training-loss curve, and the test-time tolerance of an ODE-Net.

:class:`ClassifierToleranceExplorer` is the paper's "train at tight tolerance, test at loose" (Chen et al.
2018, §3 and Fig. 3): the ODE-Net's weights stay as trained, only the tolerance its solver is
asked for at test time moves. Each tolerance is tested once, by :func:`odeteach.classifier.tolerance_sweep`,
and kept; by default every slider position is tested when the explorer is built, so a move only
moves the cursor and the markers (blitted).

:class:`LossCurve` draws the training loss of each model as it trains; the curves are blitted, and a
full redraw happens only when an axis has to grow.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from ipywidgets import HTML, FloatLogSlider
from matplotlib.ticker import LogLocator, MaxNLocator, NullLocator

from ..classifier import Classifier, History, SweepPoint, check_images, tolerance_sweep
from ..tableaux import TABLEAUX
from ..validation import integer, positive_number
from .base import Explorer, static_png, style_axes, warning_html

__all__ = ["ClassifierToleranceExplorer", "LossCurve", "DEFAULT_TOLERANCE_RANGE"]

# log10 of the slider's ends and its step: 1e-5 … 1e1 in half decades (13 positions). Each position
# costs one pass over the test set, about 10 ms of CPU per evaluation of f for the 359 test digits; a
# finer or wider grid would make the explorer slow to build (1e-6 alone needs NFE 98, over a second).
DEFAULT_TOLERANCE_RANGE = (-5.0, 1.0, 0.5)
TIME_COLOUR = "tab:orange"


def _tolerance_key(tol: float) -> float:
    """Cache key: the tolerance's log10, rounded, so that 10**-3 and 0.001 are one entry."""
    return round(math.log10(tol), 6)


class ClassifierToleranceExplorer(Explorer):
    """Move ``tol`` (rtol = atol at test time) and read test accuracy, NFE per batch and time per batch.

    Parameters
    ----------
    model : a trained ODE-Net (``make_model("odenet")`` or ``load_pretrained("odenet")``).
    x_test, y_test : the test images and labels.
    log10_range : (lowest, highest, step) of log10(tol) on the slider.
    batch_size : test images per forward pass (one adaptive solve serves a whole batch).
    precompute : test every slider position now (so each move only moves artists); otherwise a
        position is tested the first time it is visited.
    repeats : timings per position; the fastest is shown.
    value : the slider's first position (default: the training tolerance).
    points : results already measured (from :func:`~odeteach.classifier.tolerance_sweep` on the same
        model and data) to start the cache with.

    Control: ``tol``. Readout: ``readout`` (HTML, the numbers at the current tolerance); a failed
    solve is named in ``message``. ``points`` holds the cache, keyed by log10(tol).
    """

    controls = ("tol",)

    def __init__(self, model: Classifier, x_test: torch.Tensor, y_test: torch.Tensor, *,
                 log10_range=DEFAULT_TOLERANCE_RANGE, batch_size: int = 512, precompute: bool = True,
                 repeats: int = 1, value: float | None = None, points=None):
        block = getattr(model, "ode_block", None)
        if block is None or not TABLEAUX[block.method].adaptive:
            raise TypeError("ClassifierToleranceExplorer needs an ODE-Net with an adaptive solver, "
                            "e.g. odeteach.classifier.load_pretrained('odenet')[0].")
        check_images(x_test, y_test, "ClassifierToleranceExplorer's test data")
        lo, hi, step = (float(v) for v in log10_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and step > 0 and lo < hi):
            raise ValueError(f"log10_range must be (lowest, highest, step) with lowest < highest and step > 0; got {log10_range}.")
        points = list(points or ())
        strangers = [type(p).__name__ for p in points if not isinstance(p, SweepPoint)]
        if strangers:
            raise TypeError(f"points must be SweepPoints from odeteach.classifier.tolerance_sweep; got {strangers[0]}.")
        self.model, self.x_test, self.y_test = model.eval(), x_test, y_test
        self.batch_size = integer("batch_size", batch_size, minimum=1)
        self.repeats = integer("repeats", repeats, minimum=1)
        self.train_tol = block.rtol
        self.grid = [10 ** e for e in np.arange(lo, hi + step / 2, step)]
        self.points: dict[float, SweepPoint] = {_tolerance_key(p.tol): p for p in points}
        if value is None:   # the training tolerance, or the slider's nearest end
            start = min(max(self.train_tol, 10 ** lo), 10 ** hi)
        else:
            start = positive_number("value", value)
            if not lo - 1e-9 <= math.log10(start) <= hi + 1e-9:
                raise ValueError(f"value must lie on the slider, between 1e{lo:g} and 1e{hi:g}; got {value!r}.")

        self.tol = FloatLogSlider(value=start, base=10, min=lo, max=hi, step=step, description="tolerance",
                                  readout_format=".0e", continuous_update=False)
        self.readout = HTML()
        if precompute:
            for tol in self.grid:
                self.evaluate(tol)
        self._draw_axes(lo, hi, start)
        self._set_curves()
        self._fit_limits(grow_only=False)
        # Axis by axis, in the figure's drawing order, so that a blit layers them as a full draw does.
        self._animate(self.acc_line, self.cursors[0], self.acc_marker, self.nfe_line, self.cursors[1],
                      self.nfe_marker, self.time_line, self.time_marker)
        self._finish([self.readout])

    def _draw_axes(self, lo: float, hi: float, start: float):
        """The two panels: fixed artists (training tolerance, labels) and the ones updates move."""
        self.fig, (self.ax_acc, self.ax_nfe) = self._figure(1, 2, (9, 3.1), sharex=True)
        self.ax_time = self.ax_nfe.twinx()
        for ax in (self.ax_acc, self.ax_nfe):
            style_axes(ax)
            ax.set_xlabel("test-time tolerance (rtol = atol)", fontsize=9)
            ax.axvline(self.train_tol, color="0.6", ls="--", lw=1)
            ax.grid(alpha=0.3)
        style_axes(self.ax_time)
        for side in ("left", "top", "bottom"):   # the NFE axes draw these; drawn twice, they would cover the cursor
            self.ax_time.spines[side].set_visible(False)
        self.ax_acc.set_xscale("log")
        self.ax_acc.set_xlim(10 ** lo / 1.5, 10 ** hi * 1.5)
        # Decade ticks only (the x axis is shared): log minor ticks would double a full redraw's cost.
        self.ax_acc.xaxis.set_major_locator(LogLocator(base=10, numticks=5))
        self.ax_acc.xaxis.set_minor_locator(NullLocator())
        self.ax_acc.set_ylabel("test accuracy (%)", fontsize=9)
        self.ax_nfe.set_ylabel("NFE per forward pass", fontsize=9)
        self.ax_time.set_ylabel("ms per batch", color=TIME_COLOUR, fontsize=9)
        self.ax_acc.text(self.train_tol, 0.02, " trained here", transform=self.ax_acc.get_xaxis_transform(),
                         fontsize=8, color="0.4")
        self.cursors = [ax.axvline(start, color="k", lw=0.8) for ax in (self.ax_acc, self.ax_nfe)]
        self.acc_line, = self.ax_acc.plot([], [], "o-", ms=3, color="tab:blue")
        self.nfe_line, = self.ax_nfe.plot([], [], "o-", ms=3, color="tab:green")
        self.time_line, = self.ax_time.plot([], [], "s:", ms=3, color=TIME_COLOUR)
        marker = dict(ms=10, mfc="none", mec="k", mew=1.5)
        self.acc_marker, = self.ax_acc.plot([], [], "o", **marker)
        self.nfe_marker, = self.ax_nfe.plot([], [], "o", **marker)
        self.time_marker, = self.ax_time.plot([], [], "s", **{**marker, "ms": 8, "mec": TIME_COLOUR})
        self.fig.tight_layout()

    def evaluate(self, tol: float) -> SweepPoint:
        """The cached result at ``tol``, testing the model at it first if it is new."""
        key = _tolerance_key(tol)
        if key not in self.points:
            self.points[key] = tolerance_sweep(self.model, self.x_test, self.y_test, [10 ** key],
                                               batch_size=self.batch_size, repeats=self.repeats)[0]
        return self.points[key]

    def _curves(self):
        ok = sorted((p for p in self.points.values() if p.error is None), key=lambda p: p.tol)
        return (np.array([p.tol for p in ok]), np.array([100 * p.accuracy for p in ok]),
                np.array([p.nfe_per_batch for p in ok]), np.array([1e3 * p.seconds_per_batch for p in ok]))

    def _set_curves(self):
        tols, acc, nfe, ms = self._curves()
        self.acc_line.set_data(tols, acc)
        self.nfe_line.set_data(tols, nfe)
        self.time_line.set_data(tols, ms)

    def _fit_limits(self, grow_only: bool = True):
        """y limits that hold every cached point. After the build they only grow, and only when a
        position tested then (``precompute=False``) falls outside them: that update is a full redraw."""
        _, acc, nfe, ms = self._curves()
        wanted = {self.ax_acc: (max(0.0, acc.min() - 5) if len(acc) else 0.0, 100.5),
                  self.ax_nfe: (0.0, 1.1 * max(nfe.max(), 1) if len(nfe) else 100.0),
                  self.ax_time: (0.0, 1.1 * max(ms.max(), 1e-3) if len(ms) else 1000.0)}
        for ax, (low, high) in wanted.items():
            if not grow_only:
                ax.set_ylim(low, high)
                continue
            now_low, now_high = ax.get_ylim()
            if low < now_low or high > now_high:
                ax.set_ylim(min(low, now_low), max(high, now_high))

    def _update(self):
        tol = float(self.tol.value)
        for cursor in self.cursors:
            cursor.set_xdata([tol, tol])
        for marker in (self.acc_marker, self.nfe_marker, self.time_marker):
            marker.set_data([], [])
        self.readout.value = f"tolerance <b>{tol:.0e}</b> (trained at {self.train_tol:.0e}): –"
        cached = _tolerance_key(tol) in self.points
        point = self.evaluate(tol)
        if not cached:
            self._set_curves()
            self._fit_limits()
        if point.error is not None:
            return warning_html(f"tolerance {tol:.0e}: the solver failed: {point.error}")
        acc, nfe, ms = 100 * point.accuracy, point.nfe_per_batch, 1e3 * point.seconds_per_batch
        self.acc_marker.set_data([tol], [acc])
        self.nfe_marker.set_data([tol], [nfe])
        self.time_marker.set_data([tol], [ms])
        n = len(self.y_test)
        self.readout.value = (
            f"tolerance <b>{tol:.0e}</b> (trained at {self.train_tol:.0e}): test accuracy "
            f"<b>{acc:.2f}%</b> ({round(point.accuracy * n)}/{n}) · "
            f"NFE <b>{nfe:.0f}</b> per forward pass of {min(self.batch_size, n)} images · "
            f"<b>{ms:.1f} ms</b> per batch")
        return None


class LossCurve(Explorer):
    """A live training-loss curve: pass ``curve.watch(label)`` as ``train(..., on_batch=...)``.

    One line per model (``label``); redraws at most every ``every`` batches to stay cheap. It has no
    controls (``controls = ()``); the readout ``readout`` states each model's batch count and latest
    loss. The lines are blitted over a cached background; an axis grows (a full redraw) only when a
    curve reaches its edge: the batch axis doubles, the log loss axis widens to the next decade. Give
    ``n_batches`` (the most batches any model trains) to fix the batch axis from the start.

    Show it with :meth:`show` before training and call :meth:`finish` after: a saved notebook keeps
    the image a figure had when it was *displayed*, so without ``finish`` the saved output is the
    empty axes the curve started from.
    """

    controls = ()

    def __init__(self, labels=("resnet", "rknet", "odenet"), *, every: int = 5, n_batches: int | None = None):
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every must be a positive integer; got {every!r}.")
        labels = tuple(labels)
        if not labels or not all(isinstance(label, str) for label in labels):
            raise ValueError(f"labels must be one or more names of curves; got {labels!r}.")
        self.every = every
        self.readout = HTML()
        # constrained: the y label stays inside the figure as the tick labels change
        self.fig, self.ax = self._figure(1, 1, (6.5, 3.0), layout="constrained")
        self.ax.set_xlabel("batch", fontsize=9)
        self.ax.set_ylabel("training loss (cross-entropy)", fontsize=9)
        self.ax.set_yscale("log")
        style_axes(self.ax, log_y=True)
        self.ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))   # batches are counted in whole numbers
        self.ax.grid(alpha=0.3)
        self.lines = {label: self.ax.plot([], [], ".-", lw=1, ms=4, label=label)[0] for label in labels}
        self.ax.legend(fontsize=8, loc="upper right")
        self.ax.set_xlim(0, 10 if n_batches is None else integer("n_batches", n_batches, minimum=1) + 1)
        self.ax.set_ylim(1e-2, 1e1)
        self.active = labels[0]
        self._handle = None
        self._animate(*self.lines.values())
        self._finish([self.readout])

    def show(self):
        """Display the curve (in a notebook) so that :meth:`finish` can replace the saved image later.

        The output holds the live widget and, as :func:`odeteach.widgets.base.show` does, a PNG of the
        figure for viewers that cannot run widgets."""
        from IPython.display import display

        self._handle = display(self._bundle(), raw=True, display_id=True)

    def _bundle(self) -> dict:
        bundle = self.widget._repr_mimebundle_()
        bundle["image/png"] = static_png(self.fig)
        return bundle

    def finish(self, histories: dict | None = None):
        """Draw every curve in full (``histories`` maps labels to :class:`History`) and refresh the
        display made by :meth:`show`, so that a saved notebook shows the finished curves."""
        for label, history in (histories or {}).items():
            self.update(history, label, force=True)
        if self._handle is not None:
            self._handle.update(self._bundle(), raw=True)

    def watch(self, label: str):
        """The callback for the model ``label``: ``train(model, data, on_batch=curve.watch("odenet"))``."""
        self._check_label(label)
        return lambda history: self.update(history, label)

    def _check_label(self, label):
        if label not in self.lines:
            raise ValueError(f"unknown curve {label!r}; this LossCurve has {', '.join(self.lines)}.")

    def update(self, history: History | None = None, label: str | None = None, *, force: bool = False):
        """Draw ``history.loss`` as the curve ``label`` (every ``every`` batches, or now with ``force``).

        Without ``history``: redraw the curves as they are (the base class's update, which never raises)."""
        if history is not None:
            label = label or self.active
            self._check_label(label)
            n = len(history.loss)
            if n % self.every and n > 1 and not force:
                return
            self.lines[label].set_data(np.arange(1, n + 1), np.asarray(history.loss, dtype=float))
            self._grow_axes()
        super().update()

    def _update(self):
        self.readout.value = " · ".join(f"{label}: batch {len(line.get_ydata())}, loss <b>{line.get_ydata()[-1]:.3g}</b>"
                                        for label, line in self.lines.items() if len(line.get_ydata()))

    def _grow_axes(self):
        """Widen the axes to hold every curve: the batch axis doubles, the loss axis reaches the next
        decade. A change of limits makes the next draw a full one; a curve of n batches costs about
        log2(n) of them."""
        curves = [np.asarray(line.get_ydata(), dtype=float) for line in self.lines.values()]
        n = max(len(loss) for loss in curves)
        left, right = self.ax.get_xlim()
        while n >= right:
            right = 2 * right
        values = np.concatenate(curves)
        values = values[np.isfinite(values) & (values > 0)]
        low, high = self.ax.get_ylim()
        if len(values):
            low = min(low, 10.0 ** math.floor(math.log10(values.min())))
            high = max(high, 10.0 ** math.ceil(math.log10(values.max())))
        if (left, right) != self.ax.get_xlim():
            self.ax.set_xlim(left, right)
        if (low, high) != self.ax.get_ylim():
            self.ax.set_ylim(low, high)
