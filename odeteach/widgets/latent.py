"""Lesson 5's explorer: re-encode one spiral from fewer, or differently placed, observations.

Nothing is retrained: moving a control re-runs the recognition RNN over the chosen points, solves
the latent ODE from the posterior mean and from a few posterior samples, and rolls the RNN
baseline forward from the same points.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
from ipywidgets import HTML, Button, HBox, IntSlider, Layout, ToggleButtons, VBox

from ..data.spirals import PLACEMENTS, Spirals, observe, subsample
from ..errors import SolverError
from ..latent import LatentODE, RNNBaseline, sample_spread
from .base import figure_widget

__all__ = ["LatentSpiralExplorer"]


class LatentSpiralExplorer:
    """Latent ODE (left) against the RNN baseline (right) on one held-out spiral.

    Controls: ``spiral`` (which one), ``n_observed`` (how many of the window's points),
    ``placement`` (uniform / random / bunched), ``n_samples`` (posterior samples drawn) and the
    ``resample`` button (a new random draw of points and samples). ``readout`` shows each model's
    extrapolation RMSE against the noise-free spiral, the posterior samples' spread there
    (:func:`odeteach.latent.sample_spread`; ``spread``) against the latent ODE's error, and the solver's NFE.
    """

    def __init__(self, latent: LatentODE, rnn: RNNBaseline, data: Spirals, *, spiral: int = 0, n_observed: int = 30,
                 placement: str = "random", n_samples: int = 5, seed: int = 0):
        if not isinstance(latent, LatentODE) or not isinstance(rnn, RNNBaseline):
            raise TypeError("LatentSpiralExplorer needs a LatentODE and an RNNBaseline (see odeteach.latent.load_pretrained).")
        if not isinstance(data, Spirals) or len(data) == 0:
            raise TypeError("data must be a non-empty odeteach.data.spirals.Spirals set.")
        self.latent, self.rnn, self.data = latent.eval(), rnn.eval(), data
        self.n_grid = data.t.shape[0]
        self.t_all = torch.cat([data.t, data.t_extrapolate])
        self.seed = int(seed)

        self.spiral = IntSlider(value=spiral, min=0, max=len(data) - 1, description="spiral")
        self.n_observed = IntSlider(value=n_observed, min=3, max=self.n_grid, description="observed",
                                    continuous_update=False)
        self.placement = ToggleButtons(options=PLACEMENTS, value=placement, description="placement")
        self.n_samples = IntSlider(value=n_samples, min=0, max=20, description="samples", continuous_update=False)
        self.resample = Button(description="resample", tooltip="a new random draw of points and posterior samples")
        self.readout = HTML()

        with plt.ioff():
            self.fig, (ax_l, ax_r) = plt.subplots(1, 2, figsize=(9.5, 4.6), sharex=True, sharey=True)
        self.axes = (ax_l, ax_r)
        self.artists = {}
        for ax, name in ((ax_l, "latent ODE"), (ax_r, "RNN baseline")):
            ax.set_title(name)
            ax.set_aspect("equal")
            ax.plot([], [], color="0.75", lw=1, label="true spiral (observed window)")[0]
            self.artists.setdefault("true", []).append(ax.lines[-1])
            self.artists.setdefault("true_ext", []).append(ax.plot([], [], color="0.45", lw=1.2, ls="--", label="true extrapolation")[0])
            self.artists.setdefault("points", []).append(ax.scatter([], [], s=14, color="k", zorder=5, label="observed"))
        self.samples = [ax_l.plot([], [], color="tab:blue", lw=0.6, alpha=0.35)[0] for _ in range(self.n_samples.max)]
        self.recon, = ax_l.plot([], [], color="tab:blue", lw=2, label="reconstruction")
        self.extra, = ax_l.plot([], [], color="tab:red", lw=2, label="extrapolation")
        self.rnn_recon, = ax_r.plot([], [], color="tab:green", lw=1.5, label="one-step predictions")
        self.rnn_extra, = ax_r.plot([], [], color="tab:red", lw=2, label="extrapolation")
        self.message = ax_l.text(0.02, 0.02, "", transform=ax_l.transAxes, fontsize=8, color="tab:red")
        ax_l.legend(loc="upper left", fontsize=7, framealpha=0.8)
        ax_r.legend(loc="upper left", fontsize=7, framealpha=0.8)
        self.fig.tight_layout()

        view = figure_widget(self.fig)  # ipympl's canvas (no title bar), or the figure in an Output
        self._view = view
        self.widget = VBox([HBox([self.spiral, self.n_observed]), HBox([self.placement]),
                            HBox([self.n_samples, self.resample]), self.readout, view],
                           layout=Layout(width="100%"))

        for control in (self.spiral, self.n_observed, self.placement, self.n_samples):
            control.observe(self._update, names="value")
        self.resample.on_click(self._resample)
        self._update()

    # ------------------------------------------------------------------
    def _resample(self, _button=None):
        self.seed += 1
        self._update()

    def _update(self, change=None):
        try:
            self._redraw()
        except (SolverError, ValueError, RuntimeError) as exc:  # never a traceback in the widget
            self.readout.value = f"<b style='color:#b00'>Could not update: {exc}</b>"
            self.message.set_text("update failed: see the message above")
            self.fig.canvas.draw_idle()

    def _redraw(self):
        one = self.data[int(self.spiral.value)]
        gen = torch.Generator().manual_seed(self.seed)
        idx = subsample(self.n_grid, int(self.n_observed.value), self.placement.value, generator=gen)
        times, x = observe(one, idx)
        k = int(self.n_samples.value)
        with torch.no_grad():
            mean_path, sample_paths = self.latent.predict(times, x, self.t_all, n_samples=k, generator=gen)
            rnn_ext = self.rnn.extrapolate(times, x, self.data.t_extrapolate)
            rnn_steps = self.rnn.teacher_forced(times, x) if x.shape[1] > 1 else x[:, :0]
        path = mean_path[0]
        if not torch.isfinite(path).all() or not torch.isfinite(rnn_ext).all():
            raise ValueError("a model produced non-finite values for these observations")

        clean = torch.cat([one.clean[0], one.clean_extrapolate[0]])
        n = self.n_grid
        for ax_i in range(2):
            self.artists["true"][ax_i].set_data(one.clean[0, :, 0], one.clean[0, :, 1])
            self.artists["true_ext"][ax_i].set_data(clean[n - 1:, 0], clean[n - 1:, 1])
            self.artists["points"][ax_i].set_offsets(x[0].numpy())
        self.recon.set_data(path[:n, 0], path[:n, 1])
        self.extra.set_data(path[n - 1:, 0], path[n - 1:, 1])
        for j, line in enumerate(self.samples):
            if j < k:
                line.set_data(sample_paths[j, 0, :, 0], sample_paths[j, 0, :, 1])
            else:
                line.set_data([], [])
        self.rnn_recon.set_data(rnn_steps[0, :, 0], rnn_steps[0, :, 1])
        ext = torch.cat([x[0, -1:], rnn_ext[0]])
        self.rnn_extra.set_data(ext[:, 0], ext[:, 1])

        target = one.clean_extrapolate[0]
        self.rmse_latent = float(((path[n:] - target) ** 2).mean().sqrt())
        self.rmse_rnn = float(((rnn_ext[0] - target) ** 2).mean().sqrt())
        spread = sample_spread(sample_paths[:, 0, n:]) if k > 1 else math.nan
        lim = float(max(clean.abs().max(), 1.0)) * 1.15
        self.axes[0].set_xlim(-lim, lim)
        self.axes[0].set_ylim(-lim, lim)
        self.message.set_text("")
        spread_txt = ""
        if k > 1:  # an honest posterior's spread is about the size of its error
            ratio = f"{self.rmse_latent / spread:.1f}×" if spread > 0 else "∞×"
            spread_txt = f" · posterior spread in the extrapolation {spread:.3f} (the latent ODE's error is {ratio} that)"
        self.spread = spread
        self.readout.value = (f"spiral {self.spiral.value} ({'clockwise' if bool(one.clockwise[0]) else 'counter-clockwise'}), "
                              f"{x.shape[1]} observed points, {self.placement.value} · extrapolation RMSE vs the true spiral: "
                              f"<b>latent ODE {self.rmse_latent:.3f}</b>, <b>RNN {self.rmse_rnn:.3f}</b>{spread_txt}"
                              f" · ODE solve: NFE {self.latent.last_nfe}")
        self.fig.canvas.draw_idle()
