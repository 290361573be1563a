"""How much memory does back-propagation keep alive? Count the tensors autograd saves.

Every differentiable operation saves some of its inputs or outputs for the backward pass (a
product saves both factors, ``tanh`` saves its output, …). :func:`measure_saved` runs a
computation under :func:`torch.autograd.graph.saved_tensors_hooks` and adds up what is saved.
On the CPU this is exact and repeatable: it counts bytes, not what an allocator reports.

**The counting rule.** Many saved tensors share memory: a weight matrix is saved by every layer
call that uses it, ``x[0]`` is a view of ``x``. We count each distinct *storage* (the memory
block behind a tensor) once, at its full size, however many saved tensors point into it. So a
parameter saved by 1000 steps counts once, and a view counts as the block it lives in.
``exclude`` lists tensors whose storage is owned elsewhere anyway (the model's parameters, the
input batch); they are left out of ``saved_bytes`` so what remains is what the graph adds.
``naive_bytes`` is the plain sum of every saved tensor's own size, counting repeats.

**Mind what ``exclude`` takes away.** An excluded tensor that the computation saves *directly* is
not counted. Backprop through ``n`` RK4 steps of ``tanh(z @ W)`` saves eight batch-sized tensors a
step (each stage's matmul input and tanh output), but the first stage of the first step saves the
input ``z0`` itself: excluding ``z0`` removes one of them, and a line fitted through the counts has
an intercept of minus one batch-sized tensor, a "part that does not grow" that is only the
exclusion. A field that copies its input first (``MLPField`` concatenates ``[z, t]``) has none.

Where CUDA is present, :func:`measure_saved` with ``cuda=True`` (default when the computation
runs on a GPU) also reports the peak of ``torch.cuda.memory_allocated`` above its starting value
while the computation (and optionally its backward) ran.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch

__all__ = ["MemoryReport", "measure_saved", "track_saved", "format_bytes"]


@dataclass
class MemoryReport:
    """What autograd saved for one computation.

    saved_bytes : bytes of the distinct storages saved (the counting rule above), minus ``exclude``.
    naive_bytes : the sum of ``numel * element_size`` over every saved tensor, repeats included.
    n_saved : how many tensors were saved (repeats included).
    n_storages : how many distinct storages ``saved_bytes`` counts.
    cuda_peak_bytes : peak CUDA memory allocated above the start, or ``None`` without CUDA.
    result : what the computation returned (so you can call ``backward`` on it).
    """

    saved_bytes: int = 0
    naive_bytes: int = 0
    n_saved: int = 0
    n_storages: int = 0
    cuda_peak_bytes: int | None = None
    result: Any = field(default=None, repr=False)

    def __str__(self) -> str:
        peak = "" if self.cuda_peak_bytes is None else f", CUDA peak {format_bytes(self.cuda_peak_bytes)}"
        return (f"{format_bytes(self.saved_bytes)} saved in {self.n_storages} storages "
                f"({self.n_saved} saved tensors{peak})")


def format_bytes(n: float) -> str:
    """``1536 -> '1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _storage_key(t: torch.Tensor):
    storage = t.untyped_storage()
    return (t.device.type, t.device.index, storage.data_ptr()), storage


@contextmanager
def track_saved(exclude: Iterable[torch.Tensor] = ()):
    """Context manager: ``with track_saved() as report: ...`` fills ``report`` (a :class:`MemoryReport`).

    The storages are kept referenced until the block ends, so a freed block whose address is
    reused cannot be mistaken for one already counted.
    """
    report = MemoryReport()
    excluded = {_storage_key(t)[0] for t in exclude if isinstance(t, torch.Tensor)}
    storages: dict = {}

    def pack(t: torch.Tensor):
        report.n_saved += 1
        report.naive_bytes += t.numel() * t.element_size()
        key, storage = _storage_key(t)
        if key not in excluded and key not in storages:
            storages[key] = storage
            report.saved_bytes += storage.nbytes()
            report.n_storages += 1
        return t

    def unpack(t: torch.Tensor):
        return t

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            yield report
    finally:
        storages.clear()


def measure_saved(fn: Callable, *args, exclude: Iterable[torch.Tensor] = (), backward: Callable | None = None,
                  cuda: bool | None = None, **kwargs) -> MemoryReport:
    """Run ``fn(*args, **kwargs)`` and report the bytes autograd saved for its backward pass.

    ``exclude`` : tensors not to count (e.g. ``model.parameters()``, the inputs).
    ``backward`` : optional ``backward(result)`` run after ``fn`` (e.g. ``lambda y: y.sum().backward()``),
        included in the CUDA peak.
    ``cuda`` : measure the CUDA peak too; default: when CUDA is available.
    """
    if not callable(fn):
        raise TypeError(f"measure_saved needs a function to run; got {type(fn).__name__}.")
    exclude = list(exclude)
    use_cuda = torch.cuda.is_available() if cuda is None else bool(cuda)
    if use_cuda and not torch.cuda.is_available():
        raise ValueError("cuda=True but CUDA is not available on this machine.")
    if use_cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
    with track_saved(exclude) as report:
        report.result = fn(*args, **kwargs)
    if backward is not None:
        backward(report.result)
    if use_cuda:
        torch.cuda.synchronize()
        report.cuda_peak_bytes = torch.cuda.max_memory_allocated() - start
    return report
