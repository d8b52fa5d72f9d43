"""MNIST and Fashion-MNIST as in-memory tensors.

Both data sets are small enough (60,000 x 784 floats is 188 MB) to live in memory,
so training batches by index into one tensor instead of running a ``DataLoader``
with per-sample PIL transforms: that alone makes an epoch several times faster
on a laptop CPU.

The files live in ``<root>/<MNIST|FashionMNIST>/raw/`` (torchvision's own
layout, so torchvision can download them) and are parsed by :func:`read_idx`. Before anything
is parsed, every file is checked against its known MD5, so a truncated download
gives a clear error rather than garbage tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from .settings import data_root
from .utils import file_digest

__all__ = [
    "DATASETS",
    "DataError",
    "DataNotFoundError",
    "DataCorruptError",
    "ImageData",
    "load",
    "check",
    "binarize",
    "fixed_binarization",
    "read_idx",
]


class DataError(RuntimeError):
    """Base class for data problems (missing or corrupt files)."""


class DataNotFoundError(DataError, FileNotFoundError):
    """The data files are not on disk and could not be downloaded."""


class DataCorruptError(DataError):
    """A data file is on disk but its checksum does not match."""


@dataclass(frozen=True)
class _Spec:
    folder: str  # torchvision's class name, also the folder name under the root
    classes: tuple[str, ...]
    md5: dict[str, str]  # uncompressed file name -> md5

    @property
    def files(self) -> list[str]:
        return list(self.md5)


# MD5 of the *uncompressed* IDX files, the form torchvision leaves in raw/.
DATASETS: dict[str, _Spec] = {
    "mnist": _Spec(
        folder="MNIST",
        classes=tuple(str(d) for d in range(10)),
        md5={
            "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
            "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
            "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
            "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
        },
    ),
    "fashion-mnist": _Spec(
        folder="FashionMNIST",
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        md5={
            "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
            "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
            "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
        },
    ),
}


@dataclass
class ImageData:
    """A data set held in memory. Images are ``(N, 1, 28, 28)`` float32 in [0, 1]; labels ``(N,)`` int64."""

    name: str
    classes: tuple[str, ...]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor

    def __repr__(self) -> str:
        return (f"ImageData({self.name!r}, train={len(self.x_train)}, "
                f"val={len(self.x_val)}, test={len(self.x_test)})")


def _spec(name: str) -> _Spec:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(DATASETS)}") from None


def check(name: str = "mnist", root: str | Path | None = None) -> dict[str, str]:
    """Report each expected file as ``"ok"``, ``"missing"`` or ``"checksum mismatch"``."""
    spec = _spec(name)
    folder = Path(root or data_root()) / spec.folder / "raw"
    report = {}
    for fname, md5 in spec.md5.items():
        path = folder / fname
        if not path.is_file():
            report[fname] = "missing"
        else:
            report[fname] = "ok" if file_digest(path, "md5") == md5 else "checksum mismatch"
    return report


def _ensure_files(spec: _Spec, root: Path, download: bool) -> None:
    """Make sure the four files exist (downloading if allowed) and match their MD5."""
    folder = root / spec.folder / "raw"
    missing = [f for f in spec.files if not (folder / f).is_file()]
    reason = ""
    if missing and download:
        import torchvision  # imported here: it takes a second and most callers never download

        try:  # torchvision fetches and unpacks all four files into folder
            getattr(torchvision.datasets, spec.folder)(str(root), train=True, download=True)
        except Exception as e:  # no network, a mirror down, a full disk...
            reason = f"\nThe download failed: {type(e).__name__}: {e}"
        missing = [f for f in spec.files if not (folder / f).is_file()]
    if missing:
        raise DataNotFoundError(
            f"{spec.folder} was not found in {folder}.\n"
            f"Expected the four files {', '.join(spec.files)}; missing: {', '.join(missing)}."
            f"{reason}\nSet GENVAE_DATA to a folder holding {spec.folder}/raw/, "
            "or run once with internet access so torchvision can download it."
        )
    for fname, md5 in spec.md5.items():
        got = file_digest(folder / fname, "md5")
        if got != md5:
            raise DataCorruptError(
                f"{folder / fname} is corrupt or truncated: its MD5 is {got}, expected {md5}. "
                "Delete it and download it again."
            )


def read_idx(path: str | Path) -> torch.Tensor:
    """An IDX file of unsigned bytes (the format of MNIST and Fashion-MNIST) as a uint8 tensor.

    The format: two zero bytes, the type code 0x08 (unsigned byte), the number of
    dimensions, each size as a big-endian 32-bit integer, then the values. Read
    here directly: importing torchvision only to parse it takes longer than the
    parsing (about 1.5 s against 0.1 s on the 2-core machine).
    """
    path = Path(path)
    data = bytearray(path.stat().st_size)  # read straight into a writable buffer: one copy of the file in memory
    with open(path, "rb") as f:
        f.readinto(data)
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise DataCorruptError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(data) - offset != math.prod(shape):
        raise DataCorruptError(f"{path} holds {len(data) - offset} values, its header says {shape}")
    return torch.frombuffer(data, dtype=torch.uint8, offset=offset).reshape(shape)


@lru_cache(maxsize=4)
def _load_raw(name: str, root: Path, download: bool) -> tuple[torch.Tensor, ...]:
    spec = _spec(name)
    _ensure_files(spec, root, download)
    folder = root / spec.folder / "raw"
    out = []
    for prefix in ("train", "t10k"):
        images = read_idx(folder / f"{prefix}-images-idx3-ubyte")
        x = images.to(torch.float32).div_(255.0).unsqueeze(1)  # (N, 1, 28, 28) in [0, 1], no temporary
        out += [x, read_idx(folder / f"{prefix}-labels-idx1-ubyte").to(torch.int64)]
    return tuple(out)


def load(
    name: str = "mnist",
    *,
    val_size: int = 0,
    train_size: int | None = None,
    seed: int = 0,
    root: str | Path | None = None,
    download: bool = True,
) -> ImageData:
    """Load a data set into memory.

    Args:
        name: ``"mnist"`` or ``"fashion-mnist"``.
        val_size: images moved from the training set into a validation split.
        train_size: keep only this many training images (a seeded random subset).
        seed: seed of the validation split and the subset.
        root: data root; defaults to :func:`genvae.settings.data_root`.
        download: let torchvision download missing files.

    Raises:
        DataNotFoundError: files missing and not downloadable; names folder and files.
        DataCorruptError: a file's MD5 does not match.
    """
    root_path = Path(root).expanduser().resolve() if root else data_root()
    x_tr, y_tr, x_te, y_te = _load_raw(name, root_path, download)
    n = len(x_tr)
    if not 0 <= val_size < n:
        raise ValueError(f"val_size must be in [0, {n}), got {val_size}")
    if train_size is not None and not 0 < train_size <= n - val_size:
        raise ValueError(f"train_size must be in [1, {n - val_size}], got {train_size}")
    if not (val_size or train_size):  # the whole training set: share the cached tensors, copy nothing
        empty = x_tr[:0]
        return ImageData(name=name, classes=_spec(name).classes, x_train=x_tr, y_train=y_tr,
                         x_test=x_te, y_test=y_te, x_val=empty, y_val=y_tr[:0])
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    val_idx, train_idx = perm[:val_size], perm[val_size:]
    if train_size is not None:
        train_idx = train_idx[:train_size]
    return ImageData(
        name=name,
        classes=_spec(name).classes,
        x_train=x_tr[train_idx],
        y_train=y_tr[train_idx],
        x_test=x_te,
        y_test=y_te,
        x_val=x_tr[val_idx],
        y_val=y_tr[val_idx],
    )


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Stochastic binarisation: each pixel becomes 1 with probability equal to its intensity."""
    return torch.bernoulli(x, generator=generator)


def fixed_binarization(x: torch.Tensor, seed: int = 1234) -> torch.Tensor:
    """One reproducible binarisation of ``x``: how binarised test sets are evaluated everywhere."""
    return binarize(x, torch.Generator().manual_seed(seed))
