"""Evaluations kept with a trained model: :func:`cached_eval` computes one once and stores it in the model's
cache entry (``evals.json`` beside the weights), so that rebuilding the book with every model cached stays fast.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from . import checkpoint
from .cache import CacheWarning, TrainedModel

EVALS = checkpoint.EVALS
SECONDS_LOG = "eval-seconds.jsonl"  # at the cache root: one line per evaluation computed (not per one read back)


def _fingerprint(value) -> str:
    """A stable text for an argument: tensors by a digest of their bytes, modules (a judge network passed to an
    evaluation) by their class and a digest of every parameter and buffer, everything else by repr."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        return f"tensor{tuple(t.shape)}:{t.dtype}:{hashlib.sha256(t.numpy().tobytes()).hexdigest()[:16]}"
    if isinstance(value, torch.nn.Module):
        digest = hashlib.sha256()
        for name, t in sorted(value.state_dict().items()):
            digest.update(name.encode())
            digest.update(_fingerprint(t).encode())
        return f"module:{type(value).__qualname__}:{digest.hexdigest()[:16]}"
    return repr(value)


def eval_version(version: int):
    """Decorator: the version of an evaluation kept by :func:`cached_eval`. Its own source is part of the key
    already; bump the version when something it calls changes what it returns."""
    def mark(fn):
        fn.cache_version = version
        return fn
    return mark


def cached_eval(trained: TrainedModel, fn, *args, **kwargs):
    """``fn(trained.model, *args, **kwargs)``, computed once and kept in the model's cache entry.

    For evaluations that cost more than loading the model (an IWAE bound with
    k = 1000 importance samples, say), so that a rebuild with every model cached
    stays fast. The key covers the call (the function's name, the tensor arguments by a digest of their
    bytes, the other arguments) and the function's version: a digest of its own source and its
    ``cache_version`` (:func:`eval_version`; 0 when unset). A change to any of them computes anew, and the
    result kept for the same call under an older version is dropped, so stale results do not pile up.
    Editing another part of the package recomputes nothing: a helper whose change alters a result is
    covered by bumping the version of the evaluations that call it.

    Results must be numbers or JSON containers of numbers that come back from JSON unchanged (dicts with
    text keys, lists, no tuples); anything else, and any non-finite number, is returned but not kept, with a
    :class:`CacheWarning`. Nothing is kept for a model the cache could not keep
    (``trained.saved`` false), and a folder that cannot be written only costs a warning.
    """
    call = {"fn": f"{fn.__module__}.{fn.__qualname__}", "args": [_fingerprint(a) for a in args],
            "kwargs": {k: _fingerprint(v) for k, v in sorted(kwargs.items())}}
    version = {"code": hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()[:16],
               "version": getattr(fn, "cache_version", 0)}
    key = json.dumps({**call, **version}, sort_keys=True)
    path = trained.path / EVALS
    store = _read_evals(path) if trained.saved else {}
    if key in store:
        return store[key]
    t0 = time.perf_counter()
    value = fn(trained.model, *args, **kwargs)
    seconds = time.perf_counter() - t0
    problem = _not_keepable(value)
    if problem:
        warnings.warn(f"{fn.__qualname__} of {trained.name} {problem}; returned but not cached", CacheWarning,
                      stacklevel=2)
    elif trained.saved:
        try:
            # Chapters side by side evaluate the same model: read the file again under a lock, so that what another
            # process kept while this one computed is not written over with the older contents read above.
            with _entry_locked(trained.path):
                store = {k: v for k, v in _read_evals(path).items() if not _same_call(k, call)}  # older versions
                store[key] = value
                checkpoint.atomic_write_text(path, json.dumps(store, indent=1, sort_keys=True, allow_nan=False))
        except OSError as e:
            warnings.warn(f"cannot write {path} ({checkpoint.os_error_reason(e)}): {fn.__qualname__} of {trained.name} is returned "
                          "but not cached, so it will be computed again next time", CacheWarning, stacklevel=2)
        else:
            _log_seconds(trained.path.parent / SECONDS_LOG, trained.name, call["fn"], seconds)
    return value


@contextmanager
def _entry_locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on a cache entry's folder for the block (``flock`` on the folder itself, so the entry
    holds no lock file); other processes' :func:`cached_eval` on the same model wait for it. Where ``fcntl``
    does not exist (Windows), no lock: the file is still read again just before it is written."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _log_seconds(path: Path, model: str, fn: str, seconds: float) -> None:
    """Append what one evaluation cost to the cache's log (``benchmarks/run.py`` adds them up per evaluation, to
    show where a first build's time goes). One short line per ``write`` of a file opened to append, so chapters
    running side by side do not interleave their lines. Best effort: a log that cannot be written is skipped."""
    line = json.dumps({"model": model, "fn": fn, "seconds": round(seconds, 3)}) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def eval_seconds(root: Path) -> list[dict]:
    """The evaluations computed into the cache at ``root`` (:data:`SECONDS_LOG`): ``{"model", "fn", "seconds"}``
    each, oldest first; empty when there is no log. A line that does not parse (a write cut short) is skipped."""
    try:
        lines = (Path(root) / SECONDS_LOG).read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def _same_call(key: str, call: dict) -> bool:
    """Whether a kept result's key is ``call`` (same function and arguments), whatever version computed it."""
    try:
        kept = json.loads(key)
    except ValueError:
        return False
    return isinstance(kept, dict) and all(kept.get(k) == v for k, v in call.items())


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a finite number")


def _read_evals(path: Path) -> dict:
    """The kept evaluations of a model; empty when missing, unreadable or holding a non-finite number."""
    try:
        store = json.loads(path.read_text(), parse_constant=_refuse_constant)
    except (OSError, ValueError):  # missing, unreadable, not JSON, NaN or Infinity: start afresh
        return {}
    return store if isinstance(store, dict) else {}


def _not_keepable(value) -> str | None:
    """Why ``value`` cannot be kept in ``evals.json`` (non-finite, not JSON, changed by JSON), or None."""
    try:
        text = json.dumps(value, allow_nan=False)
    except ValueError:
        return f"is not finite ({value})"
    except TypeError as e:
        return f"is not made of JSON numbers, lists and dicts ({e})"
    if json.loads(text) != value:
        return "would come back from JSON changed (tuples become lists, dict keys become text)"
    return None
