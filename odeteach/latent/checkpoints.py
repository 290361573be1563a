"""The course's spirals and the shipped latent ODE and RNN: loading them, and retraining them from scratch.

``python -m odeteach.train spirals`` calls :func:`train_checkpoints`, which trains both models on
:func:`spiral_data`'s 800 training spirals and writes the two checkpoints in the one format of
:mod:`odeteach.training`.

The training spirals start anywhere from θ₀ = π to 5π, the held-out ones from π to 4π (the course's
data set, :func:`odeteach.data.spirals.make_spirals`'s default). The extrapolation window of a held-out
spiral that starts near 4π ends near θ = 7π, radius 2.5; a training window from 5π reaches about that
radius, one from 4π stops at 2.18. With training windows from π to 4π, 15.2% of the held-out
extrapolation points lie at radii no training window shows, where the decoder has never drawn; with
the wider range, 0.04% (4 of 10,000, measured). The training spirals come from their own seed, so
none of them is a held-out spiral.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from ..data.spirals import THETA0_LOW, Spirals, make_spirals
from ..training import CHECKPOINT_DIR, TrainLog, load_checkpoint, save_checkpoint
from .baseline import RNNBaseline
from .evaluation import rmse_table
from .model import LatentODE
from .training import train_latent_ode, train_rnn

__all__ = ["CHECKPOINT_DIR", "LATENT_CHECKPOINT", "RNN_CHECKPOINT", "DATA_SEED", "TRAIN_SEED", "N_SPIRALS", "N_TRAIN",
           "TRAIN_THETA0", "LATENT_ITERATIONS", "RNN_ITERATIONS", "QUICK", "spiral_data", "load_model", "load_pretrained", "train_checkpoints"]

LATENT_CHECKPOINT = CHECKPOINT_DIR / "spirals_latent_ode.pt"
RNN_CHECKPOINT = CHECKPOINT_DIR / "spirals_rnn.pt"

# The held-out spirals: the last 200 of the course's 1000 (seed DATA_SEED). The training spirals:
# N_TRAIN from their own seed, starting anywhere in TRAIN_THETA0 (see the module's docstring).
DATA_SEED = 0
TRAIN_SEED = 7
N_SPIRALS = 1000
N_TRAIN = 800
TRAIN_THETA0 = (THETA0_LOW, 5 * math.pi)

LATENT_ITERATIONS = 4000
RNN_ITERATIONS = 4000
# ``python -m odeteach.train spirals --quick``: a student's run of a few minutes on a laptop.
QUICK = {"latent_iterations": 1500, "rnn_iterations": 1500}


def spiral_data(seed: int = DATA_SEED) -> tuple[Spirals, Spirals]:
    """``(train, held_out)``: 800 training spirals and the 200 held-out ones (noise 0.1 on both).

    ``held_out`` is the last 200 of the course's 1000 spirals from ``seed``; ``train`` comes from its own
    seed with starting angles over the wider ``TRAIN_THETA0``.
    """
    held_out = make_spirals(N_SPIRALS, seed=seed).split(N_TRAIN)[1]
    train = make_spirals(N_TRAIN, seed=TRAIN_SEED, theta0_range=TRAIN_THETA0)
    return train, held_out


def load_model(path, kind: str) -> tuple[torch.nn.Module, TrainLog]:
    """The model of ``kind`` ("latent_ode" or "rnn") stored at ``path``, in eval mode, and its training log."""
    blob = load_checkpoint(path, kind, retrain="spirals")
    model = (LatentODE if kind == "latent_ode" else RNNBaseline)(**blob["config"])
    model.load_state_dict(blob["state_dict"])
    return model.eval(), TrainLog.from_dict(blob["log"])


def load_pretrained(latent_path=LATENT_CHECKPOINT, rnn_path=RNN_CHECKPOINT):
    """The shipped models: ``(latent_ode, rnn, latent_log, rnn_log)`` (logs hold the training losses and time)."""
    latent, latent_log = load_model(latent_path, "latent_ode")
    rnn, rnn_log = load_model(rnn_path, "rnn")
    return latent, rnn, latent_log, rnn_log


def train_checkpoints(out_dir: Path = CHECKPOINT_DIR, *, latent_iterations: int = LATENT_ITERATIONS,
                      rnn_iterations: int = RNN_ITERATIONS, seed: int = 0, progress: bool = True,
                      device: str | torch.device = "cpu", only: str | None = None) -> dict | None:
    """Train both models from scratch on the course's spirals and write their checkpoints.

    ``only="latent_ode"`` or ``"rnn"`` trains one of them (the same run as in the pair: each model
    has its own seeded stream). Returns the held-out RMSE table of the new models when both were trained.
    """
    if only not in (None, "latent_ode", "rnn"):
        raise ValueError(f"only must be None, 'latent_ode' or 'rnn'; got {only!r}.")
    out_dir = Path(out_dir)
    train, held_out = spiral_data()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these models are tiny: extra threads only add overhead
    try:
        start = time.perf_counter()
        if only in (None, "latent_ode"):
            latent, latent_log = train_latent_ode(train, latent_iterations, seed=seed, progress=progress, device=device)
            save_checkpoint(out_dir / LATENT_CHECKPOINT.name, latent.cpu(), kind="latent_ode", config=latent.config,
                            seed=seed, log=latent_log)
            print(f"latent ODE: {latent_iterations} iterations in {latent_log.seconds:.0f} s")
        if only in (None, "rnn"):
            rnn, rnn_log = train_rnn(train, rnn_iterations, seed=seed, progress=progress, device=device)
            save_checkpoint(out_dir / RNN_CHECKPOINT.name, rnn.cpu(), kind="rnn", config=rnn.config, seed=seed,
                            log=rnn_log)
            print(f"RNN baseline: {rnn_iterations} iterations in {rnn_log.seconds:.0f} s")
        if only is not None:
            return None
        table = rmse_table(latent.eval(), rnn.eval(), held_out)
    finally:
        torch.set_num_threads(threads)
    print(f"trained in {time.perf_counter() - start:.0f} s")
    print("extrapolation RMSE on the 200 held-out spirals:")
    for name, row in table.items():
        print(f"  {name:<11}" + "".join(f"  {n:>3} obs: {v:.4f}" for n, v in row.items()))
    return table
