"""Lesson 6's sentences, asserted on the computations the lesson runs (shipped checkpoints, same seeds).

Each test names the sentence it keeps true. Sentences about what the shipped models measure are printed by
the lesson from :mod:`odeteach.flows.report`; here they are checked against the numbers they state, and the
prose around them against relations that hold for any reasonable checkpoint (no model beats the data's own
density, every model beats the best Gaussian, tightening the tolerance costs evaluations). The table comes
from the lesson's own sizes (``odeteach.flows.report.LESSON``), so fast mode checks what nbval runs.
"""

import math

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from odeteach import flows  # noqa: E402
from odeteach.data.densities import DENSITIES, MOONS_NOISE, sample as sample_density  # noqa: E402
from odeteach.fast_mode import pick  # noqa: E402
from odeteach.flows import CHECKPOINT_DIR, base_log_prob, pretrained  # noqa: E402
from odeteach.flows.report import CLOSE_SHARE, LABELS, LESSON, LESSON_FULL  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def shipped():
    """Each shipped CNF and its checkpoint's meta, as the table cell loads them."""
    return {name: flows.load_checkpoint(CHECKPOINT_DIR / f"flows_{name}.pt") for name in DENSITIES}


@pytest.fixture(scope="module")
def scores(shipped):
    """The lesson's table cell: nll_table at the lesson's sizes, and the best Gaussian of the same test points."""
    table = flows.nll_table({name: model for name, (model, _) in shipped.items()}, **LESSON)
    gaussian = {name: flows.gaussian_fit_nll(flows.test_points(name, LESSON["n"])) for name in DENSITIES}
    return table, gaussian


@pytest.fixture(scope="module")
def two_moons():
    return pretrained("two_moons")


@pytest.fixture(scope="module")
def moons_fit():
    """§3's first cell: the two-moons model on 500 test points, in float64."""
    return flows.fit_report(pretrained("two_moons").double(), "two_moons", n=500)


def test_log_det_per_step_tends_to_the_trace_with_halving_error():
    """§2: "log det(I + hJ)/h → tr J with an error that halves as h halves" (the cell's own J)."""
    g = torch.Generator().manual_seed(6)
    J = torch.randn(3, 3, generator=g, dtype=torch.float64)
    gaps = [torch.logdet(torch.eye(3, dtype=torch.float64) + h * J).item() / h - torch.trace(J).item()
            for h in (0.1, 0.05, 0.025, 0.0125)]
    ratios = [a / b for a, b in zip(gaps, gaps[1:])]
    assert all(1.9 < r < 2.2 for r in ratios), ratios


def test_shipped_two_moons_fit_in_float64(moons_fit):
    """§3: the two-moons model solves in the stated settings (float64, rtol = atol = 1e-5), beats the best Gaussian
    on the 500 test points, and its density integrates to 1 over the grid (float32)."""
    cnf = pretrained("two_moons")
    assert (cnf.rtol, cnf.atol, cnf.method) == (1e-5, 1e-5, "dopri5")
    assert moons_fit.model_nll < moons_fit.gaussian_nll
    _, _, log_p = flows.log_prob_grid(cnf, n=100, box=6.0)
    assert abs(flows.grid_mass(log_p, 6.0) - 1) < 5e-3        # prints 1.000


def test_the_lesson_table_is_the_evaluate_commands():
    """§3: "scores all three shipped models as `python -m odeteach.evaluate flows` does": the full lesson uses
    nll_table's defaults (the command's), fast mode smaller sizes."""
    assert flows.nll_table.__kwdefaults__ == LESSON_FULL == {"n": flows.N_TEST, "entropy_points": flows.ENTROPY_POINTS}
    assert LESSON["n"] <= flows.N_TEST and LESSON["entropy_points"] <= flows.ENTROPY_POINTS


def test_no_model_beats_the_data_and_every_model_beats_a_gaussian(scores):
    """§3: the entropy is "the lowest mean NLL any model can reach" (up to sampling noise: the paired gap, an
    estimate of KL ≥ 0, is not below −3 standard errors), and the best single Gaussian "gives the scale"."""
    table, gaussian = scores
    for name, row in table.items():
        assert row["paired_gap"] > -3 * row["paired_gap_se"], (name, row)
        assert row["test_nll"] < gaussian[name], (name, row, gaussian[name])
        assert row["target"] == flows.GAP_TARGETS[name] and row["nfe"] > 0


def test_the_paragraph_says_what_the_table_says(scores, shipped):
    """§3's paragraph (printed by describe_nll_table): for each model, the iterations of its checkpoint, its test NLL,
    and "within its target" exactly when gap ≤ target; the first line counts the models that meet theirs."""
    table, gaussian = scores
    iterations = {name: meta["iterations"] for name, (_, meta) in shipped.items()}
    assert iterations == flows.CHECKPOINT_ITERATIONS           # the checkpoints `python -m odeteach.train flows` makes
    summary, *paragraphs = flows.describe_nll_table(table, iterations=iterations, gaussian=gaussian,
                                                    width=None).split("\n")
    assert len(paragraphs) == len(table)
    met = [name for name, row in table.items() if row["gap"] <= row["target"]]
    for (name, row), text in zip(table.items(), paragraphs):
        assert text.startswith(LABELS[name].capitalize()) and f"({iterations[name]:,} training iterations)" in text
        assert f"test NLL {row['test_nll']:.3f} nats" in text and f"{abs(row['gap']):.3f} nats" in text
        assert ("within its target" in text) == (name in met)
        assert ("beyond its target" in text) == (name not in met)
        assert f"beats the best single Gaussian by {gaussian[name] - row['test_nll']:.3f}" in text
    if len(met) == len(table):
        assert summary == "All three models meet their targets."
    elif not met:
        assert summary == "None of the three models meets its target."
    else:
        assert all(LABELS[name] in summary.lower() for name in table)


def test_training_starts_near_the_base_density_and_nfe_grows(moons_fit):
    """Training text: "the loss starts close to the NLL of N(0, I) itself"; "a fresh field needs about 20
    evaluations per solve" and the NFE grows with training (the shipped model's, printed beside it, is higher)."""
    first = flows.train_cnf("two_moons", iterations=1, batch=256, seed=1, progress=False)
    base_nll = -base_log_prob(flows.test_points("two_moons", 500)).mean().item()
    assert abs(first.losses[0] - base_nll) < 0.25
    assert 14 <= first.nfe[0] <= 26
    assert first.nfe[0] < moons_fit.nfe


def test_mean_log_density_of_samples_starts_at_the_base_and_rises(two_moons):
    """Time explorer: the mean log p_t(z(t)) is "about −log(2πe) ≈ −2.84 nats" at t = 1 and "the mean rises" as
    the mass concentrates; the printed sentence reports a dip exactly when the lowest frame lies inside the path
    (the explorer's own sampling solve, at the lesson's sizes)."""
    times = np.linspace(1.0, 0.0, pick(11, 5))
    with torch.no_grad():
        means = two_moons.sample(pick(1000, 300), seed=0, times=torch.tensor(times, dtype=torch.float32)).log_p
    means = means.mean(dim=1).numpy()
    assert abs(means[0] + math.log(2 * math.pi * math.e)) < 0.1
    assert means[-1] > means[0] + 0.2
    text = flows.describe_log_p_path(times, means, width=None)
    assert f"{means[0]:.2f} nats, close to" in text and f"{means[-1]:.2f} at t = 0.00" in text
    assert ("first dips" in text) == (0 < int(np.argmin(means)) < len(means) - 1)
    assert "higher than it started: the flow concentrates the mass" in text


def test_tolerance_costs_nfe_and_the_sentence_reports_the_sweep(two_moons):
    """Tolerance explorer (the lesson's samples): "tightening the tolerance costs evaluations", the tightest stop
    lands close to the reference, and the printed sentences state the sweep's own NFE and errors."""
    from odeteach.widgets.flows import FlowToleranceExplorer
    ex = FlowToleranceExplorer(two_moons, n_samples=pick(500, 200))
    assert list(ex.tolerances) == sorted(ex.tolerances, reverse=True) and all(f is None for f in ex.failure)
    assert ex.nfe[-1] > ex.nfe[0] and ex.error[-1] < 1e-3 and ex.error[-1] < ex.error[0]
    text = flows.describe_tolerance_sweep(ex.tolerances, ex.nfe, ex.error, scale=2 * MOONS_NOISE,
                                          scale_name="the moons' noise standard deviation", width=None)
    rises = "rises" if all(b >= a for a, b in zip(ex.nfe, ex.nfe[1:])) else "changes, not always upwards,"
    assert f"The NFE {rises} from {ex.nfe[0]} at rtol = atol = 1e-01 to {ex.nfe[-1]} at 1e-06." in text
    assert f"samples lie {ex.error[0]:.2g} from the reference" in text
    assert ("small against" in text and "not small" not in text) == (ex.error[0] < 0.1)
    flat = next(k for k, v in enumerate(ex.nfe) if v != ex.nfe[0])
    assert (f"The {flat} loosest stops all cost {ex.nfe[0]} evaluations" in text) == (flat >= 2)


def test_hutchinson_unbiased_rademacher_scatters_less(two_moons):
    """Trace explorer (64 points, 40 repeats, as in the lesson): the exact trace does not scatter; Hutchinson's
    bias is within three standard errors of 0 (unbiased); Rademacher scatters less than Gaussian; the printed
    sentences state the explorer's own numbers."""
    from odeteach.widgets.flows import TraceEstimatorExplorer
    repeats = 40
    ex = TraceEstimatorExplorer(two_moons, sample_density("two_moons", 64, seed=5), repeats=repeats, timing_repeats=1)
    stats = {label: ex.stats(label) for label in ex.estimates}
    exact, gauss, rad = (stats[k] for k in ("exact trace", "Hutchinson, Gaussian ε", "Hutchinson, Rademacher ε"))
    assert exact["std_per_point"] == 0 and exact["bias"] == 0
    z = [abs(s["bias"]) / (s["std_of_mean"] / math.sqrt(repeats)) for s in (gauss, rad)]
    assert max(z) < 3, z
    assert rad["std_per_point"] < gauss["std_per_point"] and rad["std_of_mean"] < gauss["std_of_mean"]
    text = flows.describe_trace_study(stats, repeats, width=None)
    assert ("no sign of bias" in text) == (max(z) < 2)
    assert "Here Rademacher ε scatters less than Gaussian ε." in text
    assert f"{gauss['std_per_point']:.2f} nats (Gaussian ε)" in text
    assert (", more than a nat" in text) == (min(gauss["std_per_point"], rad["std_per_point"]) > 1)


def test_samples_on_the_shape_sentence_states_the_counts():
    """§3's samples: nearly all the data lies within 0.2 of a ring and all of it on a dark square; the printed
    sentence gives the model's share and calls it close to the data exactly when within CLOSE_SHARE of the data's
    (the figure cell's samples and counts)."""
    samples = {}
    for name in ("rings", "checkerboard"):
        with torch.no_grad():
            model = pretrained(name).sample(1000, seed=2, with_log_p=False).zs[-1]
        samples[name] = (sample_density(name, 1000, seed=1), model)
    shares = {name: [flows.support_fraction(name, x) for x in pair] for name, pair in samples.items()}
    assert shares["rings"][0] > 0.95 and shares["checkerboard"][0] == 1.0
    text = flows.describe_support(shares, width=None)
    for name, (data, model) in shares.items():
        sentence = next(s for s in text.split(". ") if f"the {LABELS[name]} model's" in s)
        assert sentence.startswith(f"{model:.0%} of the {LABELS[name]} model's samples") and f"{data:.0%}" in sentence
        assert ("close to the data" in sentence) == (data - model <= CLOSE_SHARE)


def test_hutchinson_pays_off_in_dimension():
    """§4: "Where Hutchinson pays off is dimension" (the lesson's table: D backward passes against one).
    CPU-time ratios, with a wide margin: D = 128 gains far more than D = 2."""
    cost = flows.trace_cost(dims=(2, 128), repeats=5)
    ratio = {d: c["exact"] / c["hutchinson"] for d, c in cost.items()}
    assert ratio[128] > 4 * max(ratio[2], 1.0), ratio


def _signed(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}".replace("-", "−")


def test_readme_lesson6_table_is_what_the_command_prints(shipped):
    """The README's lesson-6 table: every number as `python -m odeteach.evaluate flows` computes it now (5,000 test
    points, 200,000 entropy points), the training iterations from the checkpoints, and the sentence that says which
    densities meet their targets."""
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    text = readme[readme.index("**Lesson 6: continuous normalizing flows.**"):readme.index("**Lesson 7: tunable networks**")]
    table = flows.nll_table({name: model for name, (model, _) in shipped.items()})
    for name, row in table.items():
        gaussian = flows.gaussian_fit_nll(flows.test_points(name))
        iterations = f"{shipped[name][1]['iterations']:,}"
        cells = [LABELS[name], f"{row['test_nll']:.3f}", f"{row['entropy']:.3f}", _signed(row["gap"]),
                 f"≤ {row['target']:.2f}", f"{_signed(row['paired_gap'])} ± {row['paired_gap_se']:.3f}",
                 f"{gaussian:.3f}"]
        line = next((ln for ln in text.splitlines() if ln.startswith(f"| {LABELS[name]} |")), None)
        assert line is not None, name
        assert line.startswith("| " + " | ".join(cells) + " | " + iterations), (line, cells)
    prose = " ".join(text.split())
    assert ("All three meet their targets, by both measures." in prose) == all(
        row["gap"] <= row["target"] and row["paired_gap"] <= row["target"] for row in table.values())
    for name in ("rings", "checkerboard"):                    # "Rings, 6,000 iterations: 6,164 s; ..."
        meta = shipped[name][1]
        assert f"{meta['iterations']:,} iterations: {meta['seconds']:,.0f} s" in prose
    shares = {}                                              # the lesson's samples-on-the-shape cell, again
    for name in ("rings", "checkerboard"):
        with torch.no_grad():
            model = pretrained(name).sample(1000, seed=2, with_log_p=False).zs[-1]
        shares[name] = [flows.support_fraction(name, x) for x in (sample_density(name, 1000, seed=1), model)]
    (rings_data, rings_model), (board_data, board_model) = shares["rings"], shares["checkerboard"]
    assert f"now {rings_model:.0%} of its samples are, against the data's {rings_data:.0%}" in prose
    assert f"now {1 - board_model:.0%} land there ({board_model:.0%} on dark squares, against the data's {board_data:.0%})" in prose
