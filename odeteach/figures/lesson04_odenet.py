"""Lesson 4's README figure: the shipped ODE-Net tested at looser and tighter tolerances than it was
trained at: test accuracy, and NFE per forward pass, against the test-time tolerance."""

from __future__ import annotations

import matplotlib.pyplot as plt

from ..classifier import breakdown_tolerance, load_pretrained, tolerance_sweep
from ..data.digits import load_digits

TOLERANCES = tuple(10.0 ** e for e in range(-5, 2))


def make(path):
    model, _, config = load_pretrained("odenet", device="cpu")
    data = load_digits()
    points = tolerance_sweep(model, data.x_test, data.y_test, TOLERANCES)
    ok = [p for p in points if p.error is None]
    tols = [p.tol for p in ok]
    train_tol = config["model"]["rtol"]
    broken = breakdown_tolerance(points)
    fig, (ax_acc, ax_nfe) = plt.subplots(1, 2, figsize=(9.5, 3.6), sharex=True)
    ax_acc.plot(tols, [100 * p.accuracy for p in ok], "o-", ms=4, color="tab:blue")
    ax_acc.set_ylabel(f"test accuracy (%), {len(data.y_test)} digits")
    ax_acc.set_ylim(max(0.0, min(100 * p.accuracy for p in ok) - 3), 100.5)   # one digit is 0.28 points: no zoom
    ax_nfe.plot(tols, [p.nfe_per_batch for p in ok], "o-", ms=4, color="tab:green")
    ax_nfe.set_ylabel("NFE per forward pass")
    for ax in (ax_acc, ax_nfe):
        ax.set_xscale("log")
        ax.set_xlabel("test-time tolerance (rtol = atol)")
        ax.axvline(train_tol, color="0.5", ls="--", lw=1, label=f"trained at {train_tol:.0e}")
        if broken is not None:
            ax.axvline(broken, color="tab:red", ls=":", lw=1.2, label=f"accuracy −1 point at {broken:.0e}")
        ax.grid(alpha=0.3)
    ax_acc.legend(fontsize=8, loc="lower left")
    fig.suptitle("ODE-Net on 8×8 digits: one set of weights, the solver's tolerance chosen at test time", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


FIGURES = {"lesson04_odenet_tolerance.png": make}
