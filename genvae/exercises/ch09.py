"""Chapter 9 (GANs): the checkers for the exercise on the optimal discriminator, on a 1-D toy.

The data are N(0, 1) and a fixed "generator" draws from N(1.5, 0.7^2) (:func:`toy`). The learner
implements D*(x) = p_data(x) / (p_data(x) + p_G(x)) (:func:`check_optimal_discriminator`), then derives the
Jensen-Shannon divergence from the value of the game at D*, V(D*, G) = 2 JSD(p_data || p_G) - log 4
(:func:`check_jsd`). :func:`fit_discriminator` trains a small network on samples of the two densities, so
that a solution can set a trained discriminator beside the formula.

    >>> from genvae.exercises import ch09
    >>> ch09.check_optimal_discriminator(None).ok is None       # not attempted yet
    True
    >>> p_data, p_g = ch09.toy()
    >>> ch09.check_optimal_discriminator(lambda x: p_data.log_prob(x).exp()
    ...                                  / (p_data.log_prob(x).exp() + p_g.log_prob(x).exp())).ok
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.distributions import Normal

from . import Result, call_answer, compare, compare_tensors, failed, not_attempted, passed

__all__ = ["DATA", "GENERATOR", "toy", "optimal_discriminator", "jsd", "game_value", "fit_discriminator",
           "check_optimal_discriminator", "check_jsd"]

DATA = (0.0, 1.0)  # p_data = N(mean, sd^2)
GENERATOR = (1.5, 0.7)  # p_G = N(mean, sd^2): a generator that is off in both place and width


def toy() -> tuple[Normal, Normal]:
    """The two densities of the exercise, as ``torch.distributions.Normal``: ``(p_data, p_g)``."""
    as64 = lambda v: torch.tensor(v, dtype=torch.float64)
    return Normal(*map(as64, DATA)), Normal(*map(as64, GENERATOR))


def optimal_discriminator(x: Tensor) -> Tensor:
    """The reference D*(x) = p_data / (p_data + p_G) = sigmoid(log p_data - log p_G), elementwise."""
    p_data, p_g = toy()
    return torch.sigmoid(p_data.log_prob(x) - p_g.log_prob(x))


def _grid(n: int = 200_001) -> Tensor:
    return torch.linspace(-12.0, 12.0, n, dtype=torch.float64)


def jsd() -> float:
    """JSD(p_data || p_G) in nats, by numerical integration on a fine grid (exact to about 1e-9 here)."""
    p_data, p_g = toy()
    x = _grid()
    a, b = p_data.log_prob(x).exp(), p_g.log_prob(x).exp()
    m = (a + b) / 2
    integrand = 0.5 * (a * torch.log(a / m)) + 0.5 * (b * torch.log(b / m))
    return float(torch.trapezoid(torch.nan_to_num(integrand), x))


def game_value(discriminator: Callable[[Tensor], Tensor]) -> float:
    """V(D, G) = E_data[log D(x)] + E_G[log(1 - D(x))] for the toy, by numerical integration on a grid.
    At D = D* it is 2 JSD - log 4; any other D gives less."""
    p_data, p_g = toy()
    x = _grid(40_001)
    d = discriminator(x).double().clamp(1e-12, 1 - 1e-12)
    return float(torch.trapezoid(p_data.log_prob(x).exp() * d.log() + p_g.log_prob(x).exp() * (1 - d).log(), x))


def fit_discriminator(steps: int = 1000, batch: int = 256, seed: int = 0) -> Callable[[Tensor], Tensor]:
    """Train a small discriminator (1 -> 32 -> 32 -> 1, tanh) on samples of the toy, as a GAN's
    discriminator is trained: binary cross-entropy, real = 1, generated = 0, Adam. Returns a function
    x -> D(x) in (0, 1), elementwise. A few seconds on a laptop CPU."""
    g = torch.Generator().manual_seed(seed)
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(seed)  # the layers' initial weights
    net = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1)).double()
    torch.random.set_rng_state(torch_state)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    (m_d, s_d), (m_g, s_g) = DATA, GENERATOR
    for _ in range(steps):
        real = m_d + s_d * torch.randn(batch, 1, generator=g, dtype=torch.float64)
        fake = m_g + s_g * torch.randn(batch, 1, generator=g, dtype=torch.float64)
        loss = nn.functional.softplus(-net(real)).mean() + nn.functional.softplus(net(fake)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    def d(x: Tensor) -> Tensor:
        with torch.no_grad():
            return torch.sigmoid(net(x.double().reshape(-1, 1))).reshape(x.shape)

    return d


def check_optimal_discriminator(answer: Callable | None) -> Result:
    """Check ``answer(x)``: D*(x) for the toy, elementwise on a tensor ``x`` (any shape), in (0, 1).
    Compared with :func:`optimal_discriminator` on a grid; the common slips are named (the two densities
    swapped, the logit or the density ratio returned instead of the probability)."""
    if answer is None:
        return not_attempted("`my_optimal_discriminator`")
    x = torch.linspace(-4.0, 5.0, 181, dtype=torch.float64)
    got, raised = call_answer(lambda: answer(x))
    if raised is not None:
        return raised
    if got is None:
        return not_attempted("the body of `my_optimal_discriminator` (it returned None)")
    if not isinstance(got, Tensor):
        return failed(f"it should return a torch.Tensor, got {type(got).__name__}")
    expected = optimal_discriminator(x)
    if tuple(got.shape) == tuple(x.shape) and torch.isfinite(got).all():
        g = got.detach().double()
        close = lambda other: torch.allclose(g, other, rtol=1e-4, atol=1e-6)
        if close(1 - expected):
            return failed("this is p_G / (p_data + p_G), the probability that x was *generated*: swap the two densities")
        if close(torch.logit(expected)):
            return failed("this is the logit log p_data - log p_G: apply the sigmoid to get a probability")
        if close(expected / (1 - expected)):
            return failed("this is the density ratio p_data / p_G; D* divides by p_data + p_G")
    result = compare_tensors(got, expected, "D*(x) on a grid of x")
    if result.ok:
        return passed("D*(x) matches p_data / (p_data + p_G) on the whole grid")
    return result


def check_jsd(answer) -> Result:
    """Check a number: JSD(p_data || p_G) of the toy, in nats (to within 3%, so a Monte Carlo estimate
    passes). The common slips are named: V(D*, G) itself, bits instead of nats, twice the JSD."""
    if answer is None:
        return not_attempted("`my_jsd`")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return failed(f"the JSD should be a number, got {type(answer).__name__}")
    expected = jsd()
    near = lambda v: math.isfinite(value) and math.isclose(value, v, rel_tol=0.03, abs_tol=0.002)
    if near(2 * expected - math.log(4)):
        return failed(f"{value:.4f} is V(D*, G) itself; solve V = 2 JSD - log 4 for the JSD")
    if near(expected / math.log(2)):
        return failed(f"{value:.4f} is the JSD in bits; the book uses nats (natural logarithms)")
    if near(2 * expected):
        return failed(f"{value:.4f} is twice the JSD: V(D*, G) + log 4 is 2 JSD")
    return compare(value, expected, "the JSD (nats)", rtol=0.03, atol=0.002)
