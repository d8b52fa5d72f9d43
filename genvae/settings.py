"""Where things live and how hard to work: data root, model cache, quick mode, device.

Every knob here is an environment variable, so a notebook, a test and the CLI
all see the same values without passing them around.

=====================  ====================================================  ==============================
variable               meaning                                               default
=====================  ====================================================  ==============================
``GENVAE_DATA``        data root in torchvision's layout                     ``~/.cache/genvae/data``
``GENVAE_CACHE``       trained-model cache                                   ``~/.cache/genvae/models``
``GENVAE_QUICK``       ``1`` = few epochs on a data subset (CI)              off (full mode)
``GENVAE_DEVICE``      ``cpu``, ``cuda``, ``mps``...                         CUDA, then MPS, then CPU
``GENVAE_CUDA_GRAPH``  ``0`` = no CUDA-graph replay of the step              on (CUDA only)
``GENVAE_PRECISION``   ``fp32`` or ``bf16`` for the book's recipes           see :func:`training_precision`
``GENVAE_DATASET``     the book's data set (``fashion-mnist``...)            ``mnist``
``GENVAE_WIDGETS``     ``1``/``0``: ipywidgets or none (sliders, bars)       auto: live Jupyter only
=====================  ====================================================  ==============================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
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


def env_flag(name: str, default: bool | None, env: Mapping[str, str] | None = None, choices: str = "1 or 0"
             ) -> bool | None:
    """The yes/no environment variable ``name`` (of ``env``, default ``os.environ``): ``default`` when unset,
    or set to ``auto`` where the default is ``None`` (decide later); ``ValueError`` naming ``choices`` otherwise."""
    value = (os.environ if env is None else env).get(name, "").strip().lower()
    if not value or (default is None and value == "auto"):
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={value!r} is not understood; use {choices}")


def quick_mode() -> bool:
    """True when ``GENVAE_QUICK`` asks for the small CI-sized settings."""
    return env_flag("GENVAE_QUICK", False)


def book_dataset() -> str:
    """The data set the book's chapters and ``genvae reproduce`` use: ``GENVAE_DATASET``, else ``"mnist"``."""
    return os.environ.get("GENVAE_DATASET", "").strip() or "mnist"


def cuda_graphs_enabled() -> bool:
    """Replay the training step as a CUDA graph on CUDA devices (``GENVAE_CUDA_GRAPH``, default on)."""
    return env_flag("GENVAE_CUDA_GRAPH", True)


def pick(full, quick):
    """Return ``quick`` in quick mode, else ``full`` (for notebook parameter cells)."""
    return quick if quick_mode() else full


DEVICE_TYPES = ("cpu", "cuda", "mps")


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def available_devices() -> list[str]:
    """The device types of :data:`DEVICE_TYPES` that this machine has, e.g. ``["cpu"]`` or ``["cpu", "cuda"]``."""
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) + (["mps"] if _mps_available() else [])


def resolve_device(device: "torch.device | str | None" = None, source: str = "device") -> torch.device:
    """``device`` as a ``torch.device`` (:func:`default_device` for ``None``), if this machine has it.

    Accepts ``"cpu"``, ``"cuda"``, ``"cuda:N"`` and ``"mps"``; anything else, or a device this machine lacks,
    raises ``ValueError`` naming the choices and those available here (``source`` names where the value came
    from, e.g. ``"--device"``), instead of torch's list of every device type it knows.
    """
    if device is None:
        return default_device()
    here = ", ".join(available_devices())
    text = str(device).strip()
    what = f"{source}={text!r}" if source.isupper() else f"{source} {text!r}".strip()  # GENVAE_DEVICE='x', device 'x'
    try:
        dev = torch.device(text) if isinstance(device, str) else device
    except (RuntimeError, ValueError):
        dev = None
    if not isinstance(dev, torch.device) or dev.type not in DEVICE_TYPES:
        raise ValueError(f"{what} is not a device: choose cpu, cuda or mps (available here: {here})")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{what} is not available: this machine has no CUDA GPU (available here: {here})")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        n = torch.cuda.device_count()
        raise ValueError(f"{what} is not available: this machine has {n} CUDA GPU{'s' if n > 1 else ''} "
                         f"(cuda:0{f' to cuda:{n - 1}' if n > 1 else ''})")
    if dev.type == "mps" and not _mps_available():
        raise ValueError(f"{what} is not available: this machine has no Apple MPS (available here: {here})")
    return dev


def default_device() -> torch.device:
    """``GENVAE_DEVICE`` if set (checked by :func:`resolve_device`), else CUDA, then Apple MPS, then CPU."""
    env = os.environ.get("GENVAE_DEVICE", "").strip()
    if env:
        return resolve_device(env, source="GENVAE_DEVICE")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
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


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one (a container or ``taskset``
    limit), else the core count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def available_memory() -> int | None:
    """Bytes of memory that new processes can use now (Linux ``MemAvailable``; else the physical memory
    where ``sysconf`` says), or ``None`` where neither is known."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


RESUME_SHARE = 0.05


def resume_share() -> float:
    """The most of a training's time that writing its resume states may take (``GENVAE_RESUME_SHARE``, default
    :data:`RESUME_SHARE`): a state is written after an epoch only when the training since the last one took at
    least the last write's time divided by this share. ``0`` writes one after every epoch. On a GPU an epoch can
    take a fifth of a second and a state 30 ms (benchmarks/RESULTS.md, section "The resume state written after
    each epoch"): a state every epoch would cost 10% of the training."""
    value = os.environ.get("GENVAE_RESUME_SHARE")
    if value is None or value.strip() == "":
        return RESUME_SHARE
    try:
        share = float(value)
    except ValueError:
        share = -1.0
    if not 0.0 <= share < 1.0:
        raise ValueError(f"GENVAE_RESUME_SHARE={value!r} is not understood; use a fraction from 0 (a state after "
                         "every epoch) to below 1, such as 0.05")
    return share
