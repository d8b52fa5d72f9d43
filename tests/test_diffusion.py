"""The diffusion family (genvae.models.diffusion) against independent references: the chain iterated step by
step against its closed form, the schedules against their definitions, and the samplers' contracts."""

from __future__ import annotations

import math

import pytest
import torch

from genvae.models import ModelConfig, build_model
from genvae.models.diffusion import alpha_bars, ddim_steps, noise_schedule, q_sample
from genvae.utils import init_seed

TINY = ModelConfig("ddpm", "conv", channels=(4, 8), hidden=(16,), timesteps=30)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_the_closed_form_of_q_xt_given_x0_is_the_chain_iterated(kind):
    """Iterating x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps_t from x_0 gives a Gaussian whose mean and
    variance follow a recursion; the closed form says sqrt(alpha_bar_t) x_0 and 1 - alpha_bar_t."""
    betas = noise_schedule(200, kind)
    mean, var = 1.0, 0.0  # of x_t / x_0 and of the noise, starting from x_0 itself
    abar = alpha_bars(betas)
    for t, b in enumerate(betas.tolist()):
        mean, var = math.sqrt(1 - b) * mean, (1 - b) * var + b
        assert mean == pytest.approx(math.sqrt(abar[t]), rel=1e-12)
        assert var == pytest.approx(1 - float(abar[t]), rel=1e-12, abs=1e-15)


def test_the_closed_form_matches_a_simulated_chain():
    """Monte Carlo: 20,000 chains of 50 steps from x_0 = 0.7 have the closed form's mean and variance at every 10th step
    (within 5 standard errors)."""
    g = torch.Generator().manual_seed(0)
    betas = noise_schedule(50, "linear")
    abar = alpha_bars(betas)
    n, x0 = 20_000, 0.7
    x = torch.full((n,), x0, dtype=torch.float64)
    for t in range(50):
        x = (1 - betas[t]).sqrt() * x + betas[t].sqrt() * torch.randn(n, generator=g, dtype=torch.float64)
        if t % 10 == 9:
            mean, var = abar[t].sqrt() * x0, 1 - abar[t]
            assert abs(float(x.mean() - mean)) < 5 * math.sqrt(var / n)
            assert abs(float(x.var() - var)) < 5 * var * math.sqrt(2 / n)
    direct = q_sample(torch.full((n, 1), x0, dtype=torch.float64), abar[-1].expand(n),
                      torch.randn(n, 1, generator=g, dtype=torch.float64))
    assert abs(float(direct.mean() - x.mean())) < 5 * math.sqrt(2 * float(1 - abar[-1]) / n)


def test_schedules_follow_their_definitions():
    lin = noise_schedule(1000, "linear")
    assert float(lin[0]) == pytest.approx(1e-4) and float(lin[-1]) == pytest.approx(0.02)
    assert torch.all(lin[1:] > lin[:-1])
    half = noise_schedule(500, "linear")  # about the same total noise with half the steps: sum of beta is kept
    assert float(half.sum()) == pytest.approx(float(lin.sum()), rel=1e-3)
    assert math.log(alpha_bars(half)[-1]) == pytest.approx(math.log(alpha_bars(lin)[-1]), rel=0.02)
    cos = noise_schedule(1000, "cosine")
    s, t = 0.008, torch.arange(1, 1001, dtype=torch.float64) / 1000
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2 / math.cos(s / (1 + s) * math.pi / 2) ** 2
    torch.testing.assert_close(alpha_bars(cos)[:-1], f[:-1], rtol=1e-9, atol=1e-12)  # the last beta is capped
    assert float(cos.max()) <= 0.999
    with pytest.raises(ValueError, match="noise_schedule must be one of"):
        noise_schedule(10, "sigmoid")


def test_ddim_visits_distinct_steps_from_the_last_to_the_first():
    assert ddim_steps(1000, 5) == [999, 749, 500, 250, 0]
    assert ddim_steps(10, 50) == list(range(9, -1, -1))  # never more steps than the chain has
    assert ddim_steps(1000, 1) == [999]
    with pytest.raises(ValueError):
        ddim_steps(1000, 0)


def test_samplers_give_images_in_the_unit_interval_from_the_generator_alone():
    with init_seed(0):
        model = build_model(TINY).eval()
    before = torch.get_rng_state()
    a = model.sample(3, torch.Generator().manual_seed(1), steps=4)
    b = model.sample(3, torch.Generator().manual_seed(1), steps=4)
    c = model.ancestral(3, torch.Generator().manual_seed(1))
    assert torch.equal(torch.get_rng_state(), before)  # the global RNG is untouched
    assert a.shape == c.shape == (3, 1, 28, 28) and torch.equal(a, b)
    assert all(float(v.min()) >= 0 and float(v.max()) <= 1 for v in (a, c))
    z = torch.randn(3, 784, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(model.decode(z, steps=4), a, rtol=0, atol=0)  # sample = decode of CPU noise


def test_a_one_step_ddim_returns_the_networks_clipped_guess_of_x0():
    """With one step, DDIM jumps from x_T to alpha_bar = 1: it returns the x_0 that the predicted noise implies."""
    with init_seed(0):
        model = build_model(TINY).eval()
    x_T = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    abar = model.schedule()[1][-1]
    with torch.no_grad():
        eps = model.predict_noise(x_T, torch.full((2,), TINY.timesteps - 1))
    x0 = ((x_T - (1 - abar).sqrt() * eps) / abar.sqrt()).clamp(-1, 1)
    torch.testing.assert_close(model.ddim(x_T, steps=1), (x0 + 1) / 2)


def test_the_simple_loss_is_the_summed_squared_noise_error():
    from genvae.models.diffusion import DiffusionOutput, denoising_loss

    eps, eps_hat = torch.zeros(2, 1, 28, 28), torch.zeros(2, 1, 28, 28)
    eps_hat[0, 0, 0, :3] = torch.tensor([1.0, 2.0, 2.0])  # 9 for the first image, 0 for the second
    out = DiffusionOutput(eps_hat=eps_hat, eps=eps, t=torch.zeros(2, dtype=torch.long), x_t=eps)
    assert float(denoising_loss(out).total) == 4.5


def _toy_ddpm(timesteps: int = 4):
    """A tiny DDPM whose noise prediction is a fixed simple function, so that bounds are cheap to compute."""
    with init_seed(0):
        model = build_model(ModelConfig("ddpm", "conv", channels=(4, 8), hidden=(16,), timesteps=timesteps,
                                        noise_schedule="cosine")).eval()
    model.predict_noise = lambda x, t: 0.3 * x + 0.01 * t.float().view(-1, 1, 1, 1)
    return model


def test_the_negative_elbo_is_the_path_bound_computed_with_torch_distributions():
    """-ELBO = E_q[log q(x_1..x_T | x_0) - log p(x_0..x_T)], sampled along whole forward chains and scored with
    torch.distributions.Normal, agrees with the sum of closed-form Gaussian KLs (within 5 standard errors)."""
    from torch.distributions import Normal

    from genvae.models.diffusion import posterior_coefficients

    T, n = 10, 4000
    model = _toy_ddpm(T)
    g = torch.Generator().manual_seed(0)
    x0 = (torch.rand(1, 1, 28, 28, generator=g) * 2 - 1).expand(n, 1, 28, 28).contiguous()
    betas = noise_schedule(T, "cosine")
    abar = alpha_bars(betas).float()
    # Near the best prediction for data that are all this one image (the noise that x_t holds), a little off,
    # so every KL term is small but not zero and the estimates have a small spread.
    def near_best(off: float):
        return lambda x, t: ((x - abar[t].sqrt().view(-1, 1, 1, 1) * x0[:1])
                             / (1 - abar[t]).sqrt().view(-1, 1, 1, 1) + off * x)

    model.predict_noise = near_best(0.05)
    c0, c1, var = posterior_coefficients(betas)
    # the forward chain, step by step: x[i] is step index i (the papers' t = i + 1)
    xs, prev = [], x0.double()
    for i in range(T):
        prev = (1 - betas[i]).sqrt() * prev + betas[i].sqrt() * torch.randn(prev.shape, generator=g, dtype=torch.float64)
        xs.append(prev)
    log_q = sum(Normal((1 - betas[i]).sqrt() * (xs[i - 1] if i else x0.double()), betas[i].sqrt()).log_prob(xs[i])
                .flatten(1).sum(1) for i in range(T))
    log_p = Normal(0.0, 1.0).log_prob(xs[-1]).flatten(1).sum(1)
    for i in range(T - 1, 0, -1):  # p(x_{i-1} | x_i): the posterior's form at the predicted x_0
        x0_hat = model.predict_x0(xs[i].float(), torch.full((n,), i)).double()
        log_p = log_p + Normal(c0[i] * x0_hat + c1[i] * xs[i], var[i].sqrt()).log_prob(xs[i - 1]).flatten(1).sum(1)
    x0_hat = model.predict_x0(xs[0].float(), torch.zeros(n, dtype=torch.long)).double()
    log_p = log_p + Normal(x0_hat, betas[0].sqrt()).log_prob(x0.double()).flatten(1).sum(1)
    path = log_q - log_p  # (n,) one-sample estimates of -ELBO
    ours = model.negative_elbo(x0, torch.Generator().manual_seed(1), samples=8)
    se = (path.var() / n + ours.var() / n).sqrt()
    assert abs(float(path.mean() - ours.mean())) < 5 * float(se)
    # The check has teeth: a prediction a little further off moves the bound by far more than the error bar.
    model.predict_noise = near_best(0.08)
    worse = model.negative_elbo(x0, torch.Generator().manual_seed(1), samples=8)
    assert float(worse.mean() - path.mean()) > 20 * float(se)


def test_bits_per_dim_follows_the_dequantisation_protocol():
    from genvae.analysis.likelihood import dequantize, diffusion_bits_per_dim

    x = torch.randint(0, 256, (3, 1, 28, 28), generator=torch.Generator().manual_seed(0)).float() / 255
    y = dequantize(x, torch.Generator().manual_seed(1))
    k = torch.round(x * 255)
    assert torch.all((y >= k / 256) & (y < (k + 1) / 256))  # each pixel inside its own cell
    model = _toy_ddpm()
    bpd = diffusion_bits_per_dim(model, x, samples=4, seed=2)
    assert bpd == diffusion_bits_per_dim(model, x, samples=4, seed=2)  # seeded
    g = torch.Generator().manual_seed(2)  # the same draws, by hand: 7 + nats / (D ln 2)
    nats = model.negative_elbo(2 * dequantize(x, g) - 1, g, 4).mean()
    assert bpd == pytest.approx(7 + float(nats) / (784 * math.log(2)), rel=1e-12)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_the_elbo_weight_of_each_step_is_ho_et_als_closed_form(kind):
    """lambda_t = beta_t^2 / (2 sigma_t^2 alpha_t (1 - alpha_bar_t)) with sigma_t^2 = beta tilde_t (Ho et al.,
    eq. 12), written from the schedule directly, against elbo_weights (from the posterior's coefficients)."""
    from genvae.models.diffusion import elbo_weights, signal_to_noise

    betas = noise_schedule(100, kind)
    abar = torch.cumprod(1 - betas, 0)
    prev = torch.cat([torch.ones(1, dtype=abar.dtype), abar[:-1]])
    tilde = betas * (1 - prev) / (1 - abar)
    ho = betas.pow(2) / (2 * tilde * (1 - betas) * (1 - abar))
    w = elbo_weights(betas)
    assert torch.isnan(w[0])
    assert torch.allclose(w[1:], ho[1:], rtol=1e-9)
    snr = signal_to_noise(abar)
    assert bool((snr[1:] < snr[:-1]).all()), "the signal-to-noise ratio falls at every step"


def test_a_vaes_bits_per_dim_is_its_gaussian_decoder_elbo_under_the_same_protocol():
    """vae_bits_per_dim against the same bound written with torch.distributions (Normal log-densities, the
    closed-form KL), from the same draws; gaussian_decoder_scale against the RMS error by hand."""
    from torch.distributions import Normal, kl_divergence

    from genvae.analysis.likelihood import dequantize, gaussian_decoder_scale, vae_bits_per_dim

    with init_seed(0):
        vae = build_model(ModelConfig("vae", latent_dim=3, hidden=(16,))).eval()
    x = torch.randint(0, 256, (5, 1, 28, 28), generator=torch.Generator().manual_seed(0)).float() / 255
    with torch.no_grad():
        rms = float((torch.sigmoid(vae.decode(vae.encode(x)[0])) - x).pow(2).mean().sqrt())
    assert gaussian_decoder_scale(vae, x) == pytest.approx(rms, rel=1e-6)
    sigma = 0.3
    bpd = vae_bits_per_dim(vae, x, sigma, samples=2, seed=4)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        y = dequantize(x, g)
        mu, logvar = vae.encode(y)
        std = torch.exp(0.5 * logvar)
        recon = 0
        for _ in range(2):
            z = mu + std * torch.randn(mu.shape, generator=g)
            recon = recon + Normal(torch.sigmoid(vae.decode(z)).double(), sigma).log_prob(y.double()).flatten(1).sum(1)
        kl = kl_divergence(Normal(mu, std), Normal(0.0, 1.0)).sum(1).double()
    nats = float((kl - recon / 2).mean())
    assert bpd == pytest.approx(8 + nats / (784 * math.log(2)), rel=1e-6)
    with pytest.raises(ValueError):
        vae_bits_per_dim(vae, x, 0.0)


def test_a_ddpm_makes_its_schedule_once_per_device_and_keeps_it_out_of_the_state_dict():
    """A training step captured as a CUDA graph may only read the schedule: it is made on the first call and the
    same tensors come back after (a copy from the CPU inside a capture fails)."""
    from genvae.models import ModelConfig, build_model

    model = build_model(ModelConfig("ddpm", "conv", channels=(4, 8), timesteps=20))
    betas, abar = model.schedule(torch.device("cpu"))
    again = model.schedule(None)
    assert again[0] is betas and again[1] is abar
    expected = noise_schedule(20, model.config.noise_schedule)
    torch.testing.assert_close(betas, expected.float())
    torch.testing.assert_close(abar, alpha_bars(expected).float())
    assert not any("schedule" in k for k in model.state_dict())
