"""Saving and loading a model with its config, as safetensors + JSON. Nothing is pickled.

A checkpoint is a folder::

    model.safetensors   the state dict (tensors only, safe to load from anywhere)
    meta.json           {"model_config": {...}, ...anything else the caller adds}

so a model can always be rebuilt from its folder alone (as nanoGPT keeps
``model_args`` beside the weights, or diffusers a ``config.json``).
Both files are written to a temporary name and renamed into place, and the
JSON, written last, records the SHA-256 of the weights: a crash mid-save leaves
either the old checkpoint or a detectably incomplete one, never a silent mix.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from . import __version__
from .models import ModelConfig, model_from_state
from .utils import file_digest, resolve_device

WEIGHTS = "model.safetensors"
META = "meta.json"


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing, incomplete, corrupt or does not match its config."""


def _atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)``, then rename the temporary file over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    _atomic_write(path, lambda p: p.write_text(text))


def save(model: nn.Module, folder: str | Path, **meta) -> Path:
    """Write ``model`` (which must carry ``.config``) and ``meta`` to ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "evals.json").unlink(missing_ok=True)  # evaluations of the weights being replaced
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    _atomic_write(folder / WEIGHTS, lambda p: save_file(state, str(p)))
    record = {
        "model_config": model.config.to_dict(),
        "genvae_version": __version__,
        "torch_version": torch.__version__,
        "weights_sha256": file_digest(folder / WEIGHTS),
        **meta,
    }
    text = json.dumps(record, indent=2, sort_keys=True)
    atomic_write_text(folder / META, text)
    return folder


def read_meta(folder: str | Path) -> dict:
    """The JSON sidecar of a checkpoint; :class:`CheckpointError` if absent or unreadable."""
    path = Path(folder) / META
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is not valid JSON ({e})") from None


def load(folder: str | Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model from ``meta.json`` and load its weights. Returns ``(model, meta)``.

    The model comes back in eval mode, on ``map_location`` (a name such as ``"cuda:1"`` or a
    :class:`torch.device`): its tensors are loaded there directly, with no model built and randomly
    initialised first (so loading leaves torch's global RNG alone). Raises ``ValueError`` for a device
    that this machine does not have, and :class:`CheckpointError` on any mismatch: missing file, bad
    checksum, unreadable tensors, wrong shapes.
    """
    device = resolve_device(map_location)
    folder = Path(folder)
    meta = read_meta(folder)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"{weights} is missing")
    if file_digest(weights) != meta.get("weights_sha256"):
        raise CheckpointError(f"{weights} does not match the checksum recorded in {META}")
    try:
        cfg = ModelConfig.from_dict(meta["model_config"])
        # Read on the CPU, then copied once to the device: a fresh allocation is aligned as the kernels
        # expect (safetensors' own tensors are not, and CPU convolutions then round differently).
        state = {k: v.to(device, copy=True) for k, v in load_file(str(weights)).items()}
        model = model_from_state(cfg, state)
    except (KeyError, TypeError, ValueError, RuntimeError, SafetensorError) as e:
        raise CheckpointError(f"{folder} cannot be loaded: {type(e).__name__}: {e}") from None
    return model.eval(), meta
