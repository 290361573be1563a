"""Lesson 3's figures: saved bytes against steps, and forward against backward NFE across tolerances."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..memory import format_bytes
from ..adjoint_studies import TOLERANCES, memory_study, nfe_studies

_STEPS = (10, 30, 100, 300, 1000)


def make_memory(path):
    pts = memory_study(_STEPS, batch=64, timing=False)
    ns = np.array([p.steps for p in pts])
    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=100, layout="constrained")
    ax.loglog(ns, [p.backprop_bytes for p in pts], "o-", label="backprop through the solver")
    ax.loglog(ns, [p.adjoint_bytes for p in pts], "s-", color="#2ca02c", label="adjoint (odeint_adjoint)")
    for p in (pts[0], pts[-1]):
        ax.annotate(format_bytes(p.backprop_bytes), (p.steps, p.backprop_bytes), textcoords="offset points",
                    xytext=(-10, 8), fontsize=8)
    ax.annotate(format_bytes(pts[-1].adjoint_bytes), (pts[-1].steps, pts[-1].adjoint_bytes), textcoords="offset points",
                xytext=(-20, 8), fontsize=8)
    ax.set(xlabel="number of RK4 steps", ylabel="bytes autograd saves",
           title="MLP field, batch 64: memory for the backward pass")
    ax.set_ylim(top=pts[-1].backprop_bytes * 6)  # room for the top annotation inside the axes
    ax.legend(fontsize=8, loc="center right")
    fig.savefig(path)
    plt.close(fig)


def make_nfe(path):
    studies = nfe_studies(tolerances=TOLERANCES)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100, layout="constrained")
    for (name, pts), marker in zip(studies.items(), ("o", "s")):
        tols = np.array([p.tol for p in pts])
        axes[0].loglog(tols, [p.forward_nfe for p in pts], marker + "-", label=f"{name}: forward")
        axes[0].loglog(tols, [p.backward_nfe for p in pts], marker + "--", label=f"{name}: backward")
        axes[1].semilogx(tols, [p.ratio for p in pts], marker + "-", label=name)
    axes[1].axhline(0.5, color="#d62728", ls="--", lw=1, label="article: about ½")
    axes[1].axhline(1.0, color="0.6", ls=":", lw=1)
    for ax in axes:
        ax.invert_xaxis()
        ax.set_xlabel("tolerance (rtol = atol), dopri5 both ways")
        ax.legend(fontsize=7)
    axes[0].set(ylabel="evaluations of f", title="forward and backward NFE")
    axes[1].set(ylabel="backward NFE / forward NFE", title="the ratio, measured", ylim=(0, None))
    fig.savefig(path)
    plt.close(fig)


FIGURES = {"lesson03_memory.png": make_memory, "lesson03_nfe.png": make_nfe}
