"""Where things live and how hard to work: data root, model cache, quick mode, device.

Every knob here is an environment variable, so a notebook, a test and the CLI
all see the same values without passing them around.

=====================  ===========================================  ==============================
variable               meaning                                      default
=====================  ===========================================  ==============================
``GENVAE_DATA``        data root in torchvision's layout            ``~/.cache/genvae/data``
``GENVAE_CACHE``       trained-model cache                          ``~/.cache/genvae/models``
``GENVAE_QUICK``       ``1`` = few epochs on a data subset (CI)     off (full mode)
``GENVAE_DEVICE``      ``cpu``, ``cuda``, ``mps``...                CUDA, then MPS, then CPU
``GENVAE_CUDA_GRAPH``  ``0`` = no CUDA-graph replay of the step     on (CUDA only)
``GENVAE_PRECISION``   ``fp32`` or ``bf16`` for the book's recipes  see :func:`training_precision`
``GENVAE_DATASET``     the book's data set (``fashion-mnist``...)   ``mnist``
=====================  ===========================================  ==============================
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def _default_home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "genvae"


def data_root() -> Path:
    """The folder holding ``MNIST/raw`` and ``FashionMNIST/raw`` (absolute)."""
    env = os.environ.get("GENVAE_DATA")
    return Path(env).expanduser().resolve() if env else _default_home() / "data"


def cache_root() -> Path:
    """The folder holding trained models, one sub-folder per cache entry (absolute)."""
    env = os.environ.get("GENVAE_CACHE")
    return Path(env).expanduser().resolve() if env else _default_home() / "models"


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={value!r} is not understood; use 1 or 0")


def quick_mode() -> bool:
    """True when ``GENVAE_QUICK`` asks for the small CI-sized settings."""
    return _flag("GENVAE_QUICK", False)


def book_dataset() -> str:
    """The data set the book's chapters and ``genvae reproduce`` use: ``GENVAE_DATASET``, else ``"mnist"``."""
    return os.environ.get("GENVAE_DATASET", "").strip() or "mnist"


def cuda_graphs_enabled() -> bool:
    """Replay the training step as a CUDA graph on CUDA devices (``GENVAE_CUDA_GRAPH``, default on)."""
    return _flag("GENVAE_CUDA_GRAPH", True)


def pick(full, quick):
    """Return ``quick`` in quick mode, else ``full`` (for notebook parameter cells)."""
    return quick if quick_mode() else full


def default_device() -> torch.device:
    """``GENVAE_DEVICE`` if set, else CUDA, then Apple MPS, then CPU."""
    env = os.environ.get("GENVAE_DEVICE")
    if env:
        return torch.device(env)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_has_native_bf16() -> bool:
    """True if this CPU does bf16 arithmetic in hardware (AVX-512 BF16 or AMX), read from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:  # not Linux: assume not
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def training_precision() -> str:
    """The precision of the book's training recipes on this machine: ``GENVAE_PRECISION`` if set, else
    ``"bf16"`` when the default device is a CPU with native bf16 (measured 1.4-1.7x faster per MLP epoch
    there, at the same test metrics; ``benchmarks/RESULTS.md``), else ``"fp32"``. Part of the cache key."""
    value = os.environ.get("GENVAE_PRECISION", "").strip().lower()
    if value:
        if value not in ("fp32", "bf16"):
            raise ValueError(f"GENVAE_PRECISION={value!r} is not understood; use fp32 or bf16")
        return value
    return "bf16" if default_device().type == "cpu" and cpu_has_native_bf16() else "fp32"
