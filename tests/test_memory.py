"""The saved-tensor meter: exact byte counts, the storage rule, and O(1) memory for the adjoint."""

import pytest
import torch

from odeteach import measure_saved, odeint, odeint_adjoint
from odeteach.memory import format_bytes, track_saved

F64 = torch.float64


def test_counts_exact_bytes_of_saved_tensors():
    x = torch.randn(10, dtype=F64, requires_grad=True)
    w = torch.randn(10, dtype=F64, requires_grad=True)
    report = measure_saved(lambda: x * w)   # mul saves both factors
    assert report.n_saved == 2 and report.n_storages == 2
    assert report.saved_bytes == report.naive_bytes == 2 * 10 * 8
    assert (report.cuda_peak_bytes is None) == (not torch.cuda.is_available())
    assert measure_saved(lambda: x * w, exclude=[w]).saved_bytes == 80


def test_one_storage_counts_once():
    x = torch.randn(100, dtype=torch.float32, requires_grad=True)
    report = measure_saved(lambda: (x * x) * x)   # x saved three times, plus the product x*x
    assert report.n_saved == 4
    assert report.n_storages == 2
    assert report.saved_bytes == 2 * 400
    assert report.naive_bytes == 4 * 400
    # A view counts as the storage it lives in.
    big = torch.randn(1000, dtype=F64, requires_grad=True)
    view = measure_saved(lambda: big[:10].clone() * big[10:20].clone())
    assert view.saved_bytes == 2 * 80
    direct = measure_saved(lambda: torch.sin(big[:10]))   # sin saves its input: a view of big
    assert direct.saved_bytes == 8000 and direct.naive_bytes == 80


def test_nothing_saved_without_grad():
    x = torch.randn(10)
    assert measure_saved(lambda: torch.tanh(x) * x).saved_bytes == 0
    with torch.no_grad():
        y = torch.randn(3, requires_grad=True)
        assert measure_saved(lambda: y * y).n_saved == 0


def test_track_saved_context_manager_and_result():
    x = torch.randn(4, requires_grad=True)
    with track_saved() as report:
        y = torch.exp(x)   # exp saves its output
    assert report.saved_bytes == 16 and report.n_saved == 1
    r = measure_saved(torch.tanh, x, backward=lambda out: out.sum().backward())
    assert torch.allclose(x.grad, 1 - torch.tanh(x.detach()) ** 2)
    assert r.result.shape == (4,) and torch.equal(y, torch.exp(x.detach()))


def test_bad_input():
    with pytest.raises(TypeError, match="function"):
        measure_saved(3)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            measure_saved(lambda: None, cuda=True)


@pytest.mark.parametrize("n,text", [(512, "512 B"), (1536, "1.5 KiB"), (3 * 2 ** 20, "3.0 MiB")])
def test_format_bytes(n, text):
    assert format_bytes(n) == text


def _field():
    torch.manual_seed(0)
    w = torch.randn(4, 4, dtype=F64) * 0.3
    w.requires_grad_(True)
    return w, (lambda t, z: torch.tanh(z @ w))


@pytest.fixture(scope="module")
def saved_by_steps():
    w, f = _field()
    z0 = torch.randn(2, 4, dtype=F64, requires_grad=True)
    t = torch.tensor([0.0, 1.0], dtype=F64)
    out = {}
    for n in (10, 100, 1000):
        opts = dict(method="rk4", options={"step_size": 1.0 / n})
        back = measure_saved(odeint, f, z0, t, exclude=[z0, w], **opts).saved_bytes
        adj = measure_saved(odeint_adjoint, f, z0, t, exclude=[z0, w], adjoint_params=(w,), **opts).saved_bytes
        out[n] = (back, adj)
    return out


def test_adjoint_saved_bytes_flat_in_steps(saved_by_steps):
    adj = [saved_by_steps[n][1] for n in (10, 100, 1000)]
    assert adj[0] > 0
    assert max(adj) <= 1.05 * min(adj)


def test_backprop_saved_bytes_grow_in_proportion(saved_by_steps):
    back = {n: saved_by_steps[n][0] for n in (10, 100, 1000)}
    assert 9.0 <= back[100] / back[10] <= 11.0
    assert 9.0 <= back[1000] / back[100] <= 11.0
    assert back[10] > 10 * saved_by_steps[10][1]


def test_excluding_an_input_the_first_step_saves_gives_a_negative_intercept():
    """Where lesson 3's old exercise got its "part that does not grow" of −1,024 bytes: the exclusion of z0."""
    g = torch.Generator().manual_seed(5)
    w = (torch.randn(4, 4, generator=g, dtype=F64) * 0.3).requires_grad_(True)
    z0 = torch.randn(32, 4, generator=g, dtype=F64, requires_grad=True)
    t = torch.tensor([0.0, 1.0], dtype=F64)
    batch_bytes = z0.numel() * 8   # 1,024 bytes

    def saved(n, exclude):
        return measure_saved(odeint, lambda t_, z: torch.tanh(z @ w), z0, t, method="rk4",
                             options={"step_size": 1.0 / n}, exclude=exclude, cuda=False).saved_bytes

    for n in (1, 3, 10):
        assert saved(n, [w]) == 8 * batch_bytes * n                    # counted in full: proportional, no intercept
        assert saved(n, [w, z0]) == 8 * batch_bytes * n - batch_bytes  # z0, saved by the first matmul, left out
