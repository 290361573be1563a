"""ResNet, RK-Net and ODE-Net on the 8×8 digits: parameters, NFE counting, gradients, training,
checkpoints, the test-time tolerance sweep, the explorer and the lesson's exercise checks."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from odeteach import solve  # noqa: E402
from odeteach import classifier as C  # noqa: E402
from odeteach.classifier import (CHECKPOINT_DIR, KINDS, History, SweepPoint, TrainConfig, below_the_floor,  # noqa: E402
                                 breakdown_tolerance, cheapest_safe_tolerance, compare_mistakes,
                                 checkpoint_path, count_parameters, evaluate, load_pretrained, loosest_safe_tolerance,
                                 make_model, resolve_device, save_checkpoint, solver_steps, tolerance_sweep, train,
                                 train_checkpoints)
from odeteach.data.digits import Digits, load_digits  # noqa: E402
from odeteach.exercises import lesson04  # noqa: E402
from odeteach.widgets.base import Explorer, slider_values  # noqa: E402
from odeteach.widgets.classifier import LossCurve, ClassifierToleranceExplorer  # noqa: E402
from widget_support import redrawn_from_scratch  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def small(digits):
    """A 96-image training subset and 64 test images: enough to see training work, fast."""
    return Digits(digits.x_train[:96], digits.y_train[:96], digits.x_test[:64], digits.y_test[:64])


@pytest.fixture(scope="module")
def shipped():
    return {kind: load_pretrained(kind, device="cpu") for kind in KINDS}


# --------------------------------------------------------------------------------------------
# Models


def test_parameter_counts_and_the_papers_ratio():
    counts = {kind: count_parameters(make_model(kind)) for kind in KINDS}
    assert counts["rknet"] == counts["odenet"]                 # same dynamics, different solver
    assert counts["odenet"] <= 0.40 * counts["resnet"]         # the target
    # Where the saving comes from: 6 blocks of 18C² + 8C against one of 18C² + 26C (C = 32).
    c = 32
    assert counts["resnet"] - counts["odenet"] == 6 * (18 * c * c + 8 * c) - (18 * c * c + 26 * c)


@pytest.mark.parametrize("kind", KINDS)
def test_forward_shapes(kind):
    model = make_model(kind)
    out = model(torch.rand(5, 1, 8, 8))
    assert out.shape == (5, 10) and torch.isfinite(out).all()


def test_odenet_counts_its_evaluations_like_the_solver():
    model = make_model("odenet", adjoint=False)
    x = torch.rand(7, 1, 8, 8)
    with torch.no_grad():
        model(x)
        h0 = model.downsampling(x)
        stats = solve(model.feature.func, h0, torch.tensor([0.0, 1.0]), rtol=1e-3, atol=1e-3).stats
    assert model.ode_block.nfe_forward == stats.nfe > 6
    looser = model.ode_block
    looser.rtol = looser.atol = 1e-1
    with torch.no_grad():
        model(x)
    assert looser.nfe_forward < stats.nfe


def test_rknet_backward_takes_one_vjp_per_evaluation():
    model = make_model("rknet")
    F.cross_entropy(model(torch.rand(4, 1, 8, 8)), torch.tensor([0, 1, 2, 3])).backward()
    assert model.ode_block.nfe_forward == 16          # 4 steps of RK4
    assert model.ode_block.nfe_backward == 16


def test_adjoint_gradients_agree_with_backprop():
    # A small ODE-Net (8 channels) in float64; the two gradients differ by the solvers' errors only.
    torch.manual_seed(1)
    x, y = torch.rand(2, 1, 8, 8, dtype=torch.float64), torch.tensor([3, 1])
    grads, nfes = {}, {}
    for adjoint in (False, True):
        model = make_model("odenet", channels=8, adjoint=adjoint, rtol=1e-5, atol=1e-5, seed=3).double()
        F.cross_entropy(model(x), y).backward()
        grads[adjoint] = torch.cat([p.grad.flatten() for p in model.parameters()])
        nfes[adjoint] = (model.ode_block.nfe_forward, model.ode_block.nfe_backward)
    assert torch.isfinite(grads[True]).all()
    cosine = F.cosine_similarity(grads[True], grads[False], dim=0)
    assert cosine > 0.999
    assert nfes[True][1] > 0 and nfes[False][1] > 0
    assert nfes[True][0] == nfes[False][0]             # the forward solve is the same


@pytest.mark.parametrize("call, message", [
    (lambda: make_model("vgg"), "Valid kinds"),
    (lambda: make_model("resnet", method="rk4"), "not to the resnet"),
    (lambda: make_model("rknet", adjoint=True), "adjoint must be False"),
    (lambda: make_model("odenet", method="euler"), "needs a step_size"),
    (lambda: make_model("odenet", method="rk45"), "Unknown method"),
    (lambda: make_model("odenet", channels=12), "multiple of 8"),
    (lambda: make_model("odenet", channels=0), "positive integer"),
    (lambda: make_model("resnet")(torch.rand(2, 3, 8, 8)), "expected images"),
    (lambda: TrainConfig(epochs=0), "positive integer"),
    (lambda: TrainConfig(lr=float("nan")), "finite number"),
])
def test_bad_input_raises_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_cuda_device_is_refused_clearly_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_device("cuda")
    assert resolve_device(None).type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", KINDS)
def test_trains_and_evaluates_on_cuda(kind, small):
    model = make_model(kind, device="cuda")
    history = train(model, small, TrainConfig(epochs=1, batch_size=32), progress=False)
    assert math.isfinite(history.loss[-1])
    assert evaluate(model, small.x_test, small.y_test)["accuracy"] >= 0


# --------------------------------------------------------------------------------------------
# Training


def test_training_is_seeded_and_lowers_the_loss(small):
    config = TrainConfig(epochs=4, batch_size=32, lr=3e-3, seed=5)
    runs = []
    for _ in range(2):
        model = make_model("resnet", seed=5)
        runs.append((train(model, small, config, progress=False), model))
    (h1, m1), (h2, m2) = runs
    assert h1.loss == h2.loss
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert len(h1.loss) == 4 * 3 and len(h1.epoch_time) == 4
    assert sum(h1.loss[-3:]) < 0.98 * sum(h1.loss[:3])    # seeded: 0.954 on the dev machine


def test_odenet_training_records_nfe_and_calls_back(small):
    seen = []
    model = make_model("odenet")
    history = train(model, small, TrainConfig(epochs=1, batch_size=48), progress=False,
                    on_batch=lambda h: seen.append(len(h.loss)))
    assert seen == [1, 2]
    assert len(history.nfe_forward) == len(history.nfe_backward) == 2
    assert all(n >= 6 for n in history.nfe_forward) and all(n > 0 for n in history.nfe_backward)


def test_train_checkpoints_is_reproducible(tmp_path, small):
    config = TrainConfig(epochs=1, batch_size=48, seed=2)
    states = []
    for run in ("a", "b"):
        path = train_checkpoints(tmp_path / run, kinds=("resnet",), config=config, data=small, progress=False)["resnet"]
        states.append(torch.load(path, weights_only=True)["state_dict"])
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_save_and_load_round_trip(tmp_path, small):
    model = make_model("odenet", rtol=1e-2, atol=1e-4)
    path = save_checkpoint(model, checkpoint_path("odenet", tmp_path), train_config=TrainConfig(), history=History(loss=[1.0]))
    loaded, history, config = load_pretrained("odenet", directory=tmp_path)
    assert history.loss == [1.0] and config["model"]["rtol"] == 1e-2 and loaded.ode_block.atol == 1e-4
    with torch.no_grad():
        assert torch.equal(loaded(small.x_test[:4]), model.eval()(small.x_test[:4]))
    with pytest.raises(FileNotFoundError, match="python -m odeteach.train digits"):
        load_pretrained("resnet", directory=tmp_path)


# --------------------------------------------------------------------------------------------
# The shipped checkpoints (the lesson's numbers)


@pytest.mark.parametrize("kind", KINDS)
def test_shipped_checkpoints_are_small_and_load_weights_only(kind):
    path = CHECKPOINT_DIR / f"digits_{kind}.pt"
    assert path.stat().st_size <= 1_000_000
    blob = torch.load(path, map_location="cpu", weights_only=True)
    assert blob["kind"] == f"digits_{kind}" and blob["config"]["kind"] == kind and blob["meta"]["history"]["test_accuracy"]


def test_shipped_models_reach_the_targets(shipped, digits):
    acc = {kind: evaluate(model, digits.x_test, digits.y_test)["accuracy"] for kind, (model, _, _) in shipped.items()}
    assert acc["odenet"] >= 0.97
    assert abs(acc["resnet"] - acc["odenet"]) <= 0.01
    assert acc["rknet"] >= 0.95
    for kind, (_, history, _) in shipped.items():   # the checkpoint's own record agrees with a fresh evaluation
        assert history.test_accuracy[-1] == pytest.approx(acc[kind], abs=1e-9)


# --------------------------------------------------------------------------------------------
# Test-time tolerance


def test_tolerance_sweep_trades_nfe_for_accuracy(shipped, small):
    model = shipped["odenet"][0]
    trained = (model.ode_block.rtol, model.ode_block.atol)
    points = tolerance_sweep(model, small.x_test, small.y_test, [1e-4, trained[0], 1e0])
    assert (model.ode_block.rtol, model.ode_block.atol) == trained     # restored
    tight, train_tol, loose = points
    assert tight.nfe_per_batch > train_tol.nfe_per_batch > loose.nfe_per_batch
    assert train_tol.accuracy == evaluate(model, small.x_test, small.y_test)["accuracy"]
    assert tight.accuracy >= 0.9


def test_below_the_floor_restores_the_solver(shipped, small):
    model = shipped["odenet"][0]
    rows = below_the_floor(model, small.x_test, small.y_test, [(None, None), ("euler", 1.0), ("rk4", 0.5)])
    assert [r["nfe"] for r in rows] == [0, 1, 8]
    assert (model.ode_block.method, model.ode_block.step_size) == ("dopri5", None)
    assert rows[0]["accuracy"] < rows[2]["accuracy"]      # skipping the ODE block costs accuracy
    with pytest.raises(ValueError, match="fixed-step"):
        below_the_floor(model, small.x_test, small.y_test, [("dopri5", 1.0)])


def test_tolerance_sweep_reports_solver_failures(digits):
    model = make_model("odenet")
    model.ode_block.max_num_steps = 2
    point, = tolerance_sweep(model, digits.x_test[:8], digits.y_test[:8], [1e-8])
    assert point.error is not None and "max_num_steps" in point.error and math.isnan(point.accuracy)


@pytest.mark.parametrize("call", [
    lambda m, d: tolerance_sweep(make_model("resnet"), d.x_test, d.y_test, [1e-3]),
    lambda m, d: tolerance_sweep(m, d.x_test, d.y_test, []),
    lambda m, d: tolerance_sweep(m, d.x_test, d.y_test, [0.0]),
    lambda m, d: evaluate(m, d.x_test, d.y_test[:3]),
    lambda m, d: evaluate(m, d.x_test, d.y_test, batch_size=0),
])
def test_sweep_and_evaluate_reject_bad_input(call, small):
    with pytest.raises(ValueError):
        call(make_model("odenet"), small)


def points(tols, accs):
    return [SweepPoint(t, a, 1.0, 1.0) for t, a in zip(tols, accs)]


@pytest.mark.parametrize("tols, accs, broken, safe", [
    ([1e-4, 1e-3, 1e-2, 1e-1], [0.98, 0.98, 0.96, 0.5], 1e-2, 1e-3),
    ([1e-1, 1e-4, 1e-2], [0.5, 0.98, 0.975], 1e-1, 1e-2),
    ([1e-4, 1e-3], [0.98, 0.979], None, 1e-3),
    ([1e-4, 1e-3, 1e-2], [0.98, math.nan, 0.98], None, 1e-4),
])
def test_breakdown_and_safe_tolerance(tols, accs, broken, safe):
    assert breakdown_tolerance(points(tols, accs)) == broken
    assert loosest_safe_tolerance(points(tols, accs)) == safe


@pytest.mark.parametrize("tols, accs, nfes, cheapest", [
    ([1e-4, 1e-3, 1e-2, 1e-1], [0.98, 0.98, 0.98, 0.98], [32, 26, 14, 14], 1e-2),   # a floor: the tightest of it
    ([1e-1, 1e-4, 1e-2], [0.5, 0.98, 0.975], [8, 30, 20], 1e-2),                    # unordered; 1e-1 unsafe
    ([1e-4, 1e-3, 1e-2], [0.98, 0.98, 0.98], [30, 20, 26], 1e-3),                   # NFE rises again
    ([1e-4, 1e-3, 1e-2], [0.98, math.nan, 0.98], [30, math.nan, 14], 1e-4),         # a failed solve stops the run
])
def test_cheapest_safe_tolerance(tols, accs, nfes, cheapest):
    pts = [SweepPoint(t, a, n, 1.0) for t, a, n in zip(tols, accs, nfes)]
    assert cheapest_safe_tolerance(pts) == cheapest
    with pytest.raises(ValueError, match="drop"):
        cheapest_safe_tolerance(pts, drop=-0.1)


def test_compare_mistakes_counts_images_and_calls_ties():
    result = compare_mistakes((0, 11, 18, 20, 330, 357), (0, 11, 18, 20, 330, 357, 181), 359)
    assert (result.wrong_a, result.wrong_b, result.only_a, result.only_b, result.tie) == (6, 7, 0, 1, True)
    assert "6 vs 7 wrong of 359 images" in str(result) and "a tie" in str(result)
    lopsided = compare_mistakes(range(10), (), 359)      # 10 against 0: beyond 2·√10
    assert not lopsided.tie and "real difference" in str(lopsided)
    assert compare_mistakes(range(4), (), 359).tie         # 4 against 0: within 2·√4
    assert compare_mistakes((), (), 359).tie
    with pytest.raises(ValueError, match="0…9"):
        compare_mistakes([3, 12], [1], 10)
    with pytest.raises(ValueError, match="positive integer"):
        compare_mistakes([], [], 0)


def test_evaluate_lists_the_wrong_images(shipped, small):
    model = shipped["resnet"][0]
    r = evaluate(model, small.x_test, small.y_test, batch_size=24)     # indices across batches
    with torch.no_grad():
        wrong = (model(small.x_test).argmax(1) != small.y_test).nonzero().flatten().tolist()
    assert list(r["wrong"]) == wrong
    assert r["accuracy"] == pytest.approx(1 - len(wrong) / len(small.y_test))


def test_solver_steps_cover_the_interval(shipped, small):
    steps = solver_steps(shipped["odenet"][0], small.x_test, 1e-3)
    assert steps[0] == 0.0 and steps[-1] == pytest.approx(1.0) and steps == sorted(steps)
    assert len(solver_steps(shipped["odenet"][0], small.x_test, 1e-5)) > len(steps)
    with pytest.raises(ValueError, match="adaptive"):
        solver_steps(make_model("resnet"), small.x_test, 1e-3)
    with pytest.raises(ValueError, match="tol"):
        solver_steps(shipped["odenet"][0], small.x_test, 0.0)


def test_table1_states_the_images_behind_an_error():
    row = {"test_error": 6 / 359, "n_wrong": 6, "n_images": 359, "params": 36458, "saved_bytes": 1024,
           "ms_per_train_batch": 12.0, "nfe": 26}
    table = C.table1_markdown({"ODE-Net": row})
    assert "| ODE-Net | 1.67% (6 of 359) |" in table and "| 0.42% |" in table


# --------------------------------------------------------------------------------------------
# Widgets


def _key(tol):
    return round(math.log10(tol), 6)


@pytest.fixture
def tol_explorer(shipped, small):
    return ClassifierToleranceExplorer(shipped["odenet"][0], small.x_test[:32], small.y_test[:32],
                                       log10_range=(-4, 0, 1))


def test_tolerance_explorer_follows_the_slider(tol_explorer):
    explorer = tol_explorer
    assert isinstance(explorer, Explorer) and explorer.controls == ("tol",)
    assert len(explorer.points) == 5 and "trained at 1e-03" in explorer.readout.value
    seen = set()
    for tol in (1e-4, 1e-2, 1e0, 1e-3):
        explorer.tol.value = tol
        point = explorer.points[_key(tol)]
        assert f"{100 * point.accuracy:.2f}%" in explorer.readout.value
        assert f"NFE <b>{point.nfe_per_batch:.0f}</b>" in explorer.readout.value
        assert f"<b>{1e3 * point.seconds_per_batch:.1f} ms</b>" in explorer.readout.value
        assert list(explorer.cursors[0].get_xdata()) == [tol, tol]
        assert list(explorer.nfe_marker.get_ydata()) == [point.nfe_per_batch]
        assert explorer.message.value == ""
        seen.add(explorer.readout.value)
    assert len(seen) == 4
    nfe = [explorer.points[_key(t)].nfe_per_batch for t in (1e-4, 1e-2, 1e0)]
    assert nfe[0] > nfe[1] > nfe[2]
    assert explorer.nfe_line.get_xdata().tolist() == [1e-4, 1e-3, 1e-2, 1e-1, 1e0]


def test_tolerance_explorer_uses_a_primed_cache_and_tests_new_positions_once(tol_explorer, shipped, small):
    measured = tol_explorer.points[0.0]
    primed = ClassifierToleranceExplorer(shipped["odenet"][0], small.x_test[:32], small.y_test[:32],
                                         log10_range=(-4, 0, 2), precompute=False, points=[measured], value=1.0)
    assert list(primed.points) == [0.0] and f"{100 * measured.accuracy:.2f}%" in primed.readout.value
    primed.fig.canvas.draw()
    primed.tol.value = 1e-2                                 # new: tested now, added to the curves
    assert sorted(primed.points) == [-2.0, 0.0] and primed.nfe_line.get_xdata().tolist() == [1e-2, 1.0]
    nfe_top = primed.ax_nfe.get_ylim()[1]
    assert nfe_top >= max(p.nfe_per_batch for p in primed.points.values())   # limits grew to hold it
    point = primed.points[-2.0]
    primed.tol.value = 1.0
    primed.tol.value = 1e-2                                 # cached: the same point, not tested again
    assert primed.points[-2.0] is point and primed.ax_nfe.get_ylim()[1] == nfe_top


def test_tolerance_explorer_shows_failures_in_its_message(digits):
    model = make_model("odenet")
    model.ode_block.max_num_steps = 3
    explorer = ClassifierToleranceExplorer(model, digits.x_test[:8], digits.y_test[:8], log10_range=(-8, 0, 4),
                                           precompute=False, value=1e-8)
    for tol in (1e-8, 1e-4, 1e0):
        explorer.tol.value = tol
        failed = explorer.points[_key(tol)].error is not None
        assert "Traceback" not in explorer.message.value + explorer.readout.value
        assert ("solver failed" in explorer.message.value) == failed
        assert ("NFE" in explorer.readout.value) != failed
        assert len(explorer.nfe_marker.get_xdata()) == (0 if failed else 1)
    assert any(p.error for p in explorer.points.values())


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(log10_range=(0, -4, 1)), ValueError, "log10_range"),
    (dict(log10_range=(-4, 0, 0)), ValueError, "log10_range"),
    (dict(value=1e3), ValueError, "on the slider"),
    (dict(value=-1e-3), ValueError, "value"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(points=[(1e-3, 0.9, 20, 0.1)]), TypeError, "SweepPoint"),
])
def test_tolerance_explorer_rejects_bad_arguments(shipped, small, kwargs, error, words):
    with pytest.raises(error, match=words):
        ClassifierToleranceExplorer(shipped["odenet"][0], small.x_test[:8], small.y_test[:8], precompute=False, **kwargs)


def test_tolerance_explorer_rejects_bad_data_and_a_resnet(shipped, digits):
    with pytest.raises(TypeError, match="ODE-Net"):
        ClassifierToleranceExplorer(make_model("resnet"), digits.x_test, digits.y_test)
    with pytest.raises(ValueError, match="images"):
        ClassifierToleranceExplorer(shipped["odenet"][0], digits.x_test[:8, 0], digits.y_test[:8], precompute=False)


def _blitted_equals_a_full_redraw(e):
    """The canvas as blitting left it, and the same figure drawn from scratch by savefig (the changed
    artists drawn last there too, in the same order, as a blit draws them over everything else)."""
    blitted = np.asarray(e.fig.canvas.buffer_rgba()).copy()
    saved = redrawn_from_scratch(e)
    return np.array_equal(blitted, saved)


def test_tolerance_explorer_blits_and_the_picture_equals_a_full_redraw(tol_explorer):
    e = tol_explorer
    e.fig.canvas.draw()                                   # as a displayed figure is drawn once
    draws, blits = e.full_draws, e.blits
    for tol in slider_values(e.tol)[::-1]:                # every position: cached, so no error and a blit each
        e.tol.value = tol
        assert e.message.value == ""
    assert e.full_draws == draws and e.blits == blits + len(e.points)
    e.tol.value = 1e-2
    assert _blitted_equals_a_full_redraw(e)


def test_loss_curve_is_an_explorer_that_blits_and_grows_its_axes():
    curve = LossCurve(("resnet", "odenet"), every=1)
    assert isinstance(curve, Explorer) and curve.controls == () and curve.readout.value == ""
    curve.fig.canvas.draw()
    draws, blits = curve.full_draws, curve.blits
    loss = [0.5 * 0.9 ** k for k in range(9)]
    for n in range(1, 10):                                # inside the first axes: blits only
        curve.update(History(loss=loss[:n]), "odenet")
    assert curve.full_draws == draws and curve.blits == blits + 9
    assert "odenet: batch 9, loss <b>0.215</b>" in curve.readout.value and "resnet" not in curve.readout.value
    assert _blitted_equals_a_full_redraw(curve)
    curve.update(History(loss=[3e-3] * 10), "resnet")     # past the batch axis and under the loss axis
    assert curve.full_draws == draws + 1
    assert curve.ax.get_xlim() == (0, 20) and curve.ax.get_ylim() == (1e-3, 10.0)
    assert curve.message.value == ""


def test_loss_curve_rejects_bad_arguments():
    with pytest.raises(ValueError, match="every"):
        LossCurve(every=0)
    with pytest.raises(ValueError, match="n_batches"):
        LossCurve(n_batches=0)
    with pytest.raises(ValueError, match="labels"):
        LossCurve(())


def test_loss_curve_finish_draws_every_curve_in_full():
    # The saved notebook keeps the image made at display time: finish() must leave every curve drawn.
    curve = LossCurve(("resnet", "odenet"), every=5)
    runs = {"resnet": History(loss=[2.0, 1.0, 0.5]), "odenet": History(loss=[2.5, 1.5])}
    for label, history in runs.items():
        curve.update(history, label)                      # 3 and 2 batches: not a multiple of 5, not drawn
    assert len(curve.lines["resnet"].get_xdata()) == 0
    curve.finish(runs)
    assert list(curve.lines["resnet"].get_ydata()) == [2.0, 1.0, 0.5]
    assert list(curve.lines["odenet"].get_ydata()) == [2.5, 1.5]
    lo, hi = curve.ax.get_xlim()
    assert lo <= 1 and hi >= 3


def test_loss_curve_draws_histories():
    curve = LossCurve(("resnet", "odenet"), every=2)
    curve.update(History(loss=[2.0, 1.0, 0.5, 0.4]), "odenet")
    assert list(curve.lines["odenet"].get_ydata()) == [2.0, 1.0, 0.5, 0.4]
    curve.update(History(loss=[2.0, 1.5, 1.0]), "resnet")          # not every 2nd batch: not drawn yet
    assert len(curve.lines["resnet"].get_xdata()) == 0
    curve.update(History(loss=[2.0, 1.5, 1.0]), "resnet", force=True)
    assert len(curve.lines["resnet"].get_xdata()) == 3
    with pytest.raises(ValueError, match="unknown curve"):
        curve.watch("vgg")


# --------------------------------------------------------------------------------------------
# Exercise checks: the solution passes; the placeholder, copied and textbook numbers and plausible
# wrong answers fail, each with a hint that does not give the answer away


def assert_fails(result, *words):
    assert not result and str(result).startswith("❌")
    assert "Hint" in result.message
    for w in words:
        assert w in result.message, result.message


def resnet_right(c):
    return 6 * (2 * (9 * c * c + c) + 3 * 2 * c)


def odenet_right(c):
    return 2 * (9 * (c + 1) * c + c) + 3 * 2 * c


def test_parameter_formulas_accept_the_solution():
    result = lesson04.check_parameter_formulas(resnet_right, odenet_right)
    assert result and str(result).startswith("✅")


def _whole_model(c):   # the feature block plus downsampling (3×3 conv, GroupNorm, 4×4 conv) and head
    return resnet_right(c) + (9 * c + c) + 2 * c + (16 * c * c + c) + 2 * c + (10 * c + 10)


@pytest.mark.parametrize("resnet_fn, odenet_fn, words", [
    (None, None, ["not attempted"]),
    (lambda c: 112128, lambda c: 19264, ["same number for every C", "C = 32"]),                # copied from section 1
    (lambda c: 600_000, lambda c: 220_000, ["same number for every C"]),                      # the paper's Table 1
    (lambda c: 112128 * (c / 32) ** 2, odenet_right, ["C² term", "terms in C"]),               # the printout scaled
    (lambda c: 2 * (9 * c * c + c) + 6 * c, odenet_right, ["one residual block"]),            # forgot the 6
    (lambda c: 6 * (2 * 9 * c * c + 3 * 2 * c), odenet_right, ["terms in C", "biases"]),       # forgot the biases
    (resnet_right, lambda c: 2 * (9 * c * c + c) + 6 * c, ["time channel"]),                  # forgot t
    (resnet_right, lambda c: 2 * (9 * (c + 1) * (c + 1) + c + 1) + 6 * c, ["constant term"]), # t as output too
    (_whole_model, odenet_right, ["downsampling or the head"]),                                 # the whole model
    (lambda c: count_parameters(make_model("resnet", channels=c).feature), odenet_right, ["write it yourself"]),
    (lambda c: 1 / 0, odenet_right, ["ZeroDivisionError"]),
    (lambda c: "18C²", odenet_right, ["must return a number"]),
    (3, odenet_right, ["function of the number of channels"]),
])
def test_parameter_formulas_reject_wrong_answers(resnet_fn, odenet_fn, words):
    result = lesson04.check_parameter_formulas(resnet_fn, odenet_fn)
    assert_fails(result, *words)
    for c in (8, 16, 48):        # the hint never states a right count
        assert str(resnet_right(c)) not in result.message and str(odenet_right(c)) not in result.message
    assert count_parameters(make_model("resnet", channels=8).feature) == resnet_right(8)   # restored after


def concat_right(t, h):
    return torch.cat([torch.ones_like(h[:, :1]) * t, h], dim=1)


def test_concat_time_accepts_the_solution():
    assert lesson04.check_concat_time(concat_right)


@pytest.mark.parametrize("fn, words", [
    (None, ["not attempted"]),
    (lambda t, h: torch.cat([h, torch.ones_like(h[:, :1]) * t], dim=1), ["time channel is last"]),
    (lambda t, h: torch.cat([torch.zeros_like(h[:, :1]), h], dim=1), ["channels differ"]),
    (lambda t, h: torch.cat([torch.ones_like(h[:, :1]), h], dim=1), ["channels differ"]),     # t = 1 always
    (lambda t, h: h + t, ["one more channel"]),                                                # added, not stacked
    (lambda t, h: torch.cat([torch.ones_like(h[:1]) * t, h], dim=0), ["one more channel"]),   # the wrong dimension
    (lambda t, h: [t, h], ["return a tensor"]),
    (lambda t, h: 1 / 0, ["ZeroDivisionError"]),
])
def test_concat_time_rejects_wrong_answers(fn, words):
    assert_fails(lesson04.check_concat_time(fn), *words)


def cheapest_right(points, drop):
    points = sorted(points, key=lambda p: p.tol)
    reference, best = points[0].accuracy, points[0]
    for p in points[1:]:
        if math.isnan(p.accuracy) or p.accuracy < reference - drop:
            break
        if p.nfe_per_batch < best.nfe_per_batch:
            best = p
    return best.tol


def test_safe_tolerance_accepts_the_solution():
    assert lesson04.check_safe_tolerance(cheapest_right)


def _no_sort(points, drop):
    reference, best = points[0].accuracy, points[0]
    for p in points[1:]:
        if math.isnan(p.accuracy) or p.accuracy < reference - drop:
            break
        if p.nfe_per_batch < best.nfe_per_batch:
            best = p
    return best.tol


def _ignores_nan(points, drop):
    points = sorted(points, key=lambda p: p.tol)
    reference, best = points[0].accuracy, points[0]
    for p in points[1:]:
        if p.accuracy < reference - drop:        # NaN < x is False: a failed solve passes as safe
            break
        if p.nfe_per_batch < best.nfe_per_batch:
            best = p
    return best.tol


def _ignores_the_fall(points, drop):
    ordered = sorted(points, key=lambda p: p.tol)
    ok = [p for p in ordered if not math.isnan(p.accuracy) and p.accuracy >= ordered[0].accuracy - drop]
    return min(ok, key=lambda p: (p.nfe_per_batch, p.tol)).tol


def _best_as_reference(points, drop):
    points = sorted(points, key=lambda p: p.tol)
    reference, best = max(p.accuracy for p in points if not math.isnan(p.accuracy)), points[0]
    for p in points[1:]:
        if math.isnan(p.accuracy) or p.accuracy < reference - drop:
            break
        if p.nfe_per_batch < best.nfe_per_batch:
            best = p
    return best.tol


def _loosest_safe(points, drop):
    points = sorted(points, key=lambda p: p.tol)
    best = points[0]
    for p in points[1:]:
        if math.isnan(p.accuracy) or p.accuracy < points[0].accuracy - drop:
            break
        best = p
    return best.tol


def _loosest_of_equal_nfe(points, drop):
    points = sorted(points, key=lambda p: p.tol)
    reference, best = points[0].accuracy, points[0]
    for p in points[1:]:
        if math.isnan(p.accuracy) or p.accuracy < reference - drop:
            break
        if p.nfe_per_batch <= best.nfe_per_batch:
            best = p
    return best.tol


@pytest.mark.parametrize("fn, words", [
    (None, ["not attempted"]),
    (lambda p, d: 1e-1, []),                                   # the lesson's own answer for its sweep, copied
    (lambda p, d: 1e-3, []),                                   # "test at the training tolerance"
    (lambda p, d: 10.0, []),                                   # the old lesson's "loosest within 1 point"
    (_loosest_safe, ["looser is not always cheaper"]),                # the old lesson's rule, written out
    (_loosest_of_equal_nfe, ["looser is not always cheaper"]),
    (lambda p, d: min(p, key=lambda q: q.nfe_per_batch).tol, ["beyond the first tolerance"]),
    (_ignores_the_fall, ["stop looking"]),
    (_ignores_nan, ["NaN"]),
    (_no_sort, ["sort them"]),
    (_best_as_reference, ["not the best one"]),
    (lambda p, d: cheapest_right(p, 0.01), ["drop you are given"]),
    (lambda p, d: cheapest_safe_tolerance(p, drop=d), ["write it yourself"]),
    (lambda p, d: C.cheapest_safe_tolerance(p, drop=d), ["write it yourself"]),
    (lambda p, d: loosest_safe_tolerance(p, drop=d), ["write it yourself"]),
    (lambda p, d: sorted(p, key=lambda q: q.tol)[0], ["not the SweepPoint"]),
    (lambda p, d: 1 / 0, ["ZeroDivisionError"]),
    (3, ["pass a function"]),
])
def test_safe_tolerance_rejects_wrong_answers(fn, words):
    assert_fails(lesson04.check_safe_tolerance(fn), *words)
    assert cheapest_safe_tolerance(points([1e-3, 1e-2], [0.9, 0.9])) == 1e-3     # the package works again after


def test_figures_print_nothing_outside_a_kernel(capsys):
    # Outside IPython the Agg figure must not be "displayed" as Figure(...) text on stdout.
    curve = LossCurve(("odenet",))
    assert curve.widget is not None
    assert "Figure(" not in capsys.readouterr().out


def test_progress_bars_stay_after_training(small, capsys):
    # leave=True: a finished bar stays (a bar that closes itself shows "model not found" under Voilà).
    train(make_model("resnet"), small, TrainConfig(epochs=1, batch_size=96), progress=True)
    err = capsys.readouterr().err
    assert "resnet epoch 1/1: 100%" in err and err.endswith("\n")
