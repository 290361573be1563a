"""The MNIST IDX loader on small files written here in the exact IDX format; the opt-in download."""

import gzip
import hashlib
import struct

import numpy as np
import pytest
import torch

from odeteach.data import mnist
from odeteach.data.mnist import (FILES, MNISTDownloadError, MNISTFormatError, download_mnist, load_mnist, read_idx,
                                 write_idx)

RNG = np.random.default_rng(7)
N_TRAIN, N_TEST, SIDE = 12, 5, 28


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX written by hand: 0x0000, type 0x08 (ubyte), ndim, big-endian uint32 sizes, the bytes."""
    assert array.dtype == np.uint8
    return bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape) + array.tobytes()


def make_set():
    return {
        "train_images": RNG.integers(0, 256, (N_TRAIN, SIDE, SIDE), dtype=np.uint8),
        "train_labels": RNG.integers(0, 10, N_TRAIN, dtype=np.uint8),
        "test_images": RNG.integers(0, 256, (N_TEST, SIDE, SIDE), dtype=np.uint8),
        "test_labels": RNG.integers(0, 10, N_TEST, dtype=np.uint8),
    }


def write_set(folder, arrays, gz):
    for role, array in arrays.items():
        payload = idx_bytes(array)
        name = FILES[role] + (".gz" if gz[role] else "")
        (folder / name).write_bytes(gzip.compress(payload) if gz[role] else payload)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Nothing in these tests may reach the internet: only file:// URLs are opened."""
    real = mnist.urllib.request.urlopen

    def guarded(url, *args, **kwargs):
        if not str(url).startswith("file:"):
            raise AssertionError(f"test tried to open {url}")
        return real(url, *args, **kwargs)

    monkeypatch.setattr(mnist.urllib.request, "urlopen", guarded)


@pytest.mark.parametrize("gz", [
    dict.fromkeys(FILES, True), dict.fromkeys(FILES, False),
    {"train_images": True, "train_labels": False, "test_images": False, "test_labels": True},
], ids=["gzipped", "plain", "mixed"])
def test_loads_what_was_written(tmp_path, gz):
    arrays = make_set()
    write_set(tmp_path, arrays, gz)
    data = load_mnist(tmp_path)
    assert data.x_train.shape == (N_TRAIN, 1, SIDE, SIDE) and data.x_test.shape == (N_TEST, 1, SIDE, SIDE)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    np.testing.assert_array_equal((data.x_train[:, 0] * 255).round().numpy().astype(np.uint8), arrays["train_images"])
    np.testing.assert_array_equal(data.y_test.numpy(), arrays["test_labels"])
    assert 0.0 <= float(data.x_test.min()) and float(data.x_test.max()) <= 1.0


@pytest.mark.parametrize("array", [
    np.arange(7, dtype=np.uint8), np.arange(24, dtype=np.int32).reshape(2, 3, 4) - 5,
    np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2), np.linspace(0, 1, 4, dtype=np.float64),
])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_write_idx_read_idx_round_trip(tmp_path, array, suffix):
    path = write_idx(tmp_path / f"a{suffix}", array)
    back = read_idx(path)
    assert back.shape == array.shape and back.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(back, array)


def test_write_idx_matches_hand_written_bytes(tmp_path):
    array = RNG.integers(0, 256, (3, 4, 5), dtype=np.uint8)
    assert write_idx(tmp_path / "x", array).read_bytes() == idx_bytes(array)


def test_missing_files_name_the_folder_and_the_opt_in(tmp_path):
    arrays = make_set()
    write_set(tmp_path, {k: v for k, v in arrays.items() if k != "test_labels"}, dict.fromkeys(FILES, True))
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message and "t10k-labels-idx1-ubyte" in message and "download=True" in message
    assert "train-images" not in message.split("(plain")[0]   # only the missing file is listed
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES[k] + ".gz" for k in arrays if k != "test_labels")


def test_empty_folder_is_not_downloaded_without_opt_in(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "download_mnist", lambda *a, **k: pytest.fail("downloaded without opt-in"))
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_mnist(tmp_path / "nothing")


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "plain"])
@pytest.mark.parametrize("cut", [3, 10, 100])
def test_truncated_files_raise_clear_errors(tmp_path, gz, cut):
    arrays = make_set()
    write_set(tmp_path, arrays, dict.fromkeys(FILES, gz))
    path = tmp_path / (FILES["train_images"] + (".gz" if gz else ""))
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(MNISTFormatError, match="truncated") as info:
        load_mnist(tmp_path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("payload, message", [
    (b"\x00\x00", "less than an IDX header"),
    (b"PK\x03\x04" + bytes(100), "does not start with an IDX header"),
    (bytes([0, 0, 0x08, 3, 0, 0, 0, 2]), "truncated inside its header"),
    (bytes([0, 0, 0x08, 1, 0, 0, 0, 2, 1, 2, 3]), "longer than its header says"),
    (b"\x1f\x8b" + bytes(30), "cannot be decompressed"),
])
def test_corrupt_files_raise_clear_errors(tmp_path, payload, message):
    path = tmp_path / "bad"
    path.write_bytes(payload)
    with pytest.raises(MNISTFormatError, match=message):
        read_idx(path)


@pytest.mark.parametrize("change, message", [
    ({"train_labels": np.zeros(N_TRAIN - 1, np.uint8)}, "labels"),
    ({"test_labels": np.full(N_TEST, 11, np.uint8)}, "MNIST labels are 0…9"),
    ({"test_images": np.zeros((N_TEST, SIDE * SIDE), np.uint8)}, "should hold images"),
])
def test_inconsistent_files_raise(tmp_path, change, message):
    arrays = {**make_set(), **change}
    write_set(tmp_path, arrays, dict.fromkeys(FILES, False))
    with pytest.raises(MNISTFormatError, match=message):
        load_mnist(tmp_path)


def local_mirror(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    write_set(mirror, make_set(), dict.fromkeys(FILES, True))
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in mirror.iterdir()}
    return mirror, md5


def test_opt_in_download_from_a_mirror(tmp_path):
    mirror, md5 = local_mirror(tmp_path)
    target = tmp_path / "data"
    download_mnist(target, mirrors=("file:///nonexistent-mirror/", mirror.as_uri() + "/"), md5=md5, progress=False)
    assert sorted(p.name for p in target.iterdir()) == sorted(md5)
    for name in md5:
        assert (target / name).read_bytes() == (mirror / name).read_bytes()
    assert load_mnist(target).x_train.shape == (N_TRAIN, 1, SIDE, SIDE)


def test_download_with_wrong_checksum_fails_and_leaves_nothing(tmp_path):
    mirror, md5 = local_mirror(tmp_path)
    wrong = {name: "0" * 32 for name in md5}
    target = tmp_path / "data"
    with pytest.raises(MNISTDownloadError, match="MD5 does not match"):
        download_mnist(target, mirrors=(mirror.as_uri() + "/",), md5=wrong, progress=False)
    assert list(target.iterdir()) == []


def test_unreachable_mirrors_fail_clearly(tmp_path):
    with pytest.raises(MNISTDownloadError) as info:
        download_mnist(tmp_path / "data", mirrors=("file:///no/such/mirror/",), progress=False)
    message = str(info.value)
    assert "file:///no/such/mirror/train-images-idx3-ubyte.gz" in message and "copy the four" in message
    assert not any((tmp_path / "data").iterdir())   # no partial file left behind
