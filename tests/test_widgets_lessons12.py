"""Lessons 1–2 explorers: set a control, read the new state back (Agg backend, no kernel)."""

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from odeteach import solve  # noqa: E402
from odeteach.problems import damped_spiral, van_der_pol  # noqa: E402
from odeteach.resnet import make_resnet  # noqa: E402
from odeteach.stability import stability_function  # noqa: E402
from odeteach.widgets.resnet import DepthExplorer  # noqa: E402
from odeteach.convergence import fixed_step_grid  # noqa: E402
from odeteach.widgets.base import slider_values  # noqa: E402
from odeteach.widgets.solvers import StabilityExplorer, StepSizeExplorer, AdaptiveToleranceExplorer  # noqa: E402
from widget_support import redrawn_from_scratch  # noqa: E402

SHORT_VDP = van_der_pol(1.0, t1=4.0)


def _number(html_text):
    """The first bold number in a readout."""
    return float(html_text.split("<b>")[1].split("</b>")[0])


@pytest.fixture(scope="module")
def step_explorer():
    return StepSizeExplorer(damped_spiral, precompute=False)


@pytest.fixture(scope="module")
def tol_explorer():
    return AdaptiveToleranceExplorer(SHORT_VDP, tol_range=(-7.0, -2.0), precompute=False)


@pytest.fixture(scope="module")
def stab_explorer():
    return StabilityExplorer()


@pytest.fixture(scope="module")
def depth_explorer():
    return DepthExplorer(n_points=4, study_depths=(1, 4, 16, 64, 256))


def test_views_work_without_ipympl(step_explorer):
    assert isinstance(step_explorer.view, widgets.Output)   # Agg: the figure sits in an Output widget
    assert isinstance(step_explorer.widget, widgets.VBox)
    assert step_explorer.view in step_explorer.widget.children


@pytest.mark.parametrize("method, h", [("euler", 0.05), ("midpoint", 0.2), ("rk4", 0.5)])
def test_step_size_explorer_shows_the_solvers_numbers(step_explorer, method, h):
    step_explorer.method.value = method
    step_explorer.step_size.value = h
    p = damped_spiral
    t = fixed_step_grid(p.t0, p.t1, h)
    sol = solve(p, p.initial(), t, method=method, options={"step_size": h})
    x, y = step_explorer.line.get_data()
    assert np.allclose(x, sol.ys[:, 0].numpy()) and np.allclose(y, sol.ys[:, 1].numpy())
    assert f"NFE = <b>{sol.stats.nfe}</b>" in step_explorer.nfe.value
    err = np.abs(sol.ys.numpy() - p.exact(t).numpy()).max()
    assert _number(step_explorer.error.value) == pytest.approx(err, rel=1e-2)


def test_step_size_explorer_error_falls_with_h(step_explorer):
    step_explorer.method.value = "rk4"
    errors = []
    for h in (0.5, 0.25, 0.125):
        step_explorer.step_size.value = h
        errors.append(_number(step_explorer.error.value))
    assert errors[0] > 8 * errors[1] > 64 * errors[2]     # order 4: ×16 per halving, with margin


def test_euler_outside_its_region_says_so(step_explorer):
    step_explorer.method.value = "euler"
    step_explorer.step_size.value = 0.5
    assert "unstable at h·λ" in step_explorer.message.value
    step_explorer.step_size.value = 0.05
    assert step_explorer.message.value == ""


def test_tolerance_explorer_matches_the_trace(tol_explorer):
    p = SHORT_VDP
    nfes = []
    for method in ("dopri5", "bosh3"):
        tol_explorer.method.value = method
        for tol in (1e-3, 1e-6):
            tol_explorer.tolerance.value = tol
            sol = solve(p, p.initial(), p.times(300), method=method, rtol=tol, atol=tol, trace=True)
            s = sol.stats
            assert f"NFE = <b>{s.nfe}</b>" in tol_explorer.nfe.value
            assert f"{s.n_accepted} accepted" in tol_explorer.steps.value
            assert f"{s.n_rejected} rejected" in tol_explorer.steps.value
            assert len(tol_explorer.acc_pts.get_offsets()) == s.n_accepted
            assert len(tol_explorer.rej_pts.get_offsets()) == s.n_rejected
            assert len(tol_explorer.ratio_acc.get_offsets()) + len(tol_explorer.ratio_rej.get_offsets()) == s.n_steps
            # accepted attempts sit at or below the line at 1, rejected ones above it
            assert np.all(tol_explorer.ratio_acc.get_offsets()[:, 1] <= 1.0)
            assert np.all(tol_explorer.ratio_rej.get_offsets()[:, 1] > 1.0)
            x, y = tol_explorer.wp_point.get_data()
            assert x[0] == s.nfe and y[0] == pytest.approx(_number(tol_explorer.error.value), rel=1e-2)
            nfes.append(s.nfe)
    assert nfes[1] > nfes[0] and nfes[3] > nfes[2]


def test_tolerance_explorer_work_precision_has_all_methods(tol_explorer):
    assert set(tol_explorer.work_precision) == {"euler", "midpoint", "rk4", "dopri5", "bosh3"}
    for m, pts in tol_explorer.work_precision.items():
        assert len(pts) >= 3, m
        assert np.all(pts[:, 1] < 1.0)


def test_stability_explorer_marks_h_lambda_and_blows_up(stab_explorer):
    e = stab_explorer
    e.method.value = "euler"
    e.lam_re.value, e.lam_im.value = -2.0, 0.0
    e.step_size.value = 0.5                       # z = -1: inside
    assert e.message.value.startswith("stable")
    assert e.z_point.get_data()[0][0] == pytest.approx(-1.0)
    e.step_size.value = 1.5                       # z = -3: outside, |R| = 2
    assert "unstable at h·λ" in e.message.value
    _, norms = e.num_line.get_data()
    assert norms[-1] == pytest.approx(2.0 ** e.n_steps, rel=1e-9)
    e.method.value = "rk4"                        # rk4 is stable up to 2.785 on the real axis
    e.step_size.value = 1.35                      # z = -2.7
    assert e.message.value.startswith("stable")
    assert e.fills["rk4"].get_visible() and not e.fills["euler"].get_visible()


def test_stability_explorer_numerical_solution_is_R_to_the_n(stab_explorer):
    e = stab_explorer
    e.method.value = "midpoint"
    e.lam_re.value, e.lam_im.value = -0.5, 2.0
    e.step_size.value = 0.4
    _, norms = e.num_line.get_data()
    R = abs(stability_function("midpoint", 0.4 * complex(-0.5, 2.0)))
    assert np.allclose(norms, R ** np.arange(e.n_steps + 1), rtol=1e-10)
    assert f"{R:.3g}" in e.amplification.value


def test_depth_explorer(depth_explorer):
    e = depth_explorer
    e.weights.value = "tied"
    errs = {}
    for n in (2, 16, 128):
        e.depth.value = n
        errs[n] = _number(e.error.value.split("error at t = 1:")[1])
        lines = e.net_lines[0].get_data()
        assert len(lines[0]) == n + 1                   # h_0 … h_N
    assert errs[2] > 5 * errs[16] > 25 * errs[128]
    # the readout is the network's own error
    with torch.no_grad():
        out = make_resnet(e.dynamics["tied"], 128)(e.h0).numpy()
    assert errs[128] == pytest.approx(np.abs(out - e.ode_paths["tied"][-1]).max(), rel=1e-2)
    assert "slope" in e.slope.value and -1.2 < _number(e.slope.value) < -0.8
    e.weights.value = "untied, random"
    assert "random per-block weights" in e.message.value


@pytest.mark.parametrize("fixture", ["step_explorer", "stab_explorer", "depth_explorer"])
def test_every_slider_end_gives_a_picture_and_no_exception(fixture, request):
    e = request.getfixturevalue(fixture)
    for name in e.controls:
        control = getattr(e, name)
        values = slider_values(control)
        for v in (values[0], values[-1]):
            control.value = v
            assert "Error:" not in e.message.value and "Exception" not in e.message.value, (name, v, e.message.value)
            drawn = [line for line in e.fig.axes[0].get_lines() if len(line.get_xdata())]
            assert drawn, (name, v)


def test_slider_values():
    s = widgets.FloatLogSlider(min=-2, max=0, step=0.5, base=10)
    assert slider_values(s) == pytest.approx([0.01, 10 ** -1.5, 0.1, 10 ** -0.5, 1.0])
    assert slider_values(widgets.IntSlider(min=1, max=4, step=1)) == [1, 2, 3, 4]
    assert slider_values(widgets.ToggleButtons(options=["a", "b"])) == ["a", "b"]


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="fixed-step"):
        StepSizeExplorer(methods=("dopri5",))
    with pytest.raises(ValueError, match="adaptive"):
        AdaptiveToleranceExplorer(SHORT_VDP, methods=("rk4",))


def test_benchmark_script_runs_and_reports_every_control(capsys):
    """The widget benchmark (a benchmark, not a timed test): it runs and prints a row per control."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_widgets.py"
    spec = importlib.util.spec_from_file_location("bench_widgets", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert {name for name, _, _ in bench.EXPLORERS} >= {"DepthExplorer", "StepSizeExplorer", "AdaptiveToleranceExplorer",
                                                         "StabilityExplorer"}
    status = bench.main(["--only", "StabilityExplorer", "--every", "1000"])   # slider ends only, ipympl
    out = capsys.readouterr().out
    assert status in (0, 1)                      # timings depend on the machine; only the report is checked
    assert "ipympl backend" in out
    for control in ("method ", "step_size [method=euler]", "lam_re [method=rk4]", "lam_im [method=midpoint]"):
        assert f" {control}" in out
    assert "cpu med" in out and ("all targets met" in out or "MISSED" in out)
    assert matplotlib.get_backend().lower() == "agg"     # the benchmark put the test's backend back


ALL_EXPLORERS = ["step_explorer", "tol_explorer", "stab_explorer", "depth_explorer"]


def _artists(fig):
    """Every artist of the figure, by identity, in drawing-tree order."""
    found = []

    def walk(a):
        found.append(id(a))
        for child in a.get_children():
            walk(child)

    walk(fig)
    return found


def _sweep_two_values(e):
    for name in e.controls:
        control = getattr(e, name)
        values = slider_values(control)
        for v in (values[-1], values[len(values) // 2], values[0]):
            control.value = v


@pytest.mark.parametrize("fixture", ALL_EXPLORERS)
def test_updates_mutate_artists_and_never_rebuild_the_figure(fixture, request):
    e = request.getfixturevalue(fixture)
    fig, axes, before = e.fig, list(e.fig.axes), _artists(e.fig)
    dynamic = [id(a) for a in e._dynamic]
    _sweep_two_values(e)
    assert e.fig is fig and list(e.fig.axes) == axes
    after = _artists(e.fig)
    assert set(dynamic) <= set(before)
    # the same objects: artists are mutated in place, none added or replaced
    assert [a for a in after if a in set(dynamic)] == [a for a in before if a in set(dynamic)]
    assert len(after) == len(before)


@pytest.mark.parametrize("fixture", ALL_EXPLORERS)
def test_slider_moves_blit_and_the_picture_equals_a_full_redraw(fixture, request):
    """After the first full draw, moves that keep the axes' limits only blit the changed artists;
    the blitted picture is pixel for pixel what a full redraw (and savefig) gives."""
    e = request.getfixturevalue(fixture)
    canvas = e.fig.canvas
    canvas.draw()                                       # as a displayed figure is drawn once
    draws, blits = e.full_draws, e.blits
    control = next(getattr(e, c) for c in e.controls if hasattr(getattr(e, c), "min"))
    values = slider_values(control)
    for v in (values[1], values[len(values) // 2]):
        control.value = v
    assert e.full_draws == draws and e.blits == blits + 2   # no full redraw, two blits
    blitted = np.asarray(canvas.buffer_rgba()).copy()
    saved = redrawn_from_scratch(e)
    assert np.array_equal(blitted, saved)
    canvas.draw()
    assert e.full_draws == draws + 1
    assert np.array_equal(np.asarray(canvas.buffer_rgba()), blitted)


@pytest.mark.parametrize("fixture", ALL_EXPLORERS)
def test_new_axis_limits_redraw_the_whole_figure_once(fixture, request):
    """A cached background is only reused while every axis keeps its limits (and the canvas its size)."""
    e = request.getfixturevalue(fixture)
    e.fig.canvas.draw()
    control = next(getattr(e, c) for c in e.controls if hasattr(getattr(e, c), "min"))
    values = slider_values(control)
    ax = e.fig.axes[-1]
    lo, hi = ax.get_xlim()
    ax.set_xlim(lo, hi + (hi - lo))                     # e.g. an explorer growing an axis for new data
    draws, blits = e.full_draws, e.blits
    control.value = values[2]
    assert e.full_draws == draws + 1 and e.blits == blits     # Agg's draw_idle draws at once
    control.value = values[3]
    assert e.full_draws == draws + 1 and e.blits == blits + 1
    ax.set_xlim(lo, hi)
    control.value = values[0]


def test_tolerance_explorer_h_axis_holds_every_step(tol_explorer):
    e = tol_explorer
    for method in ("dopri5", "bosh3"):
        e.method.value = method
        for tol in slider_values(e.tolerance)[::3]:
            e.tolerance.value = tol
            lo, hi = e.ax_h.get_ylim()
            h = np.concatenate([e.h_line.get_ydata(), e.h_rej.get_offsets()[:, 1]])
            assert lo <= h.min() and h.max() <= hi, (method, tol)


def test_tolerance_slider_positions_are_the_work_precision_runs(tol_explorer):
    """The slider moves by decades, as the diagram's adaptive runs do: at every position the star sits on one of the
    diagram's points. The runs the slider shows are the diagram's, so ``precompute`` adds no solve to the build."""
    e = tol_explorer
    for method in e.methods:
        e.method.value = method
        rows = {tuple(row) for row in e.work_precision[method]}
        for tol in slider_values(e.tolerance):
            e.tolerance.value = tol
            x, y = e.wp_point.get_data()
            assert (x[0], y[0]) in rows, (method, tol)
    assert len(slider_values(e.tolerance)) == len(e.work_precision["dopri5"]) == 6     # 1e-7 … 1e-2
