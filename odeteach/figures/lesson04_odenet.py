"""Lesson 4's README figure: the shipped ODE-Net tested at looser and tighter tolerances than it was
trained at (test accuracy and NFE per forward pass against the test-time tolerance), and below
dopri5's floor of evaluations with fixed-step solvers (test accuracy against NFE)."""

from __future__ import annotations

import matplotlib.pyplot as plt

from ..classifier import below_the_floor, cheapest_safe_tolerance, load_pretrained, tolerance_sweep
from ..data.digits import load_digits

TOLERANCES = tuple(10.0 ** e for e in range(-5, 2))


def make(path):
    model, _, config = load_pretrained("odenet", device="cpu")
    data = load_digits()
    n = len(data.y_test)
    points = tolerance_sweep(model, data.x_test, data.y_test, TOLERANCES)
    ok = [p for p in points if p.error is None]
    tols = [p.tol for p in ok]
    train_tol = config["model"]["rtol"]
    cheapest = cheapest_safe_tolerance(points)
    rows = below_the_floor(model, data.x_test, data.y_test)
    fig, (ax_acc, ax_nfe, ax_fixed) = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained",
                                                   gridspec_kw={"width_ratios": (1, 1, 1.1)})
    ax_acc.plot(tols, [100 * p.accuracy for p in ok], "o-", ms=4, color="tab:blue")
    ax_acc.set_ylabel(f"test accuracy (%), {n} digits")
    ax_acc.set_ylim(max(0.0, min(100 * p.accuracy for p in ok) - 3), 100.5)   # one digit is 0.28 points: no zoom
    ax_nfe.plot(tols, [p.nfe_per_batch for p in ok], "o-", ms=4, color="tab:green")
    ax_nfe.set_ylabel("NFE per forward pass")
    ax_nfe.set_ylim(0, 1.1 * max(p.nfe_per_batch for p in ok))
    for ax in (ax_acc, ax_nfe):
        ax.set_xscale("log")
        ax.set_xlabel("test-time tolerance (rtol = atol)")
        ax.axvline(train_tol, color="0.5", ls="--", lw=1, label=f"trained at {train_tol:.0e}")
        ax.axvline(cheapest, color="tab:red", ls=":", lw=1.2, label=f"cheapest within 1 point: {cheapest:.0e}")
        ax.grid(alpha=0.3)
    ax_acc.legend(fontsize=8, loc="lower left")
    ax_acc.set_title("dopri5: accuracy against tolerance", fontsize=9)
    ax_nfe.set_title("dopri5: NFE stops at a floor (2 steps)", fontsize=9)

    ax_fixed.plot([p.nfe_per_batch for p in ok], [100 * p.accuracy for p in ok], "o", ms=5, color="tab:blue",
                  label="dopri5, one point per tolerance")
    fixed = [r for r in rows if r["method"] is not None]
    ax_fixed.plot([r["nfe"] for r in fixed], [100 * r["accuracy"] for r in fixed], "s", ms=5, color="tab:orange",
                  label="fixed steps, below the floor")
    for r in fixed:
        ax_fixed.annotate(f"{r['method']} h={r['step_size']:g}", (r["nfe"], 100 * r["accuracy"]), fontsize=7,
                          xytext=(5, -3), textcoords="offset points")
    skipped = next(r for r in rows if r["method"] is None)
    ax_fixed.set_xscale("log")
    ax_fixed.set_xlim(0.7, 1.5 * max(p.nfe_per_batch for p in ok))
    accs = [100 * p.accuracy for p in ok] + [100 * r["accuracy"] for r in fixed]
    ax_fixed.set_ylim(min(accs) - 1.0, max(accs) + 0.6)
    ax_fixed.set_xlabel("NFE per forward pass")
    ax_fixed.set_ylabel("test accuracy (%)")
    ax_fixed.set_title(f"the real trade needs fixed-step solvers (no ODE block: {100 * skipped['accuracy']:.1f}%)",
                       fontsize=9)
    ax_fixed.grid(alpha=0.3)
    ax_fixed.legend(fontsize=7, loc="lower right")
    fig.suptitle("ODE-Net on 8×8 digits: one set of weights, the solver chosen at test time", fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)


FIGURES = {"lesson04_odenet_tolerance.png": make}
