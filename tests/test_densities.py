"""The 2-D target densities of lesson 6: shapes, seeds, geometry, bad input."""

import math

import pytest
import torch

from odeteach.data.densities import BOX, DENSITIES, checkerboard, rings, sample, two_moons


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
