"""Training the latent ODE and the RNN baseline on the spirals, with :func:`odeteach.training.fit`.

Both models see the same batches: random spirals, each observed at its own random subset of the
window's points. What one iteration computes (the loss) is said here; how every model is trained
(Adam, the learning rate decaying by 10× over the run, the progress bar and the log) is
:mod:`odeteach.training`'s.
"""

from __future__ import annotations

import torch

from ..data.spirals import Spirals, observe, subsample
from ..training import TrainLog, fit, seed_everything
from ..validation import integer, positive_number
from .baseline import RNNBaseline
from .model import LatentODE

__all__ = ["FINAL_LR_FRACTION", "train_latent_ode", "train_rnn", "spiral_batches", "latent_ode_loss", "rnn_loss"]

# The learning rate ends the run at a tenth of where it starts (cosine decay).
FINAL_LR_FRACTION = 0.1


def spiral_batches(data: Spirals, batch_size: int, generator: torch.Generator, n_min: int, n_max: int,
                   device: str | torch.device = "cpu"):
    """An endless stream of (indices, times, x) on ``device``: random spirals, each with its own random subset.

    Each batch holds ``batch_size`` spirals (or all of ``data`` if fewer), observed at ``n`` points,
    ``n`` drawn from ``n_min`` to ``n_max`` (at most the window's points). ``generator`` drives every draw.
    """
    n_grid = data.t.shape[0]
    n_max = min(n_max, n_grid)
    while True:
        rows = torch.randint(len(data), (min(batch_size, len(data)),), generator=generator)
        n = int(torch.randint(n_min, n_max + 1, (1,), generator=generator))
        indices = subsample(n_grid, n, "random", generator=generator, batch=len(rows))
        times, x = observe(data[rows], indices)
        yield indices.to(device), times.to(device), x.to(device)


def latent_ode_loss(model: LatentODE, grid: torch.Tensor, batch) -> tuple[torch.Tensor, int]:
    """−ELBO per observed point (so batches with different n weigh alike), and the ODE solve's NFE."""
    indices, times, x = batch
    elbo, _, _ = model.elbo(grid, indices, times, x)
    return -elbo.mean() / x.shape[1], model.last_nfe


def rnn_loss(model: RNNBaseline, batch) -> torch.Tensor:
    """The mean squared error of the baseline's next-point predictions (each from the true points before it)."""
    _, times, x = batch
    return ((model.teacher_forced(times, x) - x[:, 1:]) ** 2).mean()


def _checked_training_args(iterations, batch_size, lr) -> tuple[int, int, float]:
    """The trainers' arguments, checked: two positive integers and a positive learning rate."""
    return (integer("iterations", iterations, minimum=1), integer("batch_size", batch_size, minimum=1),
            positive_number("lr", lr))


def train_latent_ode(data: Spirals, iterations: int = 1500, *, batch_size: int = 200, lr: float = 1e-2,
                     seed: int = 0, model: LatentODE | None = None, progress: bool = True,
                     n_observed=(10, 100), device: str | torch.device = "cpu") -> tuple[LatentODE, TrainLog]:
    """Maximise the ELBO on ``data`` with Adam for exactly ``iterations`` steps.

    Each step draws ``batch_size`` spirals, each observed at its own random subset of
    between ``n_observed[0]`` and ``n_observed[1]`` of the window's points. The learning rate
    decays by 10× over the run (cosine). Pass ``model`` to continue training it. The model and
    the batches move to ``device``; the log holds the loss and the ODE solve's NFE per iteration.
    """
    iterations, batch_size, lr = _checked_training_args(iterations, batch_size, lr)
    generator = seed_everything(seed)
    model = (LatentODE(obs_std=data.noise_std if data.noise_std > 0 else 0.1) if model is None else model).to(device)
    grid = data.t.to(device)
    batches = spiral_batches(data, batch_size, generator, *n_observed, device=device)
    log = fit(model, lambda i: latent_ode_loss(model, grid, next(batches)), iterations, lr=lr,
              final_lr_fraction=FINAL_LR_FRACTION, desc="latent ODE", progress=progress)
    return model, log


def train_rnn(data: Spirals, iterations: int = 1500, *, batch_size: int = 200, lr: float = 1e-2, seed: int = 0,
              model: RNNBaseline | None = None, progress: bool = True, n_observed=(10, 100),
              device: str | torch.device = "cpu") -> tuple[RNNBaseline, TrainLog]:
    """Train the baseline to predict each next point (mean squared error), on the same batches as the latent ODE.

    The model and the batches move to ``device``.
    """
    iterations, batch_size, lr = _checked_training_args(iterations, batch_size, lr)
    generator = seed_everything(seed)
    model = (RNNBaseline() if model is None else model).to(device)
    batches = spiral_batches(data, batch_size, generator, max(2, n_observed[0]), n_observed[1], device=device)
    log = fit(model, lambda i: rnn_loss(model, next(batches)), iterations, lr=lr,
              final_lr_fraction=FINAL_LR_FRACTION, desc="RNN baseline", progress=progress)
    return model, log
