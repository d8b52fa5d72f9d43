"""Saving and loading a model with its config, as safetensors + JSON. Nothing is pickled.

A checkpoint is a folder::

    model.safetensors   the state dict (tensors only, safe to load from anywhere)
    meta.json           {"model_config": {...}, ...anything else the caller adds}

so a model can always be rebuilt from its folder alone (as nanoGPT keeps
``model_args`` beside the weights, or diffusers a ``config.json``).
Both files are written to a temporary name and renamed into place, and the
JSON, written last, records the SHA-256 of the weights: a crash mid-save leaves
either the old checkpoint or a detectably incomplete one, never a silent mix.

:func:`load` refuses, with a :class:`CheckpointError` naming the file and the
problem, every folder it cannot trust: a sidecar that is missing, not JSON or
lacks a required field (:data:`REQUIRED`); weights that are missing, empty,
truncated, not safetensors at all (a ``torch.save`` pickle, a text file), changed
since they were saved (their SHA-256), or whose tensors do not fit the
configuration; a configuration other than the one asked for. The weights are
read only by safetensors, whose header is JSON: nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Iterable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .. import __version__
from ..models import ModelConfig, build_model, model_from_state
from ..settings import resolve_device
from ..utils import file_digest

WEIGHTS = "model.safetensors"
META = "meta.json"
EVALS = "evals.json"  # evaluations kept with the weights (genvae.storage.evals.cached_eval), removed when they change
REQUIRED = ("model_config", "weights_sha256")  # the sidecar fields every checkpoint needs


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing, incomplete, corrupt or does not match its config."""


def _file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file here: 0o666 less the process's umask."""
    mask = os.umask(0o022)  # reading the umask means setting it; it is put back at once
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()  # read once, at import, before any thread of ours runs


def _atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)``, then rename the temporary file over ``path``.

    The file gets the umask's usual mode (mkstemp makes it 0600, which would hide a shared cache
    from everyone but its owner)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    _atomic_write(path, lambda p: p.write_text(text))


def save(model: nn.Module, folder: str | Path, **meta) -> Path:
    """Write ``model`` (which must carry ``.config``) and ``meta`` to ``folder``.

    If a write fails (a read-only folder, a full disk), the error propagates and no half checkpoint
    stays behind: new weights without their sidecar are removed, and so is a folder this call made.
    """
    folder = Path(folder)
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        (folder / EVALS).unlink(missing_ok=True)  # evaluations of the weights being replaced
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
        try:
            atomic_write_text(folder / META, text)
        except BaseException:
            # New weights beside no sidecar, or beside the old one, would be half a checkpoint: remove both.
            for name in (WEIGHTS, META):
                _try(lambda: (folder / name).unlink(missing_ok=True))
            raise
    except BaseException:
        if made:
            _try(folder.rmdir)  # only if empty
        raise
    return folder


def _try(action) -> None:
    """Run a clean-up step that may itself fail on a broken disk; the original error matters more."""
    try:
        action()
    except OSError:
        pass


class JSONFileError(CheckpointError):
    """A JSON file that :func:`read_json_object` cannot use. ``reason`` says why: ``"missing"``,
    ``"unreadable"`` (an error of the disk or of permissions), ``"invalid"`` (not UTF-8 text of JSON) or
    ``"not an object"``; ``cause`` is the exception behind it (``None`` for ``"not an object"``)."""

    def __init__(self, message: str, reason: str, cause: Exception | None = None):
        super().__init__(message)
        self.reason, self.cause = reason, cause


def read_json_object(path: str | Path) -> dict:
    """The JSON object (named fields) in the file ``path``: the one reader of genvae's JSON sidecars
    (a checkpoint's :data:`META`, a resume state's index). :class:`JSONFileError`, naming the file, when
    it is missing, cannot be read, is not JSON, or holds another JSON value than an object."""
    path = Path(path)
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise JSONFileError(f"{path} is missing", "missing", e) from None
    except ValueError as e:  # not JSON, not UTF-8 (UnicodeDecodeError), a number JSON refuses to convert
        raise JSONFileError(f"{path} is not valid JSON ({e})", "invalid", e) from None
    except OSError as e:
        raise JSONFileError(f"{path} cannot be read ({e.strerror or e})", "unreadable", e) from None
    if not isinstance(value, dict):
        raise JSONFileError(f"{path} holds a JSON {type(value).__name__}, not an object of named fields",
                            "not an object")
    return value


def read_meta(folder: str | Path, required: Iterable[str] = REQUIRED) -> dict:
    """The JSON sidecar of a checkpoint; :class:`CheckpointError` if it is absent, unreadable, not a JSON
    object (see :func:`read_json_object`), or lacks one of the ``required`` fields."""
    path = Path(folder) / META
    required = tuple(required)
    meta = read_json_object(path)
    missing = [f for f in required if f not in meta]
    if missing:
        raise CheckpointError(f"{path} lacks the field{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                              f"(required: {', '.join(required)})")
    return meta


_MAX_HEADER = 100_000_000  # bytes; safetensors refuses larger headers too


def _sniff(head: bytes) -> str | None:
    """What a file that is not safetensors looks like from its first bytes, if we can tell."""
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive, which is what torch.save writes (a pickle inside)"
    # PROTO 2-5, then an opcode (never a zero byte); a safetensors length this short has a zero there.
    if len(head) >= 3 and head[0] == 0x80 and 2 <= head[1] <= 5 and head[2] != 0:
        return "a Python pickle"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if all(c.isprintable() or c in "\t\r\n" for c in text):
        return f"a text file (it begins {text[:24]!r})"
    return None


def read_header(path: str | Path) -> dict[str, dict]:
    """The tensor table of a safetensors file, ``{name: {"dtype", "shape", "data_offsets"}}``,
    after checking that the file is safetensors and holds every byte its header promises.

    Only the 8-byte length and the JSON header are read. :class:`CheckpointError` names the
    problem: an empty file, another format (a ``torch.save`` pickle, a text file), a truncated
    file, a damaged header.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes), not a safetensors file")
    with open(path, "rb") as f:
        head = f.read(64)
        n = struct.unpack("<Q", head[:8])[0] if size >= 8 else -1
        # safetensors: an 8-byte little-endian header length, then a JSON object, then the tensors' bytes
        plausible = 0 <= n <= min(size - 8, _MAX_HEADER) and head[8:9] == b"{"
        other = None if plausible else _sniff(head)
        if other is not None:
            raise CheckpointError(f"{path} is not a safetensors file: it is {other}. genvae reads weights only "
                                  "from safetensors and never unpickles a file")
        if size < 8:
            raise CheckpointError(f"{path} is truncated: {size} bytes, fewer than a safetensors header's 8")
        if n > _MAX_HEADER:
            raise CheckpointError(f"{path} is not a safetensors file (its first 8 bytes give a header of {n} bytes "
                                  f"in a file of {size})")
        if 8 + n > size:
            raise CheckpointError(f"{path} is truncated: its header needs {n} bytes, the file has {size - 8} "
                                  "after the header length")
        f.seek(8)
        raw = f.read(n)
    try:
        header = json.loads(raw)
        tensors = {k: v for k, v in header.items() if k != "__metadata__"}
        end = max((int(v["data_offsets"][1]) for v in tensors.values()), default=0)
        for v in tensors.values():
            v["shape"] = [int(d) for d in v["shape"]]
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        raise CheckpointError(f"{path} has a damaged safetensors header ({type(e).__name__}: {e})") from None
    if 8 + n + end > size:
        raise CheckpointError(f"{path} is truncated: its tensors need {8 + n + end} bytes, the file has {size} "
                              f"({8 + n + end - size} missing)")
    if 8 + n + end < size:
        raise CheckpointError(f"{path} has {size - 8 - n - end} unexpected bytes after its last tensor")
    return tensors


def config_differences(found: dict, wanted: dict, where: str, other: str) -> str:
    """``"latent_dim is 3 in meta.json, 2 asked for; ..."`` over the fields that differ."""
    keys = sorted(set(found) | set(wanted))
    return "; ".join(f"{k} is {found.get(k, '(absent)')!r} in {where}, {wanted.get(k, '(absent)')!r} {other}"
                     for k in keys if found.get(k) != wanted.get(k))


def _listing(items: list[str], limit: int = 3) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _check_fit(tensors: dict[str, dict], model: nn.Module, weights: Path) -> None:
    """:class:`CheckpointError` unless the file's tensors have exactly the names and shapes of ``model``'s."""
    expected = {k: list(v.shape) for k, v in model.state_dict().items()}
    found = {k: v["shape"] for k, v in tensors.items()}
    problems = []
    wrong = [f"{k} is {tuple(found[k])} in the file, {tuple(expected[k])} in the model"
             for k in expected if k in found and found[k] != expected[k]]
    if wrong:
        problems.append(f"shapes differ: {_listing(wrong)}")
    missing = [k for k in expected if k not in found]
    if missing:
        problems.append(f"missing tensors: {_listing(missing)}")
    unexpected = sorted(k for k in found if k not in expected)
    if unexpected:
        problems.append(f"unexpected tensors: {_listing(unexpected)}")
    if problems:
        raise CheckpointError(f"{weights} does not fit the model_config in {weights.parent / META}: "
                              + "; ".join(problems))


def load(folder: str | Path, map_location: str | torch.device = "cpu", *,
         config: ModelConfig | None = None, required: Iterable[str] = REQUIRED) -> tuple[nn.Module, dict]:
    """Rebuild the model from ``meta.json`` and load its weights. Returns ``(model, meta)``.

    The model comes back in eval mode, on ``map_location`` (a name such as ``"cuda:1"`` or a
    :class:`torch.device`): its tensors are loaded there directly, with no model built and randomly
    initialised first (so loading leaves torch's global RNG alone). ``config``, when given, must equal
    the sidecar's ``model_config``; ``required`` are the sidecar fields the caller needs (at least
    :data:`REQUIRED`). Raises ``ValueError`` for a device that this machine does not have, and
    :class:`CheckpointError`, naming the file and the problem, on any mismatch: a missing file or
    field, a file that is not safetensors or is truncated, a bad checksum, another configuration than
    ``config``, tensors that do not fit the configuration.
    """
    device = resolve_device(map_location)
    folder = Path(folder)
    meta_path = folder / META
    meta = read_meta(folder, required=tuple(dict.fromkeys((*REQUIRED, *required))))
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"{weights} is missing")
    try:
        tensors = read_header(weights)
        digest = file_digest(weights)
    except OSError as e:  # a disk error, no permission...
        raise CheckpointError(f"{weights} cannot be read ({e.strerror or e})") from None
    if digest != meta["weights_sha256"]:
        raise CheckpointError(f"{weights} does not match the checksum (SHA-256) recorded in {meta_path}: "
                              "the weights were changed or damaged after they were saved")
    try:
        cfg = ModelConfig.from_dict(meta["model_config"])
    except (TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{meta_path} has an invalid model_config ({e})") from None
    if config is not None and cfg != config:
        raise CheckpointError(f"{meta_path} describes another model than the one asked for: "
                              + config_differences(cfg.to_dict(), config.to_dict(), META, "asked for"))
    with torch.device("meta"):  # shapes only: no memory, no random draws
        _check_fit(tensors, build_model(cfg), weights)
    try:
        # Read on the CPU, then copied once to the device: a fresh allocation is aligned as the kernels
        # expect (safetensors' own tensors are not, and CPU convolutions then round differently).
        state = {k: v.to(device, copy=True) for k, v in load_file(str(weights)).items()}
        model = model_from_state(cfg, state)
    except (KeyError, TypeError, ValueError, RuntimeError, SafetensorError) as e:
        raise CheckpointError(f"{folder} cannot be loaded: {type(e).__name__}: {e}") from None
    return model.eval(), meta


def os_error_reason(e: OSError) -> str:
    """``"Read-only file system: '/path'"`` from an OSError, whatever way it was raised."""
    text = e.strerror or str(e) or type(e).__name__
    return f"{text}: {str(e.filename)!r}" if e.filename else text
