"""Model families: one declaration per family, read by the rest of the package.

A family is a model class that inherits :class:`Family`, states its ``kind`` and what the rest of
genvae asks of it, and is registered with :func:`register`::

    @register
    class AutoEncoder(Family, nn.Module):
        kind = "ae"             # ModelConfig(kind="ae") builds this class
        stackable = True        # genvae.training.stack may train a grid of them as one model
        ...

The training loop, the model cache, the stacking code and the chapters ask the registry
(:func:`family`) instead of testing ``kind`` names, so a new family is one file, and one loss
registered for its output type (:func:`genvae.models.losses.objective`). Nothing here imports a family:
the families import this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

import torch

if TYPE_CHECKING:  # annotations only
    from torch import nn

__all__ = ["Family", "GenerativeModel", "register", "family", "kinds", "is_conditional", "descend", "FAMILIES"]

FAMILIES: dict[str, type] = {}  # kind -> family class, in registration order


class Family:
    """What every model family declares (class attributes; the defaults suit a one-player model).

    Attributes:
        kind: the name ``ModelConfig.kind`` uses for this family.
        archs: the ``ModelConfig.arch`` values it can be built with.
        uses_labels: its loss or its input uses the class labels (the loop then checks them).
        conditional: ``forward``, ``encode`` and ``decode`` take the class ``y`` as well.
        stackable: :mod:`genvae.training.stack` may train a grid of these (over beta, gamma, the seed) as one model.
        two_player: trained by the two-player loop (:func:`genvae.training.fit_adversarial`): the class then
            defines :meth:`players` and :meth:`train_step`.
        feature_likelihood: its reconstruction term is measured in its discriminator's features, not in pixels
            (the VAE-GAN; :func:`genvae.analysis.likelihood.code_gain` asks).
        diagram: the layout of its architecture figure (:func:`genvae.book.plots.architecture_stages`): ``"code"``,
            ``"posterior"``, ``"posterior+head"`` or ``"classes"``; ``None``: it has none.
    """

    kind: ClassVar[str]
    archs: ClassVar[tuple[str, ...]] = ("mlp", "conv", "fullconv")
    uses_labels: ClassVar[bool] = False
    conditional: ClassVar[bool] = False
    stackable: ClassVar[bool] = False
    two_player: ClassVar[bool] = False
    feature_likelihood: ClassVar[bool] = False
    diagram: ClassVar[str | None] = None

    @classmethod
    def check_config(cls, cfg) -> None:
        """Raise ``ValueError`` for a :class:`~genvae.models.config.ModelConfig` this family cannot be built
        from (beyond the checks every config passes)."""
        if cfg.arch not in cls.archs:
            article = "an" if cfg.kind[0] in "aeiou" else "a"
            raise ValueError(f"{article} {cfg.kind} is built with arch in {cls.archs}, got {cfg.arch!r}")

    def players(self) -> dict[str, "nn.Module"]:
        """A two-player family's players, the one that moves first first; each gets its own optimiser."""
        raise ValueError(f"a {self.kind!r} model is not trained by the two-player loop")

    def train_step(self, optimizers: dict, x: torch.Tensor, cfg, generator: torch.Generator | None = None
                   ) -> dict[str, torch.Tensor]:
        """A two-player family's one round of training on the batch ``x``: its loss parts, on the device."""
        raise ValueError(f"a {self.kind!r} model is not trained by the two-player loop")


@runtime_checkable
class GenerativeModel(Protocol):
    """What a generative model of the book offers (the GAN has no encoder, so no ``encode``/``reconstruct``)."""

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor: ...


def descend(loss: torch.Tensor, player: "nn.Module", optimizer: torch.optim.Optimizer,
            retain_graph: bool = False) -> None:
    """One optimiser step of ``player`` on ``loss``: the gradient is taken with respect to its parameters only,
    so a player never moves on another player's loss (the two-player families' :meth:`Family.train_step`)."""
    params = list(player.parameters())
    for p, g in zip(params, torch.autograd.grad(loss, params, retain_graph=retain_graph)):
        p.grad = g
    optimizer.step()


def register(cls: type) -> type:
    """Class decorator: make ``cls`` the family of ``ModelConfig(kind=cls.kind)``."""
    kind = getattr(cls, "kind", None)
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"{cls.__name__} needs a class attribute kind = '<name>' to be registered")
    if not issubclass(cls, Family):
        raise TypeError(f"{cls.__name__} must inherit genvae.models.Family to be registered")
    old = FAMILIES.get(kind)
    if old is not None and old.__qualname__ != cls.__qualname__:
        raise ValueError(f"kind {kind!r} is already registered, by {old.__module__}.{old.__qualname__}")
    FAMILIES[kind] = cls
    return cls


def family(kind: str) -> type:
    """The family class registered for ``kind``; ``ValueError`` naming the known kinds otherwise."""
    try:
        return FAMILIES[kind]
    except (KeyError, TypeError):
        raise ValueError(f"kind must be one of {kinds()}, got {kind!r}") from None


def kinds() -> tuple[str, ...]:
    """Every registered kind, in registration order."""
    return tuple(FAMILIES)


def is_conditional(model) -> bool:
    """Whether ``model`` takes the class as input (a family's declaration; ``False`` for any other callable)."""
    return bool(getattr(model, "conditional", False))
