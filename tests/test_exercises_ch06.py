"""Chapter 6's checker: the reparameterisation trick, with right and wrong answers."""

import torch

from genvae.exercises import ch06
from genvae.models.vae import reparameterize


def right(mu, logvar, generator):
    eps = torch.randn(mu.shape, generator=generator)
    return mu + torch.exp(0.5 * logvar) * eps


def test_the_packages_trick_and_a_learners_right_answer_pass():
    assert ch06.check_reparameterize(reparameterize).ok is True
    assert ch06.check_reparameterize(right).ok is True


def test_not_attempted():
    assert ch06.check_reparameterize(None).ok is None
    assert ch06.check_reparameterize(lambda mu, logvar, generator: None).ok is None


def test_variance_instead_of_standard_deviation():
    r = ch06.check_reparameterize(lambda mu, lv, g: mu + lv.exp() * torch.randn(mu.shape, generator=g))
    assert r.ok is False and "variance" in r.message


def test_no_gradient_through_torch_normal():
    r = ch06.check_reparameterize(lambda mu, lv, g: torch.normal(mu, (0.5 * lv).exp(), generator=g))
    assert r.ok is False and "gradient" in r.message


def test_global_rng_instead_of_the_generator():
    r = ch06.check_reparameterize(lambda mu, lv, g: mu + (0.5 * lv).exp() * torch.randn(mu.shape))
    assert r.ok is False and "generator" in r.message


def test_wrong_shape_wrong_mean_and_errors():
    r = ch06.check_reparameterize(lambda mu, lv, g: (mu + (0.5 * lv).exp() * torch.randn(mu.shape, generator=g)).sum(1))
    assert r.ok is False and "shape" in r.message
    r = ch06.check_reparameterize(lambda mu, lv, g: (0.5 * lv).exp() * torch.randn(mu.shape, generator=g))
    assert r.ok is False and "mean" in r.message
    r = ch06.check_reparameterize(lambda mu, lv, g: 1 / 0)
    assert r.ok is False and "ZeroDivisionError" in r.message
    r = ch06.check_reparameterize(lambda mu, lv, g: mu.detach() + (0.5 * lv).exp() * torch.randn(mu.shape, generator=g))
    assert r.ok is False and "mu" in r.message
