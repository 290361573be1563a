"""Issue 14, tunable networks: settings as data (applied and undone), measuring them, the Pareto front and
``choose``: feasible, infeasible, ties and unordered input."""

import math
import random

import pytest
import torch

from odeteach import tuning as T
from odeteach.classifier import make_model
from odeteach.tuning import Measurement, Setting


def point(label_method="rk4", steps=1, accuracy=0.9, nfe=4, ms=1.0, memory=100, tol=None, error=None):
    setting = Setting(label_method, tol=tol) if tol is not None else Setting(label_method, steps=steps)
    return Measurement(setting, accuracy, nfe, ms, memory, 10, error)


# ---------------------------------------------------------------- settings as data
def test_settings_check_their_own_arguments():
    assert Setting("rk4", steps=2).label == "rk4, 2 steps" and Setting("euler", steps=1).label == "euler, 1 step"
    assert Setting("dopri5", tol=1e-3).label == "dopri5, tol 0.001"
    with pytest.raises(ValueError, match="Valid methods"):
        Setting("rk5", steps=1)
    with pytest.raises(ValueError, match="adaptive"):
        Setting("dopri5", steps=2)
    with pytest.raises(ValueError, match="fixed steps"):
        Setting("rk4", tol=1e-3)
    with pytest.raises(ValueError, match="steps"):
        Setting("rk4", steps=0)
    assert len(T.DEFAULT_SETTINGS) == 3 * 6 + 2 * len(T.TOLERANCES)


@pytest.mark.parametrize("start", [dict(method="dopri5", rtol=1e-3, atol=1e-3), dict(method="dopri5", rtol=1e-4, atol=1e-6),
                                   dict(method="rk4", step_size=0.25), dict(method="rk4", step_size=0.3)])
def test_applying_and_undoing_leaves_the_model_unchanged(start):
    model = make_model("odenet", channels=8, seed=0, **{k: v for k, v in start.items() if k != "method"},
                       method=start["method"])
    block = model.ode_block
    before = (block.method, block.rtol, block.atol, block.step_size)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(x)
        for setting in (Setting("euler", steps=3), Setting("bosh3", tol=0.1), Setting("rk4", steps=8)):
            previous = setting.apply(model)
            assert block.method == setting.method
            previous.apply(model)
            assert (block.method, block.rtol, block.atol, block.step_size) == before
            with setting.applied(model):
                assert block.method == setting.method
            assert (block.method, block.rtol, block.atol, block.step_size) == before
        assert torch.equal(model(x), out)
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())


def test_settings_need_an_ode_net():
    with pytest.raises(TypeError, match="ODE-Net"):
        Setting("rk4", steps=1).apply(make_model("resnet", channels=8))


# ---------------------------------------------------------------- measuring
def test_peak_bytes_counts_what_is_alive_at_once():
    x = torch.randn(64, 256)
    size = x.numel() * 4
    assert T.peak_bytes(lambda a: (a * 2 + 1).sum(), x) == 2 * size           # a*2 and a*2+1 at once
    assert T.peak_bytes(lambda a: torch.stack([a * k for k in range(5)]).sum(), x) == 10 * size
    assert T.peak_bytes(lambda a: a.view(-1)[:10].sum(), x) < 64                # views of the input cost nothing


def test_measure_settings_on_a_small_ode_net():
    model = make_model("odenet", channels=8, seed=0)
    x = torch.randn(20, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 10, (20,), generator=torch.Generator().manual_seed(2))
    settings = [Setting("euler", steps=1), Setting("euler", steps=4), Setting("rk4", steps=2), Setting("dopri5", tol=1e-3)]
    points = T.measure_settings(model, x, y, settings, repeats=2)
    assert [p.setting for p in points] == settings
    assert [p.nfe for p in points[:3]] == [1, 4, 8]                              # steps × stages
    assert all(p.error is None and 0 <= p.accuracy <= 1 and p.ms_per_batch > 0 for p in points)
    assert points[2].peak_bytes > points[0].peak_bytes                          # rk4 keeps its stages
    assert model.ode_block.method == "dopri5" and model.training                # undone, mode restored
    with pytest.raises(ValueError, match="same"):
        T.measure_settings(model, x, y[:3], settings)
    with pytest.raises(TypeError, match="Setting"):
        T.measure_settings(model, x, y, [("rk4", 2)])


# ---------------------------------------------------------------- choosing
POINTS = [point("euler", 1, 0.95, 1, 0.5), point("midpoint", 1, 0.978, 2, 0.9), point("rk4", 1, 0.981, 4, 1.1),
          point("rk4", 2, 0.983, 8, 2.0), point("euler", 8, 0.981, 8, 1.5), point("dopri5", tol=1e-3, accuracy=0.983, nfe=26, ms=9.0)]


def test_choose_the_cheapest_that_meets_every_constraint():
    c = T.choose(POINTS, min_accuracy=0.97)
    assert c.chosen.label == "midpoint, 1 step" and "midpoint, 1 step" in c.why and c.closest is None
    assert T.choose(POINTS, min_accuracy=0.98).chosen.label == "rk4, 1 step"
    assert T.choose(POINTS, min_accuracy=0.98, max_nfe=3).chosen is None
    assert T.choose(POINTS).chosen.label == "euler, 1 step"                     # no constraint: the cheapest
    assert T.choose(POINTS, min_accuracy=0.97, cost="ms").chosen.label == "midpoint, 1 step"
    assert T.choose(POINTS, max_ms=0.6, cost="ms").chosen.label == "euler, 1 step"


def test_an_impossible_constraint_gets_a_plain_answer():
    c = T.choose(POINTS, min_accuracy=0.999)
    assert c.chosen is None and "no setting meets" in c.why
    assert c.closest.accuracy == 0.983 and c.misses and "accuracy" in c.misses[0]
    c = T.choose(POINTS, min_accuracy=0.98, max_nfe=3)
    assert c.chosen is None and any("NFE" in m or "accuracy" in m for m in c.misses)
    assert T.choose([point(error="SolverError: too many steps")], min_accuracy=0.5).chosen is None


def test_ties_in_cost_go_to_the_more_accurate_then_the_faster():
    tied = [point("euler", 8, 0.981, 8, 1.5), point("rk4", 2, 0.983, 8, 2.0), point("midpoint", 4, 0.983, 8, 1.8)]
    assert T.choose(tied).chosen.label == "midpoint, 4 steps"
    assert T.choose(tied, min_accuracy=0.9).chosen.label == "midpoint, 4 steps"


def test_unordered_input_gives_the_same_answers():
    shuffled = POINTS[:]
    random.Random(0).shuffle(shuffled)
    for kwargs in (dict(min_accuracy=0.97), dict(min_accuracy=0.98), dict(min_accuracy=0.999), dict(max_ms=1.0, cost="ms")):
        a, b = T.choose(POINTS, **kwargs), T.choose(shuffled, **kwargs)
        assert (a.chosen, a.closest, a.why) == (b.chosen, b.closest, b.why)
    assert T.pareto_front(shuffled) == T.pareto_front(POINTS)


def test_pareto_front():
    front = T.pareto_front(POINTS + [point("rk4", 3, 0.5, 12, 3.0, error="boom")])
    assert [p.label for p in front] == ["euler, 1 step", "midpoint, 1 step", "rk4, 1 step", "rk4, 2 steps"]
    assert all(a.nfe < b.nfe and a.accuracy < b.accuracy for a, b in zip(front, front[1:]))
    by_ms = T.pareto_front(POINTS, cost="ms")
    assert all(a.ms_per_batch <= b.ms_per_batch for a, b in zip(by_ms, by_ms[1:]))


def test_bad_constraints_are_explained():
    with pytest.raises(ValueError, match="fraction"):
        T.choose(POINTS, min_accuracy=97)
    with pytest.raises(ValueError, match="cost"):
        T.choose(POINTS, cost="flops")
    with pytest.raises(ValueError, match="max_ms"):
        T.choose(POINTS, max_ms=math.nan)


# ---------------------------------------------------------------- the command
def _run_tune(monkeypatch, capsys, *args):
    import json

    from odeteach import tune
    monkeypatch.setattr(tune, "measure", lambda name, repeats: POINTS)
    assert tune.main(["digits", *args, "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1]), out


def test_tune_command_chooses_the_cheapest_front_point(monkeypatch, capsys):
    result, out = _run_tune(monkeypatch, capsys, "--min-accuracy", "0.97", "--cost", "nfe")
    assert result["chosen"]["setting"] == "midpoint, 1 step" and result["chosen"]["nfe"] == 2
    assert {"accuracy", "nfe", "ms_per_batch"} <= set(result["chosen"])
    assert result["chosen"]["setting"] in [p["setting"] for p in result["front"]]
    assert [p["nfe"] for p in result["front"]] == sorted(p["nfe"] for p in result["front"])


def test_tune_command_answers_an_impossible_constraint_plainly(monkeypatch, capsys):
    result, out = _run_tune(monkeypatch, capsys, "--min-accuracy", "0.999")
    assert result["chosen"] is None and "no setting meets" in result["why"] and result["closest"]["accuracy"] == 0.983


def test_tune_command_rejects_a_percentage(monkeypatch, capsys):
    from odeteach import tune
    with pytest.raises(SystemExit) as exit_:
        tune.main(["digits", "--min-accuracy", "97"])
    assert exit_.value.code == 2 and "fraction" in capsys.readouterr().err
