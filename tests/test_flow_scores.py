"""Issue 12, the flows: the data's entropy (the floor of any model's NLL), the test points no training
batch can share, and the table ``python -m odeteach.evaluate flows`` prints."""

import ast
import json
import math
from pathlib import Path

import pytest
import torch

from odeteach import flows
from odeteach.data.densities import DENSITIES, ENTROPY_SEED, entropy, log_density, sample
from odeteach.flows import CNF

ROOT = Path(__file__).resolve().parent.parent


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


# The shipped runs' lengths before issue 12's retraining and after it (flows.CHECKPOINT_ITERATIONS holds the
# current ones); every one of them must leave the seeds that fresh points come from untouched.
RUN_LENGTHS = [{"two_moons": 800, "rings": 800, "checkerboard": 600},
               {"two_moons": 3000, "rings": 6000, "checkerboard": 5000}]
# Lesson 6 and the test that checks its sentences: where they score a model, they score it on fresh points.
SCORING_SOURCES = [ROOT / "notebooks" / "06_continuous_normalizing_flows.ipynb",
                   ROOT / "tests" / "test_claims_lesson06.py"]


def _calls(path: Path, function: str) -> list[ast.Call]:
    """Every call of ``function`` (by name or attribute) in a Python file or a notebook's code cells."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        code = "\n".join(line for line in code.splitlines() if not line.startswith("%"))   # IPython magics
    else:
        code = path.read_text()
    return [node for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == function]


def test_fresh_points_never_come_from_a_training_seed():
    """No shipped run's batches (old, planned or current lengths), nor the quick runs', use the seed of the test
    points or of the entropy's points, and lesson 6 and its claims test score models only on those test points."""
    runs = RUN_LENGTHS + [flows.CHECKPOINT_ITERATIONS, flows.QUICK["iterations"]]
    used = {flows.training_seed(0, i) for counts in runs for n in counts.values() for i in range(n)}
    assert max(used) < flows.TEST_SEED and ENTROPY_SEED not in used
    for name in DENSITIES:
        assert torch.equal(flows.test_points(name, 50), sample(name, 50, seed=flows.TEST_SEED))
    assert flows.fit_report.__kwdefaults__["seed"] == flows.TEST_SEED
    for path in SCORING_SOURCES:
        fits = _calls(path, "fit_report")
        assert fits and all(len(c.args) == 2 and {k.arg for k in c.keywords} <= {"n"} for c in fits), path.name
        assert _calls(path, "nll_table") and _calls(path, "test_points"), path.name


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


# --------------------------------------------------------------------------------------------
# Lesson 6's sentences, from planted numbers (odeteach.flows.report)


def _row(name, gap, paired=None, entropy=2.5):
    """A row of nll_table with the given gap (and paired gap, the same by default)."""
    return {"test_nll": entropy + gap, "entropy": entropy, "entropy_se": 0.002, "gap": gap,
            "paired_gap": gap if paired is None else paired, "paired_gap_se": 0.01,
            "target": flows.GAP_TARGETS[name], "nfe": 40}


def _paragraphs(table, **kwargs):
    summary, *rest = flows.describe_nll_table(table, width=None, **kwargs).split("\n")
    return summary, dict(zip(table, rest))


def test_describe_nll_table_all_targets_met():
    table = {name: _row(name, 0.5 * flows.GAP_TARGETS[name]) for name in DENSITIES}
    summary, text = _paragraphs(table, iterations={"two_moons": 3000, "rings": 6000, "checkerboard": 5000})
    assert summary == "All three models meet their targets."
    assert "Two moons (3,000 training iterations): test NLL 2.525 nats, 0.025 nats above" in text["two_moons"]
    assert all("within its target" in t and "beyond" not in t and "clear-cut" not in t for t in text.values())
    assert flows.format_nll_table(table).count(" yes ") == 3


def test_describe_nll_table_all_targets_missed():
    table = {name: _row(name, flows.GAP_TARGETS[name] + 0.3) for name in DENSITIES}
    summary, text = _paragraphs(table)
    assert summary == "None of the three models meets its target."
    assert "0.450 nats above the data's entropy (2.500): 0.300 beyond its target of 0.15." in text["checkerboard"]
    assert not any("within its target" in t or "training iterations" in t for t in text.values())
    assert flows.format_nll_table(table).count(" no ") == 3


def test_describe_nll_table_one_of_each_and_the_gaussian():
    table = {"two_moons": _row("two_moons", 0.02), "rings": _row("rings", 0.8)}
    summary, text = _paragraphs(table, gaussian={"two_moons": 3.3, "rings": 3.0})
    assert summary == "Two moons meets its target; rings misses its target."
    assert "within its target of 0.05. It beats the best single Gaussian by 0.780 nats." in text["two_moons"]
    assert "It does not beat the best single Gaussian (3.000 nats)." in text["rings"]
    # 0.8 above the entropy, 0.7 better than the Gaussian: further from the entropy than from the Gaussian.
    _, text = _paragraphs({"rings": _row("rings", 0.8)}, gaussian={"rings": 4.0})
    assert "beats the best single Gaussian by 0.700 nats, and is further from the entropy" in text["rings"]
    assert "Gaussian" in flows.format_nll_table(table, {"two_moons": 3.3, "rings": 3.0}).splitlines()[0]


def test_describe_nll_table_noise_and_a_gap_below_zero():
    summary, text = _paragraphs({"two_moons": _row("two_moons", 0.03, paired=0.07)})
    assert summary == "The model meets its target."
    assert "Its paired gap, 0.070 ± 0.010, exceeds the target" in text["two_moons"]
    assert "not clear-cut" in text["two_moons"]
    _, text = _paragraphs({"rings": _row("rings", 0.12, paired=0.08)})
    assert "beyond its target" in text["rings"]
    assert "Its paired gap, 0.080 ± 0.010, is within the target" in text["rings"]
    _, text = _paragraphs({"rings": _row("rings", -0.01)})
    assert "0.010 nats below the data's entropy (2.500), which only the sampling noise" in text["rings"]
    assert "within its target" in text["rings"]


def test_describe_nll_table_rejects_bad_input():
    with pytest.raises(TypeError, match="nll_table"):
        flows.describe_nll_table({})
    with pytest.raises(ValueError, match="Valid names"):
        flows.describe_nll_table({"spiral": _row("rings", 0.1)})
    with pytest.raises(ValueError, match="lacks paired_gap"):
        flows.describe_nll_table({"rings": {k: v for k, v in _row("rings", 0.1).items() if k != "paired_gap"}})
    with pytest.raises(ValueError, match="iterations must be a dict with an entry for each of two_moons, rings"):
        flows.describe_nll_table({"two_moons": _row("two_moons", 0.0), "rings": _row("rings", 0.0)},
                                 iterations={"rings": 10})


def test_describe_support_close_and_blurred():
    text = flows.describe_support({"rings": (0.99, 0.97), "checkerboard": (1.0, 0.77)}, width=None)
    assert text == ("97% of the rings model's samples lie within 0.2 of a ring, against 99% of the data's: close to "
                    "the data. 77% of the checkerboard model's samples lie on a dark square, against 100% of the "
                    "data's: the model puts 23% of its samples on the light squares, where the data has 0%.")
    x = torch.tensor([[1.0, 0.0], [1.5, 0.0], [0.0, 2.1], [0.0, 2.3]])
    assert flows.support_fraction("rings", x) == 0.5
    with pytest.raises(ValueError, match="knows rings, checkerboard"):
        flows.support_fraction("two_moons", x)
    with pytest.raises(ValueError, match="shares in"):
        flows.describe_support({"rings": (99, 50)})


def test_describe_log_p_path_with_and_without_a_dip():
    times = [1.0, 0.5, 0.0]
    text = flows.describe_log_p_path(times, [-2.84, -2.90, -2.40], width=None)
    assert "It first dips, by 0.06 nats to -2.90 at t = 0.50, then rises steadily to -2.40" in text
    assert text.endswith("That is 0.44 nats higher than it started: the flow concentrates the mass.")
    text = flows.describe_log_p_path(times, [-2.84, -2.60, -2.40], width=None)
    assert "dips" not in text and "It ends at -2.40 at t = 0.00, rising at every frame." in text
    text = flows.describe_log_p_path(times, [-2.84, -3.00, -3.10], width=None)
    assert "lower than it started: the flow spreads the mass" in text
    with pytest.raises(ValueError, match="same length"):
        flows.describe_log_p_path(times, [-2.8, -2.5])


def test_describe_tolerance_sweep_flat_stops_failures_and_scale():
    tols = (1e-1, 3e-2, 1e-2, 1e-3)
    text = flows.describe_tolerance_sweep(tols, [14, 14, 20, 32], [0.06, 0.08, 0.02, 0.001], scale=0.2,
                                          scale_name="the noise", width=None)
    assert "The NFE rises from 14 at rtol = atol = 1e-01 to 32 at 1e-03." in text
    assert "The 2 loosest stops all cost 14 evaluations, and there the error does not improve either." in text
    assert "From 3e-02 on, every tighter stop lands the samples closer" in text
    assert "lie 0.06 from the reference on average, small against the noise (0.2)" in text
    text = flows.describe_tolerance_sweep(tols, [0, 14, 20, 26], [float("nan"), 0.3, 0.2, 0.1], scale=0.2, width=None)
    assert text.startswith("The solver stopped at rtol = atol = 1e-01.") and "not small" in text
    with pytest.raises(ValueError, match="loosest to the tightest"):
        flows.describe_tolerance_sweep(tols[::-1], [14] * 4, [0.1] * 4)


def test_describe_trace_study_bias_and_spread():
    def stats(bias, std_per_point, std_of_mean=0.5):
        return {"bias": bias, "std_per_point": std_per_point, "std_of_mean": std_of_mean}
    unbiased = {"Hutchinson, Gaussian ε": stats(0.1, 2.3), "Hutchinson, Rademacher ε": stats(-0.02, 1.3, 0.2)}
    text = flows.describe_trace_study(unbiased, repeats=50, width=None)
    assert "(1.4 for Gaussian ε and 0.7 for Rademacher ε): no sign of bias" in text
    assert "2.30 nats (Gaussian ε) and 1.30 nats (Rademacher ε), more than a nat." in text
    assert text.endswith("Here Rademacher ε scatters less than Gaussian ε.")
    biased = {"Hutchinson, Gaussian ε": stats(0.3, 0.9), "Hutchinson, Rademacher ε": stats(0.0, 0.8)}
    text = flows.describe_trace_study(biased, repeats=25, width=None)
    assert "with Gaussian ε is 3.0 standard errors from 0, which an unbiased estimate shows 0.3% of the time" in text
    assert "more than a nat" not in text
    with pytest.raises(ValueError, match="repeats"):
        flows.describe_trace_study(unbiased, repeats=1)
