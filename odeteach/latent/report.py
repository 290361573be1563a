"""Why the latent ODE's predictive band is too narrow, the noise level that makes it honest, and the report of
``python -m odeteach.evaluate spirals`` (:func:`spirals_report`).

The likelihood p(x | z) = N(decoder(z), σ²) is trained with σ fixed at the data's own noise (0.1). That says
"the decoder, given the right z_t0, hits every noise-free point": any misfit of the learned dynamics and
decoder is missing from the model, so q(z_t0 | x) concentrates and the posterior predictive band (samples
through the decoder plus N(0, σ²)) comes out too narrow. Two measurements show it:

* :func:`coverage_diagnosis` scores the band on training spirals as well as held-out ones. The same shortfall on
  both says the cause is not overfitting.
* :func:`fit_observation_noise` is the maximum-likelihood σ with everything else held fixed: the RMS distance
  from the training spirals' observed points to the decoded posterior samples, E_q[(x − decoder(z))²]^½. It is
  what training σ as one more parameter would aim at, and it uses no held-out spiral.

The band is then rebuilt with that σ̂ (:func:`~odeteach.latent.predictive_coverage` with ``obs_std``) and scored
on the held-out spirals, which neither the training nor the fit has seen.
"""

from __future__ import annotations

import torch

from ..data.spirals import OBSERVED_COUNTS, Spirals, observe, subsample
from ..validation import integer
from .baseline import RNNBaseline
from .evaluation import COVERAGE_TARGET, describe_coverage, placement_table, predictive_coverage, rmse_table
from .model import LatentODE

__all__ = ["FIT_SEED", "fit_observation_noise", "coverage_diagnosis", "describe_diagnosis", "spirals_report"]

# The draws (observed points, posterior samples) of the σ fit: a seed of its own, not the evaluation's (1).
FIT_SEED = 11
# Coverages this close (absolute) count as the same.
SAME_COVERAGE = 0.03


@torch.no_grad()
def fit_observation_noise(model: LatentODE, train: Spirals, counts=OBSERVED_COUNTS, *, n_samples: int = 20,
                          placement: str = "random", seed: int = FIT_SEED) -> float:
    """The maximum-likelihood observation noise σ̂ of ``model`` on the spirals ``train``, the rest held fixed.

    For each count, every spiral is observed at that many points (``placement``, drawn with ``seed``),
    ``n_samples`` draws z_t0 ~ q(z_t0 | x) are decoded, and the squared distances from the observed points to
    the decoded points are averaged: σ̂² = E_q mean (x − decoder(z))², pooled over the counts. A Gaussian
    likelihood N(decoder(z), σ²) scores these points best at σ = σ̂.
    """
    if not isinstance(model, LatentODE):
        raise TypeError(f"model must be a LatentODE; got {type(model).__name__}.")
    n_samples = integer("n_samples", n_samples, minimum=1)
    gen = torch.Generator().manual_seed(seed)
    squares = []
    for n in counts:
        idx = subsample(train.t.shape[0], n, placement, generator=gen, batch=len(train))
        times, x = observe(train, idx)
        _, samples = model.predict(times, x, train.t, n_samples=n_samples, generator=gen)
        at_observed = torch.gather(samples, 2, idx[None, ..., None].expand(n_samples, -1, -1, samples.shape[-1]))
        squares.append(((at_observed - x) ** 2).mean())
    return float(torch.stack(squares).mean().sqrt())


def coverage_diagnosis(model: LatentODE, train: Spirals, held_out: Spirals, *, n_samples: int = 100) -> dict:
    """The 90% band, scored where the model was trained and where it was not, with the trained σ and with σ̂.

    Returns ``{"sigma", "sigma_fitted", "train", "held_out", "held_out_fitted"}``: the likelihood's σ, the
    maximum-likelihood σ̂ (:func:`fit_observation_noise` on all of ``train``), and
    :func:`~odeteach.latent.predictive_coverage` on the first ``len(held_out)`` training spirals and on
    ``held_out`` with σ, and on ``held_out`` with σ̂.
    """
    fitted = fit_observation_noise(model, train)
    return {"sigma": model.obs_std, "sigma_fitted": fitted,
            "train": predictive_coverage(model, train[:len(held_out)], n_samples=n_samples),
            "held_out": predictive_coverage(model, held_out, n_samples=n_samples),
            "held_out_fitted": predictive_coverage(model, held_out, n_samples=n_samples, obs_std=fitted)}


def describe_diagnosis(diagnosis: dict, target=COVERAGE_TARGET) -> list[str]:
    """The lesson's three sentences about :func:`coverage_diagnosis`: overfitting or not, the misfit, the fix."""
    train, held = diagnosis["train"]["coverage"], diagnosis["held_out"]["coverage"]
    sigma, fitted = diagnosis["sigma"], diagnosis["sigma_fitted"]
    if abs(train - held) <= SAME_COVERAGE:
        first = (f"on training spirals the band covers {100 * train:.1f}%, about as on the held-out ones "
                 f"({100 * held:.1f}%): the band is as narrow where the model was trained, so this is not overfitting")
    else:
        first = (f"on training spirals the band covers {100 * train:.1f}%, against {100 * held:.1f}% on the held-out "
                 "ones: " + ("the model does better on what it was trained on, so part of this is overfitting"
                             if train > held else "the training spirals are the harder ones here"))
    misfit = fitted / sigma
    second = (f"the decoded posterior samples miss the training spirals' observed points by {fitted:.3f} (RMS), "
              + (f"{misfit:.2f}× the σ = {sigma:g} the likelihood assumes: the dynamics' and decoder's own misfit, "
                 "which the model has no term for" if misfit > 1 + SAME_COVERAGE else
                 f"about the σ = {sigma:g} the likelihood assumes: the model has no misfit to hide"))
    third = describe_coverage(diagnosis["held_out_fitted"], target=target,
                              noise=f"σ̂ = {fitted:.3f} (fitted on training spirals only)")
    return [first, second, third]


def spirals_report(latent: LatentODE, rnn: RNNBaseline, data: Spirals, train: Spirals) -> dict:
    """Everything ``python -m odeteach.evaluate spirals`` prints, as plain numbers: Table 2 (random placement) on
    ``data``, the 90% band's coverage with σ̂ fitted on ``train`` (``coverage90``) and with the likelihood's
    own σ (``coverage90_fixed_sigma``), both σ, and the irregular-sampling table."""
    table = rmse_table(latent, rnn, data)
    fitted = fit_observation_noise(latent, train)
    coverage = predictive_coverage(latent, data, obs_std=fitted)
    fixed = predictive_coverage(latent, data)
    by_count = lambda c: {str(n): v for n, v in c["by_count"].items()}  # noqa: E731
    return {**{name: {str(n): v for n, v in row.items()} for name, row in table.items()},
            "coverage90": coverage["coverage"], "coverage90_by_count": by_count(coverage),
            "coverage90_fixed_sigma": fixed["coverage"], "coverage90_fixed_sigma_by_count": by_count(fixed),
            "obs_std": latent.obs_std, "obs_std_fitted": fitted,
            "irregular_sampling": {p: {name: {str(n): v for n, v in row.items()} for name, row in t.items()}
                                   for p, t in placement_table(latent, rnn, data).items()}}
