"""The trained-model cache: ``load_or_train`` loads weights when it can, trains when it must.

An entry is named by a hash of everything that determines the weights: the
model config, the training config (data set, epochs, seed, beta...) and the
mode (quick or full), so a quick CI run can never overwrite a full-mode model.
Entries are checkpoint folders (see :mod:`genvae.storage.checkpoint`) under
:func:`genvae.settings.cache_root`. A corrupt or mismatched entry is reported
with a warning and retrained, never silently used. A cache folder that cannot be
written (read-only, a full disk) is reported with a warning too: the trained model
is still returned, only not kept. A model whose test metrics are not finite is
never kept. ``genvae cache list | verify | prune`` (:mod:`genvae.storage.cachedir`)
inspects and tidies the cache.

An entry is written only once its training has finished. While it trains, a resume state is kept
beside it, in ``<entry folder name>.resume`` (see :mod:`genvae.storage.resume`): an interrupted training
(Ctrl-C, a killed process) goes on from its last finished epoch the next time it is asked for, and
the folder is deleted once the entry is saved.
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
from ..models import ModelConfig
from .resume import ResumeStore, resume_path
from ..settings import cache_root, quick_mode, resolve_device
from ..training.stack import fit_stack, stack_key
from ..training import History, TrainConfig, train_model

CACHE_FORMAT = 2  # bump when the meaning of stored weights changes (2: the device-minded loop)


class CacheWarning(UserWarning):
    """A cache entry was unusable and is being retrained, or a result could not be kept in the cache."""


# The sidecar fields a cache entry needs: the checkpoint's own, and those the cache reads back.
CACHE_FIELDS = (*checkpoint.REQUIRED, "cache_key", "train_config", "history", "metrics", "train_seconds")


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
    saved: bool = True  # False when the cache could not keep it (unwritable folder, metrics not finite)


# Config fields added after format 2, per config class: they enter the key only when they differ from their
# defaults, so that adding an option for new models does not orphan every model trained before it. A new field of
# either config goes here when it is added.
_LATE_FIELDS: dict[type, tuple[str, ...]] = {ModelConfig: ("timesteps", "noise_schedule"),
                                              TrainConfig: ("adversarial", "adv_weight", "test_size")}


def _canonical(cfg) -> dict:
    """A config as its key sees it: every field, except late fields (:data:`_LATE_FIELDS`) at their defaults."""
    d = cfg.to_dict()
    for f in _LATE_FIELDS[type(cfg)]:
        if d[f] == type(cfg).__dataclass_fields__[f].default:
            del d[f]
    return d


def cache_key(model_cfg: ModelConfig, train_cfg: TrainConfig, quick: bool) -> str:
    """16 hex digits of SHA-256 over the canonical JSON of both configs and the mode."""
    blob = json.dumps(
        {"format": CACHE_FORMAT, "model": _canonical(model_cfg), "train": _canonical(train_cfg), "quick": quick},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def entry_path(name: str, key: str, cache_dir: str | Path | None = None) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name) or "model"
    return Path(cache_dir or cache_root()) / f"{slug}-{key}"


@dataclass(frozen=True)
class Request:
    """One model to load or train: a readable name and its full-mode recipe."""

    name: str
    model_config: ModelConfig
    train_config: TrainConfig


@dataclass(frozen=True)
class Slot:
    """Where a request lives in the cache in one mode (:func:`resolve`)."""

    request: Request
    train_config: TrainConfig  # as used in this mode: the quick version in quick mode
    key: str  # cache_key(request.model_config, train_config, quick)
    path: Path  # the entry folder

    @property
    def meta_path(self) -> Path:
        """The entry's sidecar, written last when the entry is saved."""
        return self.path / checkpoint.META

    @property
    def is_complete(self) -> bool:
        """Whether a save of the entry finished (its sidecar exists); says nothing of whether it is sound."""
        return self.meta_path.is_file()


def resolve(request: Request, quick: bool, cache_dir: str | Path | None = None) -> Slot:
    """The cache identity of ``request`` in quick or full mode: the training config it is trained with
    (``train_config.quick()`` in quick mode), its :func:`cache_key` and its entry folder (:func:`entry_path`,
    under ``cache_dir``, default :func:`genvae.settings.cache_root`). The one place this rule is written."""
    train = request.train_config.quick() if quick else request.train_config
    key = cache_key(request.model_config, train, quick)
    return Slot(request, train, key, entry_path(request.name, key, cache_dir))


def load_entry(path: str | Path, key: str, model_cfg: ModelConfig, train_cfg: TrainConfig,
               device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """The model (in eval mode, on ``device``) and the sidecar of the cache entry ``path``, after checking that
    it is what its ``key`` names: the configurations ``model_cfg`` and ``train_cfg`` (the one trained with),
    a sidecar with every field of :data:`CACHE_FIELDS`, finite test metrics, sound weights (see
    :func:`genvae.storage.checkpoint.load`). :class:`~genvae.storage.checkpoint.CheckpointError` names the problem otherwise."""
    path = Path(path)
    meta_path = path / checkpoint.META
    model, meta = checkpoint.load(path, map_location=device, config=model_cfg, required=CACHE_FIELDS)
    if meta["cache_key"] != key:
        raise checkpoint.CheckpointError(
            f"{meta_path} records the key {meta['cache_key']!r}, the folder's name says {key!r}: "
            "it holds a different configuration than its name says")
    try:
        tc = TrainConfig.from_dict(meta["train_config"])
    except (TypeError, ValueError, AttributeError) as e:
        raise checkpoint.CheckpointError(f"{meta_path} has an invalid train_config ({e})") from None
    if tc != train_cfg:
        raise checkpoint.CheckpointError(
            f"{meta_path} holds a different configuration than its name says: "
            + checkpoint.config_differences(tc.to_dict(), train_cfg.to_dict(), checkpoint.META, "asked for"))
    if not (isinstance(meta["metrics"], dict) and isinstance(meta["history"], list)
            and isinstance(meta["train_seconds"], (int, float))):
        raise checkpoint.CheckpointError(f"{meta_path} has a damaged metrics, history or train_seconds field")
    if not _finite(meta["metrics"]):
        raise checkpoint.CheckpointError(f"{meta_path} records test metrics that are not finite "
                                         f"({_format(meta['metrics'])})")
    return model, meta


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
        device: where to train, and where the returned models live (a name or a
            :class:`torch.device`; ``ValueError`` if this machine has no such device);
            defaults to CUDA, then MPS, then CPU.
        progress: show a progress bar while training.
        retrain: ignore existing entries and overwrite them (and train from the start,
            discarding any resume state).
        stack: train the missing models that differ only in beta, gamma or seed
            together as one stacked model (:mod:`genvae.training.stack`). The default does
            so on CUDA, where it pays, and not on a CPU, where it does not (see
            ``benchmarks/RESULTS.md``). Either way every model is saved as its own entry.
    """
    quick = quick_mode() if quick is None else quick
    device = resolve_device(device)
    stack = device.type == "cuda" if stack is None else stack
    slots = [resolve(r, quick, cache_dir) for r in requests]

    results: dict[int, TrainedModel] = {}
    missing: list[int] = []
    seen: set[Path] = set()
    for i, s in enumerate(slots):
        if s.path in seen:  # the same entry asked twice: filled from its first request
            continue
        seen.add(s.path)
        if s.path.exists() and not retrain:
            r = s.request
            try:
                model, meta = load_entry(s.path, s.key, r.model_config, s.train_config, device)
                results[i] = TrainedModel(
                    name=r.name, model=model, model_config=r.model_config, train_config=s.train_config,
                    history=History(meta["history"]), metrics=meta["metrics"],
                    train_seconds=meta["train_seconds"], path=s.path, from_cache=True,
                )
                continue
            except (checkpoint.CheckpointError, KeyError) as e:
                warnings.warn(f"cache entry {s.path} is unusable ({e}); retraining it", CacheWarning, stacklevel=3)
        missing.append(i)

    groups: dict[tuple, list[int]] = {}
    for i in missing:
        s = slots[i]
        groups.setdefault(stack_key(s.request.model_config, s.train_config) if stack else (i,), []).append(i)
    for members in groups.values():
        unit = [slots[i] for i in members]
        t0 = time.perf_counter()
        resume = _resume_store(unit, device, quick)
        if retrain:
            resume.discard()
        if len(unit) == 1:
            r, tc = unit[0].request, unit[0].train_config
            trained = [train_model(r.model_config, tc, device=device, progress=progress, desc=r.name, resume=resume)]
        else:
            names = [s.request.name for s in unit]
            trained = fit_stack(unit[0].request.model_config, [s.train_config for s in unit],
                                device=device, progress=progress, desc=f"stack of {len(members)}: {', '.join(names)}",
                                resume=resume)
        # This process's time, plus the epochs an interrupted run finished before it (kept in the resume state).
        earlier = sum(e.get("seconds", 0.0) for e in trained[0][1].epochs if e.get("resumed"))
        seconds = (time.perf_counter() - t0 + earlier) / len(members)
        stacked = {"size": len(members), "members": [s.request.name for s in unit]} if len(members) > 1 else None
        for i, (model, history) in zip(members, trained):
            results[i] = _save_entry(slots[i], model, history, seconds, device, quick, stacked)
        resume.discard()  # every entry of the unit is saved: the partial state has served

    by_path = {slots[i].path: t for i, t in results.items()}
    return [by_path[s.path] for s in slots]


def _resume_store(unit: list[Slot], device: torch.device, quick: bool) -> ResumeStore:
    """Where a training unit keeps its resume state: beside its (first) entry. The identity ties the state
    to the configurations, the device type and the code that wrote it; another one is discarded."""
    identity = {
        "cache_keys": [s.key for s in unit], "names": [s.request.name for s in unit],
        "model_config": unit[0].request.model_config.to_dict(), "train_configs": [s.train_config.to_dict() for s in unit],
        "quick": quick, "device_type": device.type, "genvae_code": _package_digest(), "torch_version": torch.__version__,
    }
    names = ", ".join(s.request.name for s in unit)
    return ResumeStore(resume_path(unit[0].path), identity, label=names)


def _save_entry(slot: Slot, model: nn.Module, history: History, seconds: float, device: torch.device, quick: bool,
                stacked: dict | None) -> TrainedModel:
    """Keep a freshly trained model in the cache, if its metrics are finite and the folder can be written;
    either way return it (``saved`` says whether it was kept, and a :class:`CacheWarning` why not)."""
    r, tc, key, path = slot.request, slot.train_config, slot.key, slot.path
    metrics = dict(history.epochs[-1]["test"])
    saved = _finite(metrics)
    if not saved:
        warnings.warn(f"{r.name}: the trained model's test metrics are not finite ({_format(metrics)}); it is "
                      f"returned but not cached in {path}, so that it is never loaded as a good model",
                      CacheWarning, stacklevel=4)
    else:
        try:
            checkpoint.save(
                model, path,
                cache_key=key, name=r.name, quick=quick, train_config=tc.to_dict(),
                history=history.epochs, metrics=metrics, train_seconds=seconds,
                device=str(device), stack=stacked,
                threads=torch.get_num_threads(),  # what CPU bits depend on
                cpu_capability=torch.backends.cpu.get_cpu_capability(),
                created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            )
        except OSError as e:  # a read-only folder, a full disk, a cache root that is a file...
            saved = False
            warnings.warn(f"cannot write the model cache folder {path.parent} ({checkpoint.os_error_reason(e)}): {r.name} is "
                          "returned but not cached, so it will be trained again next time; set GENVAE_CACHE "
                          "to a writable folder", CacheWarning, stacklevel=4)
    return TrainedModel(
        name=r.name, model=model, model_config=r.model_config, train_config=tc, history=history,
        metrics=metrics, train_seconds=seconds, path=path, from_cache=False, saved=saved,
    )


def _finite(value) -> bool:
    """True when every number in ``value`` (numbers, or dicts and lists of them) is finite."""
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(v) for v in value)
    try:
        return math.isfinite(value)
    except TypeError:  # not a number: nothing to be non-finite
        return True


def _format(metrics: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in metrics.items())


@lru_cache(maxsize=1)
def _package_digest() -> str:
    """16 hex digits of SHA-256 over the source files of the genvae package."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parents[1].rglob("*.py")):  # the whole genvae package
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def __getattr__(name: str):
    """``cached_eval``, ``eval_version`` and ``EVALS`` live in :mod:`genvae.storage.evals` (kept here for old imports,
    such as ``from genvae.storage.cache import cached_eval``)."""
    if name in ("cached_eval", "eval_version", "EVALS"):
        from . import evals

        return getattr(evals, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
