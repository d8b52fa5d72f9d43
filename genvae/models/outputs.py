"""Kept for old imports: the output dataclasses live in :mod:`genvae.outputs` (a leaf module, so that
:mod:`genvae.losses` and the model families can both import them)."""

from ..outputs import (  # noqa: F401
    AEOutput, ClassifierOutput, DiscriminatorOutput, GANOutput, MultiStageOutput, VAEGANOutput, VAEOutput,
)

__all__ = ["AEOutput", "ClassifierOutput", "DiscriminatorOutput", "GANOutput", "MultiStageOutput", "VAEGANOutput",
           "VAEOutput"]
