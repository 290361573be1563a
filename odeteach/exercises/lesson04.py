"""Checks for lesson 4 (ODE-Net against ResNet).

1. ``check_parameter_formulas(resnet_fn, odenet_fn)``: ``resnet_fn(C)`` and ``odenet_fn(C)`` give the
   number of parameters in the feature block (6 residual blocks / one ODE block) for C channels.
2. ``check_concat_time(fn)``: ``fn(t, h)`` puts the time t in front of ``h`` as one more channel.
3. ``check_safe_tolerance(fn)``: ``fn(points, drop)`` picks the loosest test-time tolerance whose
   accuracy stays within ``drop`` of the tightest one's.

Each check runs the learner's function on cases the notebook does not show and compares it with
the package (:mod:`odeteach.classifier`).
"""

from __future__ import annotations

import math

import torch

from ..classifier import SweepPoint, count_parameters, loosest_safe_tolerance, make_model
from . import CheckResult, failed, passed, run_safely

__all__ = ["check_parameter_formulas", "check_concat_time", "check_safe_tolerance"]

_NOT_YET = "not attempted yet: replace the placeholder (None) with your function."
_CHANNELS = (8, 16, 48)   # not the lesson's 32, so a formula is needed, not a copied number


def _feature_params(kind: str, channels: int) -> int:
    return count_parameters(make_model(kind, channels=channels, seed=None, device="cpu").feature)


def check_parameter_formulas(resnet_fn, odenet_fn) -> CheckResult:
    """Exercise 1: where the ODE-Net's parameter saving comes from."""
    name = "Exercise 1 (counting parameters)"
    if resnet_fn is None or odenet_fn is None:
        return failed(name, _NOT_YET)
    for fn, what in ((resnet_fn, "resnet_params"), (odenet_fn, "odenet_params")):
        if not callable(fn):
            return failed(name, f"{what} must be a function of the number of channels C, not a {type(fn).__name__}.")
    for channels in _CHANNELS:
        for fn, kind, what in ((resnet_fn, "resnet", "resnet_params"), (odenet_fn, "odenet", "odenet_params")):
            bad, got = run_safely(name, fn, channels)
            if bad is not None:
                return bad
            if isinstance(got, torch.Tensor) and got.numel() == 1:
                got = got.item()
            if not isinstance(got, (int, float)) or isinstance(got, bool) or not math.isfinite(got):
                return failed(name, f"{what}(C) must return a number; it returned {got!r}.")
            want = _feature_params(kind, channels)
            if got != want:
                hint = ("a k×k convolution from C_in to C_out channels has k·k·C_in·C_out weights and C_out biases, "
                        "and a GroupNorm over C channels has a scale and a shift per channel.")
                if kind == "odenet":
                    hint += " Which input does each of the ODE block's convolutions see besides h?"
                else:
                    hint += " Count one residual block, then remember how many there are."
                return failed(name, f"{what}({channels}) is off by {got - want:+g}. {hint}")
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
    """Sweeps the notebook does not show, including a non-monotone one and a failed solve."""
    nan = math.nan
    return [
        ([1e-5, 1e-4, 1e-3, 1e-2, 1e-1], [0.98, 0.98, 0.975, 0.95, 0.40], 0.01),
        ([1e-6, 1e-4, 1e-2, 1e0], [0.90, 0.91, 0.895, 0.30], 0.01),
        ([1e-4, 1e-3, 1e-2, 1e-1, 1e0], [0.97, 0.90, 0.97, 0.97, 0.97], 0.02),   # a dip: stop at the first fall
        ([1e-3, 1e-2, 1e-1], [0.99, nan, 0.99], 0.01),                            # the solver failed at 1e-2
        ([1e-2, 1e-3, 1e-4], [0.80, 0.96, 0.97], 0.015),                          # given loosest first
        ([1e-5, 1e-3, 1e-1], [0.95, 0.94, 0.93], 0.05),
    ]


def check_safe_tolerance(fn) -> CheckResult:
    """Exercise 3: the cheapest test-time tolerance that keeps the accuracy."""
    name = "Exercise 3 (choosing a test-time tolerance)"
    if fn is None:
        return failed(name, _NOT_YET)
    if not callable(fn):
        return failed(name, f"pass a function fn(points, drop), not a {type(fn).__name__}.")
    for tols, accs, drop in _sweeps():
        points = [SweepPoint(t, a, math.nan if math.isnan(a) else 10.0, math.nan if math.isnan(a) else 0.01,
                             "failed" if math.isnan(a) else None) for t, a in zip(tols, accs)]
        bad, got = run_safely(name, fn, list(points), drop)
        if bad is not None:
            return bad
        want = loosest_safe_tolerance(points, drop=drop)
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            return failed(name, f"return one tolerance (a float), not a {type(got).__name__}.")
        if not math.isclose(got, want, rel_tol=1e-12):
            if any(math.isnan(a) for a in accs):
                return failed(name, "a tolerance at which the solve failed has accuracy NaN; treat it as unsafe.")
            if tols != sorted(tols):
                return failed(name, "the points may come in any order: sort them by tolerance first.")
            if got in tols and got > want:
                return failed(name, "your choice is looser than the first tolerance where accuracy falls too far; "
                                    "once accuracy has fallen, stop looking, even if it recovers further on.")
            return failed(name, "compare each accuracy with the accuracy at the tightest tolerance, from tight to loose.")
    return passed(name, "you pick the loosest safe tolerance on every sweep, including unordered ones, dips and failed solves.")
