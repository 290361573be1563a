"""Lesson 2's sentences, asserted on the computations the lesson runs.

Each test names the sentence it keeps true. If a solver change makes one false, this fails
instead of leaving a wrong lesson.
"""

import math

import numpy as np
import pytest
import torch

from odeteach import TABLEAUX, solve
from odeteach.convergence import empirical_order, worst_rejection
from odeteach.exercises.lesson02 import ORDER_STEP_SIZES
from odeteach.problems import damped_spiral, van_der_pol
from odeteach.stability import max_stable_step, real_stability_limit, stiff_forced_decay
from odeteach.step_control import DFACTOR, IFACTOR, SAFETY, StepSizeController
from odeteach.convergence import reference_solution
from odeteach.widgets.solvers import AdaptiveToleranceExplorer

VDP = van_der_pol(1.0)


@pytest.fixture(scope="module")
def vdp_reference():
    """The lesson's reference for Van der Pol (dopri5 at 1e-12) on a fine grid; its last row is y(t1)."""
    t = VDP.times(1001)
    return t, reference_solution(VDP, t)


def _end_error_and_nfe(problem, method, y_end):
    """Section 1's table: h = 0.1 for fixed-step methods, rtol = atol = 1e-6 for dopri5."""
    t = problem.times(2)
    kw = {"options": {"step_size": 0.1}} if not TABLEAUX[method].adaptive else {"rtol": 1e-6, "atol": 1e-6}
    sol = solve(problem, problem.initial(), t, method=method, **kw)
    return (sol.ys[-1] - y_end).abs().max().item(), sol.stats.nfe


def test_dopri5_against_rk4_on_both_problems(vdp_reference):
    """"On the damped spiral dopri5 reaches a slightly smaller error than RK4 with about half the evaluations
    (218 against 400). On Van der Pol it spends more (572 against 400) but ends about 20 times closer." """
    spiral_end = damped_spiral.exact_end()
    err_d, nfe_d = _end_error_and_nfe(damped_spiral, "dopri5", spiral_end)
    err_r, nfe_r = _end_error_and_nfe(damped_spiral, "rk4", spiral_end)
    assert 0.5 * err_r < err_d < err_r
    assert 0.4 < nfe_d / nfe_r < 0.6
    vdp_end = vdp_reference[1][-1]
    err_d, nfe_d = _end_error_and_nfe(VDP, "dopri5", vdp_end)
    err_r, nfe_r = _end_error_and_nfe(VDP, "rk4", vdp_end)
    assert nfe_d > nfe_r
    assert 10 < err_r / err_d < 40


def test_euler_winds_outwards_above_h_0_2_and_h_0_1_is_stable_for_all_three():
    """"Try Euler with h > 0.2: the numerical spiral winds outwards"; "h = 0.1 is inside all three methods'
    stability regions for λ = −0.1 ± i, where Euler needs h < 0.198"."""
    lam = complex(-0.1, 1.0)
    assert 0.19 < max_stable_step("euler", lam) < 0.2
    assert min(max_stable_step(m, lam) for m in ("euler", "midpoint", "rk4")) > ORDER_STEP_SIZES[0]
    h = 10 ** -0.625          # the explorer's first slider position above 0.2
    p = damped_spiral
    ys = solve(p, p.initial(), torch.arange(0, 43, dtype=torch.float64) * h, method="euler", options={"step_size": h}).ys
    assert ys[-1].norm() > ys[0].norm() > p.exact(torch.tensor([42 * h], dtype=torch.float64))[0].norm()


def test_measured_orders_against_the_guide_lines():
    """"Midpoint and RK4 follow their guide lines; Euler's points fall a little faster than its line." """
    slopes = {m: empirical_order(m, damped_spiral, ORDER_STEP_SIZES).order for m in ("euler", "midpoint", "rk4")}
    assert abs(slopes["midpoint"] - 2) < 0.05
    assert abs(slopes["rk4"] - 4) < 0.05
    assert 1.05 < slopes["euler"] < 1.25


def test_step_size_formula_constants_and_q():
    """The formula h·min(10, max(0.2, 0.9 ratio^(−1/(q+1)))), q = 4 for dopri5 and 2 for bosh3, no growth
    right after a rejection."""
    assert (SAFETY, IFACTOR, DFACTOR) == (0.9, 10.0, 0.2)
    assert TABLEAUX["dopri5"].error_order == 4 and TABLEAUX["dopri5"].order == 5
    assert TABLEAUX["bosh3"].error_order == 2 and TABLEAUX["bosh3"].order == 3
    ctrl = StepSizeController(TABLEAUX["dopri5"].error_order)
    assert ctrl.decide(1.0, 0.5) == (True, pytest.approx(0.9 * 0.5 ** -0.2))
    assert ctrl.decide(1.0, 1e6) == (False, pytest.approx(0.2))
    assert ctrl.decide(1.0, 1e-9) == (True, 1.0)          # right after the rejection: no growth
    assert ctrl.decide(1.0, 1e-9) == (True, 10.0)


@pytest.fixture(scope="module")
def vdp_runs(vdp_reference):
    """Section 3's printout: both methods at tolerances 1e-3 and 1e-6, with traces."""
    y_end = vdp_reference[1][-1]
    runs = {}
    for method in ("dopri5", "bosh3"):
        for tol in (1e-3, 1e-6):
            sol = solve(VDP, VDP.initial(), VDP.times(2), method=method, rtol=tol, atol=tol, trace=True)
            runs[method, tol] = (sol, (sol.ys[-1] - y_end).abs().max().item())
    return runs


def test_tighter_tolerance_more_steps_and_the_error_is_not_bounded_by_it(vdp_runs):
    """"Tighter tolerance, more steps, more NFE"; "dopri5 ends above its tolerance at both settings";
    "no rejected attempt misses by much (worst ratios 3.5 and 1.2)" at 1e-6."""
    for method in ("dopri5", "bosh3"):
        loose, tight = vdp_runs[method, 1e-3][0], vdp_runs[method, 1e-6][0]
        assert tight.stats.nfe > loose.stats.nfe and tight.stats.n_steps > loose.stats.n_steps
        assert worst_rejection(tight.trace).ratio < 5
    for tol in (1e-3, 1e-6):
        assert vdp_runs["dopri5", tol][1] > tol


def test_a_rejected_dopri5_attempt_costs_six_evaluations(vdp_runs):
    """"A huge ratio costs one wasted attempt (6 evaluations of f)": FSAL, so every attempt after the first
    costs 6 evaluations; the start costs 2 (f(t0) and the initial-step estimate)."""
    for tol in (1e-3, 1e-6):
        s = vdp_runs["dopri5", tol][0].stats
        assert s.nfe == 2 + 6 * s.n_steps


def test_the_worst_rejected_attempt_story(vdp_runs):
    """The explanation of the ratio 6892.8: the step before had a tiny ratio, h grew about 2.5 times, which alone
    multiplies C h^5 by about 100; the rest, about ten thousand, is C: the step reached across the swing where y1
    falls from about 1 to about −2; the next step is cut by the largest factor allowed."""
    sol = vdp_runs["dopri5", 1e-3][0]
    w = worst_rejection(sol.trace)
    q = TABLEAUX["dopri5"].error_order
    assert w.ratio > 1000
    assert w.prev_accepted and w.prev_ratio < 0.01
    grow = w.h / w.prev_h
    assert 2.3 < grow < 2.7 and 50 < grow ** (q + 1) < 200
    assert 3e3 < w.ratio / w.prev_ratio / grow ** (q + 1) < 3e4
    y1 = reference_solution(VDP, torch.tensor([VDP.t0, w.t, w.t + w.h], dtype=torch.float64))[1:, 0]
    assert 0.8 < y1[0] < 1.3 and -2.1 < y1[1] < -1.8
    assert w.next_h / w.h == pytest.approx(DFACTOR)
    assert SAFETY * w.ratio ** (-1 / (q + 1)) < DFACTOR


@pytest.fixture(scope="module")
def full_work_precision():
    """The explorer's work–precision points on a full run (tolerance decades 1e-8 … 1e-2)."""
    return AdaptiveToleranceExplorer(VDP, tol_range=(-8.0, -2.0), precompute=False).work_precision


def _fewest_nfe(points, target):
    good = points[points[:, 1] <= target]
    return int(good[:, 0].min()) if len(good) else None


def test_work_precision_sentences(full_work_precision):
    """"both adaptive methods reach 1e-5 with fewer evaluations than fixed-step RK4 at any step size tried, and Euler
    and midpoint do not get there"; "at 1e-7 only the adaptive methods get there, and dopri5 needs several times
    fewer evaluations than bosh3: its curve is steeper"; "the error does fall as the tolerance tightens"."""
    wp = full_work_precision
    at5 = {m: _fewest_nfe(pts, 1e-5) for m, pts in wp.items()}
    assert at5["euler"] is None and at5["midpoint"] is None
    assert at5["rk4"] is not None and max(at5["dopri5"], at5["bosh3"]) < at5["rk4"]
    at7 = {m: _fewest_nfe(pts, 1e-7) for m, pts in wp.items()}
    assert at7["euler"] is None and at7["midpoint"] is None and at7["rk4"] is None
    assert at7["bosh3"] >= 3 * at7["dopri5"]
    slope = {m: np.polyfit(np.log(wp[m][:, 0]), np.log(wp[m][:, 1]), 1)[0] for m in ("dopri5", "bosh3")}
    assert slope["dopri5"] < slope["bosh3"] < 0
    for m in ("dopri5", "bosh3"):          # points run from the tightest tolerance to the loosest
        assert np.all(np.diff(wp[m][:, 1]) > 0) and np.all(np.diff(wp[m][:, 0]) < 0)


def test_short_steps_where_the_solution_changes_fast(vdp_runs, vdp_reference):
    """"adaptivity gives both short steps where Van der Pol's solution changes fast and longer ones where it is
    slow": over the accepted steps at 1e-6, those where |dy/dt| is above its median are shorter."""
    t_ref, y_ref = vdp_reference
    speed_ref = VDP(t_ref[0], y_ref).norm(dim=1).numpy()          # autonomous: t is not used
    for method in ("dopri5", "bosh3"):
        acc = [r for r in vdp_runs[method, 1e-6][0].trace if r.accepted]
        hs = np.array([abs(r.h) for r in acc])
        speed = np.interp([r.t for r in acc], t_ref.numpy(), speed_ref)
        fast = speed > np.median(speed)
        assert np.median(hs[fast]) < 0.85 * np.median(hs[~fast])


def test_stiff_problem_stability_limits_the_step():
    """"both runs take about as many accepted steps as the stability limit demands, and the loose run costs more
    evaluations, because it keeps trying longer steps that the error estimate then rejects"."""
    stiff = stiff_forced_decay(-1000.0)
    min_steps = (stiff.t1 - stiff.t0) / (real_stability_limit("dopri5") / 1000)
    stats = {tol: solve(stiff, stiff.initial(), stiff.times(2), method="dopri5", rtol=tol, atol=tol).stats
             for tol in (1e-3, 1e-6)}
    for s in stats.values():
        assert min_steps <= s.n_accepted < 1.15 * min_steps
    assert stats[1e-3].nfe > stats[1e-6].nfe
    assert stats[1e-3].n_rejected > 5 * stats[1e-6].n_rejected
    assert math.isclose(stiff(torch.tensor(0.3, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)).item(),
                        1000 * math.cos(0.3))
