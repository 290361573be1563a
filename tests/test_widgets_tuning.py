"""Lesson 7's constraint explorer (odeteach.widgets.tuning): every control position gives a readout and no error,
it chooses what tuning.choose chooses, says plainly when nothing meets the constraints, shades the region the
sliders set, blits every move (the cost switch included) and a blitted frame equals a full redraw; bad input
fails clearly. Synthetic Measurements built here (Agg backend, no model)."""

import base64
import html

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from odeteach import tuning as T  # noqa: E402
from odeteach.tuning import DEFAULT_SETTINGS, Measurement, Setting  # noqa: E402
from odeteach.widgets import TuningExplorer  # noqa: E402
from odeteach.widgets import base  # noqa: E402
from odeteach.widgets.base import Explorer, slider_values  # noqa: E402
from odeteach.widgets.tuning import GREYED  # noqa: E402
from widget_support import redrawn_from_scratch  # noqa: E402

STAGES = {"euler": (1, 1, 1.0), "midpoint": (2, 2, 0.3), "rk4": (4, 4, 0.1), "bosh3": (3, 3, 0.0), "dopri5": (6, 5, 0.0)}
BATCH = 359


def measured(seed=0, nfe_scale=1.0, batch=BATCH):
    """Every default setting with a plausible accuracy, NFE and time (noisy, so that the NFE and ms fronts
    differ), and one failed setting."""
    rng = np.random.default_rng(seed)
    out = []
    for s in DEFAULT_SETTINGS:
        stages, order, c = STAGES[s.method]
        if s.steps is not None:
            nfe, acc = stages * s.steps, 0.985 - min(0.6, 0.3 * c * (1 / s.steps) ** order)
        else:
            nfe, acc = int(round(nfe_scale * stages * (2 - 1.5 * np.log10(s.tol)))) + 2, 0.985 - 0.01 * s.tol
        acc = round(float(np.clip(acc + rng.normal(0, 0.002), 0, 1)) * batch) / batch
        out.append(Measurement(s, acc, nfe, (0.02 * nfe + 0.05) * batch * rng.uniform(0.8, 1.25), 1000 * nfe, batch))
    return out + [Measurement(Setting("dopri5", tol=1e-9), 0.0, 0, float("inf"), 0, batch, "SolverError: too many steps")]


@pytest.fixture(scope="module")
def explorer():
    return TuningExplorer(measured(0), others={"regularised ODE-Net": measured(1, nfe_scale=0.6, batch=200)},
                          accuracy_range=(90.0, 100.0))


@pytest.fixture(scope="module")
def single():
    return TuningExplorer(measured(2))


def expected_choice(e):
    """tuning.choose on the sliders' values, converted here: ms per image times the set's batch size."""
    pts = e.sets[e.active]
    return T.choose(pts, min_accuracy=e.min_accuracy.value / 100, max_ms=e.max_ms.value * pts[0].batch_size,
                    max_nfe=e.max_nfe.value, cost=e.cost.value)


def positions(e, every=1):
    """Each toggle combination, then each slider through its values (every ``every``-th, both ends)."""
    toggles = [getattr(e, c) for c in e.controls if not hasattr(getattr(e, c), "min")]
    sliders = [getattr(e, c) for c in e.controls if hasattr(getattr(e, c), "min")]
    combos = [[]]
    for t in toggles:
        combos = [c + [(t, v)] for c in combos for v in slider_values(t)]
    for combo in combos:
        for toggle, value in combo:
            toggle.value = value
        for slider in sliders:
            start, values = slider.value, slider_values(slider)
            for v in values[::every] + [values[-1], start]:
                slider.value = v
                yield tuple(str(t.value) for t, _ in combo) + (slider.description, v)


@pytest.mark.parametrize("fixture", ["explorer", "single"])
def test_every_control_position_reads_out_the_choice_of_tuning_choose(fixture, request):
    e = request.getfixturevalue(fixture)
    assert isinstance(e, Explorer) and e._dynamic
    n = 0
    for where in positions(e, every=1 if fixture == "single" else 3):
        assert e.message.value == "", (where, e.message.value)
        expected = expected_choice(e)
        assert e.choice.chosen == expected.chosen, where
        text = e.readout.value
        wanted = T.describe(expected.chosen) if expected.chosen else expected.why
        assert html.escape(wanted) in text, (where, text)
        n += 1
    assert n > 250


def test_the_model_toggle_is_shown_only_with_other_models(explorer, single):
    assert single.model is None and "model" not in single.controls
    assert explorer.controls[0] == "model" and explorer.widget.children[0].children[0] is explorer.model
    explorer.min_accuracy.value, explorer.max_nfe.value, explorer.max_ms.value = 97.0, explorer.max_nfe.max, slider_values(explorer.max_ms)[-1]
    explorer.cost.value = "nfe"
    for name in explorer.sets:
        explorer.model.value = name
        assert explorer.choice.chosen in explorer.sets[name] and explorer.readout.value.startswith(name)
    explorer.model.value = "ODE-Net"


def test_impossible_constraints_get_the_plain_sentence(single):
    e = single
    best = max(p.accuracy for p in e.sets["ODE-Net"] if p.error is None)
    e.min_accuracy.value = e.min_accuracy.max
    assert 100 * best < e.min_accuracy.value
    assert e.choice.chosen is None and e.readout.value.startswith("no setting meets every constraint")
    assert "Error" not in e.message.value and "Traceback" not in e.readout.value
    x, y = e.chosen_marker.get_data()                     # the closest setting ringed in red
    assert y[0] == pytest.approx(100 * e.choice.closest.accuracy)
    assert to_rgba(e.chosen_marker.get_markeredgecolor()) == to_rgba(base.REJECTED_COLOUR)
    e.min_accuracy.value = 97.0


def test_failed_settings_are_left_off_and_markers_follow_the_method_family(single):
    e = single
    pts = e.sets["ODE-Net"]
    fixed, adaptive = (e.dots[("ODE-Net", f)] for f in ("fixed", "adaptive"))
    assert len(fixed[1].get_offsets()) == sum(p.setting.steps is not None and p.error is None for p in pts) == 18
    assert len(adaptive[1].get_offsets()) == sum(p.setting.tol is not None and p.error is None for p in pts) == 12
    assert all(p.setting.method in ("bosh3", "dopri5") for p in adaptive[0])
    assert fixed[1].get_paths()[0] != adaptive[1].get_paths()[0]


@pytest.mark.parametrize("cost", ["nfe", "ms"])
def test_the_shaded_region_follows_the_sliders(single, cost):
    e = single
    e.cost.value = cost
    x_slider = e.max_nfe if cost == "nfe" else e.max_ms
    for acc in (slider_values(e.min_accuracy)[0], 97.3, e.min_accuracy.max):
        e.min_accuracy.value = acc
        assert e.region.get_y() == pytest.approx(acc)
        assert e.region.get_y() + e.region.get_height() == pytest.approx(e.ax.get_ylim()[1])
    values = slider_values(x_slider)
    for v in values[len(values) // 4: -1: max(1, len(values) // 8)]:
        x_slider.value = v
        assert e.region.get_x() == pytest.approx(e.ax.get_xlim()[0])
        assert e.region.get_x() + e.region.get_width() == pytest.approx(min(v, e.ax.get_xlim()[1]))
    x_slider.value = values[-1]                          # its top is no limit: the region reaches the right edge
    assert e.region.get_x() + e.region.get_width() == pytest.approx(e.ax.get_xlim()[1])
    e.cost.value, e.min_accuracy.value = "nfe", 97.0


@pytest.mark.parametrize("cost", ["nfe", "ms"])
def test_points_that_miss_the_constraint_off_the_x_axis_are_greyed(single, cost):
    e = single
    e.cost.value = cost
    other = e.max_ms if cost == "nfe" else e.max_nfe
    other.value = slider_values(other)[len(slider_values(other)) // 3]
    members, dots = e.dots[("ODE-Net", "fixed")]
    limit = other.value * BATCH if cost == "nfe" else other.value
    misses = [(p.ms_per_batch if cost == "nfe" else p.nfe) > limit for p in members]
    assert any(misses) and not all(misses)
    grey = np.array(to_rgba(GREYED))
    assert [np.allclose(c, grey) for c in dots.get_facecolors()] == misses
    other.value = slider_values(other)[-1]
    assert not any(np.allclose(c, grey) for c in dots.get_facecolors())
    e.cost.value = "nfe"


def test_every_move_blits_after_the_first_draw_the_cost_switch_included(explorer):
    e = explorer
    e.fig.canvas.draw()                                   # as a displayed figure is drawn once
    draws, blits = e.full_draws, e.blits
    for where in positions(e, every=7):
        assert e.full_draws == draws, where
    assert e.blits - blits > 30


def test_the_first_draw_shows_the_figure_and_keeps_a_background_for_each_cost():
    e = TuningExplorer(measured(3), others={"reg": measured(4)})
    canvas = e.fig.canvas                                 # Agg draws the first frame at once, when built
    assert e.full_draws == 1 and len(e._scenes) == 2      # the other cost's background rendered, unseen
    assert np.array_equal(np.asarray(canvas.buffer_rgba()), redrawn_from_scratch(e))
    e.cost.value = "ms"
    assert e.full_draws == 1 and e.blits == 1
    assert np.array_equal(np.asarray(canvas.buffer_rgba()), redrawn_from_scratch(e))


@pytest.mark.parametrize("cost", ["nfe", "ms"])
def test_a_blitted_frame_equals_a_full_redraw(explorer, cost):
    e = explorer
    canvas = e.fig.canvas
    canvas.draw()
    e.cost.value = cost
    e.model.value = "regularised ODE-Net"
    e.min_accuracy.value, e.max_nfe.value = 97.6, 20
    e.max_ms.value = slider_values(e.max_ms)[len(slider_values(e.max_ms)) // 2]
    draws = e.full_draws
    blitted = np.asarray(canvas.buffer_rgba()).copy()
    assert np.array_equal(blitted, redrawn_from_scratch(e))
    assert e.full_draws == draws
    e.model.value, e.cost.value = "ODE-Net", "nfe"


def test_show_carries_a_png_of_the_plane(single, monkeypatch):
    shown = []
    import IPython.display
    monkeypatch.setattr(IPython.display, "display", lambda data, raw=False: shown.append(data))
    base.show(single)
    (bundle,) = shown
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == single.widget.model_id
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")


def test_bad_input_fails_clearly():
    good = measured(0)
    with pytest.raises(ValueError, match="no measured settings"):
        TuningExplorer([])
    with pytest.raises(TypeError, match=r"\[1\] is a dict, not a tuning.Measurement"):
        TuningExplorer([good[0], {"accuracy": 0.9}])
    with pytest.raises(TypeError, match="list of tuning.Measurement"):
        TuningExplorer(good[0])
    with pytest.raises(ValueError, match="every setting .* failed"):
        TuningExplorer([good[-1]])
    with pytest.raises(ValueError, match="mixes batch sizes"):
        TuningExplorer(good[:3] + measured(0, batch=10)[:3])
    with pytest.raises(TypeError, match="others must be a dict"):
        TuningExplorer(good, others=[good])
    with pytest.raises(ValueError, match="'reg' has no measured settings"):
        TuningExplorer(good, others={"reg": []})
    with pytest.raises(ValueError, match="reuse the name"):
        TuningExplorer(good, others={"ODE-Net": good})
    for bad in [(99, 90), (90, 101), (90,), "high"]:
        with pytest.raises(ValueError, match="accuracy_range"):
            TuningExplorer(good, accuracy_range=bad)
    with pytest.raises(ValueError, match="min_accuracy"):
        TuningExplorer(good, min_accuracy="high")
    with pytest.raises(ValueError, match="finite time"):
        TuningExplorer([Measurement(Setting("rk4", steps=1), 0.9, 4, float("inf"), 0, 10)])
