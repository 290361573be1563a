"""What lesson 6's explorers show, computed once: the flow's frames in time, a sampling-tolerance sweep and
the trace estimators' spread.

- :func:`flow_frames`: samples ``z(t)`` and the density ``p_t`` on a grid at a list of times
  (:class:`FlowFrames`). Each density frame is its own solve from its ``t`` to 1, with the exact trace
  computed by :class:`JacobianDynamics` (the field's Jacobian carried forward, no autograd).
- :func:`sampling_tolerance_sweep`: the same ``z(1)`` sampled at several tolerances against a float64
  reference (:class:`ToleranceSweep`).
- :func:`trace_estimator_study`: the log-likelihood of some points by the exact trace and, many times,
  by Hutchinson's estimate, and the CPU time of a training-style step for each (:class:`TraceStudy`).

The explorers in :mod:`odeteach.widgets.flows` only read these results.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..data.densities import BOX
from ..errors import SolverError
from ..integrate import solve
from ..validation import integer, positive_number
from .cnf import CNF, CNFDynamics, base_log_prob, check_points
from .evaluation import grid_points
from .field import ConcatTimeMLP

__all__ = ["check_cnf", "JacobianDynamics", "density_frames", "FlowFrames", "flow_frames", "TOLERANCES",
           "ToleranceSweep", "sampling_tolerance_sweep", "ESTIMATOR_CHOICES", "TraceStudy", "trace_estimator_study",
           "time_per_step"]


def check_cnf(cnf) -> CNF:
    """``cnf`` if it is a 2-D :class:`CNF` (the explorers draw the plane); else a clear error."""
    if not isinstance(cnf, CNF):
        raise TypeError(f"cnf must be an odeteach.flows.CNF (e.g. odeteach.flows.pretrained('two_moons')); "
                        f"got {type(cnf).__name__}.")
    if cnf.dim != 2:
        raise ValueError(f"lesson 6's explorers draw 2-D flows; this CNF has dim={cnf.dim}.")
    return cnf


# --------------------------------------------------------------------------------------------
# The density on a grid at many times


class JacobianDynamics:
    """``(z, Δ) ↦ (f(z, t), −tr ∂f/∂z)`` for a :class:`ConcatTimeMLP`, the Jacobian carried forward layer
    by layer: :class:`CNFDynamics` with the exact trace, for evaluation only (no gradients), without autograd.

    With ``h_k = tanh(W_k^h h_{k−1} + w_k^t t + b_k)`` (``W_k^h``: the columns of ``W_k`` that see ``h``,
    ``w_k^t`` the one that sees ``t``) the chain rule gives ``∂h_k/∂z = diag(1 − h_k²) W_k^h ∂h_{k−1}/∂z``,
    a ``width × D`` matrix per point. The trace is the sum of the last one's diagonal: the same number as
    :func:`odeteach.flows.exact_trace`, at about D + 1 forward passes and no graph, which suits a large grid.
    The weights are read once, when the dynamics is made.
    """

    def __init__(self, field: ConcatTimeMLP):
        if not isinstance(field, ConcatTimeMLP):
            raise TypeError(f"JacobianDynamics reads a ConcatTimeMLP's layers; got {type(field).__name__}.")
        with torch.no_grad():
            self.layers = [(lin.weight[:, :-1].T.contiguous(), lin.weight[:, -1].clone(), lin.bias.clone())
                           for lin in field.linears]
        self.evals = 0

    def field_and_trace(self, t, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``f(z, t)`` and ``tr ∂f/∂z`` for a batch ``z`` of shape ``(N, D)`` at one time ``t``."""
        t = float(t)
        n, dim = z.shape
        h, jac = z, None                       # jac[i, n, :] = ∂h/∂z_i at point n
        last = len(self.layers) - 1
        for k, (w_h, w_t, b) in enumerate(self.layers):
            h = torch.addmm(b + t * w_t, h, w_h)
            if jac is None:
                jac = w_h.unsqueeze(1).expand(dim, n, -1)
            else:
                jac = (jac.reshape(dim * n, -1) @ w_h).reshape(dim, n, -1)
            if k < last:
                h = torch.tanh(h)
                jac = jac * (1 - h * h)
        return h, sum(jac[i, :, i] for i in range(dim))

    def __call__(self, t, state):
        self.evals += 1
        f, trace = self.field_and_trace(t, state[0])
        return f, -trace


def density_frames(cnf: CNF, times, *, n: int = 40, box: float = BOX, rtol=None, atol=None):
    """log p_t on the grid of :func:`~odeteach.flows.grid_points` for every t in ``times`` (each in [0, 1]).

    Each frame is one solve of the grid from its own t to 1 (``log p_t(x) = log N(z(1)) − Δ(1)``), at the
    CNF's tolerance unless given: a frame close to 1 takes few steps. At t = 1 the density is N(0, I) and
    nothing is solved. Returns ``(centres, log_p, nfe)``: ``log_p`` of shape ``(len(times), n, n)`` (image
    layout, rows along y) and the NFE of each frame's solve.
    """
    check_cnf(cnf)
    times = [float(t) for t in np.asarray(times, dtype=float).ravel()]
    if not times or not all(0.0 <= t <= 1.0 for t in times):
        raise ValueError(f"times must be a non-empty list of times in [0, 1]; got {times[:8]}.")
    centres, points = grid_points(n, box)
    points = points.to(device=cnf.device, dtype=cnf.dtype)
    frames, nfe = [], []
    with torch.no_grad():
        for t in times:
            if t == 1.0:
                frames.append(base_log_prob(points))
                nfe.append(0)
                continue
            dynamics = JacobianDynamics(cnf.field) if isinstance(cnf.field, ConcatTimeMLP) else \
                CNFDynamics(cnf.field, "exact", None)
            solution = solve(dynamics, (points, torch.zeros(points.shape[0], dtype=points.dtype, device=points.device)),
                             torch.tensor([t, 1.0], dtype=points.dtype, device=points.device),
                             **cnf.solver_settings(rtol, atol))
            zs, deltas = solution.ys
            frames.append(base_log_prob(zs[-1]) - deltas[-1])
            nfe.append(solution.stats.nfe)
    return centres.to(cnf.dtype), torch.stack(frames).reshape(len(times), n, n), nfe


@dataclass
class FlowFrames:
    """The flow at ``times`` (from 1 down to 0): ``samples[k]`` are ``z(times[k])`` of the draws ``z(1) ~ N(0, I)``,
    ``sample_log_p[k]`` their log p_t; ``densities[k]`` is p_t on the grid with cell centres ``centres``.
    ``sample_nfe`` is the NFE of the one sampling solve, ``density_nfe`` the NFE of each density frame's solve."""

    times: np.ndarray
    samples: np.ndarray
    sample_log_p: np.ndarray
    sample_nfe: int
    centres: np.ndarray
    densities: np.ndarray
    density_nfe: tuple
    seconds: float


def flow_frames(cnf: CNF, *, n_samples: int = 1000, n_frames: int = 11, grid: int = 40, seed: int = 0) -> FlowFrames:
    """Samples and densities at ``n_frames`` equally spaced times from 1 to 0 (the time explorer's frames).

    Samples: ``n_samples`` draws (from ``seed``) integrated backwards once, with outputs at every frame.
    Densities: :func:`density_frames` on a ``grid × grid`` grid.
    """
    check_cnf(cnf)
    n_samples = integer("n_samples", n_samples, minimum=1)
    n_frames = integer("n_frames", n_frames, minimum=2)
    grid = integer("grid", grid, minimum=2)
    times = np.linspace(1.0, 0.0, n_frames)
    start = time.perf_counter()
    with torch.no_grad():
        result = cnf.sample(n_samples, seed=seed, times=torch.tensor(times, dtype=torch.float32))
    centres, log_p, density_nfe = density_frames(cnf, times, n=grid)
    return FlowFrames(times, result.zs.numpy(), result.log_p.numpy(), result.nfe, centres.numpy(),
                      log_p.exp().numpy(), tuple(density_nfe), time.perf_counter() - start)


# --------------------------------------------------------------------------------------------
# Sampling at several tolerances

# The tolerance explorer's stops (rtol = atol).
TOLERANCES = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 1e-5, 1e-6)


@dataclass
class ToleranceSweep:
    """The same ``z(1)`` sampled at each of ``tolerances``: ``samples[i]`` (NaN where the solver stopped),
    ``nfe[i]``, ``error[i]`` (the mean distance to ``reference``, sampled in float64 at ``reference_tol``) and
    ``failure[i]`` (the solver's message, or ``None``)."""

    tolerances: tuple
    reference_tol: float
    reference: np.ndarray
    samples: list
    nfe: list
    error: list
    failure: list


def sampling_tolerance_sweep(cnf: CNF, tolerances=TOLERANCES, *, n_samples: int = 500, reference_tol: float = 1e-9,
                             seed: int = 0) -> ToleranceSweep:
    """Sample ``n_samples`` draws ``z(1)`` (from ``seed``) at every tolerance, and once as a tight reference."""
    check_cnf(cnf)
    n_samples = integer("n_samples", n_samples, minimum=1)
    reference_tol = positive_number("reference_tol", reference_tol)
    try:
        tolerances = tuple(float(t) for t in tolerances)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"tolerances must be a list of numbers in (0, 1); got {tolerances!r}.") from exc
    if not tolerances or any(not (0 < t < 1) for t in tolerances):
        raise ValueError(f"tolerances must be numbers in (0, 1); got {tolerances}.")
    z1 = torch.randn(n_samples, 2, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        reference = copy.deepcopy(cnf).double().sample(z1=z1.double(), with_log_p=False, rtol=reference_tol,
                                                       atol=reference_tol).zs[-1].numpy()
        sweep = ToleranceSweep(tolerances, reference_tol, reference, [], [], [], [])
        for tol in tolerances:
            try:
                res = cnf.sample(z1=z1, with_log_p=False, rtol=tol, atol=tol)
            except SolverError as exc:   # kept as the explorer's message at this stop
                sweep.samples.append(np.full((n_samples, 2), np.nan))
                sweep.nfe.append(0)
                sweep.error.append(np.nan)
                sweep.failure.append(str(exc))
                continue
            x = res.zs[-1].double().numpy()
            sweep.samples.append(x)
            sweep.nfe.append(res.nfe)
            sweep.error.append(float(np.linalg.norm(x - reference, axis=1).mean()))
            sweep.failure.append(None)
    return sweep


# --------------------------------------------------------------------------------------------
# Exact trace against Hutchinson's estimate

ESTIMATOR_CHOICES = {
    "exact trace": ("exact", "gaussian"),
    "Hutchinson, Gaussian ε": ("hutchinson", "gaussian"),
    "Hutchinson, Rademacher ε": ("hutchinson", "rademacher"),
}


def time_per_step(cnf: CNF, x: torch.Tensor, estimator: str, noise: str, repeats: int) -> float:
    """Median CPU seconds (``time.process_time``) per solver step of a training-style solve, forward and backward."""
    seconds = []
    for r in range(repeats):
        cnf.zero_grad()
        start = time.process_time()
        zs, deltas, sol = cnf.flow(x, torch.tensor([0.0, 1.0]), estimator=estimator, noise=noise,
                                   generator=torch.Generator().manual_seed(r))
        loss = -(base_log_prob(zs[-1]) - deltas[-1]).mean()
        loss.backward()
        seconds.append((time.process_time() - start) / sol.stats.n_steps)
    cnf.zero_grad()
    return float(np.median(seconds))


@dataclass
class TraceStudy:
    """For each choice of :data:`ESTIMATOR_CHOICES`: ``estimates[label]`` of shape ``(repeats, N)`` (the exact
    trace repeats its one value), ``nfe[label]`` and ``seconds_per_step[label]``; ``exact`` is log p(x) by the
    exact trace."""

    exact: np.ndarray
    estimates: dict
    nfe: dict
    seconds_per_step: dict

    def stats(self, label: str) -> dict:
        """Spread of the estimates for one choice: per-point std, std of the batch mean, bias, cost."""
        if label not in self.estimates:
            raise ValueError(f"Unknown estimator choice {label!r}. Valid: {', '.join(self.estimates)}.")
        diff = self.estimates[label] - self.exact
        return {"std_per_point": float(diff.std(axis=0, ddof=1).mean()),
                "std_of_mean": float(diff.mean(axis=1).std(ddof=1)),
                "bias": float(diff.mean()),
                "seconds_per_step": self.seconds_per_step[label],
                "nfe": self.nfe[label]}


def trace_estimator_study(cnf: CNF, points: torch.Tensor, *, repeats: int = 50, timing_repeats: int = 3,
                          seed: int = 0) -> TraceStudy:
    """log p(x) of ``points`` by the exact trace once, and ``repeats`` times by each Hutchinson choice (one
    solve of all ``N × repeats`` copies, each with its own ε from ``seed``); and each choice's time per step."""
    check_cnf(cnf)
    repeats = integer("repeats", repeats, minimum=2)
    timing_repeats = integer("timing_repeats", timing_repeats, minimum=1)
    points = check_points(points, 2, "points").float()
    n = len(points)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        exact, exact_nfe = cnf.log_prob(points, return_nfe=True)
    study = TraceStudy(exact.numpy(), {}, {}, {})
    for label, (estimator, noise) in ESTIMATOR_CHOICES.items():
        if estimator == "exact":
            study.estimates[label] = np.broadcast_to(study.exact, (repeats, n)).copy()
            study.nfe[label] = exact_nfe
        else:
            with torch.no_grad():
                est, nfe = cnf.log_prob(points.repeat(repeats, 1), estimator=estimator, noise=noise,
                                        generator=gen, return_nfe=True)
            study.estimates[label] = est.reshape(repeats, n).numpy()
            study.nfe[label] = nfe
        study.seconds_per_step[label] = time_per_step(cnf, points, estimator, noise, timing_repeats)
    return study
