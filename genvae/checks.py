"""Checks of what the public functions are given: shapes, dtypes and value ranges, with messages that name
the problem and, where there is one, the fix ("expected values in [0, 1], got max 255.0; divide by 255").

**What is checked where, and why.** Shapes and dtypes are metadata: checking them costs nothing, so every
call checks them, on every device. *Values* (pixels in [0, 1], class labels in [0, K)) are different: a
check reads the data, and on a GPU reading a result on the host waits for the device to finish (a host
sync), which the training loop avoids at every step (see :mod:`genvae.training`). So values are checked

* on **CPU tensors**, at every call of a model (``forward``, ``encode``, ``embed``, ``reconstruct``...):
  one pass of ``torch.aminmax``, about 40 us for a batch of 128 images on one core (0.2% of an MLP VAE's
  forward and backward pass, 19 ms; inside a fit the shape and dtype checks alone cost about 3 us);
* **once per call** of the evaluation helpers (:mod:`genvae.analysis.latent`, :mod:`genvae.analysis.metrics`,
  :func:`genvae.training.evaluate`), on the whole input, before its batches move to the model's device;
* **once per fit**, on the whole training and test set, when the data enter the training loop
  (:func:`genvae.training.training_epochs`, shared by ``fit``, ``fit_stack`` and ``fit_adversarial``;
  about 20 ms for MNIST's 60,000 images), and **never per step**: the loop runs inside
  :func:`values_checked`, which turns the per-call value checks off, on the CPU as well.

A model on a GPU called directly with a GPU tensor therefore gets its shape and dtype checked but not its
values; call :func:`check_images` once on the data yourself, or go through the helpers above.
"""

from __future__ import annotations

import contextvars
import math
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import Tensor

__all__ = ["IMAGE_SHAPE", "check_images", "check_pixel_values", "check_codes", "check_labels", "check_label_values",
           "check_count", "check_pair", "check_same_length", "check_training_data", "values_checked",
           "checking_values"]

IMAGE_SHAPE = (1, 28, 28)

_VALUES_CHECKED = contextvars.ContextVar("genvae_values_checked", default=False)


@contextmanager
def values_checked() -> Iterator[None]:
    """Within the block, the caller vouches that pixel and label values are already checked: the models skip
    their per-call value checks (the training loop, after checking the data once)."""
    token = _VALUES_CHECKED.set(True)
    try:
        yield
    finally:
        _VALUES_CHECKED.reset(token)


def checking_values(t: Tensor) -> bool:
    """Whether a per-call value check of ``t`` is cheap and wanted: a plain CPU tensor (no host sync), outside
    :func:`values_checked`, and not a tensor inside a ``torch.func`` transform (``vmap``), where a value
    cannot steer Python."""
    if t.device.type != "cpu" or _VALUES_CHECKED.get():
        return False
    wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return not (wrapped is not None and wrapped(t))


def _num(v: float) -> str:
    return str(round(v, 4))


def _range_hint(lo: float, hi: float) -> str:
    if math.isnan(lo) or math.isnan(hi):
        return "the images contain NaN"
    if lo >= 0 and hi > 1:
        fix = "divide by 255" if hi > 2 else "clamp with x.clamp(0, 1)"
        return f"got max {_num(hi)}; {fix}"
    if hi <= 1 and lo < 0:
        fix = "map [-1, 1] images back with (x + 1) / 2" if lo >= -1 else "clamp with x.clamp(0, 1)"
        return f"got min {_num(lo)}; {fix}"
    return f"got min {_num(lo)} and max {_num(hi)}; rescale to [0, 1]"


def check_pixel_values(x: Tensor, name: str | None = None) -> None:
    """Raise ``ValueError`` unless every value of ``x`` is in [0, 1] (reads the data: a host sync on a GPU)."""
    if x.numel() == 0:
        return
    lo, hi = (float(v) for v in torch.aminmax(x.detach()))
    if not (lo >= 0 and hi <= 1):  # also false for NaN
        raise ValueError(f"{f'{name}: ' if name else ''}expected values in [0, 1], {_range_hint(lo, hi)}")


def check_images(x, *, values: bool | None = None, size: tuple[int, int] | None = (28, 28),
                 name: str = "images") -> None:
    """Raise a readable error for anything that is not a batch of grey images ``(B, 1, H, W)`` in [0, 1].

    ``size``: the expected ``(H, W)``, ``None`` for any. ``values``: check that the pixels are in [0, 1]:
    ``True`` always (once per call of a helper), ``False`` never, ``None`` when cheap (:func:`checking_values`).

    Raises:
        TypeError: not a tensor, or not floating point (uint8 images: ``x.float() / 255``).
        ValueError: another shape, or values outside [0, 1].
    """
    expected = f"(B, 1, {size[0]}, {size[1]})" if size else "(B, 1, H, W)"
    if not isinstance(x, Tensor):
        raise TypeError(f"expected {name} as a torch.Tensor of shape {expected}, got {type(x).__name__}")
    if not x.dtype.is_floating_point:
        fix = "x.float()" if x.dtype == torch.bool else "x.float() / 255"
        raise TypeError(f"expected floating-point {name} with values in [0, 1], got {x.dtype}; convert with {fix}")
    shape = tuple(x.shape)
    if x.dim() != 4 or x.shape[1] != 1 or (size is not None and tuple(x.shape[2:]) != tuple(size)):
        hint = ""
        if size is not None and x.dim() == 2 and x.shape[1] == size[0] * size[1]:
            hint = f"; reshape flat images with x.view(-1, 1, {size[0]}, {size[1]})"
        elif x.dim() == 3 and (size is None or tuple(x.shape[1:]) == tuple(size)):
            hint = "; add the channel dimension with x.unsqueeze(1)"
        elif x.dim() == 4 and x.shape[1] != 1:
            hint = f"; the models take grey images (1 channel), not {x.shape[1]}"
        raise ValueError(f"expected {name} of shape {expected}, got {shape}{hint}")
    if values or (values is None and checking_values(x)):
        check_pixel_values(x, None if name == "images" else name)


def check_codes(z, latent_dim: int | None = None, name: str = "codes") -> None:
    """Raise a readable error unless ``z`` is a floating-point batch of codes ``(B, latent_dim)``."""
    d = "D" if latent_dim is None else str(latent_dim)
    if not isinstance(z, Tensor):
        raise TypeError(f"expected {name} as a torch.Tensor of shape (B, {d}), got {type(z).__name__}")
    if not z.dtype.is_floating_point:
        raise TypeError(f"expected floating-point {name}, got {z.dtype}; convert with z.float()")
    if z.dim() != 2 or (latent_dim is not None and z.shape[1] != latent_dim):
        hint = "; one code: z.unsqueeze(0)" if z.dim() == 1 and (latent_dim is None or len(z) == latent_dim) else ""
        raise ValueError(f"expected {name} of shape (B, {d}), got {tuple(z.shape)}{hint}")


def check_labels(y, n_classes: int | None = None, batch: int | None = None, *, values: bool | None = None,
                 name: str = "class labels") -> None:
    """Raise a readable error unless ``y`` holds integer class labels ``(B,)`` (in [0, n_classes), checked as
    :func:`check_images` checks pixels: ``values=None`` means only where cheap)."""
    if not isinstance(y, Tensor):
        raise TypeError(f"expected {name} as a torch.Tensor of shape (B,), got {type(y).__name__}")
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise TypeError(f"expected integer {name} of shape (B,), got {y.dtype}; convert with y.long()")
    if y.dim() != 1 or (batch is not None and len(y) != batch):
        want = "(B,)" if batch is None else f"({batch},), one per image"
        raise ValueError(f"expected {name} of shape {want}, got {tuple(y.shape)}")
    if n_classes is not None and len(y) and (values or (values is None and checking_values(y))):
        check_label_values(y, n_classes, name)


def check_label_values(y: Tensor, n_classes: int, name: str = "class labels") -> None:
    """Raise ``ValueError`` unless every label is in [0, n_classes) (reads the data: a host sync on a GPU)."""
    lo, hi = (int(v) for v in torch.aminmax(y))
    if lo < 0 or hi >= n_classes:
        raise ValueError(f"expected {name} in [0, {n_classes}), got {lo}..{hi}")


def check_count(n, name: str = "n", minimum: int = 1) -> int:
    """``n`` as an int, if it is a whole number >= ``minimum`` (a bool is not); ``ValueError`` otherwise."""
    if isinstance(n, bool) or not isinstance(n, int):
        if isinstance(n, Tensor) and n.dim() == 0 and not n.dtype.is_floating_point:
            n = int(n)
        elif isinstance(n, float) and n.is_integer():
            n = int(n)
        else:
            raise ValueError(f"{name} must be a whole number >= {minimum}, got {n!r}")
    if n < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {n}")
    return n


def check_pair(a: Tensor, b: Tensor, names: tuple[str, str]) -> None:
    """Raise ``ValueError`` unless two tensors have one shape (where broadcasting would silently pair wrong rows)."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def check_same_length(**tensors) -> None:
    """Raise ``ValueError`` unless every named tensor has as many rows as the first."""
    (first, ref), *rest = tensors.items()
    for name, t in rest:
        if len(t) != len(ref):
            raise ValueError(f"{first} and {name} must have one length (one row per item), got {len(ref)} and {len(t)}")


def check_training_data(data, n_classes: int | None = None) -> None:
    """Check a data set (:class:`genvae.data.ImageData`) as it enters training, values included, once:
    images ``(N, 1, 28, 28)`` in [0, 1], one integer label per image (in [0, n_classes) if given)."""
    for split in ("train", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        check_images(x, values=True, name=f"{split} images")
        check_labels(y, n_classes, batch=len(x), values=True, name=f"{split} labels")
