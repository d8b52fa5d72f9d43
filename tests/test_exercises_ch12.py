"""Chapter 12's checkers accept the right answers, name the usual slips, and report errors without raising."""

from __future__ import annotations

import torch

from genvae.exercises import ch12
from genvae.models.diffusion import alpha_bars, elbo_weights, noise_schedule


def test_alpha_bar_right_slips_and_errors():
    assert ch12.check_alpha_bar(lambda b: torch.cumprod(1 - b, 0)).ok is True
    assert ch12.check_alpha_bar(None).ok is None and ch12.check_alpha_bar(lambda b: None).ok is None
    assert "product of the betas" in ch12.check_alpha_bar(lambda b: torch.cumprod(b, 0)).message
    assert "sum" in ch12.check_alpha_bar(lambda b: 1 - torch.cumsum(b, 0)).message
    assert "square" in ch12.check_alpha_bar(lambda b: torch.cumprod(1 - b, 0).sqrt()).message
    assert "off by one" in ch12.check_alpha_bar(lambda b: torch.cat([torch.ones(1, dtype=b.dtype),
                                                                      torch.cumprod(1 - b, 0)[:-1]])).message
    assert ch12.check_alpha_bar(lambda b: 1 / 0).ok is False
    assert "shape" in ch12.check_alpha_bar(lambda b: torch.cumprod(1 - b, 0)[1:]).message


def test_the_chain_reference_is_the_closed_form():
    betas = noise_schedule(200, "cosine")
    assert torch.allclose(ch12.chain_alpha_bar(betas), alpha_bars(betas), rtol=1e-10)


def test_elbo_weight_right_slips_and_errors():
    def right(b):
        abar = torch.cumprod(1 - b, 0)
        prev = torch.cat([torch.ones(1, dtype=b.dtype), abar[:-1]])
        tilde = b * (1 - prev) / (1 - abar)
        return b**2 / (2 * tilde * (1 - b) * (1 - abar))

    assert ch12.check_elbo_weight(right).ok is True
    assert ch12.check_elbo_weight(elbo_weights).ok is True
    assert ch12.check_elbo_weight(None).ok is None
    assert "1/2" in ch12.check_elbo_weight(lambda b: 2 * right(b)).message
    missing = ch12.check_elbo_weight(lambda b: right(b) * torch.cumprod(1 - b, 0) / (1 - torch.cumprod(1 - b, 0)))
    assert missing.ok is False and "x0_hat" in missing.message
    assert ch12.check_elbo_weight(lambda b: right(b) + 1).ok is False
