"""How the latent ODE and the RNN are scored, and the sentences the lesson prints about the scores.

Both models are scored on the extrapolation window of :mod:`odeteach.data.spirals`, which neither
sees in training: the root-mean-square error of their predictions there (the paper's Table 2),
how honest the latent ODE's posterior is about its error, and where its training loss ended
against the noise floor. The lesson's sentences about these numbers are chosen here, from the numbers.
"""

from __future__ import annotations

import math

import torch

from ..data.spirals import OBSERVED_COUNTS, PLACEMENTS, Spirals, observe, subsample
from ..training import TrainLog
from ..validation import integer, positive_number
from .baseline import RNNBaseline
from .model import LatentODE

__all__ = ["PAPER_TABLE2", "TIE_TOLERANCE", "CALIBRATION_FACTOR", "extrapolation_rmse", "rmse_table",
           "sample_spread", "posterior_check", "describe_posterior", "trend", "join_counts", "describe_table",
           "noise_floor", "describe_training", "predictive_coverage", "placement_table", "COVERAGE_TARGET",
           "PARTS", "FAN_SETTINGS", "posterior_fan", "describe_fan", "describe_coverage",
           "compare_at", "describe_placements"]

# The paper's Table 2 (predictive RMSE on the extrapolated spirals), for comparison only.
PAPER_TABLE2 = {"RNN": {30: 0.3937, 50: 0.3202, 100: 0.1813},
                "Latent ODE": {30: 0.1642, 50: 0.1502, 100: 0.1346}}


# --------------------------------------------------------------------------------------------
# The extrapolation error


@torch.no_grad()
def extrapolation_rmse(model: LatentODE | RNNBaseline, data: Spirals, n_observed: int, *, placement: str = "random",
                       seed: int = 1, against: str = "noisy") -> float:
    """Root-mean-square error on the extrapolation window, over all of ``data`` and both coordinates.

    Each spiral is observed at ``n_observed`` window points (drawn with ``seed``, the same for
    every model); the model then predicts the ``data.t_extrapolate`` times. ``against="noisy"``
    scores against the held-out noisy points (as the paper's predictive RMSE), ``"clean"``
    against the noise-free spiral.
    """
    if against not in ("noisy", "clean"):
        raise ValueError(f"against must be 'noisy' or 'clean'; got {against!r}.")
    gen = torch.Generator().manual_seed(seed)
    idx = subsample(data.t.shape[0], n_observed, placement, generator=gen, batch=len(data))
    times, x = observe(data, idx)
    if isinstance(model, LatentODE):
        t_all = torch.cat([data.t, data.t_extrapolate])
        path, _ = model.predict(times, x, t_all)
        pred = path[:, data.t.shape[0]:]
    elif isinstance(model, RNNBaseline):
        pred = model.extrapolate(times, x, data.t_extrapolate)
    else:
        raise TypeError(f"model must be a LatentODE or an RNNBaseline; got {type(model).__name__}.")
    target = data.x_extrapolate if against == "noisy" else data.clean_extrapolate
    return float(((pred - target) ** 2).mean().sqrt())


def rmse_table(latent: LatentODE, rnn: RNNBaseline, data: Spirals, counts=OBSERVED_COUNTS, **kwargs) -> dict:
    """``{"RNN": {n: rmse}, "Latent ODE": {n: rmse}}`` over ``data``, in the shape of the paper's Table 2."""
    return {name: {n: extrapolation_rmse(m, data, n, **kwargs) for n in counts}
            for name, m in (("RNN", rnn), ("Latent ODE", latent))}


def placement_table(latent: LatentODE, rnn: RNNBaseline, data: Spirals, counts=OBSERVED_COUNTS,
                    placements=PLACEMENTS, **kwargs) -> dict:
    """Irregular sampling: ``{placement: rmse_table(...)}`` for uniform, random and bunched observations."""
    return {p: rmse_table(latent, rnn, data, counts, placement=p, **kwargs) for p in placements}


# The 90% posterior predictive band should cover between 80% and 97% of the held-out points (issue 12).
COVERAGE_TARGET = (0.80, 0.97)


@torch.no_grad()
def predictive_coverage(model: LatentODE, data: Spirals, counts=OBSERVED_COUNTS, *, level: float = 0.9,
                        n_samples: int = 100, placement: str = "random", seed: int = 1,
                        obs_std: float | None = None) -> dict:
    """How often the held-out extrapolation falls inside the posterior predictive band.

    For each count, each spiral is observed as in :func:`extrapolation_rmse` (same ``seed``, same points).
    ``n_samples`` draws z_t0 ~ q(z_t0 | x) are decoded over the extrapolation window, and each gets the
    likelihood's noise N(0, σ²) added: samples of the posterior predictive p(x | observations). The band
    is their central ``level`` interval, coordinate by coordinate. Returns ``{"coverage": …, "by_count":
    {n: …}}``: the fraction of the held-out noisy coordinates inside the band, pooled and per count. A
    calibrated model covers about ``level``; an overconfident one much less. ``obs_std`` replaces the
    likelihood's σ in the band (:func:`~odeteach.latent.fit_observation_noise` gives the fitted one).
    """
    if not isinstance(model, LatentODE):
        raise TypeError(f"model must be a LatentODE; got {type(model).__name__}.")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1; got {level}.")
    n_samples = integer("n_samples", n_samples, minimum=10)
    noise = model.obs_std if obs_std is None else positive_number("obs_std", obs_std)
    n_grid, t_all = data.t.shape[0], torch.cat([data.t, data.t_extrapolate])
    by_count = {}
    for n in counts:
        gen = torch.Generator().manual_seed(seed)
        idx = subsample(n_grid, n, placement, generator=gen, batch=len(data))
        times, x = observe(data, idx)
        _, samples = model.predict(times, x, t_all, n_samples=n_samples, generator=gen)
        future = samples[:, :, n_grid:]
        predictive = future + noise * torch.randn(future.shape, generator=gen, dtype=future.dtype)
        low, high = torch.quantile(predictive, torch.tensor([(1 - level) / 2, (1 + level) / 2]), dim=0)
        by_count[n] = float(((data.x_extrapolate >= low) & (data.x_extrapolate <= high)).float().mean())
    return {"coverage": sum(by_count.values()) / len(by_count), "by_count": by_count}


# --------------------------------------------------------------------------------------------
# What the measurements say: the lesson's sentences about them are chosen here, from the numbers

# A relative difference below this counts as a tie ("about level"), not as a rise or a fall.
TIE_TOLERANCE = 0.02
# The posterior counts as calibrated when error / spread is within this factor of 1.
CALIBRATION_FACTOR = 2.0
# The parts of the extrapolation window posterior_check can score.
PARTS = ("all", "near", "far")
# Where the posterior should fan out: few or bunched observations against many (posterior_fan).
FAN_SETTINGS = ((5, "bunched"), (5, "uniform"), (10, "random"), (30, "random"), (100, "uniform"))


def sample_spread(samples: torch.Tensor) -> float:
    """How far samples fan out: the root-mean-square, over every axis but the first, of their
    standard deviation across the first axis (the samples). Needs at least 2 samples."""
    if samples.shape[0] < 2:
        raise ValueError(f"a spread needs at least 2 samples along the first axis; got {samples.shape[0]}.")
    return float(samples.var(dim=0).mean().sqrt())


@torch.no_grad()
def posterior_check(model: LatentODE, data: Spirals, n_observed: int = 30, *, n_samples: int = 10,
                    placement: str = "random", seed: int = 1, part: str = "all") -> dict:
    """Is the posterior as uncertain as it is wrong? Measured in the extrapolation window over all of ``data``.

    Each spiral is observed at ``n_observed`` points (drawn with ``seed``, as in
    :func:`extrapolation_rmse`); ``n_samples`` draws of z_t0 ~ q(z_t0 | x) are decoded. Returns
    ``{"spread", "rmse", "ratio"}``: the samples' spread (:func:`sample_spread`), the RMSE of the
    posterior-mean trajectory against the noise-free spiral, and rmse / spread. If the truth were
    like one more posterior sample, the ratio would be about 1; far above 1, the posterior is overconfident.
    ``part``: the whole extrapolation window (``"all"``), its first third (``"near"``) or its last third (``"far"``).
    """
    n_samples = integer("n_samples (a spread needs two samples)", n_samples, minimum=2)
    if part not in PARTS:
        raise ValueError(f"part must be one of {', '.join(PARTS)}; got {part!r}.")
    gen = torch.Generator().manual_seed(seed)
    idx = subsample(data.t.shape[0], n_observed, placement, generator=gen, batch=len(data))
    times, x = observe(data, idx)
    n = data.t.shape[0]
    path, samples = model.predict(times, x, torch.cat([data.t, data.t_extrapolate]), n_samples=n_samples, generator=gen)
    m = data.t_extrapolate.shape[0]
    window = {"all": slice(0, m), "near": slice(0, m // 3), "far": slice(m - m // 3, m)}[part]
    spread = sample_spread(samples[:, :, n:][:, :, window])
    rmse = float(((path[:, n:][:, window] - data.clean_extrapolate[:, window]) ** 2).mean().sqrt())
    return {"spread": spread, "rmse": rmse, "ratio": rmse / spread if spread > 0 else math.inf}


def describe_posterior(check: dict) -> str:
    """The sentence the lesson prints about :func:`posterior_check`'s numbers."""
    ratio = check["ratio"]
    numbers = f"posterior spread {check['spread']:.3f}, error of the posterior mean {check['rmse']:.3f}"
    if ratio > CALIBRATION_FACTOR:
        verdict = (f"the error is {ratio:.1f}× the spread: the posterior is overconfident, "
                   "its samples hide under the mean")
    elif ratio < 1 / CALIBRATION_FACTOR:
        verdict = f"the spread is {1 / ratio:.1f}× the error: the posterior is underconfident"
    else:
        verdict = f"error / spread = {ratio:.2f}: the spread is about the size of the error"
    return f"{numbers}; {verdict}"


def trend(first: float, last: float, tolerance: float = TIE_TOLERANCE) -> str:
    """``"falls"``, ``"rises"`` or ``"stays about level"`` (a relative change within ``tolerance``)."""
    change = (last - first) / abs(first)
    return "stays about level" if abs(change) <= tolerance else ("rises" if change > 0 else "falls")


def join_counts(counts) -> str:
    """The counts as the lesson reads them: "30", "30 and 50", "30, 50 and 100" (or "no number")."""
    counts = [str(n) for n in counts]
    return "no number" if not counts else counts[0] if len(counts) == 1 else ", ".join(counts[:-1]) + " and " + counts[-1]


def describe_table(table: dict, paper: dict = PAPER_TABLE2) -> list[str]:
    """The lines the lesson prints under its Table 2: who is lower where, and which way each error goes.

    ``table`` (and ``paper``) map "RNN" and "Latent ODE" to ``{n_observed: rmse}``. A relative
    difference within :data:`TIE_TOLERANCE` is reported as a tie, not as a win.
    """
    counts = sorted(table["Latent ODE"])

    def where(t):  # the latent ODE's error against the RNN's, count by count
        groups = {}
        for n in counts:
            groups.setdefault(trend(t["RNN"][n], t["Latent ODE"][n]), []).append(n)
        parts = [f"{words} {join_counts(groups[key])}" for key, words in
                 (("falls", "below the RNN's at"), ("stays about level", "level with it at"), ("rises", "above it at"))
                 if key in groups]
        return "; ".join(parts)

    lines = [f"the latent ODE's error is {where(table)} observed points (the paper's: {where(paper)})"]
    first, last = counts[0], counts[-1]
    for name, label in (("RNN", "the RNN's"), ("Latent ODE", "the latent ODE's")):
        ours, theirs = table[name], paper[name]
        went, paper_went = trend(ours[first], ours[last]), trend(theirs[first], theirs[last])
        relation = (f"as the paper's does ({theirs[first]:.4f} → {theirs[last]:.4f})" if went == paper_went else
                    f"unlike the paper's, which {paper_went} ({theirs[first]:.4f} → {theirs[last]:.4f})")
        lines.append(f"from {first} to {last} observed points {label} error {went} "
                     f"({ours[first]:.3f} → {ours[last]:.3f}), {relation}")
    return lines


def noise_floor(obs_std: float, obs_dim: int = 2) -> float:
    """E[−log p(x | z)] per observed point for a decoder that hits every noise-free point exactly:
    d (log σ + ½ log 2π + ½) for d coordinates with Gaussian noise of std σ. No model's −ELBO per point goes lower on average."""
    return obs_dim * (math.log(obs_std) + 0.5 * math.log(2 * math.pi) + 0.5)


def describe_training(log: TrainLog, obs_std: float, obs_dim: int = 2, last: int = 50) -> str:
    """The sentence the lesson prints about where a latent ODE's training loss ended, against the noise floor."""
    final = sum(log.losses[-last:]) / len(log.losses[-last:])
    floor = noise_floor(obs_std, obs_dim)
    where = ("at the noise floor" if final - floor <= 0.1 else
             f"{final - floor:.2f} above the noise floor: it is not trained down to the noise")
    return (f"its −ELBO per observed point ended at {final:.2f} (mean of the last {last} iterations); a decoder "
            f"exact on every noise-free point would score {floor:.2f} (σ = {obs_std:g}), so training ended {where}")


def posterior_fan(model: LatentODE, data: Spirals, settings=FAN_SETTINGS, *, n_samples: int = 10, seed: int = 1) -> list:
    """:func:`posterior_check` for each ``(n_observed, placement)`` of ``settings``, and for the near and far
    thirds of the extrapolation window at 30 random points: rows ``{"setting", "spread", "rmse", "ratio"}``."""
    rows = [{"setting": f"{n} {placement}", **posterior_check(model, data, n, n_samples=n_samples,
                                                              placement=placement, seed=seed)}
            for n, placement in settings]
    rows += [{"setting": f"30 random, {part} third", **posterior_check(model, data, 30, n_samples=n_samples,
                                                                      seed=seed, part=part)}
             for part in ("near", "far")]
    return rows


def describe_fan(rows: list) -> str:
    """The sentence the lesson prints about :func:`posterior_fan`: does the spread grow as much as the error?"""
    settings = [r for r in rows if "third" not in r["setting"]]
    hard, easy = max(settings, key=lambda r: r["rmse"]), min(settings, key=lambda r: r["rmse"])
    error_growth, spread_growth = hard["rmse"] / easy["rmse"], hard["spread"] / easy["spread"]
    verdict = ("the posterior fans out about as much as its error grows" if spread_growth >= error_growth / CALIBRATION_FACTOR
               else "the posterior fans out far less than its error grows: it is most overconfident where it knows least")
    return (f"from {easy['setting']} to {hard['setting']} points the error grows {error_growth:.1f}× "
            f"({easy['rmse']:.3f} → {hard['rmse']:.3f}) and the spread {spread_growth:.1f}× "
            f"({easy['spread']:.3f} → {hard['spread']:.3f}): {verdict}")


def describe_coverage(coverage: dict, level: float = 0.9, target=COVERAGE_TARGET, noise: str | None = None) -> str:
    """The sentence the lesson prints about :func:`predictive_coverage`'s numbers (``noise``: which σ, if not the
    likelihood's)."""
    low, high = target
    value = coverage["coverage"]
    by_count = ", ".join(f"{n}: {100 * v:.1f}%" for n, v in coverage["by_count"].items())
    verdict = ("within the 80–97% an honest band would reach" if low <= value <= high else
               "fewer than an honest band would: the band is too narrow" if value < low else
               "more than an honest band would: the band is too wide")
    band = f"the {100 * level:.0f}% posterior predictive band" + (f" with {noise}" if noise else "")
    return (f"{band} covers {100 * value:.1f}% of the held-out "
            f"extrapolation coordinates ({by_count} observed points), {verdict}")


def compare_at(table: dict) -> str:
    """Where the latent ODE's error is below, level with or above the RNN's: "below the RNN's at 30 and 50; …"."""
    groups = {}
    for n in sorted(table["Latent ODE"], key=int):
        groups.setdefault(trend(table["RNN"][n], table["Latent ODE"][n]), []).append(n)
    parts = [f"{words} {join_counts(groups[key])}" for key, words in
             (("falls", "below the RNN's at"), ("stays about level", "level with the RNN's at"),
              ("rises", "above the RNN's at"))
             if key in groups]
    return "; ".join(parts)


def describe_placements(tables: dict) -> list[str]:
    """One line per placement of :func:`placement_table`: where the latent ODE is below the RNN."""
    return [f"{placement}: the latent ODE's error is {compare_at(t)} observed points"
            for placement, t in tables.items()]
