"""Noisy 2-D spirals, sampled irregularly: the data set of the paper's latent-ODE experiment.

After Chen et al. (2018), section 5.1: a thousand 2-D spirals, half turning clockwise and half
counter-clockwise, each starting at a different point along the curve, observed at a random
subset of times and with Gaussian noise. Every spiral here is an Archimedean spiral

    θ(t) = θ₀ + ω t,      r(t) = a + b θ(t),      x(t) = r(t) (cos θ(t), ±sin θ(t)),

(+ counter-clockwise, − clockwise) on a regular grid of ``n_grid`` times over the observed
window ``[0, t_observed]``, followed by a separate **extrapolation window** of ``n_extrapolate``
further times at the same spacing. A model sees a subset of the window's points (30, 50 or 100
of 100) and is scored on the extrapolation window, which it never sees.

Everything is generated from a seed; nothing is downloaded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..validation import integer, positive_number

__all__ = ["Spirals", "make_spirals", "subsample", "observe", "PLACEMENTS", "OBSERVED_COUNTS"]

# The paper's Table 2 columns: how many of the window's 100 points a model observes.
OBSERVED_COUNTS = (30, 50, 100)
# How the observed points are placed in the window (the widget offers all three).
PLACEMENTS = ("uniform", "random", "bunched")

# Shape of the spirals: radius a + b θ, turning at ω radians per unit time. With θ₀ drawn from
# [THETA0_LOW, THETA0_HIGH] the radius stays between about 0.6 and 2.5 over both windows.
RADIUS_A = 0.3
RADIUS_B = 0.1
OMEGA = math.pi          # half a turn per unit time: the observed window [0, 2] is one full turn
THETA0_LOW = math.pi
THETA0_HIGH = 4 * math.pi


@dataclass(frozen=True)
class Spirals:
    """A set of spirals on a shared time grid.

    ``t`` (n_grid,) are the observed window's times, ``t_extrapolate`` (n_extrapolate,) the
    times after it. ``x`` (N, n_grid, 2) and ``x_extrapolate`` (N, n_extrapolate, 2) are the
    noisy observations; ``clean`` and ``clean_extrapolate`` the noise-free spirals.
    ``clockwise`` (N,) is a bool tensor and ``theta0`` (N,) the starting angles.
    """

    t: torch.Tensor
    x: torch.Tensor
    clean: torch.Tensor
    t_extrapolate: torch.Tensor
    x_extrapolate: torch.Tensor
    clean_extrapolate: torch.Tensor
    clockwise: torch.Tensor
    theta0: torch.Tensor
    noise_std: float

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, index) -> "Spirals":
        """A subset of the spirals (an int, a slice, or an index tensor), on the same grid."""
        if isinstance(index, int):
            if not -len(self) <= index < len(self):
                raise IndexError(f"spiral index {index} is out of range for {len(self)} spirals.")
            index = slice(index % len(self), index % len(self) + 1)
        return Spirals(self.t, self.x[index], self.clean[index], self.t_extrapolate, self.x_extrapolate[index],
                       self.clean_extrapolate[index], self.clockwise[index], self.theta0[index], self.noise_std)

    def split(self, n_train: int) -> tuple["Spirals", "Spirals"]:
        """The first ``n_train`` spirals and the rest (the held-out set)."""
        if not 0 < n_train < len(self):
            raise ValueError(f"n_train must be between 1 and {len(self) - 1}; got {n_train}.")
        return self[:n_train], self[n_train:]


def _positions(theta: torch.Tensor, clockwise: torch.Tensor) -> torch.Tensor:
    r = RADIUS_A + RADIUS_B * theta
    sign = torch.where(clockwise, -1.0, 1.0).to(theta.dtype)
    return torch.stack((r * torch.cos(theta), sign[:, None] * r * torch.sin(theta)), dim=-1)


def make_spirals(n: int = 1000, *, n_grid: int = 100, n_extrapolate: int = 50, t_observed: float = 2.0,
                 noise_std: float = 0.1, seed: int = 0, theta0_range: tuple[float, float] = (THETA0_LOW, THETA0_HIGH),
                 dtype=torch.float32) -> Spirals:
    """``n`` noisy spirals, half clockwise (the odd-numbered ones, in shuffled order).

    ``n_grid`` times evenly span ``[0, t_observed]``; ``n_extrapolate`` more follow at the same
    spacing. ``noise_std`` is the standard deviation of the Gaussian noise on each coordinate.
    Each spiral starts at an angle θ₀ drawn uniformly from ``theta0_range`` (radians).
    The same ``seed`` gives the same spirals.
    """
    n, n_grid = integer("n", n, minimum=1), integer("n_grid", n_grid, minimum=2)
    n_extrapolate = integer("n_extrapolate", n_extrapolate, minimum=0)
    t_observed = positive_number("t_observed", t_observed)
    noise_std = positive_number("noise_std", noise_std, allow_zero=True)
    low, high = (positive_number("theta0_range[0]", theta0_range[0], allow_zero=True),
                 positive_number("theta0_range[1]", theta0_range[1], allow_zero=True))
    if not low <= high:
        raise ValueError(f"theta0_range must be (low, high) with low <= high; got {tuple(theta0_range)}.")
    gen = torch.Generator().manual_seed(int(seed))
    dt = t_observed / (n_grid - 1)
    t_all = torch.arange(n_grid + n_extrapolate, dtype=torch.float64) * dt
    clockwise = torch.zeros(n, dtype=torch.bool)
    clockwise[1::2] = True  # exactly half (rounded down) turn clockwise ...
    clockwise = clockwise[torch.randperm(n, generator=gen)]  # ... in random order
    theta0 = low + (high - low) * torch.rand(n, generator=gen, dtype=torch.float64)
    clean = _positions(theta0[:, None] + OMEGA * t_all[None, :], clockwise)
    noisy = clean + noise_std * torch.randn(clean.shape, generator=gen, dtype=torch.float64)
    cast = lambda a: a.to(dtype)  # noqa: E731
    return Spirals(cast(t_all[:n_grid]), cast(noisy[:, :n_grid]), cast(clean[:, :n_grid]), cast(t_all[n_grid:]),
                   cast(noisy[:, n_grid:]), cast(clean[:, n_grid:]), clockwise, cast(theta0), float(noise_std))


def subsample(n_grid: int, n_observed: int, placement: str = "random", *, generator: torch.Generator | None = None,
              batch: int | None = None) -> torch.Tensor:
    """Sorted indices of ``n_observed`` of the ``n_grid`` window points.

    ``placement``: ``"uniform"`` (evenly spread, no randomness), ``"random"`` (a uniformly random
    subset) or ``"bunched"`` (random points crowded into two short bursts, leaving long gaps).
    With ``batch`` the result has shape ``(batch, n_observed)``, one draw per row.
    """
    if placement not in PLACEMENTS:
        raise ValueError(f"Unknown placement {placement!r}. Valid placements: {', '.join(PLACEMENTS)}.")
    n_observed = integer("n_observed", n_observed, minimum=1, maximum=n_grid)
    rows = 1 if batch is None else batch
    if placement == "uniform":
        idx = torch.linspace(0, n_grid - 1, n_observed).round().long()
        out = idx.expand(rows, n_observed).clone()
    elif placement == "random":
        out = torch.rand(rows, n_grid, generator=generator).argsort(dim=1)[:, :n_observed].sort(dim=1).values
    else:
        # Two bursts at random centres, each just wide enough (± 2 widths) to hold about two thirds
        # of the points: points near a centre get a much higher weight, so the subset crowds there.
        grid = torch.arange(n_grid, dtype=torch.float64)
        centres = torch.rand(rows, 2, generator=generator, dtype=torch.float64) * (n_grid - 1)
        width = max(1.0, n_observed / 6)
        weight = sum(torch.exp(-0.5 * ((grid[None] - centres[:, k:k + 1]) / width) ** 2) for k in range(2)) + 1e-3
        keys = torch.rand(rows, n_grid, generator=generator, dtype=torch.float64) ** (1 / weight)  # weighted sampling
        out = keys.argsort(dim=1, descending=True)[:, :n_observed].sort(dim=1).values
    return out[0] if batch is None else out


def observe(spirals: Spirals, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The observed times and points: ``indices`` (N, n) or (n,) -> times (N, n), points (N, n, 2)."""
    indices = torch.as_tensor(indices)
    if indices.ndim == 1:
        indices = indices.expand(len(spirals), -1)
    if indices.shape[0] != len(spirals):
        raise ValueError(f"indices has {indices.shape[0]} rows but there are {len(spirals)} spirals.")
    times = spirals.t[indices]
    points = torch.gather(spirals.x, 1, indices[..., None].expand(-1, -1, 2))
    return times, points
