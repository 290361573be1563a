"""Lesson 3's explorers: they subclass Explorer, blit every control change (the field and the system
included), a blitted frame is pixel for pixel a full redraw, no control position shows an error, and
bad studies passed in fail with a clear error (Agg backend, no kernel; small studies)."""


import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from odeteach.adjoint_studies import (MLPField, drift_studies, lorenz, memory_study, nfe_studies,  # noqa: E402
                                      nfe_study)
from odeteach.problems import van_der_pol  # noqa: E402
from odeteach.widgets.adjoint import DriftExplorer, MemoryExplorer, NFEExplorer  # noqa: E402
from odeteach.widgets.base import Explorer, slider_values  # noqa: E402
from widget_support import redrawn_from_scratch  # noqa: E402

F64 = torch.float64


@pytest.fixture(scope="module")
def memory_explorer():
    return MemoryExplorer(points=memory_study((2, 4, 8), batch=4, width=4))


@pytest.fixture(scope="module")
def nfe_explorer():
    vdp = van_der_pol(1.0)
    cases = {"MLP": (MLPField(width=4, seed=2), torch.randn(3, 2, generator=torch.Generator().manual_seed(0), dtype=F64),
                     torch.tensor([0.0, 1.0], dtype=F64), None),
             "Van der Pol": (vdp, vdp.initial(), torch.tensor([0.0, 3.0], dtype=F64), ())}
    return NFEExplorer(studies=nfe_studies(cases, (1e-3, 1e-5, 1e-7)))


@pytest.fixture(scope="module")
def drift_explorer():
    systems = {"Van der Pol": (van_der_pol(1.0), (2.0, 6.0)), "Lorenz": (lorenz, (0.25, 0.5, 0.75))}
    return DriftExplorer(studies=drift_studies(systems, n_points=30))


ALL = ["memory_explorer", "nfe_explorer", "drift_explorer"]


def _positions(e):
    """Every control position, each toggle value with every slider value; yields where, and whether it moved."""
    def move(control, value):
        moved = control.value != value
        control.value = value
        return moved

    for name in e.controls:
        control = getattr(e, name)
        for value in slider_values(control):
            yield (name, value), move(control, value)
            if name in ("problem", "system"):
                slider = getattr(e, "tol" if name == "problem" else "horizon")
                for v in slider_values(slider):
                    yield (name, value, slider.description, v), move(slider, v)


@pytest.mark.parametrize("fixture", ALL)
def test_every_control_position_updates_without_an_error(fixture, request):
    e = request.getfixturevalue(fixture)
    assert isinstance(e, Explorer) and e._dynamic
    for where, _ in _positions(e):
        assert "Error" not in e.message.value and "Traceback" not in e.message.value, (where, e.message.value)


@pytest.mark.parametrize("fixture", ALL)
def test_every_control_change_blits_after_the_first_draw(fixture, request):
    """The axes hold every position (one range, or one cached background per system): no full redraw."""
    e = request.getfixturevalue(fixture)
    e.fig.canvas.draw()                                  # as a displayed figure is drawn once
    draws, blits, n_moves = e.full_draws, e.blits, 0
    for where, moved in _positions(e):
        assert e.blits == blits + moved and e.full_draws == draws, where   # each move blitted once, nothing redrawn
        blits, n_moves = e.blits, n_moves + moved
    assert n_moves > len(e.controls)


@pytest.mark.parametrize("fixture", ALL)
def test_a_blitted_frame_equals_a_full_redraw(fixture, request):
    e = request.getfixturevalue(fixture)
    canvas = e.fig.canvas
    canvas.draw()
    toggle = next((getattr(e, c) for c in ("system", "problem") if hasattr(e, c)), None)
    if toggle is not None:                               # the other field or system: its own background
        toggle.value = slider_values(toggle)[-1]
    slider = getattr(e, e.controls[-1])
    slider.value = slider_values(slider)[-1]
    draws = e.full_draws
    blitted = np.asarray(canvas.buffer_rgba()).copy()
    saved = redrawn_from_scratch(e)
    assert np.array_equal(blitted, saved)
    assert e.full_draws == draws
    if toggle is not None:
        toggle.value = slider_values(toggle)[0]


def test_drift_explorer_keeps_one_background_per_system(drift_explorer):
    e = drift_explorer
    e.fig.canvas.draw()
    assert len(e._scenes) == len(e.studies)              # rendered with the first full draw
    for system in e.studies:
        e.system.value = system
        for i in range(len(e.horizon.options)):
            e.horizon.value = i
            p = e.point
            x0, x1 = e.ax_path.get_xlim()
            assert x0 <= p.forward[:, 0].min() and p.forward[:, 0].max() <= x1     # every horizon in view
            assert e.ax_drift.get_xlim()[1] >= p.horizon
            assert f"T = {p.horizon:g}:" in e.drift.value


def test_nfe_explorer_curves_follow_the_field(nfe_explorer):
    e = nfe_explorer
    for name, pts in e.studies.items():
        e.problem.value = name
        assert list(e.fwd_line.get_ydata()) == [p.forward_nfe for p in pts]
        assert list(e.back_line.get_ydata()) == [p.backward_nfe for p in pts]
        lo, hi = e.ax_nfe.get_ylim()
        assert lo <= min(p.forward_nfe for p in pts) and max(p.backward_nfe for p in pts) <= hi
    e.tol.value = 1
    p = e.points[1]
    assert f"backward NFE <b>{p.backward_nfe}</b>" in e.nfe.value and f"{p.ratio:.2f}" in e.nfe.value


def test_memory_explorer_marks_the_selected_step_count(memory_explorer):
    e = memory_explorer
    e.steps.value = 2
    p = e.point
    assert p.steps == 8 and list(e.marks[0].get_xdata()) == [8, 8]
    assert list(e.dots[0].get_ydata()) == [p.backprop_bytes, p.adjoint_bytes]
    assert f"{p.backprop_seconds * 1e3:.0f} ms" in e.timing.value


def test_memory_explorer_says_when_points_were_not_timed():
    e = MemoryExplorer(points=memory_study((2, 4), batch=2, width=2, timing=False))
    assert "not timed" in e.timing.value and "Error" not in e.message.value


def test_studies_passed_in_are_checked():
    pts = memory_study((2,), batch=2, width=2, timing=False)
    with pytest.raises(TypeError, match="MemoryPoint"):
        MemoryExplorer(points=[object()])
    with pytest.raises(TypeError, match="memory_study"):
        MemoryExplorer(points=pts[0])
    with pytest.raises(ValueError, match="at least 1"):
        MemoryExplorer(points=[])
    f, z0, t = MLPField(width=2), torch.zeros(1, 2, dtype=F64), torch.tensor([0.0, 1.0], dtype=F64)
    with pytest.raises(ValueError, match="at least 2"):
        NFEExplorer(studies={"one tolerance": nfe_study(f, z0, t, (1e-3,))})
    with pytest.raises(ValueError, match="same tolerances"):
        NFEExplorer(studies={"a": nfe_study(f, z0, t, (1e-3, 1e-4)), "b": nfe_study(f, z0, t, (1e-3, 1e-5))})
    with pytest.raises(TypeError, match="non-empty dict"):
        NFEExplorer(studies={})
    with pytest.raises(TypeError, match="DriftPoint"):
        DriftExplorer(studies={"vdp": pts})
    with pytest.raises(ValueError, match="at least one system"):
        DriftExplorer({})
