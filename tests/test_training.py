"""The shared training infrastructure: seeding, the loop and its log, and the one checkpoint format."""

import pytest
import torch

from odeteach.errors import SolverError
from odeteach.training import CheckpointError, TrainLog, fit, load_checkpoint, save_checkpoint, seed_everything


def _regression(seed=0):
    gen = seed_everything(seed)
    model = torch.nn.Linear(3, 1)
    x = torch.randn(64, 3, generator=gen)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    return model, lambda i: ((model(x) - y) ** 2).mean()


def test_fit_lowers_the_loss_and_logs_every_iteration():
    model, loss_fn = _regression()
    log = fit(model, loss_fn, 200, lr=0.05, progress=False)
    assert len(log.losses) == 200 and log.nfe == [] and log.seconds > 0
    assert log.recent_loss(10) < 0.01 * log.losses[0]


def test_fit_records_nfe_and_calls_on_step():
    model, loss_fn = _regression()
    seen = []
    log = fit(model, lambda i: (loss_fn(i), 10 + i), 5, lr=0.01, progress=False, on_step=lambda i, lg: seen.append(i))
    assert log.nfe == [10, 11, 12, 13, 14] and seen == [0, 1, 2, 3, 4]


def test_the_same_seed_gives_the_same_weights_bit_for_bit():
    runs = []
    for _ in range(2):
        model, loss_fn = _regression(seed=3)
        fit(model, loss_fn, 20, lr=0.05, progress=False)
        runs.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*runs))


def test_a_non_finite_loss_stops_with_a_message():
    model = torch.nn.Linear(1, 1)
    with pytest.raises(SolverError, match="lower lr"):
        fit(model, lambda i: model(torch.ones(1, 1)).sum() * float("nan"), 3, lr=0.1, progress=False)


def test_checkpoint_round_trip(tmp_path):
    model, loss_fn = _regression()
    log = fit(model, lambda i: (loss_fn(i), 7), 3, lr=0.01, progress=False)
    path = save_checkpoint(tmp_path / "sub" / "m.pt", model, kind="linear", config={"in": 3, "out": 1}, seed=0,
                           log=log, note="hello", table=[1.0, 2.0])
    blob = load_checkpoint(path, kind="linear")
    assert blob["config"] == {"in": 3, "out": 1} and blob["seed"] == 0 and blob["meta"]["note"] == "hello"
    assert TrainLog.from_dict(blob["log"]).nfe == [7, 7, 7]
    fresh = torch.nn.Linear(3, 1)
    fresh.load_state_dict(blob["state_dict"])
    assert all(torch.equal(a, b) for a, b in zip(fresh.parameters(), model.parameters()))


def test_checkpoint_errors_say_what_to_do(tmp_path):
    with pytest.raises(CheckpointError, match="python -m odeteach.train"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="format"):
        load_checkpoint(tmp_path / "old.pt")
    save_checkpoint(tmp_path / "a.pt", torch.nn.Linear(1, 1), kind="cnf", config={}, seed=0)
    with pytest.raises(CheckpointError, match="'cnf' model, not a 'rnn'"):
        load_checkpoint(tmp_path / "a.pt", kind="rnn")


def test_a_missing_checkpoint_is_a_file_not_found_error_naming_the_retrain_command(tmp_path):
    from odeteach.training import CheckpointMissing
    with pytest.raises(FileNotFoundError, match="python -m odeteach.train spirals") as info:
        load_checkpoint(tmp_path / "gone.pt", kind="rnn", retrain="spirals")
    assert isinstance(info.value, CheckpointMissing) and isinstance(info.value, CheckpointError)


class _Stop(Exception):
    pass


def _noisy_run(snapshot=None, stop_at=None, iterations=12):
    """A run whose every step draws from torch's global generator and from a generator of its own."""
    gen = seed_everything(5)
    model = torch.nn.Linear(3, 1)
    x = torch.randn(32, 3, generator=gen)
    noise = torch.Generator().manual_seed(9)

    def loss(i):
        if i == stop_at:
            raise _Stop
        jitter = 0.1 * torch.randn(32, 1, generator=noise) + 0.01 * torch.randn(32, 1)
        return ((model(x) - jitter - x.sum(1, keepdim=True)) ** 2).mean(), i

    log = fit(model, loss, iterations, lr=0.05, progress=False, snapshot=snapshot, snapshot_every=4,
              generators=(noise,))
    return model, log


def test_a_stopped_run_resumes_from_its_snapshot_and_ends_bit_for_bit_like_an_unbroken_one(tmp_path):
    path = tmp_path / "run.snapshot.pt"
    unbroken, unbroken_log = _noisy_run()
    with pytest.raises(_Stop):
        _noisy_run(path, stop_at=10)          # stopped after iteration 9; the last snapshot is after 8
    blob = torch.load(path, weights_only=True)
    assert blob["done"] == 8 and len(blob["log"]["losses"]) == 8
    resumed, resumed_log = _noisy_run(path)
    assert all(torch.equal(a, b) for a, b in zip(unbroken.parameters(), resumed.parameters()))
    assert resumed_log.losses == unbroken_log.losses and resumed_log.nfe == list(range(12))
    assert not path.exists()                  # a finished run leaves no snapshot behind


def test_a_snapshot_of_another_run_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "run.snapshot.pt"
    with pytest.raises(_Stop):
        _noisy_run(path, stop_at=5)
    with pytest.raises(CheckpointError, match="another run.*Delete it"):
        _noisy_run(path, iterations=20)
