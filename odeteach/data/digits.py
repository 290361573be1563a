"""scikit-learn's 8×8 handwritten digits as tensors, with one fixed, seeded train/test split.

The data (1797 images of the digits 0–9, 16 grey levels, from the UCI "Optical Recognition of
Handwritten Digits" set) ships inside scikit-learn, so nothing is downloaded. Pixels are scaled
from 0…16 to 0…1 and shaped ``(N, 1, 8, 8)`` like a one-channel image batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..validation import integer

__all__ = ["Digits", "load_digits", "SPLIT_SEED", "TEST_FRACTION"]

SPLIT_SEED = 0        # the split every lesson and test uses; change it and every number changes
TEST_FRACTION = 0.2   # 359 of the 1797 images are held out for testing
_MAX_PIXEL = 16.0     # load_digits stores 16 grey levels as 0…16


@dataclass(frozen=True)
class Digits:
    """A train/test split: images ``(N, 1, 8, 8)`` float32 in [0, 1], labels ``(N,)`` int64."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def __repr__(self) -> str:
        return (f"Digits(train={len(self.y_train)} images, test={len(self.y_test)} images, "
                f"shape {tuple(self.x_train.shape[1:])})")

    def to(self, device) -> "Digits":
        """The same split on ``device`` (e.g. ``"cuda"``)."""
        return Digits(*(tensor.to(device) for tensor in (self.x_train, self.y_train, self.x_test, self.y_test)))


def _stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a split that keeps each class's share (round(test_fraction · n_class) to test)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(test_fraction * len(idx)))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_digits(*, seed: int = SPLIT_SEED, test_fraction: float = TEST_FRACTION, device="cpu") -> Digits:
    """The 8×8 digits, split once with ``seed`` (stratified by class).

    The same ``seed`` always gives the same split, on any machine.
    """
    seed = integer("seed", seed, error=TypeError)
    if not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be a number strictly between 0 and 1; got {test_fraction!r}.")
    from sklearn.datasets import load_digits as _sklearn_load_digits

    bunch = _sklearn_load_digits()
    images = (bunch.images.astype(np.float32) / _MAX_PIXEL)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    train, test = _stratified_split(labels, test_fraction, seed)
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
    return Digits(as_tensor(images[train]), as_tensor(labels[train]), as_tensor(images[test]), as_tensor(labels[test]))
