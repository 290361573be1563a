"""Checks for lesson 4 (ODE-Net against ResNet).

1. ``check_parameter_formulas(resnet_fn, odenet_fn)``: ``resnet_fn(C)`` and ``odenet_fn(C)`` give the
   number of parameters in the feature block (6 residual blocks / one ODE block) for C channels.
2. ``check_concat_time(fn)``: ``fn(t, h)`` puts the time t in front of ``h`` as one more channel.
3. ``check_safe_tolerance(fn)``: ``fn(points, drop)`` picks the cheapest test-time tolerance (fewest
   NFE, of equal NFE the tightest) among those whose accuracy stays within ``drop`` of the tightest one's.

Each check runs the learner's function on cases the notebook does not show (other channel counts,
other sweeps) and compares it with the package (:mod:`odeteach.classifier`). A hint says where an
answer goes wrong, never the number it should have been.
"""

from __future__ import annotations

import math
import numbers
from contextlib import contextmanager
from fractions import Fraction
from functools import lru_cache

import torch

from .. import classifier as _classifier
from ..classifier import SweepPoint, cheapest_safe_tolerance, count_parameters, loosest_safe_tolerance, make_model
from . import CheckResult, failed, passed, run_safely

__all__ = ["check_parameter_formulas", "check_concat_time", "check_safe_tolerance"]

_NOT_YET = "not attempted yet: replace the placeholder (None) with your function."
_CHANNELS = (8, 16, 48)   # not the lesson's 32, so a formula is needed, not a copied number


_REFUSED = "odeteach: this exercise asks for your own code"


def _refuse(*args, **kwargs):
    # Runs with the globals of the function whose code it replaces: builtins only.
    raise RuntimeError("odeteach: this exercise asks for your own code")


@contextmanager
def _without_package(*names):
    """While the learner's code runs, ``odeteach.classifier.<name>`` raises: the exercise is to write it.

    A function's code is swapped, so a name imported with ``from odeteach.classifier import ...`` is
    refused too; a class is replaced on the module.
    """
    saved = {}
    try:
        for n in names:
            obj = getattr(_classifier, n)
            if isinstance(obj, type):
                saved[n] = ("attr", obj)
                setattr(_classifier, n, _refuse)
            else:
                saved[n] = ("code", obj.__code__)
                obj.__code__ = _refuse.__code__
        yield
    finally:
        for n, (how, value) in saved.items():
            if how == "attr":
                setattr(_classifier, n, value)
            else:
                getattr(_classifier, n).__code__ = value


def _run(name, names, fn, *args):
    """run_safely with ``names`` of the package refused; a refused call becomes its own hint."""
    used = []

    def call(*a):
        try:
            return fn(*a)
        except RuntimeError as exc:
            if exc.args == (_REFUSED,):
                used.append(True)
            raise
    with _without_package(*names):
        bad, got = run_safely(name, call, *args)
    if used:
        return failed(name, "write it yourself: this check does not accept odeteach.classifier's own "
                            f"{' / '.join(names)}."), None
    return bad, got


_MODEL_BUILDERS = ("make_model", "ResBlock", "ODEFunc", "ODEBlock", "Classifier")


@lru_cache(maxsize=None)
def _feature_params(kind: str, channels: int) -> int:
    return count_parameters(make_model(kind, channels=channels, seed=None, device="cpu").feature)


def _powers_of_c(diffs: dict[int, float]) -> tuple[float, float, float]:
    """(a, b, c) with a·C² + b·C + c = diffs[C] through the three channel counts checked."""
    (c1, d1), (c2, d2), (c3, d3) = ((Fraction(c), Fraction(d)) for c, d in diffs.items())
    # Newton's divided differences: exact for any quadratic in C.
    f12, f23 = (d2 - d1) / (c2 - c1), (d3 - d2) / (c3 - c2)
    a = (f23 - f12) / (c3 - c1)
    b = f12 - a * (c1 + c2)
    return float(a), float(b), float(d1 - a * c1 * c1 - b * c1)


def _formula_hint(what: str, kind: str, got: dict[int, float], want: dict[int, int]) -> str:
    """Where a wrong count goes wrong, in terms of C, without the right number."""
    if len(set(got.values())) == 1:
        return (f"{what}(C) gives the same number for every C. Write it as a formula in C: the count printed in "
                "the lesson is for C = 32 only, and the paper's counts are for another network.")
    if kind == "resnet" and all(6 * got[c] == want[c] for c in want):
        return f"{what}(C) counts one residual block. How many does the ResNet's feature block have?"
    a, b, c = _powers_of_c({ch: got[ch] - want[ch] for ch in want})
    parts = []
    if abs(a) > 1e-9:
        parts.append("the C² term (the convolutions' weights: k·k·C_in·C_out each)")
    if abs(b) > 1e-9:
        parts.append("the terms in C (the convolutions' biases, the GroupNorms' scales and shifts"
                     + (", the weights that see the time channel" if kind == "odenet" else "") + ")")
    if abs(c) > 1e-9:
        parts.append("a constant term, which no count here has: every layer of these blocks grows with C (did you give a "
                     "convolution C + 1 output channels, or count the downsampling or the head?)")
    if not parts:   # not a quadratic in C: it matched nowhere on the curve
        parts.append("how the count grows with C")
    return f"{what}(C) is off in " + "; and in ".join(parts) + "."


def check_parameter_formulas(resnet_fn, odenet_fn) -> CheckResult:
    """Exercise 1: where the ODE-Net's parameter saving comes from."""
    name = "Exercise 1 (counting parameters)"
    if resnet_fn is None or odenet_fn is None:
        return failed(name, _NOT_YET)
    for fn, what in ((resnet_fn, "resnet_params"), (odenet_fn, "odenet_params")):
        if not callable(fn):
            return failed(name, f"{what} must be a function of the number of channels C, not a {type(fn).__name__}.")
    for fn, kind, what in ((resnet_fn, "resnet", "resnet_params"), (odenet_fn, "odenet", "odenet_params")):
        got, want = {}, {}
        for channels in _CHANNELS:
            bad, value = _run(name, _MODEL_BUILDERS, fn, channels)
            if bad is not None:
                return bad
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                value = value.item()
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
                return failed(name, f"{what}(C) must return a number; it returned {value!r}.")
            value = int(value) if float(value).is_integer() else float(value)   # numpy integers too
            got[channels], want[channels] = value, _feature_params(kind, channels)
        if got != want:
            return failed(name, _formula_hint(what, kind, got, want))
    return passed(name, f"both formulas match the models for C = {', '.join(map(str, _CHANNELS))}; "
                        "the ratio tends to about 1/6 for large C: one block of weights instead of six.")


def check_concat_time(fn) -> CheckResult:
    """Exercise 2: the time channel the ODE block's convolutions see."""
    name = "Exercise 2 (time as a channel)"
    if fn is None:
        return failed(name, _NOT_YET)
    if not callable(fn):
        return failed(name, f"pass a function fn(t, h), not a {type(fn).__name__}.")
    gen = torch.Generator().manual_seed(44)
    for shape, t in (((3, 5, 4, 4), 0.3), ((1, 2, 6, 3), 1.0), ((2, 1, 2, 2), 0.0)):
        h = torch.randn(*shape, generator=gen)
        t_tensor = torch.tensor(t)
        bad, got = run_safely(name, fn, t_tensor, h)
        if bad is not None:
            return bad
        if not isinstance(got, torch.Tensor):
            return failed(name, f"return a tensor, not a {type(got).__name__}.")
        want = torch.cat([torch.full_like(h[:, :1], t), h], dim=1)
        if tuple(got.shape) != tuple(want.shape):
            return failed(name, f"for h of shape {shape} the result should have one more channel than h (dimension 1); "
                                f"yours has shape {tuple(got.shape)}.")
        if not torch.allclose(got, want):
            if torch.allclose(got[:, -1:], want[:, :1]) and torch.allclose(got[:, :-1], h):
                return failed(name, "the values are right but the time channel is last; the lesson's "
                                    "ConcatConv2d puts it first.")
            return failed(name, "the channels differ: one channel should hold t at every pixel, the others h unchanged.")
    return passed(name, "t enters as a constant channel in front of h, for every batch, channel count and time.")


def _sweeps():
    """(tolerances, accuracies, NFE per batch, drop): sweeps the notebook does not show.

    Each one catches a plausible mistake: the loosest safe tolerance where looser costs no less, a
    reference other than the tightest tolerance, ignoring a fall that recovers, a failed solve (NaN),
    points given loosest first, a hard-coded drop, and an NFE that rises again at loose tolerance.
    """
    nan = math.nan
    return [
        ([1e-5, 1e-4, 1e-3, 1e-2, 1e-1], [0.98, 0.98, 0.975, 0.95, 0.40], [44, 38, 26, 20, 14], 0.01),
        ([1e-4, 1e-3, 1e-2, 1e-1, 1e0], [0.97, 0.97, 0.968, 0.97, 0.969], [50, 38, 26, 26, 26], 0.01),   # a floor
        ([1e-4, 1e-3, 1e-2, 1e-1, 1e0], [0.97, 0.90, 0.97, 0.97, 0.97], [40, 32, 26, 20, 14], 0.02),    # a dip
        ([1e-3, 1e-2, 1e-1, 1e0], [0.99, 0.99, nan, 0.99], [30, 24, nan, 12], 0.01),                  # a failed solve
        ([1e-1, 1e-2, 1e-3, 1e-4], [0.80, 0.96, 0.965, 0.97], [8, 14, 20, 26], 0.015),                 # loosest first
        ([1e-6, 1e-4, 1e-2, 1e0], [0.93, 0.95, 0.91, 0.85], [60, 40, 20, 14], 0.03),                   # tightest is not best
        ([1e-5, 1e-3, 1e-1, 1e1], [0.95, 0.94, 0.93, 0.95], [62, 38, 26, 32], 0.05),                   # NFE rises again
    ]


def _sweep_points(tols, accs, nfes):
    return [SweepPoint(t, a, n, math.nan if math.isnan(a) else 1e-3 * n, "failed" if math.isnan(a) else None)
            for t, a, n in zip(tols, accs, nfes)]


def _tolerance_hint(points, drop, got, want) -> str:
    ordered = sorted(points, key=lambda p: p.tol)
    safe_loosest = loosest_safe_tolerance(points, drop=drop)
    nfe = {p.tol: p.nfe_per_batch for p in points}
    if any(math.isnan(p.accuracy) for p in points) and got > safe_loosest:
        return "a tolerance at which the solve failed has accuracy NaN: treat it as unsafe, and everything looser too."
    if [p.tol for p in points] != [p.tol for p in ordered]:
        return "the points may come in any order: sort them by tolerance first."
    if got == safe_loosest:
        return ("looser is not always cheaper: compare the NFE of the safe tolerances, not the tolerances themselves. "
                "Past the solver's floor a looser tolerance costs the same and only adds solver error.")
    if got in nfe and got <= safe_loosest and nfe[got] == nfe[want] and got > want:
        return "of safe tolerances with the same NFE, take the tightest: it costs the same and is solved more accurately."
    if got in nfe and got > safe_loosest:
        return ("your choice lies beyond the first tolerance where accuracy falls too far. Compare each accuracy with "
                "the accuracy at the tightest tolerance (not the best one), from tight to loose, and once it has "
                "fallen stop looking, even if it recovers further on.")
    return ("go from the tightest tolerance to looser ones while the accuracy stays within drop of the tightest one's; "
            "among those, pick the fewest NFE. Use the drop you are given, and the tightest tolerance's accuracy "
            "as the reference, not the best one.")


def check_safe_tolerance(fn) -> CheckResult:
    """Exercise 3: the cheapest test-time tolerance that keeps the accuracy."""
    name = "Exercise 3 (choosing a test-time tolerance)"
    if fn is None:
        return failed(name, _NOT_YET)
    if not callable(fn):
        return failed(name, f"pass a function fn(points, drop), not a {type(fn).__name__}.")
    for tols, accs, nfes, drop in _sweeps():
        points = _sweep_points(tols, accs, nfes)
        bad, got = _run(name, ("cheapest_safe_tolerance", "loosest_safe_tolerance"), fn, list(points), drop)
        if bad is not None:
            return bad
        if isinstance(got, SweepPoint):
            return failed(name, "return the tolerance itself (a float, point.tol), not the SweepPoint.")
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            return failed(name, f"return one tolerance (a float), not a {type(got).__name__}.")
        want = cheapest_safe_tolerance(points, drop=drop)
        if not math.isclose(got, want, rel_tol=1e-12):
            return failed(name, _tolerance_hint(points, drop, got, want))
    return passed(name, "you pick the cheapest safe tolerance on every sweep: floors, dips, failed solves, "
                        "unordered points and an NFE that rises again.")
