"""The shipped classifiers: where their checkpoints live, how they are saved and loaded, and how they
are retrained from scratch (``python -m odeteach.train digits``).

A checkpoint is in the course's one format (:func:`odeteach.training.save_checkpoint`, kind
``"digits_<kind>"``): ``config`` rebuilds the model, ``log`` holds the loss and forward NFE of every batch, and
``meta`` the training configuration and the rest of the :class:`~odeteach.classifier.training.History`.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from .. import training as shared_training
from ..data.digits import load_digits
from .models import KINDS, Classifier, count_parameters, make_model, resolve_device
from .training import History, TrainConfig, train

__all__ = ["CHECKPOINT_DIR", "CHECKPOINT_RECIPE", "CHECKPOINT_TRAIN", "REGULARISED", "REGULARISATION", "SHIPPED",
           "checkpoint_path", "save_checkpoint", "load_pretrained", "train_checkpoints", "train_regularised"]

CHECKPOINT_DIR = shared_training.CHECKPOINT_DIR

# The recipe the shipped checkpoints were trained with: python -m odeteach.train digits
CHECKPOINT_RECIPE = {
    "resnet": {},
    "rknet": {},
    "odenet": {"rtol": 1e-3, "atol": 1e-3, "adjoint": True},
}
CHECKPOINT_TRAIN = TrainConfig(epochs=15, batch_size=64, lr=3e-3, weight_decay=1e-4, seed=0)

# Lesson 7's ODE-Net trained for tunability: the ODE-Net's recipe plus the penalties λ_K·E_K + λ_J·E_J on its
# dynamics (odeteach.regularisation; Finlay et al. 2020). python -m odeteach.train digits_regularised
REGULARISED = "odenet_regularised"
REGULARISATION = (0.1, 0.1)
CHECKPOINT_RECIPE[REGULARISED] = {**CHECKPOINT_RECIPE["odenet"], "regularisation": REGULARISATION}
# Every checkpoint name load_pretrained reads: the three kinds, and the regularised ODE-Net.
SHIPPED = (*KINDS, REGULARISED)

# History's per-batch fields that the checkpoint's log holds (under TrainLog's names); meta holds the others.
_IN_LOG = {"loss": "losses", "nfe_forward": "nfe"}


def checkpoint_path(kind: str, directory=None) -> Path:
    if kind not in SHIPPED:
        raise ValueError(f"Unknown model {kind!r}. Valid names: {', '.join(SHIPPED)}.")
    return Path(directory or CHECKPOINT_DIR) / f"digits_{kind}.pt"


def _model_config(model: Classifier) -> dict:
    """The model's kind, channels and ODE block settings: what :func:`load_pretrained` rebuilds it from."""
    block = model.ode_block
    config = {"kind": model.kind, "channels": model.head[-1].in_features}
    if block is not None:
        config.update(method=block.method, rtol=block.rtol, atol=block.atol, adjoint=block.adjoint,
                      step_size=block.step_size)
        if block.regularisation:
            config["regularisation"] = block.regularisation.as_list()
    return config


def save_checkpoint(model: Classifier, path, *, train_config: TrainConfig, history: History,
                    name: str | None = None) -> Path:
    """Weights, the model's and training's configuration, and the history, all ``weights_only``-loadable.
    ``name`` (default the model's kind) is what :func:`load_pretrained` will ask for."""
    record = history.as_dict()
    log = shared_training.TrainLog(record.pop("loss"), record.pop("nfe_forward"), float(sum(history.epoch_time)))
    return shared_training.save_checkpoint(path, model, kind=f"digits_{name or model.kind}", config=_model_config(model),
                                           seed=train_config.seed, log=log, train=asdict(train_config), history=record)


def load_pretrained(kind: str, *, directory=None, device=None) -> tuple[Classifier, History, dict]:
    """The shipped (or retrained) model ``kind`` (``resnet``, ``rknet``, ``odenet`` or ``odenet_regularised``),
    its training :class:`History` and its configs (``{"model": ..., "train": ...}``). Loaded with
    ``torch.load(..., weights_only=True)``.
    """
    path = checkpoint_path(kind, directory)
    retrain = "digits_regularised" if kind == REGULARISED else "digits"
    blob = shared_training.load_checkpoint(path, kind=f"digits_{kind}", retrain=retrain)
    model_settings = {name: value for name, value in blob["config"].items() if name != "kind"}
    if kind == "resnet":
        model_settings = {"channels": model_settings["channels"]}
    elif kind == "rknet":
        for name in ("rtol", "atol", "adjoint"):
            model_settings.pop(name)
    model = make_model(blob["config"]["kind"], seed=None, device="cpu", **model_settings)
    model.load_state_dict(blob["state_dict"])
    model.eval()
    history = History.from_dict({**{field: blob["log"][name] for field, name in _IN_LOG.items()},
                                 **blob["meta"]["history"]})
    return model.to(resolve_device(device)), history, {"model": blob["config"], "train": blob["meta"]["train"]}


def train_checkpoints(directory=None, *, kinds=KINDS, config: TrainConfig | None = None, data=None, device="cpu",
                      progress: bool = True) -> dict[str, Path]:
    """Retrain the shipped checkpoints from scratch into ``odeteach/checkpoints/digits_*.pt``.

    This is ``python -m odeteach.train digits``. Every model starts from ``config.seed`` and sees the
    batches in the same seeded order, so a rerun on the same machine and torch version gives the
    same weights. Defaults: :data:`CHECKPOINT_TRAIN` on :func:`~odeteach.data.digits.load_digits`, on the CPU.
    """
    config = config or CHECKPOINT_TRAIN
    data = data if data is not None else load_digits()
    written = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # one thread: the same sums in the same order on any CPU count
    try:
        for kind in kinds:
            architecture = "odenet" if kind == REGULARISED else kind
            model = make_model(architecture, seed=config.seed, device=device, **CHECKPOINT_RECIPE[kind])
            history = train(model, data, config, progress=progress)
            path = save_checkpoint(model, checkpoint_path(kind, directory), train_config=config, history=history,
                                   name=kind)
            written[kind] = path
            print(f"{kind:7s} {count_parameters(model):7d} parameters · test accuracy {history.test_accuracy[-1]:.2%} · "
                  f"{sum(history.epoch_time):.0f} s · {path} ({path.stat().st_size / 1024:.0f} KiB)")
    finally:
        torch.set_num_threads(threads)
    return written


def train_regularised(directory=None, *, config: TrainConfig | None = None, data=None, device="cpu",
                      progress: bool = True) -> dict[str, Path]:
    """Retrain lesson 7's regularised ODE-Net into ``odeteach/checkpoints/digits_odenet_regularised.pt``:
    ``python -m odeteach.train digits_regularised``. The ODE-Net's recipe and seed (:data:`CHECKPOINT_TRAIN`),
    plus the penalties :data:`REGULARISATION` on its dynamics."""
    return train_checkpoints(directory, kinds=(REGULARISED,), config=config, data=data, device=device,
                             progress=progress)
