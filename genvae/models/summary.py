"""A layer-by-layer table of a model: output shape and parameter count of every leaf module."""

from __future__ import annotations

import torch
from torch import nn

from ..utils import eval_mode


def layer_table(model: nn.Module, x: torch.Tensor, method: str = "forward") -> list[dict]:
    """Run ``getattr(model, method)(x)`` once and record each leaf module it calls, in call order.

    Returns rows ``{"layer": dotted name, "type": class name, "output": shape without
    the batch dimension, "params": parameter count}``.
    """
    rows: list[dict] = []
    hooks = []
    for name, module in model.named_modules():
        if next(module.children(), None) is not None:  # containers: their leaves report
            continue

        def hook(mod, _inp, out, name=name):
            shape = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else "-"
            rows.append({"layer": name, "type": type(mod).__name__, "output": shape,
                         "params": sum(p.numel() for p in mod.parameters())})

        hooks.append(module.register_forward_hook(hook))
    try:
        with eval_mode(model) as dev, torch.no_grad():
            getattr(model, method)(x.to(dev))
    finally:
        for h in hooks:
            h.remove()
    return rows
