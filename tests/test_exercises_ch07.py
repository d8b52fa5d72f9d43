"""Chapter 7's checker (genvae.exercises.ch07) accepts the multi-stage loss and names the usual slips."""

import torch
import torch.nn.functional as F

from genvae import losses
from genvae.exercises import ch07


def right(out, x, y, beta, gamma):
    recon = (torch.sigmoid(out.x_logits) - x).pow(2).flatten(1).sum(1).mean()
    kl = (-0.5 * (1 + out.logvar - out.mu.pow(2) - out.logvar.exp())).sum(1).mean()
    return recon + beta * kl + gamma * F.cross_entropy(out.logits, y)


def test_the_right_loss_passes_and_matches_the_package():
    assert ch07.check_multistage_loss(right).ok is True
    out, x, y = ch07.example_batch()
    assert torch.allclose(right(out, x, y, 4.0, 10.0), losses.multistage_loss(out, x, y, 4.0, 10.0).total)


def test_an_answer_left_as_none_is_not_attempted():
    assert ch07.check_multistage_loss(None).ok is None
    assert ch07.check_multistage_loss(lambda out, x, y, beta, gamma: None).ok is None


def test_a_binary_cross_entropy_is_named():
    def binary(out, x, y, beta, gamma):
        one_hot = F.one_hot(y, 10).float()
        ce = F.binary_cross_entropy_with_logits(out.logits, one_hot, reduction="none").sum(1).mean()
        return right(out, x, y, beta, 0.0) + gamma * ce

    result = ch07.check_multistage_loss(binary)
    assert result.ok is False and "categorical" in result.message


def test_swapped_weights_a_flipped_kl_and_a_pixel_mean_are_named():
    swapped = ch07.check_multistage_loss(lambda out, x, y, beta, gamma: right(out, x, y, gamma, beta))
    assert swapped.ok is False and "swapped" in swapped.message

    def flipped(out, x, y, beta, gamma):
        kl = (0.5 * (1 + out.logvar - out.mu.pow(2) - out.logvar.exp())).sum(1).mean()
        recon = (torch.sigmoid(out.x_logits) - x).pow(2).flatten(1).sum(1).mean()
        return recon + beta * kl + gamma * F.cross_entropy(out.logits, y)

    sign = ch07.check_multistage_loss(flipped)
    assert sign.ok is False and "sign" in sign.message

    def pixel_mean(out, x, y, beta, gamma):
        recon = (torch.sigmoid(out.x_logits) - x).pow(2).mean()
        kl = (-0.5 * (1 + out.logvar - out.mu.pow(2) - out.logvar.exp())).sum(1).mean()
        return recon + beta * kl + gamma * F.cross_entropy(out.logits, y)

    mean = ch07.check_multistage_loss(pixel_mean)
    assert mean.ok is False and "summed" in mean.message


def test_wrong_types_shapes_errors_and_detached_values_fail_without_raising():
    assert ch07.check_multistage_loss(lambda out, x, y, beta, gamma: right(out, x, y, beta, gamma).detach().item()).ok is False
    per_image = ch07.check_multistage_loss(lambda out, x, y, beta, gamma: right(out, x, y, beta, gamma).expand(8))
    assert per_image.ok is False and "shape" in per_image.message
    raised = ch07.check_multistage_loss(lambda out, x, y, beta, gamma: 1 / 0)
    assert raised.ok is False and "ZeroDivisionError" in raised.message
    detached = ch07.check_multistage_loss(lambda out, x, y, beta, gamma: right(out, x, y, beta, gamma).detach())
    assert detached.ok is False and "gradient" in detached.message
    off = ch07.check_multistage_loss(lambda out, x, y, beta, gamma: right(out, x, y, beta, gamma) + 1.0)
    assert off.ok is False and "expected" in off.message
