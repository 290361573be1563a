"""``python -m odeteach.train NAME [--quick]`` and ``python -m odeteach.evaluate spirals|flows [--json]``:
a quick run trains into its own directory, and the evaluation of it ends with one line of JSON."""

import json

import pytest

from odeteach import evaluate, flows
from odeteach import latent as L
from odeteach import train


@pytest.fixture(scope="module")
def quick_dir(tmp_path_factory):
    """``--quick`` for both, with the iteration counts cut to a few (the command's plumbing is what is tested)."""
    out = tmp_path_factory.mktemp("quick")
    patch = pytest.MonkeyPatch()
    patch.setattr(L, "QUICK", {"latent_iterations": 3, "rnn_iterations": 3})
    patch.setattr(flows, "QUICK", {"iterations": {name: 2 for name in flows.CHECKPOINT_ITERATIONS}})
    try:
        assert train.main(["spirals", "--quick", "--out", str(out)]) == 0
        assert train.main(["flows", "--quick", "--out", str(out)]) == 0
    finally:
        patch.undo()
    return out


def test_quick_training_writes_every_checkpoint_in_its_own_directory(quick_dir):
    names = sorted(p.name for p in quick_dir.iterdir())
    assert names == sorted([L.LATENT_CHECKPOINT.name, L.RNN_CHECKPOINT.name] +
                           [f"flows_{n}.pt" for n in flows.CHECKPOINT_ITERATIONS])
    _, _, latent_log, rnn_log = L.load_pretrained(quick_dir / L.LATENT_CHECKPOINT.name, quick_dir / L.RNN_CHECKPOINT.name)
    assert len(latent_log.losses) == 3 and len(rnn_log.losses) == 3


def test_the_real_quick_variants_are_shorter_than_the_shipped_runs():
    """The same models and data with fewer iterations (their measured times are in the README)."""
    assert L.QUICK["latent_iterations"] < L.LATENT_ITERATIONS and L.QUICK["rnn_iterations"] < L.RNN_ITERATIONS
    assert all(flows.QUICK["iterations"][n] < flows.CHECKPOINT_ITERATIONS[n] for n in flows.CHECKPOINT_ITERATIONS)


def test_quick_is_refused_where_there_is_none(capsys):
    with pytest.raises(SystemExit) as exit_:
        train.main(["digits", "--quick"])
    assert exit_.value.code == 2 and "no quick variant" in capsys.readouterr().err


def test_evaluate_spirals_json(quick_dir, capsys):
    assert evaluate.main(["spirals", "--json", "--checkpoints", str(quick_dir)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    report = json.loads(out[-1])
    for name in ("Latent ODE", "RNN"):
        assert set(report[name]) == {"30", "50", "100"} and all(v > 0 for v in report[name].values())
    assert 0 <= report["coverage90"] <= 1 and 0 <= report["coverage90_fixed_sigma"] <= 1
    assert report["obs_std"] == 0.1 and report["obs_std_fitted"] > 0
    assert report["coverage90"] != report["coverage90_fixed_sigma"]     # σ̂ and σ give different bands
    assert any("fitted on the training spirals" in line for line in out)
    assert set(report["irregular_sampling"]) == {"uniform", "random", "bunched"}
    assert report["irregular_sampling"]["random"]["Latent ODE"] == report["Latent ODE"]
    assert any("Table 2" in line for line in out) and any("(paper)" in line for line in out)


def test_evaluate_flows_json(quick_dir, capsys, monkeypatch):
    real = flows.nll_table
    monkeypatch.setattr(flows, "nll_table", lambda cnfs: real(cnfs, n=200, entropy_points=2000))
    assert evaluate.main(["flows", "--json", "--checkpoints", str(quick_dir)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    table = json.loads(out[-1])
    assert set(table) == {"two_moons", "rings", "checkerboard"}
    for row in table.values():
        assert row["gap"] == pytest.approx(row["test_nll"] - row["entropy"])


def test_evaluate_says_what_is_missing(tmp_path, capsys):
    assert evaluate.main(["spirals", "--checkpoints", str(tmp_path)]) == 2
    assert "python -m odeteach.train spirals" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        evaluate.main(["flows", "--checkpoints", str(tmp_path / "nowhere")])
    assert exit_.value.code == 2 and "no such directory" in capsys.readouterr().err


def test_only_trains_one_model_of_a_target(tmp_path, monkeypatch, capsys):
    """``--only rings`` trains that density alone; a name the target does not have is refused with the valid ones."""
    monkeypatch.setattr(flows, "QUICK", {"iterations": {name: 4 for name in flows.CHECKPOINT_ITERATIONS}})
    assert train.main(["flows", "--quick", "--only", "rings", "--out", str(tmp_path / "a")]) == 0
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["flows_rings.pt"]
    with pytest.raises(SystemExit) as exit_:
        train.main(["flows", "--only", "spiral"])
    assert exit_.value.code == 2 and "has no model 'spiral'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        train.main(["digits", "--only", "rings"])
    assert exit_.value.code == 2 and "--only works with" in capsys.readouterr().err
    calls = []
    monkeypatch.setattr(L, "train_checkpoints", lambda **kw: calls.append(kw))
    assert train.main(["spirals", "--only", "rnn", "--out", str(tmp_path / "b")]) == 0
    assert calls[0]["only"] == "rnn"
