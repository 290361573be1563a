"""How the latent ODE and the RNN are scored, and the sentences the lesson prints about the scores.

Both models are scored on the extrapolation window of :mod:`odeteach.data.spirals`, which neither
sees in training: the root-mean-square error of their predictions there (the paper's Table 2),
how honest the latent ODE's posterior is about its error, and where its training loss ended
against the noise floor. The lesson's sentences about these numbers are chosen here, from the numbers.
"""

from __future__ import annotations

import math

import torch

from ..data.spirals import OBSERVED_COUNTS, Spirals, observe, subsample
from ..training import TrainLog
from ..validation import integer
from .baseline import RNNBaseline
from .model import LatentODE

__all__ = ["PAPER_TABLE2", "TIE_TOLERANCE", "CALIBRATION_FACTOR", "extrapolation_rmse", "rmse_table",
           "sample_spread", "posterior_check", "describe_posterior", "trend", "join_counts", "describe_table",
           "noise_floor", "describe_training"]

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


# --------------------------------------------------------------------------------------------
# What the measurements say: the lesson's sentences about them are chosen here, from the numbers

# A relative difference below this counts as a tie ("about level"), not as a rise or a fall.
TIE_TOLERANCE = 0.02
# The posterior counts as calibrated when error / spread is within this factor of 1.
CALIBRATION_FACTOR = 2.0


def sample_spread(samples: torch.Tensor) -> float:
    """How far samples fan out: the root-mean-square, over every axis but the first, of their
    standard deviation across the first axis (the samples). Needs at least 2 samples."""
    if samples.shape[0] < 2:
        raise ValueError(f"a spread needs at least 2 samples along the first axis; got {samples.shape[0]}.")
    return float(samples.var(dim=0).mean().sqrt())


@torch.no_grad()
def posterior_check(model: LatentODE, data: Spirals, n_observed: int = 30, *, n_samples: int = 10,
                    placement: str = "random", seed: int = 1) -> dict:
    """Is the posterior as uncertain as it is wrong? Measured in the extrapolation window over all of ``data``.

    Each spiral is observed at ``n_observed`` points (drawn with ``seed``, as in
    :func:`extrapolation_rmse`); ``n_samples`` draws of z_t0 ~ q(z_t0 | x) are decoded. Returns
    ``{"spread", "rmse", "ratio"}``: the samples' spread (:func:`sample_spread`), the RMSE of the
    posterior-mean trajectory against the noise-free spiral, and rmse / spread. If the truth were
    like one more posterior sample, the ratio would be about 1; far above 1, the posterior is overconfident.
    """
    n_samples = integer("n_samples (a spread needs two samples)", n_samples, minimum=2)
    gen = torch.Generator().manual_seed(seed)
    idx = subsample(data.t.shape[0], n_observed, placement, generator=gen, batch=len(data))
    times, x = observe(data, idx)
    n = data.t.shape[0]
    path, samples = model.predict(times, x, torch.cat([data.t, data.t_extrapolate]), n_samples=n_samples, generator=gen)
    spread = sample_spread(samples[:, :, n:])
    rmse = float(((path[:, n:] - data.clean_extrapolate) ** 2).mean().sqrt())
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
