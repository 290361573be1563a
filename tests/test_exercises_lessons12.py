"""Lessons 1–2 exercise checks: each accepts a correct answer and rejects wrong ones with a hint."""

import re

import numpy as np
import pytest
import torch

from odeteach.convergence import empirical_order
from odeteach.exercises.lesson01 import check_depth_slope, check_euler_step, check_resnet_as_euler
from odeteach.exercises.lesson02 import STIFF_LAMBDA, _measured_order, check_orders, check_rk4_stable_step, check_rk_step
from odeteach.problems import damped_spiral
from odeteach.resnet import Dynamics, depth_study
from odeteach.stability import max_stable_step


def assert_fails(result, *words):
    assert not result and not result.ok
    assert str(result).startswith("❌")
    for w in words:
        assert w in result.message, result.message


# ---------------------------------------------------------------- lesson 1

def euler_step(f, t, z, dt):
    return z + dt * f(t, z)


def test_euler_step_accepts_correct():
    r = check_euler_step(euler_step)
    assert r and str(r).startswith("✅")


@pytest.mark.parametrize("wrong, words", [
    (lambda f, t, z, dt: z, ["unchanged"]),
    (lambda f, t, z, dt: z + f(t, z), ["scaled by the step size"]),
    (lambda f, t, z, dt: z + dt * f(t + dt, z), ["wrong new state"]),
    (lambda f, t, z, dt: (z + dt * f(t, z)).sum(), ["shape"]),
    (lambda f, t, z, dt: 1 / 0, ["ZeroDivisionError"]),
    (None, ["not attempted"]),
    (3.0, ["function itself"]),
])
def test_euler_step_rejects_wrong(wrong, words):
    assert_fails(check_euler_step(wrong), *words)


def resnet_forward(f, h0, N):
    h = h0
    for k in range(N):
        h = h + f(torch.tensor(k / N, dtype=h0.dtype), h) / N
    return h


def test_resnet_accepts_correct():
    assert check_resnet_as_euler(resnet_forward)


def _same_t(f, h0, N):
    h = h0
    for _ in range(N):
        h = h + f(torch.tensor(0.0, dtype=h0.dtype), h) / N
    return h


def _unscaled(f, h0, N):
    h = h0
    for k in range(N):
        h = h + f(torch.tensor(k / N, dtype=h0.dtype), h)
    return h


def _all_states(f, h0, N):
    states = [h0]
    for k in range(N):
        states.append(states[-1] + f(torch.tensor(k / N, dtype=h0.dtype), states[-1]) / N)
    return torch.stack(states)


def _one_block_too_many(f, h0, N):
    return resnet_forward(f, h0, N + 1)


@pytest.mark.parametrize("wrong, words", [
    (_same_t, ["same t"]),
    (_unscaled, ["not scaled"]),
    (_all_states, ["only the last"]),
    (_one_block_too_many, ["wrong h_N"]),
    (lambda f, h0, N: h0, ["unchanged"]),
    (None, ["not attempted"]),
])
def test_resnet_rejects_wrong(wrong, words):
    assert_fails(check_resnet_as_euler(wrong), *words)


def test_depth_slope():
    h0 = torch.tensor([[0.2, 0.9], [-1.0, 0.0]], dtype=torch.float64)
    measured = depth_study(Dynamics(seed=0), h0, (4, 8, 16, 32, 64, 128)).slope
    assert check_depth_slope(measured)
    assert check_depth_slope(np.float64(measured))
    assert_fails(check_depth_slope(-measured), "positive slope")
    assert_fails(check_depth_slope(-2.0), "not what the networks show")
    assert_fails(check_depth_slope(float("nan")), "not a finite")
    assert_fails(check_depth_slope("minus one"), "number")
    assert_fails(check_depth_slope(None), "not attempted")


# ---------------------------------------------------------------- lesson 2

def my_rk_step(f, t, y, h, tableau):
    ks = []
    for c_i, row in zip(tableau.c, tableau.A):
        y_i = y
        for a_ij, k_j in zip(row, ks):
            y_i = y_i + h * a_ij * k_j
        ks.append(f(t + c_i * h, y_i))
    return y + h * sum(b_i * k_i for b_i, k_i in zip(tableau.b, ks))


def _no_stage_times(f, t, y, h, tableau):
    ks = []
    for row in tableau.A:
        ks.append(f(t, y + h * sum((a * k for a, k in zip(row, ks)), torch.zeros_like(y))))
    return y + h * sum(b * k for b, k in zip(tableau.b, ks))


def test_rk_step():
    r = check_rk_step(my_rk_step)
    assert r and "6 tableaux" in r.message
    assert_fails(check_rk_step(lambda f, t, y, h, tab: y + h * f(t, y)), "right for euler", "wrong for midpoint")
    assert_fails(check_rk_step(_no_stage_times), "t + c_i h")
    assert_fails(check_rk_step(lambda f, t, y, h, tab: y), "Euler")
    assert_fails(check_rk_step(lambda f, t, y, h, tab: (y, None)), "tensor")
    assert_fails(check_rk_step(None), "not attempted")


def test_orders():
    right = {m: _measured_order(m) for m in ("euler", "midpoint", "rk4")}   # the solver's measurement
    assert check_orders(right)
    assert check_orders({m: round(s, 2) for m, s in right.items()})
    # Euler measured with steps outside its stability region (h·λ with h = 1.25): not order 1
    unstable = {**right, "euler": empirical_order("euler", damped_spiral).order}
    assert_fails(check_orders(unstable), "euler", "small enough to be stable")
    assert_fails(check_orders({**right, "rk4": 2.0}), "rk4")
    assert_fails(check_orders({**right, "midpoint": -2.0}), "negative")
    assert_fails(check_orders({"euler": 1.0}), "midpoint", "rk4")
    assert_fails(check_orders([1, 2, 4]), "dict")
    assert_fails(check_orders(None), "not attempted")


def test_rk4_stable_step():
    limit = max_stable_step("rk4", STIFF_LAMBDA)
    assert 0.27 < limit < 0.29
    assert check_rk4_stable_step(limit)
    assert check_rk4_stable_step(limit * (1 - 5e-4))
    assert_fails(check_rk4_stable_step(limit * 1.01), "too large")
    assert_fails(check_rk4_stable_step(limit * 0.9), "still stable")
    assert_fails(check_rk4_stable_step(2 / 10), "still stable")        # Euler's limit is not RK4's
    assert_fails(check_rk4_stable_step(-0.1), "> 0")
    assert_fails(check_rk4_stable_step(None), "not attempted")


def test_checks_do_not_reveal_the_answer():
    limit = max_stable_step("rk4", STIFF_LAMBDA)
    for h in (0.1, 0.5):
        assert f"{limit:.3f}" not in check_rk4_stable_step(h).message
    orders = check_orders({"euler": 3.0, "midpoint": 3.0, "rk4": 3.0}).message
    assert re.search(r"\d\.\d", orders) is None      # no measured order in the hint
