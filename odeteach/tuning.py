"""Tunable networks: one trained ODE-Net, many solver settings, and the cheapest one that meets your constraints.

The article's headline (Chen et al. 2018, section 3): an ODE-Net's cost is set at test time by how the
ODE is solved. Here that is data: a :class:`Setting` (a method with a number of steps, or an adaptive
method with a tolerance) is applied to a model and undone. :func:`measure_settings` measures each one on
the same images: accuracy, evaluations of f per batch (NFE), latency per batch (median of warm runs) and
the peak memory of the tensors the forward pass holds at once. :func:`pareto_front` keeps the settings
no other setting beats on both accuracy and cost; :func:`choose` picks the cheapest that meets every
constraint, or says plainly which constraint the closest one misses.
"""

from __future__ import annotations

import math
import statistics
import time
import weakref
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from .tableaux import TABLEAUX
from .validation import integer, positive_number

__all__ = ["Setting", "BlockState", "ode_block", "check_batch", "measure_shipped", "Measurement", "Choice", "DEFAULT_SETTINGS", "FIXED_METHODS", "FIXED_STEPS", "ADAPTIVE_METHODS",
           "TOLERANCES", "COSTS", "peak_bytes", "measure_settings", "pareto_front", "choose"]

FIXED_METHODS = ("euler", "midpoint", "rk4")
FIXED_STEPS = (1, 2, 3, 4, 6, 8)
ADAPTIVE_METHODS = ("bosh3", "dopri5")
TOLERANCES = (1e0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5)
COSTS = {"nfe": "nfe", "ms": "ms_per_batch", "memory": "peak_bytes"}


@dataclass(frozen=True, order=True)
class Setting:
    """How the ODE block is solved: a fixed-step ``method`` with ``steps`` equal steps over [0, 1], or an
    adaptive ``method`` at rtol = atol = ``tol``."""

    method: str
    steps: int | None = None
    tol: float | None = None

    def __post_init__(self):
        if self.method not in TABLEAUX:
            raise ValueError(f"Unknown method {self.method!r}. Valid methods: {', '.join(TABLEAUX)}.")
        if TABLEAUX[self.method].adaptive:
            if self.steps is not None or self.tol is None:
                raise ValueError(f"{self.method} is adaptive: give it a tol (e.g. Setting({self.method!r}, tol=1e-3)), "
                                 "not a number of steps.")
            positive_number("tol", self.tol)
        else:
            if self.tol is not None or self.steps is None:
                raise ValueError(f"{self.method} takes fixed steps: give it steps (e.g. Setting({self.method!r}, steps=2)), "
                                 "not a tolerance.")
            integer("steps", self.steps, minimum=1)

    @property
    def label(self) -> str:
        if self.steps is not None:
            return f"{self.method}, {self.steps} step{'s' if self.steps > 1 else ''}"
        return f"{self.method}, tol {self.tol:g}"

    def apply(self, model) -> "BlockState":
        """Solve ``model``'s ODE block this way from now on. Returns the block's state before, so that
        ``before = s.apply(model)`` … ``before.apply(model)`` undoes it exactly."""
        block = ode_block(model)
        before = BlockState.of(block)
        block.method = self.method
        if self.steps is not None:
            block.step_size = 1.0 / self.steps
        else:
            block.step_size, block.rtol, block.atol = None, self.tol, self.tol
        return before

    @contextmanager
    def applied(self, model):
        """``with setting.applied(model): …``: this setting inside the block, the old state after it."""
        before = self.apply(model)
        try:
            yield model
        finally:
            before.apply(model)


def ode_block(model):
    """``model``'s ODE block, or a TypeError that says an ODE-Net is needed (every lesson-7 study starts here)."""
    block = getattr(model, "ode_block", None)
    if block is None:
        raise TypeError("this needs an ODE-Net (a model with an ODE block, e.g. "
                        f"odeteach.classifier.load_pretrained('odenet')[0]); got {type(model).__name__}.")
    return block


def check_batch(x, y) -> None:
    """Images ``x`` and labels ``y`` as tensors of the same, non-zero length, or an error that says what to pass."""
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"x and y must be tensors (images (N, 1, 8, 8), labels (N,)); got {type(x).__name__} "
                        f"and {type(y).__name__}.")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x and y must hold the same, non-zero number of images; got {len(x)} and {len(y)}.")


@dataclass(frozen=True)
class BlockState:
    """Everything a :class:`Setting` changes in an ODE block, as it was: applying it restores the block."""

    method: str
    rtol: float
    atol: float
    step_size: float | None

    @classmethod
    def of(cls, block) -> "BlockState":
        return cls(block.method, block.rtol, block.atol, block.step_size)

    def apply(self, model) -> "BlockState":
        block = ode_block(model)
        before = BlockState.of(block)
        block.method, block.rtol, block.atol, block.step_size = self.method, self.rtol, self.atol, self.step_size
        return before


DEFAULT_SETTINGS = tuple([Setting(m, steps=n) for m in FIXED_METHODS for n in FIXED_STEPS] +
                         [Setting(m, tol=t) for m in ADAPTIVE_METHODS for t in TOLERANCES])


# --------------------------------------------------------------------------------------------
# Measuring


class _LiveBytes(TorchDispatchMode):
    """Counts the bytes of the tensors a computation holds at once: every tensor an operation returns, by
    storage (a view adds nothing), until its last Python reference goes; ``peak`` is the most at any time."""

    def __init__(self, exclude):
        super().__init__()
        self.exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self.live, self.now, self.peak = {}, 0, 0

    def _release(self, key):
        entry = self.live.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.now -= entry[0]
            del self.live[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            key = t.untyped_storage().data_ptr()
            if key == 0 or key in self.exclude:
                continue
            if key in self.live:
                self.live[key][1] += 1
            else:
                size = t.untyped_storage().nbytes()
                self.live[key] = [size, 1]
                self.now += size
                self.peak = max(self.peak, self.now)
            weakref.finalize(t, self._release, key)
        return out


def peak_bytes(fn, *args, exclude=()) -> int:
    """The peak bytes of tensors ``fn(*args)`` holds at once, not counting ``exclude`` (weights, inputs)
    nor the memory inside a single operation's kernel."""
    mode = _LiveBytes(list(exclude) + [a for a in args if isinstance(a, torch.Tensor)])
    with mode:
        result = fn(*args)
    del result
    return mode.peak


@dataclass(frozen=True)
class Measurement:
    """One setting measured on one set of images (every image in one batch)."""

    setting: Setting
    accuracy: float
    nfe: int
    ms_per_batch: float
    peak_bytes: int
    batch_size: int
    error: str | None = None

    @property
    def label(self) -> str:
        return self.setting.label

    @property
    def ms_per_image(self) -> float:
        return self.ms_per_batch / self.batch_size

    def as_dict(self) -> dict:
        return {"setting": self.label, **{k: v for k, v in asdict(self.setting).items() if v is not None},
                "accuracy": self.accuracy, "nfe": self.nfe, "ms_per_batch": self.ms_per_batch,
                "ms_per_image": self.ms_per_image, "peak_bytes": self.peak_bytes, "error": self.error}


@torch.no_grad()
def measure_settings(model, x: torch.Tensor, y: torch.Tensor, settings=DEFAULT_SETTINGS, *, repeats: int = 5) -> list:
    """Each setting applied to ``model`` (and undone), measured on the images ``x`` with labels ``y`` as one batch.

    Accuracy and NFE come from one forward pass; ``ms_per_batch`` is the median wall time of ``repeats``
    more (after that warm-up pass); ``peak_bytes`` is :func:`peak_bytes` of one more pass. A setting whose
    solve fails is kept with accuracy 0 and its ``error``, so that a front can leave it out.
    """
    block = ode_block(model)
    repeats = integer("repeats", repeats, minimum=1)
    check_batch(x, y)
    was_training = model.training
    model.eval()
    weights = list(model.parameters()) + list(model.buffers())
    results = []
    try:
        for setting in settings:
            if not isinstance(setting, Setting):
                raise TypeError(f"settings must be Setting objects (e.g. Setting('rk4', steps=2)); got {setting!r}.")
            with setting.applied(model):
                try:
                    logits = model(x)
                    nfe = block.nfe_forward
                    times = []
                    for _ in range(repeats):
                        start = time.perf_counter()
                        model(x)
                        times.append(time.perf_counter() - start)
                    peak = peak_bytes(model, x, exclude=weights)
                except Exception as exc:  # a solver failure is a result here, not a crash
                    results.append(Measurement(setting, 0.0, 0, math.inf, 0, len(x), f"{type(exc).__name__}: {exc}"))
                    continue
            accuracy = float((logits.argmax(1) == y).float().mean())
            results.append(Measurement(setting, accuracy, nfe, 1000 * statistics.median(times), peak, len(x)))
    finally:
        model.train(was_training)
    return results


def measure_shipped(kind: str = "odenet", repeats: int = 5, settings=DEFAULT_SETTINGS) -> list:
    """The shipped digits model ``kind`` (``"odenet"`` or ``"odenet_regularised"``) measured on all 359 test digits
    under ``settings``, on one torch thread (as lesson 7, ``python -m odeteach.tune`` and the benchmarks do)."""
    from .classifier import load_pretrained
    from .data.digits import load_digits
    model = load_pretrained(kind, device="cpu")[0]
    data = load_digits()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return measure_settings(model, data.x_test, data.y_test, settings, repeats=repeats)
    finally:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------
# Choosing


def _cost_key(cost: str) -> str:
    if cost not in COSTS:
        raise ValueError(f"cost must be one of {', '.join(COSTS)}; got {cost!r}.")
    return COSTS[cost]


def _order(points, key):
    """Cheapest first; among equal costs, the most accurate, then the faster, then by name (a stable order)."""
    return sorted(points, key=lambda p: (getattr(p, key), -p.accuracy, p.ms_per_batch, p.label))


def pretty_bytes(n: float) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def pareto_front(points, cost: str = "nfe") -> list:
    """The points no other point beats: none is at least as accurate and at most as costly, and better in one.
    Sorted by cost. Failed settings (with an ``error``) are left out."""
    key = _cost_key(cost)
    front, best = [], -math.inf
    for p in _order([p for p in points if p.error is None], key):
        if p.accuracy > best:
            front.append(p)
            best = p.accuracy
    return front


@dataclass(frozen=True)
class Choice:
    """What :func:`choose` found: the ``chosen`` point (or None), a sentence saying why, and, when nothing
    meets every constraint, the ``closest`` point and the constraints it ``misses``."""

    chosen: Measurement | None
    why: str
    closest: Measurement | None = None
    misses: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.why


def _misses(p, limits) -> list[str]:
    min_accuracy, max_ms, max_nfe, max_memory = limits
    out = []
    if min_accuracy is not None and p.accuracy < min_accuracy:
        out.append(f"accuracy {100 * p.accuracy:.1f}% < {100 * min_accuracy:.1f}%")
    if max_ms is not None and p.ms_per_batch > max_ms:
        out.append(f"{p.ms_per_batch:.1f} ms per batch > {max_ms:.1f} ms")
    if max_nfe is not None and p.nfe > max_nfe:
        out.append(f"NFE {p.nfe} > {max_nfe:g}")
    if max_memory is not None and p.peak_bytes > max_memory:
        out.append(f"peak memory {pretty_bytes(p.peak_bytes)} > {pretty_bytes(max_memory)}")
    return out


def _shortfall(p, limits) -> float:
    """How far ``p`` is from meeting the constraints: the sum of its relative misses (0 when it meets them all)."""
    min_accuracy, max_ms, max_nfe, max_memory = limits
    total = 0.0
    if min_accuracy is not None:
        total += max(0.0, min_accuracy - p.accuracy) / max(min_accuracy, 1e-12)
    for value, limit in ((p.ms_per_batch, max_ms), (p.nfe, max_nfe), (p.peak_bytes, max_memory)):
        if limit is not None:
            total += max(0.0, value - limit) / max(limit, 1e-12)
    return total


def describe(p) -> str:
    """"rk4, 2 steps: 97.8% at 0.90 ms per image, NFE 8 (measured)"."""
    return (f"{p.label}: {100 * p.accuracy:.1f}% at {p.ms_per_image:.2f} ms per image, NFE {p.nfe}, "
            f"peak {pretty_bytes(p.peak_bytes)} (measured)")


def choose(points, *, min_accuracy=None, max_ms=None, max_nfe=None, max_memory=None, cost: str = "nfe") -> Choice:
    """The cheapest point (by ``cost``: ``"nfe"``, ``"ms"`` or ``"memory"``) that meets every given constraint.

    ``min_accuracy`` is a fraction (0.97), ``max_ms`` milliseconds per batch, ``max_nfe`` evaluations of f,
    ``max_memory`` bytes. Ties in cost go to the more accurate, then the faster point. When no point
    meets every constraint, ``chosen`` is None and ``why`` names the closest point and what it misses:
    an answer to read, never an exception.
    """
    key = _cost_key(cost)
    for name, value in (("min_accuracy", min_accuracy), ("max_ms", max_ms), ("max_nfe", max_nfe),
                        ("max_memory", max_memory)):
        if value is not None and (not isinstance(value, (int, float)) or math.isnan(value) or value < 0):
            raise ValueError(f"{name} must be a number ≥ 0 or None; got {value!r}.")
    if min_accuracy is not None and min_accuracy > 1:
        raise ValueError(f"min_accuracy is a fraction between 0 and 1 (0.97 for 97%); got {min_accuracy}.")
    usable = [p for p in points if p.error is None]
    if not usable:
        return Choice(None, "no setting was measured without a solver failure: nothing to choose from.")
    limits = (min_accuracy, max_ms, max_nfe, max_memory)
    feasible = [p for p in _order(usable, key) if not _misses(p, limits)]
    if feasible:
        best = feasible[0]
        return Choice(best, f"cheapest by {cost} that meets every constraint: {describe(best)}")
    closest = min(_order(usable, key), key=lambda p: _shortfall(p, limits))
    misses = tuple(_misses(closest, limits))
    return Choice(None, f"no setting meets every constraint; the closest is {describe(closest)}, which misses "
                        + "; ".join(misses), closest, misses)
