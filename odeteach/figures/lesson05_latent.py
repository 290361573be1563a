"""Lesson 5's figures: latent ODE against the RNN on held-out spirals with the Table-2 RMSEs (the
README's), and the shipped models' training curves with the notebook's live run (``loss_curves``)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from ..data.spirals import OBSERVED_COUNTS, observe, subsample
from ..latent import PAPER_TABLE2, load_pretrained, rmse_table, spiral_data

N_OBSERVED = 30
SHOWN = (0, 1, 2)
SMOOTH = 25  # iterations in the moving average drawn over each raw loss curve


def _moving_average(values, k=SMOOTH):
    v = torch.tensor(values, dtype=torch.float64)
    k = max(1, min(k, len(v)))
    return k // 2, torch.nn.functional.avg_pool1d(v[None, None], k, stride=1)[0, 0]


def loss_curves(latent_log, rnn_log, live_log=None, floor=None):
    """The shipped latent ODE's −ELBO per point and the RNN's next-point MSE against iteration,
    with the live run's losses (``live_log``, optional) as points on the latent ODE's panel and the
    noise floor (``floor``, optional; :func:`odeteach.latent.noise_floor`) as a dashed line.

    The latent ODE's loss runs from about 100 down to below 0, so its axis is symmetric-log
    (linear within ±1): the first iterations, the live run and the end of training all show.
    """
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
    offset, smooth = _moving_average(latent_log.losses)
    a1.plot(latent_log.losses, color="tab:blue", alpha=0.3, lw=0.7, label="shipped checkpoint's run")
    a1.plot(range(offset, offset + len(smooth)), smooth, color="tab:blue")
    if live_log is not None:
        a1.plot(range(len(live_log.losses)), live_log.losses, "o", color="tab:orange", ms=3, label="this notebook's live run")
    if floor is not None:
        a1.axhline(floor, color="0.3", ls="--", lw=1, label=f"noise floor ({floor:.2f})")
    a1.set_yscale("symlog", linthresh=1.0)
    highest = max(latent_log.losses + (list(live_log.losses) if live_log is not None else []))
    a1.set_ylim(top=2 * highest)  # room above the first iterations and the live points
    a1.set_xlabel("iteration")
    a1.set_ylabel("−ELBO per observed point")
    a1.set_title("latent ODE")
    a1.legend(fontsize=8)
    offset, smooth = _moving_average(rnn_log.losses)
    a2.semilogy(rnn_log.losses, color="tab:green", alpha=0.3, lw=0.7)
    a2.semilogy(range(offset, offset + len(smooth)), smooth, color="tab:green")
    a2.set_xlabel("iteration")
    a2.set_ylabel("next-point MSE")
    a2.set_title("RNN baseline")
    return fig


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
