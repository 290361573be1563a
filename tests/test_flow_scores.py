"""Issue 12, the flows: the data's entropy (the floor of any model's NLL), the test points no training
batch can share, and the table ``python -m odeteach.evaluate flows`` prints."""

import math

import pytest
import torch

from odeteach import flows
from odeteach.data.densities import DENSITIES, entropy, log_density, sample
from odeteach.flows import CNF


def test_checkerboard_entropy_is_log_32_exactly():
    h, se = entropy("checkerboard", 5000)
    assert h == pytest.approx(math.log(32), abs=1e-12) and se < 1e-12


@pytest.mark.parametrize("name", ["rings", "two_moons"])
def test_monte_carlo_entropy_matches_a_grid_integral(name):
    """−∫ p log p on a fine grid (a different computation) agrees with the Monte Carlo mean within 4 standard errors."""
    n = 400
    centres = torch.linspace(-4.5 + 4.5 / n, 4.5 - 4.5 / n, n, dtype=torch.float64)
    gy, gx = torch.meshgrid(centres, centres, indexing="ij")
    log_p = log_density(name, torch.stack([gx.reshape(-1), gy.reshape(-1)], 1))
    cell = (9.0 / n) ** 2
    mass = float(log_p.exp().sum() * cell)
    grid_h = float(-(log_p.exp() * log_p).sum() * cell)
    assert mass == pytest.approx(1.0, abs=2e-3)      # the grid holds the whole density
    h, se = entropy(name, 20_000)
    assert abs(h - grid_h) < 4 * se + 2e-3, (h, se, grid_h)


def test_entropy_rejects_bad_input():
    with pytest.raises(ValueError, match="Valid names"):
        entropy("spiral")
    with pytest.raises(ValueError, match="n"):
        entropy("rings", 1)


def test_test_points_never_come_from_a_training_seed():
    """No shipped run's batches, nor the quick runs', use the test seed or lesson 6's seed (2024)."""
    runs = [flows.CHECKPOINT_ITERATIONS, flows.QUICK["iterations"]]
    used = {flows.training_seed(0, i) for counts in runs for n in counts.values() for i in range(n)}
    assert flows.TEST_SEED not in used and 2024 not in used
    for name in DENSITIES:
        assert torch.equal(flows.test_points(name, 50), sample(name, 50, seed=flows.TEST_SEED))
    assert flows.fit_report.__kwdefaults__["seed"] == flows.TEST_SEED


def _cnf(seed=0):
    torch.manual_seed(seed)
    return CNF(2, 16, 2)


def test_nll_table_numbers_fit_together():
    table = flows.nll_table({"rings": _cnf()}, n=300, entropy_points=4000)
    row = table["rings"]
    assert set(row) == {"test_nll", "entropy", "entropy_se", "gap", "paired_gap", "paired_gap_se", "target", "nfe"}
    assert row["gap"] == pytest.approx(row["test_nll"] - row["entropy"])
    assert row["target"] == flows.GAP_TARGETS["rings"] and row["nfe"] > 0
    # The paired gap is the same comparison on the test points themselves.
    test = flows.test_points("rings", 300)
    data_nll = -float(log_density("rings", test).mean())
    assert row["paired_gap"] == pytest.approx(row["test_nll"] - data_nll, abs=1e-5)
    assert row["paired_gap"] > 0.5   # an untrained field is far from the rings


def test_nll_table_rejects_bad_input():
    with pytest.raises(ValueError, match="Valid names"):
        flows.nll_table({"spiral": _cnf()}, n=10, entropy_points=10)
    with pytest.raises(TypeError, match="CNF"):
        flows.nll_table({"rings": "model"}, n=10, entropy_points=10)
