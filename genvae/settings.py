"""Where things live and how hard to work: data root, model cache, quick mode, device.

Every knob here is an environment variable, so a notebook, a test and the CLI
all see the same values without passing them around.

=================  ==========================================  =========================
variable           meaning                                     default
=================  ==========================================  =========================
``GENVAE_DATA``    data root in torchvision's layout           ``~/.cache/genvae/data``
``GENVAE_CACHE``   trained-model cache                         ``~/.cache/genvae/models``
``GENVAE_QUICK``   ``1`` = few epochs on a data subset (CI)    off (full mode)
``GENVAE_DEVICE``  ``cpu``, ``cuda``, ``mps``...               CUDA, then MPS, then CPU
=================  ==========================================  =========================
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


def quick_mode() -> bool:
    """True when ``GENVAE_QUICK`` asks for the small CI-sized settings."""
    value = os.environ.get("GENVAE_QUICK", "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"GENVAE_QUICK={value!r} is not understood; use 1 or 0")


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
