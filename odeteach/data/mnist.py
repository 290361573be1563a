"""Real MNIST from the standard IDX files, for those who have them or opt in to download them.

The lesson's default data are the 8×8 digits (:mod:`odeteach.data.digits`), which need no
download. MNIST is the paper's data set (Chen et al. 2018, Table 1); to use it, put the four
files of http://yann.lecun.com/exdb/mnist/ (gzipped or not) in a folder and call
``load_mnist(folder)``, or opt in to a download with ``load_mnist(folder, download=True)``.
Nothing is ever downloaded without that explicit ``download=True`` (or ``download_mnist``).

The IDX format: two zero bytes, a type code (0x08 = unsigned byte …), the number of
dimensions n, then n big-endian 32-bit sizes, then the values in C order, big-endian.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import torch

from .digits import Digits

__all__ = ["load_mnist", "download_mnist", "read_idx", "write_idx", "MNISTFormatError", "MNISTDownloadError",
           "FILES", "MIRRORS", "MD5"]

# The four files, by role, without their optional ".gz".
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# Where download_mnist looks, in order (the first is the mirror torchvision uses).
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
# MD5 of the gzipped files as published (the same sums torchvision checks).
MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# IDX type code -> numpy dtype (big-endian where it matters).
_IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_GZIP_MAGIC = b"\x1f\x8b"
_PIXEL_MAX = 255.0
_CHUNK = 1 << 16


class MNISTFormatError(ValueError):
    """An IDX file that is truncated, corrupt, or not what MNIST's file of that name holds."""


class MNISTDownloadError(RuntimeError):
    """The opt-in download could not fetch or verify a file."""


# --------------------------------------------------------------------------------------------
# The IDX format


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise MNISTFormatError(f"{path} is a gzip file that cannot be decompressed ({exc}); it is probably "
                               "truncated or corrupt. Delete it and copy or download it again.") from exc


def read_idx(path) -> np.ndarray:
    """The array stored in one IDX file (gzipped or plain), checked against its own header."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise MNISTFormatError(f"{path} has only {len(data)} bytes, less than an IDX header (4 bytes); it is truncated.")
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or type_code not in _IDX_TYPES or ndim == 0:
        raise MNISTFormatError(f"{path} does not start with an IDX header (got bytes {data[:4].hex(' ')}; expected "
                               "00 00, a type code such as 08, and the number of dimensions). Is it an MNIST file?")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MNISTFormatError(f"{path} is truncated inside its header: {ndim} dimensions need {header} bytes, "
                               f"the file holds {len(data)}.")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _IDX_TYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header
    if found != expected:
        what = "truncated" if found < expected else "longer than its header says"
        raise MNISTFormatError(f"{path} is {what}: its header promises shape {shape} ({expected} bytes of data), "
                               f"but it holds {found} bytes. Delete it and copy or download it again.")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path, array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file (gzipped when ``compress`` or the name ends in ``.gz``)."""
    path = Path(path)
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in _IDX_TYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(f"IDX stores {sorted(str(d) for d in codes)}; got dtype {array.dtype}.")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"IDX stores arrays of 1 to 255 dimensions; got {array.ndim}.")
    code = codes[native]
    payload = (struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
               + np.ascontiguousarray(array, dtype=_IDX_TYPES[code]).tobytes())
    if compress or (compress is None and path.suffix == ".gz"):
        payload = gzip.compress(payload)
    path.write_bytes(payload)
    return path


# --------------------------------------------------------------------------------------------
# Finding, downloading and loading the four files


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _missing_message(folder: Path, missing: list[str]) -> str:
    return (f"MNIST files missing in {folder}: {', '.join(missing)} (plain or .gz). "
            f"Copy the four IDX files of MNIST there, or opt in to a download (about 11 MB) with "
            f"load_mnist({str(folder)!r}, download=True) or download_mnist({str(folder)!r}). "
            "The lesson's default data, odeteach.data.digits.load_digits(), needs no download.")


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url: str, target: Path, *, timeout: float, progress: bool) -> None:
    from ..progress import progress as progress_bar

    part = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            total = response.headers.get("Content-Length") if hasattr(response, "headers") else None
            with progress_bar(total=int(total) if total else None, unit="B", unit_scale=True, desc=target.name,
                              enabled=progress) as bar:
                for block in iter(lambda: response.read(_CHUNK), b""):
                    out.write(block)
                    bar.update(len(block))
        os.replace(part, target)
    finally:
        if part.exists():
            part.unlink()


def download_mnist(folder, *, mirrors=MIRRORS, md5=MD5, progress: bool = True, timeout: float = 30.0) -> Path:
    """Download the four gzipped MNIST files into ``folder`` (an explicit opt-in), with a progress bar.

    Files already there (plain or .gz) are kept. Each download is checked against its published
    MD5 (``md5=None`` skips the check). Raises :class:`MNISTDownloadError` naming every URL tried
    when a file cannot be fetched, e.g. on a machine without internet access.
    """
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    for stem in FILES.values():
        if _find(folder, stem) is not None:
            continue
        name = stem + ".gz"
        target = folder / name
        tried = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + name
            try:
                _fetch(url, target, timeout=timeout, progress=progress)
            except Exception as exc:  # any network or file error: try the next mirror
                tried.append(f"{url} ({type(exc).__name__}: {exc})")
                continue
            if md5 is not None and name in md5 and _md5(target) != md5[name]:
                target.unlink()
                tried.append(f"{url} (downloaded, but its MD5 does not match the published {md5[name]})")
                continue
            break
        else:
            raise MNISTDownloadError(f"could not download {name} into {folder}. Tried: " + "; ".join(tried)
                                     + ". Without internet access, copy the four MNIST IDX files into that folder "
                                     "by hand, or use the 8×8 digits (odeteach.data.digits.load_digits()).")
    return folder


def load_mnist(folder, *, download: bool = False, device="cpu", progress: bool = True) -> Digits:
    """MNIST's 60 000 training and 10 000 test images from ``folder``, as ``(N, 1, 28, 28)`` in [0, 1].

    With ``download=True`` missing files are downloaded first (see :func:`download_mnist`);
    otherwise missing files raise ``FileNotFoundError`` naming the folder and the opt-in.
    """
    folder = Path(folder).expanduser()
    if download:
        download_mnist(folder, progress=progress)
    found = {role: _find(folder, stem) for role, stem in FILES.items()}
    missing = [FILES[role] for role, path in found.items() if path is None]
    if missing:
        raise FileNotFoundError(_missing_message(folder, missing))
    arrays = {role: read_idx(path) for role, path in found.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        image_path, label_path = found[f"{split}_images"], found[f"{split}_labels"]
        if images.ndim != 3 or images.dtype != np.uint8:
            raise MNISTFormatError(f"{image_path} should hold images (N, rows, cols) of unsigned bytes; "
                                   f"it holds {images.dtype} of shape {images.shape}.")
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise MNISTFormatError(f"{label_path} should hold labels (N,) of unsigned bytes; "
                                   f"it holds {labels.dtype} of shape {labels.shape}.")
        if len(images) != len(labels):
            raise MNISTFormatError(f"{image_path} holds {len(images)} images but {label_path} holds {len(labels)} labels.")
        if labels.size and labels.max() > 9:
            raise MNISTFormatError(f"{label_path} holds label {int(labels.max())}; MNIST labels are 0…9.")
    to_images = lambda a: torch.from_numpy(a.astype(np.float32) / _PIXEL_MAX)[:, None].to(device)  # noqa: E731
    to_labels = lambda a: torch.from_numpy(a.astype(np.int64)).to(device)  # noqa: E731
    return Digits(to_images(arrays["train_images"]), to_labels(arrays["train_labels"]),
                  to_images(arrays["test_images"]), to_labels(arrays["test_labels"]))
