"""Models of the book, one readable file per family, all built from a :class:`ModelConfig`."""

from torch import nn

from .autoencoder import AutoEncoder
from .classifier import Classifier
from .config import ModelConfig
from .multistage import MultiStageVAE
from .outputs import AEOutput, ClassifierOutput, MultiStageOutput, VAEOutput
from .summary import layer_table
from .vae import VAE, reparameterize

MODEL_CLASSES: dict[str, type[nn.Module]] = {
    "ae": AutoEncoder,
    "vae": VAE,
    "multistage": MultiStageVAE,
    "classifier": Classifier,
}


def build_model(cfg: ModelConfig) -> nn.Module:
    """Instantiate the model a config describes (weights freshly initialised)."""
    return MODEL_CLASSES[cfg.kind](cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "AEOutput", "AutoEncoder", "Classifier", "ClassifierOutput", "ModelConfig",
    "MultiStageOutput", "MultiStageVAE", "VAE", "VAEOutput", "build_model",
    "count_parameters", "layer_table", "reparameterize", "MODEL_CLASSES",
]
