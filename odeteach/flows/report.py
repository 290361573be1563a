"""Lesson 6's sentences about the shipped CNFs, written from the numbers they state.

"The rings model misses its target by 0.7 nats" is true of one set of checkpoints only. The lesson prints
such sentences from these functions instead of stating them in prose, so it stays true when the checkpoints
are retrained:

- :func:`format_nll_table` and :func:`describe_nll_table`: :func:`~odeteach.flows.nll_table`'s rows (the
  table ``python -m odeteach.evaluate flows`` prints) as a table and in words, against each model's target;
- :func:`support_fraction` and :func:`describe_support`: how many samples land on the data's shape;
- :func:`describe_log_p_path`, :func:`describe_tolerance_sweep` and :func:`describe_trace_study`: what the
  lesson's three explorers measured on the two-moons model.

:data:`LESSON` holds the sizes the lesson scores with (smaller in fast mode), so ``tests/test_claims_lesson06.py``
checks what nbval runs.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
import torch

from ..data.densities import DENSITIES, distance_to_support
from ..fast_mode import pick
from .evaluation import ENTROPY_POINTS, N_TEST
from .studies import ESTIMATOR_CHOICES

__all__ = ["LESSON", "LESSON_FULL", "LABELS", "SUPPORT", "CLOSE_SHARE", "meets_target", "format_nll_table",
           "describe_nll_table", "support_fraction", "describe_support", "describe_log_p_path",
           "describe_tolerance_sweep", "describe_trace_study"]

# The lesson's table: nll_table's defaults (what `python -m odeteach.evaluate flows` prints), smaller in fast mode.
LESSON_FULL = {"n": N_TEST, "entropy_points": ENTROPY_POINTS}
LESSON = pick(full=LESSON_FULL, fast={"n": 500, "entropy_points": 4000})
LABELS = {"two_moons": "two moons", "rings": "rings", "checkerboard": "checkerboard"}
# Where a sample counts as "on the shape": (the test in words, the largest distance_to_support, where the rest lies).
SUPPORT = {"rings": ("within 0.2 of a ring", 0.2, "between the rings"),
           "checkerboard": ("on a dark square", 0.0, "on the light squares")}
# A model whose share of samples on the shape is within this of the data's is called close to the data.
CLOSE_SHARE = 0.05
_ROW_KEYS = ("test_nll", "entropy", "entropy_se", "gap", "paired_gap", "paired_gap_se", "target", "nfe")


def _fill(sentences: list[str], width: int | None) -> str:
    """The sentences as one paragraph, wrapped at ``width`` (``None``: one line)."""
    text = " ".join(sentences)
    return text if width is None else textwrap.fill(text, width=width)


def _check_table(table) -> dict:
    if not isinstance(table, dict) or not table:
        raise TypeError(f"table must be the non-empty dict flows.nll_table returns; got {type(table).__name__}.")
    for name, row in table.items():
        if name not in DENSITIES:
            raise ValueError(f"Unknown density {name!r} in the table. Valid names: {', '.join(DENSITIES)}.")
        missing = [key for key in _ROW_KEYS if not isinstance(row, dict) or key not in row]
        if missing:
            raise ValueError(f"table[{name!r}] lacks {', '.join(missing)}: pass the dict flows.nll_table returns.")
    return table


def _per_name(what: str, values, table) -> dict:
    if values is None:
        return {}
    if not isinstance(values, dict) or set(table) - set(values):
        raise ValueError(f"{what} must be a dict with an entry for each of {', '.join(table)}; got {values!r}.")
    return values


def meets_target(row: dict) -> bool:
    """Whether a row of :func:`~odeteach.flows.nll_table` is within its target: ``test_nll − entropy ≤ target``."""
    return row["gap"] <= row["target"]


def format_nll_table(table: dict, gaussian: dict | None = None) -> str:
    """:func:`~odeteach.flows.nll_table` as text, with whether each target is met and (optionally) the best
    Gaussian's NLL of the same test points (``gaussian[name]``, e.g. from :func:`~odeteach.flows.gaussian_fit_nll`)."""
    table = _check_table(table)
    gaussian = _per_name("gaussian", gaussian, table)
    head = (f"{'density':<13}{'test NLL':>9}{'entropy ± se':>17}{'gap':>8}{'target':>8}{'met':>5}"
            f"{'paired gap ± se':>18}" + (f"{'Gaussian':>10}" if gaussian else "") + f"{'NFE':>5}")
    lines = [head]
    for name, row in table.items():
        entropy = f"{row['entropy']:.4f} ± {row['entropy_se']:.4f}"
        paired = f"{row['paired_gap']:.3f} ± {row['paired_gap_se']:.3f}"
        lines.append(f"{LABELS[name]:<13}{row['test_nll']:>9.4f}{entropy:>17}{row['gap']:>8.3f}"
                     f"{'≤ ' + format(row['target'], '.2f'):>8}{'yes' if meets_target(row) else 'no':>5}{paired:>18}"
                     + (f"{gaussian[name]:>10.3f}" if gaussian else "") + f"{row['nfe']:>5}")
    lines.append("nats; gap = test NLL − entropy, judged against the target; paired gap = mean of "
                 "log p_data − log p_model on the test points themselves")
    return "\n".join(lines)


def _names(names: list[str]) -> str:
    words = [LABELS[n] for n in names]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def describe_nll_table(table: dict, *, iterations: dict | None = None, gaussian: dict | None = None,
                       width: int | None = 110) -> str:
    """Paragraphs saying, for each row of :func:`~odeteach.flows.nll_table`, how far the model's test NLL is from
    the data's entropy and whether it meets its target (by how much it misses otherwise).

    ``iterations[name]`` (e.g. from each checkpoint's ``meta["iterations"]``) and ``gaussian[name]`` (the best
    Gaussian's NLL of the same points) add the training length and a comparison with the Gaussian. Where the
    paired gap reaches the other verdict, the text says that the verdict is within the test set's noise. A first
    line sums up; then one paragraph per density, each wrapped at ``width`` (``None``: one line each).
    """
    table = _check_table(table)
    iterations, gaussian = _per_name("iterations", iterations, table), _per_name("gaussian", gaussian, table)
    met = [name for name, row in table.items() if meets_target(row)]
    missed = [name for name in table if name not in met]
    many = {3: "three"}.get(len(table), str(len(table)))
    if not missed:
        sentences = [{1: "The model meets its target.", 2: "Both models meet their targets."}.get(
            len(table), f"All {many} models meet their targets.")]
    elif not met:
        sentences = [{1: "The model misses its target.", 2: "Neither model meets its target."}.get(
            len(table), f"None of the {many} models meets its target.")]
    else:
        sentences = [f"{_names(met).capitalize()} {'meets its target' if len(met) == 1 else 'meet their targets'}; "
                     f"{_names(missed)} {'misses its' if len(missed) == 1 else 'miss their'} target"
                     f"{'' if len(missed) == 1 else 's'}."]
    paragraphs = [_fill(sentences, width)]
    for name, row in table.items():
        sentences = []
        trained = f" ({iterations[name]:,} training iterations)" if name in iterations else ""
        gap, target = row["gap"], row["target"]
        where = (f"{gap:.3f} nats above the data's entropy ({row['entropy']:.3f})" if gap >= 0 else
                 f"{-gap:.3f} nats below the data's entropy ({row['entropy']:.3f}), which only the sampling noise "
                 f"of a finite test set allows")
        verdict = (f"within its target of {target:.2f}" if meets_target(row) else
                   f"{gap - target:.3f} beyond its target of {target:.2f}")
        sentences.append(f"{LABELS[name].capitalize()}{trained}: test NLL {row['test_nll']:.3f} nats, {where}: "
                         f"{verdict}.")
        paired_met = row["paired_gap"] <= target
        if paired_met != meets_target(row):
            sentences.append(f"Its paired gap, {row['paired_gap']:.3f} ± {row['paired_gap_se']:.3f}, "
                             f"{'is within' if paired_met else 'exceeds'} the target: the two estimates differ by the "
                             f"sampling noise of the test points, so this verdict is not clear-cut.")
        if name in gaussian:
            better = gaussian[name] - row["test_nll"]
            if better <= 0:
                sentences.append(f"It does not beat the best single Gaussian ({gaussian[name]:.3f} nats).")
            else:
                further = ", and is further from the entropy than from that Gaussian" if gap > better else ""
                sentences.append(f"It beats the best single Gaussian by {better:.3f} nats{further}.")
        paragraphs.append(_fill(sentences, width))
    return "\n".join(paragraphs)


def support_fraction(name: str, x: torch.Tensor) -> float:
    """The share of the points ``x`` on the shape of the density ``name`` (the test :data:`SUPPORT` names)."""
    if name not in SUPPORT:
        raise ValueError(f"support_fraction knows {', '.join(SUPPORT)}; got {name!r}.")
    return float((distance_to_support(name, x) <= SUPPORT[name][1]).double().mean())


def describe_support(fractions: dict, width: int | None = 110) -> str:
    """One sentence per density: ``fractions[name] = (data's share, model's share)`` of samples on the shape
    (:func:`support_fraction`), and whether the model is close to the data (within :data:`CLOSE_SHARE`)."""
    if not isinstance(fractions, dict) or not fractions:
        raise TypeError(f"fractions must be a non-empty dict name -> (data share, model share); got {fractions!r}.")
    sentences = []
    for name, pair in fractions.items():
        if name not in SUPPORT:
            raise ValueError(f"describe_support knows {', '.join(SUPPORT)}; got {name!r}.")
        data, model = (float(v) for v in pair)
        if not (0 <= data <= 1 and 0 <= model <= 1):
            raise ValueError(f"fractions[{name!r}] must be two shares in [0, 1]; got {pair!r}.")
        on, _, off = SUPPORT[name]
        head = f"{model:.0%} of the {LABELS[name]} model's samples lie {on}, against {data:.0%} of the data's"
        if data - model <= CLOSE_SHARE:
            sentences.append(f"{head}: close to the data.")
        else:
            sentences.append(f"{head}: the model puts {1 - model:.0%} of its samples {off}, where the data has "
                             f"{1 - data:.0%}.")
    return _fill(sentences, width)


def describe_log_p_path(times, means, width: int | None = 110) -> str:
    """What the samples' mean ``log p_t(z(t))`` did from ``t = times[0]`` (1, the base density) to ``times[-1]`` (0)."""
    times, means = np.asarray(times, dtype=float).ravel(), np.asarray(means, dtype=float).ravel()
    if len(times) < 2 or len(times) != len(means) or not np.isfinite(means).all():
        raise ValueError(f"times and means must be two lists of the same length ≥ 2, means finite; "
                         f"got {len(times)} times and {len(means)} means.")
    base = -math.log(2 * math.pi * math.e)
    near = "close to" if abs(means[0] - base) < 0.1 else "not close to"
    sentences = [f"At t = {times[0]:.2f} the samples' mean log p is {means[0]:.2f} nats, {near} N(0, I)'s "
                 f"−log 2πe = {base:.2f}."]
    low = int(np.argmin(means))
    if 0 < low < len(means) - 1:
        rises = "rises steadily" if np.all(np.diff(means[low:]) > 0) else "rises, not steadily,"
        sentences.append(f"It first dips, by {means[0] - means[low]:.2f} nats to {means[low]:.2f} at "
                         f"t = {times[low]:.2f}, then {rises} to {means[-1]:.2f} at t = {times[-1]:.2f}.")
    else:
        sentences.append(f"It ends at {means[-1]:.2f} at t = {times[-1]:.2f}"
                         f"{', rising at every frame' if np.all(np.diff(means) > 0) else ''}.")
    change = means[-1] - means[0]
    sentences.append(f"That is {abs(change):.2f} nats {'higher' if change > 0 else 'lower'} than it started: the flow "
                     f"{'concentrates' if change > 0 else 'spreads'} the mass.")
    return _fill(sentences, width)


def describe_tolerance_sweep(tolerances, nfe, error, *, scale: float | None = None, scale_name: str = "",
                             width: int | None = 110) -> str:
    """The tolerance explorer's table in words: how the NFE and the mean distance to the reference change as the
    tolerance tightens (``tolerances`` from loosest to tightest), and how the loosest stop's error compares with
    ``scale`` (e.g. the data's noise, named ``scale_name``). Stops where the solver failed (NaN error) are named."""
    tolerances = [float(t) for t in tolerances]
    nfe, error = [int(v) for v in nfe], [float(v) for v in error]
    if not (len(tolerances) == len(nfe) == len(error) >= 2):
        raise ValueError(f"tolerances, nfe and error must have the same length ≥ 2; got {len(tolerances)}, "
                         f"{len(nfe)}, {len(error)}.")
    if tolerances != sorted(tolerances, reverse=True):
        raise ValueError(f"tolerances must run from the loosest to the tightest; got {tolerances}.")
    failed = [t for t, e in zip(tolerances, error) if math.isnan(e)]
    ok = [i for i, e in enumerate(error) if not math.isnan(e)]
    sentences = [f"The solver stopped at rtol = atol = {', '.join(f'{t:.0e}' for t in failed)}."] if failed else []
    if len(ok) < 2:
        return _fill(sentences + ["Too few stops succeeded to compare."], width)
    tol, nfe, error = [tolerances[i] for i in ok], [nfe[i] for i in ok], [error[i] for i in ok]
    rise = "rises" if all(b >= a for a, b in zip(nfe, nfe[1:])) else "changes, not always upwards,"
    sentences.append(f"The NFE {rise} from {nfe[0]} at rtol = atol = {tol[0]:.0e} to {nfe[-1]} at {tol[-1]:.0e}."
                     if nfe[-1] != nfe[0] else f"The NFE stays at {nfe[0]} at every stop.")
    flat = next((k for k, v in enumerate(nfe) if v != nfe[0]), len(nfe))
    if 2 <= flat < len(nfe):
        same = ("and there the error does not improve either" if error[flat - 1] >= 0.9 * error[0] else
                f"yet the error falls from {error[0]:.1e} to {error[flat - 1]:.1e} there")
        sentences.append(f"The {flat} loosest stops all cost {nfe[0]} evaluations, {same}.")
    start = len(error) - 1
    while start > 0 and error[start - 1] > error[start]:
        start -= 1
    if start <= len(error) - 3:
        sentences.append(f"From {tol[start]:.0e} on, every tighter stop lands the samples closer to the reference, "
                         f"down to {error[-1]:.1e} at {tol[-1]:.0e}.")
    else:
        sentences.append("The error does not fall steadily: " + ", ".join(f"{e:.1e}" for e in error) + ".")
    if scale is not None:
        small = error[0] < 0.5 * scale
        sentences.append(f"At the loosest stop the samples lie {error[0]:.2g} from the reference on average, "
                         f"{'small' if small else 'not small'} against {scale_name or 'the scale'} ({scale:g})"
                         + (": for sampling, a loose tolerance costs this field little accuracy." if small else
                            ": a loose tolerance visibly moves the samples."))
    return _fill(sentences, width)


def describe_trace_study(stats: dict, repeats: int, width: int | None = 110) -> str:
    """The trace explorer's numbers in words: each Hutchinson choice's bias in standard errors, the scatter of a
    single estimate, and which noise scatters less. ``stats[label]`` is ``TraceEstimatorExplorer.stats(label)`` for
    the labels of :data:`odeteach.flows.studies.ESTIMATOR_CHOICES`; ``repeats`` is the number of estimates per point."""
    hutch = [label for label, (estimator, _) in ESTIMATOR_CHOICES.items() if estimator == "hutchinson"]
    if not isinstance(stats, dict) or any(label not in stats for label in hutch):
        raise ValueError(f"stats must hold the explorer's stats for {', '.join(hutch)}.")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 2:
        raise ValueError(f"repeats must be an integer ≥ 2 (the estimates per point); got {repeats!r}.")
    z = {label: abs(stats[label]["bias"]) / (stats[label]["std_of_mean"] / math.sqrt(repeats)) for label in hutch}
    noise = {label: label.split(", ")[-1] for label in hutch}
    if all(v < 2 for v in z.values()):
        sentences = ["Each Hutchinson estimate's mean error is within two standard errors of 0 ("
                     + " and ".join(f"{z[label]:.1f} for {noise[label]}" for label in hutch) + "): no sign of bias."]
    else:
        sentences = [f"The mean error with {noise[label]} is {z[label]:.1f} standard errors from 0, which an unbiased "
                     f"estimate shows {math.erfc(z[label] / math.sqrt(2)):.1%} of the time."
                     for label in hutch if z[label] >= 2]
    spread = {label: stats[label]["std_per_point"] for label in hutch}
    sentences.append("A single estimate scatters by " + " and ".join(f"{spread[label]:.2f} nats ({noise[label]})"
                                                                     for label in hutch)
                     + (", more than a nat" if min(spread.values()) > 1 else "") + ".")
    low, high = min(hutch, key=spread.get), max(hutch, key=spread.get)
    sentences.append(f"Here {noise[low]} scatters less than {noise[high]}.")
    return _fill(sentences, width)
