"""Lesson 6's sentences, asserted on the computations the lesson runs (shipped checkpoints, same seeds).

Each test names the sentence it keeps true. A retrained checkpoint or a changed solver that makes one
of them false fails here instead of leaving a wrong lesson. The explorers are built with the lesson's
full-mode sizes where that is cheap, and the statistics they print come from fixed seeds.
"""

import math

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from odeteach import flows  # noqa: E402
from odeteach.data.densities import DENSITIES, sample as sample_density  # noqa: E402
from odeteach.flows import CHECKPOINT_DIR, base_log_prob, pretrained  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def fits():
    """The lesson's table: every shipped model on 500 fresh points (seed 2024), float32."""
    return {name: flows.fit_report(pretrained(name), name, n=500, seed=2024) for name in DENSITIES}


@pytest.fixture(scope="module")
def two_moons():
    return pretrained("two_moons")


def test_log_det_per_step_tends_to_the_trace_with_halving_error():
    """§2: "log det(I + hJ)/h → tr J with an error that halves as h halves" (the cell's own J)."""
    g = torch.Generator().manual_seed(6)
    J = torch.randn(3, 3, generator=g, dtype=torch.float64)
    gaps = [torch.logdet(torch.eye(3, dtype=torch.float64) + h * J).item() / h - torch.trace(J).item()
            for h in (0.1, 0.05, 0.025, 0.0125)]
    ratios = [a / b for a, b in zip(gaps, gaps[1:])]
    assert all(1.9 < r < 2.2 for r in ratios), ratios


def test_shipped_two_moons_fit_in_float64():
    """§3: the two-moons model beats the best Gaussian, is close to the data's entropy, solves in the
    stated settings, and its density integrates to 1 (the cell's computation: NLL in float64, grid in float32)."""
    cnf = pretrained("two_moons").double()
    assert (cnf.rtol, cnf.atol, cnf.method) == (1e-5, 1e-5, "dopri5")
    fit = flows.fit_report(cnf, "two_moons", n=500, seed=2024)
    assert fit.data_entropy < fit.model_nll < fit.gaussian_nll
    assert fit.gap < 0.12                                     # "within about 0.1 nats of the entropy"
    _, _, log_p = flows.log_prob_grid(cnf.float(), n=100, box=6.0)
    assert abs(flows.grid_mass(log_p, 6.0) - 1) < 5e-3        # prints 1.000


def test_every_shipped_model_beats_a_gaussian_but_only_two_moons_is_close(fits):
    """§3: "All three models beat the best Gaussian, but only two moons is close to its data";
    "The rings model is further from the data's entropy than from the Gaussian"."""
    for fit in fits.values():
        assert fit.model_nll < fit.gaussian_nll, fit
        assert fit.model_nll > fit.data_entropy, fit          # no model beats the entropy (up to sampling noise)
    assert fits["two_moons"].gap < 0.12
    assert fits["rings"].gap > 0.3 and fits["checkerboard"].gap > 0.3
    rings = fits["rings"]
    assert rings.gap > rings.gaussian_nll - rings.model_nll


def test_under_trained_models_had_the_stated_iterations():
    """§3: "under-trained (800 and 600 iterations …)"; §3's training text: "the shipped checkpoint had 800"."""
    meta = {name: torch.load(CHECKPOINT_DIR / f"flows_{name}.pt", weights_only=True)["meta"] for name in DENSITIES}
    assert [meta[n]["iterations"] for n in ("two_moons", "rings", "checkerboard")] == [800, 800, 600]


def test_mean_log_density_of_samples_dips_then_rises(two_moons):
    """Time explorer: mean log p_t(z(t)) starts near −log(2πe), "dips slightly over the first frames",
    then "ends higher at t = 0 than it started" (the explorer's own sampling solve: 1000 points, 11 frames)."""
    times = torch.tensor(np.linspace(1.0, 0.0, 11), dtype=torch.float32)
    with torch.no_grad():
        means = two_moons.sample(1000, seed=0, times=times).log_p.mean(dim=1).tolist()
    assert abs(means[0] + math.log(2 * math.pi * math.e)) < 0.1
    assert min(means[1:3]) < means[0]                         # the dip
    assert means[0] - min(means) < 0.15                       # "slightly"
    assert means[-1] > means[0] + 0.2                         # higher at t = 0
    assert all(b > a for a, b in zip(means[3:], means[4:]))   # then rising


def test_training_starts_near_the_base_density_and_nfe_grows(two_moons):
    """Training text: "the loss starts close to the NLL of N(0, I) itself"; "a fresh field needs about 20
    evaluations per solve, the shipped model 50" (the lesson's run, seed 1, first iteration)."""
    first = flows.train_cnf("two_moons", iterations=1, batch=256, seed=1, progress=False)
    base_nll = -base_log_prob(sample_density("two_moons", 500, seed=2024)).mean().item()
    assert abs(first.losses[0] - base_nll) < 0.25
    test = sample_density("two_moons", 500, seed=2024)
    with torch.no_grad():
        _, shipped_nfe = two_moons.log_prob(test, return_nfe=True)
    assert 14 <= first.nfe[0] <= 26 and shipped_nfe >= 44
    assert first.nfe[0] < shipped_nfe


def test_tolerance_costs_nfe_and_buys_little_visible_accuracy(two_moons):
    """Tolerance explorer (the lesson's 500 samples): NFE rises as the tolerance tightens, stays at 14 for
    the two loosest stops; the error falls from 3e-2 on; even the loosest is under 0.1 on average."""
    from odeteach.widgets.flows import FlowToleranceExplorer
    ex = FlowToleranceExplorer(two_moons, n_samples=500)
    assert list(ex.tolerances) == sorted(ex.tolerances, reverse=True) and all(f is None for f in ex.failure)
    assert all(b >= a for a, b in zip(ex.nfe, ex.nfe[1:])) and ex.nfe[-1] > ex.nfe[0]
    assert ex.nfe[0] == ex.nfe[1] == 14 < ex.nfe[2]
    z1 = torch.randn(500, 2, generator=torch.Generator().manual_seed(0))   # the explorer's draws
    with torch.no_grad():
        loosest = two_moons.sample(z1=z1, with_log_p=False, rtol=1e-1, atol=1e-1)
    assert (loosest.nfe, loosest.n_steps) == (14, 2)         # "dopri5 takes just two steps"
    assert ex.error[1] >= ex.error[0]                         # "there the error does not improve either"
    assert all(b < a for a, b in zip(ex.error[1:], ex.error[2:]))
    assert max(ex.error) < 0.1 < 0.2                          # small against the moons' noise (sd 0.2)
    assert ex.error[-1] < 1e-4


def test_hutchinson_unbiased_rademacher_scatters_less(two_moons):
    """Trace explorer (64 points, 50 repeats, as in the lesson): bias within two standard errors of 0,
    a single estimate off by more than a nat, Rademacher below Gaussian, the exact trace not at all."""
    from odeteach.widgets.flows import TraceEstimatorExplorer
    ex = TraceEstimatorExplorer(two_moons, sample_density("two_moons", 64, seed=5), repeats=50, timing_repeats=1)
    exact = ex.stats("exact trace")
    gauss, rad = ex.stats("Hutchinson, Gaussian ε"), ex.stats("Hutchinson, Rademacher ε")
    assert exact["std_per_point"] == 0 and exact["bias"] == 0
    for s in (gauss, rad):
        assert abs(s["bias"]) < 2 * s["std_of_mean"] / math.sqrt(50), s
        assert s["std_per_point"] > 1.0
    assert rad["std_per_point"] < gauss["std_per_point"]
    assert rad["std_of_mean"] < gauss["std_of_mean"]


def test_rings_and_checkerboard_models_are_blurred():
    """§3: the rings model "spreads its mass over a disc": about half its samples lie within 0.2 of a ring,
    against nearly all of the data's; the checkerboard model "spills about a quarter of its samples onto
    the light" squares (the figure cell's samples and counts)."""
    from odeteach.data.densities import distance_to_support
    samples = {}
    for name in ("rings", "checkerboard"):
        with torch.no_grad():
            model = pretrained(name).sample(1000, seed=2, with_log_p=False).zs[-1]
        samples[name] = (sample_density(name, 1000, seed=1), model)
    near = [float((distance_to_support("rings", x) < 0.2).double().mean()) for x in samples["rings"]]
    assert near[0] > 0.95 and 0.35 < near[1] < 0.7, near
    on = [float((distance_to_support("checkerboard", x) == 0).double().mean()) for x in samples["checkerboard"]]
    assert on[0] == 1.0 and 0.15 < 1 - on[1] < 0.35, on


def test_hutchinson_pays_off_in_dimension():
    """§4: "Where Hutchinson pays off is dimension" (the lesson's table: D backward passes against one).
    CPU-time ratios, with a wide margin: D = 128 gains far more than D = 2."""
    cost = flows.trace_cost(dims=(2, 128), repeats=5)
    ratio = {d: c["exact"] / c["hutchinson"] for d, c in cost.items()}
    assert ratio[128] > 4 * max(ratio[2], 1.0), ratio
