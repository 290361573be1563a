"""Lesson 6's README figure: the shipped CNFs carrying N(0, I) to each 2-D target density."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..data.densities import BOX, DENSITIES, sample as sample_density
from ..flows import log_prob_grid, pretrained

TITLES = {"two_moons": "two moons", "rings": "rings", "checkerboard": "checkerboard"}


def make_flows(path, *, n_samples: int = 1500, grid: int = 80):
    """Rows: the three densities. Columns: data, samples at t = 1, 0.5, 0 (integrated backwards), p₀ on a grid."""
    times = torch.tensor([1.0, 0.5, 0.0])
    fig, axes = plt.subplots(len(DENSITIES), 5, figsize=(12.5, 7.6))
    for row, name in enumerate(DENSITIES):
        cnf = pretrained(name)
        data = sample_density(name, n_samples, seed=1).numpy()
        with torch.no_grad():
            flow = cnf.sample(n_samples, seed=2, times=times, with_log_p=False)
        _, _, log_p = log_prob_grid(cnf, n=grid)
        panels = [("data", data)] + [(f"samples z(t), t = {t:.1f}", flow.zs[k].numpy()) for k, t in enumerate(times.tolist())]
        for col, (title, pts) in enumerate(panels):
            ax = axes[row, col]
            ax.scatter(pts[:, 0], pts[:, 1], s=1.5, c="0.35" if col == 0 else "C0")
            if row == 0:
                ax.set_title(title, fontsize=10)
        ax = axes[row, 4]
        ax.imshow(np.exp(log_p.numpy()), origin="lower", extent=(-BOX, BOX, -BOX, BOX), cmap="magma")
        if row == 0:
            ax.set_title("model density p₀(x)", fontsize=10)
        axes[row, 0].set_ylabel(TITLES[name], fontsize=11)
        for ax in axes[row]:
            ax.set_xlim(-BOX, BOX)
            ax.set_ylim(-BOX, BOX)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("Continuous normalizing flows: N(0, I) at t = 1 carried backwards to the data at t = 0", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


FIGURES = {"lesson06_flows.png": make_flows}
