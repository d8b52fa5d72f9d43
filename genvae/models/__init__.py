"""Models of the book, one readable file per family, all built from a :class:`ModelConfig`."""

import torch
from torch import nn

# The families register themselves when imported, in this order (the order `kinds()` lists them in).
from .autoencoder import AutoEncoder
from .vae import VAE, reparameterize
from .multistage import MultiStageVAE
from .classifier import Classifier
from .gan import GAN, Discriminator, Generator
from .vaegan import VAEGAN
from .cvae import CVAE
from .diffusion import DDPM, DiffusionOutput
from .flow import FlowMatching, FlowOutput
from .config import ModelConfig
from .registry import FAMILIES, Family, GenerativeModel, family, is_conditional, kinds, register
from .outputs import (
    AEOutput, ClassifierOutput, DiscriminatorOutput, GANOutput, MultiStageOutput, VAEGANOutput, VAEOutput,
)
from .summary import layer_table

MODEL_CLASSES = FAMILIES  # kind -> class; kept for old imports


def __getattr__(name: str):
    """``ADVERSARIAL_KINDS``: the kinds trained by the two-player loop, read from the registry when asked."""
    if name == "ADVERSARIAL_KINDS":
        return tuple(k for k, cls in FAMILIES.items() if cls.two_player)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_model(cfg: ModelConfig) -> nn.Module:
    """Instantiate the model a config describes (weights freshly initialised)."""
    return family(cfg.kind)(cfg)


def model_from_state(cfg: ModelConfig, state: dict[str, torch.Tensor]) -> nn.Module:
    """The model a config describes, holding the tensors ``state`` (a full state dict) where they are.

    Nothing is initialised: the layers are built on the meta device (no memory, no random draws, so
    torch's global RNG is untouched) and then take ``state``'s tensors as their own. Raises
    ``RuntimeError`` (missing or unexpected keys, wrong shapes) like ``load_state_dict``.
    """
    with torch.device("meta"):
        model = build_model(cfg)
    model.load_state_dict(state, strict=True, assign=True)
    left = [n for n, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if left:
        raise RuntimeError(f"no tensors given for {left}")
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "AEOutput", "AutoEncoder", "CVAE", "Classifier", "ClassifierOutput", "Discriminator", "DiscriminatorOutput",
    "GAN", "GANOutput", "Generator", "ModelConfig", "VAEGAN", "VAEGANOutput", "ADVERSARIAL_KINDS",
    "MultiStageOutput", "MultiStageVAE", "VAE", "VAEOutput", "build_model",
    "count_parameters", "layer_table", "model_from_state", "reparameterize", "MODEL_CLASSES",
    "DDPM", "DiffusionOutput", "FlowMatching", "FlowOutput", "FAMILIES", "Family", "GenerativeModel", "family", "is_conditional", "kinds", "register",
]
