"""Testing a trained classifier: accuracy and NFE, test-time tolerances, solvers below dopri5's floor,
which images two models get wrong, where the solver steps, and the memory one training step keeps."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..errors import SolverError
from ..integrate import solve
from ..memory import measure_saved
from ..tableaux import TABLEAUX
from ..validation import integer, positive_number
from .models import Classifier, synchronize

__all__ = ["check_images", "evaluate", "SweepPoint", "tolerance_sweep", "COARSE_SOLVERS", "below_the_floor",
           "breakdown_tolerance", "loosest_safe_tolerance", "cheapest_safe_tolerance", "Comparison",
           "compare_mistakes", "solver_steps", "training_memory"]


def check_images(x, y, what: str = "data") -> None:
    """Raise unless ``x`` is a batch of images (N, C, H, W) and ``y`` its N > 0 labels, both tensors."""
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"{what}: images and labels must be tensors; got {type(x).__name__} and {type(y).__name__}.")
    if x.ndim != 4 or y.ndim != 1 or len(x) != len(y) or len(y) == 0:
        raise ValueError(f"{what}: expected images (N, C, H, W) and labels (N,) with the same N > 0; "
                         f"got {tuple(x.shape)} and {tuple(y.shape)}.")


@torch.no_grad()
def evaluate(model: Classifier, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 512) -> dict:
    """Accuracy, mean loss, NFE per batch and seconds per batch of ``model`` on ``(x, y)``, and
    ``wrong``: the indices of the images it misclassifies (for :func:`compare_mistakes`).

    ``nfe_per_batch`` is the mean number of evaluations of f per forward pass of a batch (0 for
    the ResNet); one adaptive solve serves the whole batch, so every image of a batch shares it.
    """
    check_images(x, y, "evaluation data")
    batch_size = integer("batch_size", batch_size, minimum=1)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    block = model.ode_block
    correct, loss_sum, nfes, times, wrong = 0, 0.0, [], [], []
    try:
        for i in range(0, len(y), batch_size):
            xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
            synchronize(device)
            start = time.perf_counter()
            logits = model(xb)
            synchronize(device)
            times.append(time.perf_counter() - start)
            correct += int((logits.argmax(1) == yb).sum())
            wrong += (i + (logits.argmax(1) != yb).nonzero().flatten()).tolist()
            loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
            nfes.append(block.nfe_forward if block is not None else 0)
    finally:
        model.train(was_training)
    return {"accuracy": correct / len(y), "loss": loss_sum / len(y), "nfe_per_batch": sum(nfes) / len(nfes),
            "seconds_per_batch": sum(times) / len(times), "batch_size": min(batch_size, len(y)),
            "wrong": tuple(wrong)}


# --------------------------------------------------------------------------------------------
# Test-time solver settings


@dataclass(frozen=True)
class SweepPoint:
    """The ODE-Net tested at one tolerance (rtol = atol = ``tol``)."""

    tol: float
    accuracy: float
    nfe_per_batch: float
    seconds_per_batch: float
    error: str | None = None     # why the solve failed at this tolerance, if it did
    wrong: tuple[int, ...] = ()  # indices of the misclassified images


def _adaptive_block(model: Classifier, what: str):
    block = model.ode_block
    if block is None or not TABLEAUX[block.method].adaptive:
        raise ValueError(f"{what} needs an ODE-Net with an adaptive method (e.g. make_model('odenet')).")
    return block


def tolerance_sweep(model: Classifier, x: torch.Tensor, y: torch.Tensor, tolerances, *,
                    batch_size: int = 512, repeats: int = 1) -> list[SweepPoint]:
    """Test ``model`` (an ODE-Net) at each test-time tolerance; the training tolerance is restored after.

    ``seconds_per_batch`` is the fastest of ``repeats`` timings. A tolerance at which the solver
    fails gives a point with ``error`` set and NaN numbers, not an exception.
    """
    block = _adaptive_block(model, "tolerance_sweep")
    tolerances = [positive_number("each tolerance", tol) for tol in tolerances]
    if not tolerances:
        raise ValueError("tolerances must hold at least one number > 0; got none.")
    saved = (block.rtol, block.atol)
    points = []
    try:
        for tol in tolerances:
            block.rtol = block.atol = tol
            try:
                runs = [evaluate(model, x, y, batch_size=batch_size) for _ in range(max(1, int(repeats)))]
            except SolverError as exc:
                points.append(SweepPoint(tol, math.nan, math.nan, math.nan, str(exc)))
                continue
            best = min(runs, key=lambda r: r["seconds_per_batch"])
            points.append(SweepPoint(tol, best["accuracy"], best["nfe_per_batch"], best["seconds_per_batch"],
                                     wrong=best["wrong"]))
    finally:
        block.rtol, block.atol = saved
    return points


# Coarser than any tolerance gets: (method, step size); (None, None) skips the ODE block, h(1) = h(0).
COARSE_SOLVERS = ((None, None), ("euler", 1.0), ("euler", 0.5), ("midpoint", 1.0), ("rk4", 1.0))


def _without_the_ode_block(model: Classifier, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> dict:
    """The row of :func:`below_the_floor` for h(1) = h(0): downsampling straight into the head."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    wrong = [i + int(k) for i in range(0, len(y), batch_size)
             for k in (model.head(model.downsampling(x[i:i + batch_size].to(device))).argmax(1).cpu()
                       != y[i:i + batch_size].cpu()).nonzero().flatten()]
    model.train(was_training)
    return {"method": None, "step_size": None, "nfe": 0, "accuracy": 1 - len(wrong) / len(y), "wrong": tuple(wrong)}


@torch.no_grad()
def below_the_floor(model: Classifier, x: torch.Tensor, y: torch.Tensor, settings=COARSE_SOLVERS,
                    *, batch_size: int = 512) -> list[dict]:
    """Test an ODE-Net with fixed-step solvers coarser than its adaptive solver ever goes.

    For each ``(method, step_size)`` returns ``{"method", "step_size", "nfe", "accuracy", "wrong"}``; ``(None, None)``
    skips the ODE block (NFE 0). The model's own solver settings are restored afterwards.
    """
    block = model.ode_block
    if block is None:
        raise ValueError("below_the_floor needs a model with an ODE block (rknet or odenet).")
    check_images(x, y, "evaluation data")
    saved = (block.method, block.step_size)
    rows = []
    try:
        for method, step_size in settings:
            if method is None:
                rows.append(_without_the_ode_block(model, x, y, batch_size))
                continue
            if method not in TABLEAUX or TABLEAUX[method].adaptive:
                raise ValueError(f"below_the_floor takes fixed-step methods (euler, midpoint, heun, rk4); got {method!r}.")
            block.method, block.step_size = method, float(step_size)
            result = evaluate(model, x, y, batch_size=batch_size)
            rows.append({"method": method, "step_size": float(step_size), "nfe": result["nfe_per_batch"],
                         "accuracy": result["accuracy"], "wrong": result["wrong"]})
    finally:
        block.method, block.step_size = saved
    return rows


# --------------------------------------------------------------------------------------------
# Reading a sweep: where accuracy breaks, and which tolerance to test at


def breakdown_tolerance(points: list[SweepPoint], *, drop: float = 0.01) -> float | None:
    """The tightest tested tolerance at which accuracy has fallen more than ``drop`` (0.01 = 1 point)
    below the accuracy at the tightest tolerance tested; ``None`` if it never does."""
    valid = sorted((p for p in points if math.isfinite(p.accuracy)), key=lambda p: p.tol)
    if not valid:
        raise ValueError("no tolerance in the sweep gave a result.")
    reference = valid[0].accuracy
    for p in valid:
        if p.accuracy < reference - drop:
            return p.tol
    return None


def _safe_run(points: list[SweepPoint], drop: float) -> list[SweepPoint]:
    """The points from the tightest tolerance up to the first whose accuracy falls more than ``drop``
    below the tightest one's (or whose solve failed), that one excluded."""
    drop = positive_number("drop", drop, allow_zero=True)
    ordered = sorted(points, key=lambda p: p.tol)
    if not ordered or not math.isfinite(ordered[0].accuracy):
        raise ValueError("the tightest tolerance of the sweep must have a result to compare with.")
    reference = ordered[0].accuracy
    run = [ordered[0]]
    for p in ordered[1:]:
        if not math.isfinite(p.accuracy) or p.accuracy < reference - drop:
            break
        run.append(p)
    return run


def loosest_safe_tolerance(points: list[SweepPoint], *, drop: float = 0.01) -> float:
    """The loosest tested tolerance up to which accuracy never falls more than ``drop`` below the
    accuracy at the tightest tolerance tested. A tolerance at which the solve failed counts as a fall.

    Looser is not always cheaper: past dopri5's floor of evaluations every tolerance costs the same
    (see :func:`cheapest_safe_tolerance`).
    """
    return _safe_run(points, drop)[-1].tol


def cheapest_safe_tolerance(points: list[SweepPoint], *, drop: float = 0.01) -> float:
    """The tolerance to test at: among the safe ones (those :func:`loosest_safe_tolerance` accepts,
    from the tightest up), the one with the fewest NFE per batch, and of equal NFE the tightest,
    since a tolerance looser than that buys no evaluation and only adds solver error.
    """
    run = _safe_run(points, drop)
    return min(run, key=lambda p: (p.nfe_per_batch, p.tol)).tol


# --------------------------------------------------------------------------------------------
# Which images, where the solver steps, and memory


@dataclass(frozen=True)
class Comparison:
    """Two classifiers (or one at two solver settings) on the same ``n_images`` test images.

    ``only_a`` images are wrong for A alone, ``only_b`` for B alone. Only these decide which is better
    (McNemar's test): if A and B were equally good, each such image would be A's mistake or B's with
    even odds, so ``only_a − only_b`` would be within about 2·√(only_a + only_b) of zero 95% of the time.
    A smaller difference is a **tie**: these images cannot tell the two apart.
    """

    n_images: int
    wrong_a: int
    wrong_b: int
    only_a: int
    only_b: int

    @property
    def tie(self) -> bool:
        return abs(self.only_a - self.only_b) <= 2 * math.sqrt(self.only_a + self.only_b)

    def __str__(self) -> str:
        verdict = "a tie" if self.tie else "a real difference on these images"
        return (f"{self.wrong_a} vs {self.wrong_b} wrong of {self.n_images} images "
                f"({self.only_a} wrong only for the first, {self.only_b} only for the second): {verdict}")


def compare_mistakes(wrong_a, wrong_b, n_images: int) -> Comparison:
    """Compare two sets of misclassified image indices (``evaluate(...)["wrong"]``) on ``n_images``."""
    n_images = integer("n_images", n_images, minimum=1)
    a, b = set(int(i) for i in wrong_a), set(int(i) for i in wrong_b)
    outside = [i for i in a | b if not 0 <= i < n_images]
    if outside:
        raise ValueError(f"image indices must lie in 0…{n_images - 1}; got {sorted(outside)[:5]}. "
                         "Pass the indices of the wrong images, e.g. evaluate(...)['wrong'].")
    return Comparison(n_images, len(a), len(b), len(a - b), len(b - a))


@torch.no_grad()
def solver_steps(model: Classifier, x: torch.Tensor, tol: float) -> list[float]:
    """Where the ODE-Net's adaptive solver puts its accepted steps on [0, 1] for the batch ``x`` at
    test-time tolerance rtol = atol = ``tol``: the step boundaries, 0.0 first and 1.0 last."""
    block = _adaptive_block(model, "solver_steps")
    tol = positive_number("tol", tol)
    was_training = model.training
    model.eval()
    try:
        h0 = model.downsampling(x.to(next(model.parameters()).device))
        t = block.integration_time.to(h0.dtype)
        trace = solve(block.func, h0, t, rtol=tol, atol=tol, method=block.method, options=block.options(), trace=True).trace
    finally:
        model.train(was_training)
    return [0.0] + [step.t + step.h for step in trace if step.accepted]


def training_memory(model: Classifier, x: torch.Tensor, y: torch.Tensor):
    """Bytes autograd keeps for one training step on ``(x, y)`` (forward, loss, backward), counted by
    :func:`odeteach.memory.measure_saved`; parameters and the input batch are not counted.

    Returns the :class:`~odeteach.memory.MemoryReport`; the model's gradients are cleared afterwards.
    """
    check_images(x, y, "memory batch")
    device = next(model.parameters()).device
    x, y = x.to(device), y.to(device)
    was_training = model.training
    model.train()
    try:
        report = measure_saved(lambda: F.cross_entropy(model(x), y), exclude=[*model.parameters(), x],
                               backward=lambda loss: loss.backward())
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    report.result = None
    return report
