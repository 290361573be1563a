"""Lesson 5's README figure: latent ODE against the RNN on held-out spirals, and the Table-2 RMSEs."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from ..data.spirals import OBSERVED_COUNTS, observe, subsample
from ..latent import PAPER_TABLE2, load_pretrained, rmse_table, spiral_data

N_OBSERVED = 30
SHOWN = (0, 1, 2)


def make(path):
    latent, rnn, _, _ = load_pretrained()
    _, held_out = spiral_data()
    table = rmse_table(latent, rnn, held_out)
    fig, axes = plt.subplots(1, len(SHOWN) + 1, figsize=(4 * (len(SHOWN) + 1), 4))
    t_all = torch.cat([held_out.t, held_out.t_extrapolate])
    n = held_out.t.shape[0]
    gen = torch.Generator().manual_seed(0)
    for ax, i in zip(axes, SHOWN):
        one = held_out[i]
        idx = subsample(n, N_OBSERVED, "random", generator=gen)
        times, x = observe(one, idx)
        traj, _ = latent.predict(times, x, t_all)
        rnn_ext = torch.cat([x[0, -1:], rnn.extrapolate(times, x, held_out.t_extrapolate)[0]])
        ax.plot(*one.clean[0].T, color="0.75", lw=1, label="true spiral")
        ax.plot(*one.clean_extrapolate[0].T, color="0.4", lw=1.2, ls="--", label="true extrapolation")
        ax.scatter(*x[0].T, s=10, color="k", zorder=5, label=f"{N_OBSERVED} observed")
        ax.plot(*traj[0, :n].T, color="tab:blue", lw=1.8, label="latent ODE")
        ax.plot(*traj[0, n - 1:].T, color="tab:red", lw=1.8, label="latent ODE extrapolation")
        ax.plot(*rnn_ext.T, color="tab:green", lw=1.5, label="RNN extrapolation")
        ax.set_aspect("equal")
        ax.set_title(f"held-out spiral {i}")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].legend(fontsize=7, loc="lower left")
    ax = axes[-1]
    for name, color in (("RNN", "tab:green"), ("Latent ODE", "tab:blue")):
        ax.plot(OBSERVED_COUNTS, [table[name][k] for k in OBSERVED_COUNTS], "o-", color=color, label=f"{name} (measured here)")
        ax.plot(OBSERVED_COUNTS, [PAPER_TABLE2[name][k] for k in OBSERVED_COUNTS], "x:", color=color,
                label=f"{name} (paper, Table 2)")
    ax.set_xlabel("observed points (of 100)")
    ax.set_ylabel("extrapolation RMSE")
    ax.set_title("Table 2, measured on 200 held-out spirals")
    ax.set_xticks(OBSERVED_COUNTS)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


FIGURES = {"lesson05_latent_spirals.png": make}
