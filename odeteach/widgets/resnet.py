"""Explorer for lesson 1: a ResNet of N blocks scaled 1/N converging to an ODE's flow."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import torch

from ..resnet import WEIGHT_KINDS, Dynamics, MeanField, depth_study, make_resnet, ode_hidden_states
from .base import ACCEPTED_COLOUR, EXACT_COLOUR, REJECTED_COLOUR, Explorer, slider_values, style_axes, warning_html

__all__ = ["DepthExplorer"]


class DepthExplorer(Explorer):
    """Hidden states h_0 … h_N of a ResNet with N blocks against the ODE's solution h(t).

    Controls: ``depth`` (N, IntSlider 1…256) and ``weights`` (ToggleButtons: tied, untied smooth
    in t, untied random). Readouts: ``error`` (max |h_N − h(1)| over the starting points) and
    ``slope`` (the fitted slope of log error against log N for the current weights; for random
    weights, where the error levels off and no slope is a rate, the level and what it is). Left: the
    hidden states of each starting point in the plane, with the ODE's trajectories dashed.
    Right: error against N on log–log axes, the current N starred.
    """

    controls = ("depth", "weights")

    def __init__(self, *, n_points: int = 6, hidden: int = 16, seed: int = 0, wobble: float = 0.5, noise: float = 0.5,
                 max_depth: int = 256, depth0: int = 4, study_depths=(1, 2, 4, 8, 16, 32, 64, 128, 256),
                 precompute: bool = False):
        if n_points < 1:
            raise ValueError(f"n_points must be positive; got {n_points}.")
        self.depth = widgets.IntSlider(value=depth0, min=1, max=max_depth, step=1, description="depth N")
        self.weights = widgets.ToggleButtons(options=list(WEIGHT_KINDS), value=WEIGHT_KINDS[0], description="weights",
                                             style={"button_width": "150px"})
        self.error = widgets.HTML()
        self.slope = widgets.HTML()
        self.noise = noise
        self.seed = seed
        self.dynamics = {
            "tied": Dynamics(hidden=hidden, seed=seed, wobble=0.0),
            "untied, smooth in t": Dynamics(hidden=hidden, seed=seed, wobble=wobble),
        }
        self.dynamics["untied, random"] = self.dynamics["untied, smooth in t"]
        angles = torch.linspace(0, 2 * np.pi, n_points + 1, dtype=torch.float64)[:-1]
        self.h0 = torch.stack((torch.cos(angles), torch.sin(angles)), dim=1)
        self._cache = {}

        self.fig, (self.ax_plane, self.ax_err) = self._figure(1, 2, (9, 3.8), layout="constrained")
        t = torch.linspace(0, 1, 101, dtype=torch.float64)
        self.ode_paths, self.studies, self.ode_lines = {}, {}, {}
        with torch.no_grad():
            for kind in WEIGHT_KINDS:
                dyn = self.dynamics[kind]
                if kind != "untied, random":
                    self.ode_paths[kind] = ode_hidden_states(dyn, self.h0, t).numpy()
                path = self.ode_paths["tied" if kind == "tied" else "untied, smooth in t"]
                self.studies[kind] = depth_study(dyn, self.h0, study_depths, kind, noise=noise, seed=seed,
                                                 h_end=torch.from_numpy(path[-1]))
            # random per-block weights average to the mean field f̄: the ODE that those networks converge to
            ends = torch.tensor([0.0, 1.0], dtype=torch.float64)
            self.mean_field_end = ode_hidden_states(MeanField(self.dynamics["untied, random"], noise), self.h0,
                                                    ends)[-1].numpy()
        self.ode_gap = float(np.abs(self.mean_field_end - self.ode_paths["untied, smooth in t"][-1]).max())
        all_pts = np.concatenate([p.reshape(-1, 2) for p in self.ode_paths.values()])
        lo, hi = all_pts.min(0), all_pts.max(0)
        pad = 0.2 * (hi - lo)
        self.ax_plane.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
        self.ax_plane.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
        self.ode_lines = [self.ax_plane.plot([], [], "--", color=EXACT_COLOUR, lw=1.5)[0] for _ in range(n_points)]
        self.net_lines = [self.ax_plane.plot([], [], "o-", ms=3, lw=1, color=ACCEPTED_COLOUR)[0] for _ in range(n_points)]
        self.ax_plane.scatter(self.h0[:, 0], self.h0[:, 1], s=18, color="k", zorder=4)
        self.ax_plane.set_xlabel("h₁", fontsize=9)
        self.ax_plane.set_ylabel("h₂", fontsize=9)
        self.ax_plane.plot([], [], "--", color=EXACT_COLOUR, label="ODE h(t)")
        self.ax_plane.plot([], [], "o-", ms=3, color=ACCEPTED_COLOUR, label="ResNet h_k")
        self.ax_plane.legend(fontsize=7, loc="upper left")

        (self.study_line,) = self.ax_err.loglog([], [], "o-", ms=3, color=ACCEPTED_COLOUR, label="ResNet error")
        ns = np.asarray(study_depths, dtype=float)
        ref = self.studies["tied"].errors[0] * ns[0] / ns
        self.ax_err.loglog(ns, ref, ":", color="k", lw=1, label="slope −1")
        (self.err_point,) = self.ax_err.loglog([], [], "*", ms=14, color=REJECTED_COLOUR, zorder=5, label="this N")
        errs = np.concatenate([study.errors for study in self.studies.values()])
        self.ax_err.set_xlim(0.7, max_depth * 1.4)
        self.ax_err.set_ylim(errs.min() / 4, errs.max() * 4)
        self.ax_err.set_xlabel("depth N", fontsize=9)
        self.ax_err.set_ylabel("|h_N − h(1)|", fontsize=9)
        self.ax_err.legend(fontsize=7, loc="lower left")
        style_axes(self.ax_plane)
        style_axes(self.ax_err, log_x=True, log_y=True)
        if precompute:
            for kind in WEIGHT_KINDS:
                for n in slider_values(self.depth):
                    self._result(kind, n)
        self._animate(*self.ode_lines, *self.net_lines, self.study_line, self.err_point)
        self._finish([self.error, widgets.HTML(" · "), self.slope])

    def _result(self, kind, n):
        key = (kind, int(n))
        if key not in self._cache:
            with torch.no_grad():
                net = make_resnet(self.dynamics[kind], int(n), kind, noise=self.noise, seed=self.seed)
                states = net.hidden_states(self.h0).numpy()
            path = self.ode_paths["tied" if kind == "tied" else "untied, smooth in t"]
            to_mean_field = float(np.abs(states[-1] - self.mean_field_end).max())
            self._cache[key] = (states, float(np.abs(states[-1] - path[-1]).max()), to_mean_field)
        return self._cache[key]

    def _update(self):
        kind, n = self.weights.value, int(self.depth.value)
        states, err, to_mean_field = self._result(kind, n)
        path = self.ode_paths["tied" if kind == "tied" else "untied, smooth in t"]
        marker = "o" if n <= 32 else ""
        for i, (ode_line, net_line) in enumerate(zip(self.ode_lines, self.net_lines)):
            ode_line.set_data(path[:, i, 0], path[:, i, 1])
            net_line.set_data(states[:, i, 0], states[:, i, 1])
            net_line.set_marker(marker)
        study = self.studies[kind]
        self.study_line.set_data(study.depths, study.errors)
        self.err_point.set_data([n], [err])
        self.error.value = f"N = {n} blocks ({n} evaluations of f) · error at t = 1: <b>{err:.3g}</b>"
        if kind != "untied, random":
            self.slope.value = f"fitted slope of log error vs log N: <b>{study.slope:.2f}</b>"
            return ""
        self.error.value += f" (against the mean-field ODE: <b>{to_mean_field:.3g}</b>)"
        self.slope.value = (f"no rate: the error levels off near <b>{self.ode_gap:.3f}</b>, "
                            "the distance between θ(t)'s ODE and the mean-field ODE")
        return warning_html("random per-block weights average out: the network converges to the ODE of the mean "
                     "field f̄, not to θ(t)'s ODE (dashed)")
