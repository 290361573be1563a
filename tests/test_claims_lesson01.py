"""Lesson 1's sentences that state a measured comparison, asserted on the computation the lesson runs.

Each test names the sentence it keeps true. The set-up below is the notebook's own (the first test
checks that the notebook still runs these lines); the tests run under fast mode, as CI does, so the
random-weights study uses the lesson's fast-mode depths and seeds.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from odeteach.exercises.lesson01 import _slope_cases
from odeteach.fast_mode import pick
from odeteach.resnet import Dynamics, WEIGHT_KINDS, depth_study, euler_hidden_states, make_resnet, random_weights_study

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01_resnets_are_euler.ipynb"
LESSON_LINES = [
    'f = Dynamics(dim=2, hidden=16, seed=0)',
    'h0 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -0.5]])',
    'for N in (1, 2, 3, 7, 16, 100, 256):',
    'depths = (2, 4, 8, 16, 32, 64, 128, 256)',
    'study = depth_study(f, h0, depths, "tied")',
    'f_smooth = Dynamics(dim=2, hidden=16, seed=0, wobble=0.5)',
    'random_depths = pick(full=(4, 16, 64, 256, 1024, 4096, 16384), fast=(4, 16, 64, 256, 1024, 4096))',
    'rw = random_weights_study(f_smooth, h0, random_depths, noise=0.5, seeds=range(pick(full=8, fast=4)))',
]
DEPTHS = (2, 4, 8, 16, 32, 64, 128, 256)
RANDOM_DEPTHS = pick(full=(4, 16, 64, 256, 1024, 4096, 16384), fast=(4, 16, 64, 256, 1024, 4096))
RANDOM_SEEDS = range(pick(full=8, fast=4))


@pytest.fixture(scope="module")
def h0():
    return torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -0.5]], dtype=torch.float64)


@pytest.fixture(scope="module")
def f():
    return Dynamics(dim=2, hidden=16, seed=0)


@pytest.fixture(scope="module")
def f_smooth():
    return Dynamics(dim=2, hidden=16, seed=0, wobble=0.5)


@pytest.fixture(scope="module")
def tied(f, h0):
    return depth_study(f, h0, DEPTHS, "tied")


@pytest.fixture(scope="module")
def random_study(f_smooth, h0):
    return random_weights_study(f_smooth, h0, RANDOM_DEPTHS, noise=0.5, seeds=RANDOM_SEEDS)


def test_the_notebook_runs_this_computation():
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    for line in LESSON_LINES:
        assert line in code, f"the lesson no longer runs {line!r}: update this test with it"


def test_tied_resnet_is_euler_bit_for_bit(f, h0):
    """'Not "close": equal, bit for bit, at every depth tried here.'"""
    with torch.no_grad():
        for n in (1, 2, 3, 7, 16, 100, 256):
            assert torch.equal(make_resnet(f, n, "tied").hidden_states(h0), euler_hidden_states(f, h0, n)), n


def test_error_halves_with_each_doubling_once_n_is_large(tied):
    """'the ratios climb towards 2 as N grows: at N = 2 and 4 the steps are too long ...'"""
    ratios = tied.errors[:-1] / tied.errors[1:]
    assert np.all(np.diff(tied.errors) < 0)
    assert np.all(np.diff(ratios) > 0)                 # they climb
    assert ratios[0] < 1.8                             # N = 2 → 4: well short of halving
    assert 1.95 < ratios[-1] < 2.05                    # N = 128 → 256: halved


def test_fitted_slopes_all_depths_shallower_than_deep_end(tied):
    """'a line fitted through all eight depths is a little shallower than −1, one through N ≥ 16 close to it'"""
    deep = tied.depths >= 16
    deep_slope = np.polyfit(np.log(tied.depths[deep]), np.log(tied.errors[deep]), 1)[0]
    assert -1.0 < tied.slope < -0.85
    assert abs(deep_slope + 1) < 0.03
    assert tied.slope > deep_slope + 0.03


def test_smoothly_untied_weights_also_converge_like_one_over_n(f_smooth, h0):
    """'The ODE picture still holds if the weights come from a function of depth'"""
    s = depth_study(f_smooth, h0, DEPTHS, WEIGHT_KINDS[1])
    assert -1.1 < s.slope < -0.9
    assert 1.9 < s.errors[-2] / s.errors[-1] < 2.1


def test_random_weights_level_off_against_theta_ode(random_study):
    """'Against the ODE with θ(t) the error falls at first and then levels off near the distance between the
    two ODEs' solutions: deeper networks get no closer to that ODE.'"""
    rw = random_study
    to_ode = rw.rms_ode_errors()
    assert to_ode[0] > 3 * rw.ode_gap                                   # falls at first
    assert np.all(np.abs(to_ode[-2:] / rw.ode_gap - 1) < 0.25)          # levels off near the gap
    assert np.all(to_ode > 0.75 * rw.ode_gap)                           # and never gets much closer
    assert rw.ode_gap > 0.05                                            # a real distance, not rounding


def test_random_weights_keep_converging_to_the_mean_field_ode(random_study):
    """'Against the mean-field ODE the error keeps falling, with a fitted slope near −1/2 ... slower than 1/N'"""
    rw = random_study
    to_mean = rw.rms_mean_field_errors()
    assert to_mean[-1] < to_mean[0] / 10
    assert to_mean[-1] < 0.35 * rw.ode_gap                              # well inside the plateau of the other
    assert to_mean[-1] < to_mean[list(rw.depths).index(256)]
    assert -0.65 < rw.mean_field_slope(16) < -0.35


def test_exercise_cases_are_not_all_near_the_textbook_order():
    """The solutions say the check's cases do not all have a slope near −1 (so −1 cannot pass)."""
    slopes = [case[4]["right"] for case in _slope_cases()]
    assert max(abs(s + 1) for s in slopes) > 0.1
    assert max(abs(s + 0.93) for s in slopes) > 0.1
