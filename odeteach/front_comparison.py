"""Two ODE-Nets' accuracy–cost fronts side by side: how far training for tunability moves the front.

Lesson 7 measures the plain ODE-Net and the one trained with regularised dynamics
(:mod:`odeteach.regularisation`) under the same solver settings (:func:`odeteach.tuning.measure_settings`).
:func:`compare_fronts` asks, at each accuracy level, what each model's cheapest setting costs, and
:func:`describe_comparison` says what that shows, whichever way it goes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .tuning import Setting, choose

__all__ = ["LevelCost", "FrontComparison", "compare_fronts", "describe_comparison", "paired_nfe", "describe_paired_nfe"]


@dataclass(frozen=True)
class LevelCost:
    """At one accuracy level: each model's cheapest setting that reaches it (None where none does)."""

    min_accuracy: float
    cost: str
    first: object | None
    second: object | None


@dataclass(frozen=True)
class FrontComparison:
    """Two models (``names``) measured under the same settings: ``levels`` (one :class:`LevelCost` per accuracy
    level and cost) and each model's point at the ``reference`` setting (how both were trained)."""

    names: tuple[str, str]
    levels: tuple[LevelCost, ...]
    reference: tuple[object | None, object | None]
    reference_setting: Setting


def _at(points, setting):
    return next((p for p in points if p.setting == setting and p.error is None), None)


def compare_fronts(first, second, *, names=("ODE-Net", "regularised ODE-Net"), levels=(0.97, 0.98),
                   costs=("nfe", "ms"), reference: Setting = Setting("dopri5", tol=1e-3)) -> FrontComparison:
    """Each model's cheapest setting at each accuracy level in ``levels`` (fractions) by each cost, and both at
    ``reference``. ``first`` and ``second`` are lists of :class:`~odeteach.tuning.Measurement` on the same images."""
    for label, points in (("first", first), ("second", second)):
        if not points:
            raise ValueError(f"{label} holds no measurements: measure the model with tuning.measure_settings first.")
    if {p.batch_size for p in first} != {p.batch_size for p in second}:
        raise ValueError("the two models were measured on different numbers of images: measure both on the same batch.")
    rows = []
    for cost in costs:
        for level in levels:
            rows.append(LevelCost(level, cost, choose(first, min_accuracy=level, cost=cost).chosen,
                                  choose(second, min_accuracy=level, cost=cost).chosen))
    return FrontComparison(tuple(names), tuple(rows), (_at(first, reference), _at(second, reference)), reference)


def _cost_text(p, cost: str) -> str:
    if cost == "nfe":
        return f"NFE {p.nfe} ({p.label})"
    return f"{p.ms_per_image:.2f} ms per image ({p.label})"


def _value(p, cost: str) -> float:
    return p.nfe if cost == "nfe" else p.ms_per_image


def describe_comparison(comparison: FrontComparison, cost: str = "nfe") -> str:
    """What the numbers say, in sentences: at each level, which model is cheaper by ``cost`` and by how much (or
    that they tie, or that one never reaches it); with ``cost="nfe"``, also both at the reference setting."""
    if cost not in {r.cost for r in comparison.levels}:
        raise ValueError(f"the comparison was made for costs {sorted({r.cost for r in comparison.levels})}; got {cost!r}.")
    a, b = comparison.names
    sentences = []
    for row in (r for r in comparison.levels if r.cost == cost):
        level = f"{100 * row.min_accuracy:.1f}%"
        if row.first is None and row.second is None:
            sentences.append(f"Neither model reaches {level} under any setting measured.")
            continue
        if row.first is None or row.second is None:
            reaches, misses = (b, a) if row.first is None else (a, b)
            p = row.second if row.first is None else row.first
            sentences.append(f"Only the {reaches} reaches {level}, at {_cost_text(p, cost)}; the {misses} never does.")
            continue
        va, vb = _value(row.first, cost), _value(row.second, cost)
        if math.isclose(va, vb, rel_tol=0.05 if cost == "ms" else 0.0):
            verdict = "the same cost" if cost == "nfe" else "the same time, within 5%"
            sentences.append(f"To reach {level} both need {verdict}: the {a} {_cost_text(row.first, cost)}, "
                             f"the {b} {_cost_text(row.second, cost)}.")
        else:
            cheaper, dearer = (b, a) if vb < va else (a, b)
            ratio = max(va, vb) / min(va, vb)
            sentences.append(f"To reach {level} the {cheaper} is cheaper, {ratio:.1f}× less: the {a} needs "
                             f"{_cost_text(row.first, cost)}, the {b} {_cost_text(row.second, cost)}.")
    pa, pb = comparison.reference
    if cost == "nfe" and pa is not None and pb is not None:
        label = comparison.reference_setting.label
        sentences.append(f"Under {label}, as both were trained, the {a} takes NFE {pa.nfe} for {100 * pa.accuracy:.1f}% "
                         f"and the {b} NFE {pb.nfe} for {100 * pb.accuracy:.1f}%.")
    return " ".join(sentences)


def paired_nfe(first, second, methods=("bosh3", "dopri5")) -> list[tuple]:
    """``(setting, first's point, second's point)`` for every adaptive setting (of ``methods``) measured for both
    models: the same method at the same tolerance, where only the learned dynamics differ."""
    theirs = {p.setting: p for p in second if p.error is None}
    return [(p.setting, p, theirs[p.setting]) for p in first
            if p.error is None and p.setting.method in methods and p.setting in theirs]


def describe_paired_nfe(pairs, names=("ODE-Net", "regularised ODE-Net")) -> str:
    """How the NFE of the same adaptive solver at the same tolerance differs between two models: how many settings
    need fewer evaluations with the second, how many more, and the median ratio."""
    if not pairs:
        raise ValueError("no adaptive setting was measured for both models: nothing to pair.")
    a, b = names
    fewer = sum(q.nfe < p.nfe for _, p, q in pairs)
    more = sum(q.nfe > p.nfe for _, p, q in pairs)
    ratios = sorted(q.nfe / p.nfe for _, p, q in pairs)
    middle = len(ratios) // 2
    median = ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2
    return (f"With the same adaptive solver at the same tolerance ({len(pairs)} settings), the {b} needs fewer "
            f"evaluations of f in {fewer}, as many in {len(pairs) - fewer - more} and more in {more}; the median ratio "
            f"of its NFE to the {a}'s is {median:.2f} (from {ratios[0]:.2f} to {ratios[-1]:.2f}).")
