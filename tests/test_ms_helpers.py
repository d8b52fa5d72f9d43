"""Chapter 7's helpers: the code cache and the rows of the latent-effects tables."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from genvae import latent, metrics
from genvae.book import tables

from conftest import images


class _Linear(nn.Module):
    """embed(x) = W x.flatten(): a linear 'encoder' that counts its calls."""

    def __init__(self, d: int = 3):
        super().__init__()
        self.w = nn.Parameter(torch.randn(784, d, generator=torch.Generator().manual_seed(0)))
        self.calls = 0

    def embed(self, x):
        self.calls += 1
        return x.flatten(1) @ self.w


def test_code_cache_encodes_each_model_once_and_matches_a_direct_matmul():
    x = images(6)
    codes_of = latent.CodeCache(x)
    a, b = _Linear(3), _Linear(2)
    ta, tb = SimpleNamespace(name="a", model=a), SimpleNamespace(name="b", model=b)
    za = codes_of(ta)
    expected = x.flatten(1).numpy() @ a.w.detach().numpy()  # an independent reference: numpy
    np.testing.assert_allclose(za.numpy(), expected, rtol=1e-4, atol=1e-4)
    calls = a.calls
    assert codes_of(ta) is za and a.calls == calls  # the second call encodes nothing
    assert codes_of(tb).shape == (6, 2) and len(codes_of) == 2


def _report(active=None, head=None):
    r = {"recon MSE": 0.04, "kNN accuracy": 0.8, "silhouette": 0.3}
    if active is not None:
        r["active units"] = active
    if head is not None:
        r["head accuracy"] = head
    return r


def test_latent_row_flags_collapse_from_the_active_units():
    vae = SimpleNamespace(metrics={"kl": 4.5})
    row = tables.latent_row(vae, "VAE", 1.0, report=_report(active=2))
    assert row["KL"] == 4.5 and row["active units"] == 2 and row["collapsed"] is False
    assert math.isnan(row["head accuracy"])
    # A posterior mean that does not move across the data: no active unit, so a collapsed model.
    mu = torch.randn(500, 2, generator=torch.Generator().manual_seed(0)) * 0.01
    collapsed = tables.latent_row(vae, "VAE", 10.0, report=_report(active=metrics.active_units(mu)))
    assert collapsed["active units"] == 0 and collapsed["collapsed"] is True
    ms = tables.latent_row(vae, "multi-stage", 1.0, report=_report(active=2, head=0.9))
    assert ms["head accuracy"] == 0.9


def test_latent_row_of_an_autoencoder_has_no_kl_and_is_never_collapsed():
    row = tables.latent_row(SimpleNamespace(metrics={}), "AE", math.nan, report=_report())
    assert math.isnan(row["KL"]) and math.isnan(row["active units"]) and row["collapsed"] is False
    assert list(row)[:2] == ["model", "beta"]


def test_latent_row_computes_the_report_once_through_the_cache(tmp_path, monkeypatch):
    calls = []

    def fake_report(model, dataset="mnist", knn_k=5):
        calls.append((dataset, knn_k))
        return _report(active=1)

    monkeypatch.setattr(tables, "latent_report", fake_report)
    trained = SimpleNamespace(name="m", model=nn.Linear(1, 1), metrics={"kl": 1.0}, path=tmp_path, saved=True)
    first = tables.latent_row(trained, "VAE", 1.0, knn_k=3)
    second = tables.latent_row(trained, "VAE", 1.0, knn_k=3)
    assert first == second and calls == [("mnist", 3)]
    assert (tmp_path / "evals.json").exists()
    tables.latent_row(trained, "VAE", 1.0, knn_k=7)  # another k is another evaluation
    assert calls == [("mnist", 3), ("mnist", 7)]


def test_class_separation_matches_numpy_and_ignores_the_scale():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(3).repeat_interleave(50)
    z = torch.randn(150, 2, generator=g) + torch.tensor([[0.0, 0.0], [6.0, 0.0], [0.0, 8.0]])[y]
    zn, yn = z.double().numpy(), y.numpy()
    c = np.stack([zn[yn == k].mean(0) for k in range(3)])
    between = np.mean([np.linalg.norm(c[a] - c[b]) for a in range(3) for b in range(3) if a != b])
    within = np.linalg.norm(zn - c[yn], axis=1).mean()
    assert metrics.class_separation(z, y) == pytest.approx(between / within, rel=1e-5)
    assert metrics.class_separation(10 * z, y) == pytest.approx(metrics.class_separation(z, y), rel=1e-5)
    mixed = torch.randn(150, 2, generator=g)  # one blob: labels carry no position
    assert metrics.class_separation(mixed, y) < 0.5 < 2 < metrics.class_separation(z, y)
