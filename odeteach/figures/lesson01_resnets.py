"""Lesson 1's figure: a ResNet of N blocks scaled 1/N converging to the ODE's flow."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..resnet import WEIGHT_KINDS, Dynamics, depth_study, make_resnet, ode_hidden_states, random_weights_study

DEPTHS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
RANDOM_DEPTHS = (4, 16, 64, 256, 1024, 4096)
RANDOM_SEEDS = (0, 1, 2, 3)


def _hidden_states_panel(ax, f, h0):
    with torch.no_grad():
        path = ode_hidden_states(f, h0).numpy()
    for i in range(h0.shape[0]):
        ax.plot(path[:, i, 0], path[:, i, 1], "--", color="0.5", lw=1.5, label="ODE h(t)" if i == 0 else None)
    for n, color in ((2, "#d62728"), (8, "#ff7f0e"), (32, "#1f77b4")):
        with torch.no_grad():
            states = make_resnet(f, n).hidden_states(h0).numpy()
        for i in range(h0.shape[0]):
            ax.plot(states[:, i, 0], states[:, i, 1], "o-" if n <= 8 else "-", ms=3, lw=1, color=color,
                    label=f"ResNet, N = {n}" if i == 0 else None)
    ax.scatter(h0[:, 0], h0[:, 1], color="k", s=15, zorder=4)
    ax.set(xlabel="h₁", ylabel="h₂", title="hidden states h_k of tied ResNets vs the ODE")
    ax.legend(fontsize=8)


def _error_panel(ax, f, f_smooth, h0):
    for kind, dyn in ((WEIGHT_KINDS[0], f), (WEIGHT_KINDS[1], f_smooth)):
        st = depth_study(dyn, h0, DEPTHS, kind)
        ax.loglog(st.depths, st.errors, "o-", ms=4, label=f"{kind} weights: slope {st.slope:.2f}")
    rw = random_weights_study(f_smooth, h0, RANDOM_DEPTHS, seeds=RANDOM_SEEDS)
    rms = f"RMS over {len(RANDOM_SEEDS)} seeds"
    ax.loglog(rw.depths, rw.rms_ode_errors(), "s-", ms=4, color="#2ca02c",
              label=f"untied, random: vs θ(t)'s ODE, levels off ({rms})")
    ax.loglog(rw.depths, rw.rms_mean_field_errors(), "s--", ms=4, color="#9467bd",
              label=f"untied, random: vs the mean-field ODE, slope {rw.mean_field_slope(16):.2f} for N ≥ 16")
    ax.axhline(rw.ode_gap, color="#2ca02c", lw=0.8, ls=":", label="distance between the two ODEs at t = 1")
    ns = np.asarray(RANDOM_DEPTHS, dtype=float)
    ax.loglog(ns, 0.5 / ns, ":", color="k", label="1/N")
    ax.loglog(ns, 1.0 / np.sqrt(ns), ":", color="0.5", label="1/√N")
    ax.set(xlabel="depth N", ylabel="max |h_N − h(1)|", title="global error against depth")
    ax.legend(fontsize=7, loc="lower left")


def make_resnet_to_ode(path):
    f = Dynamics(seed=0)
    f_smooth = Dynamics(seed=0, wobble=0.5)
    angles = torch.linspace(0, 2 * np.pi, 7, dtype=torch.float64)[:-1]
    h0 = torch.stack((torch.cos(angles), torch.sin(angles)), dim=1)
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.4), dpi=100, layout="constrained")
    _hidden_states_panel(ax0, f, h0)
    _error_panel(ax1, f, f_smooth, h0)
    fig.savefig(path)
    plt.close(fig)


FIGURES = {"lesson01_resnet_to_ode.png": make_resnet_to_ode}
