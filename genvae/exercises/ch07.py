"""Chapter 7's exercise checker: the learner writes the multi-stage loss, recon + β·KL + γ·CE.

:func:`check_multistage_loss` calls the learner's ``loss_fn(out, x, y, beta, gamma)`` on a small made-up batch
(:func:`example_batch`) at several weights and compares the result with :func:`genvae.models.losses.multistage_loss`.
A wrong answer is matched against the usual slips (a mean over pixels instead of a sum, a binary
cross-entropy, a KL with its sign flipped, β and γ swapped...) so the message can name the slip.

    >>> from genvae.exercises import ch07
    >>> from genvae import losses
    >>> ch07.check_multistage_loss(lambda out, x, y, beta, gamma: losses.multistage_loss(out, x, y, beta, gamma).total).ok
    True
    >>> ch07.check_multistage_loss(None).ok is None
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..models import losses
from ..models.outputs import MultiStageOutput
from . import Result, call_answer, compare, failed, not_attempted, passed

__all__ = ["example_batch", "check_multistage_loss", "WEIGHTS"]

# (beta, gamma) pairs the loss is tried at: equal weights, the chapter's kind of weights, and one weight at 0,
# so that each term is seen alone at least once.
WEIGHTS = ((1.0, 1.0), (4.0, 10.0), (0.5, 0.0), (0.0, 3.0))


def example_batch(batch: int = 8, latent_dim: int = 2, n_classes: int = 10,
                  seed: int = 0) -> tuple[MultiStageOutput, Tensor, Tensor]:
    """A made-up batch ``(out, x, y)`` shaped like a multi-stage VAE's: ``out`` has ``x_logits`` and ``x_hat``
    ``(B, 1, 28, 28)``, ``mu``, ``logvar`` and ``z`` ``(B, D)``, class scores ``logits`` ``(B, K)``; ``x`` holds
    images in [0, 1] and ``y`` labels. ``mu`` requires a gradient, so a loss built from it can be backpropagated."""
    g = torch.Generator().manual_seed(seed)
    x_logits = 2 * torch.randn(batch, 1, 28, 28, generator=g)
    x = torch.rand(batch, 1, 28, 28, generator=g)
    mu = torch.randn(batch, latent_dim, generator=g).requires_grad_()
    logvar = 0.5 * torch.randn(batch, latent_dim, generator=g)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(batch, latent_dim, generator=g)
    logits = 2 * torch.randn(batch, n_classes, generator=g)
    y = torch.randint(0, n_classes, (batch,), generator=g)
    out = MultiStageOutput(x_hat=torch.sigmoid(x_logits), x_logits=x_logits, z=z, mu=mu, logvar=logvar, logits=logits)
    return out, x, y


def _slips(out: MultiStageOutput, x: Tensor, y: Tensor, beta: float, gamma: float) -> list[tuple[str, Tensor]]:
    """The totals that common mistakes give, each with the sentence that names the mistake."""
    sq = (torch.sigmoid(out.x_logits) - x).pow(2)
    recon = sq.flatten(1).sum(1).mean()
    kl_dims = losses.gaussian_kl_per_dim(out.mu, out.logvar)
    kl = kl_dims.sum(1).mean()
    ce = F.cross_entropy(out.logits, y)
    one_hot = F.one_hot(y, out.logits.shape[1]).to(out.logits.dtype)
    bce_mean = F.binary_cross_entropy_with_logits(out.logits, one_hot)
    bce_sum = F.binary_cross_entropy_with_logits(out.logits, one_hot, reduction="none").sum(1).mean()
    bce_pixels = F.binary_cross_entropy_with_logits(out.x_logits, x, reduction="none").flatten(1).sum(1).mean()
    raw_recon = (out.x_logits - x).pow(2).flatten(1).sum(1).mean()
    return [
        ("the reconstruction term is averaged over the pixels; it should be summed over them (then averaged over "
         "the batch)", sq.mean() + beta * kl + gamma * ce),
        ("the reconstruction term compares the logits with x; take the sigmoid of out.x_logits first",
         raw_recon + beta * kl + gamma * ce),
        ("the reconstruction term is a binary cross-entropy; this chapter's decoder uses the squared error",
         bce_pixels + beta * kl + gamma * ce),
        ("the KL term has the wrong sign: KL = -1/2 Σ (1 + log σ² - μ² - σ²), with the leading minus",
         recon - beta * kl + gamma * ce),
        ("the KL term lacks its factor 1/2", recon + 2 * beta * kl + gamma * ce),
        ("the KL term is averaged over the latent dimensions; it should be summed over them",
         recon + beta * kl_dims.mean() + gamma * ce),
        ("the classification term is a binary cross-entropy (averaged over every class score); with ten classes it "
         "is the categorical cross-entropy, F.cross_entropy(out.logits, y)", recon + beta * kl + gamma * bce_mean),
        ("the classification term is a binary cross-entropy (one yes/no question per class); with ten classes it "
         "is the categorical cross-entropy, F.cross_entropy(out.logits, y)", recon + beta * kl + gamma * bce_sum),
        ("β and γ are swapped: β weighs the KL term, γ the cross-entropy", recon + gamma * kl + beta * ce),
        ("the KL term is missing (or not weighted by β)", recon + gamma * ce),
        ("the KL term is not multiplied by β", recon + kl + gamma * ce),
        ("the cross-entropy term is missing", recon + beta * kl),
        ("the cross-entropy term is not multiplied by γ", recon + beta * kl + ce),
        ("the loss is summed over the batch; average it over the batch instead",
         len(x) * (recon + beta * kl + gamma * ce)),
    ]


def check_multistage_loss(loss_fn) -> Result:
    """Check ``loss_fn(out, x, y, beta, gamma) -> scalar tensor`` against :func:`genvae.models.losses.multistage_loss`
    at every ``(beta, gamma)`` of :data:`WEIGHTS`; on a mismatch, name the slip when it is a known one."""
    if loss_fn is None:
        return not_attempted("`my_multistage_loss`")
    out, x, y = example_batch()
    for beta, gamma in WEIGHTS:
        got, raised = call_answer(lambda: loss_fn(out, x, y, beta, gamma), doing=f"at β = {beta:g}, γ = {gamma:g} it")
        if raised is not None:
            return raised
        if got is None:
            return not_attempted("`my_multistage_loss` (it returned None)")
        if not isinstance(got, torch.Tensor):
            return failed(f"it returned a {type(got).__name__}; return the loss as a tensor, so that it can be "
                          "backpropagated")
        if got.numel() != 1:
            return failed(f"it returned a tensor of shape {tuple(got.shape)}; the loss is one number per batch "
                          "(sum over pixels and latent dimensions, mean over the batch)")
        expected = losses.multistage_loss(out, x, y, beta, gamma).total
        verdict = compare(float(got.detach()), float(expected.detach()), f"the loss at β = {beta:g}, γ = {gamma:g}")
        if not verdict:
            for slip, value in _slips(out, x, y, beta, gamma):
                if torch.isclose(got.detach().double().reshape(()), value.detach().double(), rtol=1e-4, atol=1e-5):
                    return failed(f"at β = {beta:g}, γ = {gamma:g}: {slip}")
            return verdict
        if not got.requires_grad:
            return failed("the value is right, but it is cut off from the model's outputs (no gradient): compute it "
                          "with torch operations on `out`, without .item() or a new tensor")
    return passed(f"recon + β·KL + γ·CE matches genvae.models.losses.multistage_loss at all {len(WEIGHTS)} (β, γ) pairs tried")
