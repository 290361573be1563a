"""The course's spirals and the shipped latent ODE and RNN: loading them, and retraining them from scratch.

``python -m odeteach.train spirals`` calls :func:`train_checkpoints`, which trains both models on
:func:`spiral_data`'s 800 training spirals and writes the two checkpoints in the one format of
:mod:`odeteach.training`.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..data.spirals import Spirals, make_spirals
from ..training import CHECKPOINT_DIR, TrainLog, load_checkpoint, save_checkpoint
from .baseline import RNNBaseline
from .evaluation import rmse_table
from .model import LatentODE
from .training import train_latent_ode, train_rnn

__all__ = ["CHECKPOINT_DIR", "LATENT_CHECKPOINT", "RNN_CHECKPOINT", "DATA_SEED", "N_SPIRALS", "N_TRAIN",
           "LATENT_ITERATIONS", "RNN_ITERATIONS", "spiral_data", "load_model", "load_pretrained", "train_checkpoints"]

LATENT_CHECKPOINT = CHECKPOINT_DIR / "spirals_latent_ode.pt"
RNN_CHECKPOINT = CHECKPOINT_DIR / "spirals_rnn.pt"

# The data the checkpoints are trained and scored on: 1000 spirals, the first N_TRAIN for training.
DATA_SEED = 0
N_SPIRALS = 1000
N_TRAIN = 800

LATENT_ITERATIONS = 1500
RNN_ITERATIONS = 1500


def spiral_data(seed: int = DATA_SEED) -> tuple[Spirals, Spirals]:
    """The course's spirals (1000, noise 0.1): ``(train, held_out)`` with 800 and 200 spirals."""
    return make_spirals(N_SPIRALS, seed=seed).split(N_TRAIN)


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
                      rnn_iterations: int = RNN_ITERATIONS, seed: int = 0, progress: bool = True) -> dict:
    """Train both models from scratch on the course's spirals and write their checkpoints.

    Returns the held-out RMSE table of the new models.
    """
    out_dir = Path(out_dir)
    train, held_out = spiral_data()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these models are tiny: extra threads only add overhead
    try:
        start = time.perf_counter()
        latent, latent_log = train_latent_ode(train, latent_iterations, seed=seed, progress=progress)
        save_checkpoint(out_dir / LATENT_CHECKPOINT.name, latent, kind="latent_ode", config=latent.config, seed=seed,
                        log=latent_log)
        rnn, rnn_log = train_rnn(train, rnn_iterations, seed=seed, progress=progress)
        save_checkpoint(out_dir / RNN_CHECKPOINT.name, rnn, kind="rnn", config=rnn.config, seed=seed, log=rnn_log)
        table = rmse_table(latent.eval(), rnn.eval(), held_out)
    finally:
        torch.set_num_threads(threads)
    print(f"trained in {time.perf_counter() - start:.0f} s (latent ODE {latent_log.seconds:.0f} s, RNN {rnn_log.seconds:.0f} s)")
    print("extrapolation RMSE on the 200 held-out spirals:")
    for name, row in table.items():
        print(f"  {name:<11}" + "".join(f"  {n:>3} obs: {v:.4f}" for n, v in row.items()))
    return table
