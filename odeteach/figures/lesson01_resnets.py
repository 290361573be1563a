"""Lesson 1's figure: a ResNet of N blocks scaled 1/N converging to the ODE's flow."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..resnet import WEIGHT_KINDS, Dynamics, depth_study, make_resnet, ode_hidden_states

DEPTHS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def make_resnet_to_ode(path):
    f = Dynamics(seed=0)
    f_smooth = Dynamics(seed=0, wobble=0.5)
    angles = torch.linspace(0, 2 * np.pi, 7, dtype=torch.float64)[:-1]
    h0 = torch.stack((torch.cos(angles), torch.sin(angles)), dim=1)
    with torch.no_grad():
        path_tied = ode_hidden_states(f, h0).numpy()
        path_smooth = ode_hidden_states(f_smooth, h0).numpy()
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for i in range(h0.shape[0]):
        ax0.plot(path_tied[:, i, 0], path_tied[:, i, 1], "--", color="0.5", lw=1.5, label="ODE h(t)" if i == 0 else None)
    for n, color in ((2, "#d62728"), (8, "#ff7f0e"), (32, "#1f77b4")):
        with torch.no_grad():
            states = make_resnet(f, n).hidden_states(h0).numpy()
        for i in range(h0.shape[0]):
            ax0.plot(states[:, i, 0], states[:, i, 1], "o-" if n <= 8 else "-", ms=3, lw=1, color=color,
                     label=f"ResNet, N = {n}" if i == 0 else None)
    ax0.scatter(h0[:, 0], h0[:, 1], color="k", s=15, zorder=4)
    ax0.set(xlabel="h₁", ylabel="h₂", title="hidden states h_k of tied ResNets vs the ODE")
    ax0.legend(fontsize=8)
    for kind, dyn, path_ in ((WEIGHT_KINDS[0], f, path_tied), (WEIGHT_KINDS[1], f_smooth, path_smooth),
                             (WEIGHT_KINDS[2], f_smooth, path_smooth)):
        st = depth_study(dyn, h0, DEPTHS, kind, h_end=torch.from_numpy(path_[-1]))
        ax1.loglog(st.depths, st.errors, "o-", ms=4, label=f"{kind} weights: slope {st.slope:.2f}")
    ns = np.asarray(DEPTHS, dtype=float)
    ax1.loglog(ns, 0.5 / ns, ":", color="k", label="1/N")
    ax1.set(xlabel="depth N", ylabel="max |h_N − h(1)|", title="global error against depth (fitted slopes)")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


FIGURES = {"lesson01_resnet_to_ode.png": make_resnet_to_ode}
