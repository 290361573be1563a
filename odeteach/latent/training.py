"""Training the latent ODE and the RNN baseline on the spirals, with :func:`odeteach.training.fit`.

Both models see the same batches: random spirals, each observed at its own subset of the window's
points, placed in one of the three ways the lesson scores (uniform, random or bunched, drawn per batch). What one iteration computes (the loss) is said here; how every model is trained
(Adam, the learning rate decaying by 10× over the run, the progress bar and the log) is
:mod:`odeteach.training`'s.
"""

from __future__ import annotations

import torch

from ..data.spirals import PLACEMENTS, Spirals, observe, subsample
from ..training import TrainLog, fit, seed_everything
from ..validation import integer, positive_number
from .baseline import RNNBaseline
from .model import LatentODE

__all__ = ["FINAL_LR_FRACTION", "train_latent_ode", "train_rnn", "spiral_batches", "latent_ode_loss", "rnn_loss", "rnn_rollout_loss",
           "ROLLOUT_HORIZON"]

# The learning rate ends the run at a tenth of where it starts (cosine decay).
FINAL_LR_FRACTION = 0.1
# How far the baseline rolls out on its own in training: the scored extrapolation window's length.
ROLLOUT_HORIZON = 50


def spiral_batches(data: Spirals, batch_size: int, generator: torch.Generator, n_min: int, n_max: int,
                   device: str | torch.device = "cpu", placements=PLACEMENTS, with_rows: bool = False):
    """An endless stream of (indices, times, x) on ``device``: random spirals, each with its own subset.

    Each batch holds ``batch_size`` spirals (or all of ``data`` if fewer), observed at ``n`` points,
    ``n`` drawn from ``n_min`` to ``n_max`` (at most the window's points), placed in one of
    ``placements`` (drawn per batch; each row gets its own draw). ``generator`` drives every draw.
    With ``with_rows`` each batch also carries the spirals' row numbers in ``data`` (first).
    """
    n_grid = data.t.shape[0]
    n_max = min(n_max, n_grid)
    unknown = [p for p in placements if p not in PLACEMENTS]
    if not placements or unknown:
        raise ValueError(f"placements must be a non-empty subset of {PLACEMENTS}; got {tuple(placements)}.")
    while True:
        rows = torch.randint(len(data), (min(batch_size, len(data)),), generator=generator)
        n = int(torch.randint(n_min, n_max + 1, (1,), generator=generator))
        placement = placements[int(torch.randint(len(placements), (1,), generator=generator))] if len(placements) > 1 else placements[0]
        indices = subsample(n_grid, n, placement, generator=generator, batch=len(rows))
        times, x = observe(data[rows], indices)
        batch = (indices.to(device), times.to(device), x.to(device))
        yield (rows, *batch) if with_rows else batch


def latent_ode_loss(model: LatentODE, grid: torch.Tensor, batch) -> tuple[torch.Tensor, int]:
    """−ELBO per observed point (so batches with different n weigh alike), and the ODE solve's NFE."""
    indices, times, x = batch
    elbo, _, _ = model.elbo(grid, indices, times, x)
    return -elbo.mean() / x.shape[1], model.last_nfe


def rnn_loss(model: RNNBaseline, batch) -> torch.Tensor:
    """The mean squared error of the baseline's next-point predictions (each from the true points before it)."""
    _, times, x = batch
    return ((model.teacher_forced(times, x) - x[:, 1:]) ** 2).mean()


def rnn_rollout_loss(model: RNNBaseline, grid: torch.Tensor, window: torch.Tensor, batch, read: int,
                     horizon: int) -> torch.Tensor:
    """The baseline trained for what it is scored on: read some points, then predict the rest on its own.

    The RNN reads the first ``read`` of each row's observed points (its next-point errors there
    count, as in :func:`rnn_loss`), then feeds back its own predictions at the window's grid times after
    the last point read, up to ``horizon`` of them or the window's end: the noisy window points
    ``window`` (B, n_grid, d) there are the targets. This is the scoring task (read the observations,
    extrapolate on the grid) moved inside the observed window, where training may look.
    """
    _, indices, times, x = batch
    read_x, read_t = x[:, :read], times[:, :read]
    preds, h = model.read(read_t, read_x) if read > 1 else (x[:, :0], None)
    teacher = ((preds - read_x[:, 1:]) ** 2).mean() if read > 1 else x.new_zeros(())
    last = indices[:, read - 1]                                           # (B,) grid index of the last point read
    steps = torch.arange(1, horizon + 1, device=x.device)
    future = last[:, None] + steps[None]                                  # (B, horizon) grid indices to predict
    mask = future < grid.shape[0]
    future = future.clamp(max=grid.shape[0] - 1)
    current, t_now, outputs = read_x[:, -1], read_t[:, -1], []
    for k in range(horizon):
        t_next = grid[future[:, k]]
        current, h = model.step(current, t_next - t_now, h)
        t_now = t_next
        outputs.append(current)
    rolled = torch.stack(outputs, dim=1)                                  # (B, horizon, d)
    target = torch.gather(window, 1, future[..., None].expand(-1, -1, window.shape[-1]))
    rollout = (((rolled - target) ** 2).sum(-1) * mask).sum() / (mask.sum() * window.shape[-1]).clamp(min=1)
    return teacher + rollout


def _checked_training_args(iterations, batch_size, lr) -> tuple[int, int, float]:
    """The trainers' arguments, checked: two positive integers and a positive learning rate."""
    return (integer("iterations", iterations, minimum=1), integer("batch_size", batch_size, minimum=1),
            positive_number("lr", lr))


def train_latent_ode(data: Spirals, iterations: int = 1500, *, batch_size: int = 200, lr: float = 1e-2,
                     seed: int = 0, model: LatentODE | None = None, progress: bool = True,
                     n_observed=(10, 100), placements=PLACEMENTS,
                     device: str | torch.device = "cpu") -> tuple[LatentODE, TrainLog]:
    """Maximise the ELBO on ``data`` with Adam for exactly ``iterations`` steps.

    Each step draws ``batch_size`` spirals, each observed at its own subset of between
    ``n_observed[0]`` and ``n_observed[1]`` of the window's points, placed in one of ``placements``. The learning rate
    decays by 10× over the run (cosine). Pass ``model`` to continue training it. The model and
    the batches move to ``device``; the log holds the loss and the ODE solve's NFE per iteration.
    """
    iterations, batch_size, lr = _checked_training_args(iterations, batch_size, lr)
    generator = seed_everything(seed)
    model = (LatentODE(obs_std=data.noise_std if data.noise_std > 0 else 0.1) if model is None else model).to(device)
    grid = data.t.to(device)
    batches = spiral_batches(data, batch_size, generator, *n_observed, device=device, placements=placements)
    log = fit(model, lambda i: latent_ode_loss(model, grid, next(batches)), iterations, lr=lr,
              final_lr_fraction=FINAL_LR_FRACTION, desc="latent ODE", progress=progress)
    return model, log


def train_rnn(data: Spirals, iterations: int = 1500, *, batch_size: int = 200, lr: float = 1e-2, seed: int = 0,
              model: RNNBaseline | None = None, progress: bool = True, n_observed=(10, 100), placements=PLACEMENTS,
              horizon: int = ROLLOUT_HORIZON, device: str | torch.device = "cpu") -> tuple[RNNBaseline, TrainLog]:
    """Train the baseline for extrapolation, with the latent ODE's data, batches, optimiser and iterations.

    Each step reads a random share (a half to all but one) of each spiral's observed points and rolls
    out on its own from there (:func:`rnn_rollout_loss`), so the baseline practises what it is
    scored on. The model and the batches move to ``device``.
    """
    iterations, batch_size, lr = _checked_training_args(iterations, batch_size, lr)
    horizon = integer("horizon", horizon, minimum=1)
    generator = seed_everything(seed)
    model = (RNNBaseline() if model is None else model).to(device)
    batches = spiral_batches(data, batch_size, generator, max(2, n_observed[0]), n_observed[1], device=device,
                             placements=placements, with_rows=True)
    grid, noisy = data.t.to(device), data.x.to(device)

    def loss(i):
        rows, indices, times, x = next(batches)
        n = x.shape[1]
        read = int(torch.randint((n + 1) // 2, n, (1,), generator=generator))   # leave at least one point to predict
        return rnn_rollout_loss(model, grid, noisy[rows.to(device)], (rows, indices, times, x), read, horizon)

    log = fit(model, loss, iterations, lr=lr, final_lr_fraction=FINAL_LR_FRACTION, desc="RNN baseline",
              progress=progress)
    return model, log
