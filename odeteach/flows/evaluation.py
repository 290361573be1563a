"""How a flow is looked at and scored: densities on a grid, the cost of a trace, and the fit against the data.

:func:`log_prob_frames` evaluates ``log p_t`` on a grid for many ``t`` in one solve (the time explorer's
frames); :func:`trace_cost` times the exact trace against Hutchinson's estimate; :func:`fit_report` sets a
model's negative log-likelihood against the best Gaussian's and the data's own entropy.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from ..data.densities import BOX, DENSITIES, entropy, log_density, sample as sample_density
from ..integrate import solve
from ..validation import integer, positive_number
from .cnf import ESTIMATORS, CNF, CNFDynamics, base_log_prob, check_points, exact_trace, hutchinson_trace
from .field import ConcatTimeMLP

__all__ = ["grid_points", "log_prob_frames", "log_prob_grid", "grid_mass", "trace_cost", "gaussian_fit_nll",
           "FitReport", "fit_report", "TEST_SEED", "N_TEST", "ENTROPY_POINTS", "GAP_TARGETS", "test_points",
           "nll_table"]

# The test points every score uses: N_TEST fresh points per density from TEST_SEED, a seed beyond every shipped
# run's batch seeds (odeteach.flows.training.training_seed; checked in tests/test_flow_scores.py).
TEST_SEED = 12345
N_TEST = 5000
# Points of the data's own density behind each entropy estimate (standard error about 0.002 nats).
ENTROPY_POINTS = 200_000
# How close to the data's entropy each shipped CNF's test NLL should come (issue 12's targets), in nats.
GAP_TARGETS = {"two_moons": 0.05, "rings": 0.10, "checkerboard": 0.15}


def test_points(name: str, n: int = N_TEST) -> torch.Tensor:
    """The held-out test sample of the density ``name``: ``n`` points from :data:`TEST_SEED`."""
    return sample_density(name, integer("n", n, minimum=1), seed=TEST_SEED)


# --------------------------------------------------------------------------------------------
# Densities on a grid


def grid_points(n: int = 80, box: float = BOX) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell centres of an ``n × n`` grid over ``[-box, box]²``: ``(centres, points (n², 2))``.

    Point ``i * n + j`` is ``(centres[j], centres[i])``, so ``values.reshape(n, n)`` is an image
    with rows along y (``imshow(..., origin="lower")``).
    """
    n = integer("n (grid points per side)", n, minimum=2)
    box = positive_number("box", box)
    step = 2 * box / n
    centres = torch.linspace(-box + step / 2, box - step / 2, n)
    grid_y, grid_x = torch.meshgrid(centres, centres, indexing="ij")
    return centres, torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=1)


class _FromStartTime(nn.Module):
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
    ``(centres, log_p, nfe)`` with ``log_p`` of shape ``(len(times), n, n)``.
    """
    times = torch.as_tensor(times, dtype=cnf.dtype).flatten()
    if times.numel() == 0 or not bool(((times >= 0) & (times <= 1)).all()):
        raise ValueError(f"times must be a non-empty list of times in [0, 1]; got {times.tolist()[:8]}.")
    centres, points = grid_points(n, box)
    centres, points = centres.to(cnf.dtype), points.to(device=cnf.device, dtype=cnf.dtype)
    frames = times.numel()
    starts = times.to(cnf.device).repeat_interleave(points.shape[0])
    x = points.repeat(frames, 1)
    dynamics = CNFDynamics(_FromStartTime(cnf.field, starts), "exact", None)
    with torch.no_grad():
        solution = solve(dynamics, (x, torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)),
                         torch.tensor([0.0, 1.0], dtype=x.dtype, device=x.device), **cnf.solver_settings(rtol, atol))
    zs, deltas = solution.ys
    log_p = (base_log_prob(zs[-1]) - deltas[-1]).reshape(frames, n, n)
    return centres, log_p, solution.stats.nfe


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


# --------------------------------------------------------------------------------------------
# What a trace costs


def trace_cost(dims=(2, 8, 32, 128), *, batch: int = 256, hidden: int = 64, repeats: int = 5, seed: int = 0) -> dict:
    """Median CPU seconds for one evaluation of ``f`` and its trace, exact against Hutchinson, per dimension D.

    The exact trace takes D backward passes and Hutchinson's estimate one, so their ratio
    grows about linearly with D: FFJORD's reason for the estimator. Returns
    ``{D: {"exact": seconds, "hutchinson": seconds}}``. CPU time (``time.process_time``) rather than wall
    time, so that other jobs on a shared machine do not blur the comparison.
    """
    dims = [integer("each of dims", dim, minimum=1) for dim in dims]
    batch, repeats = integer("batch", batch, minimum=1), integer("repeats", repeats, minimum=1)
    cost = {}
    generator = torch.Generator().manual_seed(seed)
    for dim in dims:
        torch.manual_seed(seed)
        field = ConcatTimeMLP(dim, hidden, 2)
        z = torch.randn(batch, dim, generator=generator)
        e = torch.randn(batch, dim, generator=generator)
        cost[dim] = {}
        for estimator in ESTIMATORS:
            seconds = []
            for _ in range(repeats):
                start = time.process_time()
                z_leaf = z.detach().requires_grad_(True)
                f = field(0.5, z_leaf)
                exact_trace(f, z_leaf) if estimator == "exact" else hutchinson_trace(f, z_leaf, e)
                seconds.append(time.process_time() - start)
            cost[dim][estimator] = sorted(seconds)[len(seconds) // 2]
    return cost


# --------------------------------------------------------------------------------------------
# How good is a fit? The model's NLL against a Gaussian's and the data's own


def gaussian_fit_nll(x: torch.Tensor) -> float:
    """Mean NLL of the best single Gaussian fitted to the points ``x`` themselves: ½ log det(2πeΣ)."""
    x = check_points(x, 2)
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


def fit_report(cnf: CNF, name: str, *, n: int = 500, seed: int = TEST_SEED) -> FitReport:
    """Score ``cnf`` on ``n`` fresh points of the density ``name`` (drawn from ``seed``), in the CNF's dtype."""
    if not isinstance(cnf, CNF):
        raise TypeError(f"cnf must be an odeteach.flows.CNF (e.g. pretrained('rings')); got {type(cnf).__name__}.")
    test = sample_density(name, n, seed=seed)
    with torch.no_grad():
        log_p, nfe = cnf.log_prob(test.to(device=cnf.device, dtype=cnf.dtype), return_nfe=True)
    return FitReport(name, n, -float(log_p.double().mean()), nfe, gaussian_fit_nll(test),
                     -float(log_density(name, test).mean()))


def nll_table(cnfs: dict, *, n: int = N_TEST, entropy_points: int = ENTROPY_POINTS) -> dict:
    """Each CNF's test NLL against its data's entropy: ``{name: {"test_nll", "entropy", "entropy_se", "gap",
    "paired_gap", "paired_gap_se", "target", "nfe"}}``, in nats.

    ``cnfs`` maps density names to CNFs. ``test_nll`` is the mean −log p_model over :func:`test_points`;
    ``entropy`` is :func:`odeteach.data.densities.entropy` (a Monte Carlo mean over ``entropy_points`` other
    points, with its standard error); ``gap = test_nll − entropy``, judged against :data:`GAP_TARGETS`.
    ``paired_gap`` is the mean of log p_data − log p_model over the same test points, an estimate of
    KL(p_data ‖ p_model) with a smaller standard error than ``gap``'s.
    """
    table = {}
    for name, cnf in cnfs.items():
        if name not in DENSITIES:
            raise ValueError(f"Unknown density {name!r}. Valid names: {', '.join(DENSITIES)}.")
        if not isinstance(cnf, CNF):
            raise TypeError(f"cnfs[{name!r}] must be an odeteach.flows.CNF; got {type(cnf).__name__}.")
        test = test_points(name, n)
        with torch.no_grad():
            log_p, nfe = cnf.log_prob(test.to(device=cnf.device, dtype=cnf.dtype), return_nfe=True)
        log_p = log_p.double().cpu()
        paired = log_density(name, test) - log_p
        h, h_se = entropy(name, entropy_points)
        test_nll = -float(log_p.mean())
        table[name] = {"test_nll": test_nll, "entropy": h, "entropy_se": h_se, "gap": test_nll - h,
                       "paired_gap": float(paired.mean()), "paired_gap_se": float(paired.std() / math.sqrt(len(paired))),
                       "target": GAP_TARGETS[name], "nfe": int(nfe)}
    return table
