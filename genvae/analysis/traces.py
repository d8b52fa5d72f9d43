"""The trace of a network's Jacobian, tr(df/dx), per example: exactly, one coordinate at a time, for small
dimensions, and by Hutchinson's estimator, with vector-Jacobian products, for any.

The exact log-likelihood of a continuous flow (a flow-matching model's ODE dx/dt = f(x, t)) integrates
-tr(df/dx) along the path; in 784 dimensions the exact trace costs 784 backward passes per step, and
Hutchinson's estimator one per probe: for a random probe v with E[v v^T] = I, E[v^T J v] = tr(J).

``f`` maps a batch ``x (B, ...)`` to a batch of the same shape and treats examples independently (as a
network in eval mode does): then the Jacobian is block-diagonal and one backward pass serves the whole batch.
Pass a closure for anything else it needs, ``lambda x: model(x, t)``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..checks import check_count

__all__ = ["PROBE_KINDS", "exact_jacobian_trace", "hutchinson_trace"]

PROBE_KINDS = ("rademacher", "gaussian")


def _check_input(x) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"expected x as a torch.Tensor of shape (B, ...), got {type(x).__name__}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"expected floating-point x, got {x.dtype}; convert with x.float()")
    if x.dim() < 2 or not len(x) or not x[0].numel():
        raise ValueError(f"expected a non-empty batch x of shape (B, ...), got {tuple(x.shape)}; "
                         f"one example: x.unsqueeze(0)")


def _output(f: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """``(x with gradients, f(x))``, under autograd even inside ``torch.no_grad()``."""
    xg = x.detach().requires_grad_(True)
    y = f(xg)
    if not isinstance(y, Tensor) or y.shape != x.shape:
        got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
        raise ValueError(f"f must map x {tuple(x.shape)} to a tensor of the same shape (its Jacobian is square), "
                         f"got {got}")
    return xg, y


def exact_jacobian_trace(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """tr(df/dx) of each example of ``x (B, ...)``, exactly: one backward pass per coordinate, D = x[0].numel()
    in all (fine for small D; use :func:`hutchinson_trace` for images). Returns ``(B,)`` in x's dtype."""
    _check_input(x)
    b, d = len(x), x[0].numel()
    with torch.enable_grad():
        xg, y = _output(f, x)
        trace = torch.zeros(b, dtype=torch.float64, device=x.device)
        if not y.requires_grad:  # f does not depend on x
            return trace.to(x.dtype)
        y_flat = y.reshape(b, d)  # (B, D)
        for i in range(d):
            (grad,) = torch.autograd.grad(y_flat[:, i].sum(), xg, retain_graph=i < d - 1, allow_unused=True)
            if grad is not None:  # (B, ...): d y_i / dx of each example (examples independent)
                trace += grad.reshape(b, d)[:, i]
    return trace.to(x.dtype)


def _probe(kind: str, like: Tensor, generator: torch.Generator) -> Tensor:
    if kind == "rademacher":  # +1 or -1, each with probability 1/2
        signs = torch.randint(0, 2, like.shape, generator=generator, device=like.device)
        return (2 * signs - 1).to(like.dtype)
    return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)


def hutchinson_trace(f: Callable[[Tensor], Tensor], x: Tensor, generator: torch.Generator, n_probes: int = 1,
                     kind: str = "rademacher") -> Tensor:
    """Hutchinson's unbiased estimate of tr(df/dx) of each example of ``x (B, ...)``: the mean over
    ``n_probes`` probes v (one per example, drawn from ``generator`` on x's device) of v^T (df/dx) v, each
    from one vector-Jacobian product (one forward pass of f in all, one backward pass per probe).
    Returns ``(B,)`` in x's dtype, detached.

    ``kind``: ``"rademacher"`` (each coordinate +1 or -1) or ``"gaussian"`` (standard normal). Both are
    unbiased. For a Jacobian J the variance of one probe is sum over i < j of (J_ij + J_ji)^2 with
    Rademacher probes, and that plus 2 sum_i J_ii^2 with Gaussian ones: Rademacher probes never do worse,
    and give tr(J) exactly when J is diagonal.

        >>> a = torch.diag(torch.tensor([1.0, 2.0, 3.0]))
        >>> hutchinson_trace(lambda x: x @ a.T, torch.zeros(2, 3), torch.Generator().manual_seed(0))
        tensor([6., 6.])
    """
    _check_input(x)
    n = check_count(n_probes, "n_probes")
    if kind not in PROBE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, PROBE_KINDS))}, got {kind!r}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"expected a torch.Generator for the probes, got {type(generator).__name__}")
    if generator.device.type != x.device.type:
        raise ValueError(f"the generator is on {generator.device.type} but x is on {x.device}; "
                         f"draw the probes with torch.Generator(device=x.device)")
    b = len(x)
    with torch.enable_grad():
        xg, y = _output(f, x)
        total = torch.zeros(b, dtype=torch.float64, device=x.device)
        for p in range(n):
            v = _probe(kind, x, generator)  # (B, ...)
            if y.requires_grad:
                (vjp,) = torch.autograd.grad(y, xg, v, retain_graph=p < n - 1, allow_unused=True)  # v^T J
                if vjp is not None:
                    total += (vjp * v).reshape(b, -1).sum(1)  # (B,): v^T J v per example
    return (total / n).to(x.dtype)
