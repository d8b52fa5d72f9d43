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
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import checkpoint
from .models import ModelConfig
from .settings import cache_root, default_device, quick_mode
from .train import History, TrainConfig, train_model

CACHE_FORMAT = 1  # bump when the meaning of stored weights changes


class CacheWarning(UserWarning):
    """A cache entry was unusable and is being retrained."""


@dataclass
class TrainedModel:
    """A trained model with everything known about how it was made."""

    name: str
    model: nn.Module  # on the CPU, in eval mode
    model_config: ModelConfig
    train_config: TrainConfig  # as actually used (the quick version in quick mode)
    history: History
    metrics: dict[str, float]  # the last epoch's test metrics
    train_seconds: float
    path: Path
    from_cache: bool


def cache_key(model_cfg: ModelConfig, train_cfg: TrainConfig, quick: bool) -> str:
    """16 hex digits of SHA-256 over the canonical JSON of both configs and the mode."""
    blob = json.dumps(
        {"format": CACHE_FORMAT, "model": model_cfg.to_dict(), "train": train_cfg.to_dict(), "quick": quick},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def entry_path(name: str, key: str, cache_dir: str | Path | None = None) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name) or "model"
    return Path(cache_dir or cache_root()) / f"{slug}-{key}"


def _load_entry(path: Path, key: str, model_cfg: ModelConfig, train_cfg: TrainConfig) -> tuple[nn.Module, dict]:
    model, meta = checkpoint.load(path)
    try:
        same = (meta.get("cache_key") == key and model.config == model_cfg
                and TrainConfig.from_dict(meta["train_config"]) == train_cfg)
    except (KeyError, TypeError, ValueError):
        same = False
    if not same:
        raise checkpoint.CheckpointError(f"{path} holds a different configuration than its name says")
    return model, meta


def load_or_train(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    *,
    name: str | None = None,
    quick: bool | None = None,
    cache_dir: str | Path | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    retrain: bool = False,
) -> TrainedModel:
    """Return the trained model for this config pair, from the cache or by training it.

    Args:
        model_cfg, train_cfg: what to build and how to train it (the full-mode recipe).
        name: a readable prefix for the cache folder (defaults to the model kind).
        quick: quick mode; defaults to ``GENVAE_QUICK``. In quick mode
            ``train_cfg.quick()`` is used and the cache key differs.
        cache_dir: defaults to ``GENVAE_CACHE`` or ``~/.cache/genvae/models``.
        device: where to train; defaults to CUDA, then MPS, then CPU.
        progress: show a progress bar while training.
        retrain: ignore an existing entry and overwrite it.
    """
    quick = quick_mode() if quick is None else quick
    if quick:
        train_cfg = train_cfg.quick()
    name = name or model_cfg.kind
    key = cache_key(model_cfg, train_cfg, quick)
    path = entry_path(name, key, cache_dir)

    if path.exists() and not retrain:
        try:
            model, meta = _load_entry(path, key, model_cfg, train_cfg)
            return TrainedModel(
                name=name, model=model, model_config=model_cfg, train_config=train_cfg,
                history=History(meta["history"]), metrics=meta["metrics"],
                train_seconds=meta["train_seconds"], path=path, from_cache=True,
            )
        except (checkpoint.CheckpointError, KeyError) as e:
            warnings.warn(f"cache entry {path} is unusable ({e}); retraining it", CacheWarning, stacklevel=2)

    device = torch.device(device) if device is not None else default_device()
    t0 = time.perf_counter()
    model, history = train_model(model_cfg, train_cfg, device=device, progress=progress, desc=name)
    seconds = time.perf_counter() - t0
    metrics = dict(history.epochs[-1]["test"])
    checkpoint.save(
        model, path,
        cache_key=key, name=name, quick=quick, train_config=train_cfg.to_dict(),
        history=history.epochs, metrics=metrics, train_seconds=seconds,
        device=str(device),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    return TrainedModel(
        name=name, model=model, model_config=model_cfg, train_config=train_cfg, history=history,
        metrics=metrics, train_seconds=seconds, path=path, from_cache=False,
    )
