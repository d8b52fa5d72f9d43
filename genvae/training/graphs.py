"""The CUDA-graph step: one replay per batch does forward, backward and Adam (no launch overhead)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


class GraphedStep:
    """A training step captured once as a CUDA graph and replayed for every full batch.

    The first ``warmup`` calls run eagerly on a side stream (CUDA graphs need the
    optimiser state and the allocator warmed up); the next full-size batch is
    captured, and from then on one ``replay`` does forward, backward and Adam.
    A batch of another size (the last one of an epoch) runs eagerly. The
    returned parts are the graph's static outputs: read them before the next call.

    The step's random draws come from the CUDA ``generators`` (the training noise), which are
    registered with the graph: each replay then advances them as the eager step would, so a
    replayed step draws the same numbers as the same step run eagerly.
    """

    def __init__(self, step: Callable[[Tensor], dict[str, Tensor]], batch_shape: torch.Size, warmup: int = 3,
                 generators: tuple[torch.Generator, ...] = ()):
        self.step, self.batch_shape, self.warmup = step, batch_shape, warmup
        self.generators = [g for g in generators if g.device.type == "cuda"]
        self.calls, self.graph = 0, None

    def __call__(self, idx: Tensor) -> dict[str, Tensor]:
        if idx.shape != self.batch_shape:
            return self.step(idx)
        if self.graph is None and self.calls < self.warmup:
            self.calls += 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out = self.step(idx)
            torch.cuda.current_stream().wait_stream(side)
            return out
        if self.graph is None:
            self.idx = idx.clone()
            self.graph = torch.cuda.CUDAGraph()
            for g in self.generators:  # before capture begins: the graph then owns their offsets
                self.graph.register_generator_state(g)
            with torch.cuda.graph(self.graph):
                self.out = self.step(self.idx)
        self.idx.copy_(idx)
        self.graph.replay()
        return self.out

