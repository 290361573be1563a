"""The 8×8 digits: shapes, ranges, a fixed stratified split, clear errors."""

import pytest
import torch

from odeteach.data.digits import SPLIT_SEED, TEST_FRACTION, Digits, load_digits


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_shapes_and_ranges(digits):
    assert isinstance(digits, Digits)
    assert digits.x_train.shape[1:] == (1, 8, 8) and digits.x_test.shape[1:] == (1, 8, 8)
    assert len(digits.x_train) + len(digits.x_test) == 1797
    assert digits.x_train.dtype == torch.float32 and digits.y_train.dtype == torch.int64
    assert float(digits.x_train.min()) == 0.0 and float(digits.x_train.max()) == 1.0
    assert set(digits.y_test.tolist()) == set(range(10))


def test_split_is_stratified(digits):
    total = torch.bincount(torch.cat([digits.y_train, digits.y_test]), minlength=10)
    test = torch.bincount(digits.y_test, minlength=10)
    for n_class, n_test in zip(total.tolist(), test.tolist()):
        assert n_test == round(TEST_FRACTION * n_class)


def test_same_seed_same_split_other_seed_other_split(digits):
    again = load_digits(seed=SPLIT_SEED)
    assert torch.equal(again.x_test, digits.x_test) and torch.equal(again.y_train, digits.y_train)
    other = load_digits(seed=SPLIT_SEED + 1)
    assert not torch.equal(other.x_test, digits.x_test)


def test_train_and_test_are_disjoint(digits):
    # No test image is a training image at the same position of the original set: compare rows.
    train = {tuple(row) for row in digits.x_train.flatten(1).mul(16).round().int().tolist()}
    test = [tuple(row) for row in digits.x_test.flatten(1).mul(16).round().int().tolist()]
    # load_digits holds a handful of exact duplicate images; any overlap must be that small.
    assert sum(row in train for row in test) <= 3


@pytest.mark.parametrize("kwargs, error", [
    ({"seed": 1.5}, TypeError), ({"seed": True}, TypeError),
    ({"test_fraction": 0.0}, ValueError), ({"test_fraction": 1.0}, ValueError), ({"test_fraction": "x"}, ValueError),
])
def test_bad_arguments(kwargs, error):
    with pytest.raises(error):
        load_digits(**kwargs)


def test_to_device_keeps_values(digits):
    moved = digits.to("cpu")
    assert torch.equal(moved.x_train, digits.x_train)
    assert "train=1438" in repr(digits)
