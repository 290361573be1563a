"""Continuous normalizing flows (lesson 6): traces, densities, sampling, training, checkpoints, explorers.

Tolerances are stated where they are used. Random numbers all come from fixed seeds, so the
statistical tests are deterministic: each was checked to pass with room to spare, and each
would fail for a biased estimator (a bias of 5 standard errors is far outside the limit).
"""

import math
import re

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

matplotlib.use("Agg")

from odeteach import SolverError, flows  # noqa: E402
from odeteach.data.densities import DENSITIES, sample as sample_density  # noqa: E402
from odeteach.exercises import lesson06  # noqa: E402
from odeteach.flows import (CHECKPOINT_DIR, CNF, ConcatTimeMLP, base_log_prob, draw_noise, exact_trace,  # noqa: E402
                            grid_mass, hutchinson_trace, load_checkpoint, log_prob_frames, log_prob_grid, pretrained,
                            save_checkpoint, trace_cost, train_cnf)
from widget_support import redrawn_from_scratch  # noqa: E402


def random_cnf(seed=0, hidden=32, dtype=torch.float32):
    torch.manual_seed(seed)
    cnf = CNF(2, hidden, 2)
    return cnf.to(dtype)


def wild_cnf(seed=0, scale=4.0):
    """A random CNF with a strongly curved field, so that tolerance matters."""
    cnf = random_cnf(seed)
    with torch.no_grad():
        cnf.field.linears[-1].weight.mul_(scale)
        cnf.field.linears[0].weight.mul_(scale / 2)
    return cnf


def jacobian_trace(field, t, z):
    jac = torch.autograd.functional.jacobian(lambda x: field(t, x).sum(0), z)   # (D, N, D)
    return torch.einsum("ini->n", jac)


# --------------------------------------------------------------------------------------------
# Traces


@pytest.mark.parametrize("dim", [1, 2, 5])
def test_exact_trace_matches_full_jacobian(dim):
    torch.manual_seed(dim)
    field = ConcatTimeMLP(dim, 16, 2).double()
    z = torch.randn(7, dim, dtype=torch.float64, requires_grad=True)
    got = exact_trace(field(0.3, z), z)
    assert torch.allclose(got, jacobian_trace(field, torch.tensor(0.3, dtype=torch.float64), z.detach()), atol=1e-12)


@pytest.mark.parametrize("noise", ["gaussian", "rademacher"])
def test_hutchinson_is_unbiased(noise):
    """E[εᵀJε] = tr J: mean of 4000 estimates per point within 4 standard errors of the exact trace."""
    torch.manual_seed(1)
    field = ConcatTimeMLP(3, 16, 2).double()
    z = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    f = field(0.5, z)
    exact = exact_trace(f, z).detach()
    m = 4000
    g = torch.Generator().manual_seed(11)
    zz = z.detach().repeat(m, 1).requires_grad_(True)
    e = draw_noise(zz.shape, noise, generator=g, dtype=torch.float64)
    est = hutchinson_trace(field(0.5, zz), zz, e).detach().reshape(m, 5)
    se = est.std(0) / math.sqrt(m)
    zscores = (est.mean(0) - exact) / se
    assert (zscores.abs() < 4).all(), zscores
    assert (est.std(0) > 0).all()       # a real estimator, not the exact trace in disguise


def test_rademacher_variance_not_above_gaussian():
    """Var_Gauss(εᵀJε) = ½‖J + Jᵀ‖²_F; Rademacher removes the diagonal's share 2 Σ J_ii² (Hutchinson 1990)."""
    torch.manual_seed(2)
    a = torch.randn(4, 4, dtype=torch.float64)
    sym = a + a.T
    var_gauss = 0.5 * (sym ** 2).sum()
    var_rad = var_gauss - 2 * (torch.diagonal(a) ** 2).sum()
    m = 20000
    z = torch.zeros(m, 4, dtype=torch.float64, requires_grad=True)
    f = z @ a.T
    for noise, want in (("gaussian", var_gauss), ("rademacher", var_rad)):
        e = draw_noise(z.shape, noise, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        est = hutchinson_trace(f, z, e).detach()
        assert abs(est.mean() - torch.trace(a)) < 4 * est.std() / math.sqrt(m)
        assert abs(est.var() / want - 1) < 0.06   # sampling error of a variance from 20000 draws ≈ 1–2 %


def test_integrated_hutchinson_log_prob_is_unbiased():
    """With ε fixed along each path the integrated estimate of log p is unbiased too."""
    cnf = random_cnf(3, dtype=torch.float64)
    x = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5)) * 1.5
    with torch.no_grad():
        exact = cnf.log_prob(x, rtol=1e-8, atol=1e-8)
        m = 1500
        est = cnf.log_prob(x.repeat(m, 1), estimator="hutchinson", noise="rademacher",
                           generator=torch.Generator().manual_seed(6), rtol=1e-8, atol=1e-8).reshape(m, 4)
    zscores = (est.mean(0) - exact) / (est.std(0) / math.sqrt(m))
    assert (zscores.abs() < 4).all(), zscores


def test_trace_cost_favours_hutchinson_in_high_dimension():
    cost = trace_cost(dims=(2, 64), batch=64, hidden=32, repeats=5)
    ratio = {d: c["exact"] / c["hutchinson"] for d, c in cost.items()}
    assert ratio[64] > 4 * max(ratio[2], 1.0)   # D backward passes against one


# --------------------------------------------------------------------------------------------
# Densities: sign conventions, mass, round trips


class Linear(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.a = a

    def forward(self, t, z):
        return z @ self.a.T


def test_linear_field_matches_closed_form():
    """dz/dt = A z maps x to z(1) = e^A x, so log p₀(x) = log N(e^A x) + tr A."""
    a = torch.tensor([[0.3, -0.8], [0.5, -0.1]], dtype=torch.float64)
    cnf = CNF().double()
    cnf.field = Linear(a)
    x = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    want = base_log_prob(x @ torch.linalg.matrix_exp(a).T) + torch.trace(a)
    with torch.no_grad():
        got = cnf.log_prob(x, rtol=1e-10, atol=1e-10)
    assert torch.allclose(got, want, atol=1e-8)


def test_random_flow_density_integrates_to_one():
    """Any field gives a density: ∫ p₀ over [-6, 6]² on a 100 × 100 midpoint grid is 1 within 1 %."""
    cnf = random_cnf(4)
    _, _, log_p = log_prob_grid(cnf, n=100, box=6.0)
    assert abs(grid_mass(log_p, 6.0) - 1) < 0.01


def test_frames_match_separate_solves():
    cnf = random_cnf(5)
    centres, log_p, nfe = log_prob_frames(cnf, [0.0, 0.4, 1.0], n=12, rtol=1e-7, atol=1e-7)
    assert log_p.shape == (3, 12, 12) and nfe > 0
    gy, gx = torch.meshgrid(centres, centres, indexing="ij")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    with torch.no_grad():
        for k, t in enumerate([0.0, 0.4]):
            assert torch.allclose(log_p[k].reshape(-1), cnf.log_prob(pts, t=t, rtol=1e-7, atol=1e-7), atol=1e-4)
    assert torch.allclose(log_p[2].reshape(-1), base_log_prob(pts))   # t = 1 is the base itself


def test_sample_then_evaluate_round_trip():
    """Backwards from z(1) to x, then forwards from x: z(1) and log p agree within 1e-4 (rtol = atol = 1e-7)."""
    cnf = random_cnf(6, dtype=torch.float64)
    with torch.no_grad():
        res = cnf.sample(200, seed=1, times=torch.linspace(1, 0, 5), rtol=1e-9, atol=1e-9)
        x = res.zs[-1]
        zs, deltas, _ = cnf.flow(x, torch.tensor([0.0, 1.0]), rtol=1e-9, atol=1e-9)
        z1 = torch.randn(200, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        assert torch.allclose(zs[-1], z1, atol=1e-6)
        assert torch.allclose(cnf.log_prob(x, rtol=1e-9, atol=1e-9), res.log_p[-1], atol=1e-6)
        # Intermediate densities along the path agree with evaluating p_t at the moved points.
        assert torch.allclose(cnf.log_prob(res.zs[2], t=0.5, rtol=1e-9, atol=1e-9), res.log_p[2], atol=1e-6)
    assert torch.allclose(res.log_p[0], base_log_prob(res.zs[0]))


def test_sampling_without_log_p_is_cheaper():
    cnf = random_cnf(7)
    with torch.no_grad():
        a = cnf.sample(100, seed=2, with_log_p=False)
        b = cnf.sample(100, seed=2)
    assert a.log_p is None and b.log_p is not None
    assert torch.allclose(a.zs[-1], b.zs[-1], atol=1e-4)


def test_gradients_reach_parameters():
    cnf = random_cnf(8)
    loss = -cnf.log_prob(sample_density("two_moons", 32)).mean()
    loss.backward()
    grads = [p.grad for p in cnf.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0


def test_short_training_lowers_the_loss():
    result = train_cnf("two_moons", iterations=8, batch=64, hidden=16, layers=2, lr=2e-2, rtol=1e-3, atol=1e-3,
                       progress=False, seed=0)
    assert len(result.losses) == 8 and all(n > 0 for n in result.nfe)
    assert np.mean(result.losses[-4:]) < result.losses[0] - 0.2


def test_bad_inputs_raise_clear_errors():
    cnf = random_cnf(9)
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        cnf.log_prob(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="NaN"):
        cnf.log_prob(torch.tensor([[0.0, math.nan]]))
    with pytest.raises(ValueError, match="estimator"):
        cnf.log_prob(torch.zeros(2, 2), estimator="skilling")
    with pytest.raises(ValueError, match="noise"):
        cnf.log_prob(torch.zeros(2, 2), estimator="hutchinson", noise="uniform")
    with pytest.raises(ValueError, match="t must be in"):
        cnf.log_prob(torch.zeros(2, 2), t=1.0)
    with pytest.raises(ValueError, match="positive integer"):
        cnf.sample(0)
    with pytest.raises(ValueError, match="times must run from 1"):
        cnf.sample(3, times=[0.0, 1.0])
    with pytest.raises(SolverError, match="rtol"):
        cnf.log_prob(torch.zeros(2, 2), rtol=-1)
    with pytest.raises(ValueError, match="Valid names"):
        train_cnf("spiral", iterations=1)
    with pytest.raises(ValueError, match="iterations"):
        train_cnf("rings", iterations=0)
    with pytest.raises(FileNotFoundError, match="python -m odeteach.train flows"):
        load_checkpoint(CHECKPOINT_DIR / "flows_nothing.pt")


def test_checkpoint_save_load_round_trip(tmp_path):
    cnf = random_cnf(10)
    path = save_checkpoint(cnf, tmp_path / "flows_test.pt", dataset="two_moons", test_nll=1.5)
    loaded, meta = load_checkpoint(path)
    assert meta == {"dataset": "two_moons", "test_nll": 1.5}
    x = torch.randn(5, 2)
    with torch.no_grad():
        assert torch.equal(loaded.log_prob(x), cnf.log_prob(x))


# --------------------------------------------------------------------------------------------
# The shipped checkpoints


@pytest.mark.parametrize("name", list(DENSITIES))
def test_shipped_checkpoint_small_loadable_and_better_than_a_gaussian(name):
    path = CHECKPOINT_DIR / f"flows_{name}.pt"
    assert path.stat().st_size <= 1_000_000
    blob = torch.load(path, map_location="cpu", weights_only=True)
    assert blob["meta"]["dataset"] == name
    cnf = pretrained(name)
    test = sample_density(name, 400, seed=12345)
    with torch.no_grad():
        nll = -cnf.log_prob(test).mean().item()
    # The best Gaussian fit of the data: its NLL is ½ log det(2πe Σ).
    cov = torch.cov(test.T.double())
    gaussian_nll = 0.5 * torch.logdet(2 * math.pi * math.e * cov).item()
    assert nll < gaussian_nll - 0.15, (nll, gaussian_nll)
    # The number stored at training time (2000 test points) agrees with this subset within sampling error.
    assert abs(nll - blob["meta"]["test_nll"]) < 0.15


def test_fit_report_scores_against_a_gaussian_and_the_data():
    """On Gaussian data the best Gaussian's NLL is the Gaussian's own; a model's gap is NLL − entropy."""
    x = torch.randn(4000, 2, generator=torch.Generator().manual_seed(3)) * torch.tensor([2.0, 0.5])
    want = 0.5 * math.log((2 * math.pi * math.e) ** 2 * 4.0 * 0.25)       # the true Σ = diag(4, 0.25)
    assert abs(flows.gaussian_fit_nll(x) - want) < 0.05
    fit = flows.fit_report(random_cnf(16), "rings", n=200, seed=1)
    assert fit.n == 200 and fit.nfe > 0 and fit.gap == fit.model_nll - fit.data_entropy
    assert fit.model_nll > fit.data_entropy                                 # an untrained field is far from the rings
    with pytest.raises(TypeError, match="CNF"):
        flows.fit_report("rings", "rings")
    with pytest.raises(ValueError, match="Valid names"):
        flows.fit_report(random_cnf(16), "spiral")


def test_train_registry_names_flows():
    from odeteach.train import TARGETS
    import importlib
    module, function, _ = TARGETS["flows"]
    assert callable(getattr(importlib.import_module(module), function))


# --------------------------------------------------------------------------------------------
# Exercises


# The worked solutions, as in notebooks/solutions/06_continuous_normalizing_flows_solutions.ipynb.

def solution_divergence(func, z):
    z = z.detach().requires_grad_(True)
    f = func(z)
    total = torch.zeros(z.shape[0], dtype=z.dtype)
    for i in range(z.shape[1]):
        total = total + torch.autograd.grad(f[:, i].sum(), z, retain_graph=True)[0][:, i]
    return total


def solution_linear_flow(x, a):
    z0 = x @ torch.linalg.matrix_exp(-a).T
    return base_log_prob(z0) - torch.trace(a)


def solution_hutchinson(func, z, e):
    z = z.detach().requires_grad_(True)
    v = torch.autograd.grad((func(z) * e).sum(), z)[0]
    return (v * e).sum(-1)


def assert_fails(result, *words):
    """A check that fails with a hint naming ``words``, and that does not print a number from the answer."""
    assert not result and str(result).startswith("❌"), str(result)
    for w in words:
        assert w in result.message, result.message
    assert re.search(r"\d\.\d", result.message) is None, result.message


def test_divergence_check_teaches():
    assert lesson06.check_divergence(solution_divergence)

    def all_entries(func, z):
        z = z.detach().requires_grad_(True)
        return torch.autograd.grad(func(z).sum(), z)[0].sum(-1)

    def two_dims_only(func, z):                      # the lesson's flows are 2-D: a loop over range(2)
        z = z.detach().requires_grad_(True)
        f = func(z)
        return sum(torch.autograd.grad(f[:, i].sum(), z, retain_graph=True)[0][:, i] for i in range(2))

    def no_requires_grad(func, z):
        f = func(z)
        return sum(torch.autograd.grad(f[:, i].sum(), z, retain_graph=True)[0][:, i] for i in range(z.shape[1]))

    def batch_sum(func, z):
        return solution_divergence(func, z).sum()

    assert_fails(lesson06.check_divergence(None), "not attempted")
    assert_fails(lesson06.check_divergence(lambda func, z: None), "not attempted")         # the notebook's placeholder
    copied = lambda func, z: torch.full((z.shape[0],), -1.410423, dtype=z.dtype)  # noqa: E731  tr J printed in the lesson
    assert_fails(lesson06.check_divergence(copied), "gradient of f[:, i].sum()")
    assert_fails(lesson06.check_divergence(all_entries), "diagonal")
    assert_fails(lesson06.check_divergence(lambda func, z: -solution_divergence(func, z)), "sign")
    assert_fails(lesson06.check_divergence(two_dims_only), "all D")
    assert_fails(lesson06.check_divergence(no_requires_grad), "require gradients")
    assert_fails(lesson06.check_divergence(batch_sum), "one number per row")
    assert_fails(lesson06.check_divergence(lambda func, z: 1 / 0), "ZeroDivisionError")


def test_linear_flow_check_teaches():
    assert lesson06.check_linear_flow(solution_linear_flow)
    # The discrete change of variables with g = e^A is the same answer, by another road.
    assert lesson06.check_linear_flow(
        lambda x, a: base_log_prob(x @ torch.linalg.matrix_exp(-a).T) - torch.logdet(torch.linalg.matrix_exp(a)))
    z0 = lambda x, a: x @ torch.linalg.matrix_exp(-a).T  # noqa: E731
    assert_fails(lesson06.check_linear_flow(None), "not attempted")
    assert_fails(lesson06.check_linear_flow(lambda x, a: base_log_prob(x)), "before the flow moved")  # the placeholder
    # tr A = 0.2 as printed in the lesson, copied instead of computed:
    assert_fails(lesson06.check_linear_flow(lambda x, a: base_log_prob(z0(x, a)) - 0.2), "this A")
    assert_fails(lesson06.check_linear_flow(lambda x, a: base_log_prob(z0(x, a)) + torch.trace(a)), "sign")
    assert_fails(lesson06.check_linear_flow(lambda x, a: base_log_prob(z0(x, a))), "change of volume")
    forwards = lambda x, a: base_log_prob(x @ torch.linalg.matrix_exp(a).T) - torch.trace(a)  # noqa: E731
    assert_fails(lesson06.check_linear_flow(forwards), "backwards")
    untransposed = lambda x, a: base_log_prob(x @ torch.linalg.matrix_exp(-a)) - torch.trace(a)  # noqa: E731
    assert_fails(lesson06.check_linear_flow(untransposed), "x @ M.T")
    one_euler_step = lambda x, a: base_log_prob(x - x @ a.T) - torch.trace(a)  # noqa: E731
    assert_fails(lesson06.check_linear_flow(one_euler_step), "matrix exponential")
    assert_fails(lesson06.check_linear_flow(lambda x, a: base_log_prob(z0(x, a)).sum()), "one number per row")
    assert_fails(lesson06.check_linear_flow(lambda x, a: 1 / 0), "ZeroDivisionError")


def test_hutchinson_check_teaches():
    assert lesson06.check_hutchinson(solution_hutchinson)

    def own_noise(func, z, e):
        return solution_hutchinson(func, z, torch.randn(z.shape, dtype=z.dtype))

    def forgot_second_e(func, z, e):
        z = z.detach().requires_grad_(True)
        return torch.autograd.grad((func(z) * e).sum(), z)[0].sum(-1)

    def no_jacobian(func, z, e):
        return (func(z) * e).sum(-1)

    assert_fails(lesson06.check_hutchinson(None), "not attempted")
    assert_fails(lesson06.check_hutchinson(lambda func, z, e: None), "not attempted")       # the notebook's placeholder
    # the textbook identity E[εᵀJε] = tr J, answered with the exact trace:
    assert_fails(lesson06.check_hutchinson(lambda func, z, e: solution_divergence(func, z)), "exact trace")
    assert_fails(lesson06.check_hutchinson(own_noise), "the noise e you are given")
    assert_fails(lesson06.check_hutchinson(forgot_second_e), "dot product of v and e")
    assert_fails(lesson06.check_hutchinson(no_jacobian), "gradient of (f * e).sum()")
    assert_fails(lesson06.check_hutchinson(lambda func, z, e: torch.zeros(3)), "one number per row")


# --------------------------------------------------------------------------------------------
# Explorers


def test_jacobian_dynamics_is_the_exact_trace():
    """JacobianDynamics (the Jacobian carried forward, no autograd) gives CNFDynamics' f and −tr ∂f/∂z."""
    from odeteach.flows import CNFDynamics
    from odeteach.flows.studies import JacobianDynamics
    for cnf in (random_cnf(21), wild_cnf(22), CNF(2, 16, 1), CNF(3, 8, 4)):
        z = torch.randn(50, cnf.dim, generator=torch.Generator().manual_seed(1))
        d = torch.zeros(50)
        with torch.no_grad():
            f_ref, tr_ref = CNFDynamics(cnf.field, "exact", None)(0.3, (z, d))
            f, tr = JacobianDynamics(cnf.field)(torch.tensor(0.3), (z, d))
        assert torch.allclose(f, f_ref, atol=1e-6) and torch.allclose(tr, tr_ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(TypeError, match="ConcatTimeMLP"):
        JacobianDynamics(nn.Linear(2, 2))


def test_density_frames_match_the_batched_frames_and_separate_solves():
    """One solve per frame (explorer) against log_prob_frames' one batched solve and cnf.log_prob at each t."""
    from odeteach.flows.studies import density_frames
    cnf = random_cnf(5)
    times = [1.0, 0.6, 0.0]
    centres, log_p, nfe = density_frames(cnf, times, n=12, rtol=1e-7, atol=1e-7)
    batched = log_prob_frames(cnf, times, n=12, rtol=1e-7, atol=1e-7)[1]
    assert log_p.shape == (3, 12, 12) and nfe[0] == 0 and nfe[1] < nfe[2]   # a shorter interval, fewer steps
    assert torch.allclose(log_p, batched, atol=1e-4)
    gy, gx = torch.meshgrid(centres, centres, indexing="ij")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    with torch.no_grad():
        assert torch.allclose(log_p[1].reshape(-1), cnf.log_prob(pts, t=0.6, rtol=1e-7, atol=1e-7), atol=1e-4)
    assert torch.equal(log_p[0].reshape(-1), base_log_prob(pts))
    with pytest.raises(ValueError, match="times"):
        density_frames(cnf, [0.5, 1.5])


@pytest.fixture(scope="module")
def time_explorer():
    from odeteach.widgets.flows import FlowTimeExplorer
    return FlowTimeExplorer(random_cnf(11), sample_density("two_moons", 100), n_samples=200, n_frames=5, grid=16)


@pytest.fixture(scope="module")
def tolerance_explorer():
    from odeteach.widgets.flows import FlowToleranceExplorer
    return FlowToleranceExplorer(wild_cnf(12, scale=8.0), n_samples=100, tolerances=(1e-1, 1e-3, 1e-6))


@pytest.fixture(scope="module")
def trace_explorer():
    from odeteach.widgets.flows import TraceEstimatorExplorer
    return TraceEstimatorExplorer(random_cnf(14), sample_density("two_moons", 16), repeats=40, timing_repeats=1)


EXPLORERS = ["time_explorer", "tolerance_explorer", "trace_explorer"]


def test_flow_time_explorer_morphs_between_precomputed_frames(time_explorer):
    ex = time_explorer
    ex.time.value = 1.0
    assert ex.frame() == 0 and "base N(0, I)" in ex.readout.value
    # At t = 1 the samples are the base draws and their log-density is the Gaussian's.
    assert np.allclose(ex.scatter.get_offsets(), ex.samples[0])
    assert np.allclose(ex.sample_log_p[0], base_log_prob(torch.tensor(ex.samples[0])).numpy(), atol=1e-5)
    # The density frames are the explorer's grid solves; the picture is each frame at 3× the resolution, coloured.
    assert ex.densities.shape == (5, 16, 16) and ex.pictures.shape == (5, 48, 48, 4) and ex.pictures.dtype == np.uint8
    assert np.allclose(np.log(ex.densities[0]).ravel(), base_log_prob(flows.grid_points(16)[1]).numpy(), atol=1e-5)
    for value in (0.75, 0.5, 0.26, 0.0, 1.0, 0.0):
        ex.time.value = value
        k = ex.frame()
        assert abs(ex.times[k] - value) < 0.13
        assert np.allclose(ex.scatter.get_offsets(), ex.samples[k])
        assert np.array_equal(ex.image.get_array(), ex.pictures[k])
        assert f"t = {ex.times[k]:.2f}" in ex.readout.value
    assert not np.allclose(ex.samples[0], ex.samples[-1])        # the points moved
    # Every third pixel (from the second) sits on a grid cell's centre: there the picture is that cell's p_t,
    # coloured on the frame's own scale from 0 to its largest p_t; the pixels between interpolate.
    magma = matplotlib.colormaps["magma"]
    for k in range(len(ex.times)):
        on_centres = ex.pictures[k][1::3, 1::3]
        expected = magma(ex.densities[k] / ex.densities[k].max(), bytes=True)
        assert np.abs(on_centres.astype(int) - expected.astype(int)).max() <= 1     # rounding of the colour map
    # Update latency is a benchmark, not a unit test (a shared machine is noisy): benchmarks/bench_widgets.py
    # ("L6 FlowTimeExplorer") measures it against the 50 ms / 150 ms targets.


def test_tolerance_explorer_work_and_accuracy(tolerance_explorer):
    ex = tolerance_explorer
    tols = ex.tolerances
    assert ex.nfe[0] < ex.nfe[1] < ex.nfe[2]
    assert ex.error[2] < ex.error[1] < ex.error[0]
    for tol in tols:
        ex.tolerance.value = tol
        i = tols.index(tol)
        assert f"NFE = {ex.nfe[i]}" in ex.readout.value and ex.message.value == ""
        assert np.allclose(ex.scatter.get_offsets(), ex.samples[i])
        assert list(ex.marker.get_data()[0]) == [ex.nfe[i]]
    # NFE spans less than a decade: the log x axis must still label its ticks, with the NFE values.
    ex.fig.canvas.draw()
    labels = [t.get_text() for t in ex.ax_cost.get_xticklabels()]
    assert labels and all(labels), labels
    assert [int(v) for v in ex.ax_cost.get_xticks()] == sorted(set(ex.nfe))


def test_tolerance_explorer_shows_solver_failures(monkeypatch):
    from odeteach.widgets import flows as wf
    cnf = random_cnf(13)
    real = CNF.sample

    def failing(self, *args, rtol=None, **kwargs):
        if rtol == 1e-2:
            raise SolverError("max_num_steps reached (test)")
        return real(self, *args, rtol=rtol, **kwargs)

    monkeypatch.setattr(CNF, "sample", failing)
    ex = wf.FlowToleranceExplorer(cnf, n_samples=50, tolerances=(1e-1, 1e-2))
    ex.tolerance.value = 1e-2
    assert "stopped" in ex.message.value and "max_num_steps" in ex.message.value
    assert "no samples" in ex.readout.value and len(ex.scatter.get_offsets()) == 0
    ex.tolerance.value = 1e-1
    assert "NFE" in ex.readout.value and ex.message.value == ""


def test_trace_explorer_variance(trace_explorer):
    from odeteach.widgets.flows import ESTIMATOR_CHOICES
    ex = trace_explorer
    exact = ex.stats("exact trace")
    gauss = ex.stats("Hutchinson, Gaussian ε")
    rad = ex.stats("Hutchinson, Rademacher ε")
    assert exact["std_per_point"] == 0
    assert gauss["std_per_point"] > 0 and rad["std_per_point"] > 0
    assert rad["std_per_point"] < gauss["std_per_point"]   # in 2-D Rademacher drops the diagonal's variance
    for label in ESTIMATOR_CHOICES:
        ex.estimator.value = label
        heights = ex.histogram.get_data().values
        assert np.array_equal(heights, ex.fractions(label)) and abs(heights.sum() - 1) < 1e-9
        assert label in ex.readout.value and "ms" in ex.readout.value
    ex.estimator.value = "exact trace"
    heights = ex.histogram.get_data().values
    assert heights.max() == 1.0 and heights[len(heights) // 2] == 1.0    # every estimate in the bin centred on 0
    assert len(heights) % 2 == 1 and ex.bins[len(heights) // 2] < 0 < ex.bins[len(heights) // 2 + 1]
    with pytest.raises(ValueError, match="Valid"):
        ex.stats("Hutchinson, uniform ε")


def test_explorers_reject_bad_input():
    from odeteach.widgets.flows import FlowTimeExplorer, FlowToleranceExplorer, TraceEstimatorExplorer
    with pytest.raises(TypeError, match="CNF"):
        FlowTimeExplorer("moons")
    with pytest.raises(ValueError, match="n_frames"):
        FlowTimeExplorer(random_cnf(), n_frames=1)
    with pytest.raises(ValueError, match="grid"):
        FlowTimeExplorer(random_cnf(), grid=1.5)
    with pytest.raises(ValueError, match="data"):
        FlowTimeExplorer(random_cnf(), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="dim=3"):
        FlowTimeExplorer(CNF(3, 8, 1))
    with pytest.raises(ValueError, match="tolerances"):
        FlowToleranceExplorer(random_cnf(), tolerances=(1e-2, 2.0))
    with pytest.raises(ValueError, match="tolerances"):
        FlowToleranceExplorer(random_cnf(), tolerances="tight")
    with pytest.raises(ValueError, match="points"):
        TraceEstimatorExplorer(random_cnf(), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="repeats"):
        TraceEstimatorExplorer(random_cnf(), torch.zeros(3, 2), repeats=1)


@pytest.mark.parametrize("fixture", EXPLORERS)
def test_explorers_subclass_explorer_and_every_position_draws(fixture, request):
    from odeteach.widgets.base import Explorer, slider_values
    ex = request.getfixturevalue(fixture)
    assert isinstance(ex, Explorer) and ex._dynamic
    for name in ex.controls:
        control = getattr(ex, name)
        for value in slider_values(control) + [control.value]:
            control.value = value
            assert ex.message.value == "", (name, value, ex.message.value)


@pytest.mark.parametrize("fixture", EXPLORERS)
def test_moves_blit_and_the_picture_equals_a_full_redraw(fixture, request):
    """After the first full draw every move only blits; the blitted picture is pixel for pixel a full redraw's."""
    from odeteach.widgets.base import slider_values
    ex = request.getfixturevalue(fixture)
    canvas = ex.fig.canvas
    canvas.draw()                                       # as a displayed figure is drawn once
    draws, blits = ex.full_draws, ex.blits
    control = getattr(ex, ex.controls[0])
    values = slider_values(control)
    for v in (values[1], values[-1]):
        control.value = v
    assert ex.full_draws == draws and ex.blits == blits + 2
    blitted = np.asarray(canvas.buffer_rgba()).copy()
    saved = redrawn_from_scratch(ex)
    assert np.array_equal(blitted, saved)
    canvas.draw()
    assert ex.full_draws == draws + 1 and np.array_equal(np.asarray(canvas.buffer_rgba()), blitted)


def test_explorers_show_failures_in_the_message_not_as_tracebacks(monkeypatch, time_explorer, tolerance_explorer,
                                                                    trace_explorer):
    """Whatever goes wrong in an update (a SolverError or anything else) ends up in the message."""
    built = [(time_explorer, "scatter", "set_offsets", "time", 0.0, 1.0),
             (tolerance_explorer, "scatter", "set_offsets", "tolerance", 1e-1, 1e-3),
             (trace_explorer, "histogram", "set_data", "estimator", "Hutchinson, Gaussian ε", "exact trace")]
    for ex, artist, method, control, value, back in built:
        getattr(ex, control).value = back
        assert ex.message.value == ""
        for exc in (SolverError("max_num_steps reached (planted)"), IndexError("planted")):
            def broken(*args, _exc=exc, **kwargs):
                raise _exc
            monkeypatch.setattr(getattr(ex, artist), method, broken)
            getattr(ex, control).value = value          # no exception escapes the widget
            assert "planted" in ex.message.value and type(exc).__name__ in ex.message.value
            monkeypatch.undo()
            getattr(ex, control).value = back           # and the next update draws again
            assert ex.message.value == ""


def test_a_cnf_run_stopped_and_started_again_gives_the_unbroken_runs_weights(tmp_path, monkeypatch):
    """The shipped CNFs train for hours; a stopped ``python -m odeteach.train flows`` resumes from its snapshot.
    Tensor data (a generator of its own) and Hutchinson noise are both part of the saved state."""
    data = torch.randn(500, 2, generator=torch.Generator().manual_seed(1))
    settings = dict(iterations=6, batch=32, hidden=8, layers=2, lr=1e-2, rtol=1e-3, atol=1e-3,
                    estimator="hutchinson", progress=False, snapshot_every=2)
    unbroken = train_cnf(data, **settings)
    path = tmp_path / "flows_test.snapshot.pt"
    calls = {"n": 0}
    original = CNF.log_prob

    def stop_on_the_fifth(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(CNF, "log_prob", stop_on_the_fifth)
        with pytest.raises(KeyboardInterrupt):
            train_cnf(data, snapshot=path, **settings)
    assert torch.load(path, weights_only=True)["done"] == 4
    resumed = train_cnf(data, snapshot=path, **settings)
    assert resumed.losses == unbroken.losses
    assert all(torch.equal(a, b) for a, b in zip(unbroken.cnf.parameters(), resumed.cnf.parameters()))
