"""The spiral data set (odeteach.data.spirals): shapes, geometry, reproducibility, subsampling."""

import math

import pytest
import torch

from odeteach.data.spirals import (OBSERVED_COUNTS, PLACEMENTS, RADIUS_A, RADIUS_B, make_spirals, observe,
                                   subsample)


@pytest.fixture(scope="module")
def spirals():
    return make_spirals(1000, seed=0)


def test_shapes_and_grid(spirals):
    assert len(spirals) == 1000
    assert spirals.x.shape == spirals.clean.shape == (1000, 100, 2)
    assert spirals.x_extrapolate.shape == spirals.clean_extrapolate.shape == (1000, 50, 2)
    dt = torch.diff(torch.cat([spirals.t, spirals.t_extrapolate]))
    assert spirals.t[0] == 0 and spirals.t[-1] == pytest.approx(2.0)
    assert torch.allclose(dt, torch.full_like(dt, 2.0 / 99), atol=1e-6)  # one regular grid through both windows
    assert spirals.t_extrapolate[0] > spirals.t[-1]


def test_half_clockwise_and_turning_the_right_way(spirals):
    assert int(spirals.clockwise.sum()) == 500
    # The signed area swept (x dy − y dx) is positive counter-clockwise and negative clockwise.
    c = spirals.clean
    swept = (c[:, :-1, 0] * torch.diff(c[:, :, 1]) - c[:, :-1, 1] * torch.diff(c[:, :, 0])).sum(dim=1)
    assert torch.equal(swept < 0, spirals.clockwise)


def test_clean_spirals_are_archimedean(spirals):
    # r(t) = a + b θ(t) grows linearly in t with slope b ω = 0.1 π for every spiral.
    r = spirals.clean.norm(dim=-1)
    slope = torch.diff(r, dim=1) / torch.diff(spirals.t)
    assert torch.allclose(slope, torch.full_like(slope, RADIUS_B * math.pi), rtol=1e-3)
    assert torch.allclose(r[:, 0], RADIUS_A + RADIUS_B * spirals.theta0, rtol=1e-5)


@pytest.mark.parametrize("noise_std", [0.0, 0.1, 0.3])
def test_noise_level_is_the_argument(noise_std):
    s = make_spirals(400, noise_std=noise_std, seed=3)
    residual = torch.cat([(s.x - s.clean).flatten(), (s.x_extrapolate - s.clean_extrapolate).flatten()])
    assert float(residual.std()) == pytest.approx(noise_std, rel=0.03, abs=1e-12)


def test_seed_reproduces_and_changes():
    a, b, c = make_spirals(50, seed=1), make_spirals(50, seed=1), make_spirals(50, seed=2)
    assert torch.equal(a.x, b.x) and torch.equal(a.clockwise, b.clockwise)
    assert not torch.allclose(a.x, c.x)


def test_split(spirals):
    train, test = spirals.split(800)
    assert len(train) == 800 and len(test) == 200
    assert torch.equal(test.x[0], spirals.x[800])
    with pytest.raises(ValueError, match="n_train"):
        spirals.split(1000)


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("n", OBSERVED_COUNTS + (1, 7))
def test_subsample_sorted_distinct(placement, n):
    gen = torch.Generator().manual_seed(0)
    idx = subsample(100, n, placement, generator=gen, batch=8)
    assert idx.shape == (8, n)
    assert (idx >= 0).all() and (idx < 100).all()
    if n > 1:
        assert (torch.diff(idx, dim=1) > 0).all()  # sorted, no repeats


def test_uniform_is_even_and_random_varies():
    u = subsample(100, 30, "uniform")
    gaps = torch.diff(u)
    assert int(gaps.max() - gaps.min()) <= 1 and u[0] == 0 and u[-1] == 99
    r = subsample(100, 30, "random", generator=torch.Generator().manual_seed(0), batch=2)
    assert not torch.equal(r[0], r[1])


def test_bunched_leaves_longer_gaps_than_random():
    gen = torch.Generator().manual_seed(0)
    bunched = subsample(100, 30, "bunched", generator=gen, batch=200)
    random = subsample(100, 30, "random", generator=gen, batch=200)

    def longest_gap(idx):  # including the stretches before the first and after the last point
        edges = torch.cat([torch.full((len(idx), 1), -1), idx, torch.full((len(idx), 1), 100)], dim=1)
        return torch.diff(edges, dim=1).max(dim=1).values.float().mean()

    assert longest_gap(bunched) > 2 * longest_gap(random)


def test_observe_gathers_the_right_points(spirals):
    few = spirals[:4]
    idx = subsample(100, 30, "random", generator=torch.Generator().manual_seed(1), batch=4)
    times, x = observe(few, idx)
    assert times.shape == (4, 30) and x.shape == (4, 30, 2)
    assert torch.equal(x[2, 5], few.x[2, idx[2, 5]]) and times[3, 7] == few.t[idx[3, 7]]


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, "n must be"), ({"n_grid": 1}, "n_grid"), ({"noise_std": -0.1}, "noise_std"),
    ({"noise_std": float("nan")}, "noise_std"), ({"t_observed": 0}, "t_observed"), ({"n": 2.5}, "n must be"),
])
def test_bad_data_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_spirals(**kwargs)


@pytest.mark.parametrize("args, match", [((100, 0), "n_observed"), ((100, 101), "n_observed"),
                                         ((100, 30, "clumped"), "Valid placements")])
def test_bad_subsample_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        subsample(*args)


def test_bad_index():
    with pytest.raises(IndexError):
        make_spirals(5)[5]
