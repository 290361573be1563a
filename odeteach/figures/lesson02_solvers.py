"""Lesson 2's figures: step sizes, accepted and rejected steps, work–precision, stability regions."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter
import torch

from ..convergence import empirical_order, fixed_step_grid, reference_solution, work_precision
from ..exercises.lesson02 import ORDER_STEP_SIZES
from ..integrate import solve
from ..problems import damped_spiral, van_der_pol
from ..stability import stability_region

_FIXED = ("euler", "midpoint", "rk4")


def make_step_size(path):
    p = damped_spiral
    t_fine = torch.linspace(p.t0, p.t1, 400, dtype=torch.float64)
    exact = p.exact(t_fine).numpy()
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4), dpi=100, layout="constrained")
    ax0.plot(exact[:, 0], exact[:, 1], color="0.5", lw=3, alpha=0.6, label="exact")
    h = 0.25
    t = fixed_step_grid(p.t0, p.t1, h)
    for m in _FIXED:
        sol = solve(p, p.initial(), t, method=m, options={"step_size": h})
        ys = sol.ys.numpy()
        ax0.plot(ys[:, 0], ys[:, 1], "o-", ms=2.5, lw=1, label=f"{m}: NFE {sol.stats.nfe}")
    ax0.set(xlabel="y₁", ylabel="y₂", title=f"damped spiral, fixed step h = {h}")
    ax0.legend(fontsize=8)
    for m in _FIXED:
        r = empirical_order(m, p, ORDER_STEP_SIZES)
        ax1.loglog(r.step_sizes, r.errors, "o-", ms=4, label=f"{m}: slope {r.order:.2f}")
    ax1.set(xlabel="step size h", ylabel="error at t = 10", title="convergence order: the slopes")
    ax1.set_xticks(ORDER_STEP_SIZES, [f"{h:g}" for h in ORDER_STEP_SIZES])
    ax1.xaxis.set_minor_formatter(NullFormatter())
    ax1.legend(fontsize=8)
    fig.savefig(path)
    plt.close(fig)


def make_accepted_rejected(path):
    p = van_der_pol(1.0)
    tol = 1e-4
    t_out = p.times(400)
    sol = solve(p, p.initial(), t_out, method="dopri5", rtol=tol, atol=tol, trace=True)
    tr = sol.trace
    t0 = np.array([r.t for r in tr])
    h = np.array([r.h for r in tr])
    acc = np.array([r.accepted for r in tr])
    ratio = np.array([r.error_ratio for r in tr])
    ys = sol.ys[:, 0].numpy()
    t_np = t_out.numpy()
    fig, axes = plt.subplots(3, 1, figsize=(9, 7), dpi=100, sharex=True, layout="constrained")
    axes[0].plot(t_np, ys, lw=1)
    te = t0 + h
    axes[0].scatter(te[acc], np.interp(te[acc], t_np, ys), s=14, label="accepted step ends", zorder=3)
    axes[0].scatter(te[~acc], np.interp(te[~acc], t_np, ys), marker="x", color="#d62728", s=40,
                    label="rejected attempts", zorder=4)
    stats = sol.stats
    axes[0].set(ylabel="y₁(t)", title=f"dopri5 on Van der Pol (μ = 1), rtol = atol = {tol:g}: NFE {stats.nfe}, "
                                      f"{stats.n_accepted} accepted, {stats.n_rejected} rejected")
    axes[0].legend(fontsize=8, loc="lower left")
    axes[1].step(np.append(t0[acc], te[acc][-1]), np.append(np.abs(h[acc]), abs(h[acc][-1])), where="post")
    axes[1].scatter(t0[~acc], np.abs(h[~acc]), marker="x", color="#d62728", s=40)
    axes[1].set(yscale="log", ylabel="step size h(t)")
    axes[2].scatter(t0[acc], ratio[acc], s=12)
    axes[2].scatter(t0[~acc], ratio[~acc], marker="x", color="#d62728", s=40)
    axes[2].axhline(1, color="k", ls="--", lw=1)
    axes[2].set(yscale="log", xlabel="t", ylabel="error ratio (accept ≤ 1)")
    fig.savefig(path)
    plt.close(fig)


def make_work_precision(path):
    p = van_der_pol(1.0)
    y_end = reference_solution(p, torch.tensor([p.t0, p.t1], dtype=torch.float64))[-1]
    fig, ax = plt.subplots(figsize=(6.5, 4.5), dpi=100, layout="constrained")
    span = p.t1 - p.t0
    for m in _FIXED:
        points = work_precision(p, m, step_sizes=[span / 2 ** k for k in range(4, 12)], reference=y_end, max_error=1.0)
        ax.loglog(points[:, 0], points[:, 1], "o-", ms=4, label=f"{m} (fixed h)")
    for m in ("bosh3", "dopri5"):
        points = work_precision(p, m, tolerances=np.logspace(-2, -10, 9), reference=y_end)
        ax.loglog(points[:, 0], points[:, 1], "s-", ms=4, label=f"{m} (tolerance 1e-2 … 1e-10)")
    ax.set(xlabel="NFE (function evaluations)", ylabel="error at t = 10",
           title="work–precision, Van der Pol (μ = 1)")
    ax.legend(fontsize=8)
    fig.savefig(path)
    plt.close(fig)


def make_stability_regions(path):
    fig, ax = plt.subplots(figsize=(6.5, 5), dpi=100, layout="constrained")
    for m, color in (("euler", "#1f77b4"), ("midpoint", "#2ca02c"), ("rk4", "#9467bd"), ("bosh3", "#ff7f0e"),
                     ("dopri5", "#8c564b")):
        X, Y, R = stability_region(m, re=(-5, 1.5), im=(-4, 4), n=401)
        ax.contour(X, Y, R, levels=[1.0], colors=[color], linewidths=1.5)
        if m in ("euler", "rk4"):
            ax.contourf(X, Y, R, levels=[0, 1.0], colors=[color], alpha=0.15)
        ax.plot([], [], color=color, label=m)
    ax.axhline(0, color="k", lw=0.5)
    ax.axvline(0, color="k", lw=0.5)
    ax.set(xlabel="Re(h·λ)", ylabel="Im(h·λ)", aspect="equal", title="stability regions |R(h·λ)| ≤ 1")
    ax.legend(fontsize=8, loc="upper left")
    fig.savefig(path)
    plt.close(fig)


FIGURES = {
    "lesson02_step_size.png": make_step_size,
    "lesson02_accepted_rejected.png": make_accepted_rejected,
    "lesson02_work_precision.png": make_work_precision,
    "lesson02_stability_regions.png": make_stability_regions,
}
