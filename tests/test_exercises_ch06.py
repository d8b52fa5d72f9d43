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


def right_free_bits(mu, logvar, free_bits):
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())  # (B, D)
    return kl.mean(0).clamp(min=free_bits).sum()


def test_free_bits_right_answers_pass():
    from genvae import losses

    assert ch06.check_free_bits_kl(right_free_bits).ok is True
    assert ch06.check_free_bits_kl(losses.free_bits_kl).ok is True
    assert ch06.check_free_bits_kl(None).ok is None


def test_free_bits_wrong_answers_say_what_is_wrong():
    kl = lambda mu, lv: -0.5 * (1 + lv - mu.pow(2) - lv.exp())  # noqa: E731
    per_image = ch06.check_free_bits_kl(lambda mu, lv, fb: kl(mu, lv).clamp(min=fb).sum(1).mean())
    assert per_image.ok is False and "each image" in per_image.message
    total = ch06.check_free_bits_kl(lambda mu, lv, fb: kl(mu, lv).sum(1).mean().clamp(min=fb))
    assert total.ok is False and "total" in total.message
    no_floor = ch06.check_free_bits_kl(lambda mu, lv, fb: kl(mu, lv).sum(1).mean())
    assert no_floor.ok is False and "changed nothing" in no_floor.message
    sign = ch06.check_free_bits_kl(lambda mu, lv, fb: (0.5 * (1 + lv - mu.pow(2) - lv.exp())).mean(0).clamp(min=fb).sum())
    assert sign.ok is False and "free_bits = 0" in sign.message
    # the right value, but a floor that still passes gradient below it
    leaky = ch06.check_free_bits_kl(lambda mu, lv, fb: kl(mu, lv).mean(0).sum()
                                    + (kl(mu, lv).mean(0).clamp(min=fb) - kl(mu, lv).mean(0)).detach().sum())
    assert leaky.ok is False and "gradient" in leaky.message
    vector = ch06.check_free_bits_kl(lambda mu, lv, fb: kl(mu, lv).mean(0).clamp(min=fb))
    assert vector.ok is False and "one number" in vector.message


def test_retrain_is_repeatable_and_counts_units():
    import torch

    x = torch.rand(300, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    from genvae import losses

    a = ch06.retrain(losses.gaussian_kl, x, x, latent_dim=3, steps=5, batch_size=16, n_train=300)
    b = ch06.retrain(losses.gaussian_kl, x, x, latent_dim=3, steps=5, batch_size=16, n_train=300)
    assert a["active units"] == b["active units"] and torch.equal(a["KL per dimension"], b["KL per dimension"])
    assert 0 <= a["active units"] <= 3 and a["KL per dimension"].shape == (3,)
