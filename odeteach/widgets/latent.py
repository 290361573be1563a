"""Lesson 5's explorer: re-encode one spiral from fewer, or differently placed, observations.

Nothing is retrained. For each state (spiral, observed points, draw) :class:`odeteach.latent.predictive.
SpiralPredictions` runs the recognition RNN over the chosen points, solves the latent ODE once from the
posterior mean and a batch of posterior samples, and rolls the RNN baseline forward from the same points;
it keeps the result. The explorer only moves artists: the axes (with limits that hold every spiral), titles
and legends are drawn once, and each update blits the lines and points that changed. The true spiral, which
changes only with the spiral, is kept in a layer of its own over that background (see
:meth:`LatentSpiralExplorer._redraw`).
"""

from __future__ import annotations

import math

import numpy as np
from ipywidgets import HTML, Button, IntSlider, Layout, ToggleButtons
from matplotlib.collections import LineCollection

from ..data.spirals import PLACEMENTS, Spirals
from ..latent import LatentODE, RNNBaseline
from ..latent.predictive import MAX_SAMPLES, SpiralPredictions
from ..validation import integer
from .base import EXACT_COLOUR, Explorer, style_axes

__all__ = ["LatentSpiralExplorer"]

# The axes hold every spiral of the data set, with this margin, so that no update changes a limit.
MARGIN = 1.15


class LatentSpiralExplorer(Explorer):
    """Latent ODE (left) against the RNN baseline (right) on one held-out spiral.

    Controls: ``spiral`` (which one), ``n_observed`` (how many of the window's points),
    ``placement`` (uniform / random / bunched), ``n_samples`` (posterior samples shown, the first of
    :data:`~odeteach.latent.predictive.MAX_SAMPLES` drawn) and the ``resample`` button (a new random
    draw of points and samples). ``readout`` shows each model's extrapolation RMSE against the
    noise-free spiral (``rmse_latent``, ``rmse_rnn``), the shown samples' spread there
    (:func:`odeteach.latent.sample_spread`; ``spread``) against the latent ODE's error, and the NFE of
    the dopri5 solve of the mean and all samples. ``predictions`` holds every state computed so far.
    """

    controls = ("spiral", "n_observed", "placement", "n_samples", "resample")

    def __init__(self, latent: LatentODE, rnn: RNNBaseline, data: Spirals, *, spiral: int = 0, n_observed: int = 30,
                 placement: str = "random", n_samples: int = 5, seed: int = 0):
        self.predictions = SpiralPredictions(latent, rnn, data)   # checks the models and the data
        self.latent, self.rnn, self.data = latent, rnn, data
        self.n_grid = data.t.shape[0]
        spiral, n_observed, placement = self.predictions.check(spiral, n_observed, placement)
        n_samples = integer("n_samples", n_samples, minimum=0, maximum=MAX_SAMPLES)
        self.seed = integer("seed", seed)

        self.spiral = IntSlider(value=spiral, min=0, max=len(data) - 1, description="spiral")
        self.n_observed = IntSlider(value=n_observed, min=min(3, self.n_grid), max=self.n_grid, description="observed",
                                    continuous_update=False)
        self.placement = ToggleButtons(options=PLACEMENTS, value=placement, description="placement",
                                       style={"button_width": "72px"})
        self.n_samples = IntSlider(value=n_samples, min=0, max=MAX_SAMPLES, description="samples",
                                   continuous_update=False)
        self.resample = Button(description="resample", tooltip="a new random draw of points and posterior samples")
        self.resample.on_click(self._resample)
        self.readout = HTML(layout=Layout(width="100%"))

        self.fig, (ax_l, ax_r) = self._figure(1, 2, (6.6, 3.3), sharex=True, sharey=True)
        self.axes = (ax_l, ax_r)
        self._draw_axes(data)
        # Blitted in two layers (see _redraw): the true spiral, then what the state adds over it.
        self._spiral_artists = (*self.artists["true"], *self.artists["true_ext"])
        self._state_artists = (self.samples, self.recon, self.extra, self.rnn_recon, self.rnn_extra,
                               *self.artists["points"])
        self._shown_spiral = None   # the spiral whose true lines are drawn (None: none, after a failed update)
        self._layer = None          # (background, spiral, region): the background with that spiral's true lines
        self._animate(*self._spiral_artists, *self._state_artists)
        self._finish([self.readout])

    def _draw_axes(self, data: Spirals):
        """Titles, fixed limits that hold every spiral, legends; the empty artists that updates fill."""
        ax_l, ax_r = self.axes
        self.artists = {"true": [], "true_ext": [], "points": []}
        for ax, name in ((ax_l, "latent ODE"), (ax_r, "RNN baseline")):
            ax.set_title(name, fontsize=10)
            ax.set_aspect("equal")
            self.artists["true"].append(ax.plot([], [], color="0.75", lw=1, label="true spiral (observed window)")[0])
            self.artists["true_ext"].append(ax.plot([], [], color=EXACT_COLOUR, lw=1.2, ls="--",
                                                    label="true extrapolation")[0])
            self.artists["points"].append(ax.plot([], [], "o", ms=3.5, color="k", zorder=5, label="observed")[0])
        self.samples = LineCollection([], colors="tab:blue", linewidths=0.6, alpha=0.35)
        ax_l.add_collection(self.samples)
        self.recon, = ax_l.plot([], [], color="tab:blue", lw=2, label="reconstruction")
        self.extra, = ax_l.plot([], [], color="tab:red", lw=2, label="extrapolation")
        self.rnn_recon, = ax_r.plot([], [], color="tab:green", lw=1.5, label="one-step predictions")
        self.rnn_extra, = ax_r.plot([], [], color="tab:red", lw=2, label="extrapolation")
        clean = np.concatenate([data.clean.numpy().reshape(-1, 2), data.clean_extrapolate.numpy().reshape(-1, 2)])
        lim = float(max(np.abs(clean).max(), 1.0)) * MARGIN
        ax_l.set_xlim(-lim, lim)
        ax_l.set_ylim(-lim, lim)
        for ax in self.axes:
            ax.legend(loc="upper left", fontsize=7, framealpha=0.8)
            style_axes(ax)
        self.fig.tight_layout()

    def _redraw(self):
        """Blit as the base class does, with the true spiral kept in a layer of its own.

        The true spiral's lines change only with the spiral, but a blit restores a background without them and
        draws them again. Here the first blit after a change of spiral (or of the background) draws them over the
        background and keeps that picture; later blits (new points, a new draw, more samples) restore it and
        draw only the state's artists over it, in the same order as a blit of everything: the same pixels,
        about 2 ms less per update at device pixel ratio 2.
        """
        canvas = self.fig.canvas
        if self._background is None or self._figure_key() != self._background_key:
            self._layer = None
            super()._redraw()   # no valid background yet: the base class asks for a full redraw
            return
        layer = self._layer
        if layer is not None and layer[0] is self._background and layer[1] == self._shown_spiral:
            canvas.restore_region(layer[2])
        else:
            canvas.restore_region(self._background)
            self._draw_visible(self._spiral_artists)
            self._layer = (self._background, self._shown_spiral, canvas.copy_from_bbox(self.fig.bbox))
        self._draw_visible(self._state_artists)
        canvas.blit(self._blit_region())
        self.blits += 1

    @staticmethod
    def _draw_visible(artists):
        for artist in artists:
            if artist.get_visible():
                artist.axes.draw_artist(artist)

    def _resample(self, _button=None):
        self.seed += 1
        self.update()

    def _clear(self):
        """Empty every changing artist and the readout (after a failed update: no stale picture)."""
        for line in (*self.artists["true"], *self.artists["true_ext"], *self.artists["points"], self.recon, self.extra,
                     self.rnn_recon, self.rnn_extra):
            line.set_data([], [])
        self.samples.set_segments([])
        self._shown_spiral = None
        self.readout.value = ""
        self.rmse_latent = self.rmse_rnn = self.spread = math.nan

    def _update(self):
        try:
            p = self.predictions.get(self.spiral.value, self.n_observed.value, self.placement.value, self.seed)
        except Exception:
            self._clear()
            raise
        k, n = int(self.n_samples.value), p.n_window
        self._shown_spiral = p.spiral
        for i in range(2):
            self.artists["true"][i].set_data(p.clean[:, 0], p.clean[:, 1])
            self.artists["true_ext"][i].set_data(np.r_[p.clean[-1:, 0], p.clean_extrapolate[:, 0]],
                                                 np.r_[p.clean[-1:, 1], p.clean_extrapolate[:, 1]])
            self.artists["points"][i].set_data(p.points[:, 0], p.points[:, 1])
        self.recon.set_data(p.mean_path[:n, 0], p.mean_path[:n, 1])
        self.extra.set_data(p.mean_path[n - 1:, 0], p.mean_path[n - 1:, 1])
        self.samples.set_segments(list(p.sample_paths[:k]))
        self.rnn_recon.set_data(p.rnn_steps[:, 0], p.rnn_steps[:, 1])
        self.rnn_extra.set_data(np.r_[p.points[-1:, 0], p.rnn_extrapolation[:, 0]],
                                np.r_[p.points[-1:, 1], p.rnn_extrapolation[:, 1]])
        self.rmse_latent, self.rmse_rnn, self.spread = p.rmse_latent, p.rmse_rnn, p.spread(k)
        self.readout.value = self._readout(p, k)

    def _readout(self, p, k: int) -> str:
        spread_txt = ""
        if k > 1:  # an honest posterior's spread is about the size of its error
            ratio = f"{self.rmse_latent / self.spread:.1f}×" if self.spread > 0 else "∞×"
            spread_txt = (f" · posterior spread in the extrapolation {self.spread:.3f} "
                          f"(the latent ODE's error is {ratio} that)")
        return (f"spiral {p.spiral} ({'clockwise' if p.clockwise else 'counter-clockwise'}), "
                f"{p.n_observed} observed points, {self.placement.value} · extrapolation RMSE vs the true spiral: "
                f"<b>latent ODE {p.rmse_latent:.3f}</b>, <b>RNN {p.rmse_rnn:.3f}</b>{spread_txt}"
                f" · ODE solve: NFE {p.nfe} ({self.predictions.solver_description()})")
