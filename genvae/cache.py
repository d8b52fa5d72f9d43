"""The trained-model cache: ``load_or_train`` loads weights when it can, trains when it must.

An entry is named by a hash of everything that determines the weights: the
model config, the training config (data set, epochs, seed, beta...) and the
mode (quick or full), so a quick CI run can never overwrite a full-mode model.
Entries are checkpoint folders (see :mod:`genvae.checkpoint`) under
:func:`genvae.settings.cache_root`. A corrupt or mismatched entry is reported
with a warning and retrained, never silently used.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from . import checkpoint
from .models import ModelConfig
from .settings import cache_root, quick_mode, resolve_device
from .stack import fit_stack, stack_key
from .train import History, TrainConfig, train_model

CACHE_FORMAT = 2  # bump when the meaning of stored weights changes (2: the device-minded loop)


class CacheWarning(UserWarning):
    """A cache entry was unusable and is being retrained."""


@dataclass
class TrainedModel:
    """A trained model with everything known about how it was made."""

    name: str
    model: nn.Module  # in eval mode, on the default device (or the one asked for)
    model_config: ModelConfig
    train_config: TrainConfig  # as actually used (the quick version in quick mode)
    history: History
    metrics: dict[str, float]  # the last epoch's test metrics
    train_seconds: float
    path: Path
    from_cache: bool


# TrainConfig fields added after format 2: they enter the key only when they differ from their defaults,
# so that adding an option for new models does not orphan every model trained before it.
_LATE_FIELDS = ("adversarial", "adv_weight")


def cache_key(model_cfg: ModelConfig, train_cfg: TrainConfig, quick: bool) -> str:
    """16 hex digits of SHA-256 over the canonical JSON of both configs and the mode."""
    train = train_cfg.to_dict()
    for f in _LATE_FIELDS:
        if train[f] == TrainConfig.__dataclass_fields__[f].default:
            del train[f]
    blob = json.dumps(
        {"format": CACHE_FORMAT, "model": model_cfg.to_dict(), "train": train, "quick": quick},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def entry_path(name: str, key: str, cache_dir: str | Path | None = None) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name) or "model"
    return Path(cache_dir or cache_root()) / f"{slug}-{key}"


def _load_entry(path: Path, key: str, model_cfg: ModelConfig, train_cfg: TrainConfig,
                device: torch.device) -> tuple[nn.Module, dict]:
    model, meta = checkpoint.load(path, map_location=device)
    try:
        same = (meta.get("cache_key") == key and model.config == model_cfg
                and TrainConfig.from_dict(meta["train_config"]) == train_cfg)
    except (KeyError, TypeError, ValueError):
        same = False
    if not same:
        raise checkpoint.CheckpointError(f"{path} holds a different configuration than its name says")
    return model, meta


@dataclass(frozen=True)
class Request:
    """One model to load or train: a readable name and its full-mode recipe."""

    name: str
    model_config: ModelConfig
    train_config: TrainConfig


def load_or_train(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    *,
    name: str | None = None,
    **kwargs,
) -> TrainedModel:
    """Return the trained model for this config pair, from the cache or by training it.

    Args:
        model_cfg, train_cfg: what to build and how to train it (the full-mode recipe).
        name: a readable prefix for the cache folder (defaults to the model kind).
        **kwargs: see :func:`load_or_train_many` (``quick``, ``cache_dir``, ``device``,
            ``progress``, ``retrain``).
    """
    return load_or_train_many([Request(name or model_cfg.kind, model_cfg, train_cfg)], **kwargs)[0]


def load_or_train_many(
    requests: list[Request],
    *,
    quick: bool | None = None,
    cache_dir: str | Path | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    retrain: bool = False,
    stack: bool | None = None,
) -> list[TrainedModel]:
    """Return the trained model of every request, in order, from the cache or by training.

    Args:
        requests: what to load; see :class:`Request`.
        quick: quick mode; defaults to ``GENVAE_QUICK``. In quick mode each
            ``train_config.quick()`` is used and the cache keys differ.
        cache_dir: defaults to ``GENVAE_CACHE`` or ``~/.cache/genvae/models``.
        device: where to train, and where the returned models live; defaults to
            CUDA, then MPS, then CPU.
        progress: show a progress bar while training.
        retrain: ignore existing entries and overwrite them.
        stack: train the missing models that differ only in beta, gamma or seed
            together as one stacked model (:mod:`genvae.stack`). The default does
            so on CUDA, where it pays, and not on a CPU, where it does not (see
            ``benchmarks/RESULTS.md``). Either way every model is saved as its own entry.
    """
    quick = quick_mode() if quick is None else quick
    device = resolve_device(device)
    stack = device.type == "cuda" if stack is None else stack
    slots: list[tuple[Request, TrainConfig, str, Path]] = []
    for r in requests:
        tc = r.train_config.quick() if quick else r.train_config
        key = cache_key(r.model_config, tc, quick)
        slots.append((r, tc, key, entry_path(r.name, key, cache_dir)))

    results: dict[int, TrainedModel] = {}
    missing: list[int] = []
    seen: set[Path] = set()
    for i, (r, tc, key, path) in enumerate(slots):
        if path in seen:  # the same entry asked twice: filled from its first request
            continue
        seen.add(path)
        if path.exists() and not retrain:
            try:
                model, meta = _load_entry(path, key, r.model_config, tc, device)
                results[i] = TrainedModel(
                    name=r.name, model=model, model_config=r.model_config, train_config=tc,
                    history=History(meta["history"]), metrics=meta["metrics"],
                    train_seconds=meta["train_seconds"], path=path, from_cache=True,
                )
                continue
            except (checkpoint.CheckpointError, KeyError) as e:
                warnings.warn(f"cache entry {path} is unusable ({e}); retraining it", CacheWarning, stacklevel=3)
        missing.append(i)

    groups: dict[tuple, list[int]] = {}
    for i in missing:
        r, tc = slots[i][0], slots[i][1]
        groups.setdefault(stack_key(r.model_config, tc) if stack else (i,), []).append(i)
    for members in groups.values():
        t0 = time.perf_counter()
        if len(members) == 1:
            r, tc = slots[members[0]][:2]
            trained = [train_model(r.model_config, tc, device=device, progress=progress, desc=r.name)]
        else:
            names = [slots[i][0].name for i in members]
            trained = fit_stack(slots[members[0]][0].model_config, [slots[i][1] for i in members],
                                device=device, progress=progress, desc=f"stack of {len(members)}: {', '.join(names)}")
        seconds = (time.perf_counter() - t0) / len(members)
        stacked = {"size": len(members), "members": [slots[i][0].name for i in members]} if len(members) > 1 else None
        for i, (model, history) in zip(members, trained):
            r, tc, key, path = slots[i]
            results[i] = _save_entry(r, tc, key, path, model, history, seconds, device, quick, stacked)

    by_path = {slots[i][3]: t for i, t in results.items()}
    return [by_path[path] for _, _, _, path in slots]


def _save_entry(r: Request, tc: TrainConfig, key: str, path: Path, model: nn.Module, history: History,
                seconds: float, device: torch.device, quick: bool, stacked: dict | None) -> TrainedModel:
    metrics = dict(history.epochs[-1]["test"])
    checkpoint.save(
        model, path,
        cache_key=key, name=r.name, quick=quick, train_config=tc.to_dict(),
        history=history.epochs, metrics=metrics, train_seconds=seconds,
        device=str(device), stack=stacked,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    return TrainedModel(
        name=r.name, model=model, model_config=r.model_config, train_config=tc, history=history,
        metrics=metrics, train_seconds=seconds, path=path, from_cache=False,
    )


EVALS = "evals.json"


@lru_cache(maxsize=1)
def _package_digest() -> str:
    """16 hex digits of SHA-256 over the source files of the genvae package."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _fingerprint(value) -> str:
    """A stable text for an argument: tensors by a digest of their bytes, everything else by repr."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        return f"tensor{tuple(t.shape)}:{t.dtype}:{hashlib.sha256(t.numpy().tobytes()).hexdigest()[:16]}"
    return repr(value)


def cached_eval(trained: TrainedModel, fn, *args, **kwargs):
    """``fn(trained.model, *args, **kwargs)``, computed once and kept in the model's cache entry.

    For evaluations that cost more than loading the model (an IWAE bound with
    k = 1000 importance samples, say), so that a rebuild with every model cached
    stays fast. The key covers the function (its name and the digest of its
    source code), the source of the whole genvae package (so a change to any
    helper it calls counts too), the tensor arguments (a digest of their bytes)
    and the other arguments: a change to any of them computes anew. Results must be numbers
    or JSON-able containers of numbers; a non-finite number is returned but not kept.
    """
    import inspect

    code = hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()[:16]
    key = json.dumps({"fn": f"{fn.__module__}.{fn.__qualname__}", "code": code, "package": _package_digest(),
                      "args": [_fingerprint(a) for a in args],
                      "kwargs": {k: _fingerprint(v) for k, v in sorted(kwargs.items())}}, sort_keys=True)
    path = trained.path / EVALS
    try:
        store = json.loads(path.read_text())
    except (OSError, ValueError):  # missing or unreadable: start afresh
        store = {}
    if key in store:
        return store[key]
    value = fn(trained.model, *args, **kwargs)
    if all(math.isfinite(v) for v in _numbers(value)):
        store[key] = value
        checkpoint.atomic_write_text(path, json.dumps(store, indent=1, sort_keys=True))
    else:
        warnings.warn(f"{fn.__qualname__} of {trained.name} is not finite ({value}); not cached", CacheWarning,
                      stacklevel=2)
    return value


def _numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _numbers(v)
    else:
        yield float(value)
