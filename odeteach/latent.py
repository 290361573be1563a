"""Latent ODEs for irregularly sampled time series (Chen et al. 2018, section 5), and an RNN baseline.

The generative story, in the article's notation::

    z_t0 ~ p(z_t0) = N(0, I)
    z_t1, ..., z_tN = ODESolve(z_t0, f, θ_f, t0, ..., tN)
    each x_ti ~ p(x | z_ti, θ_x)            (a decoder network; here a Gaussian of fixed std σ)

The recognition model q(z_t0 | x_t1..tN) = N(μ, diag σ_z²) is an RNN run **backwards in time**
over the pairs (x_ti, Δt_i). Training maximises the evidence lower bound

    ELBO = E_q[ Σ_i log p(x_ti | z_ti) ] − KL( q(z_t0 | x) ‖ N(0, I) ),

with one reparameterised sample z_t0 = μ + σ_z ε per series and the KL in closed form.

The baseline is an RNN that reads (x_ti, Δt) and predicts the next point; past the data it feeds
its own predictions back (autoregressively). Both are scored on the extrapolation window of
:mod:`odeteach.data.spirals`, which neither model sees in training.

``python -m odeteach.train spirals`` retrains both from scratch and writes the shipped checkpoints.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .data.spirals import OBSERVED_COUNTS, Spirals, make_spirals, observe, subsample
from .integrate import solve

__all__ = [
    "LatentODE", "RecognitionRNN", "LatentDynamics", "Decoder", "RNNBaseline",
    "backward_inputs", "reparameterize", "kl_standard_normal", "gaussian_log_likelihood",
    "train_latent_ode", "train_rnn", "extrapolation_rmse", "rmse_table", "load_pretrained",
    "spiral_data", "train_checkpoints", "CHECKPOINT_DIR", "LATENT_CHECKPOINT", "RNN_CHECKPOINT",
    "PAPER_TABLE2", "SOLVER", "N_TRAIN", "sample_spread", "posterior_check", "describe_posterior", "trend",
    "describe_table", "noise_floor", "describe_training", "TIE_TOLERANCE", "CALIBRATION_FACTOR",
]

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
LATENT_CHECKPOINT = CHECKPOINT_DIR / "spirals_latent_ode.pt"
RNN_CHECKPOINT = CHECKPOINT_DIR / "spirals_rnn.pt"

# The paper's Table 2 (predictive RMSE on the extrapolated spirals), for comparison only.
PAPER_TABLE2 = {"RNN": {30: 0.3937, 50: 0.3202, 100: 0.1813},
                "Latent ODE": {30: 0.1642, 50: 0.1502, 100: 0.1346}}

# The solver every latent trajectory uses: dopri5 at a loose tolerance. The decoded outputs at the
# data's 100+ grid times come from dopri5's dense output, so the solver takes a few large steps
# instead of one per grid interval (RK4 stepping on the grid needed ~13x the time per training
# iteration here). A relative error of 1e-3 in z(t) is far below the data's noise (σ = 0.1).
SOLVER = {"method": "dopri5", "rtol": 1e-3, "atol": 1e-4}

# The data the checkpoints are trained and scored on: 1000 spirals, the first N_TRAIN for training.
DATA_SEED = 0
N_SPIRALS = 1000
N_TRAIN = 800


def spiral_data(seed: int = DATA_SEED) -> tuple[Spirals, Spirals]:
    """The course's spirals (1000, noise 0.1): ``(train, held_out)`` with 800 and 200 spirals."""
    return make_spirals(N_SPIRALS, seed=seed).split(N_TRAIN)


# --------------------------------------------------------------------------------------------
# Pieces of the ELBO


def backward_inputs(times: torch.Tensor, x: torch.Tensor, t0: float = 0.0) -> torch.Tensor:
    """The recognition RNN's input sequence: (x_ti, Δt_i) from the **last** observation to the first.

    ``times`` (B, n) increasing, ``x`` (B, n, d) -> (B, n, d + 1), where row k holds observation
    i = n − k together with Δt_i = t_i − t_{i−1} (and Δt_1 = t_1 − t0), the gap the RNN is about
    to cross going back in time.
    """
    if times.ndim != 2 or x.ndim != 3 or x.shape[:2] != times.shape:
        raise ValueError(f"times must be (B, n) and x (B, n, d) with the same B and n; got {tuple(times.shape)} and {tuple(x.shape)}.")
    previous = torch.cat([torch.full_like(times[:, :1], t0), times[:, :-1]], dim=1)
    dt = times - previous
    if (dt < 0).any():
        raise ValueError("times must be increasing along each row (and not before t0).")
    return torch.cat([x, dt[..., None]], dim=-1).flip(1)


def reparameterize(mean: torch.Tensor, logvar: torch.Tensor, n_samples: int | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """z = μ + σ ε with ε ~ N(0, I) and σ = exp(logvar / 2): a sample that gradients flow through.

    With ``n_samples`` the result gets a leading dimension of that size.
    """
    shape = mean.shape if n_samples is None else (n_samples, *mean.shape)
    eps = torch.randn(shape, generator=generator, dtype=mean.dtype, device=mean.device)
    return mean + torch.exp(0.5 * logvar) * eps


def kl_standard_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(μ, diag σ²) ‖ N(0, I) ) = ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1), summed over the last dim."""
    return 0.5 * (mean ** 2 + logvar.exp() - logvar - 1).sum(dim=-1)


def gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, std: float) -> torch.Tensor:
    """log N(x | mean, std² I), summed over every dimension after the first (one number per series)."""
    log_density = -0.5 * ((x - mean) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)
    return log_density.reshape(log_density.shape[0], -1).sum(dim=1)


# --------------------------------------------------------------------------------------------
# The latent ODE


class RecognitionRNN(nn.Module):
    """q(z_t0 | x): a GRU run backwards over (x_ti, Δt_i); its last state gives μ and log σ²."""

    def __init__(self, obs_dim: int = 2, hidden: int = 25, latent_dim: int = 4):
        super().__init__()
        self.rnn = nn.GRU(obs_dim + 1, hidden, batch_first=True)  # the whole sequence in one fused call
        self.out = nn.Linear(hidden, 2 * latent_dim)

    def forward(self, times: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, h = self.rnn(backward_inputs(times, x))  # h: the state after reading x_t1, the earliest point
        mean, logvar = self.out(h[-1]).chunk(2, dim=-1)
        return mean, logvar


class LatentDynamics(nn.Module):
    """f(z(t), θ_f): the latent ODE's right-hand side, an MLP (autonomous: it ignores t)."""

    def __init__(self, latent_dim: int = 4, hidden: int = 20):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU(),
                                 nn.Linear(hidden, latent_dim))

    def forward(self, t, z):
        return self.net(z)


class Decoder(nn.Module):
    """The mean of p(x | z): an MLP from the latent state to the observation space."""

    def __init__(self, latent_dim: int = 4, hidden: int = 20, obs_dim: int = 2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, obs_dim))

    def forward(self, z):
        return self.net(z)


class LatentODE(nn.Module):
    """Recognition RNN + latent dynamics + decoder, with a Gaussian likelihood of fixed std ``obs_std``."""

    def __init__(self, obs_dim: int = 2, latent_dim: int = 4, rnn_hidden: int = 25, ode_hidden: int = 20,
                 decoder_hidden: int = 20, obs_std: float = 0.1):
        super().__init__()
        self.config = dict(obs_dim=obs_dim, latent_dim=latent_dim, rnn_hidden=rnn_hidden, ode_hidden=ode_hidden,
                           decoder_hidden=decoder_hidden, obs_std=float(obs_std))
        self.encoder = RecognitionRNN(obs_dim, rnn_hidden, latent_dim)
        self.dynamics = LatentDynamics(latent_dim, ode_hidden)
        self.decoder = Decoder(latent_dim, decoder_hidden, obs_dim)
        self.obs_std = float(obs_std)
        self.last_nfe = 0

    def encode(self, times, x):
        """μ, log σ² of q(z_t0 | x) for observations ``x`` (B, n, d) at ``times`` (B, n)."""
        return self.encoder(times, x)

    def latent_path(self, z0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """z(t) for every time in ``t`` (which starts at t0 = 0): shape (len(t), *z0.shape).

        The solver's NFE is kept in ``self.last_nfe``.
        """
        solution = solve(self.dynamics, z0, t, **SOLVER)
        self.last_nfe = solution.stats.nfe
        return solution.ys

    def decode(self, z0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The decoded mean trajectory, with time moved to the second-to-last axis: (..., len(t), d)."""
        return self.decoder(self.latent_path(z0, t)).movedim(0, -2)

    def elbo(self, grid: torch.Tensor, indices: torch.Tensor, times: torch.Tensor, x: torch.Tensor):
        """Per-series (ELBO, log-likelihood, KL) with one reparameterised sample each.

        ``grid`` is the shared time grid, ``indices`` (B, n) which grid points were observed,
        ``times`` (B, n) = grid[indices] and ``x`` (B, n, d) the observations.
        """
        mean, logvar = self.encode(times, x)
        z0 = reparameterize(mean, logvar)
        path = self.decode(z0, grid)                                          # (B, len(grid), d)
        predicted = torch.gather(path, 1, indices[..., None].expand(-1, -1, path.shape[-1]))
        log_lik = gaussian_log_likelihood(x, predicted, self.obs_std)
        kl = kl_standard_normal(mean, logvar)
        return log_lik - kl, log_lik, kl

    @torch.no_grad()
    def predict(self, times, x, t_out, n_samples: int = 0, generator=None):
        """Decoded trajectory at ``t_out`` from the posterior mean, and from ``n_samples`` posterior samples.

        Returns ``(mean_path (B, len(t_out), d), samples (n_samples, B, len(t_out), d) or None)``.
        """
        mean, logvar = self.encode(times, x)
        z0 = mean if not n_samples else torch.cat([mean[None], reparameterize(mean, logvar, n_samples, generator)])
        paths = self.decode(z0, t_out)
        return (paths, None) if not n_samples else (paths[0], paths[1:])


# --------------------------------------------------------------------------------------------
# The RNN baseline


class RNNBaseline(nn.Module):
    """A GRU that reads (x_ti, t_{i+1} − t_i) and predicts x_{t(i+1)}; past the data it feeds back its predictions."""

    def __init__(self, obs_dim: int = 2, hidden: int = 25):
        super().__init__()
        self.config = dict(obs_dim=obs_dim, hidden=hidden)
        self.rnn = nn.GRU(obs_dim + 1, hidden, batch_first=True)
        self.out = nn.Linear(hidden, obs_dim)

    def _read(self, times, x, h=None):
        """Read x_t1 .. x_t(n−1), each with the gap to the next time: predictions (B, n−1, d) and the state."""
        inputs = torch.cat([x[:, :-1], torch.diff(times, dim=1)[..., None]], dim=-1)
        states, h = self.rnn(inputs, h)
        return x[:, :-1] + self.out(states), h  # each output is the change to the next point

    def teacher_forced(self, times, x):
        """Predictions of x_t2 .. x_tn, each from the true points before it: (B, n − 1, d)."""
        return self._read(times, x)[0]

    def _step(self, x, dt, h):
        """One step from the point x (B, d) across the gap dt (B,): the predicted next point and the state."""
        state, h = self.rnn(torch.cat([x, dt[:, None]], dim=-1)[:, None], h)
        return x + self.out(state[:, 0]), h

    @torch.no_grad()
    def extrapolate(self, times, x, t_future):
        """Read the observations, then roll out autoregressively to the times ``t_future`` (m,): (B, m, d)."""
        h = self._read(times, x)[1] if x.shape[1] > 1 else None
        current, t_now, preds = x[:, -1], times[:, -1], []
        for t_next in t_future:
            current, h = self._step(current, t_next - t_now, h)
            t_now = t_next.expand_as(t_now)
            preds.append(current)
        return torch.stack(preds, dim=1)


# --------------------------------------------------------------------------------------------
# Training


@dataclass
class TrainLog:
    """What a training run did: the loss at every iteration and the wall time."""

    losses: list[float]
    seconds: float


def _check_training_args(iterations, batch_size, lr):
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be a positive integer; got {iterations!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0; got {lr!r}.")


def _batches(data: Spirals, batch_size, generator, n_min, n_max):
    """An endless stream of (indices, times, x): random spirals, each with its own random subset."""
    n_grid = data.t.shape[0]
    n_max = min(n_max, n_grid)
    while True:
        rows = torch.randint(len(data), (min(batch_size, len(data)),), generator=generator)
        n = int(torch.randint(n_min, n_max + 1, (1,), generator=generator))
        idx = subsample(n_grid, n, "random", generator=generator, batch=len(rows))
        batch = data[rows]
        times, x = observe(batch, idx)
        yield idx, times, x


def _progress(iterable, enabled, desc):
    from .progress import progress as progress_bar
    return progress_bar(iterable, desc=desc, enabled=enabled, mininterval=1.0)


def train_latent_ode(data: Spirals, iterations: int = 1500, *, batch_size: int = 200, lr: float = 1e-2,
                     seed: int = 0, model: LatentODE | None = None, progress: bool = True,
                     n_observed=(10, 100)) -> tuple[LatentODE, TrainLog]:
    """Maximise the ELBO on ``data`` with Adam for exactly ``iterations`` steps.

    Each step draws ``batch_size`` spirals, each observed at its own random subset of
    between ``n_observed[0]`` and ``n_observed[1]`` of the window's points. The learning rate
    decays by 10× over the run (cosine). Pass ``model`` to continue training it.
    """
    _check_training_args(iterations, batch_size, lr)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = LatentODE(obs_std=data.noise_std if data.noise_std > 0 else 0.1) if model is None else model
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iterations, eta_min=lr / 10)
    stream = _batches(data, batch_size, gen, *n_observed)
    losses, start = [], time.perf_counter()
    bar = _progress(range(iterations), progress, "latent ODE")
    for _ in bar:
        idx, times, x = next(stream)
        elbo, _, _ = model.elbo(data.t, idx, times, x)
        loss = -elbo.mean() / x.shape[1]  # per observed point, so batches with different n weigh alike
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if progress and len(losses) % 25 == 0:
            bar.set_postfix(loss=f"{sum(losses[-25:]) / 25:.3f}")
    return model, TrainLog(losses, time.perf_counter() - start)


def train_rnn(data: Spirals, iterations: int = 1500, *, batch_size: int = 200, lr: float = 1e-2, seed: int = 0,
              model: RNNBaseline | None = None, progress: bool = True, n_observed=(10, 100)) -> tuple[RNNBaseline, TrainLog]:
    """Train the baseline to predict each next point (mean squared error), on the same batches as the latent ODE."""
    _check_training_args(iterations, batch_size, lr)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = RNNBaseline() if model is None else model
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iterations, eta_min=lr / 10)
    stream = _batches(data, batch_size, gen, max(2, n_observed[0]), n_observed[1])
    losses, start = [], time.perf_counter()
    bar = _progress(range(iterations), progress, "RNN baseline")
    for _ in bar:
        _, times, x = next(stream)
        loss = ((model.teacher_forced(times, x) - x[:, 1:]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if progress and len(losses) % 25 == 0:
            bar.set_postfix(loss=f"{sum(losses[-25:]) / 25:.4f}")
    return model, TrainLog(losses, time.perf_counter() - start)


# --------------------------------------------------------------------------------------------
# Evaluation


@torch.no_grad()
def extrapolation_rmse(model: LatentODE | RNNBaseline, data: Spirals, n_observed: int, *, placement: str = "random",
                       seed: int = 1, against: str = "noisy") -> float:
    """Root-mean-square error on the extrapolation window, over all of ``data`` and both coordinates.

    Each spiral is observed at ``n_observed`` window points (drawn with ``seed``, the same for
    every model); the model then predicts the ``data.t_extrapolate`` times. ``against="noisy"``
    scores against the held-out noisy points (as the paper's predictive RMSE), ``"clean"``
    against the noise-free spiral.
    """
    if against not in ("noisy", "clean"):
        raise ValueError(f"against must be 'noisy' or 'clean'; got {against!r}.")
    gen = torch.Generator().manual_seed(seed)
    idx = subsample(data.t.shape[0], n_observed, placement, generator=gen, batch=len(data))
    times, x = observe(data, idx)
    if isinstance(model, LatentODE):
        t_all = torch.cat([data.t, data.t_extrapolate])
        path, _ = model.predict(times, x, t_all)
        pred = path[:, data.t.shape[0]:]
    elif isinstance(model, RNNBaseline):
        pred = model.extrapolate(times, x, data.t_extrapolate)
    else:
        raise TypeError(f"model must be a LatentODE or an RNNBaseline; got {type(model).__name__}.")
    target = data.x_extrapolate if against == "noisy" else data.clean_extrapolate
    return float(((pred - target) ** 2).mean().sqrt())


def rmse_table(latent: LatentODE, rnn: RNNBaseline, data: Spirals, counts=OBSERVED_COUNTS, **kwargs) -> dict:
    """``{"RNN": {n: rmse}, "Latent ODE": {n: rmse}}`` over ``data``, in the shape of the paper's Table 2."""
    return {name: {n: extrapolation_rmse(m, data, n, **kwargs) for n in counts}
            for name, m in (("RNN", rnn), ("Latent ODE", latent))}


# --------------------------------------------------------------------------------------------
# What the measurements say: the lesson's sentences about them are chosen here, from the numbers

# A relative difference below this counts as a tie ("about level"), not as a rise or a fall.
TIE_TOLERANCE = 0.02
# The posterior counts as calibrated when error / spread is within this factor of 1.
CALIBRATION_FACTOR = 2.0


def sample_spread(samples: torch.Tensor) -> float:
    """How far samples fan out: the root-mean-square, over every axis but the first, of their
    standard deviation across the first axis (the samples). Needs at least 2 samples."""
    if samples.shape[0] < 2:
        raise ValueError(f"a spread needs at least 2 samples along the first axis; got {samples.shape[0]}.")
    return float(samples.var(dim=0).mean().sqrt())


@torch.no_grad()
def posterior_check(model: LatentODE, data: Spirals, n_observed: int = 30, *, n_samples: int = 10,
                    placement: str = "random", seed: int = 1) -> dict:
    """Is the posterior as uncertain as it is wrong? Measured in the extrapolation window over all of ``data``.

    Each spiral is observed at ``n_observed`` points (drawn with ``seed``, as in
    :func:`extrapolation_rmse`); ``n_samples`` draws of z_t0 ~ q(z_t0 | x) are decoded. Returns
    ``{"spread", "rmse", "ratio"}``: the samples' spread (:func:`sample_spread`), the RMSE of the
    posterior-mean trajectory against the noise-free spiral, and rmse / spread. If the truth were
    like one more posterior sample, the ratio would be about 1; far above 1, the posterior is overconfident.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2:
        raise ValueError(f"n_samples must be an integer ≥ 2 (a spread needs two samples); got {n_samples!r}.")
    gen = torch.Generator().manual_seed(seed)
    idx = subsample(data.t.shape[0], n_observed, placement, generator=gen, batch=len(data))
    times, x = observe(data, idx)
    n = data.t.shape[0]
    path, samples = model.predict(times, x, torch.cat([data.t, data.t_extrapolate]), n_samples=n_samples, generator=gen)
    spread = sample_spread(samples[:, :, n:])
    rmse = float(((path[:, n:] - data.clean_extrapolate) ** 2).mean().sqrt())
    return {"spread": spread, "rmse": rmse, "ratio": rmse / spread if spread > 0 else math.inf}


def describe_posterior(check: dict) -> str:
    """The sentence the lesson prints about :func:`posterior_check`'s numbers."""
    ratio = check["ratio"]
    numbers = f"posterior spread {check['spread']:.3f}, error of the posterior mean {check['rmse']:.3f}"
    if ratio > CALIBRATION_FACTOR:
        verdict = (f"the error is {ratio:.1f}× the spread: the posterior is overconfident, "
                   "its samples hide under the mean")
    elif ratio < 1 / CALIBRATION_FACTOR:
        verdict = f"the spread is {1 / ratio:.1f}× the error: the posterior is underconfident"
    else:
        verdict = f"error / spread = {ratio:.2f}: the spread is about the size of the error"
    return f"{numbers}; {verdict}"


def trend(first: float, last: float, tolerance: float = TIE_TOLERANCE) -> str:
    """``"falls"``, ``"rises"`` or ``"stays about level"`` (a relative change within ``tolerance``)."""
    change = (last - first) / abs(first)
    return "stays about level" if abs(change) <= tolerance else ("rises" if change > 0 else "falls")


def _count_list(counts) -> str:
    counts = [str(n) for n in counts]
    return "no number" if not counts else counts[0] if len(counts) == 1 else ", ".join(counts[:-1]) + " and " + counts[-1]


def describe_table(table: dict, paper: dict = PAPER_TABLE2) -> list[str]:
    """The lines the lesson prints under its Table 2: who is lower where, and which way each error goes.

    ``table`` (and ``paper``) map "RNN" and "Latent ODE" to ``{n_observed: rmse}``. A relative
    difference within :data:`TIE_TOLERANCE` is reported as a tie, not as a win.
    """
    counts = sorted(table["Latent ODE"])

    def where(t):  # the latent ODE's error against the RNN's, count by count
        groups = {}
        for n in counts:
            groups.setdefault(trend(t["RNN"][n], t["Latent ODE"][n]), []).append(n)
        parts = [f"{words} {_count_list(groups[key])}" for key, words in
                 (("falls", "below the RNN's at"), ("stays about level", "level with it at"), ("rises", "above it at"))
                 if key in groups]
        return "; ".join(parts)

    lines = [f"the latent ODE's error is {where(table)} observed points (the paper's: {where(paper)})"]
    first, last = counts[0], counts[-1]
    for name, label in (("RNN", "the RNN's"), ("Latent ODE", "the latent ODE's")):
        ours, theirs = table[name], paper[name]
        went, paper_went = trend(ours[first], ours[last]), trend(theirs[first], theirs[last])
        relation = (f"as the paper's does ({theirs[first]:.4f} → {theirs[last]:.4f})" if went == paper_went else
                    f"unlike the paper's, which {paper_went} ({theirs[first]:.4f} → {theirs[last]:.4f})")
        lines.append(f"from {first} to {last} observed points {label} error {went} "
                     f"({ours[first]:.3f} → {ours[last]:.3f}), {relation}")
    return lines


def noise_floor(obs_std: float, obs_dim: int = 2) -> float:
    """E[−log p(x | z)] per observed point for a decoder that hits every noise-free point exactly:
    d (log σ + ½ log 2π + ½) for d coordinates with Gaussian noise of std σ. No model's −ELBO per point goes lower on average."""
    return obs_dim * (math.log(obs_std) + 0.5 * math.log(2 * math.pi) + 0.5)


def describe_training(log: TrainLog, obs_std: float, obs_dim: int = 2, last: int = 50) -> str:
    """The sentence the lesson prints about where a latent ODE's training loss ended, against the noise floor."""
    final = sum(log.losses[-last:]) / len(log.losses[-last:])
    floor = noise_floor(obs_std, obs_dim)
    where = ("at the noise floor" if final - floor <= 0.1 else
             f"{final - floor:.2f} above the noise floor: it is not trained down to the noise")
    return (f"its −ELBO per observed point ended at {final:.2f} (mean of the last {last} iterations); a decoder "
            f"exact on every noise-free point would score {floor:.2f} (σ = {obs_std:g}), so training ended {where}")


# --------------------------------------------------------------------------------------------
# Checkpoints


def _save(path: Path, model: nn.Module, log: TrainLog, kind: str, seed: int):
    torch.save({"kind": kind, "config": dict(model.config), "state_dict": model.state_dict(),
                "losses": [float(v) for v in log.losses], "seconds": float(log.seconds), "seed": int(seed)}, path)


def _load(path: Path, kind: str):
    if not Path(path).exists():
        raise FileNotFoundError(f"no checkpoint at {path}; create it with `python -m odeteach.train spirals`.")
    blob = torch.load(path, weights_only=True)
    if blob.get("kind") != kind:
        raise ValueError(f"{path} holds a {blob.get('kind')!r} checkpoint, not {kind!r}.")
    model = LatentODE(**blob["config"]) if kind == "latent_ode" else RNNBaseline(**blob["config"])
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return model, TrainLog(blob["losses"], blob["seconds"])


def load_pretrained(latent_path=LATENT_CHECKPOINT, rnn_path=RNN_CHECKPOINT):
    """The shipped models: ``(latent_ode, rnn, latent_log, rnn_log)`` (logs hold the training losses and time)."""
    latent, latent_log = _load(latent_path, "latent_ode")
    rnn, rnn_log = _load(rnn_path, "rnn")
    return latent, rnn, latent_log, rnn_log


LATENT_ITERATIONS = 1500
RNN_ITERATIONS = 1500


def train_checkpoints(out_dir: Path = CHECKPOINT_DIR, *, latent_iterations: int = LATENT_ITERATIONS,
                      rnn_iterations: int = RNN_ITERATIONS, seed: int = 0, progress: bool = True) -> dict:
    """Train both models from scratch on the course's spirals and write their checkpoints.

    Returns the held-out RMSE table of the new models.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train, held_out = spiral_data()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these models are tiny: extra threads only add overhead
    try:
        return _train_both(out_dir, train, held_out, latent_iterations, rnn_iterations, seed, progress)
    finally:
        torch.set_num_threads(threads)


def _train_both(out_dir, train, held_out, latent_iterations, rnn_iterations, seed, progress):
    start = time.perf_counter()
    latent, latent_log = train_latent_ode(train, latent_iterations, seed=seed, progress=progress)
    _save(out_dir / LATENT_CHECKPOINT.name, latent, latent_log, "latent_ode", seed)
    rnn, rnn_log = train_rnn(train, rnn_iterations, seed=seed, progress=progress)
    _save(out_dir / RNN_CHECKPOINT.name, rnn, rnn_log, "rnn", seed)
    table = rmse_table(latent.eval(), rnn.eval(), held_out)
    print(f"trained in {time.perf_counter() - start:.0f} s (latent ODE {latent_log.seconds:.0f} s, RNN {rnn_log.seconds:.0f} s)")
    print("extrapolation RMSE on the 200 held-out spirals:")
    for name, row in table.items():
        print(f"  {name:<11}" + "".join(f"  {n:>3} obs: {v:.4f}" for n, v in row.items()))
    return table
