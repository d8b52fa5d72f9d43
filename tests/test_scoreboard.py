"""The scoreboard's measurements (genvae.analysis.scoreboard), each against a reference written independently
of it: exact copies and held-out real images for the copying test, a nearest-centroid judge on pooled pixels
whose features and classes are recomputed here by hand (the Frechet distance from numpy's eigenvalues),
FLOPs counted by hand for a tiny MLP autoencoder and a tiny GAN, numpy's mean and standard deviation, and
hand-made tables for the reading.

The judge is not a trained network: 4x4-pooled pixels (49 features) and the nearest of ten class centroids of
2,000 training images. It is deterministic, built in milliseconds, and its features can be recomputed with
plain torch, which a trained classifier's cannot."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genvae.analysis import scoreboard as sb
from genvae.training import flops
from genvae.analysis.samples import SampleJudge, density_coverage, precision_recall
from genvae.models import ModelConfig, build_model
from genvae.models.outputs import ClassifierOutput
from genvae.training import TrainConfig

N = 300  # images per set: reference, floor, "real generator", copying test


class CentroidJudge(nn.Module):
    """Features: 4x4 average-pooled pixels ``(B, 49)``; logits: minus ten times the squared distance to each
    class's mean feature vector (a nearest-centroid classifier, about 70% accurate on MNIST)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        super().__init__()
        f = F.avg_pool2d(x, 4).flatten(1)
        self.register_buffer("centroids", torch.stack([f[y == c].mean(0) for c in range(10)]))

    def forward(self, x, generator=None):
        f = F.avg_pool2d(x, 4).flatten(1)
        return ClassifierOutput(logits=-10 * torch.cdist(f, self.centroids).pow(2), features=f)


@pytest.fixture(scope="module")
def board():
    import genvae

    data = genvae.data.load("mnist")
    train_x, train_y = data.x_train[:2000], data.y_train[:2000]
    perm = torch.randperm(len(data.x_test), generator=torch.Generator().manual_seed(0))
    ref, floor, real, test = (data.x_test[perm[i * N:(i + 1) * N]] for i in range(4))  # disjoint
    clf = CentroidJudge(train_x, train_y)
    judge = SampleJudge(clf, ref)
    kw = dict(copy_size=200)
    noise = torch.rand(N, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    rows = {
        "floor": sb.real_floor(floor, judge, train_x, test, **kw),
        "real": sb.score(real, judge, train_x, test, **kw),
        "copies": sb.score(train_x[:N], judge, train_x, test, **kw),
        "noise": sb.score(noise, judge, train_x, test, **kw),
        "reference": sb.score(ref, judge, train_x, test, **kw),
    }
    return SimpleNamespace(data=data, train=train_x, ref=ref, floor=floor, real=real, test=test, noise=noise,
                           clf=clf, judge=judge, rows=rows)


def test_a_generator_that_returns_training_images_is_caught_copying(board):
    copies = board.rows["copies"]
    assert copies["copying ratio"] == 0.0  # every sample is at distance 0 from its training image
    assert copies["copying share"] == 1.0


def test_held_out_real_images_do_not_copy_and_sit_at_the_floor(board):
    real, floor, noise = board.rows["real"], board.rows["floor"], board.rows["noise"]
    for row in (real, floor):
        assert 0.85 < row["copying ratio"] < 1.15
        assert row["copying share"] < 0.12  # about the 5% quantile, with 200 samples
    # The Frechet distance of real images is the floor's, up to the noise of 300 images: far below noise's.
    gap = noise["Frechet distance"] - floor["Frechet distance"]
    assert gap > 0 and abs(real["Frechet distance"] - floor["Frechet distance"]) < 0.05 * gap
    assert noise["copying ratio"] > 2  # far from every training image: poor samples, not original ones


def test_uniform_noise_scores_worse_than_real_images(board):
    real, noise = board.rows["real"], board.rows["noise"]
    assert noise["Frechet distance"] > 10 * real["Frechet distance"]
    for col in ("precision", "recall", "density", "coverage", "effective classes"):
        assert noise[col] < real[col] - 0.5, col
    assert real["effective classes"] > 8  # the judge spreads real digits over its classes


def test_score_of_the_reference_itself_gives_the_identical_set_values(board):
    row, k = board.rows["reference"], 5
    assert (row["precision"], row["recall"], row["coverage"]) == (1.0, 1.0, 1.0)
    assert row["density"] == pytest.approx((k + 1) / k)
    assert abs(row["Frechet distance"]) < 1e-9


def test_score_agrees_with_the_judge_recomputed_by_hand(board):
    """Frechet distance from the eigenvalues of S_a S_b, class entropy from a numpy histogram, both on features and
    classes recomputed without the judge."""
    row = board.rows["real"]

    def feats(x):
        return F.avg_pool2d(x, 4).flatten(1).double().numpy()

    a, b = feats(board.real), feats(board.ref)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # Tr (S_a S_b)^(1/2) as the sum of the square roots of the eigenvalues of S_a S_b (real and >= 0, as those
    # of a product of two covariances are; rounding leaves tiny imaginary or negative parts).
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvals(ca @ cb).real, 0, None)).sum()
    fd = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * tr_covmean
    assert row["Frechet distance"] == pytest.approx(fd, rel=1e-4, abs=1e-6)
    # The ball measures take the real reference first and the samples second (swapped, precision and recall swap).
    ref_t, real_t = torch.from_numpy(b), torch.from_numpy(feats(board.real))
    assert {c: row[c] for c in ("precision", "recall", "density", "coverage")} == {
        **precision_recall(ref_t, real_t, 5), **density_coverage(ref_t, real_t, 5)}
    assert row["precision"] != row["recall"]
    a = feats(board.real)
    centroids = board.clf.centroids.double().numpy()
    pred = ((a[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
    p = np.bincount(pred, minlength=10) / len(pred)
    entropy = -(p[p > 0] * np.log(p[p > 0])).sum()
    assert row["class entropy (nats)"] == pytest.approx(entropy)
    assert row["effective classes"] == pytest.approx(np.exp(entropy))


def test_the_floor_refuses_the_reference_and_score_checks_its_inputs(board):
    with pytest.raises(ValueError, match="reference"):
        sb.real_floor(board.ref[:50], board.judge, board.train, board.test)
    with pytest.raises(ValueError, match="one shape"):
        sb.score(board.real[:20], board.judge, board.train.view(-1, 784), board.test, copy_size=10)
    with pytest.raises(ValueError, match="k"):
        sb.score(board.real[:20], board.judge, board.train, board.test, k=0)
    with pytest.raises(ValueError):
        sb.score(board.real[:20] * 255, board.judge, board.train, board.test)


# --- FLOPs ------------------------------------------------------------------------------------------------------

def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(before, model):
    return all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_flops_of_a_tiny_mlp_autoencoder_are_the_hand_count_and_nothing_moves():
    torch.manual_seed(0)
    model = build_model(ModelConfig("ae", latent_dim=3, hidden=(8,))).eval()  # 784 -> 8 -> 3 -> 8 -> 784
    before, rng = _state(model), torch.get_rng_state()
    b = 5
    x = torch.rand(b, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    layers = [(784, 8), (8, 3), (3, 8), (8, 784)]
    forward = sum(2 * b * i * o for i, o in layers)  # a Linear layer: 2 x in x out per example
    # Backward: the weight's gradient (2 x in x out) for every layer and the input's for every layer but the
    # first, whose input (the images) needs none.
    backward = sum(2 * b * i * o for i, o in layers) + sum(2 * b * i * o for i, o in layers[1:])
    cfg = TrainConfig(epochs=3, batch_size=4, train_size=10)
    assert flops.step_flops(model, x, cfg) == forward + backward
    # The run: 3 epochs of 10 images, the per-image cost each time (batches of 4, 4 and 2).
    assert flops.training_flops(model, x, cfg) == pytest.approx((forward + backward) / b * 30, rel=1e-12)
    assert flops.training_steps(cfg) == 9 and flops.training_images(replace(cfg, train_size=None)) == 60_000
    assert _same(before, model) and not model.training and torch.equal(rng, torch.get_rng_state())
    assert all(p.grad is None for p in model.parameters())


def test_flops_of_a_tiny_gan_count_both_players_and_leave_the_model_alone():
    torch.manual_seed(0)
    lat, c1, c2, b = 4, 4, 8, 5
    model = build_model(ModelConfig("gan", "conv", latent_dim=lat, channels=(c1, c2))).train()
    before, rng = _state(model), torch.get_rng_state()
    x = torch.rand(b, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    # Forward FLOPs per layer: 2 x batch x weight size x output positions (x input positions for a transposed
    # convolution). Generator: Linear(lat, c2*49), ConvT(c2->c1, 4x4) on 7x7, ConvT(c1->1, 4x4) on 14x14.
    g1, g2, g3 = 2 * b * lat * c2 * 49, 2 * b * c2 * c1 * 16 * 49, 2 * b * c1 * 16 * 196
    # Discriminator: Conv(1->c1, 4x4) to 14x14, Conv(c1->c2, 4x4) to 7x7, Linear(c2*49, 1).
    d1, d2, d3 = 2 * b * c1 * 16 * 196, 2 * b * c1 * c2 * 16 * 49, 2 * b * c2 * 49
    d_fwd = d1 + d2 + d3
    expected = (
        (g1 + g2 + g3)                      # G(z)
        + 2 * d_fwd                         # D(x), D(G(z).detach())
        + 2 * (d_fwd + d2 + d3)             # D's loss: weight gradients, input gradients past the first layer
        + d_fwd                             # D(G(z)) after D's step
        + d_fwd                             # G's loss through D: input gradients only (D does not move)
        + (g1 + g2 + g3) + (g2 + g3)        # ... and through G: weight gradients, input gradients past z
    )
    assert flops.step_flops(model, x, TrainConfig()) == expected
    assert expected > 2 * (g1 + g2 + g3) + 6 * d_fwd  # more than either player's passes alone
    assert _same(before, model) and model.training and torch.equal(rng, torch.get_rng_state())  # BN stats too


def test_entrant_from_a_trained_model_and_its_row():
    torch.manual_seed(0)
    model = build_model(ModelConfig("vae", latent_dim=2, hidden=(8,))).eval()
    cfg = TrainConfig(epochs=2, batch_size=4, train_size=8)
    trained = SimpleNamespace(name="vae", model=model, train_config=cfg, train_seconds=1.5)
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    e = sb.Entrant.from_trained(trained, flops_images=x, likelihoods={"nats, binarised MNIST (IWAE)": 86.0})
    assert e.parameters == sum(p.numel() for p in model.parameters()) and e.train_seconds == 1.5
    assert e.train_flops == flops.step_flops(model, x, cfg) * 4  # 2 epochs of 2 full batches
    images = sb.draw(e, 6, seed=3)
    assert images.shape == (6, 1, 28, 28) and torch.equal(images, sb.draw(e, 6, seed=3))
    scores = [{"Frechet distance": 1.0, "precision": 0.5}, {"Frechet distance": 3.0, "precision": 0.7}]
    row = sb.board_row(replace(e, seeds=2), sb.combine_seeds(scores), ms_per_image=0.25)
    assert row.n == 2 and row.mean["NLL: nats, binarised MNIST (IWAE)"] == 86.0 and row.mean["ms per image"] == 0.25
    assert row.mean["Frechet distance"] == 2.0 and row.sd["Frechet distance"] == pytest.approx(math.sqrt(2))
    assert math.isnan(row.sd["parameters"])
    with pytest.raises(ValueError, match="columns average 2"):
        sb.board_row(e, sb.combine_seeds(scores))
    for bad in (dict(parameters=0), dict(evaluations=1.5), dict(train_seconds=-1.0), dict(likelihoods={"": 1.0}),
                dict(likelihoods={"bits/dim": math.nan}), dict(name=" ")):
        with pytest.raises(ValueError):
            replace(e, **bad)


def test_sampling_time_is_the_median_per_image_after_a_warm_up():
    calls = []
    delays = [0.3, 0.02, 0.3, 0.02]  # a slow warm-up, then one slow call among three

    def sample(n, generator):
        assert isinstance(generator, torch.Generator)
        calls.append(generator.initial_seed())
        time.sleep(delays[len(calls) - 1])
        return torch.zeros(n, 1, 28, 28)

    ms = sb.sampling_milliseconds(sample, n=4, repeats=3, seed=7)
    assert calls == [7, 8, 9, 10]
    assert 20 / 4 <= ms < 150 / 4  # the median call, 20 ms, over 4 images: neither slow call counts
    with pytest.raises(ValueError, match="1, 28, 28"):
        sb.sampling_milliseconds(lambda n, g: torch.zeros(n, 784), n=2, repeats=1)


# --- Seeds and the reading ----------------------------------------------------------------------------------

def test_combine_seeds_is_numpys_mean_and_sample_standard_deviation():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(4, 3)) * [1, 10, 100]
    cols = ["Frechet distance", "precision", "copying ratio"]
    spread = sb.combine_seeds([dict(zip(cols, v)) for v in values])
    assert spread.n == 4
    for j, c in enumerate(cols):
        assert spread.mean[c] == pytest.approx(values[:, j].mean(), rel=1e-12)
        assert spread.sd[c] == pytest.approx(values[:, j].std(ddof=1), rel=1e-12)
    one = sb.combine_seeds([{"precision": 0.5}])
    assert one.mean == {"precision": 0.5} and math.isnan(one.sd["precision"]) and one.n == 1
    with pytest.raises(ValueError, match="no rows"):
        sb.combine_seeds([])
    with pytest.raises(ValueError, match="missing"):
        sb.combine_seeds([{"precision": 1.0, "recall": 1.0}, {"precision": 1.0}])
    with pytest.raises(ValueError, match="unknown column 'precison'"):
        sb.combine_seeds([{"precison": 1.0}])


def _spread(mean, sd):
    return sb.SeedSpread(mean, sd, 3)


def test_the_reading_picks_each_columns_winner_and_weighs_the_lead_against_the_spread():
    table = {
        "A": _spread({"Frechet distance": 10.0, "precision": 0.80, "copying ratio": 0.2, "copying share": 0.9},
                     {"Frechet distance": 1.0, "precision": 0.01, "copying ratio": 0.05, "copying share": 0.05}),
        "B": _spread({"Frechet distance": 12.5, "precision": 0.70, "copying ratio": 1.05, "copying share": 0.06},
                     {"Frechet distance": 1.0, "precision": 0.02, "copying ratio": 0.05, "copying share": 0.01}),
        "C": _spread({"Frechet distance": 30.0, "precision": 0.79, "copying ratio": 1.30, "copying share": 0.01},
                     {"Frechet distance": 1.0, "precision": 0.02, "copying ratio": 0.05, "copying share": 0.01}),
    }
    got = {r["column"]: r for r in sb.reading(table)}
    assert list(got) == ["Frechet distance", "precision", "copying ratio"]  # the copying share is not ranked
    fd = got["Frechet distance"]
    assert (fd["winner"], fd["runner_up"], fd["better"]) == ("A", "B", "lower")
    assert fd["lead"] == pytest.approx(2.5) and fd["spread"] == pytest.approx(2.0) and fd["verdict"] == "clear lead"
    p = got["precision"]
    assert (p["winner"], p["runner_up"]) == ("A", "C") and p["verdict"] == "within the spread"  # 0.01 <= 0.03
    cr = got["copying ratio"]
    # Closest to 1 wins: neither the smallest (A, a copier) nor the largest ratio.
    assert (cr["winner"], cr["runner_up"], cr["better"]) == ("B", "C", "closer to 1")
    assert cr["lead"] == pytest.approx(0.25) and cr["verdict"] == "clear lead" and cr["flagged"] == ["A"]
    # One measurement per generator: the spread is unknown; equal values: a tie, the first in table order.
    plain = sb.reading({"x": {"recall": 0.5}, "y": {"recall": 0.6}, "z": {"recall": 0.6}})
    assert plain[0]["winner"] == "y" and plain[0]["verdict"] == "tie" and plain[0]["spread"] is None
    assert sb.reading({"x": {"recall": 0.5}, "y": {"recall": 0.7}})[0]["verdict"] == "spread unknown"
    # A count that no seed changes (parameters, evaluations, FLOPs): the lead is exact, even with spreads of 0.
    counts = {"x": _spread({"parameters": 10.0, "recall": 0.5}, {"parameters": 0.0, "recall": 0.1}),
              "y": {"parameters": 12.0, "recall": 0.7}, "z": {"parameters": 10.0}}
    got = {r["column"]: r for r in sb.reading(counts)}
    assert (got["parameters"]["winner"], got["parameters"]["runner_up"], got["parameters"]["verdict"]) == ("x", "z", "tie")
    got = {r["column"]: r for r in sb.reading({k: counts[k] for k in ("x", "y")})}
    assert got["parameters"]["verdict"] == "exact" and got["recall"]["verdict"] == "spread unknown"
    assert set(sb.EXACT_COLUMNS) <= set(sb.COLUMNS)


def test_the_reading_compares_likelihoods_only_within_one_protocol():
    bits, nats = sb.likelihood_column("bits/dim, dequantised 8-bit"), sb.likelihood_column("nats, binarised MNIST (IWAE)")
    table = {
        "flow": {bits: 1.30, "Frechet distance": 5.0},
        "vae": {nats: 86.0, "Frechet distance": 9.0},
        "diffusion": {bits: 1.10, nats: 90.0, "Frechet distance": 7.0},  # the smallest number overall: 1.10
        "gan": {"Frechet distance": 4.0},  # no likelihood at all
    }
    got = {r["column"]: r for r in sb.reading(table)}
    b, n = got[bits], got[nats]
    assert b["protocol"] == "bits/dim, dequantised 8-bit" and n["protocol"] == "nats, binarised MNIST (IWAE)"
    assert b["compared"] == ["flow", "diffusion"] and b["skipped"] == ["vae", "gan"]
    assert (b["winner"], b["runner_up"]) == ("diffusion", "flow")
    assert n["compared"] == ["vae", "diffusion"] and (n["winner"], n["runner_up"]) == ("vae", "diffusion")
    alone = {r["column"]: r for r in sb.reading({"flow": {bits: 1.3}, "vae": {nats: 86.0}})}
    assert alone[bits]["verdict"] == alone[nats]["verdict"] == "unopposed"  # never flow against vae
    assert alone[bits]["compared"] == ["flow"] and alone[nats]["compared"] == ["vae"]


def test_the_reading_checks_its_table():
    with pytest.raises(ValueError, match="empty"):
        sb.reading({})
    with pytest.raises(ValueError, match="unknown column 'FID'"):
        sb.reading({"a": {"FID": 1.0}})
    with pytest.raises(ValueError, match="no row has"):
        sb.reading({"a": {"precision": 1.0}}, columns=["recall"])
    with pytest.raises(ValueError, match="not ranked"):
        sb.reading({"a": {"confidence": 1.0}}, columns=["confidence"])
    with pytest.raises(TypeError):
        sb.reading({"a": [1.0]})


def test_the_reading_has_one_column_order_whatever_the_order_of_a_rows_keys():
    """A row computed fresh and the same row read back from JSON (keys sorted) give the same reading."""
    row = {"Frechet distance": 10.0, "recall": 0.5, "precision": 0.9, sb.likelihood_column("b"): 2.0,
           sb.likelihood_column("a"): 1.0}
    other = {k: v + 1 for k, v in row.items()}
    fresh = sb.reading({"x": row, "y": other})
    sorted_keys = sb.reading({"x": dict(sorted(row.items())), "y": dict(sorted(other.items()))})
    assert [r["column"] for r in fresh] == [r["column"] for r in sorted_keys] == [
        "Frechet distance", "precision", "recall", sb.likelihood_column("a"), sb.likelihood_column("b")]
