"""Lesson 3's sentences, asserted on the computations the lesson runs (the sweeps come from the same
``odeteach.adjoint_studies.LESSON`` settings, so fast mode checks what nbval runs, full mode what a student sees)."""

import math

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from odeteach import measure_saved, odeint, odeint_adjoint  # noqa: E402
from odeteach.adjoint_from_scratch import (GRADIENTS, PENDULUM_PROBLEM, autograd_gradients, driven_pendulum,  # noqa: E402
                                           finite_difference_gradients, scratch_adjoint)
from odeteach.problems import van_der_pol  # noqa: E402
from odeteach.adjoint_studies import (HORIZONS, LESSON, MLPField, default_drift_systems, default_nfe_cases,  # noqa: E402
                                      drift_study, horizon_subset, memory_study, nfe_study, restart_study)

F64 = torch.float64
TOL = dict(rtol=1e-10, atol=1e-10)


def _problem(forcing=None):
    p = PENDULUM_PROBLEM
    theta = torch.tensor(p["theta"], dtype=F64)
    if forcing is not None:
        theta[2] = forcing
    z_target = torch.tensor(p["z_target"], dtype=F64)
    loss = lambda z1: ((z1 - z_target) ** 2).sum()  # noqa: E731
    return driven_pendulum(), theta, torch.tensor(p["z0"], dtype=F64), p["t0"], p["t1"], loss, lambda z1: 2 * (z1 - z_target)


def _rel(a, b):
    a, b = torch.as_tensor(a).reshape(-1), torch.as_tensor(b).reshape(-1)
    return ((a - b).norm() / b.norm()).item()


# --- section 1–2: the a_t component, integrated from −∂L/∂t1, gives ∂L/∂t0 ---------------------------------

def _solve(forcing):
    """The lesson's pendulum (driven, or with the forcing off), by the from-scratch adjoint and by backprop."""
    field, theta, z0, t0, t1, loss, loss_grad = problem = _problem(forcing)
    scratch = scratch_adjoint(field, theta, z0, t0, t1, loss_grad, n_steps=400)
    return forcing, problem, scratch, autograd_gradients(field, theta, z0, t0, t1, loss, odeint, **TOL)


@pytest.fixture(scope="module")
def driven():
    return _solve(None)


@pytest.fixture(scope="module")
def autonomous():
    return _solve(0.0)


@pytest.mark.parametrize("case", ["autonomous", "driven"])
def test_scratch_adjoint_time_gradients_match_autograd(case, request):
    forcing, _, scratch, backprop = request.getfixturevalue(case)
    for key in GRADIENTS:
        assert _rel(scratch.as_dict()[key], backprop[key]) < 1e-6, key
    assert scratch.a_t_start == pytest.approx(-backprop["dL/dt1"], rel=1e-8)   # Algorithm 2's start
    if forcing == 0.0:   # autonomous: a_t stays constant, ∂L/∂t0 = −∂L/∂t1
        assert scratch.dL_dt0 == pytest.approx(-scratch.dL_dt1, rel=1e-9)
    else:                # the driven field moves a_t: the shortcut −∂L/∂t1 would be off by more than 25 %
        assert abs(scratch.dL_dt0 + scratch.dL_dt1) > 0.25 * abs(scratch.dL_dt0)


@pytest.mark.parametrize("case", ["autonomous", "driven"])
def test_old_start_of_a_t_would_be_wrong(case, request):
    """Starting a_t at +∂L/∂t1 (the lesson's old text) ends at ∂L/∂t0 + 2∂L/∂t1 (a_t's ODE does not involve a_t)."""
    forcing, _, g, _ = request.getfixturevalue(case)
    old_end = g.dL_dt0 + 2 * g.dL_dt1
    if forcing == 0.0:
        assert old_end == pytest.approx(g.dL_dt1, rel=1e-9)          # autonomous: it would end at +a·f …
    assert abs(old_end - g.dL_dt0) > 0.5 * abs(g.dL_dt0)             # … which is not ∂L/∂t0


def test_four_ways_agree_and_finite_differences_count(driven):
    _, (field, theta, z0, t0, t1, loss, _), scratch, backprop = driven
    args = (field, theta, z0, t0, t1, loss)
    reference = autograd_gradients(*args, odeint_adjoint, **TOL)
    differences, n_solves = finite_difference_gradients(*args, odeint, **TOL)
    for key in GRADIENTS:   # "All four agree to at least six digits"
        for way in (scratch.as_dict(), backprop, differences):
            assert _rel(way[key], reference[key]) < 1e-6, key
    n_numbers = sum(torch.as_tensor(v).numel() for v in reference.values())
    assert n_solves == 2 * n_numbers                                 # "two solves per number"
    assert torch.allclose(scratch.z_rebuilt, z0, atol=5e-7)          # "arrives back at z0 to six digits"


def test_hand_written_jacobians_are_right():
    field, theta, z0, *_ = _problem()
    z, t = torch.tensor([0.7, -0.3], dtype=F64), torch.tensor(0.9, dtype=F64)
    jt, jz, jth = torch.autograd.functional.jacobian(field.f, (t, z, theta))
    hz, hth, ht = field.jacobians(t, z, theta)
    assert torch.allclose(hz, jz) and torch.allclose(hth, jth) and torch.allclose(ht, jt)


def test_scratch_adjoint_rejects_bad_input():
    field, theta, z0, t0, t1, loss, loss_grad = _problem()
    with pytest.raises(ValueError, match="n_steps"):
        scratch_adjoint(field, theta, z0, t0, t1, loss_grad, n_steps=0)
    with pytest.raises(ValueError, match="one state vector"):
        scratch_adjoint(field, theta, z0[None], t0, t1, loss_grad)
    with pytest.raises(ValueError, match="must differ"):
        scratch_adjoint(field, theta, z0, 1.0, 1.0, loss_grad)


# --- section 3: memory -------------------------------------------------------------------------------------

def test_section3_backprop_proportional_adjoint_flat_and_what_it_saves():
    mlp = MLPField(width=32, seed=0)
    params = list(mlp.parameters())
    z = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    t = torch.tensor([0.0, 1.0], dtype=F64)
    back, adj = {}, {}
    for n in (10, 20, 40):
        kw = dict(method="rk4", options={"step_size": 1 / n}, exclude=[z, *params], cuda=False)
        back[n] = measure_saved(odeint, mlp, z, t, **kw).saved_bytes
        adj[n] = measure_saved(odeint_adjoint, mlp, z, t, **kw).saved_bytes
    assert back[20] == 2 * back[10] and back[40] == 4 * back[10]     # "exactly twice the bytes"
    assert adj[10] == adj[20] == adj[40] == t.numel() * 8 + 2 * z.numel() * 8   # t and the two outputs
    pts = memory_study(LESSON["memory_steps"], batch=LESSON["memory_batch"], timing=False)   # the explorer's
    assert pts[-1].backprop_bytes * pts[0].steps == pts[0].backprop_bytes * pts[-1].steps
    assert pts[-1].adjoint_bytes == pts[0].adjoint_bytes


# --- section 4: forward against backward NFE ---------------------------------------------------------------

def test_section4_backward_costs_about_as_many_evaluations_not_half():
    ratios = [q.ratio for f, y0, t, ap in default_nfe_cases().values()
              for q in nfe_study(f, y0, t, LESSON["nfe_tolerances"], adjoint_params=ap)]
    assert min(ratios) > 0.75                                        # "none near ½"
    assert 0.9 <= float(np.median(ratios)) <= 1.2                   # "around one", "about as many"
    assert max(ratios) > 1.0                                         # "some above one"


# --- section 5: drift -----------------------------------------------------------------------------------------

def test_section5_drift_and_gradient_error_grow_with_the_horizon():
    for name, (problem, horizons) in default_drift_systems().items():
        pts = drift_study(problem, horizon_subset(horizons, LESSON["drift_horizons"]), n_points=LESSON["drift_points"])
        growth = pts[-1].drift[0] / pts[0].drift[0]
        assert 1e4 < growth < 1e6, name                              # "about five orders of magnitude"
        assert all(b.grad_error > a.grad_error for a, b in zip(pts, pts[1:])), name


def test_section5_drift_is_not_monotone_for_van_der_pol():
    six, eight = drift_study(van_der_pol(1.0), (6.0, 8.0), n_points=LESSON["drift_points"])
    assert {6.0, 8.0} <= set(HORIZONS["van_der_pol_mu1"])
    assert eight.drift[0] < six.drift[0]                             # "smaller at T = 8 than at T = 6"


def test_section5_stored_outputs_shrink_the_gradient_error():
    errors = restart_study(van_der_pol(1.0), 10.0, intervals=(1, 10))
    assert errors[10] < errors[1] / 100
    assert math.isfinite(errors[1]) and errors[1] > 1e-3
