"""Metrics: the IWAE bound against exact integration, kNN/silhouette on known clusters, path rates."""

from __future__ import annotations

import math

import pytest
import torch

from genvae import metrics
from genvae.models import ModelConfig, build_model

from conftest import images


def _exact_log_px(model, x, lo=-10.0, hi=10.0, n=4001):
    """log p(x) = log integral p(x|z) N(z; 0, 1) dz for a 1-D latent, by the trapezoid rule."""
    z = torch.linspace(lo, hi, n).unsqueeze(1)  # (n, 1)
    with torch.no_grad():
        logits = model.decode(z)  # (n, 1, 28, 28)
    out = []
    for xi in x:
        log_px_z = -torch.nn.functional.binary_cross_entropy_with_logits(
            logits, xi.expand_as(logits), reduction="none").flatten(1).sum(1)
        log_f = log_px_z + (-0.5 * z[:, 0] ** 2 - 0.5 * math.log(2 * math.pi))
        dz = (hi - lo) / (n - 1)
        w = torch.full((n,), dz)
        w[0] = w[-1] = dz / 2
        out.append(float(torch.logsumexp(log_f + w.log(), 0)))
    return sum(out) / len(out)


def test_iwae_bound_is_below_the_exact_likelihood_and_tightens_with_k():
    torch.manual_seed(0)
    model = build_model(ModelConfig("vae", latent_dim=1, hidden=(16,)))
    with torch.no_grad():  # make p(x|z) depend strongly on z, so q(z|x) is a poor posterior
        model.decoder.net[0].weight.mul_(10)
    x = torch.bernoulli(images(6, seed=1) * 0.3)
    exact = _exact_log_px(model, x)
    elbo = metrics.elbo(model, x, recon="bce")["elbo"]
    bounds = [metrics.iwae_bound(model, x, k=k, recon="bce") for k in (1, 10, 100, 2000)]
    assert bounds[0] == pytest.approx(elbo, rel=0.01)  # k = 1 is the ELBO (both one-sample estimates)
    assert bounds == sorted(bounds)  # tighter with more samples...
    assert bounds[-1] <= exact + 0.05  # ...but never above log p(x)
    assert exact - bounds[-1] < 0.5 < exact - elbo


@pytest.mark.parametrize("recon", ["bce", "mse"])
def test_elbo_of_a_vae_whose_every_part_is_known(recon):
    """A VAE with q(z|x) = N(0.8, e^-0.5) for every x and a decoder that ignores z (constant logits b): then
    the reconstruction term is exact whatever z is drawn, and each of the three numbers has an independent
    reference in torch.distributions."""
    from torch.distributions import Bernoulli, Normal, kl_divergence

    torch.manual_seed(0)
    model = build_model(ModelConfig("vae", latent_dim=1, hidden=()))  # encoder Linear(784, 2), decoder Linear(1, 784)
    b = torch.randn(784, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        model.encoder.net[0].weight.zero_()
        model.encoder.net[0].bias.copy_(torch.tensor([0.8, -0.5]))  # mu, logvar
        model.decoder.net[0].weight.zero_()
        model.decoder.net[0].bias.copy_(b)
    x = images(5) if recon == "mse" else torch.bernoulli(images(5), generator=torch.Generator().manual_seed(2))
    r = metrics.elbo(model, x, recon=recon)
    kl = float(kl_divergence(Normal(0.8, math.exp(-0.25)), Normal(0.0, 1.0)))  # sigma = exp(logvar / 2)
    logits = b.view(1, 1, 28, 28).expand_as(x)
    if recon == "bce":
        log_px = Bernoulli(logits=logits).log_prob(x)
    else:  # a Gaussian decoder with variance 1/2 (see genvae.losses)
        log_px = Normal(torch.sigmoid(logits), math.sqrt(0.5)).log_prob(x)
    nll = float(-log_px.flatten(1).sum(1).mean())
    assert r["kl"] == pytest.approx(kl, rel=1e-5)
    assert r["recon_nll"] == pytest.approx(nll, rel=1e-5)
    assert r["elbo"] == pytest.approx(-(nll + kl), rel=1e-5)
    assert metrics.elbo(model, x, recon=recon) == r  # seeded: the same number again


def test_knn_and_silhouette_on_separated_and_mixed_clusters():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(300) % 3
    centres = torch.tensor([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])
    z = centres[y] + torch.randn(300, 2, generator=g)
    assert metrics.knn_accuracy(z[:200], y[:200], z[200:], y[200:]) == 1.0
    assert metrics.silhouette(z, y) > 0.8
    noise = torch.randn(300, 2, generator=g)
    assert metrics.silhouette(noise, y) == pytest.approx(0.0, abs=0.1)
    assert metrics.knn_accuracy(noise[:200], y[:200], noise[200:], y[200:]) < 0.6


def test_active_units_counts_varying_dimensions():
    g = torch.Generator().manual_seed(0)
    mu = torch.zeros(500, 4)
    mu[:, 0] = torch.randn(500, generator=g)
    mu[:, 2] = 0.5 * torch.randn(500, generator=g)
    mu[:, 3] = 0.01 * torch.randn(500, generator=g)  # variance 1e-4: inactive
    assert metrics.active_units(mu) == 2


def test_off_path_rate_and_single_switch():
    a, b = 3, 8
    clean = torch.tensor([3, 3, 3, 8, 8, 8])
    detour = torch.tensor([3, 3, 5, 5, 8, 8])
    assert metrics.off_path_rate(clean, a, b) == 0.0
    assert metrics.off_path_rate(detour, a, b) == pytest.approx(2 / 6)
    assert metrics.off_path_rate(torch.stack([clean, detour]), a, b) == pytest.approx(2 / 12)
    assert metrics.switches_once(clean, a, b)
    assert not metrics.switches_once(detour, a, b)
    assert not metrics.switches_once(torch.tensor([3, 8, 3, 8]), a, b)  # flickers
    assert not metrics.switches_once(torch.tensor([8, 8, 3, 3]), a, b)  # wrong direction


def test_accuracy_and_reconstruction_mse():
    assert metrics.accuracy(torch.tensor([1, 2, 3]), torch.tensor([1, 0, 3])) == pytest.approx(2 / 3)
    assert metrics.accuracy(torch.eye(3), torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)
    torch.manual_seed(0)
    ae = build_model(ModelConfig("ae", latent_dim=2, hidden=(8,)))
    x = images(3)
    with torch.no_grad():
        manual = float(((ae(x).x_hat - x) ** 2).mean())
    assert metrics.reconstruction_mse(ae, x) == pytest.approx(manual, rel=1e-5)


def test_iwae_bound_does_not_depend_on_how_it_is_chunked():
    torch.manual_seed(0)
    model = build_model(ModelConfig("vae", latent_dim=2, hidden=(16,)))
    x = images(7, seed=2)
    a = metrics.iwae_bound(model, x, k=64, recon="mse", batch_size=7, max_codes=10_000)
    b = metrics.iwae_bound(model, x, k=64, recon="mse", batch_size=3, max_codes=20)
    # other chunks draw other noise, so equal only in distribution: same mean within a few nats' spread
    assert a == pytest.approx(b, abs=2.0)
    assert metrics.iwae_bound(model, x, k=64, recon="mse", batch_size=7, max_codes=10_000) == a  # seeded


def test_test_split_gives_disjoint_random_subsets_not_slices():
    a, b = metrics.test_split(10_000, 2000)
    assert len(a) == len(b) == 2000 and not set(a.tolist()) & set(b.tolist())
    assert torch.equal(a, a.sort().values) and (a < 5000).float().mean().item() == pytest.approx(0.5, abs=0.05)
    assert torch.equal(metrics.test_split(10_000, 2000)[0], a)  # seeded
    assert torch.equal(metrics.test_subset(10_000, 2000), a)
    with pytest.raises(ValueError):
        metrics.test_split(100, 60)


def test_judge_gives_the_probabilities_and_features_of_one_pass():
    torch.manual_seed(0)
    clf = build_model(ModelConfig("classifier", channels=(4, 8), hidden=(16,)))
    x = images(9)
    judge = metrics.Judge(clf, batch_size=4)
    j = judge.judgement(x)
    with torch.no_grad():  # the classifier called directly, on the whole batch, in eval mode
        direct = clf.eval()(x)
    torch.testing.assert_close(j.probs, torch.softmax(direct.logits, 1))
    torch.testing.assert_close(j.features, direct.features)
    torch.testing.assert_close(j.probs, judge.predict_proba(x))
    torch.testing.assert_close(j.features, judge.features(x))
    assert torch.equal(judge.predict(x), direct.logits.argmax(1))
    assert j.confidence == pytest.approx(float(j.probs.max(1).values.mean()))
    q = metrics.sample_quality(j, j.features)
    assert q["Frechet distance"] == pytest.approx(0.0, abs=1e-6)
    assert 0 <= q["class entropy (nats)"] <= math.log(10) and q["pairwise feature distance"] > 0


def test_frechet_distance_equals_the_scipy_sqrtm_formula():
    import numpy as np
    from scipy import linalg

    g = torch.Generator().manual_seed(0)
    a = torch.randn(400, 6, generator=g, dtype=torch.float64) @ torch.randn(6, 6, generator=g, dtype=torch.float64)
    b = torch.randn(300, 6, generator=g, dtype=torch.float64) * 2 + 1
    ca, cb = np.cov(a.numpy(), rowvar=False), np.cov(b.numpy(), rowvar=False)
    ref = ((a.mean(0) - b.mean(0)) ** 2).sum().item() + np.trace(ca + cb - 2 * linalg.sqrtm(ca @ cb).real)
    assert metrics.frechet_distance(a, b) == pytest.approx(ref, rel=1e-9)


def test_effective_classes_and_collapse_flag():
    from genvae.metrics import effective_classes, samples_collapsed

    assert effective_classes(torch.arange(1000) % 10) == pytest.approx(10.0)
    assert effective_classes(torch.full((50,), 3)) == pytest.approx(1.0)
    # Two classes in equal shares: entropy log 2, so exactly 2 effective classes.
    assert effective_classes(torch.arange(100) % 2) == pytest.approx(2.0)
    assert samples_collapsed({"class entropy (nats)": math.log(2.0)})
    assert not samples_collapsed({"class entropy (nats)": math.log(8.0)})


def test_sharpness_is_the_laplacian_energy():
    from genvae.metrics import sharpness

    # A one-pixel dot: the Laplacian is -4 at the dot and 1 at its 4 neighbours, 0 elsewhere in the 26x26 interior.
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 10, 10] = 1.0
    assert sharpness(x) == pytest.approx((16 + 4) / 26 ** 2)
    # Blurring removes detail; a constant image has none.
    blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)
    assert sharpness(blurred) < sharpness(x)
    assert sharpness(torch.full((2, 1, 28, 28), 0.7)) == 0.0


class _FirstPixels(torch.nn.Module):
    """A stand-in judge: the class is the brightest of the first three pixels."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))  # gives the module a device

    def forward(self, x):
        from types import SimpleNamespace

        return SimpleNamespace(logits=100 * x.flatten(1)[:, :3])


def test_class_changes_counts_only_inputs_the_judge_reads_right():
    x = torch.zeros(4, 1, 28, 28)
    flat = x.view(4, -1)
    flat[0, 0] = flat[1, 1] = flat[2, 2] = flat[3, 0] = 1.0  # judged 0, 1, 2, 0
    labels = torch.tensor([0, 1, 2, 1])  # the last input is misjudged: it does not count
    out = x.clone()
    out.view(4, -1)[1] = 0
    out.view(4, -1)[1, 2] = 1.0  # 1 comes back as 2
    out.view(4, -1)[3] = 0
    out.view(4, -1)[3, 2] = 1.0  # a change of a misjudged input: not counted
    r = metrics.class_changes(_FirstPixels(), x, out, labels)
    assert (r.read_right, r.changed, r.top_pair, r.top_pair_count) == (3, 1, (1, 2), 1)
    assert r.rate == pytest.approx(1 / 3)
    same = metrics.class_changes(_FirstPixels(), x, x.clone(), labels)
    assert same.changed == 0 and same.top_pair is None and same.rate == 0
    with pytest.raises(ValueError):
        metrics.class_changes(_FirstPixels(), x, out[:3], labels)


def test_predict_is_the_argmax_of_the_probabilities():
    torch.manual_seed(0)
    clf = build_model(ModelConfig("classifier", channels=(4, 8), hidden=(16,)))
    x = images(7)
    pred = metrics.Judge(clf, batch_size=3).predict(x)
    with torch.no_grad():
        direct = clf.eval()(x).logits.argmax(1)
    assert pred.dtype == torch.int64 and torch.equal(pred, direct)


def test_generator_failure_tells_mode_collapse_from_a_generator_that_never_learned():
    from genvae.metrics import generator_failure

    real = {"confidence": 0.9, "class entropy (nats)": 2.3}
    assert generator_failure({"confidence": 0.8, "class entropy (nats)": 2.2}, real) == "healthy"
    assert generator_failure({"confidence": 0.8, "class entropy (nats)": 0.3}, real) == "mode collapse"
    assert generator_failure({"confidence": 0.3, "class entropy (nats)": 0.3}, real) == "never learned"


def test_saturation_step_is_where_the_discriminator_loss_stays_below_the_threshold():
    from genvae.metrics import saturation_step

    assert saturation_step([1.0, 0.001, 0.5, 0.002, 0.001]) == 3
    assert saturation_step([0.001, 0.002]) == 0
    assert saturation_step([1.0, 0.5, 0.02]) is None
    assert saturation_step([]) is None


@pytest.mark.parametrize("kind", ["vae", "vaegan"])
def test_code_gain_compares_the_reconstruction_term_with_and_without_the_code(kind):
    torch.manual_seed(0)
    cfg = ModelConfig(kind, "conv", latent_dim=4, channels=(8, 16), hidden=(32,)) if kind == "vaegan" \
        else ModelConfig(kind, latent_dim=4, hidden=(32,))
    model = build_model(cfg)
    x = images(12)
    g = metrics.code_gain(model, x)
    assert set(g) == {"without code", "with code", "gain", "kl", "gain per nat"}
    assert math.isclose(g["gain"], g["without code"] - g["with code"], rel_tol=1e-9, abs_tol=1e-9)
    assert g["kl"] >= 0 and model.training  # the model's mode is restored
    # The term lives where the family says (feature_likelihood): the discriminator's features for the VAE-GAN.
    from genvae.models.losses import feature_reconstruction_loss, reconstruction_loss

    with torch.no_grad():
        model.eval()
        blank = model.decode(torch.zeros(len(x), 4))
        expected = (feature_reconstruction_loss(model.discriminate(torch.sigmoid(blank)).features,
                                                model.discriminate(x).features) if kind == "vaegan"
                    else reconstruction_loss(blank, x, "mse"))
        model.train()
    assert model.feature_likelihood == (kind == "vaegan")
    assert math.isclose(g["without code"], float(expected), rel_tol=1e-5)


def test_disjoint_subsets_are_disjoint_seeded_and_equal_in_size():
    import torch
    from genvae import metrics

    parts = metrics.disjoint_subsets(103, 5, seed=1)
    assert [len(p) for p in parts] == [20] * 5
    assert len(torch.cat(parts).unique()) == 100
    assert all(torch.equal(a, b) for a, b in zip(parts, metrics.disjoint_subsets(103, 5, seed=1)))


def test_recipe_reference_is_what_the_recipe_search_scored_against_and_misses_the_full_books_reference():
    n = 10_000
    old = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:2000]  # gan_recipes.py's choice
    ref = metrics.recipe_reference(n)
    assert len(ref) == metrics.RECIPE_REFERENCE_SIZE and set(ref.tolist()) == set(old.tolist())
    _, full_ref = metrics.test_split(n, 5000)  # chapter 9's Frechet reference in full mode
    assert not set(ref.tolist()) & set(full_ref.tolist())
    _, quick_ref = metrics.test_split(n, 1000)  # quick mode: inside the recipe's images
    assert set(quick_ref.tolist()) <= set(ref.tolist())


def test_a_judge_of_a_judge_is_the_same_judge_and_functions_that_take_a_judge_take_either():
    torch.manual_seed(0)
    clf = build_model(ModelConfig("classifier", channels=(4, 8), hidden=(16,)))
    judge = metrics.Judge(clf, batch_size=5)
    assert metrics.Judge.of(judge) is judge and metrics.Judge.of(clf).classifier is clf
    again = metrics.Judge(judge)
    assert again.classifier is clf and again.batch_size == 5 and metrics.Judge(judge, batch_size=2).batch_size == 2
    x, y = images(6), torch.arange(6) % 10
    out = images(6, seed=1)
    assert metrics.class_changes(judge, x, out, y) == metrics.class_changes(clf, x, out, y)
    # A SampleJudge is a judge: its reference is its own features of the reference images.
    score = metrics.SampleJudge(judge, x)
    assert isinstance(score, metrics.Judge) and score.batch_size == 5
    assert torch.equal(score.reference, judge.features(x)) and score.feature_dim == score.reference.shape[1]
    assert score(out) == metrics.sample_quality(judge.judgement(out), score.reference)


def test_the_judge_runs_where_the_classifier_is_and_restores_its_mode():
    torch.manual_seed(0)
    clf = build_model(ModelConfig("classifier", channels=(4, 8), hidden=(16,))).train()
    x = images(5)
    probs = metrics.Judge(clf, batch_size=2).predict_proba(x)
    assert clf.training  # eval mode for the pass, training mode back afterwards
    assert probs.shape == (5, 10) and not probs.requires_grad and probs.device.type == "cpu"
    torch.testing.assert_close(probs.sum(1), torch.ones(5))


def test_reconstruction_mse_is_the_same_number_for_every_batch_size():
    torch.manual_seed(0)
    ae = build_model(ModelConfig("ae", latent_dim=2, hidden=(8,)))
    x = images(10)
    with torch.no_grad():
        # The batches' sums of squares, each in float32, added in float64 in order, over the pixels.
        batches = [float((ae.eval().reconstruct(xb) - xb).pow(2).sum()) for xb in x.split(3)]
    total = 0.0
    for s in batches:
        total += s
    assert metrics.reconstruction_mse(ae, x, batch_size=3) == total / x.numel()
    assert metrics.reconstruction_mse(ae, x, batch_size=4) == pytest.approx(total / x.numel(), rel=1e-6)
    cvae = build_model(ModelConfig("cvae", latent_dim=3, hidden=(16,)))
    y = torch.arange(10) % 10
    with torch.no_grad():
        expected = float((cvae.eval().reconstruct(x, y) - x).pow(2).mean())
    assert metrics.reconstruction_mse(cvae, x, batch_size=3, y=y) == pytest.approx(expected, rel=1e-6)
