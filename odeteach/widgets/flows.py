"""Explorers for lesson 6, continuous normalizing flows.

- :class:`FlowTimeExplorer`: a time slider t ∈ [0, 1] that morphs samples and the density
  from the base N(0, I) (t = 1) to the learned target (t = 0).
- :class:`FlowToleranceExplorer`: the solver tolerance of sampling against NFE and how far the
  samples land from a tight-tolerance reference.
- :class:`TraceEstimatorExplorer`: the exact trace against Hutchinson's estimate (Gaussian or
  Rademacher noise): the spread of the log-likelihood estimate and the time per solver step.

Every explorer computes all its states once, when it is built, so moving a control only swaps
precomputed arrays into the figure's artists. An update that fails anyway (a ``SolverError`` or
anything else) is shown as a message in the explorer's readout, never as a traceback.
"""

from __future__ import annotations

import copy
import functools
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from ipywidgets import HTML, FloatSlider, HBox, Layout, SelectionSlider, ToggleButtons, VBox
from matplotlib.ticker import NullFormatter, ScalarFormatter

from ..data.densities import BOX
from ..errors import SolverError
from ..flows import CNF, base_log_prob, log_prob_frames
from ..validation import integer
from .base import figure_widget, warning_html

__all__ = ["FlowTimeExplorer", "FlowToleranceExplorer", "TraceEstimatorExplorer", "ESTIMATOR_CHOICES", "TOLERANCES"]


def _freeze_ticks(ax):
    """Fix the current major ticks and drop minor ones: redrawing then skips tick placement,
    which on log axes is most of a redraw's cost."""
    from matplotlib.ticker import FixedLocator, NullLocator
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(FixedLocator(axis.get_majorticklocs()))
        axis.set_minor_locator(NullLocator())


def _never_raises(update):
    """Wrap an explorer's ``_update`` so that a failure shows in its readout instead of a traceback."""
    @functools.wraps(update)
    def safe_update(self, change=None):
        try:
            update(self, change)
        except Exception as exc:  # a learner must never see a traceback from a control
            self.readout.value = warning_html(f"this view could not be drawn: {type(exc).__name__}: {exc}")
    return safe_update


def _check_cnf(cnf):
    if not isinstance(cnf, CNF):
        raise TypeError(f"cnf must be an odeteach.flows.CNF (e.g. odeteach.flows.pretrained('two_moons')); got {type(cnf).__name__}.")
    if cnf.dim != 2:
        raise ValueError(f"these explorers draw 2-D flows; this CNF has dim={cnf.dim}.")


class FlowTimeExplorer:
    """Slide t from 1 (the base N(0, I)) to 0 (the data) and watch samples and density move.

    Samples: ``n_samples`` points ``z(1) ~ N(0, I)`` integrated backwards once, with outputs at
    ``n_frames`` times. Density: ``log p_t`` on a ``grid × grid`` grid for each of those times,
    each by integrating the grid from t to 1 (all frames in one batched solve,
    :func:`odeteach.flows.log_prob_frames`). The slider snaps to the nearest frame.
    """

    def __init__(self, cnf: CNF, data: torch.Tensor | None = None, *, n_samples: int = 1000, n_frames: int = 11,
                 grid: int = 60, seed: int = 0):
        _check_cnf(cnf)
        integer("n_samples", n_samples, minimum=1)
        integer("n_frames", n_frames, minimum=2)
        integer("grid", grid, minimum=2)
        self.cnf = cnf
        self.times = np.linspace(1.0, 0.0, n_frames)
        start = time.perf_counter()
        with torch.no_grad():
            result = cnf.sample(n_samples, seed=seed, times=torch.tensor(self.times, dtype=torch.float32))
            self.samples = result.zs.numpy()                     # (frames, n, 2)
            self.sample_log_p = result.log_p.numpy()             # (frames, n)
            self.sample_nfe = result.nfe
            _, log_p, self.density_nfe = log_prob_frames(cnf, torch.tensor(self.times, dtype=torch.float32), n=grid)
            self.densities = log_p.exp().numpy()                 # (frames, grid, grid)
        self.precompute_seconds = time.perf_counter() - start

        self.time = FloatSlider(value=1.0, min=0.0, max=1.0, step=1.0 / (n_frames - 1), description="t",
                                readout_format=".2f", continuous_update=True, layout=Layout(width="420px"))
        self.readout = HTML()
        with plt.ioff():
            self.fig, (self.ax_samples, self.ax_density) = plt.subplots(1, 2, figsize=(8.4, 4.2))
        extent = (-BOX, BOX, -BOX, BOX)
        for ax in (self.ax_samples, self.ax_density):
            ax.set_xlim(-BOX, BOX)
            ax.set_ylim(-BOX, BOX)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
        if data is not None:
            d = data.detach().numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
            self.ax_samples.scatter(d[:, 0], d[:, 1], s=2, c="0.8", label="data", zorder=0)
        self.scatter = self.ax_samples.scatter(self.samples[0, :, 0], self.samples[0, :, 1], s=3, c="C0", label="samples z(t)")
        self.ax_samples.legend(loc="upper right", fontsize=8, markerscale=3)
        self.image = self.ax_density.imshow(self.densities[0], origin="lower", extent=extent, cmap="magma",
                                            interpolation="nearest")
        self.ax_samples.set_title("samples integrated backwards from t = 1")
        self.title = self.ax_density.set_title("")
        self.fig.tight_layout()
        self.time.observe(self._update, names="value")
        self.widget = VBox([HBox([self.time, self.readout]), figure_widget(self.fig)])
        self._update()

    def frame(self) -> int:
        """The precomputed frame nearest the slider's t."""
        return int(np.argmin(np.abs(self.times - self.time.value)))

    @_never_raises
    def _update(self, change=None):
        k = self.frame()
        t = self.times[k]
        self.scatter.set_offsets(self.samples[k])
        density = self.densities[k]
        self.image.set_data(density)
        self.image.set_clim(0.0, float(density.max()))
        where = "the base N(0, I)" if k == 0 else ("the model's density of the data" if k == len(self.times) - 1 else "part way")
        self.title.set_text(f"p_t on a grid, t = {t:.2f}")
        self.readout.value = (f"t = {t:.2f} ({where}) · mean log p<sub>t</sub>(z(t)) of the samples = "
                              f"{self.sample_log_p[k].mean():.3f} nats")
        self.fig.canvas.draw_idle()


# The tolerance slider's stops (rtol = atol).
TOLERANCES = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 1e-5, 1e-6)


class FlowToleranceExplorer:
    """Sampling at a chosen tolerance: NFE against the distance to a tight-tolerance reference.

    The same ``z(1)`` are integrated backwards at every stop of ``TOLERANCES`` and once at
    ``reference_tol`` in float64; ``error`` is the mean distance of the samples from the reference.
    """

    def __init__(self, cnf: CNF, *, n_samples: int = 500, tolerances=TOLERANCES, reference_tol: float = 1e-9,
                 seed: int = 0):
        _check_cnf(cnf)
        integer("n_samples", n_samples, minimum=1)
        tolerances = tuple(float(t) for t in tolerances)
        if not tolerances or any(not (0 < t < 1) for t in tolerances):
            raise ValueError(f"tolerances must be numbers in (0, 1); got {tolerances}.")
        self.tolerances = tolerances
        z1 = torch.randn(n_samples, 2, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            ref_model = copy.deepcopy(cnf).double()
            self.reference = ref_model.sample(z1=z1.double(), with_log_p=False, rtol=reference_tol,
                                              atol=reference_tol).zs[-1].numpy()
            self.samples, self.nfe, self.error, self.failure = [], [], [], []
            for tol in tolerances:
                try:
                    res = cnf.sample(z1=z1, with_log_p=False, rtol=tol, atol=tol)
                except SolverError as exc:  # shown in the readout, never as a traceback
                    self.samples.append(np.full((n_samples, 2), np.nan))
                    self.nfe.append(0)
                    self.error.append(np.nan)
                    self.failure.append(str(exc))
                    continue
                x = res.zs[-1].double().numpy()
                self.samples.append(x)
                self.nfe.append(res.nfe)
                self.error.append(float(np.linalg.norm(x - self.reference, axis=1).mean()))
                self.failure.append(None)

        labels = [f"{t:.0e}" for t in tolerances]
        self.tolerance = SelectionSlider(options=list(zip(labels, tolerances)), value=tolerances[len(tolerances) // 2],
                                         description="rtol = atol", continuous_update=True,
                                         style={"description_width": "initial"}, layout=Layout(width="420px"))
        self.readout = HTML()
        with plt.ioff():
            self.fig, (self.ax_samples, self.ax_cost) = plt.subplots(1, 2, figsize=(8.4, 4.0))
        ax = self.ax_samples
        ax.scatter(self.reference[:, 0], self.reference[:, 1], s=3, c="0.75", label=f"reference (tol {reference_tol:.0e})")
        self.scatter = ax.scatter(self.samples[0][:, 0], self.samples[0][:, 1], s=3, c="C3", label="at this tolerance")
        ax.set_xlim(-BOX, BOX)
        ax.set_ylim(-BOX, BOX)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(loc="upper right", fontsize=8, markerscale=3)
        ax.set_title("samples x = z(0)")
        ok = [i for i, f in enumerate(self.failure) if f is None]
        self.ax_cost.loglog([self.nfe[i] for i in ok], [self.error[i] for i in ok], "o-", c="0.5")
        self.marker, = self.ax_cost.loglog([], [], "o", ms=12, mfc="none", mec="C3", mew=2)
        # NFE spans less than a decade, where a log axis has no labelled ticks: label the NFE values themselves.
        self.ax_cost.set_xticks(sorted({self.nfe[i] for i in ok}))
        self.ax_cost.xaxis.set_major_formatter(ScalarFormatter())
        self.ax_cost.xaxis.set_minor_formatter(NullFormatter())
        self.ax_cost.set_xlabel("NFE (sampling)")
        self.ax_cost.set_ylabel("mean distance to reference")
        self.ax_cost.set_title("work against accuracy")
        _freeze_ticks(self.ax_cost)
        self.fig.tight_layout()
        self.tolerance.observe(self._update, names="value")
        self.widget = VBox([HBox([self.tolerance, self.readout]), figure_widget(self.fig)])
        self._update()

    def index(self) -> int:
        return self.tolerances.index(self.tolerance.value)

    @_never_raises
    def _update(self, change=None):
        i = self.index()
        if self.failure[i] is not None:
            self.scatter.set_offsets(np.empty((0, 2)))
            self.marker.set_data([], [])
            self.readout.value = f"<b>the solver stopped:</b> {self.failure[i]}"
        else:
            self.scatter.set_offsets(self.samples[i])
            self.marker.set_data([self.nfe[i]], [self.error[i]])
            self.readout.value = (f"tolerance {self.tolerances[i]:.0e} · NFE = {self.nfe[i]} · "
                                  f"mean distance to the reference = {self.error[i]:.2e}")
        self.fig.canvas.draw_idle()


ESTIMATOR_CHOICES = {
    "exact trace": ("exact", "gaussian"),
    "Hutchinson, Gaussian ε": ("hutchinson", "gaussian"),
    "Hutchinson, Rademacher ε": ("hutchinson", "rademacher"),
}


def _time_per_step(cnf, x, estimator, noise, repeats):
    """Median CPU seconds (``time.process_time``) per solver step of a training-style solve, forward and backward."""
    seconds = []
    for r in range(repeats):
        cnf.zero_grad()
        start = time.process_time()
        zs, deltas, sol = cnf.flow(x, torch.tensor([0.0, 1.0]), estimator=estimator, noise=noise,
                                   generator=torch.Generator().manual_seed(r))
        loss = -(base_log_prob(zs[-1]) - deltas[-1]).mean()
        loss.backward()
        seconds.append((time.process_time() - start) / sol.stats.n_steps)
    cnf.zero_grad()
    return float(np.median(seconds))


class TraceEstimatorExplorer:
    """Exact trace or Hutchinson: how much the log-likelihood estimate varies, and what a step costs.

    For ``n_points`` data points the log-likelihood is estimated ``repeats`` times with fresh
    noise ε (one solve of all ``n_points × repeats`` copies, each with its own ε); the exact
    trace gives one value per point. The histogram shows estimate − exact value.
    """

    def __init__(self, cnf: CNF, points: torch.Tensor, *, repeats: int = 50, timing_repeats: int = 3, seed: int = 0):
        _check_cnf(cnf)
        integer("repeats", repeats, minimum=2)
        integer("timing_repeats", timing_repeats, minimum=1)
        if not isinstance(points, torch.Tensor) or points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
            raise ValueError(f"points must be a tensor of shape (N, 2) with N ≥ 1; got {getattr(points, 'shape', type(points))}.")
        self.points = points.float()
        n = len(self.points)
        gen = torch.Generator().manual_seed(seed)
        self.estimates, self.nfe, self.seconds_per_step = {}, {}, {}
        with torch.no_grad():
            exact, nfe = cnf.log_prob(self.points, return_nfe=True)
            self.exact = exact.numpy()
        for label, (estimator, noise) in ESTIMATOR_CHOICES.items():
            if estimator == "exact":
                self.estimates[label] = np.broadcast_to(self.exact, (repeats, n)).copy()
                self.nfe[label] = nfe
            else:
                with torch.no_grad():
                    est, nfe_h = cnf.log_prob(self.points.repeat(repeats, 1), estimator=estimator, noise=noise,
                                              generator=gen, return_nfe=True)
                self.estimates[label] = est.reshape(repeats, n).numpy()
                self.nfe[label] = nfe_h
            self.seconds_per_step[label] = _time_per_step(cnf, self.points, estimator, noise, timing_repeats)

        spread = max(float(np.abs(e - self.exact).max()) for e in self.estimates.values())
        spread = max(spread, 1e-3)
        self.bins = np.linspace(-spread, spread, 41)
        self.estimator = ToggleButtons(options=list(ESTIMATOR_CHOICES), value="exact trace", description="trace")
        self.readout = HTML()
        with plt.ioff():
            self.fig, self.ax = plt.subplots(figsize=(7.0, 3.4))
        width = self.bins[1] - self.bins[0]
        self.bars = self.ax.bar(self.bins[:-1], np.zeros(len(self.bins) - 1), width=width, align="edge", color="C0")
        self.ax.set_xlim(self.bins[0], self.bins[-1])
        self.ax.set_ylim(0, 1.05)
        self.ax.set_yscale("symlog", linthresh=0.05, linscale=1.0)
        self.ax.set_yticks([0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0], ["0", "0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1"])
        self.ax.set_xlabel("estimate of log p(x) − exact log p(x)  (nats)")
        self.ax.set_ylabel("fraction of estimates")
        _freeze_ticks(self.ax)
        self.fig.tight_layout()
        self.estimator.observe(self._update, names="value")
        self.widget = VBox([self.estimator, self.readout, figure_widget(self.fig)])
        self._update()

    def stats(self, label: str | None = None) -> dict:
        """Spread of the estimates for one choice: per-point std, std of the batch mean, bias."""
        label = self.estimator.value if label is None else label
        diff = self.estimates[label] - self.exact
        return {"std_per_point": float(diff.std(axis=0, ddof=1).mean()),
                "std_of_mean": float(diff.mean(axis=1).std(ddof=1)),
                "bias": float(diff.mean()),
                "seconds_per_step": self.seconds_per_step[label],
                "nfe": self.nfe[label]}

    @_never_raises
    def _update(self, change=None):
        label = self.estimator.value
        diff = (self.estimates[label] - self.exact).ravel()
        counts, _ = np.histogram(np.clip(diff, self.bins[0], self.bins[-1]), bins=self.bins)
        fractions = counts / max(len(diff), 1)
        for bar, height in zip(self.bars, fractions):
            bar.set_height(height)
        stats = self.stats(label)
        self.readout.value = (f"{label}: std of log p per point = {stats['std_per_point']:.3f} nats · "
                              f"std of the batch mean = {stats['std_of_mean']:.4f} · mean bias = {stats['bias']:+.4f} · "
                              f"CPU time per solver step (forward + backward) = {1000 * stats['seconds_per_step']:.1f} ms · "
                              f"NFE = {stats['nfe']}")
        self.fig.canvas.draw_idle()
