"""Explorers for lesson 6, continuous normalizing flows.

- :class:`FlowTimeExplorer`: a time slider t ∈ [0, 1] that morphs samples and the density
  from the base N(0, I) (t = 1) to the learned target (t = 0).
- :class:`FlowToleranceExplorer`: the solver tolerance of sampling against NFE and how far the
  samples land from a tight-tolerance reference.
- :class:`TraceEstimatorExplorer`: the exact trace against Hutchinson's estimate (Gaussian or
  Rademacher noise): the spread of the log-likelihood estimate and the time per solver step.

Each explorer reads one study of :mod:`odeteach.flows.studies`, computed once when it is built, so
moving a control only swaps precomputed arrays into the artists it names (blitted over a cached
background, see :class:`~odeteach.widgets.base.Explorer`).
"""

from __future__ import annotations

import html

import matplotlib.pyplot as plt
import numpy as np
import torch
from ipywidgets import HTML, FloatSlider, Layout, SelectionSlider, ToggleButtons
from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator, ScalarFormatter

from ..data.densities import BOX
from ..flows import CNF
from ..flows.studies import (ESTIMATOR_CHOICES, TOLERANCES, check_cnf, flow_frames, sampling_tolerance_sweep,
                             trace_estimator_study)
from .base import ACCEPTED_COLOUR, EXACT_COLOUR, REJECTED_COLOUR, Explorer, warning_html

__all__ = ["FlowTimeExplorer", "FlowToleranceExplorer", "TraceEstimatorExplorer", "ESTIMATOR_CHOICES", "TOLERANCES"]


def _freeze_ticks(ax):
    """Fix the current major ticks and drop minor ones: the background then keeps them as they are."""
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(FixedLocator(axis.get_majorticklocs()))
        axis.set_minor_locator(NullLocator())


def _plane(ax, title):
    """An axes showing the plotting box [-BOX, BOX]², square, without ticks."""
    ax.set_xlim(-BOX, BOX)
    ax.set_ylim(-BOX, BOX)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


# The density frames are drawn at this many times the grid's resolution, bilinearly interpolated between the
# grid's cell centres and coloured once, when the explorer is built: the look of imshow's "bilinear" at the price
# of "nearest", and no colour mapping in an update.
UPSAMPLE = 3
DENSITY_CMAP = "magma"


def _upsampled(frames: np.ndarray, factor: int = UPSAMPLE) -> np.ndarray:
    """``(frames, n, n)`` grid values at ``factor`` times the resolution, bilinear between cell centres."""
    fine = torch.nn.functional.interpolate(torch.as_tensor(frames, dtype=torch.float64).unsqueeze(1),
                                           scale_factor=factor, mode="bilinear", align_corners=False)
    return fine.squeeze(1).numpy()


def _coloured(frames: np.ndarray) -> np.ndarray:
    """Each frame as RGBA bytes, its colour scale running from 0 to that frame's largest grid value."""
    cmap = plt.get_cmap(DENSITY_CMAP)
    fine = _upsampled(frames)
    tops = np.maximum(frames.max(axis=(1, 2)), np.finfo(float).tiny)
    return cmap(np.clip(fine / tops[:, None, None], 0.0, 1.0), bytes=True)


def _points(data, what="data"):
    """``data`` (a tensor or array of shape (N, 2)) as a NumPy array; else a clear ``ValueError``."""
    d = data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data, dtype=float)
    if d.ndim != 2 or d.shape[1] != 2:
        raise ValueError(f"{what} must be points of shape (N, 2); got shape {d.shape}.")
    return d


class FlowTimeExplorer(Explorer):
    """Slide t from 1 (the base N(0, I)) to 0 (the data) and watch samples and density move.

    Samples: ``n_samples`` points ``z(1) ~ N(0, I)`` integrated backwards once, with outputs at
    ``n_frames`` times. Density: ``p_t`` on a ``grid × grid`` grid for each of those times, each frame
    by integrating the grid from its t to 1 (:func:`odeteach.flows.studies.flow_frames`), drawn with
    bilinear interpolation between the grid's cell centres (``pictures``: RGBA at ``UPSAMPLE`` times the
    grid's resolution, each frame's colour scale from 0 to its largest p_t). The slider snaps to the
    nearest frame. Control: ``time``. Readout: ``readout`` (t, mean log p_t of the samples, the largest
    p_t on the grid, which sets the top of the colour scale).
    """

    controls = ("time",)

    def __init__(self, cnf: CNF, data: torch.Tensor | None = None, *, n_samples: int = 1000, n_frames: int = 11,
                 grid: int = 40, seed: int = 0):
        check_cnf(cnf)
        points = None if data is None else _points(data)
        self.cnf = cnf
        self.frames = flow_frames(cnf, n_samples=n_samples, n_frames=n_frames, grid=grid, seed=seed)
        f = self.frames
        self.times, self.samples, self.sample_log_p = f.times, f.samples, f.sample_log_p
        self.sample_nfe, self.densities, self.density_nfe = f.sample_nfe, f.densities, sum(f.density_nfe)
        self.precompute_seconds = f.seconds
        self.pictures = _coloured(self.densities)           # what the image shows: RGBA, frame by frame

        self.time = FloatSlider(value=1.0, min=0.0, max=1.0, step=1.0 / (n_frames - 1), description="t",
                                readout_format=".2f", continuous_update=True, layout=Layout(width="420px"))
        self.readout = HTML()
        self.fig, (self.ax_samples, self.ax_density) = self._figure(1, 2, (6.6, 3.6))
        _plane(self.ax_samples, "samples z(t), integrated back from t = 1")
        _plane(self.ax_density, f"density p_t on a {grid} × {grid} grid")
        if points is not None:
            self.ax_samples.scatter(points[:, 0], points[:, 1], s=2, c="0.8", label="data", zorder=0)
        self.scatter = self.ax_samples.scatter(self.samples[0, :, 0], self.samples[0, :, 1], s=3, c=ACCEPTED_COLOUR,
                                               label="samples z(t)")
        self.ax_samples.legend(loc="upper right", fontsize=7, markerscale=3)
        self.image = self.ax_density.imshow(self.pictures[0], origin="lower", extent=(-BOX, BOX, -BOX, BOX),
                                            interpolation="nearest")
        self.fig.tight_layout()
        self._animate(self.scatter, self.image)
        self._finish([self.readout])

    def frame(self) -> int:
        """The precomputed frame nearest the slider's t."""
        return int(np.argmin(np.abs(self.times - self.time.value)))

    def _update(self):
        k = self.frame()
        t = self.times[k]
        self.scatter.set_offsets(self.samples[k])
        top = float(self.densities[k].max())
        self.image.set_data(self.pictures[k])
        where = "the base N(0, I)" if k == 0 else ("the model's density of the data" if k == len(self.times) - 1
                                                   else "part way")
        self.readout.value = (f"t = {t:.2f} ({where}) · mean log p<sub>t</sub>(z(t)) of the samples = "
                              f"{self.sample_log_p[k].mean():.3f} nats · colour scale 0 to max p<sub>t</sub> = "
                              f"{top:.3f}")


class FlowToleranceExplorer(Explorer):
    """Sampling at a chosen tolerance: NFE against the distance to a tight-tolerance reference.

    The same ``z(1)`` are integrated backwards at every stop of ``TOLERANCES`` and once at
    ``reference_tol`` in float64 (:func:`odeteach.flows.studies.sampling_tolerance_sweep`); ``error`` is
    the mean distance of the samples from the reference. Control: ``tolerance``. Readout: ``readout``;
    a stop where the solver stopped says so in ``message``.
    """

    controls = ("tolerance",)

    def __init__(self, cnf: CNF, *, n_samples: int = 500, tolerances=TOLERANCES, reference_tol: float = 1e-9,
                 seed: int = 0):
        self.sweep = sampling_tolerance_sweep(cnf, tolerances, n_samples=n_samples, reference_tol=reference_tol,
                                              seed=seed)
        s = self.sweep
        self.tolerances, self.reference = s.tolerances, s.reference
        self.samples, self.nfe, self.error, self.failure = s.samples, s.nfe, s.error, s.failure

        labels = [f"{t:.0e}" for t in self.tolerances]
        self.tolerance = SelectionSlider(options=list(zip(labels, self.tolerances)),
                                         value=self.tolerances[len(self.tolerances) // 2], description="rtol = atol",
                                         continuous_update=True, style={"description_width": "initial"},
                                         layout=Layout(width="420px"))
        self.readout = HTML()
        self.fig, (self.ax_samples, self.ax_cost) = self._figure(1, 2, (7.2, 3.5))
        ax = self.ax_samples
        _plane(ax, "samples x = z(0)")
        ax.scatter(self.reference[:, 0], self.reference[:, 1], s=3, c=EXACT_COLOUR,
                   label=f"reference (tol {s.reference_tol:.0e})")
        self.scatter = ax.scatter(self.samples[0][:, 0], self.samples[0][:, 1], s=3, c=REJECTED_COLOUR,
                                  label="at this tolerance")
        ax.legend(loc="upper right", fontsize=7, markerscale=3)
        self._draw_cost()
        self.fig.tight_layout()
        self._animate(self.scatter, self.marker)
        self._finish([self.readout])

    def _draw_cost(self):
        ax = self.ax_cost
        ok = [i for i, f in enumerate(self.failure) if f is None]
        ax.loglog([self.nfe[i] for i in ok], [self.error[i] for i in ok], "o-", c="0.5")
        self.marker, = ax.loglog([], [], "o", ms=12, mfc="none", mec=REJECTED_COLOUR, mew=2)
        # NFE spans less than a decade, where a log axis has no labelled ticks: label the NFE values themselves.
        ax.set_xticks(sorted({self.nfe[i] for i in ok}))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(labelsize=8)
        ax.set_xlabel("NFE (sampling)", fontsize=9)
        ax.set_ylabel("mean distance to reference", fontsize=9)
        ax.set_title("work against accuracy", fontsize=9)
        _freeze_ticks(ax)

    def index(self) -> int:
        return self.tolerances.index(self.tolerance.value)

    def _update(self):
        i = self.index()
        tol = self.tolerances[i]
        if self.failure[i] is not None:
            self.scatter.set_offsets(np.empty((0, 2)))
            self.marker.set_data([], [])
            self.readout.value = f"tolerance {tol:.0e} · no samples"
            return warning_html(f"the solver stopped at tolerance {tol:.0e}: {self.failure[i]}")
        self.scatter.set_offsets(self.samples[i])
        self.marker.set_data([self.nfe[i]], [self.error[i]])
        self.readout.value = (f"tolerance {tol:.0e} · NFE = {self.nfe[i]} · "
                              f"mean distance to the reference = {self.error[i]:.2e}")
        return None


class TraceEstimatorExplorer(Explorer):
    """Exact trace or Hutchinson: how much the log-likelihood estimate varies, and what a step costs.

    For ``n_points`` data points the log-likelihood is estimated ``repeats`` times with fresh
    noise ε (one solve of all ``n_points × repeats`` copies, each with its own ε); the exact
    trace gives one value per point (:func:`odeteach.flows.studies.trace_estimator_study`). The
    histogram shows estimate − exact value. Control: ``estimator``. Readout: ``readout``.
    """

    controls = ("estimator",)

    def __init__(self, cnf: CNF, points: torch.Tensor, *, repeats: int = 50, timing_repeats: int = 3, seed: int = 0):
        self.study = trace_estimator_study(cnf, points, repeats=repeats, timing_repeats=timing_repeats, seed=seed)
        self.points = points.float()
        self.exact, self.estimates = self.study.exact, self.study.estimates
        self.nfe, self.seconds_per_step = self.study.nfe, self.study.seconds_per_step

        spread = max(float(np.abs(e - self.exact).max()) for e in self.estimates.values())
        # 41 bins, the middle one centred on 0: the exact trace's estimates (all exactly 0) make one bar at 0.
        self.bins = np.linspace(-max(spread, 1e-3), max(spread, 1e-3), 42)
        self.estimator = ToggleButtons(options=list(ESTIMATOR_CHOICES), value="exact trace", description="trace")
        self.readout = HTML()
        self.fig, self.ax = self._figure(1, 1, (6.4, 3.0))
        self.histogram = self.ax.stairs(np.zeros(len(self.bins) - 1), self.bins, fill=True, color=ACCEPTED_COLOUR)
        self.ax.set_xlim(self.bins[0], self.bins[-1])
        self.ax.set_ylim(0, 1.05)
        self.ax.set_yscale("symlog", linthresh=0.05, linscale=1.0)
        ticks = [0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
        self.ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
        self.ax.tick_params(labelsize=8)
        self.ax.set_xlabel("estimate of log p(x) − exact log p(x)  (nats)", fontsize=9)
        self.ax.set_ylabel("fraction of estimates", fontsize=9)
        _freeze_ticks(self.ax)
        self.fig.tight_layout()
        self._animate(self.histogram)
        self._finish([self.readout])

    def stats(self, label: str | None = None) -> dict:
        """Spread of the estimates for one choice: per-point std, std of the batch mean, bias, cost."""
        return self.study.stats(self.estimator.value if label is None else label)

    def fractions(self, label: str | None = None) -> np.ndarray:
        """The histogram's heights for one choice: the fraction of estimates − exact values in each bin."""
        label = self.estimator.value if label is None else label
        diff = (self.estimates[label] - self.exact).ravel()
        counts, _ = np.histogram(np.clip(diff, self.bins[0], self.bins[-1]), bins=self.bins)
        return counts / max(len(diff), 1)

    def _update(self):
        label = self.estimator.value
        self.histogram.set_data(self.fractions(label))
        stats = self.stats(label)
        self.readout.value = (f"{html.escape(label)}: std of log p per point = {stats['std_per_point']:.3f} nats · "
                              f"std of the batch mean = {stats['std_of_mean']:.4f} · "
                              f"mean bias = {stats['bias']:+.4f} · CPU time per solver step (forward + backward) = "
                              f"{1000 * stats['seconds_per_step']:.1f} ms · NFE = {stats['nfe']}")
