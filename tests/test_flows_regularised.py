"""Issue 12, optional item 6: Finlay et al.'s regularised dynamics for the CNF (``odeteach.flows.regularised``)."""

import pytest
import torch
from torch import nn

from odeteach.flows import CNF, compare_regularised, describe_regularised, regularised_log_prob, train_cnf
from odeteach.training import CheckpointError


class _Linear(nn.Module):
    """f(z, t) = A z: the path is z(t) = exp(At) z(0), the Jacobian is A everywhere."""

    def __init__(self, a):
        super().__init__()
        self.a = nn.Parameter(torch.as_tensor(a, dtype=torch.float64))

    def forward(self, t, z):
        return z @ self.a.T


def _linear_cnf(a):
    cnf = CNF(2, 4, 1, rtol=1e-9, atol=1e-9).double()
    cnf.field = _Linear(a)
    return cnf


def test_the_two_integrals_match_their_closed_forms_on_a_linear_field():
    a = torch.tensor([[-0.5, 1.2], [-0.7, 0.3]], dtype=torch.float64)
    cnf = _linear_cnf(a)
    x = torch.tensor([[1.0, -0.5], [0.2, 2.0], [-1.5, 0.4]], dtype=torch.float64)
    with torch.no_grad():
        log_p, kinetic, jacobian, nfe = regularised_log_prob(cnf, x)
        plain = cnf.log_prob(x)
    assert torch.allclose(log_p, plain, atol=1e-7)                       # the density is unchanged
    assert torch.allclose(jacobian, torch.full((3,), float((a ** 2).sum() / 2), dtype=torch.float64), atol=1e-8)
    ts = torch.linspace(0, 1, 4001, dtype=torch.float64)                 # ∫ ‖A exp(At) x‖² / 2 dt, by trapezoid
    speeds = torch.stack([((x @ torch.linalg.matrix_exp(a * t).T) @ a.T).pow(2).mean(-1) for t in ts])
    assert torch.allclose(kinetic, torch.trapezoid(speeds, ts, dim=0), rtol=1e-6)
    assert nfe > 0


def test_hutchinsons_jacobian_term_is_unbiased():
    a = torch.tensor([[0.3, -2.0], [0.5, 1.0]], dtype=torch.float64)
    cnf = _linear_cnf(a)
    x = torch.zeros(4000, 2, dtype=torch.float64) + 0.1
    with torch.no_grad():
        _, _, estimate, _ = regularised_log_prob(cnf, x, estimator="hutchinson", generator=torch.Generator().manual_seed(0))
    exact = float((a ** 2).sum() / 2)
    assert abs(float(estimate.mean()) - exact) < 0.05 * exact
    assert float(estimate.std()) > 0.1                                   # one ε per point: a real estimate


def test_training_with_the_penalty_adds_it_to_the_loss_and_snapshots_keep_it_apart(tmp_path, monkeypatch):
    data = torch.randn(300, 2, generator=torch.Generator().manual_seed(2))
    settings = dict(batch=32, hidden=8, layers=2, lr=1e-2, rtol=1e-3, atol=1e-3, progress=False)
    plain = train_cnf(data, iterations=3, **settings)
    heavy = train_cnf(data, iterations=3, regularisation=(10.0, 10.0), **settings)
    assert heavy.losses[0] > plain.losses[0]                             # same weights, same batch: + λ·(E_K + E_J)
    with pytest.raises(ValueError, match="pair"):
        train_cnf(data, iterations=3, regularisation=0.1, **settings)
    # A regularised run stopped after its first snapshot is not resumed by a plain run of the same length.
    import odeteach.flows.training as T
    real, calls = T.regularised_log_prob, {"n": 0}

    def stop_on_the_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    path = tmp_path / "r.snapshot.pt"
    with monkeypatch.context() as patch:
        patch.setattr(T, "regularised_log_prob", stop_on_the_third)
        with pytest.raises(KeyboardInterrupt):
            train_cnf(data, iterations=4, regularisation=(0.1, 0.1), snapshot=path, snapshot_every=2, **settings)
    assert torch.load(path, weights_only=True)["run"]["settings"] == {"regularisation": [0.1, 0.1]}
    with pytest.raises(CheckpointError, match="another run"):
        train_cnf(data, iterations=4, snapshot=path, snapshot_every=2, **settings)
    resumed = train_cnf(data, iterations=4, regularisation=(0.1, 0.1), snapshot=path, snapshot_every=2, **settings)
    assert len(resumed.losses) == 4 and not path.exists()


def test_describe_regularised_reads_the_numbers_both_ways():
    row = lambda nll, nfe, sec, ev: {"test_nll": nll, "nfe_mean": nfe, "seconds_per_iteration": sec,  # noqa: E731
                                     "eval_nfe": ev}
    base = {"data": "two_moons", "iterations": 600, "regularisation": [0.01, 0.01]}
    cheaper = describe_regularised({**base, "plain": row(2.50, 60, 0.4, 62), "regularised": row(2.51, 30, 0.25, 32)})
    assert "0.50× the plain run's forward NFE" in cheaper and "the same test NLL" in cheaper
    assert "0.62× its time per iteration" in cheaper
    with_cpu = describe_regularised({**base, "plain": {**row(2.50, 60, 0.4, 62), "cpu_seconds_per_iteration": 0.2},
                                     "regularised": {**row(2.51, 30, 0.25, 32), "cpu_seconds_per_iteration": 0.3}})
    assert "1.50× its CPU time per iteration" in with_cpu
    worse = describe_regularised({**base, "plain": row(2.50, 60, 0.4, 62), "regularised": row(2.60, 66, 0.5, 70)})
    assert "1.10×" in worse and "0.100 nats worse" in worse
    assert "better" in describe_regularised({**base, "plain": row(2.60, 60, 0.4, 62), "regularised": row(2.50, 60, 0.4, 62)})


def test_compare_regularised_trains_both_on_the_same_batches():
    study = compare_regularised("two_moons", iterations=2, regularisation=(0.1, 0.1), progress=False, batch=32,
                                hidden=8, layers=2, rtol=1e-3, atol=1e-3)
    assert set(study) == {"plain", "regularised", "regularisation", "iterations", "data"}
    for row in (study["plain"], study["regularised"]):
        assert row["nfe_first"] > 0 and row["seconds_per_iteration"] > 0 and row["test_nll"] > 0
        assert 0 < row["cpu_seconds_per_iteration"]
    assert study["plain"]["test_nll"] != study["regularised"]["test_nll"]
    with pytest.raises(ValueError, match="λ_K > 0 or λ_J > 0"):
        compare_regularised("two_moons", iterations=2, regularisation=(0, 0))
