"""One training infrastructure for the course's models: seeding, the loop, its log, and checkpoints.

The classifier (lesson 4), the latent ODE and its RNN baseline (lesson 5) and the CNFs (lesson 6) train alike:
Adam with a cosine-decayed learning rate, one loss per iteration, a progress bar with an ETA
(:func:`odeteach.progress.progress`), a :class:`TrainLog` of losses and NFE, and a checkpoint in one format
that loads with ``torch.load(..., weights_only=True)``. Each model's module says *what* one iteration
computes (its ``loss_fn``); this module says *how* every model is trained and stored.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .errors import SolverError
from .progress import progress as progress_bar

__all__ = ["CHECKPOINT_DIR", "CHECKPOINT_FORMAT", "CheckpointError", "CheckpointMissing", "TrainLog", "seed_everything", "fit",
           "save_checkpoint", "load_checkpoint", "SNAPSHOT_EVERY"]

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
CHECKPOINT_FORMAT = 2
# How often (iterations) a run given a ``snapshot`` path writes its whole state there, so that it can resume.
SNAPSHOT_EVERY = 50


class CheckpointError(ValueError):
    """A checkpoint file that is missing, of another kind, or in a format this version cannot read."""


class CheckpointMissing(CheckpointError, FileNotFoundError):
    """No checkpoint file where one was expected (also a ``FileNotFoundError``)."""


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global generator (it initialises the model's weights) and return a generator of its own.

    The returned generator drives the data (batch order, subsets, noise), so the same seed gives the same
    run on one machine, whatever else has drawn random numbers before.
    """
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@dataclass
class TrainLog:
    """What a training run did: the loss at every iteration, the NFE where a solver ran, and the time spent."""

    losses: list[float] = field(default_factory=list)
    nfe: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def record(self, loss: float, nfe: int | None = None) -> None:
        self.losses.append(float(loss))
        if nfe is not None:
            self.nfe.append(int(nfe))

    def recent_loss(self, n: int = 25) -> float:
        """The mean loss over the last ``n`` iterations (NaN before the first one)."""
        last = self.losses[-n:]
        return sum(last) / len(last) if last else math.nan

    def as_dict(self) -> dict:
        return {"losses": list(self.losses), "nfe": list(self.nfe), "seconds": float(self.seconds)}

    @classmethod
    def from_dict(cls, blob: dict | None) -> "TrainLog":
        blob = blob or {}
        return cls(list(blob.get("losses", [])), list(blob.get("nfe", [])), float(blob.get("seconds", 0.0)))


def fit(model: torch.nn.Module, loss_fn: Callable, iterations: int, *, lr: float, final_lr_fraction: float = 0.1,
        weight_decay: float = 0.0, desc: str = "training", progress: bool = True, log: TrainLog | None = None,
        on_step: Callable | None = None, postfix_every: int = 25, snapshot=None, snapshot_every: int = SNAPSHOT_EVERY,
        generators: tuple = (), settings: dict | None = None) -> TrainLog:
    """Minimise ``loss_fn(i)`` over ``iterations`` steps of Adam, the learning rate decaying (cosine) to ``lr * final_lr_fraction``.

    ``loss_fn(i)`` returns the loss tensor for iteration ``i``, or ``(loss, nfe)``. ``on_step(i, log)`` runs
    after each step (a live plot, per-epoch bookkeeping). A non-finite loss stops the run with a message
    that says what to change. Returns ``log`` (a new :class:`TrainLog` if none is given), extended.

    ``snapshot`` (a path) makes a long run resumable: every ``snapshot_every`` iterations the run's whole
    state (weights, Adam's moments, the schedule, the log, torch's global generator and each of
    ``generators``, the ``torch.Generator`` objects that ``loss_fn`` draws from) is written there. If the file
    exists when ``fit`` starts, the run continues from it and ends with the same weights, bit for bit, as
    a run never stopped; the file is removed when the run ends. ``loss_fn(i)`` must depend only on ``i``
    and on that state (the course's batch sources are seeded by ``i``). ``settings`` (plain values) names
    whatever else makes the run what it is (e.g. a penalty's weights); a snapshot of other settings is refused.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, iterations, eta_min=lr * final_lr_fraction)
    log = TrainLog() if log is None else log
    run = {"iterations": int(iterations), "lr": float(lr), "final_lr_fraction": float(final_lr_fraction),
           "weight_decay": float(weight_decay), "desc": desc}
    if settings:
        run["settings"] = dict(settings)
    start_at = 0
    if snapshot is not None:
        snapshot = Path(snapshot)
        if snapshot.is_file():
            start_at = _resume(snapshot, run, model, optimizer, schedule, log, generators)
    bar = progress_bar(range(start_at, iterations), desc=desc, enabled=progress, total=iterations, initial=start_at)
    start = time.perf_counter()
    for i in bar:
        out = loss_fn(i)
        loss, nfe = out if isinstance(out, tuple) else (out, None)
        value = loss.item()
        if not math.isfinite(value):
            raise SolverError(f"{desc}: the loss became {value} at iteration {i}; lower lr (now {lr:g}), "
                              "or tighten the solver's rtol/atol.")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        log.record(value, nfe)
        if on_step is not None:
            on_step(i, log)
        if progress and (i + 1) % postfix_every == 0:
            bar.set_postfix(loss=f"{log.recent_loss(postfix_every):.4g}", **({"nfe": nfe} if nfe is not None else {}))
        if snapshot is not None and (i + 1) % snapshot_every == 0 and i + 1 < iterations:
            log.seconds += time.perf_counter() - start
            start = time.perf_counter()
            _write_snapshot(snapshot, run, i + 1, model, optimizer, schedule, log, generators)
    log.seconds += time.perf_counter() - start
    if snapshot is not None and snapshot.is_file():
        snapshot.unlink()
    return log


def _write_snapshot(path: Path, run: dict, done: int, model, optimizer, schedule, log: TrainLog, generators) -> None:
    """Write the run's state after ``done`` iterations to ``path``, atomically (a stopped write leaves the last one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"run": run, "done": int(done), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(), "log": log.as_dict(), "torch_rng": torch.get_rng_state(),
            "generators": [g.get_state() for g in generators]}
    partial = path.with_name(path.name + ".writing")
    torch.save(blob, partial)
    os.replace(partial, path)


def _resume(path: Path, run: dict, model, optimizer, schedule, log: TrainLog, generators) -> int:
    """Load a snapshot written by :func:`_write_snapshot` into the run's objects; return the iterations done."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if blob.get("run") != run or len(blob.get("generators", ())) != len(generators):
        raise CheckpointError(f"{path} is a snapshot of another run ({blob.get('run')}), not of this one ({run}). "
                              "Delete it to start afresh, or rerun with the settings it was made with.")
    model.load_state_dict(blob["model"])
    optimizer.load_state_dict(blob["optimizer"])
    schedule.load_state_dict(blob["schedule"])
    restored = TrainLog.from_dict(blob["log"])
    log.losses[:], log.nfe[:], log.seconds = restored.losses, restored.nfe, restored.seconds
    torch.set_rng_state(blob["torch_rng"])
    for generator, state in zip(generators, blob["generators"]):
        generator.set_state(state)
    print(f"{run['desc']}: resuming from {path} after {blob['done']} of {run['iterations']} iterations")
    return int(blob["done"])


def save_checkpoint(path, model: torch.nn.Module, *, kind: str, config: dict, seed: int, log: TrainLog | None = None,
                    **meta) -> Path:
    """Write ``model``'s weights with everything needed to rebuild and describe it, in the one checkpoint format.

    ``config`` holds the constructor arguments; ``meta`` any other plain values (numbers, strings, lists,
    dicts, tensors), so that the file loads with ``weights_only=True``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"format": CHECKPOINT_FORMAT, "kind": kind, "config": dict(config), "seed": int(seed),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "log": (log or TrainLog()).as_dict(), "meta": dict(meta)}
    torch.save(blob, path)
    return path


def load_checkpoint(path, kind: str | None = None, retrain: str = "NAME") -> dict:
    """Read a checkpoint with ``weights_only=True``: a dict with format, kind, config, seed, state_dict, log, meta.

    Raises :class:`CheckpointError` naming the file and what to do when it is missing
    (:class:`CheckpointMissing`, whose message names ``python -m odeteach.train <retrain>``), of another
    ``kind``, or not in this format.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointMissing(f"no checkpoint at {path}. Retrain it with `python -m odeteach.train {retrain}` "
                                "(see the README, 'Regenerating figures and checkpoints').")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        found = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise CheckpointError(f"{path} is not an odeteach checkpoint of format {CHECKPOINT_FORMAT} (found {found!r}); "
                              f"retrain it with `python -m odeteach.train {retrain}`.")
    if kind is not None and blob["kind"] != kind:
        raise CheckpointError(f"{path} holds a {blob['kind']!r} model, not a {kind!r} one.")
    return blob
