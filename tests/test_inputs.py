"""One input path: solve and solve_adjoint check their inputs alike; validators and Stats arithmetic."""

import numpy as np
import pytest
import torch

import odeteach as ot
from odeteach.inputs import StateFunc, check_inputs
from odeteach.validation import integer, positive_number

Y0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
T = torch.linspace(0.0, 1.0, 3, dtype=torch.float64)


def f(t, y):
    return -y


BAD_INPUTS = [
    (dict(y0=Y0.long()), "floating point"),
    (dict(y0=[1.0, 0.0]), "torch.Tensor"),
    (dict(y0=()), "empty tuple"),
    (dict(y0=(Y0, Y0.float())), "share one dtype"),
    (dict(y0=torch.tensor([float("nan"), 0.0])), "NaN or inf"),
    (dict(t=torch.tensor([0, 1])), "floating point"),
    (dict(t=torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64)), "monotonic"),
    (dict(t=torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64)), "repeated time"),
    (dict(method="rk45"), "Valid methods"),
    (dict(rtol=-1.0), "rtol"),
    (dict(rtol=0.0, atol=0.0), "both 0"),
    (dict(options={"step_size": 0.1}), "fixed-step methods only"),
    (dict(options={"max_num_steps": 2.5}), "positive integer"),
    (dict(options={"safety": 2.0}), "safety"),
]


@pytest.mark.parametrize("change, words", BAD_INPUTS, ids=[w for _, w in BAD_INPUTS])
def test_solve_and_solve_adjoint_reject_bad_input_with_the_same_message(change, words):
    args = dict(y0=Y0, t=T, method="dopri5", rtol=1e-6, atol=1e-8, options=None) | change
    messages = []
    for run in (ot.solve, lambda *a, **k: ot.solve_adjoint(*a, adjoint_params=(), **k)):
        with pytest.raises(ot.SolverError) as info:
            y0, t = args.pop("y0"), args.pop("t")
            try:
                run(f, y0, t, **args)
            finally:
                args.update(y0=y0, t=t)
        messages.append(str(info.value))
    assert words in messages[0]
    assert messages[0] == messages[1]


def test_state_func_joins_and_splits_a_tuple_state_and_counts_calls():
    states = (torch.ones(2, 3), torch.zeros(4))
    inputs = check_inputs(lambda t, y: (2 * y[0], y[1] + 1), states, T.float(), 1e-6, 1e-8, "rk4", None)
    f = inputs.func
    assert isinstance(f, StateFunc) and inputs.y0.shape == (10,)
    out = f(T[0], inputs.y0)
    assert out.shape == (10,) and f.nfe == 1
    a, b = f.split(out)
    assert torch.equal(a, 2 * torch.ones(2, 3)) and torch.equal(b, torch.ones(4))
    stacked = torch.stack([inputs.y0, out])
    parts = f.split_outputs(stacked)
    assert parts[0].shape == (2, 2, 3) and parts[1].shape == (2, 4)


def test_a_single_tensor_state_is_passed_through_unflattened():
    """Conv nets see their B×C×H×W state as it is: nothing is reshaped on the hot path."""
    seen = []
    y0 = torch.randn(2, 3, 4, 4)
    ot.odeint(lambda t, y: seen.append(y.shape) or -y, y0, T.float(), method="euler")
    assert set(seen) == {torch.Size([2, 3, 4, 4])}


def test_stats_add():
    a, b = ot.Stats(10, 3, 2, 1), ot.Stats(5, 1, 1, 0)
    assert a + b == ot.Stats(15, 4, 3, 1)
    assert a == ot.Stats(10, 3, 2, 1)            # a new Stats; neither operand changes
    with pytest.raises(TypeError):
        a + 1


def test_adjoint_backward_stats_add_up_over_backward_passes():
    theta = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    sol = ot.solve_adjoint(lambda t, y: -theta * y, Y0, T, adjoint_params=(theta,))
    sol.ys.sum().backward(retain_graph=True)
    once = sol.backward_stats
    sol.ys.sum().backward()
    assert sol.n_backward == 2 and sol.backward_stats == once + once


@pytest.mark.parametrize("value", [3, np.int64(3)])
def test_integer_accepts_ints(value):
    assert integer("n", value, minimum=1) == 3 and type(integer("n", value)) is int


@pytest.mark.parametrize("value, words", [
    (True, "positive integer"), (2.0, "positive integer"), ("3", "positive integer"), (0, "got 0"),
])
def test_integer_refuses_non_integers_and_out_of_range(value, words):
    with pytest.raises(ValueError, match=words):
        integer("iterations", value, minimum=1)


def test_integer_range_and_error_class():
    with pytest.raises(ot.SolverError, match="from 1 to 5"):
        integer("n", 6, minimum=1, maximum=5, error=ot.SolverError)
    with pytest.raises(ValueError, match="≥ 2"):
        integer("n", 1, minimum=2)


def test_positive_number():
    assert positive_number("h", "0.5") == 0.5
    assert positive_number("atol", 0, allow_zero=True) == 0.0
    assert positive_number("max_step", float("inf"), allow_inf=True) == float("inf")
    for bad in (0, -1, float("nan"), float("inf"), None):
        with pytest.raises(ValueError, match="h must be"):
            positive_number("h", bad)
