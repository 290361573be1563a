"""Lesson 7's README figure: one trained ODE-Net under 30 solver settings (accuracy against NFE, with the
Pareto front), beside the ODE-Net trained with regularised dynamics; and the ResNet made cheaper by dropping
blocks against the ODE-Net solved by Euler in as many steps."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from .. import tuning
from .. import tuning_studies as studies
from ..classifier import REGULARISED, load_pretrained
from ..data.digits import load_digits

PLAIN_COLOUR, REGULARISED_COLOUR, RESNET_COLOUR = "tab:blue", "tab:green", "tab:red"


def draw_plane(ax, sets: dict, *, min_accuracy: float | None = 0.97) -> None:
    """Accuracy (%) against NFE (log) of every measured setting, one colour per model in ``sets`` (name → list of
    :class:`~odeteach.tuning.Measurement`), each with its Pareto front, and the cheapest point at ``min_accuracy``."""
    colours = (PLAIN_COLOUR, REGULARISED_COLOUR, "tab:purple")
    for (name, points), colour in zip(sets.items(), colours):
        ok = [p for p in points if p.error is None]
        fixed = [p for p in ok if p.setting.steps is not None]
        adaptive = [p for p in ok if p.setting.steps is None]
        ax.plot([p.nfe for p in fixed], [100 * p.accuracy for p in fixed], "o", ms=4, color=colour, alpha=0.6)
        ax.plot([p.nfe for p in adaptive], [100 * p.accuracy for p in adaptive], "^", ms=4, color=colour, alpha=0.6)
        front = tuning.pareto_front(ok, cost="nfe")
        ax.step([p.nfe for p in front], [100 * p.accuracy for p in front], where="post", color=colour, lw=1.5,
                label=f"{name}: front")
        if min_accuracy is not None:
            chosen = tuning.choose(ok, min_accuracy=min_accuracy, cost="nfe").chosen
            if chosen is not None:
                ax.plot([chosen.nfe], [100 * chosen.accuracy], "o", ms=11, mfc="none", mec=colour, mew=1.6)
    if min_accuracy is not None:
        ax.axhline(100 * min_accuracy, color="0.5", ls=":", lw=1, label=f"≥ {100 * min_accuracy:.0f}%: ringed")
    ax.set_xscale("log")
    ax.set_xlabel("NFE per forward pass (o fixed steps, ▲ adaptive)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center right")


def draw_contrast(ax, study: studies.BlockDroppingStudy) -> None:
    """Accuracy (%) against cost k: the ResNet with its first k blocks, the ODE-Net by Euler in k steps."""
    ks = [r.cost for r in study.rows]
    ax.plot(ks, [100 * r.resnet_accuracy for r in study.rows], "s-", ms=4, color=RESNET_COLOUR,
            label="ResNet, first k of its 6 blocks")
    ax.plot(ks, [100 * r.odenet_accuracy for r in study.rows], "o-", ms=4, color=PLAIN_COLOUR,
            label="ODE-Net, Euler with k steps (NFE k)")
    ax.set_xlabel("cost k: blocks kept = evaluations of f")
    ax.set_ylabel("test accuracy (%)")
    ax.set_xticks(ks)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")


def make(path):
    sets = {"ODE-Net": tuning.measure_shipped("odenet", repeats=1),
            "regularised ODE-Net": tuning.measure_shipped(REGULARISED, repeats=1)}
    data = load_digits()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        study = studies.block_dropping_study(load_pretrained("resnet", device="cpu")[0],
                                             load_pretrained("odenet", device="cpu")[0], data.x_test, data.y_test,
                                             repeats=1)
    finally:
        torch.set_num_threads(threads)
    fig, (ax_plane, ax_contrast) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained",
                                                gridspec_kw={"width_ratios": (1.3, 1)})
    draw_plane(ax_plane, sets)
    ax_plane.set_title(f"{len(sets['ODE-Net'])} solver settings chosen at test time, {len(data.y_test)} digits",
                       fontsize=9)
    draw_contrast(ax_contrast, study)
    ax_contrast.set_title("cheaper after training: drop ResNet blocks, or take fewer ODE steps", fontsize=9)
    fig.suptitle("Tunable networks: one set of weights, the cost chosen at test time", fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)


FIGURES = {"lesson07_tuning.png": make}
