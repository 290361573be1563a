"""Bad input gets a clear SolverError that says what was wrong and what to do; never an assert, NaN or hang."""

import math
import time

import pytest
import torch

import odeteach as ot

Y0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
T = torch.linspace(0, 1, 3, dtype=torch.float64)


def f(t, y):
    return -y


@pytest.mark.parametrize("t, message", [
    (torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64), "monotonic"),
    (torch.tensor([0.0, 0.5, 0.5, 1.0], dtype=torch.float64), "repeated"),
    (torch.tensor([[0.0, 1.0]], dtype=torch.float64), "1-D"),
    (torch.tensor([0, 1]), "floating point"),
    (torch.tensor([0.0, float("nan")]), "finite"),
    (torch.tensor([], dtype=torch.float64), "empty"),
])
def test_bad_time_grid(t, message):
    with pytest.raises(ot.SolverError, match=message):
        ot.odeint(f, Y0, t)


@pytest.mark.parametrize("y0, message", [
    (torch.tensor([1, 2]), "floating point"),
    (torch.tensor([1.0, float("inf")]), "NaN or inf"),
    (torch.tensor([float("nan"), 0.0]), "NaN or inf"),
    ([1.0, 2.0], "torch.Tensor"),
    ((torch.ones(2), torch.tensor([1, 2])), "floating point"),
])
def test_bad_initial_state(y0, message):
    with pytest.raises(ot.SolverError, match=message):
        ot.odeint(f, y0, T)


def test_unknown_method_lists_valid_ones():
    with pytest.raises(ot.SolverError) as info:
        ot.odeint(f, Y0, T, method="rk45")
    for name in ot.METHODS:
        assert name in str(info.value)


@pytest.mark.parametrize("method, options, message", [
    ("dopri5", {"stepsize": 0.1}, "Unknown option 'stepsize'"),
    ("dopri5", {"step_size": 0.1}, "fixed-step methods only"),
    ("rk4", {"first_step": 0.1}, "adaptive methods only"),
    ("rk4", {"step_size": 0.0}, "step_size"),
    ("rk4", {"step_size": -0.1}, "step_size"),
    ("euler", {"step_size": float("nan")}, "step_size"),
    ("dopri5", {"max_num_steps": 0}, "max_num_steps"),
    ("dopri5", {"safety": 1.5}, "safety"),
    ("dopri5", {"min_step": 1.0, "max_step": 0.1}, "min_step"),
])
def test_bad_options(method, options, message):
    with pytest.raises(ot.SolverError, match=message):
        ot.odeint(f, Y0, T, method=method, options=options)


@pytest.mark.parametrize("kw, message", [
    (dict(rtol=-1e-6), "rtol"), (dict(atol=-1.0), "atol"), (dict(rtol=float("nan")), "rtol"),
    (dict(rtol=0.0, atol=0.0), "both 0"),
])
def test_bad_tolerances(kw, message):
    with pytest.raises(ot.SolverError, match=message):
        ot.odeint(f, Y0, T, **kw)


def test_func_returning_the_wrong_shape():
    with pytest.raises(ot.SolverError, match="shape"):
        ot.odeint(lambda t, y: y[:1], Y0, T)
    with pytest.raises(ot.SolverError, match="return a tensor"):
        ot.odeint(lambda t, y: 1.0, Y0, T)


@pytest.mark.parametrize("method", ["dopri5", "bosh3"])
def test_non_finite_derivative_mid_solve_names_t(method):
    def poisoned(t, y):
        return torch.where(t < 0.5, -y, torch.full_like(y, float("nan")))

    with pytest.raises(ot.SolverError, match=r"t=0\.5|t=0\.4999"):
        ot.odeint(poisoned, Y0, T, method=method)


def test_non_finite_derivative_at_start():
    with pytest.raises(ot.SolverError, match="non-finite derivative.*t=0"):
        ot.odeint(lambda t, y: y / 0.0, Y0, T)


def test_fixed_step_blow_up_names_t_and_step():
    # Euler with h·λ = -3 is outside its stability region |1 + hλ| <= 1: the state overflows float32.
    y0 = torch.ones(2, dtype=torch.float32)
    with pytest.raises(ot.SolverError, match=r"non-finite.*t=.*h=0\.3.*step_size"):
        ot.odeint(lambda t, y: -10.0 * y, y0, torch.tensor([0.0, 60.0]), method="euler", options={"step_size": 0.3})


def test_step_size_underflow_past_blow_up_is_fast():
    start = time.perf_counter()
    with pytest.raises(ot.SolverError, match=r"step size underflow at t=1\.0.*h=") as info:
        ot.odeint(lambda t, y: y * y, torch.tensor([1.0], dtype=torch.float64), torch.tensor([0.0, 2.0], dtype=torch.float64))
    assert time.perf_counter() - start < 1.0
    assert "blow up" in str(info.value)


def test_max_num_steps_exceeded():
    with pytest.raises(ot.SolverError, match="max_num_steps=10 reached at t="):
        ot.odeint(f, Y0, T, rtol=1e-12, atol=1e-12, options={"max_num_steps": 10})
    # A fixed step grid too fine for the limit fails before doing any work.
    with pytest.raises(ot.SolverError, match="needs 1000000 steps"):
        ot.odeint(f, Y0, T, method="euler", options={"step_size": 1e-6})


def test_min_step_reached_raises():
    with pytest.raises(ot.SolverError, match="underflow"):
        ot.odeint(lambda t, y: y * y, torch.tensor([1.0], dtype=torch.float64),
                  torch.tensor([0.0, 2.0], dtype=torch.float64), options={"min_step": 1e-3})


def test_solver_error_is_a_value_error_and_not_an_assert():
    assert issubclass(ot.SolverError, ValueError)
    assert not issubclass(ot.SolverError, AssertionError)
    assert math.isfinite(ot.odeint(f, Y0, T)[-1, 0].item())
