"""The one configuration dataclass every model is built from."""

from __future__ import annotations

import json
import numbers
from dataclasses import dataclass

from .registry import family
from ..utils import ConfigDict

ARCHS = ("mlp", "conv", "fullconv")


def __getattr__(name: str):
    """``KINDS``: every registered model family's kind (:func:`genvae.models.registry.kinds`), read when asked."""
    if name == "KINDS":
        from .registry import kinds

        return kinds()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class ModelConfig(ConfigDict):
    """What to build. Only the fields a kind uses matter to it.

    Attributes:
        kind: ``"ae"``, ``"vae"``, ``"multistage"`` (VAE + classifier head), ``"classifier"``,
            ``"gan"`` (DCGAN-style generator and discriminator), ``"vaegan"`` (a VAE whose
            decoder is also a GAN's generator) or ``"cvae"`` (a VAE conditioned on the class).
            GANs and VAE-GANs are convolutional (``arch="conv"``); the CVAE is an MLP.
        arch: ``"mlp"`` (fully connected), ``"conv"`` (two stride-2 convolutions and a
            fully connected bottleneck) or ``"fullconv"`` (one 3x3 convolution in and
            one out, no downsampling: the code is ``latent_dim / 784`` feature maps at
            full resolution, i.e. no bottleneck at all).
        latent_dim: size of the code z; 2 makes pictures possible. For ``"fullconv"``
            a multiple of 784.
        hidden: widths of the fully connected layers of the MLP encoder (the decoder
            mirrors them). Conv models and the classifier use ``hidden[-1]`` as the
            width of their one fully connected layer. May be empty for MLPs (a
            single linear map in and out).
        channels: the two conv widths, 28x28 -> 14x14 -> 7x7.
        head_hidden: hidden width of the multi-stage classifier head.
        n_classes: number of classes (multi-stage head and classifier).
        timesteps: T, the diffusion model's number of noise steps.
        noise_schedule: the diffusion model's betas: ``"linear"`` (Ho et al.) or ``"cosine"`` (Nichol & Dhariwal).

    Fields added after the first models were cached (``timesteps``, ``noise_schedule``) enter a model's cache
    key only when they differ from their defaults (:data:`genvae.storage.cache._LATE_FIELDS`).
    """

    kind: str
    arch: str = "mlp"
    latent_dim: int = 2
    hidden: tuple[int, ...] = (512, 256)
    channels: tuple[int, int] = (32, 64)
    head_hidden: int = 64
    n_classes: int = 10
    timesteps: int = 1000
    noise_schedule: str = "linear"

    def __post_init__(self) -> None:
        # JSON round-trips give lists; keep the dataclass hashable and comparable.
        object.__setattr__(self, "hidden", tuple(self.hidden))
        object.__setattr__(self, "channels", tuple(self.channels))
        for name in ("latent_dim", "head_hidden", "n_classes", "timesteps"):  # numpy integers become ints (JSON, hashing)
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"{name} must be a whole number, got {value!r}")
            object.__setattr__(self, name, int(value))
        if not all(isinstance(w, numbers.Integral) and not isinstance(w, bool) for w in self.hidden + self.channels):
            raise ValueError(f"widths must be whole numbers: hidden={self.hidden}, channels={self.channels}")
        object.__setattr__(self, "hidden", tuple(int(w) for w in self.hidden))
        object.__setattr__(self, "channels", tuple(int(w) for w in self.channels))
        fam = family(self.kind)  # ValueError naming the registered kinds
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1 (the size of the code z), got {self.latent_dim}")
        if self.arch == "fullconv" and self.latent_dim % 784:
            raise ValueError(f"fullconv codes are feature maps of 28x28: latent_dim must be a multiple of 784, "
                             f"got {self.latent_dim}")
        if any(h < 1 for h in self.hidden) or len(self.channels) != 2 or min(self.channels) < 1:
            raise ValueError(f"bad widths: hidden={self.hidden}, channels={self.channels}")
        if self.arch == "conv" and not self.hidden:
            raise ValueError("conv models and the classifier need at least one hidden width")
        if self.head_hidden < 1 or self.n_classes < 2:
            raise ValueError(f"bad head: head_hidden={self.head_hidden}, n_classes={self.n_classes}")
        fam.check_config(self)  # what this family adds (GANs are convolutional, the CVAE an MLP, ...)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)
