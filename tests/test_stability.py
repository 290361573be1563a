"""Stability functions and regions computed from the tableaux."""

import math

import numpy as np
import pytest
import torch

from odeteach import TABLEAUX, solve
from odeteach.stability import (check_step, max_stable_step, real_stability_limit, stability_function,
                                stability_region, stiff_forced_decay)
from odeteach.tableaux import Tableau

Z = np.array([-2.5 + 0.3j, -0.1 + 1.0j, 0.4 - 0.7j, -1.0, 1.5j, 0.0])


def taylor(z, p):
    return sum(z ** k / math.factorial(k) for k in range(p + 1))


@pytest.mark.parametrize("method, poly", [
    ("euler", lambda z: 1 + z),
    ("midpoint", lambda z: taylor(z, 2)),
    ("heun", lambda z: taylor(z, 2)),
    ("rk4", lambda z: taylor(z, 4)),
    ("bosh3", lambda z: taylor(z, 3)),                      # b_4 = 0: its 4th (FSAL) stage only feeds the error estimate
    ("dopri5", lambda z: taylor(z, 5) + z ** 6 / 600),      # the known stability polynomial of DOPRI5
])
def test_stability_function_matches_known_polynomials(method, poly):
    assert np.allclose(stability_function(method, Z), poly(Z), rtol=1e-13, atol=1e-13)


def test_scalar_in_scalar_out_and_tableau_objects():
    r = stability_function(TABLEAUX["rk4"], -1.0)
    assert isinstance(r, complex)
    assert math.isclose(r.real, taylor(-1.0, 4), rel_tol=1e-14)


@pytest.mark.parametrize("method", ["euler", "midpoint", "heun", "rk4"])
def test_solver_steps_multiply_by_R(method):
    """n steps of the actual solver on dy/dt = λy give R(hλ)^n: the theory describes the code."""
    lam, h, n = complex(-0.7, 1.3), 0.4, 12
    M = torch.tensor([[lam.real, -lam.imag], [lam.imag, lam.real]], dtype=torch.float64)
    t = torch.arange(n + 1, dtype=torch.float64) * h
    ys = solve(lambda _t, y: y @ M.T, torch.tensor([1.0, 0.0], dtype=torch.float64), t, method=method,
               options={"step_size": h}).ys
    want = stability_function(method, h * lam) ** np.arange(n + 1)
    assert np.allclose(ys[:, 0].numpy(), want.real, rtol=1e-12, atol=1e-14)
    assert np.allclose(ys[:, 1].numpy(), want.imag, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("method, limit", [("euler", 2.0), ("midpoint", 2.0), ("rk4", 2.785293563405),
                                            ("bosh3", 2.512745326618), ("dopri5", 3.306567892635)])
def test_real_axis_limits(method, limit):
    got = real_stability_limit(method)
    assert math.isclose(got, limit, rel_tol=1e-9)
    assert abs(stability_function(method, -got)) == pytest.approx(1.0, abs=1e-9)


def test_imaginary_axis():
    assert max_stable_step("euler", 1j) == 0.0          # |1 + ih| > 1 for every h > 0
    assert max_stable_step("midpoint", 1j) == 0.0
    assert math.isclose(max_stable_step("rk4", 1j), 2 * math.sqrt(2), rel_tol=1e-9)


def test_max_step_scales_with_lambda():
    assert math.isclose(max_stable_step("rk4", -10.0), real_stability_limit("rk4") / 10, rel_tol=1e-12)
    assert max_stable_step("euler", 0) == math.inf
    with pytest.raises(ValueError, match="finite"):
        max_stable_step("euler", complex(float("nan"), 0))


def test_region_grid_contains_disk_of_euler():
    X, Y, R = stability_region("euler", re=(-3, 1), im=(-2, 2), n=81)
    assert X.shape == Y.shape == R.shape == (81, 81)
    inside = np.abs(X + 1j * Y + 1) <= 1
    assert np.array_equal(R <= 1 + 1e-12, inside | (np.abs(np.abs(X + 1j * Y + 1) - 1) < 1e-12))


def test_check_step_messages():
    bad = check_step("euler", 0.3, complex(-0.1, 1.0))
    assert not bad.stable and bad.message.startswith("unstable at h·λ = ")
    assert bad.amplification == pytest.approx(abs(1 + 0.3 * complex(-0.1, 1.0)))
    good = check_step("rk4", 0.1, -10.0)
    assert good.stable and good.message.startswith("stable")
    with pytest.raises(ValueError, match="h must be"):
        check_step("rk4", 0.0, -1.0)
    with pytest.raises(ValueError, match="Unknown method"):
        check_step("rk45", 0.1, -1.0)


def test_a_new_tableau_gets_its_region_for_free():
    ralston = Tableau(name="ralston", c=(0.0, 2 / 3), A=((), (2 / 3,)), b=(0.25, 0.75), order=2)
    # every explicit 2-stage order-2 method has R(z) = 1 + z + z²/2
    assert np.allclose(stability_function(ralston, Z), taylor(Z, 2))
    assert math.isclose(real_stability_limit(ralston), 2.0, rel_tol=1e-9)


def test_max_stable_step_takes_a_stability_function():
    """The exercise checks pass R itself: the same answer as from the tableau, for arrays and scalars alike."""
    for method, lam in (("rk4", complex(-2.0, 3.0)), ("dopri5", complex(-0.5, 4.0)), ("euler", -1.0)):
        assert math.isclose(max_stable_step(lambda z, m=method: stability_function(m, z), lam),
                            max_stable_step(method, lam), rel_tol=1e-12)
    # a polynomial of no course method: 1 + z + z²/2 + z³/8 on the negative real axis
    limit = max_stable_step(lambda z: 1 + z + z ** 2 / 2 + z ** 3 / 8, -1.0)
    assert abs(abs(1 - limit + limit ** 2 / 2 - limit ** 3 / 8) - 1) < 1e-9


def test_stiff_forced_decay():
    p = stiff_forced_decay(-50.0, t1=1.0)
    t, y = torch.tensor(0.5, dtype=torch.float64), torch.tensor([0.2], dtype=torch.float64)
    assert torch.allclose(p(t, y), -50.0 * (y - torch.cos(t)))
    assert p.y0 == (0.0,) and (p.t0, p.t1) == (0.0, 1.0)
    for bad in (0.0, 3.0, float("nan")):
        with pytest.raises(ValueError, match="negative"):
            stiff_forced_decay(bad)
