"""Flow matching (genvae.models.flow) on a problem whose answer is known in closed form.

Noise x_0 ~ N(0, 1) and data x_1 ~ N(m, s^2), independent: x_t = (1 - t) x_0 + t x_1 is Gaussian, and the
marginal velocity E[x_1 - x_0 | x_t = x] is linear in x,

    u(x, t) = m + (t s^2 - (1 - t)) / ((1 - t)^2 + t^2 s^2) * (x - t m),

from the covariance of two jointly Gaussian variables. The flow of u carries N(0, 1) to N(m, s^2).
"""

from __future__ import annotations

import math

import pytest
import torch

from genvae.models import ModelConfig, build_model
from genvae.models.flow import flow_matching_loss, gaussian_marginal_velocity, integrate, network_evaluations
from genvae.models.unet import sampling_precision
from genvae.utils import init_seed

M, S = 1.5, 0.5


def marginal_velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return gaussian_marginal_velocity(x, t, M, S)


def test_regressing_on_the_conditional_velocity_recovers_the_marginal_one():
    """At a fixed t, the least-squares fit of x_1 - x_0 on x_t is the marginal velocity's line: the minimiser of
    the conditional loss is the marginal field (the flow-matching theorem, checked by simulation)."""
    g = torch.Generator().manual_seed(0)
    n = 200_000
    for t in (0.2, 0.5, 0.9):
        x0 = torch.randn(n, generator=g, dtype=torch.float64)
        x1 = M + S * torch.randn(n, generator=g, dtype=torch.float64)
        xt, v = (1 - t) * x0 + t * x1, x1 - x0
        design = torch.stack([torch.ones(n, dtype=torch.float64), xt], dim=1)
        intercept, slope = torch.linalg.lstsq(design, v[:, None]).solution[:, 0].tolist()
        tt = torch.tensor(t, dtype=torch.float64)
        fitted = intercept + slope * torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64)
        closed = marginal_velocity(torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64), tt)
        assert fitted.tolist() == pytest.approx(closed.tolist(), abs=0.03)


@pytest.mark.parametrize("solver,steps,tol", [("euler", 200, 0.02), ("heun", 20, 0.005)])
def test_the_flow_of_the_marginal_velocity_carries_noise_to_the_data(solver, steps, tol):
    x = torch.randn(100_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = integrate(marginal_velocity, x, steps, solver)
    assert float(out.mean()) == pytest.approx(M, abs=tol + 4 * S / math.sqrt(len(x)))
    assert float(out.std()) == pytest.approx(S, abs=tol + 4 * S / math.sqrt(2 * len(x)))


def test_heun_is_more_accurate_than_euler_at_the_same_number_of_steps():
    """On a field with a known solution (dx/dt = x: x(1) = e x(0)), Heun's error is far below Euler's."""
    x0 = torch.ones(1, dtype=torch.float64)
    exact = math.e
    euler = float(integrate(lambda x, t: x, x0, 10, "euler"))
    heun = float(integrate(lambda x, t: x, x0, 10, "heun"))
    assert euler == pytest.approx(1.1**10)  # Euler: (1 + 1/10)^10
    assert abs(heun - exact) < abs(euler - exact) / 20
    assert network_evaluations(10, "euler") == 10 and network_evaluations(10, "heun") == 20
    with pytest.raises(ValueError, match="solver must be one of"):
        integrate(lambda x, t: x, x0, 10, "rk4")


def test_the_model_samples_through_its_velocity_and_the_loss_is_the_summed_squared_error():
    cfg = ModelConfig("flow", "conv", channels=(4, 8), hidden=(16,))
    with init_seed(0):
        model = build_model(cfg).eval()
    a = model.sample(2, torch.Generator().manual_seed(5), steps=3, solver="heun")
    z = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(5))
    with torch.no_grad(), sampling_precision(torch.device("cpu")):
        expected = ((integrate(model.velocity, z, 3, "heun") + 1) / 2).clamp(0, 1)
    torch.testing.assert_close(a, expected, rtol=0, atol=0)
    out = model(torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(6)), torch.Generator().manual_seed(7))
    manual = ((out.v_hat - out.v) ** 2).flatten(1).sum(1).mean()
    torch.testing.assert_close(flow_matching_loss(out).total, manual)


def test_the_change_of_variables_gives_the_datas_log_density_under_the_known_flow():
    """Under the exact marginal velocity, the flow's density at t = 1 is N(M, S^2) per coordinate: the ODE's
    log-likelihood (exact traces, and Hutchinson's, which is exact here because the Jacobian is diagonal)
    matches torch.distributions.Normal's log_prob."""
    from torch.distributions import Normal

    from genvae.analysis.likelihood import flow_log_likelihood

    x1 = M + S * torch.randn(6, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    truth = Normal(M, S).log_prob(x1).sum(1)
    field = lambda x, t: marginal_velocity(x, t[:, None])  # t (B,) per example, x (B, 4)
    exact = flow_log_likelihood(field, x1, steps=200, exact=True)
    probes = flow_log_likelihood(field, x1, steps=200, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(exact, truth, rtol=0, atol=1e-3)
    torch.testing.assert_close(probes, truth, rtol=0, atol=1e-3)
    coarse = flow_log_likelihood(field, x1, steps=5, exact=True)
    assert float((coarse - truth).abs().max()) > 1e-3  # a coarse path is visibly off: the test can tell
    with pytest.raises(ValueError, match="needs a generator"):
        flow_log_likelihood(field, x1)


def test_flow_bits_per_dim_follows_the_protocol():
    from genvae.analysis.likelihood import dequantize, flow_bits_per_dim, flow_log_likelihood

    with init_seed(0):
        model = build_model(ModelConfig("flow", "conv", channels=(4, 8), hidden=(16,))).eval()
    x = torch.randint(0, 256, (2, 1, 28, 28), generator=torch.Generator().manual_seed(0)).float() / 255
    bpd = flow_bits_per_dim(model, x, steps=2, seed=3)
    g = torch.Generator().manual_seed(3)  # the same draws, by hand
    nats = -flow_log_likelihood(model.velocity, 2 * dequantize(x, g) - 1, 2, g).mean()
    assert bpd == pytest.approx(7 + float(nats) / (784 * math.log(2)), rel=1e-9)


def test_a_latent_flow_learns_the_known_velocity_and_carries_noise_to_the_data():
    """LatentFlow (flow matching on codes, an MLP) fitted to 1-D samples of N(m, s^2), unstandardised: its
    velocity is close to the closed form where the paths pass, and its samples have the data's moments."""
    from genvae.analysis.latent import LatentFlow

    g = torch.Generator().manual_seed(0)
    z = M + S * torch.randn(20_000, 1, generator=g)
    flow = LatentFlow(z, steps=1500, hidden=(64, 64), seed=0, standardise=False)
    assert flow.losses[-100:].mean() < flow.losses[:100].mean()
    x = torch.linspace(-1.0, 2.0, 31)[:, None]
    for t in (0.25, 0.5, 0.75):
        tt = torch.full((len(x),), t)
        v = flow.velocity(x, tt)[:, 0]
        centre = (x[:, 0] - t * M).abs() < 1.0  # where the marginal density at t has its mass
        err = (v - marginal_velocity(x[:, 0], torch.tensor(t)))[centre].abs().max()
        assert err < 0.25, (t, float(err))
    s = flow.sample(20_000, torch.Generator().manual_seed(1), steps=20)
    assert float(s.mean()) == pytest.approx(M, abs=0.05)
    assert float(s.std()) == pytest.approx(S, abs=0.05)
    again = LatentFlow(z, steps=1500, hidden=(64, 64), seed=0, standardise=False)
    assert torch.equal(again.losses, flow.losses), "a fit is repeatable from its seed"


def test_a_latent_flow_refuses_bad_codes():
    from genvae.analysis.latent import LatentFlow

    with pytest.raises(ValueError):
        LatentFlow(torch.zeros(1, 3))
    with pytest.raises((ValueError, TypeError)):
        LatentFlow(torch.zeros(10, 3), steps=0)


def test_sampling_runs_the_network_in_the_training_precision_close_to_float32(monkeypatch):
    """bf16 autocast where the book trains in bf16 (GENVAE_PRECISION), float32 otherwise; images agree closely."""
    cfg = ModelConfig("flow", "conv", channels=(4, 8), hidden=(16,))
    with init_seed(0):
        model = build_model(cfg).eval()
    monkeypatch.setenv("GENVAE_PRECISION", "fp32")
    full = model.sample(4, torch.Generator().manual_seed(5), steps=4)
    with torch.no_grad():
        z = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(5))
        torch.testing.assert_close(full, ((integrate(model.velocity, z, 4, "euler") + 1) / 2).clamp(0, 1),
                                   rtol=0, atol=0)
    monkeypatch.setenv("GENVAE_PRECISION", "bf16")
    half = model.sample(4, torch.Generator().manual_seed(5), steps=4)
    assert half.dtype == torch.float32
    assert float((half - full).abs().max()) < 0.05


def test_a_latent_flow_fitted_inside_no_grad_still_trains():
    """A sampler built lazily inside torch.no_grad() (the scoreboard draws that way) fits the same flow."""
    from genvae.analysis.latent import LatentFlow

    z = torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        inside = LatentFlow(z, steps=30, hidden=(16,), seed=1)
    outside = LatentFlow(z, steps=30, hidden=(16,), seed=1)
    assert torch.equal(inside.losses, outside.losses)
