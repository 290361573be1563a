"""Training a classifier on the digits: Adam on cross-entropy, by :func:`odeteach.training.fit`.

:func:`train` says what one iteration computes (a shuffled batch's cross-entropy) and what each epoch
records (:class:`History`); :func:`odeteach.training.fit` runs the loop, the progress bar and the
cosine-decayed learning rate that every model of the course shares.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from torch.nn import functional as F

from ..training import fit, seed_everything
from ..validation import integer, positive_number
from .evaluation import check_images, evaluate
from .models import Classifier, synchronize

__all__ = ["TrainConfig", "History", "train"]


@dataclass
class TrainConfig:
    """How :func:`train` trains: plain numbers, so that they can be saved with a checkpoint."""

    epochs: int = 15
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self):
        self.epochs = integer("TrainConfig.epochs", self.epochs, minimum=1)
        self.batch_size = integer("TrainConfig.batch_size", self.batch_size, minimum=1)
        self.seed = integer("TrainConfig.seed", self.seed)
        self.lr = positive_number("TrainConfig.lr", self.lr)
        self.weight_decay = positive_number("TrainConfig.weight_decay", self.weight_decay, allow_zero=True)


@dataclass
class History:
    """What happened during training: one entry per batch (``loss``, NFE) or per epoch (the rest)."""

    loss: list[float] = field(default_factory=list)          # per batch
    nfe_forward: list[int] = field(default_factory=list)     # per batch (ODE blocks only)
    nfe_backward: list[int] = field(default_factory=list)    # per batch (ODE blocks only)
    penalty: list[float] = field(default_factory=list)       # per batch (regularised ODE blocks only)
    epoch_time: list[float] = field(default_factory=list)    # seconds per epoch
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(**{k: list(v) for k, v in d.items() if k in cls.__dataclass_fields__})

    def extend(self, other: "History") -> "History":
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))
        return self


class _ShuffledEpochs:
    """One pass over the shuffled training set per epoch: the batches :func:`train` feeds :func:`fit`,
    and what each epoch adds to the :class:`History` (its time, train and test accuracy)."""

    def __init__(self, model: Classifier, data, config: TrainConfig, generator: torch.Generator,
                 history: History, on_batch: Callable[[History], None] | None):
        self.model, self.data, self.config, self.generator = model, data, config, generator
        self.history, self.on_batch = history, on_batch
        self.device = next(model.parameters()).device
        self.x_train, self.y_train = data.x_train.to(self.device), data.y_train.to(self.device)
        self.n_batches = math.ceil(len(self.y_train) / config.batch_size)
        self.order, self.correct, self.start = None, 0, 0.0

    def loss(self, iteration: int):
        """The cross-entropy of batch ``iteration`` (with the forward NFE where the model has an ODE block);
        the first batch of an epoch reshuffles the images."""
        batch = iteration % self.n_batches
        if batch == 0:
            self.model.train()
            self.order = torch.randperm(len(self.y_train), generator=self.generator).to(self.device)
            self.correct = 0
            synchronize(self.device)
            self.start = time.perf_counter()
        idx = self.order[batch * self.config.batch_size:(batch + 1) * self.config.batch_size]
        logits = self.model(self.x_train[idx])
        self.correct += int((logits.argmax(1) == self.y_train[idx]).sum())
        loss = F.cross_entropy(logits, self.y_train[idx])
        block = self.model.ode_block
        if block is None:
            return loss
        if block.penalty is not None:          # a regularised ODE-Net: λ_K·E_K + λ_J·E_J of this batch's paths
            self.history.penalty.append(float(block.penalty.detach()))
            loss = loss + block.penalty
        return loss, block.nfe_forward

    def after_step(self, iteration: int, log) -> None:
        """Record the batch (loss, NFE), and at an epoch's last batch its time and accuracies."""
        history, block = self.history, self.model.ode_block
        history.loss.append(log.losses[-1])
        if block is not None:
            history.nfe_forward.append(block.nfe_forward)
            history.nfe_backward.append(block.nfe_backward)
        if self.on_batch is not None:
            self.on_batch(history)
        if (iteration + 1) % self.n_batches == 0:
            synchronize(self.device)
            history.epoch_time.append(time.perf_counter() - self.start)
            history.train_accuracy.append(self.correct / len(self.y_train))
            history.test_accuracy.append(evaluate(self.model, self.data.x_test, self.data.y_test)["accuracy"])


def train(model: Classifier, data, config: TrainConfig | None = None, *, progress: bool = True,
          on_batch: Callable[[History], None] | None = None, history: History | None = None) -> History:
    """Train ``model`` on ``data`` (a :class:`~odeteach.data.digits.Digits`) with Adam and cross-entropy.

    Batches are shuffled with a generator seeded from ``config.seed`` (:func:`~odeteach.training.seed_everything`),
    so the same model, data and config always give the same run on one machine. The learning rate
    decays (cosine) to 0 over all batches. ``on_batch(history)`` is called after every batch (a live
    loss curve); the return value is the (extended) :class:`History`.
    """
    config = config or TrainConfig()
    check_images(data.x_train, data.y_train, "training data")
    history = history if history is not None else History()
    generator = seed_everything(config.seed)
    epochs = _ShuffledEpochs(model, data, config, generator, history, on_batch)
    desc = f"{model.kind} epoch 1/1" if config.epochs == 1 else f"{model.kind} epochs 1–{config.epochs}"
    fit(model, epochs.loss, config.epochs * epochs.n_batches, lr=config.lr, final_lr_fraction=0.0,
        weight_decay=config.weight_decay, desc=desc, progress=progress, on_step=epochs.after_step)
    model.eval()
    return history
