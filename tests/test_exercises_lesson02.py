"""Lesson 2 exercise checks: the worked solutions pass; the placeholder, numbers copied from the lesson
or a textbook, and plausible wrong answers fail with a hint that does not give the answer away."""

import math
import re

import numpy as np
import pytest
import torch

from odeteach.convergence import constant_step_runner, fitted_order, worst_rejection
from odeteach.exercises.lesson02 import (_STEP_CASES, _step_limit, check_max_stable_step, check_measure_order,
                                         check_rk_step)


def assert_fails(result, *words):
    assert not result and not result.ok
    assert str(result).startswith("❌")
    for w in words:
        assert w in result.message, result.message


# ---------------------------------------------------------------- exercise 1: one RK step from a tableau

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


def _last_stage_only(f, t, y, h, tableau):
    """Uses only A[i][i-1]: right up to bosh3 (whose A is subdiagonal where it counts), wrong for dopri5."""
    ks = []
    for c_i, row in zip(tableau.c, tableau.A):
        y_i = y + h * row[-1] * ks[-1] if ks else y
        ks.append(f(t + c_i * h, y_i))
    return y + h * sum(b * k for b, k in zip(tableau.b, ks))


def _stages_without_h(f, t, y, h, tableau):
    ks = []
    for c_i, row in zip(tableau.c, tableau.A):
        ks.append(f(t + c_i * h, y + sum((a * k for a, k in zip(row, ks)), torch.zeros_like(y))))
    return y + h * sum(b * k for b, k in zip(tableau.b, ks))


def _classic_rk4_whatever_the_tableau(f, t, y, h, tableau):
    """The textbook RK4 formula typed in: ignores the tableau."""
    k1 = f(t, y)
    k2 = f(t + h / 2, y + h / 2 * k1)
    k3 = f(t + h / 2, y + h / 2 * k2)
    k4 = f(t + h, y + h * k3)
    return y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def test_rk_step_solution_passes():
    r = check_rk_step(my_rk_step)
    assert r and "6 tableaux" in r.message


def test_rk_step_wrong_answers_fail_with_a_hint():
    assert_fails(check_rk_step(lambda f, t, y, h, tab: y + h * f(t, y)), "right for euler", "wrong for midpoint")
    assert_fails(check_rk_step(_no_stage_times), "t + c_i h")
    assert_fails(check_rk_step(_classic_rk4_whatever_the_tableau), "Euler")
    assert_fails(check_rk_step(_last_stage_only), "wrong for dopri5", "Σ_j A_ij k_j")
    assert_fails(check_rk_step(_stages_without_h), "wrong for midpoint")
    assert_fails(check_rk_step(lambda f, t, y, h, tab: y), "Euler")
    assert_fails(check_rk_step(lambda f, t, y, h, tab: (y, None)), "tensor")
    assert_fails(check_rk_step(lambda f, t, y, h, tab: 1 / 0), "ZeroDivisionError")
    assert_fails(check_rk_step(None), "not attempted")


# ---------------------------------------------------------------- exercise 2: measuring the order

def measure_order(run, exact, step_sizes):
    """The worked solution."""
    errors = [float((run(h) - exact).abs().max()) for h in step_sizes]
    return np.polyfit(np.log(step_sizes), np.log(errors), 1)[0]


def _errors(run, exact, hs, norm=lambda e: e.abs().max()):
    return np.array([float(norm(run(h) - exact)) for h in hs])


def test_measure_order_solution_and_honest_variants_pass():
    r = check_measure_order(measure_order)
    assert r and "all 3 cases" in r.message
    # another norm, the relative error, a two-point slope: all measure the same order
    assert check_measure_order(lambda run, ex, hs: np.polyfit(np.log(hs), np.log(_errors(run, ex, hs, torch.linalg.norm)), 1)[0])
    assert check_measure_order(lambda run, ex, hs: np.polyfit(np.log(hs), np.log(_errors(run, ex, hs) / float(ex.abs().max())), 1)[0])
    assert check_measure_order(lambda run, ex, hs: torch.tensor(measure_order(run, ex, hs)))

    def two_point(run, exact, hs):
        e = _errors(run, exact, hs)
        return math.log(e[-1] / e[0]) / math.log(hs[-1] / hs[0])
    assert check_measure_order(two_point)


def test_measure_order_placeholder_copied_and_textbook_answers_fail():
    assert_fails(check_measure_order(None), "not attempted")
    assert_fails(check_measure_order(lambda run, exact, step_sizes: None), "placeholder")
    # the old exercise's answer, textbook orders as a dict: the check wants the function
    assert_fails(check_measure_order({"euler": 1, "midpoint": 2, "rk4": 4}), "not a dict")
    assert_fails(check_measure_order({"euler": 1.12, "midpoint": 1.98, "rk4": 3.98}), "not a dict")
    # a function that returns a textbook order or a slope the lesson showed, whatever the solver
    for constant in (1, 2, 3, 4, 5, 1.12, 1.98, 3.98):
        assert_fails(check_measure_order(lambda run, ex, hs, c=constant: c), "not the slope")


def test_measure_order_plausible_wrong_answers_fail_with_a_hint():
    log_n = lambda run, ex, hs: np.polyfit(np.log(1 / np.asarray(hs)), np.log(_errors(run, ex, hs)), 1)[0]
    assert_fails(check_measure_order(log_n), "wrong sign", "log(h)")
    log10_vs_ln = lambda run, ex, hs: np.polyfit(np.log(hs), np.log10(_errors(run, ex, hs)), 1)[0]
    assert_fails(check_measure_order(log10_vs_ln), "ln 10")
    intercept = lambda run, ex, hs: np.polyfit(np.log(hs), np.log(_errors(run, ex, hs)), 1)[1]
    assert_fails(check_measure_order(intercept), "intercept")
    the_state = lambda run, ex, hs: np.polyfit(np.log(hs), np.log([float(run(h).abs().max()) for h in hs]), 1)[0]
    assert_fails(check_measure_order(the_state), "the state itself", "run(h) − exact")
    linear_axes = lambda run, ex, hs: np.polyfit(hs, _errors(run, ex, hs), 1)[0]
    assert_fails(check_measure_order(linear_axes), "log(error)")
    assert_fails(check_measure_order(lambda run, ex, hs: np.polyfit(np.log(hs), np.log(_errors(run, ex, hs)), 1)),
                 "one number")
    assert_fails(check_measure_order(lambda run, ex, hs: run(-1.0)), "ValueError")
    assert_fails(check_measure_order(42), "function itself")


def test_measure_order_hints_show_no_slope():
    for wrong in (lambda run, ex, hs: 4.0, lambda run, ex, hs: -2.0, lambda run, ex, hs: 0.1, lambda run, ex, hs: 2.6):
        assert re.search(r"\d\.\d", check_measure_order(wrong).message) is None


# ---------------------------------------------------------------- exercise 3: the largest stable step

def my_max_stable_step(R, lam):
    """The worked solution: walk out along z = h·λ until |R| > 1, then bisect."""
    dh = 0.01 / abs(lam)                      # steps of 0.01 in z = h·λ
    h = 0.0
    while abs(R((h + dh) * lam)) <= 1:
        h += dh
    lo, hi = h, h + dh
    for _ in range(60):
        mid = (lo + hi) / 2
        if abs(R(mid * lam)) <= 1:
            lo = mid
        else:
            hi = mid
    return lo


def _bisect_real_axis(R):
    lo, hi = 0.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if abs(R(-mid)) <= 1 else (lo, mid)
    return lo


def test_max_stable_step_solution_passes():
    r = check_max_stable_step(my_max_stable_step)
    assert r and "4 cases" in r.message


def test_max_stable_step_placeholder_and_copied_numbers_fail():
    assert_fails(check_max_stable_step(None), "not attempted")
    assert_fails(check_max_stable_step(lambda R, lam: None), "placeholder")
    rk4_real = 2.7853                                   # the lesson prints RK4's real-axis limit
    assert_fails(check_max_stable_step(rk4_real / 10), "function")          # the old exercise's answer
    for copied in (rk4_real / 10, rk4_real, 2.0, 3.3066, 2.5127):
        assert_fails(check_max_stable_step(lambda R, lam, c=copied: c))
    # the printed real-axis limit scaled by |λ| (right only on the real axis)
    assert_fails(check_max_stable_step(lambda R, lam: rk4_real / abs(lam)))
    assert_fails(check_max_stable_step(lambda R, lam: _bisect_real_axis(R) / abs(lam)))


def test_max_stable_step_plausible_wrong_answers_fail_with_a_hint():
    assert_fails(check_max_stable_step(lambda R, lam: _bisect_real_axis(R) / -complex(lam).real), "too large")
    assert_fails(check_max_stable_step(lambda R, lam: 2 / abs(lam)), "still stable")          # Euler's disc
    assert_fails(check_max_stable_step(lambda R, lam: 0.99 * my_max_stable_step(R, lam)), "still stable", "0.1%")
    assert_fails(check_max_stable_step(lambda R, lam: 1.01 * my_max_stable_step(R, lam)), "too large")
    # z = h·|λ| on the positive real axis: |R| > 1 at once, so no positive step is found
    assert_fails(check_max_stable_step(lambda R, lam: my_max_stable_step(R, abs(lam))), "complex λ")
    assert_fails(check_max_stable_step(lambda R, lam: 0.0), "> 0")
    assert_fails(check_max_stable_step(lambda R, lam: [0.5]), "one number")
    assert_fails(check_max_stable_step(lambda R, lam: R("z")), "raised")


def test_max_stable_step_cases_have_one_exit_and_hints_hide_the_limits():
    for k, (label, R, lam) in enumerate(_STEP_CASES):
        assert lam.imag != 0, label                     # off the real axis
        s = np.linspace(1e-4, 20.0, 100001)
        unstable = np.abs(R(s * lam / abs(lam))) > 1 + 1e-12
        assert np.count_nonzero(np.diff(unstable.astype(int))) == 1, label   # bisection has one answer
        limit = _step_limit(k)
        assert abs(abs(complex(R(limit * lam))) - 1) < 1e-9
    for wrong in (lambda R, lam: 0.1, lambda R, lam: 5.0, lambda R, lam: 0.99 * my_max_stable_step(R, lam)):
        message = check_max_stable_step(wrong).message
        for k in range(len(_STEP_CASES)):
            assert f"{_step_limit(k):.3f}" not in message


# ---------------------------------------------------------------- the package helpers the checks and the lesson use

def test_fitted_order_and_constant_step_runner():
    hs = [0.4, 0.2, 0.1]
    assert fitted_order(hs, [3 * h ** 2.5 for h in hs]) == pytest.approx(2.5)
    for bad in (([0.1], [1e-3]), ([0.1, 0.05], [1e-3, 0.0]), ([0.1, 0.05], [1e-3])):
        with pytest.raises(ValueError):
            fitted_order(*bad)
    from odeteach.problems import damped_spiral
    run = constant_step_runner(damped_spiral, "rk4")
    assert run(0.1).shape == damped_spiral.initial().shape
    for bad_h in (0.0, -0.1, 20.0, float("nan")):
        with pytest.raises(ValueError, match="h must be"):
            run(bad_h)
    with pytest.raises(ValueError, match="Unknown method"):
        constant_step_runner(damped_spiral, "rk45")


def test_worst_rejection():
    from odeteach import solve
    from odeteach.problems import van_der_pol
    p = van_der_pol(1.0, t1=4.0)
    trace = solve(p, p.initial(), p.times(2), method="dopri5", rtol=1e-3, atol=1e-3, trace=True).trace
    w = worst_rejection(trace)
    rejected = [r.error_ratio for r in trace if not r.accepted]
    assert w.ratio == max(rejected) > 1 and not trace[w.index].accepted
    assert w.prev_h == abs(trace[w.index - 1].h) and w.next_h == abs(trace[w.index + 1].h)
    assert worst_rejection([r for r in trace if r.accepted]) is None
