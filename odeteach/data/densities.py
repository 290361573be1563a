"""Two-dimensional target densities for continuous normalizing flows (lesson 6).

Each data set is drawn here from a seed, with no download: ``two_moons``, ``rings`` and
``checkerboard`` return a ``(n, 2)`` float tensor whose points lie roughly in ``[-4, 4]²``, the
box the lesson's density plots use. ``sample(name, n, seed)`` picks one by name, and
``log_density(name, x)`` is the true log-density of the points it draws (with the default
parameters), so a model's negative log-likelihood can be set against the lowest one possible:
the data's own entropy, ``−E log p_data``.

The shapes follow the toy densities of FFJORD (Grathwohl et al., ICLR 2019, Fig. 2): two
interleaved half circles, concentric circles, and a 4×4 checkerboard of uniform squares.
"""

from __future__ import annotations

import math

import torch

from ..validation import integer, positive_number

__all__ = ["two_moons", "rings", "checkerboard", "sample", "log_density", "entropy", "distance_to_support",
           "DENSITIES", "BOX", "MOONS_NOISE", "RINGS_NOISE", "RINGS_RADII", "ENTROPY_SEED"]

# Every data set fits in [-BOX, BOX]² (up to its Gaussian noise), so one plotting box serves all.
BOX = 4.0


def _check(n, seed, noise=None) -> tuple[int, torch.Generator]:
    n = integer("n (the number of points)", n, minimum=1)
    seed = integer("seed", seed)
    if noise is not None:
        positive_number("noise", noise, allow_zero=True)
    return n, torch.Generator().manual_seed(seed)


MOONS_NOISE, RINGS_NOISE, RINGS_RADII = 0.1, 0.08, (1.0, 2.0, 3.0)


def _moon_centres(angle: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The noise-free points of the upper and the lower moon at ``angle`` ∈ [0, π], each (k, 2),
    as :func:`two_moons` places them."""
    upper = torch.stack([torch.cos(angle) - 0.5, torch.sin(angle) - 0.25], dim=1) * 2.0
    lower = torch.stack([0.5 - torch.cos(angle), 0.25 - torch.sin(angle)], dim=1) * 2.0
    return upper, lower


def two_moons(n: int = 1000, *, noise: float = MOONS_NOISE, seed: int = 0) -> torch.Tensor:
    """Two interleaved half circles of radius 1, scaled by 2 and centred, with Gaussian noise."""
    n, g = _check(n, seed, noise)
    upper = torch.rand(n, generator=g) < 0.5
    angle = math.pi * torch.rand(n, generator=g)
    x = torch.where(upper, torch.cos(angle), 1.0 - torch.cos(angle))
    y = torch.where(upper, torch.sin(angle), 0.5 - torch.sin(angle))
    points = torch.stack([x - 0.5, y - 0.25], dim=1) * 2.0
    return points + noise * 2.0 * torch.randn(n, 2, generator=g)


def rings(n: int = 1000, *, noise: float = RINGS_NOISE, seed: int = 0, radii=RINGS_RADII) -> torch.Tensor:
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


def _log_moons(x: torch.Tensor, quadrature: int = 400) -> torch.Tensor:
    """Each moon: angle uniform on [0, π], then N(·, σ²I) with σ = 2 × noise; the angle integral by the midpoint rule."""
    sigma = 2.0 * MOONS_NOISE
    angle = (torch.arange(quadrature, dtype=torch.float64) + 0.5) * (math.pi / quadrature)
    centres = torch.cat(_moon_centres(angle))                               # (2k, 2): both moons
    sq = torch.cdist(x, centres).pow(2)                                     # (N, 2k)
    log_kernel = -sq / (2 * sigma ** 2) - math.log(2 * math.pi * sigma ** 2)
    return torch.logsumexp(log_kernel, dim=1) - math.log(2 * quadrature)   # each moon ½, each angle 1/k


def _log_rings(x: torch.Tensor) -> torch.Tensor:
    """Ring k (weight ∝ r_k), angle uniform: ∫ N(x; r u(θ), σ²I) dθ/2π = e^{−(|x|−r)²/2σ²} i0e(r|x|/σ²) / 2πσ²."""
    sigma = RINGS_NOISE
    radii = torch.tensor(RINGS_RADII, dtype=torch.float64)
    rho = x.norm(dim=1, keepdim=True)                                        # (N, 1)
    log_ring = (-(rho - radii) ** 2 / (2 * sigma ** 2) + torch.log(torch.special.i0e(radii * rho / sigma ** 2))
                - math.log(2 * math.pi * sigma ** 2))
    return torch.logsumexp(log_ring + torch.log(radii / radii.sum()), dim=1)


def _log_checkerboard(x: torch.Tensor) -> torch.Tensor:
    """1/32 on the 8 dark squares of area 4, 0 elsewhere (log: −inf)."""
    inside = (x.abs() <= 4).all(dim=1)
    col = torch.floor((x[:, 0] + 4) / 2).clamp(0, 3)
    row = torch.floor((x[:, 1] + 4) / 2).clamp(0, 3)
    dark = inside & ((col + row) % 2 == 0)
    return torch.where(dark, torch.full_like(x[:, 0], -math.log(32.0)), torch.full_like(x[:, 0], -math.inf))


_LOG_DENSITIES = {"two_moons": _log_moons, "rings": _log_rings, "checkerboard": _log_checkerboard}


def log_density(name: str, x: torch.Tensor) -> torch.Tensor:
    """log p_data(x) of the data set ``name`` drawn with its default parameters, in float64, one value per row.

    Exact for ``rings`` (a Bessel-function closed form) and ``checkerboard`` (1/32 on the dark
    squares, −inf off them); ``two_moons`` integrates over each moon's angle numerically (400
    midpoints, far finer than the noise). ``−log_density(name, sample(name, n)).mean()`` estimates the
    data's entropy: no model's expected negative log-likelihood can be lower.
    """
    if name not in DENSITIES:
        raise ValueError(f"Unknown density {name!r}. Valid names: {', '.join(DENSITIES)}.")
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"x must be a tensor of shape (N, 2); got {getattr(x, 'shape', type(x).__name__)}.")
    return _LOG_DENSITIES[name](x.detach().double())


# The Monte Carlo sample of :func:`entropy` (an even seed other than 0, so that no test sample shares it).
ENTROPY_SEED = 31_415_926


def entropy(name: str, n: int = 200_000, *, seed: int = ENTROPY_SEED, chunk: int = 20_000) -> tuple[float, float]:
    """The differential entropy H = −E log p_data(x) of the data set ``name``, in nats, and its standard error.

    A Monte Carlo mean of ``−log_density`` over ``n`` points drawn from ``seed`` (in chunks, to bound memory).
    For the checkerboard every point lies where p = 1/32, so the estimate is exactly log 32 = 3.4657 with
    standard error 0; for the rings and the two moons the standard error at the default n is about 0.002.
    """
    n = integer("n", n, minimum=2)
    values = torch.cat([-log_density(name, x) for x in sample(name, n, seed=seed).split(integer("chunk", chunk, minimum=1))])
    return float(values.mean()), float(values.std() / math.sqrt(n))


def _dark_square_centres() -> torch.Tensor:
    """The centres of the checkerboard's 8 dark squares (column + row even), each of side 2."""
    return torch.tensor([[-3.0 + 2 * c, -3.0 + 2 * r] for c in range(4) for r in range(4) if (c + r) % 2 == 0],
                        dtype=torch.float64)


def distance_to_support(name: str, x: torch.Tensor) -> torch.Tensor:
    """How far each row of ``x`` lies from the noise-free shape of ``name`` (float64, one value per row).

    ``rings``: from the nearest circle; ``two_moons``: from the nearest point of either half circle
    (400 points each); ``checkerboard``: from the nearest dark square, 0 on one. Lesson 6 counts how
    many of a model's samples land near the shape, against the data's own.
    """
    if name not in DENSITIES:
        raise ValueError(f"Unknown density {name!r}. Valid names: {', '.join(DENSITIES)}.")
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"x must be a tensor of shape (N, 2); got {getattr(x, 'shape', type(x).__name__)}.")
    x = x.detach().double()
    if name == "rings":
        return (x.norm(dim=1, keepdim=True) - torch.tensor(RINGS_RADII, dtype=torch.float64)).abs().min(dim=1).values
    if name == "two_moons":
        angle = torch.linspace(0.0, math.pi, 400, dtype=torch.float64)
        return torch.cdist(x, torch.cat(_moon_centres(angle))).min(dim=1).values
    outside = ((x.unsqueeze(1) - _dark_square_centres()).abs() - 1.0).clamp(min=0.0)    # (N, 8, 2)
    return outside.norm(dim=2).min(dim=1).values
