"""Two-dimensional target densities for continuous normalizing flows (lesson 6).

Each data set is drawn here from a seed, with no download: ``two_moons``, ``rings`` and
``checkerboard`` return a ``(n, 2)`` float tensor whose points lie roughly in ``[-4, 4]²``, the
box the lesson's density plots use. ``sample(name, n, seed)`` picks one by name.

The shapes follow the toy densities of FFJORD (Grathwohl et al., ICLR 2019, Fig. 2): two
interleaved half circles, concentric circles, and a 4×4 checkerboard of uniform squares.
"""

from __future__ import annotations

import math

import torch

__all__ = ["two_moons", "rings", "checkerboard", "sample", "DENSITIES", "BOX"]

# Every data set fits in [-BOX, BOX]² (up to its Gaussian noise), so one plotting box serves all.
BOX = 4.0


def _check(n, seed, noise=None) -> tuple[int, torch.Generator]:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n (the number of points) must be a positive integer; got {n!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer; got {seed!r}.")
    if noise is not None and (not isinstance(noise, (int, float)) or not math.isfinite(noise) or noise < 0):
        raise ValueError(f"noise must be a finite number ≥ 0; got {noise!r}.")
    return n, torch.Generator().manual_seed(seed)


def two_moons(n: int = 1000, *, noise: float = 0.1, seed: int = 0) -> torch.Tensor:
    """Two interleaved half circles of radius 1, scaled by 2 and centred, with Gaussian noise."""
    n, g = _check(n, seed, noise)
    upper = torch.rand(n, generator=g) < 0.5
    angle = math.pi * torch.rand(n, generator=g)
    x = torch.where(upper, torch.cos(angle), 1.0 - torch.cos(angle))
    y = torch.where(upper, torch.sin(angle), 0.5 - torch.sin(angle))
    points = torch.stack([x - 0.5, y - 0.25], dim=1) * 2.0
    return points + noise * 2.0 * torch.randn(n, 2, generator=g)


def rings(n: int = 1000, *, noise: float = 0.08, seed: int = 0, radii=(1.0, 2.0, 3.0)) -> torch.Tensor:
    """Concentric circles; each ring's share of the points is proportional to its length."""
    n, g = _check(n, seed, noise)
    radii = torch.as_tensor(radii, dtype=torch.float32)
    if radii.ndim != 1 or radii.numel() == 0 or not bool((radii > 0).all()):
        raise ValueError(f"radii must be a non-empty sequence of positive numbers; got {radii.tolist()}.")
    which = torch.multinomial(radii / radii.sum(), n, replacement=True, generator=g)
    angle = 2 * math.pi * torch.rand(n, generator=g)
    r = radii[which]
    points = torch.stack([r * torch.cos(angle), r * torch.sin(angle)], dim=1)
    return points + noise * torch.randn(n, 2, generator=g)


def checkerboard(n: int = 1000, *, seed: int = 0) -> torch.Tensor:
    """Uniform on the 8 dark squares of a 4×4 board of side 2 covering ``[-4, 4]²``."""
    n, g = _check(n, seed)
    x = 8 * torch.rand(n, generator=g) - 4                     # uniform across the board
    col = torch.floor((x + 4) / 2).clamp(max=3)                # its column, 0..3
    pair = torch.randint(0, 2, (n,), generator=g)              # lower or upper pair of rows
    # The square (col, row) is dark when col + row is even: the row has the column's parity.
    row = 2 * pair + col % 2
    y = -4 + 2 * row + 2 * torch.rand(n, generator=g)
    return torch.stack([x, y], dim=1)


DENSITIES = {"two_moons": two_moons, "rings": rings, "checkerboard": checkerboard}


def sample(name: str, n: int = 1000, *, seed: int = 0) -> torch.Tensor:
    """``n`` points of the data set ``name`` (one of ``DENSITIES``), drawn from ``seed``."""
    if name not in DENSITIES:
        raise ValueError(f"Unknown density {name!r}. Valid names: {', '.join(DENSITIES)}.")
    return DENSITIES[name](n, seed=seed)
