"""Lesson 4's explorers: a live training-loss curve, and the test-time tolerance of an ODE-Net.

:class:`ClassifierToleranceExplorer` is the paper's "train at tight tolerance, test at loose" (Chen et al.
2018, §3 and Fig. 3): the ODE-Net's weights stay as trained, only the tolerance its solver is
asked for at test time moves. Each tolerance is evaluated once and cached, so moving the slider
back and forth only redraws.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.ticker import LogLocator, NullLocator
import numpy as np
import torch
from ipywidgets import HTML, FloatLogSlider, VBox

from ..classifier import Classifier, History, SweepPoint, tolerance_sweep
from ..tableaux import TABLEAUX
from .base import figure_view, figure_widget

__all__ = ["ClassifierToleranceExplorer", "LossCurve", "DEFAULT_TOLERANCE_RANGE"]

# log10 of the slider's ends and its step: 1e-6 … 1e1 in quarter decades.
DEFAULT_TOLERANCE_RANGE = (-6.0, 1.0, 0.25)


def _tolerance_key(tol: float) -> float:
    """Cache key: the tolerance's log10, rounded, so that 10**-3 and 0.001 are one entry."""
    return round(math.log10(tol), 6)


class ClassifierToleranceExplorer:
    """Move ``tol`` (rtol = atol at test time) and read test accuracy, NFE per batch and time per batch.

    Parameters
    ----------
    model : a trained ODE-Net (``make_model("odenet")`` or ``load_pretrained("odenet")``).
    x_test, y_test : the test images and labels.
    log10_range : (lowest, highest, step) of log10(tol) on the slider.
    batch_size : test images per forward pass (one adaptive solve serves a whole batch).
    precompute : evaluate every slider position now (so each move only redraws); otherwise a
        position is evaluated the first time it is visited.
    repeats : timings per position; the fastest is shown.
    points : results already measured (from :func:`~odeteach.classifier.tolerance_sweep` on the same
        model and data) to start the cache with.

    ``readout`` (HTML) states the numbers at the current tolerance; ``points`` holds the cache.
    """

    def __init__(self, model: Classifier, x_test: torch.Tensor, y_test: torch.Tensor, *,
                 log10_range=DEFAULT_TOLERANCE_RANGE, batch_size: int = 512, precompute: bool = True,
                 repeats: int = 1, value: float | None = None, points=None):
        block = getattr(model, "ode_block", None)
        if block is None or not TABLEAUX[block.method].adaptive:
            raise TypeError("ClassifierToleranceExplorer needs an ODE-Net with an adaptive solver, "
                            "e.g. odeteach.classifier.load_pretrained('odenet')[0].")
        lo, hi, step = (float(v) for v in log10_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and step > 0 and lo < hi):
            raise ValueError(f"log10_range must be (lowest, highest, step) with lowest < highest and step > 0; got {log10_range}.")
        self.model, self.x_test, self.y_test = model.eval(), x_test, y_test
        self.batch_size, self.repeats = batch_size, repeats
        self.train_tol = block.rtol
        self.grid = [10 ** e for e in np.arange(lo, hi + step / 2, step)]
        self.points: dict[float, SweepPoint] = {_tolerance_key(p.tol): p for p in (points or ())}

        start = value if value is not None else self.train_tol
        self.tol = FloatLogSlider(value=start, base=10, min=lo, max=hi, step=step, description="tolerance",
                                  readout_format=".0e", continuous_update=False)
        self.readout = HTML()

        with plt.ioff():
            self.fig, (self.ax_acc, self.ax_nfe) = plt.subplots(1, 2, figsize=(9.5, 3.6), sharex=True)
        self.ax_acc.set_xscale("log")
        self.ax_acc.set_xlim(10 ** lo / 1.5, 10 ** hi * 1.5)
        # Decade ticks only (the x axis is shared): log minor ticks would double every redraw's cost.
        self.ax_acc.xaxis.set_major_locator(LogLocator(base=10, numticks=5))
        self.ax_acc.xaxis.set_minor_locator(NullLocator())
        self.cursors = [ax.axvline(start, color="k", lw=0.8) for ax in (self.ax_acc, self.ax_nfe)]
        for ax in (self.ax_acc, self.ax_nfe):
            ax.set_xlabel("test-time tolerance (rtol = atol)")
            ax.axvline(self.train_tol, color="0.6", ls="--", lw=1)
            ax.grid(alpha=0.3)
        self.ax_acc.set_ylabel("test accuracy (%)")
        self.ax_nfe.set_ylabel("NFE per forward pass")
        self.ax_time = self.ax_nfe.twinx()
        self.ax_time.set_ylabel("ms per batch", color="tab:orange")
        self.acc_line, = self.ax_acc.plot([], [], "o-", ms=3, color="tab:blue")
        self.nfe_line, = self.ax_nfe.plot([], [], "o-", ms=3, color="tab:green", label="NFE")
        self.time_line, = self.ax_time.plot([], [], "s:", ms=3, color="tab:orange", label="time")
        self.acc_marker, = self.ax_acc.plot([], [], "o", ms=10, mfc="none", mec="k", mew=1.5)
        self.nfe_marker, = self.ax_nfe.plot([], [], "o", ms=10, mfc="none", mec="k", mew=1.5)
        self.ax_acc.text(self.train_tol, 0.02, " trained here", transform=self.ax_acc.get_xaxis_transform(),
                         fontsize=8, color="0.4")
        self.fig.tight_layout()

        if precompute:
            for tol in self.grid:
                self.evaluate(tol)
        self.widget = VBox([self.tol, figure_widget(self.fig), self.readout])
        self.tol.observe(self._update, names="value")
        self._update()

    def evaluate(self, tol: float) -> SweepPoint:
        """The cached result at ``tol``, evaluating it first if it is new."""
        key = _tolerance_key(tol)
        if key not in self.points:
            self.points[key] = tolerance_sweep(self.model, self.x_test, self.y_test, [10 ** key],
                                               batch_size=self.batch_size, repeats=self.repeats)[0]
        return self.points[key]

    def _curves(self):
        ok = sorted((p for p in self.points.values() if p.error is None), key=lambda p: p.tol)
        return (np.array([p.tol for p in ok]), np.array([100 * p.accuracy for p in ok]),
                np.array([p.nfe_per_batch for p in ok]), np.array([1e3 * p.seconds_per_batch for p in ok]))

    def _update(self, change=None):
        tol = float(self.tol.value)
        try:
            point = self.evaluate(tol)
        except Exception as exc:  # never a traceback in the widget
            self.readout.value = f"<b style='color:#b00'>tolerance {tol:.0e}: {type(exc).__name__}: {exc}</b>"
            return
        tols, acc, nfe, ms = self._curves()
        self.acc_line.set_data(tols, acc)
        self.nfe_line.set_data(tols, nfe)
        self.time_line.set_data(tols, ms)
        for cursor in self.cursors:
            cursor.set_xdata([tol, tol])
        if point.error is None:
            self.acc_marker.set_data([tol], [100 * point.accuracy])
            self.nfe_marker.set_data([tol], [point.nfe_per_batch])
            n = len(self.y_test)
            batch = min(self.batch_size, n)
            self.readout.value = (
                f"tolerance <b>{tol:.0e}</b> (trained at {self.train_tol:.0e}): test accuracy "
                f"<b>{100 * point.accuracy:.2f}%</b> ({round(point.accuracy * n)}/{n}) · "
                f"NFE <b>{point.nfe_per_batch:.0f}</b> per forward pass of {batch} images · "
                f"<b>{1e3 * point.seconds_per_batch:.1f} ms</b> per batch")
        else:
            self.acc_marker.set_data([], [])
            self.nfe_marker.set_data([], [])
            self.readout.value = f"<b style='color:#b00'>tolerance {tol:.0e}: the solver failed: {point.error}</b>"
        if len(tols):
            self.ax_acc.set_ylim(max(0.0, acc.min() - 5), 100.5)
            self.ax_nfe.set_ylim(0, 1.1 * max(nfe.max(), 1))
            self.ax_time.set_ylim(0, 1.1 * max(ms.max(), 1e-3))
        self.fig.canvas.draw_idle()


class LossCurve:
    """A live training-loss curve: pass ``curve.watch(label)`` as ``train(..., on_batch=...)``.

    One line per model (``label``); redraws at most every ``every`` batches to stay cheap.
    Show it with :meth:`show` before training and call :meth:`finish` after: a saved notebook keeps
    the image a figure had when it was *displayed*, so without ``finish`` the saved output is the
    empty axes the curve started from.
    """

    def __init__(self, labels=("resnet", "rknet", "odenet"), *, every: int = 5):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer; got {every!r}.")
        self.every = every
        with plt.ioff():   # constrained: the y label stays inside the figure as the tick labels change
            self.fig, self.ax = plt.subplots(figsize=(6.5, 3.2), layout="constrained")
        self.ax.set_xlabel("batch")
        self.ax.set_ylabel("training loss (cross-entropy)")
        self.ax.set_yscale("log")
        self.ax.grid(alpha=0.3)
        self.lines = {label: self.ax.plot([], [], ".-", lw=1, ms=4, label=label)[0] for label in labels}
        self.ax.legend(fontsize=8)
        self.active = labels[0] if labels else None
        self.widget, self._refresh = figure_view(self.fig)
        self._refresh()
        self._handle = None

    def show(self):
        """Display the curve (in a notebook) so that :meth:`finish` can replace the saved image later."""
        from IPython.display import display

        self._handle = display(self.widget, display_id=True)

    def finish(self, histories: dict | None = None):
        """Draw every curve in full (``histories`` maps labels to :class:`History`) and refresh the
        display made by :meth:`show`, so that a saved notebook shows the finished curves."""
        for label, history in (histories or {}).items():
            self.update(history, label, force=True)
        if self._handle is not None:
            self._handle.update(self.widget)

    def watch(self, label: str):
        """The callback for the model ``label``: ``train(model, data, on_batch=curve.watch("odenet"))``."""
        if label not in self.lines:
            raise ValueError(f"unknown curve {label!r}; this LossCurve has {', '.join(self.lines)}.")
        return lambda history: self.update(history, label)

    def update(self, history: History, label: str | None = None, *, force: bool = False):
        """Draw ``history.loss`` as the curve ``label`` (every ``every`` batches, or now with ``force``)."""
        label = label or self.active
        if label not in self.lines:
            raise ValueError(f"unknown curve {label!r}; this LossCurve has {', '.join(self.lines)}.")
        n = len(history.loss)
        if n % self.every and n > 1 and not force:
            return
        self.lines[label].set_data(np.arange(1, n + 1), history.loss)
        values = [v for line in self.lines.values() for v in line.get_ydata()]
        if values:
            self.ax.set_xlim(0, max(len(line.get_xdata()) for line in self.lines.values()) + 1)
            self.ax.set_ylim(max(min(values) / 1.5, 1e-4), max(values) * 1.5)
        self.fig.canvas.draw_idle()
        self._refresh()
