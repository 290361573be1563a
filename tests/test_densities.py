"""The 2-D target densities of lesson 6: shapes, seeds, geometry, bad input."""

import math

import pytest
import torch

from odeteach.data.densities import BOX, DENSITIES, checkerboard, distance_to_support, log_density, rings, sample, two_moons


@pytest.mark.parametrize("name", list(DENSITIES))
def test_shape_dtype_and_box(name):
    x = sample(name, 3000, seed=1)
    assert x.shape == (3000, 2)
    assert x.dtype == torch.float32
    assert torch.isfinite(x).all()
    # Up to Gaussian noise every set fits the plotting box; almost all points lie inside it.
    inside = (x.abs() <= BOX).all(dim=1).float().mean()
    assert inside > 0.995


@pytest.mark.parametrize("name", list(DENSITIES))
def test_seeded_and_reproducible(name):
    assert torch.equal(sample(name, 500, seed=3), sample(name, 500, seed=3))
    assert not torch.equal(sample(name, 500, seed=3), sample(name, 500, seed=4))


def test_two_moons_geometry():
    x = two_moons(20000, noise=0.0, seed=0)
    # Noise-free points lie on two circles of radius 2 centred at (-1, -0.5) and (1, 0.5).
    d_upper = ((x - torch.tensor([-1.0, -0.5])).norm(dim=1) - 2).abs()
    d_lower = ((x - torch.tensor([1.0, 0.5])).norm(dim=1) - 2).abs()
    assert torch.minimum(d_upper, d_lower).max() < 1e-5
    upper = d_upper < 1e-5
    assert abs(upper.float().mean().item() - 0.5) < 0.02       # two moons, equal weight
    assert (x[upper, 1] >= -0.5 - 1e-5).all()                   # the upper moon is the top half of its circle


def test_rings_radii_and_weights():
    x = rings(30000, noise=0.0, seed=0)
    r = x.norm(dim=1)
    for radius, share in ((1.0, 1 / 6), (2.0, 2 / 6), (3.0, 3 / 6)):
        on = (r - radius).abs() < 1e-4
        assert abs(on.float().mean().item() - share) < 0.015
    assert ((r - 1).abs() < 1e-4).logical_or((r - 2).abs() < 1e-4).logical_or((r - 3).abs() < 1e-4).all()


def test_checkerboard_only_dark_squares_uniform():
    x = checkerboard(40000, seed=0)
    col = torch.floor((x[:, 0] + 4) / 2).long()
    row = torch.floor((x[:, 1] + 4) / 2).long()
    assert ((col + row) % 2 == 0).all()                         # dark squares only
    counts = torch.bincount(col * 4 + row, minlength=16).float()
    dark = counts[counts > 0]
    assert len(dark) == 8
    # Each of the 8 squares holds 1/8 of the points (binomial sd ≈ 0.0017).
    assert ((dark / len(x) - 1 / 8).abs() < 0.01).all()


@pytest.mark.parametrize("bad", [0, -3, 2.5, "10", True])
def test_bad_n(bad):
    with pytest.raises(ValueError, match="n"):
        two_moons(bad)


def test_bad_name_seed_noise():
    with pytest.raises(ValueError, match="Valid names"):
        sample("spiral", 10)
    with pytest.raises(ValueError, match="seed"):
        rings(10, seed=1.5)
    with pytest.raises(ValueError, match="noise"):
        two_moons(10, noise=math.nan)
    with pytest.raises(ValueError, match="radii"):
        rings(10, radii=(1.0, -2.0))


# --------------------------------------------------------------------------------------------
# The data's own log-density (the lower bound of lesson 6's NLL comparison)


def _grid(n, box):
    step = 2 * box / n
    centres = torch.linspace(-box + step / 2, box - step / 2, n, dtype=torch.float64)
    gy, gx = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1), step ** 2


@pytest.mark.parametrize("name", list(DENSITIES))
def test_log_density_is_a_density_that_matches_the_sampler(name):
    """∫ p = 1 on a grid, and p gives two regions the probability that 20000 samples give them (within 4 SE)."""
    points, cell = _grid(120, 6.0)
    p = log_density(name, points).exp()
    assert abs(float(p.sum() * cell) - 1) < 2e-3
    x = sample(name, 20000, seed=7).double()
    assert torch.isfinite(log_density(name, x[:2000])).all()   # every sample lies where p > 0
    for region in (lambda z: z.norm(dim=1) < 1.7, lambda z: z[:, 1] > 0.3 * z[:, 0] + 0.5):
        want = float(p[region(points)].sum() * cell)
        got = float(region(x).double().mean())
        se = math.sqrt(want * (1 - want) / len(x))
        assert abs(got - want) < 4 * se + 2e-3, (got, want)    # + the grid's own error


def test_log_density_closed_forms():
    # Checkerboard: uniform 1/32 on the dark squares, nothing on the light ones.
    lp = log_density("checkerboard", torch.tensor([[-3.0, -3.0], [-1.0, -3.0], [0.5, 0.5], [4.5, 0.0]]))
    assert torch.allclose(lp[[0, 2]], torch.full((2,), -math.log(32), dtype=torch.float64))
    assert torch.isinf(lp[[1, 3]]).all()
    # Rings: the Bessel closed form equals the mixture over angles summed numerically.
    x = torch.tensor([[0.0, 0.0], [1.02, 0.1], [0.0, 2.3], [-2.1, -2.0], [5.0, 1.0]], dtype=torch.float64)
    angle = (torch.arange(4000, dtype=torch.float64) + 0.5) * (2 * math.pi / 4000)
    unit = torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    sigma, dens = 0.08, torch.zeros(len(x), dtype=torch.float64)
    for r, w in ((1.0, 1 / 6), (2.0, 2 / 6), (3.0, 3 / 6)):
        sq = torch.cdist(x, r * unit).pow(2)
        dens += w * torch.exp(-sq / (2 * sigma ** 2)).mean(1) / (2 * math.pi * sigma ** 2)
    assert torch.allclose(log_density("rings", x).exp(), dens, rtol=1e-8, atol=1e-300)


def test_log_density_bad_input():
    with pytest.raises(ValueError, match="Valid names"):
        log_density("spiral", torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        log_density("rings", torch.zeros(3))


def test_distance_to_support():
    pts = torch.tensor([[0.0, 2.1], [0.0, 0.0], [2.5, 0.0]])
    assert torch.allclose(distance_to_support("rings", pts), torch.tensor([0.1, 1.0, 0.5], dtype=torch.float64))
    board = torch.tensor([[-3.0, -3.0], [-1.0, -3.0], [-1.5, -3.0], [4.5, -1.0], [4.5, 4.5]])
    # on a dark square; centre of a light one (1 from two dark ones); 0.5 into a light one; beyond the board
    want = torch.tensor([0.0, 1.0, 0.5, 0.5, math.hypot(0.5, 0.5)], dtype=torch.float64)
    assert torch.allclose(distance_to_support("checkerboard", board), want)
    moons = two_moons(500, noise=0.0, seed=2)
    assert distance_to_support("two_moons", moons).max() < 0.02          # the noise-free points lie on the arcs
    assert abs(distance_to_support("two_moons", torch.tensor([[-1.0, 3.5]])).item() - 2.0) < 1e-3   # 2 above the top
    assert (distance_to_support("checkerboard", checkerboard(2000, seed=3)) == 0).all()
    with pytest.raises(ValueError, match="Valid names"):
        distance_to_support("spiral", pts)
