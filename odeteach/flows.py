"""Continuous normalizing flows (Chen et al. 2018, §4; FFJORD, Grathwohl et al. 2019).

A point ``z(t)`` moved by ``dz/dt = f(z(t), t, θ)`` carries its density with it; the log-density
along the path obeys the *instantaneous change of variables*

    d log p(z(t)) / dt = −tr(∂f/∂z(t)),

so ``(z, log p)`` is one ODE, integrated jointly here with :func:`odeteach.solve` on the tuple
state ``(z, Δ)`` with ``dΔ/dt = −tr(∂f/∂z)``. Nothing needs to be invertible and no determinant
is taken: the trace is a sum of ``D`` diagonal entries of the Jacobian (exact, one
vector–Jacobian product per dimension), or FFJORD's Hutchinson estimate ``εᵀ(∂f/∂z)ε`` with one
product, whatever ``D`` is.

Time convention (FFJORD's): data lives at ``t = 0`` and the base density N(0, I) at ``t = 1``.
The log-likelihood of a data point integrates forward from 0 to 1,

    log p₀(x) = log N(z(1); 0, I) − Δ(1),     z(0) = x,  Δ(0) = 0,

and sampling integrates backwards from ``z(1) ~ N(0, I)`` to ``t = 0``. ``python -m odeteach.train
flows`` retrains the shipped checkpoints ``odeteach/checkpoints/flows_<name>.pt``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .data.densities import BOX, DENSITIES, log_density, sample as sample_density
from .errors import SolverError
from .progress import progress as progress_bar
from .integrate import solve

__all__ = [
    "ESTIMATORS", "NOISES", "ConcatTimeMLP", "CNF", "FlowResult", "base_log_prob", "exact_trace",
    "hutchinson_trace", "draw_noise", "grid_points", "log_prob_frames", "log_prob_grid", "grid_mass", "trace_cost", "train_cnf", "TrainResult",
    "save_checkpoint", "load_checkpoint", "pretrained", "train_checkpoints", "CHECKPOINT_DIR",
    "gaussian_fit_nll", "FitReport", "fit_report",
]

ESTIMATORS = ("exact", "hutchinson")
NOISES = ("gaussian", "rademacher")
CHECKPOINT_DIR = Path(__file__).parent / "checkpoints"
LOG_2PI = math.log(2 * math.pi)


# --------------------------------------------------------------------------------------------
# The base density and the two trace estimators


def base_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dimension."""
    return -0.5 * (z.pow(2).sum(-1) + z.shape[-1] * LOG_2PI)


def exact_trace(f: torch.Tensor, z: torch.Tensor, *, create_graph: bool = False) -> torch.Tensor:
    """tr(∂f/∂z) for a batch: one vector–Jacobian product per dimension, keeping the diagonal.

    ``f`` has shape ``(N, D)`` and was computed from ``z`` (``requires_grad``) row by row, so
    ``∂(Σ_n f_ni)/∂z_ni = ∂f_ni/∂z_ni``. Cost: ``D`` backward passes.
    """
    total = torch.zeros(f.shape[:-1], dtype=f.dtype, device=f.device)
    for i in range(f.shape[-1]):
        row = torch.autograd.grad(f[..., i].sum(), z, create_graph=create_graph, retain_graph=True)[0]
        total = total + row[..., i]
    return total


def hutchinson_trace(f: torch.Tensor, z: torch.Tensor, e: torch.Tensor, *, create_graph: bool = False) -> torch.Tensor:
    """Hutchinson's estimate ``εᵀ(∂f/∂z)ε`` of the trace: one backward pass for any ``D``.

    Unbiased when ``E[εεᵀ] = I`` (Gaussian or Rademacher ε): ``E[εᵀJε] = tr(J E[εεᵀ]) = tr J``.
    """
    vjp = torch.autograd.grad((f * e).sum(), z, create_graph=create_graph, retain_graph=True)[0]
    return (vjp * e).sum(-1)


def draw_noise(shape, noise: str = "gaussian", *, generator: torch.Generator | None = None,
               dtype=torch.float32) -> torch.Tensor:
    """ε with E[εεᵀ] = I: standard Gaussian, or Rademacher (±1 with probability ½ each)."""
    if noise == "gaussian":
        return torch.randn(shape, generator=generator, dtype=dtype)
    if noise == "rademacher":
        return torch.randint(0, 2, shape, generator=generator).to(dtype) * 2 - 1
    raise ValueError(f"Unknown noise {noise!r}. Valid: {', '.join(NOISES)}.")


# --------------------------------------------------------------------------------------------
# The vector field


class ConcatTimeMLP(nn.Module):
    """f(z, t, θ): an MLP whose every layer also sees the time t (``concat-time``).

    Layer k maps ``[h, t] ↦ tanh(W_k [h, t] + b_k)``; the last layer is linear. With the time
    fed to every layer the field can change its shape over the flow, which a single
    time-independent field could not (FFJORD's ConcatLinear layers do the same).
    """

    def __init__(self, dim: int = 2, hidden: int = 64, layers: int = 3):
        super().__init__()
        for name, value in (("dim", dim), ("hidden", hidden), ("layers", layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}.")
        self.dim, self.hidden, self.layers = dim, hidden, layers
        sizes = [dim] + [hidden] * layers + [dim]
        self.linears = nn.ModuleList(nn.Linear(a + 1, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, t, z: torch.Tensor) -> torch.Tensor:
        """``t`` is one time (a number or 0-dim tensor), or one time per row of ``z``."""
        tt = torch.as_tensor(t, dtype=z.dtype, device=z.device)
        tt = tt.expand(*z.shape[:-1], 1) if tt.numel() == 1 else tt.reshape(*z.shape[:-1], 1)
        h = z
        for k, linear in enumerate(self.linears):
            h = linear(torch.cat([h, tt], dim=-1))
            if k < len(self.linears) - 1:
                h = torch.tanh(h)
        return h


class _Dynamics:
    """The joint right-hand side ``(z, Δ) ↦ (f(z, t), −tr ∂f/∂z)`` for one solve.

    The Hutchinson noise ε is drawn once per solve and held fixed along the path (FFJORD), so
    the integrated estimate is unbiased too. Inside, autograd is switched on even when the
    caller runs under ``torch.no_grad()``; the graph of the trace is kept only when the caller
    needs gradients (training).
    """

    def __init__(self, field: nn.Module, estimator: str, e: torch.Tensor | None):
        self.field, self.estimator, self.e = field, estimator, e
        self.evals = 0

    def __call__(self, t, state):
        z, _ = state
        self.evals += 1
        keep_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            if not z.requires_grad:
                z = z.detach().requires_grad_(True)
            f = self.field(t, z)
            if self.estimator == "exact":
                tr = exact_trace(f, z, create_graph=keep_graph)
            else:
                tr = hutchinson_trace(f, z, self.e, create_graph=keep_graph)
        if not keep_graph:
            f, tr = f.detach(), tr.detach()
        return f, -tr


class _FieldOnly:
    """``z ↦ f(z, t)`` alone, for sampling when no densities are wanted (about D + 1 times cheaper)."""

    def __init__(self, field):
        self.field = field

    def __call__(self, t, z):
        return self.field(t, z)


# --------------------------------------------------------------------------------------------
# The flow


@dataclass
class FlowResult:
    """Where points went and how their log-density changed.

    ``zs[k]`` are the points at ``ts[k]``; ``log_p[k]`` their log-density under the flow's
    density at that time (``None`` when only the points were integrated); ``nfe`` the solver's
    evaluations of the dynamics.
    """

    ts: torch.Tensor
    zs: torch.Tensor
    log_p: torch.Tensor | None
    nfe: int
    n_steps: int


def _check_points(x, dim, what="x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{what} must be a torch.Tensor of shape (N, {dim}); got {type(x).__name__}.")
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"{what} must have shape (N, {dim}); got {tuple(x.shape)}.")
    if x.shape[0] == 0:
        raise ValueError(f"{what} is empty: give at least one point.")
    if not x.is_floating_point():
        raise ValueError(f"{what} must be floating point; got dtype {x.dtype}.")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{what} holds NaN or inf values.")
    return x


def _check_estimator(estimator, noise):
    if estimator not in ESTIMATORS:
        raise ValueError(f"Unknown trace estimator {estimator!r}. Valid: {', '.join(ESTIMATORS)}.")
    if noise not in NOISES:
        raise ValueError(f"Unknown noise {noise!r}. Valid: {', '.join(NOISES)}.")


def _check_times(times, first, last) -> torch.Tensor:
    """Output times from ``first`` to ``last`` (both included), e.g. 1 → 0 for sampling."""
    if times is None:
        return torch.tensor([first, last])
    times = torch.as_tensor(times, dtype=torch.float32).flatten()
    if times.numel() < 2 or float(times[0]) != first or float(times[-1]) != last:
        raise ValueError(f"times must run from {first} to {last} (both included); got {times.tolist()[:6]}.")
    return times


class CNF(nn.Module):
    """A continuous normalizing flow on ``R^D``: data at ``t = 0``, N(0, I) at ``t = 1``.

    Parameters
    ----------
    dim, hidden, layers : the size of the field ``ConcatTimeMLP(dim, hidden, layers)``.
    rtol, atol, method : default solver settings for every solve (each method takes overrides).
    """

    def __init__(self, dim: int = 2, hidden: int = 64, layers: int = 3, *, rtol: float = 1e-5,
                 atol: float = 1e-5, method: str = "dopri5"):
        super().__init__()
        self.field = ConcatTimeMLP(dim, hidden, layers)
        self.dim = dim
        self.rtol, self.atol, self.method = rtol, atol, method

    @property
    def dtype(self) -> torch.dtype:
        return next(self.field.parameters(), torch.empty(0)).dtype

    def config(self) -> dict:
        return {"dim": self.dim, "hidden": self.field.hidden, "layers": self.field.layers,
                "rtol": self.rtol, "atol": self.atol, "method": self.method}

    def _solver(self, rtol, atol, method, options):
        return dict(rtol=self.rtol if rtol is None else rtol, atol=self.atol if atol is None else atol,
                    method=self.method if method is None else method, options=options)

    def flow(self, x: torch.Tensor, times, *, estimator: str = "exact", noise: str = "gaussian",
             generator: torch.Generator | None = None, with_log_p: bool = True, rtol=None, atol=None,
             method=None, options=None) -> tuple[torch.Tensor, torch.Tensor | None, object]:
        """Integrate points ``x`` (at ``times[0]``) through ``times``.

        Returns ``(zs, deltas, solution)``: ``zs[k]`` the points at ``times[k]`` and ``deltas[k]``
        the accumulated ``Δ = −∫ tr(∂f/∂z) dt`` from ``times[0]``, so that
        ``log p_{times[k]}(zs[k]) = log p_{times[0]}(x) + deltas[k]``.
        """
        x = _check_points(x, self.dim)
        _check_estimator(estimator, noise)
        times = torch.as_tensor(times, dtype=x.dtype)
        settings = self._solver(rtol, atol, method, options)
        if not with_log_p:
            sol = solve(_FieldOnly(self.field), x, times, **settings)
            return sol.ys, None, sol
        e = draw_noise(x.shape, noise, generator=generator, dtype=x.dtype) if estimator == "hutchinson" else None
        delta0 = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        sol = solve(_Dynamics(self.field, estimator, e), (x, delta0), times, **settings)
        zs, deltas = sol.ys
        return zs, deltas, sol

    def log_prob(self, x: torch.Tensor, *, estimator: str = "exact", noise: str = "gaussian",
                 generator: torch.Generator | None = None, t: float = 0.0, rtol=None, atol=None,
                 method=None, options=None, return_nfe: bool = False):
        """log p_t(x): integrate ``(x, 0)`` from ``t`` to 1, then ``log N(z(1)) − Δ(1)``.

        ``t = 0`` (default) is the model's density of the data; ``0 < t < 1`` the density part
        way along the flow. With ``estimator="hutchinson"`` the value is an unbiased estimate.
        """
        t = float(t)
        if not 0.0 <= t < 1.0:
            raise ValueError(f"t must be in [0, 1); got {t}.")
        zs, deltas, sol = self.flow(x, torch.tensor([t, 1.0]), estimator=estimator, noise=noise,
                                    generator=generator, rtol=rtol, atol=atol, method=method, options=options)
        log_p = base_log_prob(zs[-1]) - deltas[-1]
        return (log_p, sol.stats.nfe) if return_nfe else log_p

    def sample(self, n: int | None = None, *, z1: torch.Tensor | None = None, seed: int = 0, times=None,
               with_log_p: bool = True, estimator: str = "exact", noise: str = "gaussian",
               rtol=None, atol=None, method=None, options=None) -> FlowResult:
        """Draw ``n`` points ``z(1) ~ N(0, I)`` (or take ``z1``) and integrate backwards to ``t = 0``.

        ``times`` (default ``[1, 0]``) must run from 1 down to 0; the result holds the points and,
        with ``with_log_p``, their log-density at every one of those times: along the path
        ``log p_t(z(t)) = log N(z(1)) + Δ(t)``.
        """
        if z1 is None:
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"n (the number of samples) must be a positive integer; got {n!r}.")
            z1 = torch.randn(n, self.dim, generator=torch.Generator().manual_seed(seed), dtype=self.dtype)
        z1 = _check_points(z1, self.dim, "z1")
        times = _check_times(times, 1.0, 0.0).to(z1.dtype)
        zs, deltas, sol = self.flow(z1, times, estimator=estimator, noise=noise, with_log_p=with_log_p,
                                    generator=torch.Generator().manual_seed(seed + 1), rtol=rtol, atol=atol,
                                    method=method, options=options)
        log_p = None if deltas is None else base_log_prob(z1) + deltas
        return FlowResult(times, zs, log_p, sol.stats.nfe, sol.stats.n_steps)


# --------------------------------------------------------------------------------------------
# Densities on a grid


def grid_points(n: int = 80, box: float = BOX) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell centres of an ``n × n`` grid over ``[-box, box]²``: ``(centres, points (n², 2))``.

    Point ``i * n + j`` is ``(centres[j], centres[i])``, so ``values.reshape(n, n)`` is an image
    with rows along y (``imshow(..., origin="lower")``).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n (grid points per side) must be an integer ≥ 2; got {n!r}.")
    if not (isinstance(box, (int, float)) and math.isfinite(box) and box > 0):
        raise ValueError(f"box must be a positive number; got {box!r}.")
    step = 2 * box / n
    centres = torch.linspace(-box + step / 2, box - step / 2, n)
    gy, gx = torch.meshgrid(centres, centres, indexing="ij")
    return centres, torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


class _FromTime(nn.Module):
    """The field seen in a rescaled time s ∈ [0, 1] that runs row r from ``t_r`` to 1.

    With ``t = t_r + s (1 − t_r)``: ``dz/ds = (1 − t_r) f(z, t)``. Rows starting at different times
    then share one solve over s, and the trace scales by the same factor ``(1 − t_r)``.
    """

    def __init__(self, field, starts):
        super().__init__()
        self.field, self.starts, self.scale = field, starts, (1 - starts).unsqueeze(-1)

    def forward(self, s, z):
        return self.scale * self.field(self.starts + s * (1 - self.starts), z)


def log_prob_frames(cnf: CNF, times, *, n: int = 60, box: float = BOX, rtol=None, atol=None):
    """log p_t on the grid of :func:`grid_points` for every t in ``times`` (each in [0, 1]), in one solve.

    Each frame integrates the grid from its own t to 1 (``log p_t(x) = log N(z(1)) − Δ(1)``);
    all frames are stacked into one batch and solved together in rescaled time. Returns
    ``(centres, log_p)`` with ``log_p`` of shape ``(len(times), n, n)``; NFE is ``log_p.nfe``.
    """
    times = torch.as_tensor(times, dtype=cnf.dtype).flatten()
    if times.numel() == 0 or not bool(((times >= 0) & (times <= 1)).all()):
        raise ValueError(f"times must be a non-empty list of times in [0, 1]; got {times.tolist()[:8]}.")
    centres, points = grid_points(n, box)
    centres, points = centres.to(cnf.dtype), points.to(cnf.dtype)
    k = times.numel()
    starts = times.repeat_interleave(points.shape[0])
    x = points.repeat(k, 1)
    dyn = _Dynamics(_FromTime(cnf.field, starts), "exact", None)
    with torch.no_grad():
        sol = solve(dyn, (x, torch.zeros(x.shape[0], dtype=x.dtype)), torch.tensor([0.0, 1.0], dtype=x.dtype),
                    **cnf._solver(rtol, atol, None, None))
    zs, deltas = sol.ys
    log_p = (base_log_prob(zs[-1]) - deltas[-1]).reshape(k, n, n)
    return centres, log_p, sol.stats.nfe


def log_prob_grid(cnf: CNF, *, n: int = 80, box: float = BOX, t: float = 0.0, rtol=None, atol=None):
    """log p_t on an ``n × n`` grid of cell centres covering ``[-box, box]²``.

    Returns ``(xs, ys, log_p)`` with ``log_p[i, j]`` at ``(xs[j], ys[i])`` (image layout).
    """
    centres, log_p, _ = log_prob_frames(cnf, [float(t)], n=n, box=box, rtol=rtol, atol=atol)
    return centres, centres, log_p[0]


def grid_mass(log_p: torch.Tensor, box: float = BOX) -> float:
    """∫ p over the box by the midpoint rule on the grid of :func:`log_prob_grid` (≈ 1 for a density)."""
    n = log_p.shape[-1]
    return float(log_p.double().exp().sum() * (2 * box / n) ** 2)


def trace_cost(dims=(2, 8, 32, 128), *, batch: int = 256, hidden: int = 64, repeats: int = 5, seed: int = 0) -> dict:
    """Median CPU seconds for one evaluation of ``f`` and its trace, exact against Hutchinson, per dimension D.

    The exact trace takes D backward passes and Hutchinson's estimate one, so their ratio
    grows about linearly with D: FFJORD's reason for the estimator. Returns
    ``{D: {"exact": s, "hutchinson": s}}``. CPU time (``time.process_time``) rather than wall
    time, so that other jobs on a shared machine do not blur the comparison.
    """
    _positive = lambda name, v: isinstance(v, int) and not isinstance(v, bool) and v >= 1  # noqa: E731
    if not all(_positive("dims", d) for d in dims) or not _positive("batch", batch) or not _positive("repeats", repeats):
        raise ValueError("dims, batch and repeats must be positive integers.")
    out = {}
    g = torch.Generator().manual_seed(seed)
    for dim in dims:
        torch.manual_seed(seed)
        field = ConcatTimeMLP(dim, hidden, 2)
        z = torch.randn(batch, dim, generator=g)
        e = torch.randn(batch, dim, generator=g)
        out[dim] = {}
        for estimator in ESTIMATORS:
            seconds = []
            for _ in range(repeats):
                start = time.process_time()
                zz = z.detach().requires_grad_(True)
                f = field(0.5, zz)
                exact_trace(f, zz) if estimator == "exact" else hutchinson_trace(f, zz, e)
                seconds.append(time.process_time() - start)
            out[dim][estimator] = sorted(seconds)[len(seconds) // 2]
    return out


# --------------------------------------------------------------------------------------------
# How good is a fit? The model's NLL against a Gaussian's and the data's own


def gaussian_fit_nll(x: torch.Tensor) -> float:
    """Mean NLL of the best single Gaussian fitted to the points ``x`` themselves: ½ log det(2πeΣ)."""
    x = _check_points(x, 2)
    cov = torch.cov(x.T.double())
    return 0.5 * float(torch.logdet(2 * math.pi * math.e * cov))


@dataclass
class FitReport:
    """Mean negative log-likelihoods (nats) of fresh points of one density.

    ``data_entropy`` is the data's own density's NLL on the same points (an estimate of its
    entropy, the lowest expected NLL any model can reach); ``gap = model_nll − data_entropy``
    estimates KL(p_data ‖ p_model), zero only for a perfect model.
    """

    name: str
    n: int
    model_nll: float
    nfe: int
    gaussian_nll: float
    data_entropy: float

    @property
    def gap(self) -> float:
        return self.model_nll - self.data_entropy


def fit_report(cnf: CNF, name: str, *, n: int = 500, seed: int = 2024) -> FitReport:
    """Score ``cnf`` on ``n`` fresh points of the density ``name`` (drawn from ``seed``), in the CNF's dtype."""
    if not isinstance(cnf, CNF):
        raise TypeError(f"cnf must be an odeteach.flows.CNF (e.g. pretrained('rings')); got {type(cnf).__name__}.")
    test = sample_density(name, n, seed=seed)
    with torch.no_grad():
        log_p, nfe = cnf.log_prob(test.to(cnf.dtype), return_nfe=True)
    return FitReport(name, n, -float(log_p.double().mean()), nfe, gaussian_fit_nll(test),
                     -float(log_density(name, test).mean()))


# --------------------------------------------------------------------------------------------
# Training by maximum likelihood


@dataclass
class TrainResult:
    cnf: CNF
    losses: list[float]         # mean negative log-likelihood per iteration (nats)
    nfe: list[int]              # forward NFE per iteration
    seconds: float


def train_cnf(data, *, iterations: int = 1000, batch: int = 256, lr: float = 3e-3, seed: int = 0,
              hidden: int = 64, layers: int = 3, rtol: float = 1e-5, atol: float = 1e-5,
              estimator: str = "exact", noise: str = "gaussian", cnf: CNF | None = None,
              progress: bool = True) -> TrainResult:
    """Fit a CNF to ``data`` (a name in ``DENSITIES`` or an ``(N, 2)`` tensor) by maximum likelihood.

    Each iteration draws a fresh batch (a new sample of the named density, or a random subset of
    the tensor), integrates ``(x, 0)`` from 0 to 1 and minimises ``−mean log p₀(x)`` with Adam
    (cosine-decayed learning rate). Gradients come by backpropagation through the solver.
    """
    for name, value in (("iterations", iterations), ("batch", batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number; got {lr!r}.")
    _check_estimator(estimator, noise)
    if isinstance(data, str):
        if data not in DENSITIES:
            raise ValueError(f"Unknown density {data!r}. Valid names: {', '.join(DENSITIES)}.")
        draw = lambda i: sample_density(data, batch, seed=seed * 100_003 + i)  # noqa: E731
    else:
        data = _check_points(data, 2, "data")
        pool = torch.Generator().manual_seed(seed)
        draw = lambda i: data[torch.randint(0, data.shape[0], (batch,), generator=pool)]  # noqa: E731
    torch.manual_seed(seed)
    if cnf is None:
        cnf = CNF(2, hidden, layers, rtol=rtol, atol=atol)
    optimizer = torch.optim.Adam(cnf.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, iterations, eta_min=lr / 20)
    noise_gen = torch.Generator().manual_seed(seed + 7)
    losses, nfes = [], []
    bar = progress_bar(range(iterations), desc="CNF training", enabled=progress)
    start = time.perf_counter()
    for i in bar:
        x = draw(i)
        log_p, nfe = cnf.log_prob(x, estimator=estimator, noise=noise, generator=noise_gen, return_nfe=True)
        loss = -log_p.mean()
        if not torch.isfinite(loss):
            raise SolverError(f"the loss became non-finite at iteration {i}; lower lr (now {lr}) or tighten rtol/atol.")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        nfes.append(nfe)
        bar.set_postfix(nll=f"{loss.item():.3f}", nfe=nfe)
    return TrainResult(cnf, losses, nfes, time.perf_counter() - start)


# --------------------------------------------------------------------------------------------
# Checkpoints


def save_checkpoint(cnf: CNF, path, **meta) -> Path:
    """Write the field's weights, its configuration and ``meta`` (numbers and strings) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone() for k, v in cnf.state_dict().items()}
    torch.save({"config": cnf.config(), "state_dict": state, "meta": dict(meta)}, path)
    return path


def load_checkpoint(path) -> tuple[CNF, dict]:
    """A CNF from a file written by :func:`save_checkpoint` (loaded with ``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}. Retrain with: python -m odeteach.train flows")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    config = dict(blob["config"])
    cnf = CNF(config.pop("dim"), config.pop("hidden"), config.pop("layers"), **config)
    cnf.load_state_dict(blob["state_dict"])
    cnf.eval()
    return cnf, dict(blob.get("meta", {}))


def pretrained(name: str) -> CNF:
    """The shipped CNF trained on the density ``name`` (``two_moons``, ``rings``, ``checkerboard``)."""
    if name not in DENSITIES:
        raise ValueError(f"Unknown density {name!r}. Valid names: {', '.join(DENSITIES)}.")
    return load_checkpoint(CHECKPOINT_DIR / f"flows_{name}.pt")[0]


# Iterations per data set for the shipped checkpoints (small, to train on a shared 2-core machine).
CHECKPOINT_ITERATIONS = {"two_moons": 800, "rings": 800, "checkerboard": 600}


def train_checkpoints(names=None, out_dir=CHECKPOINT_DIR) -> dict:
    """Retrain the shipped checkpoints from fixed seeds: ``python -m odeteach.train flows``."""
    names = list(DENSITIES) if names is None else list(names)
    report = {}
    for name in names:
        result = train_cnf(name, iterations=CHECKPOINT_ITERATIONS[name], seed=0)
        with torch.no_grad():
            test = sample_density(name, 2000, seed=12345)
            nll = -float(result.cnf.log_prob(test).mean())
        path = save_checkpoint(result.cnf, Path(out_dir) / f"flows_{name}.pt", dataset=name,
                               iterations=CHECKPOINT_ITERATIONS[name], seconds=round(result.seconds, 1),
                               test_nll=round(nll, 4), final_nfe=result.nfe[-1])
        report[name] = {"seconds": result.seconds, "test_nll": nll, "nfe": result.nfe[-1],
                        "bytes": path.stat().st_size}
        print(f"{name}: {CHECKPOINT_ITERATIONS[name]} iterations in {result.seconds:.0f} s, "
              f"test NLL {nll:.3f} nats, forward NFE {result.nfe[-1]}, {path} ({path.stat().st_size} bytes)")
    return report
