"""Lesson 1's package code: a ResNet of N blocks scaled 1/N is Euler's method with step 1/N."""

import math

import numpy as np
import pytest
import torch

from odeteach import odeint
from odeteach.resnet import (WEIGHT_KINDS, Dynamics, MeanField, depth_study, euler_hidden_states, fitted_slope,
                             make_resnet, ode_hidden_states, random_weights_study)


@pytest.fixture(scope="module")
def h0():
    return torch.tensor([[1.0, 0.0], [0.0, 1.0], [-0.7, -0.4]], dtype=torch.float64)


@pytest.mark.parametrize("depth", [1, 2, 3, 5, 8, 13, 64, 100])
@pytest.mark.parametrize("kind", WEIGHT_KINDS[:2])
def test_resnet_equals_euler_bit_for_bit(depth, kind, h0):
    f = Dynamics(seed=1, wobble=0.0 if kind == "tied" else 0.6)
    with torch.no_grad():
        net = make_resnet(f, depth, kind).hidden_states(h0)
        euler = euler_hidden_states(f, h0, depth)
        # the solver called directly, as the lesson tells a learner to
        t = torch.tensor([k * (1.0 / depth) for k in range(depth)] + [1.0], dtype=torch.float64)
        direct = odeint(f, h0, t, method="euler", options={"step_size": 1.0 / depth})
    assert net.shape == (depth + 1, *h0.shape)
    assert torch.equal(net, euler)
    assert torch.equal(net[-1], direct[-1])


def test_block_is_one_residual_update(h0):
    f = Dynamics(seed=2)
    with torch.no_grad():
        states = make_resnet(f, 4, "tied").hidden_states(h0)
        k = 2
        manual = states[k] + 0.25 * f(torch.tensor(k / 4, dtype=torch.float64), states[k])
    assert torch.allclose(states[k + 1], manual, rtol=0, atol=1e-15)


def test_tied_and_untied_networks_differ_in_weights():
    f = Dynamics(seed=0, wobble=0.5)
    tied = make_resnet(f, 8, "tied")
    smooth = make_resnet(f, 8, "untied, smooth in t")
    rough = make_resnet(f, 8, "untied, random", noise=0.5, seed=0)
    assert tied.tied and not smooth.tied and not rough.tied
    assert not torch.equal(smooth._thetas[1][0], smooth._thetas[2][0])
    assert not torch.equal(smooth._thetas[3][0], rough._thetas[3][0])
    # the same arguments give the same random network
    again = make_resnet(f, 8, "untied, random", noise=0.5, seed=0)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(rough._thetas, again._thetas))


@pytest.mark.parametrize("kind, lo, hi", [("tied", -1.1, -0.85), ("untied, smooth in t", -1.1, -0.85)])
def test_global_error_falls_like_one_over_n(kind, lo, hi, h0):
    f = Dynamics(seed=0, wobble=0.0 if kind == "tied" else 0.5)
    study = depth_study(f, h0, (4, 8, 16, 32, 64, 128), kind)
    assert lo < study.slope < hi
    assert np.all(np.diff(study.errors) < 0)
    # doubling the depth roughly halves the error at the deep end
    assert 1.7 < study.errors[-2] / study.errors[-1] < 2.3


def test_random_weights_have_the_documented_size():
    """W1 gets noise of standard deviation `noise`, W2 `noise`/√hidden, whatever the depth."""
    f = Dynamics(seed=0, hidden=16, wobble=0.5)
    for depth in (64, 1024):
        smooth = make_resnet(f, depth, "untied, smooth in t")._thetas
        rough = make_resnet(f, depth, "untied, random", noise=0.5, seed=2)._thetas
        d1 = torch.stack([r[0] - s[0] for r, s in zip(rough, smooth)])
        d2 = torch.stack([r[2] - s[2] for r, s in zip(rough, smooth)])
        assert abs(d1.std().item() - 0.5) < 0.05 and abs(d1.mean().item()) < 0.05
        assert abs(d2.std().item() - 0.5 / 4) < 0.015


def test_mean_field_is_the_average_field():
    """MeanField agrees with a Monte Carlo average of f over the random weights' noise."""
    f = Dynamics(seed=0, wobble=0.5)
    t, h = torch.tensor(0.3, dtype=torch.float64), torch.tensor([[0.4, -0.7], [1.5, 0.2]], dtype=torch.float64)
    W1, b1, W2, b2 = f.theta(t)
    gen = torch.Generator().manual_seed(1)
    samples = 40_000
    with torch.no_grad():
        noisy_W1 = W1 + 0.5 * torch.randn(samples, *W1.shape, generator=gen, dtype=torch.float64)
        noisy_W2 = W2 + 0.5 / 4 * torch.randn(samples, *W2.shape, generator=gen, dtype=torch.float64)
        values = Dynamics.apply(h.expand(samples, *h.shape), t, (noisy_W1, b1, noisy_W2, b2))
        mc, se = values.mean(0), values.std(0) / samples ** 0.5
        bar = MeanField(f, 0.5)(t, h)
        assert torch.all((bar - mc).abs() < 5 * se)
        assert (bar - f(t, h)).abs().max() > 10 * se.max()        # and it is not f itself
        assert torch.allclose(MeanField(f, 0.0)(t, h), f(t, h), rtol=1e-12, atol=1e-12)


def test_random_weights_study_matches_networks_built_one_by_one(h0):
    f = Dynamics(seed=0, wobble=0.5)
    study = random_weights_study(f, h0, (4, 32), noise=0.5, seeds=(0, 3))
    with torch.no_grad():
        h_end = ode_hidden_states(f, h0, torch.tensor([0.0, 1.0], dtype=torch.float64))[-1]
        for i, seed in enumerate((0, 3)):
            for j, n in enumerate((4, 32)):
                out = make_resnet(f, n, "untied, random", noise=0.5, seed=seed)(h0)
                assert study.ode_errors[i, j] == pytest.approx(float((out - h_end).abs().max()), rel=1e-12)
    assert study.ode_errors.shape == study.mean_field_errors.shape == (2, 2)
    # one starting point works too, and gives that point's row of the batch's answer
    one = random_weights_study(f, h0[0], (4,), noise=0.5, seeds=(0,))
    with torch.no_grad():
        out = make_resnet(f, 4, "untied, random", noise=0.5, seed=0)(h0[0])
    assert one.ode_errors[0, 0] == pytest.approx(float((out - h_end[0]).abs().max()), rel=1e-8)  # own ODE solve


def test_random_weights_bad_input():
    with pytest.raises(ValueError, match="seed"):
        random_weights_study(Dynamics(), torch.zeros(2, dtype=torch.float64), (4,), seeds=())
    with pytest.raises(ValueError, match="noise"):
        make_resnet(Dynamics(), 4, "untied, random", noise=-1.0)
    with pytest.raises(ValueError, match="noise"):
        MeanField(Dynamics(), noise=float("nan"))


def test_ode_reference_is_accurate(h0):
    f = Dynamics(seed=3)
    fine = ode_hidden_states(f, h0, torch.tensor([0.0, 1.0], dtype=torch.float64))[-1]
    with torch.no_grad():
        deep = euler_hidden_states(f, h0, 1024)[-1]
        deeper = euler_hidden_states(f, h0, 2048)[-1]
    # Euler's error at N = 1024 is O(1e-3) and halves at 2048: the reference must sit where they converge
    e1, e2 = (fine - deep).abs().max(), (fine - deeper).abs().max()
    assert e1 < 5e-3 and 1.8 < e1 / e2 < 2.2


def test_dynamics_shapes_and_gradients():
    f = Dynamics(dim=3, hidden=5, seed=0)
    t = torch.tensor(0.3, dtype=torch.float64)
    assert f(t, torch.zeros(3, dtype=torch.float64)).shape == (3,)
    assert f(t, torch.zeros(7, 3, dtype=torch.float64)).shape == (7, 3)
    out = make_resnet(f, 6)(torch.ones(2, 3, dtype=torch.float64)).sum()
    out.backward()
    assert f.W1.grad is not None and torch.isfinite(f.W1.grad).all() and f.W1.grad.abs().sum() > 0


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "4"])
def test_bad_depth_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="depth N"):
        make_resnet(Dynamics(), bad)


def test_bad_weight_kind_and_slope_inputs():
    with pytest.raises(ValueError, match="weights must be one of"):
        make_resnet(Dynamics(), 4, "shared")
    with pytest.raises(ValueError, match="positive"):
        fitted_slope([1, 2], [0.0, 1.0])
    assert math.isclose(fitted_slope([1, 2, 4], [1, 0.5, 0.25]), -1.0)
