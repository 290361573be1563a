"""Lesson 7's two studies beside the solver settings: what a ResNet can do instead, and what training costs.

* **The ResNet contrast.** A ResNet's cost is its depth: at test time it can be made cheaper only by dropping
  residual blocks (:func:`resnet_with_blocks`). One block evaluates its residual function once, as one
  evaluation of the ODE-Net's f does (``ResBlock`` and ``ODEFunc`` have the same layers), so the ResNet with
  k blocks meets the ODE-Net solved by Euler in k steps, NFE k (:func:`block_dropping_study`).
* **A memory constraint for training.** One training step (forward, cross-entropy, backward) by backprop
  through the solver and by the adjoint: saved bytes, NFE both ways, time per step
  (:func:`training_memory_study`); :func:`choose_gradient` picks the fastest that fits a budget.

Times are medians of warm runs at ``threads`` CPU threads (one by default, restored afterwards). The things
compared are timed in turn within each repeat, so that a load that comes and goes falls on all of them.
"""

from __future__ import annotations

import math
import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .memory import format_bytes, measure_saved
from .tuning import Setting, check_batch, measure_settings, ode_block
from .validation import integer

__all__ = ["resnet_with_blocks", "BlockDropRow", "BlockDroppingStudy", "block_dropping_study",
           "describe_block_dropping", "GRADIENTS", "GRADIENT_SETTINGS", "EXTRA_METHODS", "GradientCost",
           "GradientChoice", "training_memory_study", "choose_gradient", "describe_gradient_choice"]

GRADIENTS = ("backprop", "adjoint")
# dopri5 at the tolerance the shipped ODE-Net was trained with, and RK4 at growing step counts: backprop's
# saved bytes grow with the steps, the adjoint's stay flat.
GRADIENT_SETTINGS = (Setting("dopri5", tol=1e-3), Setting("rk4", steps=2), Setting("rk4", steps=4),
                     Setting("rk4", steps=8))
EXTRA_METHODS = {"midpoint": 2, "rk4": 4}   # higher-order fixed-step methods beside Euler: NFE per step


@contextmanager
def _threads(n):
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(integer("threads", n, minimum=1))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _interleaved_ms(fns, repeats: int) -> list[float]:
    """Median wall time of each of ``fns`` in ms, over ``repeats`` rounds that call each once in turn."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, record in zip(fns, times):
            start = time.perf_counter()
            fn()
            record.append(time.perf_counter() - start)
    return [1000 * statistics.median(record) for record in times]


# --------------------------------------------------------------------------------------------
# The ResNet contrast


def _residual_blocks(model) -> nn.Sequential:
    feature = getattr(model, "feature", None)
    if getattr(model, "kind", None) != "resnet" or not isinstance(feature, nn.Sequential):
        raise TypeError("blocks can be dropped from a ResNet (its feature block a Sequential of residual blocks, "
                        f"e.g. odeteach.classifier.load_pretrained('resnet')[0]); got {type(model).__name__} "
                        f"of kind {getattr(model, 'kind', None)!r}.")
    return feature


@contextmanager
def resnet_with_blocks(model, k: int):
    """``with resnet_with_blocks(resnet, k): resnet(x)``: the ResNet with only its first ``k`` residual blocks
    (0 ≤ k ≤ all of them), their weights shared; the whole ResNet again after the block."""
    blocks = _residual_blocks(model)
    k = integer("k", k, minimum=0, maximum=len(blocks))
    kept = nn.Sequential(*list(blocks)[:k])
    kept.training = blocks.training
    model.feature = kept
    try:
        yield model
    finally:
        model.feature = blocks


@dataclass(frozen=True)
class BlockDropRow:
    """Cost k: the ResNet with its first k blocks against the ODE-Net solved by Euler in k steps."""

    cost: int                 # residual blocks kept = Euler steps = evaluations of f
    resnet_accuracy: float
    odenet_accuracy: float
    odenet_nfe: int           # measured; Euler evaluates f once a step, so it equals ``cost``
    resnet_ms: float          # per batch, median of warm runs
    odenet_ms: float


@dataclass(frozen=True)
class BlockDroppingStudy:
    """:func:`block_dropping_study`'s result: ``rows`` (one :class:`BlockDropRow` per cost); ``extra``, the
    midpoint and RK4 settings with NFE ≤ the largest cost (:class:`~odeteach.tuning.Measurement`, ``nfe`` is
    their cost); each model at full cost (the ResNet with every block; the ODE-Net solved as it was set when
    the study began, ``odenet_full_label``, at NFE ``odenet_full_nfe``); ``batch_size`` images per timed batch.

    **Which degrades gracefully.** A model's *loss* at cost k is its accuracy at full cost minus its accuracy
    at k, in points. Its mean loss over the costs measured (the area under its loss-against-cost curve
    divided by their number) says how much of its own accuracy it gives up, on average, as the cost is cut:
    the smaller one degrades more gracefully.
    """

    rows: tuple[BlockDropRow, ...]
    extra: tuple
    resnet_full: float
    odenet_full: float
    odenet_full_label: str
    odenet_full_nfe: int
    batch_size: int

    @property
    def resnet_mean_loss(self) -> float:
        return statistics.fmean(100 * (self.resnet_full - r.resnet_accuracy) for r in self.rows)

    @property
    def odenet_mean_loss(self) -> float:
        return statistics.fmean(100 * (self.odenet_full - r.odenet_accuracy) for r in self.rows)


def _accuracy(model, x, y) -> float:
    return float((model(x).argmax(1) == y).float().mean())


@torch.no_grad()
def block_dropping_study(resnet, odenet, x, y, counts=range(1, 7), *, repeats: int = 5,
                         threads: int | None = 1) -> BlockDroppingStudy:
    """The ResNet with k blocks and the ODE-Net by Euler in k steps, for each k in ``counts``, on ``(x, y)`` as
    one batch: accuracy, NFE and time per batch (median of ``repeats`` warm runs at ``threads`` threads).

    Both models are evaluated in eval mode and left as they were (blocks, solver setting, mode).
    """
    blocks, block = _residual_blocks(resnet), ode_block(odenet)
    counts = sorted({integer("counts", k, minimum=1, maximum=len(blocks)) for k in counts})
    if not counts:
        raise ValueError(f"counts must hold at least one number of blocks, from 1 to {len(blocks)}.")
    check_batch(x, y)
    repeats = integer("repeats", repeats, minimum=1)
    extra = [Setting(method, steps=n) for method, per_step in EXTRA_METHODS.items()
             for n in range(1, max(counts) // per_step + 1)]
    modes = resnet.training, odenet.training
    resnet.eval()
    odenet.eval()
    try:
        with _threads(threads):
            odenet_full, odenet_full_nfe = _accuracy(odenet, x, y), block.nfe_forward
            resnet_full = _accuracy(resnet, x, y)
            rows = []
            for k in counts:
                with resnet_with_blocks(resnet, k), Setting("euler", steps=k).applied(odenet):
                    resnet_accuracy = _accuracy(resnet, x, y)          # these two passes warm up the timing
                    odenet_accuracy, nfe = _accuracy(odenet, x, y), block.nfe_forward
                    ms = _interleaved_ms([lambda: resnet(x), lambda: odenet(x)], repeats)
                rows.append(BlockDropRow(k, resnet_accuracy, odenet_accuracy, nfe, *ms))
            extra = measure_settings(odenet, x, y, extra, repeats=repeats)
    finally:
        resnet.train(modes[0])
        odenet.train(modes[1])
    how = f"{block.method}, step {block.step_size:g}" if block.step_size is not None else \
        f"{block.method}, rtol {block.rtol:g}"
    return BlockDroppingStudy(tuple(rows), tuple(extra), resnet_full, odenet_full, how, odenet_full_nfe, len(x))


def describe_block_dropping(study: BlockDroppingStudy, first: int = 3) -> str:
    """The lesson's sentence, from the numbers: both models at the ``first`` smallest costs, which one degrades
    more gracefully (the smaller mean loss, :class:`BlockDroppingStudy`) and by how much, and the measured
    times at the smallest cost."""
    rows = study.rows[:integer("first", first, minimum=1)]
    ks = ", ".join(str(r.cost) for r in rows)
    percents = lambda values: ", ".join(f"{100 * v:.1f}%" for v in values)  # noqa: E731
    resnet_loss, odenet_loss = study.resnet_mean_loss, study.odenet_mean_loss
    if round(resnet_loss, 1) == round(odenet_loss, 1):
        verdict = "the two degrade alike"
    else:
        better = "ODE-Net" if odenet_loss < resnet_loss else "ResNet"
        verdict = f"the {better} degrades more gracefully, by {abs(resnet_loss - odenet_loss):.1f} points on average"
    low, span = study.rows[0], f"{study.rows[0].cost} to {study.rows[-1].cost}"
    return (f"At {ks} evaluations of f, the ODE-Net (Euler, k steps) keeps {percents(r.odenet_accuracy for r in rows)} "
            f"(at full cost, {study.odenet_full_label}, NFE {study.odenet_full_nfe}: {100 * study.odenet_full:.1f}%); "
            f"the ResNet with {ks} of its blocks keeps {percents(r.resnet_accuracy for r in rows)} "
            f"(all blocks: {100 * study.resnet_full:.1f}%). Over costs {span}, the ODE-Net gives up {odenet_loss:.1f} "
            f"points of its own accuracy on average and the ResNet {resnet_loss:.1f}: {verdict}. At cost {low.cost}, "
            f"a batch of {study.batch_size} images takes {low.resnet_ms:.1f} ms (ResNet) and {low.odenet_ms:.1f} ms "
            "(ODE-Net) (measured).")


# --------------------------------------------------------------------------------------------
# A memory constraint for training


@dataclass(frozen=True)
class GradientCost:
    """One training step on ``batch_size`` images under ``setting``, with gradients by ``gradient``
    (``"backprop"`` through the solver, or ``"adjoint"``)."""

    setting: Setting
    gradient: str
    saved_bytes: int          # saved by the forward pass for backward, beyond the weights and the input batch
    nfe_forward: int
    nfe_backward: int         # adjoint: evaluations of f backwards; backprop: VJPs through recorded evaluations
    ms_per_step: float        # forward + loss + backward, median of warm runs
    batch_size: int
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.gradient}, {self.setting.label}"


@dataclass(frozen=True)
class GradientChoice:
    """:func:`choose_gradient`'s answer: the ``chosen`` row (or None) and a sentence; when nothing fits, the
    ``closest`` (smallest) row and how many bytes it is ``over`` the budget."""

    chosen: GradientCost | None
    why: str
    closest: GradientCost | None = None
    over: int = 0

    def __str__(self) -> str:
        return self.why


def _training_loss(model, x, y):
    """Cross-entropy, plus the ODE block's regularisation penalty when it sets one (a regularised model)."""
    loss = F.cross_entropy(model(x), y)
    penalty = getattr(model.ode_block, "penalty", None)
    return loss if penalty is None else loss + penalty


def training_memory_study(model, x, y, settings=GRADIENT_SETTINGS, *, gradients=GRADIENTS, repeats: int = 3,
                          threads: int | None = 1) -> list[GradientCost]:
    """One training step of the ODE-Net ``model`` on ``(x, y)`` for each setting and each way of getting the
    gradients: saved bytes (:func:`odeteach.memory.measure_saved`; weights and ``x`` not counted), forward and
    backward NFE, and the median time per step over ``repeats`` warm steps at ``threads`` threads.

    The model is left as it was: solver setting, adjoint flag, train/eval mode and every ``.grad``. A setting
    whose solve fails is kept with its ``error``.
    """
    block = ode_block(model)
    check_batch(x, y)
    repeats = integer("repeats", repeats, minimum=1)
    settings, gradients = tuple(settings), tuple(gradients)
    if not gradients or any(g not in GRADIENTS for g in gradients):
        raise ValueError(f"gradients must be some of {', '.join(GRADIENTS)}; got {gradients!r}.")
    if any(not isinstance(s, Setting) for s in settings):
        raise TypeError(f"settings must be Setting objects (e.g. Setting('rk4', steps=2)); got {settings!r}.")
    params = list(model.parameters())
    grads = [None if p.grad is None else p.grad.clone() for p in params]
    was_training, was_adjoint, penalty = model.training, block.adjoint, getattr(block, "penalty", None)
    rows = []
    model.train()
    try:
        with _threads(threads):
            for setting in settings:
                with setting.applied(model):
                    rows += _training_steps(model, x, y, setting, gradients, params, repeats)
    finally:
        block.adjoint = was_adjoint
        if hasattr(block, "penalty"):   # a regularised block's last penalty, with the graph it holds, goes
            block.penalty = penalty
        model.train(was_training)
        for p, g in zip(params, grads):
            p.grad = g
    return rows


def _training_steps(model, x, y, setting, gradients, params, repeats) -> list[GradientCost]:
    """Each gradient method once under the saved-tensor meter, then timed in turn."""
    block, measured, steps = model.ode_block, {}, {}
    for gradient in gradients:
        block.adjoint = gradient == "adjoint"
        model.zero_grad(set_to_none=True)
        try:
            report = measure_saved(_training_loss, model, x, y, exclude=[*params, x],
                                   cuda=params[0].device.type == "cuda", backward=lambda loss: loss.backward())
        except Exception as exc:  # a solver failure is a result here, not a crash
            error = f"{type(exc).__name__}: {exc}"
            measured[gradient] = GradientCost(setting, gradient, 0, 0, 0, math.inf, len(x), error)
            continue
        measured[gradient] = (report.saved_bytes, block.nfe_forward, block.nfe_backward)

        def step(adjoint=block.adjoint):
            block.adjoint = adjoint
            model.zero_grad(set_to_none=True)
            _training_loss(model, x, y).backward()
        steps[gradient] = step
    times = dict(zip(steps, _interleaved_ms(list(steps.values()), repeats)))
    return [measured[g] if g not in times else GradientCost(setting, g, *measured[g], times[g], len(x))
            for g in gradients]


def _check_budget(max_bytes) -> float:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, float)):
        raise TypeError(f"max_bytes must be a number of bytes (e.g. 2 * 2**20 for 2 MiB); got {max_bytes!r}.")
    if math.isnan(max_bytes) or max_bytes <= 0:
        raise ValueError(f"max_bytes must be a number of bytes > 0 (e.g. 2 * 2**20 for 2 MiB); got {max_bytes}.")
    return max_bytes


def _name(row, rows) -> str:
    """"backprop" or "the adjoint" when every row has one setting, else the row's full label."""
    if len({r.setting for r in rows}) > 1:
        return row.label
    return "the adjoint" if row.gradient == "adjoint" else row.gradient


def _fastest(rows):
    """Fastest first; ties go to the smaller, then by label (a stable order)."""
    return sorted(rows, key=lambda r: (r.ms_per_step, r.saved_bytes, r.label))


def choose_gradient(rows, max_bytes) -> GradientChoice:
    """The fastest row (``ms_per_step``) whose ``saved_bytes`` fit in ``max_bytes``; ties go to the smaller, then
    by label. When none fits, ``chosen`` is None and ``why`` names the smallest and by how much it misses: an
    answer to read, never an exception. Rows with an ``error`` are left out."""
    budget = format_bytes(_check_budget(max_bytes))
    usable = [r for r in rows if r.error is None]
    if not usable:
        return GradientChoice(None, "no training step was measured without a solver failure: nothing to choose from.")
    fits = _fastest(r for r in usable if r.saved_bytes <= max_bytes)
    if fits:
        best = fits[0]
        return GradientChoice(best, f"{_name(best, usable)} is the fastest that fits in {budget}: "
                                    f"{format_bytes(best.saved_bytes)} saved, {best.ms_per_step:.1f} ms per step.")
    smallest = min(usable, key=lambda r: (r.saved_bytes, r.ms_per_step, r.label))
    over = int(math.ceil(smallest.saved_bytes - max_bytes))
    return GradientChoice(None, f"nothing fits in {budget}: the smallest, {_name(smallest, usable)}, saves "
                                f"{format_bytes(smallest.saved_bytes)}, {format_bytes(over)} over the budget.",
                          smallest, over)


def describe_gradient_choice(rows, max_bytes, setting: Setting | None = None) -> str:
    """The lesson's sentence for one solver setting (``setting``, or the one all ``rows`` share): what fits the
    budget, what is chosen, and what the choice costs in time against the fastest, e.g. "For dopri5, tol 0.001
    on 64 images, with 2.0 MiB, backprop does not fit (23.8 MiB saved); the adjoint fits (1.4 MiB saved) and
    costs 1.3× the time per step of backprop (207.4 against 164.6 ms) (measured)."."""
    rows = [r for r in rows if setting is None or r.setting == setting]
    if len({r.setting for r in rows}) != 1:
        found = sorted({r.setting.label for r in rows})
        raise ValueError(f"describe_gradient_choice tells one solver setting; pass setting= one of {found}."
                         if found else f"no rows are for {setting.label if setting else 'any setting'}.")
    choice, usable = choose_gradient(rows, max_bytes), [r for r in rows if r.error is None]
    if not usable:
        return choice.why
    name = {id(r): _name(r, usable) for r in usable}
    where = f"For {usable[0].setting.label} on {usable[0].batch_size} images, with {format_bytes(max_bytes)}, "
    others = [r for r in usable if r is not choice.chosen]
    parts = [f"{name[id(r)]} does not fit ({format_bytes(r.saved_bytes)} saved)" for r in others
             if r.saved_bytes > max_bytes]
    parts += [f"{name[id(r)]} fits too ({format_bytes(r.saved_bytes)}, {r.ms_per_step:.1f} ms per step)"
              for r in others if r.saved_bytes <= max_bytes]
    if choice.chosen is None:
        return (where + "; ".join(parts) + f": nothing fits, and the smallest, {name[id(choice.closest)]}, is "
                f"{format_bytes(choice.over)} over the budget (measured).")
    best, fastest = choice.chosen, _fastest(usable)[0]
    if best.ms_per_step <= fastest.ms_per_step:
        cost = "and is the fastest: the budget costs no time"
    else:
        cost = (f"and costs {best.ms_per_step / fastest.ms_per_step:.1f}× the time per step of {name[id(fastest)]} "
                f"({best.ms_per_step:.1f} against {fastest.ms_per_step:.1f} ms)")
    chosen = f"{name[id(best)]} fits ({format_bytes(best.saved_bytes)} saved) {cost} (measured)."
    return where + "; ".join(parts + [chosen])
