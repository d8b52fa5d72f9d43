"""The scoreboard's measurement tools (issue 18), each against a reference written independently of it:
precision and recall, density and coverage (brute-force double loops, hand-worked cases, exact expectations
for sets drawn from one distribution), the data-copying report (brute force, copies, iid Gaussian sets) and
the trace of a Jacobian (torch.autograd.functional.jacobian, the exact moments of Hutchinson's estimator)."""

from __future__ import annotations

import itertools
import math
import statistics

import pytest
import torch

from genvae import metrics
from genvae.analysis import samples as samples_module
from genvae.utils import init_seed

from conftest import images


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- Precision, recall, density, coverage --------------------------------------------------------------------

def _sq(a, b) -> float:
    return sum((x - y) ** 2 for x, y in zip(a, b))


def _reference_prdc(real: torch.Tensor, fake: torch.Tensor, k: int) -> dict[str, float]:
    """The four definitions as double loops over Python lists, on squared distances (the same comparisons:
    the square root is increasing); a point's k-th neighbour is the k-th smallest distance to the *other*
    points; balls are closed."""
    r, f = real.tolist(), fake.tolist()

    def radii2(pts):
        return [sorted(_sq(p, q) for j, q in enumerate(pts) if j != i)[k - 1] for i, p in enumerate(pts)]

    rr = radii2(r)
    out = {
        "precision": sum(any(_sq(y, x) <= rr[i] for i, x in enumerate(r)) for y in f) / len(f),
        "density": sum(sum(_sq(y, x) <= rr[i] for i, x in enumerate(r)) for y in f) / (k * len(f)),
        "coverage": sum(min(_sq(x, y) for y in f) <= rr[i] for i, x in enumerate(r)) / len(r),
    }
    if len(f) > k:
        fr = radii2(f)
        out["recall"] = sum(any(_sq(x, y) <= fr[j] for j, y in enumerate(f)) for x in r) / len(r)
    return out


def _prdc(real, fake, k):
    return {**metrics.precision_recall(real, fake, k), **metrics.density_coverage(real, fake, k)}


@pytest.mark.parametrize("k", [1, 3, 5])
def test_a_set_against_itself_has_full_precision_recall_coverage_and_density_k_plus_1_over_k(k):
    x = torch.randn(300, 6, generator=_gen(k))
    assert _prdc(x, x, k) == {"precision": 1.0, "recall": 1.0, "coverage": 1.0, "density": (k + 1) / k}


def test_well_separated_sets_score_zero():
    real = torch.randn(200, 5, generator=_gen(0))
    fake = torch.randn(150, 5, generator=_gen(1)) + 100.0
    assert _prdc(real, fake, 3) == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


@pytest.mark.parametrize("block_elements", [None, 7, 60])  # None: the default; 7 and 60 cut the passes into blocks
@pytest.mark.parametrize("k", [1, 2, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_precision_recall_density_coverage_equal_a_brute_force_double_loop(seed, k, block_elements, monkeypatch):
    if block_elements:
        monkeypatch.setattr(samples_module, "_BLOCK_ELEMENTS", block_elements)
    g = _gen(seed)
    real = torch.randn(23, 3, generator=g)
    fake = torch.randn(17, 3, generator=g) * 1.5 + 0.5  # overlapping, neither score at 0 or 1
    got, want = _prdc(real, fake, k), _reference_prdc(real, fake, k)
    assert got == want  # the same counts, so the same floats
    assert 0 < got["precision"] < 1 or 0 < got["recall"] < 1  # a case where the balls decide something


@pytest.mark.parametrize("k", [1, 2, 4])
def test_ties_and_duplicates_on_a_grid_follow_the_definition(k):
    """Integer features: many points sit exactly on a ball's boundary (closed balls: inside) and many are
    duplicates (a duplicate is a neighbour at distance 0; only the point itself is left out)."""
    g = _gen(k)
    real = torch.randint(0, 3, (30, 2), generator=g).float()
    fake = torch.randint(0, 4, (20, 2), generator=g).float()
    assert _prdc(real, fake, k) == _reference_prdc(real, fake, k)


def test_a_point_is_not_its_own_neighbour_a_hand_worked_case():
    """Reals at 0, 1, 3, 7 on a line, k = 1: radii 1, 1, 2, 4 (with the point itself as a neighbour they would
    all be 0 and no fake would be inside any ball). Fakes at 0.5 and 5.5: radii 5 and 5.
    0.5 lies in the balls of 0 and 1, 5.5 in that of 7: precision 1, density (2 + 1) / 2; every real is
    within 5 of a fake: recall 1; 3 has no fake within 2: coverage 3/4."""
    real = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    fake = torch.tensor([[0.5], [5.5]])
    assert metrics.precision_recall(real, fake, k=1) == {"precision": 1.0, "recall": 1.0}
    assert metrics.density_coverage(real, fake, k=1) == {"density": 1.5, "coverage": 0.75}


def test_every_distance_block_stays_within_the_budget(monkeypatch):
    """The passes over pairs go in blocks of at most _BLOCK_ELEMENTS distances (what lets 10,000 x 10,000 fit
    in memory), and the blocks give the same answer as one pass."""
    real = torch.randn(40, 4, generator=_gen(0))
    fake = torch.randn(30, 4, generator=_gen(1))
    whole = _prdc(real, fake, 3)
    sizes = []
    original = samples_module._distances

    def spy(a, b):
        sizes.append(len(a) * len(b))
        return original(a, b)

    monkeypatch.setattr(samples_module, "_distances", spy)
    monkeypatch.setattr(samples_module, "_BLOCK_ELEMENTS", 100)
    assert _prdc(real, fake, 3) == whole
    assert len(sizes) > 10 and max(sizes) <= 100


def _beta(a: float, b: float) -> float:
    return math.exp(math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))


def test_sets_drawn_from_one_distribution_have_density_1_and_the_exact_expected_coverage():
    """For iid continuous sets the mass of a real's k-NN ball is Beta(k, N - k), so E[density] = 1 and
    E[coverage] = 1 - B(k, N - k + M) / B(k, N - k) (Naeem et al., 2020). Over 40 independent pairs of sets
    the means are within 5 standard errors of these."""
    n, m, k, runs = 150, 120, 5, 40
    g = _gen(0)
    scores = [metrics.density_coverage(torch.randn(n, 2, generator=g), torch.randn(m, 2, generator=g), k)
              for _ in range(runs)]
    expected = {"density": 1.0, "coverage": 1 - _beta(k, n - k + m) / _beta(k, n - k)}
    for key, want in expected.items():
        values = [s[key] for s in scores]
        se = statistics.stdev(values) / math.sqrt(runs)
        assert 0 < se < 0.02, (key, se)  # the test can tell density 1 from (k + 1) / k, coverage from 1 - e^-k
        assert abs(statistics.mean(values) - want) < 5 * se, (key, statistics.mean(values), want, se)


@pytest.mark.parametrize("call,message", [
    (lambda: metrics.precision_recall(torch.rand(10, 3), torch.rand(10, 4)), r"expected fake features of shape \(B, 3\), got \(10, 4\)"),
    (lambda: metrics.precision_recall(torch.rand(3, 2), torch.rand(10, 2), k=3), "k = 3 neighbours .* at least 4 real feature vectors, got 3"),
    (lambda: metrics.precision_recall(torch.rand(10, 2), torch.rand(3, 2), k=3), "at least 4 fake feature vectors, got 3"),
    (lambda: metrics.density_coverage(torch.rand(10, 2), torch.rand(0, 2)), r"no fake feature vectors \(got shape \(0, 2\)\)"),
    (lambda: metrics.density_coverage(torch.rand(0, 2), torch.rand(5, 2)), "at least 6 real feature vectors, got 0"),
    (lambda: metrics.density_coverage(torch.rand(10, 2), torch.rand(5, 2), k=0), "k must be a whole number >= 1, got 0"),
    (lambda: metrics.precision_recall(torch.rand(10), torch.rand(10)), r"expected real features of shape \(B, D\), got \(10,\)"),
    (lambda: metrics.precision_recall(torch.full((10, 2), math.nan), torch.rand(10, 2)), "real features contain NaN"),
])
def test_bad_feature_sets_get_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- Data copying ----------------------------------------------------------------------------------------------

def _reference_nearest(queries: torch.Tensor, reference: torch.Tensor) -> list[float]:
    q, r = queries.flatten(1).tolist(), reference.flatten(1).tolist()
    return [math.sqrt(min(_sq(a, b) for b in r)) for a in q]


def _reference_quantile(values: list[float], p: float) -> float:
    s = sorted(values)
    pos = p * (len(s) - 1)
    lo = math.floor(pos)
    return s[lo] + (pos - lo) * (s[min(lo + 1, len(s) - 1)] - s[lo])


@pytest.mark.parametrize("block_elements", [None, 5])
@pytest.mark.parametrize("shape", [(1, 3, 3), (5,)])  # little images, feature vectors
def test_copying_report_equals_a_brute_force_reference(shape, block_elements, monkeypatch):
    if block_elements:
        monkeypatch.setattr(samples_module, "_BLOCK_ELEMENTS", block_elements)
    g = _gen(0)
    samples, train, test = (torch.rand(n, *shape, generator=g) for n in (13, 21, 16))
    d_s, d_t = _reference_nearest(samples, train), _reference_nearest(test, train)
    assert metrics.nearest_distances(samples, train).tolist() == pytest.approx(d_s, rel=1e-12)
    threshold = _reference_quantile(d_t, 0.1)
    want = {
        "sample median distance": statistics.median(d_s),
        "test median distance": statistics.median(d_t),
        "median ratio": statistics.median(d_s) / statistics.median(d_t),
        "threshold distance": threshold,
        "share below threshold": sum(d < threshold for d in d_s) / len(d_s),
    }
    got = metrics.copying_report(samples, train, test, quantile=0.1)
    assert got.keys() == want.keys()
    assert got == pytest.approx(want, rel=1e-12)
    assert 0 < got["share below threshold"] < 1


def test_copies_of_training_images_are_at_distance_0():
    train, test = images(300, seed=0), images(100, seed=1)
    copies = train[torch.randperm(300, generator=_gen(2))[:60]]
    assert metrics.nearest_distances(copies, train).tolist() == [0.0] * 60  # exactly, not about 1e-6
    report = metrics.copying_report(copies, train, test)
    assert report["sample median distance"] == 0.0 and report["median ratio"] == 0.0
    assert report["share below threshold"] == 1.0 and report["test median distance"] > 1


def test_samples_drawn_like_test_data_are_as_far_from_the_training_set_as_test_data():
    """Train, test and samples iid N(0, I) in 6 dimensions. The nearest-train distances of samples and test
    points then share one distribution G; the median of n draws from G sits at the quantile level 1/2 within
    5 x 0.5 / sqrt(n) (plus the same for the pool of 8,000 fresh draws that estimates G), which bounds both
    medians and so their ratio. The share below G's 5% quantile estimated from K test points is within
    5 binomial standard errors of 0.05, for the threshold's level (K) and for the share itself (M)."""
    d, n_train, m, k_test, pool = 6, 3000, 4000, 4000, 8000
    g = _gen(0)
    train, samples, test, fresh = (torch.randn(n, d, generator=g) for n in (n_train, m, k_test, pool))
    report = metrics.copying_report(samples, train, test)
    dist = metrics.nearest_distances(fresh, train)
    for key, n in (("sample median distance", m), ("test median distance", k_test)):
        slack = 5 * 0.5 * (1 / math.sqrt(n) + 1 / math.sqrt(pool))
        lo, hi = (float(dist.quantile(0.5 + s)) for s in (-slack, slack))
        assert lo <= report[key] <= hi, (key, lo, report[key], hi)
    lo_ratio = float(dist.quantile(0.5 - slack) / dist.quantile(0.5 + slack))
    assert lo_ratio > 0.85  # the bound means something: a copying model's ratio is far below it
    assert lo_ratio <= report["median ratio"] <= 1 / lo_ratio
    p = 0.05
    tol = 5 * math.sqrt(p * (1 - p)) * (1 / math.sqrt(k_test) + 1 / math.sqrt(m))
    assert abs(report["share below threshold"] - p) < tol < 0.05


@pytest.mark.parametrize("call,error,message", [
    (lambda: metrics.copying_report(images(4), images(5), torch.rand(3, 784)), ValueError,
     r"samples and test must hold items of one shape, got \(1, 28, 28\) and \(784,\)"),
    (lambda: metrics.copying_report(images(4), images(5)[:0], images(3)), ValueError, r"no train \(got shape \(0, 1, 28, 28\)\)"),
    (lambda: metrics.copying_report(images(4), images(5), images(3), quantile=1.0), ValueError,
     "quantile must be a number strictly between 0 and 1, got 1.0"),
    (lambda: metrics.nearest_distances(torch.rand(5), torch.rand(5)), ValueError, r"expected queries as a batch"),
    (lambda: metrics.nearest_distances(torch.ones(2, 3, dtype=torch.long), torch.rand(5, 3)), TypeError,
     "expected floating-point queries, got torch.int64"),
])
def test_bad_copying_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --- Traces of Jacobians -----------------------------------------------------------------------------------------

def _mlp(d: int = 4) -> torch.nn.Module:
    with init_seed(0):
        return torch.nn.Sequential(torch.nn.Linear(d, 16), torch.nn.Tanh(), torch.nn.Linear(16, d)).double()


def _reference_traces(f, x: torch.Tensor) -> torch.Tensor:
    """tr of each example's block of the full batch Jacobian (B, D, B, D) from torch.autograd.functional."""
    b = len(x)
    jac = torch.autograd.functional.jacobian(lambda flat: f(flat.view_as(x)).reshape(b, -1), x.reshape(b, -1))
    return torch.stack([jac[i, :, i, :].trace() for i in range(b)])


def test_the_exact_trace_equals_the_trace_of_the_full_jacobian():
    f = _mlp()
    x = torch.randn(5, 4, generator=_gen(0), dtype=torch.float64)
    want = _reference_traces(f, x)
    assert torch.allclose(metrics.exact_jacobian_trace(f, x), want, rtol=1e-12, atol=1e-12)
    assert want.std() > 0.01  # the examples differ: the trace is per example
    with torch.no_grad():  # works inside an evaluation loop
        assert torch.allclose(metrics.exact_jacobian_trace(f, x), want, rtol=1e-12, atol=1e-12)
    images_2x2 = x.view(5, 1, 2, 2)  # images: the coordinates are the flattened pixels

    def on_images(t):
        return f(t.flatten(1)).view_as(t)

    assert torch.allclose(metrics.exact_jacobian_trace(on_images, images_2x2), want, rtol=1e-12, atol=1e-12)


def _single_probes(f, x, kind: str, n: int, seed: int) -> torch.Tensor:
    g = _gen(seed)
    return torch.stack([metrics.hutchinson_trace(f, x, g, n_probes=1, kind=kind) for _ in range(n)])  # (n, B)


@pytest.mark.parametrize("kind", ["rademacher", "gaussian"])
def test_hutchinson_converges_to_the_exact_trace_within_5_standard_errors(kind):
    f = _mlp()
    x = torch.randn(3, 4, generator=_gen(1), dtype=torch.float64)
    exact = _reference_traces(f, x)
    n = 3000
    est = _single_probes(f, x, kind, n, seed=5)  # (n, B): one probe each
    se = est.std(0) / math.sqrt(n)
    assert (se > 1e-3).all()  # the estimator is noisy here: the check is not vacuous
    assert ((est.mean(0) - exact).abs() < 5 * se).all(), (est.mean(0), exact, se)
    # n probes in one call are the mean of the same n probes drawn one call at a time
    batch = metrics.hutchinson_trace(f, x, _gen(5), n_probes=200, kind=kind)
    assert torch.allclose(batch, est[:200].mean(0), rtol=1e-12, atol=1e-12)


def _linear(a: torch.Tensor):
    return lambda x: x @ a.T  # (B, D): A x per example, Jacobian A


def test_rademacher_probes_of_a_linear_map_average_exactly_to_its_trace():
    """For f(x) = A x the estimate of one Rademacher probe v is v^T A v, one of 16 equally likely values
    (D = 4) whose mean is tr(A) exactly and whose variance is sum_{i<j} (A_ij + A_ji)^2. The function's probes
    take only these values, and their mean and variance over 4,000 probes are within 5 standard errors of
    the exact ones (the standard error of the variance from the exact fourth moment)."""
    a = torch.randn(4, 4, generator=_gen(3), dtype=torch.float64)
    signs = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=4)), dtype=torch.float64)  # (16, 4)
    values = torch.einsum("vi,ij,vj->v", signs, a, signs)  # (16,): every possible estimate
    mean, var = float(values.mean()), float(values.var(unbiased=False))
    mu4 = float((values - mean).pow(4).mean())
    assert mean == pytest.approx(float(a.trace()), abs=1e-12)
    assert var == pytest.approx(sum(float(a[i, j] + a[j, i]) ** 2 for i in range(4) for j in range(i + 1, 4)))

    n = 4000
    est = _single_probes(_linear(a), torch.zeros(1, 4, dtype=torch.float64), "rademacher", n, seed=0)[:, 0]
    assert (est[:, None] - values[None, :]).abs().min(1).values.max() < 1e-12  # every estimate is one of the 16
    assert abs(float(est.mean()) - mean) < 5 * math.sqrt(var / n)
    assert abs(float(est.var()) - var) < 5 * math.sqrt((mu4 - var**2) / n)


def test_gaussian_probes_of_a_linear_map_have_the_mean_and_variance_of_a_gaussian_quadratic_form():
    """v ~ N(0, I): v^T A v - tr(A) = sum_i l_i (z_i^2 - 1) with l the eigenvalues of S = (A + A^T) / 2, so its
    variance is 2 sum l^2 and its fourth central moment 48 sum l^4 + 3 (2 sum l^2)^2."""
    a = torch.randn(4, 4, generator=_gen(3), dtype=torch.float64)
    lam = torch.linalg.eigvalsh((a + a.T) / 2)
    var = float(2 * lam.pow(2).sum())
    mu4 = float(48 * lam.pow(4).sum()) + 3 * var**2
    n = 4000
    est = _single_probes(_linear(a), torch.zeros(1, 4, dtype=torch.float64), "gaussian", n, seed=0)[:, 0]
    assert abs(float(est.mean()) - float(a.trace())) < 5 * math.sqrt(var / n)
    assert abs(float(est.var()) - var) < 5 * math.sqrt((mu4 - var**2) / n)


def test_rademacher_probes_give_the_trace_of_a_diagonal_map_every_time_and_gaussian_ones_do_not():
    a = torch.diag(torch.tensor([1.5, -2.0, 0.25, 3.0], dtype=torch.float64))
    x = torch.randn(6, 4, generator=_gen(0), dtype=torch.float64)
    rad = metrics.hutchinson_trace(_linear(a), x, _gen(1), n_probes=1)
    assert torch.equal(rad, torch.full((6,), float(a.trace()), dtype=torch.float64))
    gauss = metrics.hutchinson_trace(_linear(a), x, _gen(1), n_probes=1, kind="gaussian")
    assert (gauss - a.trace()).abs().max() > 0.1


def test_a_map_that_ignores_x_has_trace_0():
    x = torch.randn(3, 4, generator=_gen(0))
    assert torch.equal(metrics.exact_jacobian_trace(torch.zeros_like, x), torch.zeros(3))
    assert torch.equal(metrics.hutchinson_trace(torch.zeros_like, x, _gen(0), n_probes=2), torch.zeros(3))


@pytest.mark.parametrize("call,error,message", [
    (lambda: metrics.hutchinson_trace(_mlp(), torch.zeros(2, 4, dtype=torch.float64), _gen(0), kind="uniform"),
     ValueError, "kind must be one of 'rademacher', 'gaussian', got 'uniform'"),
    (lambda: metrics.hutchinson_trace(_mlp(), torch.zeros(2, 4, dtype=torch.float64), _gen(0), n_probes=0),
     ValueError, "n_probes must be a whole number >= 1, got 0"),
    (lambda: metrics.hutchinson_trace(_mlp(), torch.zeros(2, 4, dtype=torch.float64), None), TypeError,
     "expected a torch.Generator for the probes, got NoneType"),
    (lambda: metrics.exact_jacobian_trace(lambda x: x.sum(1), torch.zeros(2, 4)), ValueError,
     r"f must map x \(2, 4\) to a tensor of the same shape \(its Jacobian is square\), got \(2,\)"),
    (lambda: metrics.exact_jacobian_trace(_mlp(), torch.zeros(4, dtype=torch.float64)), ValueError,
     r"expected a non-empty batch x of shape \(B, ...\), got \(4,\); one example: x.unsqueeze\(0\)"),
])
def test_bad_trace_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --- Quality against the sampler's cost ----------------------------------------------------------------------

class _Stub(torch.nn.Module):
    """A 'generator' whose images depend on the noise (from the generator) and on a steps argument."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def sample(self, n, generator=None, steps=1):
        return (torch.rand(n, 1, 28, 28, generator=generator) / steps).clamp(0, 1)


def test_quality_by_cost_judges_each_setting_from_the_same_noise():
    from genvae.models import ModelConfig, build_model

    with init_seed(0):
        clf = build_model(ModelConfig("classifier", channels=(4, 8), hidden=(16,)))
    ref = images(40, seed=3)
    rows = metrics.quality_by_cost(_Stub(), clf, ref, [{"steps": 1}, {"steps": 2}], n=30, seed=4)
    judge = metrics.SampleJudge(clf, ref)
    for row, steps in zip(rows, (1, 2)):
        expected = judge((torch.rand(30, 1, 28, 28, generator=_gen(4)) / steps).clamp(0, 1))
        assert row == pytest.approx(expected)
    assert rows[0]["Frechet distance"] != rows[1]["Frechet distance"]
    with pytest.raises(ValueError):
        metrics.quality_by_cost(_Stub(), clf, ref, [], n=30)
