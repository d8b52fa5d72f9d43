"""What is reproducible, where, and ``genvae reproduce --check``, which measures it.

Randomness
    Every random draw of training and evaluation goes through an explicit :class:`torch.Generator`
    (:mod:`genvae.training` lists them); torch's global RNG is never seeded or advanced by training,
    evaluating or loading a model. Initial weights are drawn on the CPU from the seed, so they are the
    same on every device.

CPU: bit-identical
    The same seed and mode give bit-identical weights, losses and metrics across runs on one kind of
    CPU, with the same torch version and the same number of threads (tested in
    ``tests/test_reproducibility.py``; a run resumed after an interruption included). The thread
    count matters: convolutions split their sums by thread, so a convolutional autoencoder trained
    with 1 and with 2 threads ends with other bits (measured), and so does another instruction set
    (AVX2 against AVX-512 kernels). A stacked grid (:mod:`genvae.training.stack`) is not bit-identical to its
    members trained alone.

CUDA: close, not identical to the CPU
    * The noise stream differs from the CPU's (CUDA generators are Philox, the CPU's a Mersenne
      twister), so a GPU run parts from a CPU run at its first noisy step; an autoencoder (no noise)
      parts at the level of rounding, since GPU kernels add in other orders.
    * Two runs on the same GPU model and software are usually identical but not guaranteed to be:
      cuDNN may pick convolution algorithms whose backward pass accumulates with atomics, and atomic
      adds (``index_add``, ``scatter_add``, many backward passes) commit in a varying order.
      ``torch.use_deterministic_algorithms(True)`` (with ``CUBLAS_WORKSPACE_CONFIG=:4096:8``) and
      ``torch.backends.cudnn.benchmark = False`` rule those out at some speed; genvae does not set
      them.
    * cuDNN convolutions run in TF32 by default on Ampere and later GPUs (``torch.backends.cudnn.allow_tf32``),
      and bf16 autocast rounds differently on every device type.
    * The noise generator is registered with the CUDA graph of the training step, so a replayed
      step should draw what the same step run eagerly draws (``tests/test_cuda.py`` checks it on a GPU).

MPS (Apple)
    The MPS generator is yet another stream, and Metal kernels make no determinism promise
    (``torch.use_deterministic_algorithms`` does not cover them). Evaluation noise comes from a
    generator on the model's device, so the same weights evaluate to the same numbers on one device
    and to slightly other numbers on another.

Hence ``genvae reproduce --check`` compares exactly only where bits can match (see
:func:`exact_reason`) and within a relative tolerance everywhere else.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch

DEFAULT_RTOL = 0.05


def platform() -> dict:
    """What a CPU training's bits depend on besides the recipe (kept in every cache entry's meta)."""
    return {"torch_version": torch.__version__, "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def exact_reason(meta: dict, device: torch.device) -> str | None:
    """``None`` when retraining the entry described by ``meta`` on ``device`` must give the same bits;
    otherwise why not (then the check compares within a tolerance)."""
    here = platform()
    trained_on = str(meta.get("device", "?"))
    if device.type != "cpu" or torch.device(trained_on).type != "cpu":
        return f"trained on {trained_on}, checked on {device}"
    if meta.get("stack"):
        return "trained in a stacked grid"
    if meta.get("torch_version") != here["torch_version"]:
        return f"trained with torch {meta.get('torch_version')}, checked with {here['torch_version']}"
    for key in ("threads", "cpu_capability"):
        if key not in meta:
            return f"the entry does not record its {key.replace('_', ' ')}"
    if meta["cpu_capability"] != here["cpu_capability"]:
        return f"trained with {meta['cpu_capability']} kernels, checked with {here['cpu_capability']}"
    return None


@dataclass
class CheckResult:
    """One experiment's verdict."""

    name: str
    status: str  # "ok", "MISMATCH" or "not cached"
    tolerance: str = ""  # "exact" or "rtol 0.05"
    why: str = ""  # why the comparison is not exact
    cached: dict[str, float] = field(default_factory=dict)
    retrained: dict[str, float] = field(default_factory=dict)
    worst: str = ""  # the metric furthest apart
    rel_diff: float = 0.0


def _rel(a: float, b: float) -> float:
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def compare(cached: dict[str, float], retrained: dict[str, float], rtol: float | None) -> tuple[bool, str, float]:
    """``(agree, worst metric, its relative difference)``; ``rtol=None`` asks for equality.

    Both must name the same metrics; a non-finite value agrees only with the same value.
    """
    if set(cached) != set(retrained):
        return False, ", ".join(sorted(set(cached) ^ set(retrained))) + " (missing)", math.inf
    worst, worst_diff, ok = "", -1.0, True
    for key in sorted(cached):
        a, b = float(cached[key]), float(retrained[key])
        same = a == b or (math.isnan(a) and math.isnan(b))
        diff = 0.0 if same else (_rel(a, b) if math.isfinite(a) and math.isfinite(b) else math.inf)
        agree = same if rtol is None else (same or diff <= rtol)
        ok &= agree
        if diff > worst_diff:
            worst, worst_diff = key, diff
    return ok, worst, max(worst_diff, 0.0)


def check(experiments: Iterable, *, quick: bool, device: torch.device, rtol: float = DEFAULT_RTOL,
          progress: bool = True, on_result: Callable[[CheckResult], None] | None = None) -> list[CheckResult]:
    """Retrain every cached experiment into a temporary cache and compare its test metrics with the cached ones.

    Each one trains alone (no stack, one process) with the thread count its entry records, so a
    CPU entry can be matched bit for bit; see :func:`exact_reason` for when the comparison is exact
    and when it allows ``rtol``. The real cache is only read.
    """
    from . import checkpoint
    from .cache import load_or_train_many, resolve

    results = []
    with tempfile.TemporaryDirectory(prefix="genvae-check-") as tmp:
        for e in experiments:
            try:
                meta = checkpoint.read_meta(resolve(e.request, quick).path)
                cached = dict(meta["metrics"])
            except (checkpoint.CheckpointError, KeyError, TypeError):
                result = CheckResult(e.name, "not cached")
            else:
                why = exact_reason(meta, device)
                threads = torch.get_num_threads()
                if isinstance(meta.get("threads"), int) and meta["threads"] >= 1:
                    torch.set_num_threads(meta["threads"])
                try:
                    new = load_or_train_many([e.request], quick=quick, cache_dir=tmp, device=device, stack=False,
                                             progress=progress)[0]
                finally:
                    torch.set_num_threads(threads)
                ok, worst, diff = compare(cached, new.metrics, None if why is None else rtol)
                result = CheckResult(e.name, "ok" if ok else "MISMATCH", "exact" if why is None else f"rtol {rtol:g}",
                                     why or "", cached, dict(new.metrics), worst, diff)
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def table(results: list[CheckResult]) -> str:
    """The per-experiment table that ``genvae reproduce --check`` prints."""
    width = max([len(r.name) for r in results] + [10])
    lines = [f"{'experiment':<{width}}  {'compared':<10}  {'worst metric':<12}  {'cached':>12}  {'retrained':>12}  "
             f"{'rel. diff':>9}  result"]
    for r in results:
        if r.status == "not cached":
            lines.append(f"{r.name:<{width}}  {'-':<10}  {'-':<12}  {'-':>12}  {'-':>12}  {'-':>9}  not cached")
            continue
        a, b = r.cached.get(r.worst, math.nan), r.retrained.get(r.worst, math.nan)
        note = f"  ({r.why})" if r.why else ""
        lines.append(f"{r.name:<{width}}  {r.tolerance:<10}  {r.worst:<12}  {a:>12.6g}  {b:>12.6g}  {r.rel_diff:>9.2e}  "
                     f"{r.status}{note}")
    return "\n".join(lines)
