"""Property-based tests (hypothesis): statements that hold for every input, checked on many drawn inputs.

Each property is stated in its test's name. The examples are drawn from a fixed seed (``derandomize``),
so a run in CI is reproducible, and few of them (``max_examples``), so the module takes seconds; no
example database is written.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch.distributions import Normal, kl_divergence

from genvae import latent, losses, metrics
from genvae.checks import check_images
from genvae.models import ModelConfig, build_model

FEW = settings(max_examples=25, deadline=None, derandomize=True, database=None)

# --- the Gaussian KL ------------------------------------------------------------------------------------

# Each value is exactly 0 or at least 1e-3 away from it: closer to the prior the KL (about mu^2 / 2 and
# logvar^2 / 4) would round to 0 in float64, and "0 only at the prior" would be a statement about rounding.
_AWAY = st.floats(1e-3, 5.0) | st.floats(-5.0, -1e-3)
_VALUE = st.just(0.0) | _AWAY


@st.composite
def mu_logvar(draw):
    shape = draw(st.tuples(st.integers(1, 4), st.integers(1, 5)))
    mu = draw(hnp.arrays(np.float64, shape, elements=_VALUE))
    logvar = draw(hnp.arrays(np.float64, shape, elements=_VALUE))
    return torch.from_numpy(mu), torch.from_numpy(logvar)


@FEW
@given(mu_logvar())
def test_gaussian_kl_is_non_negative_and_zero_only_at_the_prior(params):
    mu, logvar = params
    kl = losses.gaussian_kl_per_dim(mu, logvar)  # (B, D)
    assert (kl >= 0).all()
    at_prior = (mu == 0) & (logvar == 0)
    assert torch.equal(kl == 0, at_prior)
    # ...and it is the KL: torch.distributions' own, on every draw.
    reference = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0))
    torch.testing.assert_close(kl, reference, rtol=1e-9, atol=1e-12)
    assert float(losses.gaussian_kl(mu, logvar)) >= 0


@FEW
@given(st.integers(2, 6).flatmap(lambda k: st.tuples(
    hnp.arrays(np.float64, k, elements=st.floats(0.01, 1.0)), hnp.arrays(np.float64, k, elements=st.floats(0.01, 1.0)))))
def test_discrete_kl_is_non_negative_and_zero_for_equal_distributions(weights):
    p, q = (torch.from_numpy(w / w.sum()) for w in weights)
    assert float(losses.discrete_kl(p, q)) >= -1e-12  # Gibbs' inequality, up to rounding
    assert float(losses.discrete_kl(p, p)) == 0.0
    # Pinsker: KL >= 2 TV^2, so a small KL means p close to q.
    assert float(losses.discrete_kl(p, q)) >= 2 * float(0.5 * (p - q).abs().sum()) ** 2 - 1e-12


# --- interpolation between centroids ---------------------------------------------------------------------


@st.composite
def two_points(draw):
    d = draw(st.integers(1, 8))
    a, b = (torch.from_numpy(draw(hnp.arrays(np.float64, d, elements=st.floats(-10, 10)))) for _ in range(2))
    assume(float((b - a).norm()) > 1e-3)
    return a, b


@FEW
@given(two_points(), st.integers(2, 30))
def test_a_straight_path_starts_and_ends_at_its_centroids_in_even_steps(points, n_frames):
    a, b = points
    path = latent.line_path(a, b, n_frames)  # (F, D)
    assert path.shape == (n_frames, len(a))
    assert torch.equal(path[0], a)
    torch.testing.assert_close(path[-1], b, rtol=0, atol=1e-9)
    length = float((b - a).norm())
    steps = path.diff(dim=0).norm(dim=1)
    torch.testing.assert_close(steps, torch.full_like(steps, length / (n_frames - 1)), rtol=1e-9, atol=1e-9)
    # Every point lies on the line through a and b.
    u = (b - a) / length
    off = (path - a) - ((path - a) @ u)[:, None] * u
    assert float(off.abs().max()) < 1e-9


@FEW
@given(st.integers(2, 6), st.integers(2, 5), st.integers(2, 8), st.randoms(use_true_random=False))
def test_a_tour_passes_through_every_centroid_in_order(k, d, frames, rnd):
    c = torch.from_numpy(np.random.default_rng(rnd.randint(0, 2**31)).normal(size=(k, d)) * 5)
    order = list(range(k))
    rnd.shuffle(order)
    points, legs = latent.tour(c, order, frames)
    assert len(points) == len(legs) == (k - 1) * (frames - 1) + 1
    for i, centre in enumerate(order):  # leg i starts at order[i]; the last one ends at order[-1]
        torch.testing.assert_close(points[i * (frames - 1)], c[centre], rtol=0, atol=1e-9)


@FEW
@given(st.integers(1, 6), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_centroids_are_the_class_means(k, d, seed):
    g = np.random.default_rng(seed)
    y = np.concatenate([np.arange(k), g.integers(0, k, size=20)])  # every class present
    z = g.normal(size=(len(y), d))
    got = latent.centroids(torch.from_numpy(z), torch.from_numpy(y))
    want = np.stack([z[y == c].mean(0) for c in range(k)])  # numpy, not torch
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


# --- models: the deterministic outputs do not depend on how the inputs are batched ------------------------

TINY = dict(latent_dim=3, hidden=(16,), channels=(4, 8), head_hidden=8)
KINDS = {"ae-mlp": ("ae", "mlp"), "ae-conv": ("ae", "conv"), "vae-mlp": ("vae", "mlp"), "vae-conv": ("vae", "conv"),
         "multistage": ("multistage", "mlp"), "cvae": ("cvae", "mlp"), "classifier": ("classifier", "mlp"),
         "gan": ("gan", "conv"), "vaegan": ("vaegan", "conv")}


@cache
def _model(name: str):
    kind, arch = KINDS[name]
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return build_model(ModelConfig(kind, arch, **TINY)).eval()


def _deterministic_parts(model, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Everything a model computes from its inputs without drawing noise (eval mode)."""
    kind = model.config.kind
    with torch.no_grad():
        if kind == "classifier":
            out = model(x)
            return {"logits": out.logits, "features": out.features}
        if kind == "gan":
            z = x.flatten(1)[:, :3] * 4 - 2  # noise from the input's pixels, so it is split like x
            return {"D(x)": model.discriminate(x).logits, "G(z)": model.decode(z)}
        if kind == "cvae":
            mu, logvar = model.encode(x, y)
            return {"mu": mu, "logvar": logvar, "x_logits(mu)": model.decode(mu, y)}
        if kind == "ae":
            z = model.embed(x)
            return {"z": z, "x_logits(z)": model.decode(z)}
        mu, logvar = model.encode(x)
        parts = {"mu": mu, "logvar": logvar, "x_logits(mu)": model.decode(mu)}
        if kind == "multistage":
            parts["class logits(mu)"] = model.classify(mu)
        if kind == "vaegan":
            parts["D(x)"] = model.discriminate(x).logits
        return parts


@pytest.mark.parametrize("name", list(KINDS))
@settings(max_examples=8, deadline=None, derandomize=True, database=None)
@given(n=st.integers(2, 9), cuts=st.lists(st.integers(1, 8), min_size=1, max_size=3, unique=True),
       seed=st.integers(0, 2**31 - 1))
def test_outputs_do_not_depend_on_how_the_inputs_are_batched(name, n, cuts, seed):
    model = _model(name)
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)
    whole = _deterministic_parts(model, x, y)
    bounds = [0, *sorted(c for c in cuts if c < n), n]
    pieces = [_deterministic_parts(model, x[i:j], y[i:j]) for i, j in zip(bounds[:-1], bounds[1:])]
    for key, value in whole.items():
        # Kernels for other batch sizes may add in another order: equal up to float32 rounding.
        torch.testing.assert_close(torch.cat([p[key] for p in pieces]), value, rtol=1e-5, atol=1e-5, msg=key)


def test_batch_normalisation_in_training_mode_does_depend_on_the_batch():
    """The property above is not vacuous: in training mode the GAN's generator normalises each batch by its
    own statistics, so one image's output changes with the company it is in."""
    model = build_model(ModelConfig("gan", "conv", **TINY)).train()
    z = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert not torch.allclose(model.decode(z)[:3], model.decode(z[:3]), atol=1e-3)


# --- others ---------------------------------------------------------------------------------------------


@FEW
@given(st.integers(1, 5), st.integers(1, 5), st.sampled_from(["mse", "bce"]), st.integers(0, 2**31 - 1))
def test_reconstruction_loss_is_a_mean_over_images(n1, n2, kind, seed):
    """Sum over pixels, mean over images: the loss of two batches together is their size-weighted mean."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n1 + n2, 1, 28, 28, generator=g, dtype=torch.float64)
    logits = torch.randn(n1 + n2, 1, 28, 28, generator=g, dtype=torch.float64)
    both = losses.reconstruction_loss(logits, x, kind)
    a, b = losses.reconstruction_loss(logits[:n1], x[:n1], kind), losses.reconstruction_loss(logits[n1:], x[n1:], kind)
    torch.testing.assert_close(both, (n1 * a + n2 * b) / (n1 + n2))


@FEW
@given(st.floats(1.0001, 1e4), st.integers(0, 2**31 - 1))
def test_images_above_one_are_refused_and_images_in_range_accepted(scale, seed):
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
    x[0, 0, 0, 0] = 1.0  # the maximum is 1 exactly, so x * scale goes above it
    check_images(x, values=True)  # in [0, 1]: accepted
    with pytest.raises(ValueError, match=r"^expected values in \[0, 1\], got max "):
        check_images(x * scale, values=True)


@FEW
@given(st.integers(3, 30), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_frechet_distance_is_zero_to_itself_and_symmetric(n, f, seed):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, f, generator=g, dtype=torch.float64)
    b = torch.randn(n + 2, f, generator=g, dtype=torch.float64) * 2 + 1
    # With n <= f the covariance is singular; the square roots of its (rounded) zero eigenvalues, about
    # 1e-8 of its scale, are then the error: tolerances in units of the trace.
    scale = 1e-6 * (1 + float(a.var(0).sum() + b.var(0).sum()))  # the traces of the covariances
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=scale)
    assert metrics.frechet_distance(a, b) == pytest.approx(metrics.frechet_distance(b, a), abs=scale)
    assert metrics.frechet_distance(a, b) >= -scale


@FEW
@given(st.integers(2, 500).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n // 2))), st.integers(0, 1000))
def test_test_split_gives_two_disjoint_sorted_subsets(n_size, seed):
    n, size = n_size
    a, b = metrics.test_split(n, size, seed)
    assert len(a) == len(b) == size
    assert not set(a.tolist()) & set(b.tolist())
    assert torch.equal(a, a.sort().values) and torch.equal(b, b.sort().values)
    assert 0 <= int(torch.cat([a, b]).min()) and int(torch.cat([a, b]).max()) < n
