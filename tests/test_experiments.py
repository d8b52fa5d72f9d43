"""Every named experiment trains in quick mode (what `genvae reproduce --quick` does)."""

from __future__ import annotations

import math
import os
from dataclasses import replace

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from genvae import cache, experiments
from genvae import data as gdata
from genvae.experiments import REGISTRY, book_experiments, get
from genvae.models import ADVERSARIAL_KINDS

MNIST_NAMES = [e.name for e in book_experiments("mnist")]


def training_path(name: str) -> tuple:
    """What decides which code trains an experiment: the family, the architecture and the recipe's choices
    (reconstruction term, binarised data, generator loss, schedule, precision). Experiments with equal paths
    differ only in numbers (a code size, beta, gamma, epochs, the seed) and train through the same code."""
    e = get(name)
    return (e.model.kind, e.model.arch, e.train.recon, e.train.binarize, e.train.adversarial, e.train.schedule,
            e.train.precision)


# One MNIST experiment per training path (CI trains every experiment anyway, in `genvae reproduce --quick`; this
# test checks what a quick run must be on one of each), and one Fashion-MNIST model (the others differ only in
# their data). test_every_training_path_is_tested below fails if a new path has no representative here. The
# overcomplete autoencoder shares ae_d2's path but is kept: it is the one model without hidden layers. Where a
# path has several experiments the cheapest stands for it: the GAN and the VAE-GAN of one epoch (94 quick steps,
# 7 and 18 s of one CPU, against 15 and 38 s for the 2-epoch gan_d32 and vaegan_d32).
REPRESENTATIVES = ["ae_d2", "small_conv_ae_d2", "overcomplete_ae", "classifier", "vae_d2",
                   "vae_bernoulli_d50", "ms_d2_b1_g10", "gan_d32_e1_n20000", "gan_d32_minimax_e1_n20000", "vaegan_d32_e1_n20000",
                   "cvae_d8", "ddpm_fashion", "flow_fashion"]
# The U-Net families stand for their paths on Fashion-MNIST and train into the chapter runs' shared quick cache
# (tests/test_parameters.py runs chapters 12-13 on Fashion-MNIST): one quick training of each, about 40 s of one CPU,
# serves both tests, whichever comes first.
SHARED_WITH_CHAPTERS = {"ddpm_fashion", "flow_fashion"}


def test_every_training_path_is_tested():
    paths = {training_path(n) for n in MNIST_NAMES}
    tested = {training_path(n) for n in REPRESENTATIVES}
    assert paths == tested, f"paths without a representative: {sorted(paths - tested)}"


@pytest.mark.slow
@pytest.mark.parametrize("name", REPRESENTATIVES + ["vae_d2_fashion"])
def test_every_experiment_trains_in_quick_mode(name, request, monkeypatch):
    if name in SHARED_WITH_CHAPTERS:
        monkeypatch.setenv("GENVAE_CACHE", str(request.getfixturevalue("chapters_cache")))
    t = get(name).load(quick=True, progress=False)
    if name in RECOMPUTED:
        _recorded_metrics_are_the_models_own(t)
    assert t.train_config.epochs <= 2 and t.train_config.train_size == 6000
    assert all(math.isfinite(v) for v in t.metrics.values())
    if t.model_config.kind in ADVERSARIAL_KINDS:  # a game's summed losses need not fall; every step is recorded
        assert len(t.history.curve("d")) == len(t.history.curve("g")) == 94 * t.train_config.epochs
    else:
        first, last = t.history.series("train")[0], t.history.series("train")[-1]
        assert last <= first
    assert get(name).is_cached(quick=True) and not get(name).is_cached(quick=False)


# One experiment of each model family (kind and architecture), and the binarised one: the test set is
# evaluated once more for each (0.3 s for an MLP to 4 s for the classifier, one thread), so not for all.
RECOMPUTED = {"ae_d2", "small_conv_ae_d2", "overcomplete_ae", "classifier", "vae_d2", "vae_bernoulli_d50",
              "ms_d2_b1_g10", "vaegan_d32_e1_n20000", "cvae_d8"}


def _recorded_metrics_are_the_models_own(t) -> None:
    """The test metrics that training recorded (and the cache keeps) are the trained model's own numbers,
    recomputed here from the returned model on the whole test set, without the training loop's code: an
    autoencoder's squared error, a classifier's accuracy, a VAE's KL from torch.distributions. (A GAN's
    recorded losses depend on its noise draws: not recomputed.)"""
    d = gdata.load(t.train_config.dataset)
    x, y = d.x_test, d.y_test
    if t.train_config.binarize:  # evaluated on one fixed binarisation of the test set
        x = gdata.fixed_binarization(x)
    kind, model = t.model_config.kind, t.model.eval()
    with torch.no_grad():
        batches = list(zip(x.split(1000), y.split(1000)))
        if kind == "ae":  # sum over pixels, mean over images
            err = sum(float(((model.reconstruct(xb) - xb) ** 2).double().sum()) for xb, _ in batches) / len(x)
            assert t.metrics["recon"] == pytest.approx(err, rel=1e-4)
        elif kind == "classifier":
            hits = sum(int((model(xb).logits.argmax(1) == yb).sum()) for xb, yb in batches)
            assert t.metrics["acc"] == pytest.approx(hits / len(x), abs=1e-6)
        elif kind in ("vae", "multistage", "vaegan", "cvae"):
            kl = 0.0
            for xb, yb in batches:
                mu, logvar = model.encode(xb, yb) if kind == "cvae" else model.encode(xb)
                q = Normal(mu.double(), torch.exp(0.5 * logvar.double()))
                kl += float(kl_divergence(q, Normal(0.0, 1.0)).sum())
            assert t.metrics["kl"] == pytest.approx(kl / len(x), rel=1e-4)


def test_seed_variants_differ_only_in_seed():
    base = get("ae_d2")
    s1 = get("ae_d2_s1")
    assert s1.model == base.model and s1.train.seed == 1 and s1.train.epochs == base.train.epochs
    assert base.with_seed(0) is base


def test_unknown_name():
    with pytest.raises(KeyError, match="known"):
        get("nope")


# The names and cache keys of the MNIST experiments as they were before the factories took a data set
# (computed on main at 20fe363). A changed key would make every reader's cached MNIST model retrain, so
# these are hard-coded on purpose. Precision is pinned to fp32 (the recipes pick bf16 on CPUs that have
# it) and CACHE_FORMAT to 2, its value then, so the test checks only what the data-set change could touch.
MNIST_BEFORE = [
    "classifier", "ae_d2", "ae_d16", "ae_d32", "ae_d2_s1", "ae_d2_s2", "conv_ae_d2", "small_conv_ae_d2",
    "conv_ae_d16", "small_conv_ae_d16", "overcomplete_ae", "vae_d16", "vae_bernoulli_d50", "vae_d2_b0.1",
    "vae_d2", "vae_d2_b4", "vae_d2_b10", "ms_d2_b0.1_g10", "ms_d2_b1_g10", "ms_d2_b4_g10", "ms_d2_b10_g10",
    "ms_d2_b1_g0.1", "ms_d2_b1_g1", "ms_d2_b1_g100",
]
KEYS_BEFORE = {  # name: (full-mode key, quick-mode key)
    "classifier": ("46a7053013f7c6bf", "2aaa35d1c27715fb"),
    "ae_d2": ("8eece1377d9dc9fa", "6b8740998c5e3033"),
    "ae_d2_s1": ("2bae106fe63070be", "cc04b86dc4f171fe"),
    "small_conv_ae_d16": ("fb56b63537684c08", "f37054224a6f7f5e"),
    "overcomplete_ae": ("0e43b5bb01c94560", "e34275b2ca76e97d"),
    "vae_d2_b0.1": ("113d952baf403d62", "9b3d9ae255877a10"),
    "ms_d2_b1_g100": ("7aae931ad0326813", "d226eeab7e1ef66c"),
    "vae_bernoulli_d50": ("4b9e94549cc8d1b4", "9700ef8b258a80b0"),
}


# Added for chapters 9-11 (issue 9), after the list above; new names may only be appended. One deliberate
# change since: chapter 9's six failure-demo GANs train on 20,000 images instead of 60,000 (issue 19), so their
# names carry _n20000 (new models, new keys; the old configurations keep theirs: KEYS_PINNED below).
MNIST_ADDED = [
    "gan_d32", "gan_d32_e1_n20000", "gan_d32_e1_n20000_s1", "gan_d32_e1_n20000_s2", "gan_d32_minimax_e1_n20000",
    "gan_d32_minimax_e1_n20000_s1", "gan_d32_minimax_e1_n20000_s2", "vaegan_d32", "vaegan_d32_w100_e1_n20000", "vaegan_d32_e1_n20000",
    "vaegan_d32_w0.01_e1_n20000", "vae_d8", "ms_d8_b1_g10", "cvae_d8", "ddpm", "flow",
    "vae_d2_s1", "vae_d16_s1", "ms_d2_b1_g10_s1", "ae_d16_s1", "cvae_d8_s1",
    "vae_d2_s2", "vae_d16_s2", "ms_d2_b1_g10_s2", "ae_d16_s2", "cvae_d8_s2",
]


def test_mnist_experiments_keep_their_names():
    assert MNIST_NAMES == MNIST_BEFORE + MNIST_ADDED
    assert all(get(n).train.dataset == "mnist" for n in MNIST_NAMES)


@pytest.mark.parametrize("name", KEYS_BEFORE)
def test_mnist_cache_keys_are_unchanged(name, monkeypatch):
    monkeypatch.setattr(cache, "CACHE_FORMAT", 2)
    e = get(name)
    train = replace(e.train, precision="fp32")
    assert (cache.cache_key(e.model, train, False), cache.cache_key(e.model, train.quick(), True)) == KEYS_BEFORE[name]


# More keys, pinned when the rule "request -> training config of the mode, cache key, entry folder" became one
# function (cache.resolve, issue 17; computed before that change, at 9069cb0): the chapters 9-11 families with
# their late fields (adversarial, adv_weight), both precisions, Fashion-MNIST. Each is the key of an entry that
# a real cache held then. A change here makes those models retrain: only a deliberate one (a CACHE_FORMAT bump)
# may update these.
KEYS_PINNED = {  # (name, precision): (full-mode key, quick-mode key)
    ("gan_d32", "fp32"): ("8a597bbfe37143c8", "2cac71a7245d4686"),
    ("gan_d32_minimax_e1_s1", "fp32"): ("42a3b2e796e23b3e", "1cdf8286fbf8659b"),
    ("vaegan_d32_w100_e1_n20000", "fp32"): ("77fb540725613778", "ea311084f3519848"),
    ("cvae_d8", "bf16"): ("e87a10eb9de1dde3", "40f1a340515ec837"),
    ("ae_d2", "bf16"): ("06478fae39ddbbfb", "fa0a316895fba941"),
    ("vae_d2_b4_fashion", "bf16"): ("841bb83c77f2f4da", "27f519d06c64be40"),
    ("conv_ae_d2_fashion", "fp32"): ("6a0c57a00c403240", "cc6c76bbdcb7be80"),
    # Pinned when the failure demo moved to 20,000 images (issue 19); its quick configuration is the old one's.
    ("gan_d32_minimax_e1_n20000_s1", "fp32"): ("2d938653875e9673", "1cdf8286fbf8659b"),
}


# Pinned configurations that the book no longer trains: their factories must still give the keys above.
NO_LONGER_IN_THE_BOOK = {"gan_d32_minimax_e1_s1": lambda: experiments.gan(adversarial="minimax", epochs=1, seed=1)}


@pytest.mark.parametrize("name, precision", KEYS_PINNED)
def test_cache_keys_are_pinned(name, precision, tmp_path):
    e = NO_LONGER_IN_THE_BOOK[name]() if name in NO_LONGER_IN_THE_BOOK else get(name)
    assert e.name == name and (name in REGISTRY) == (name not in NO_LONGER_IN_THE_BOOK)
    request = replace(e.request, train_config=replace(e.train, precision=precision))
    full, quick = cache.resolve(request, False, tmp_path), cache.resolve(request, True, tmp_path)
    assert (full.key, quick.key) == KEYS_PINNED[name, precision]
    assert full.path == tmp_path / f"{name}-{full.key}" and quick.path == tmp_path / f"{name}-{quick.key}"


def test_fashion_experiments_get_a_suffix_and_their_data():
    fashion = book_experiments("fashion-mnist")
    assert [e.name for e in fashion] == [n + "_fashion" for n in MNIST_BEFORE + MNIST_ADDED]
    for e, m in zip(fashion, book_experiments("mnist")):
        assert e.train.dataset == "fashion-mnist" and e.model == m.model
        assert replace(e.train, dataset="mnist") == m.train  # the same recipe, other data
        assert REGISTRY[e.name] is not None and cache.cache_key(e.model, e.train, False) != \
            cache.cache_key(m.model, m.train, False)
    assert experiments.vae(2, beta=4.0, dataset="fashion-mnist").name == "vae_d2_b4_fashion"
    assert experiments.mlp_ae(2, seed=1, dataset="fashion-mnist").name == "ae_d2_s1_fashion"
    assert experiments.classifier(dataset="fashion-mnist").name == "classifier_fashion"
    assert len(REGISTRY) == 2 * len(MNIST_BEFORE + MNIST_ADDED)


def test_unknown_data_set():
    with pytest.raises(ValueError, match="data set"):
        experiments.vae(2, dataset="cifar")


def test_the_gamma_sweep_varies_only_the_adversarial_weight():
    sweep = experiments.vaegan_gamma_sweep()
    main = experiments.vaegan()
    assert [e.name for e in sweep] == ["vaegan_d32_w100_e1_n20000", "vaegan_d32_e1_n20000", "vaegan_d32_w0.01_e1_n20000"]
    assert [e.train.adv_weight for e in sweep] == list(experiments.GAMMA_SWEEP_WEIGHTS)
    for e in sweep:
        assert e.model == main.model and e.train.epochs == 1 and e.train.train_size == 20_000
        assert replace(e.train, adv_weight=1.0, epochs=main.train.epochs, train_size=None) == main.train
    assert [e.name for e in experiments.vaegan_gamma_sweep(16, [2], dataset="fashion-mnist")] == \
        ["vaegan_d16_w2_e1_n20000_fashion"]
    for bad in ([], [0.0], [-1.0], [math.inf]):
        with pytest.raises(ValueError, match="adversarial weights > 0"):
            experiments.vaegan_gamma_sweep(weights=bad)


def test_a_quick_run_leaves_out_the_scoreboards_extra_seeds():
    full, quick = book_experiments("fashion-mnist"), book_experiments("fashion-mnist", quick=True)
    extra = experiments.scoreboard_seeds("fashion-mnist")
    assert [e.name for e in full] == [e.name for e in quick] + [e.name for e in extra]
    assert {e.train.seed for e in extra} == {1, 2} and all(e.name in REGISTRY for e in extra)


def test_default_jobs_one_process_per_core_within_memory_and_units():
    from genvae.experiments import default_jobs, GPU_JOBS, threads_per_job, WORKER_MEMORY

    cpu, gib = torch.device("cpu"), 2**30
    assert default_jobs(cpu, cpus=2, memory=24 * gib) == 2
    assert default_jobs(cpu, cpus=8, memory=64 * gib) == 8  # an 8-core laptop: every core, not a quarter of them
    assert default_jobs(cpu, cpus=16, memory=8 * gib) == 8 * gib // WORKER_MEMORY  # memory is the limit
    assert default_jobs(cpu, cpus=16, memory=WORKER_MEMORY // 2) == 1  # never below one
    assert default_jobs(cpu, cpus=8, memory=None) == 8  # memory unknown: cores decide
    assert default_jobs(cpu, units=3, cpus=8, memory=64 * gib) == 3  # no idle process
    assert default_jobs(cpu, units=0, cpus=8, memory=64 * gib) == 1
    assert default_jobs(torch.device("meta"), cpus=8, memory=64 * gib) == 1  # an accelerator trains one unit at a time
    cuda = torch.device("cuda")  # a CUDA GPU is shared by GPU_JOBS processes, each launching from a core of its own
    assert default_jobs(cuda, cpus=16, memory=128 * gib) == GPU_JOBS > 1
    assert default_jobs(cuda, cpus=2, memory=128 * gib) == 2
    assert default_jobs(cuda, units=1, cpus=16, memory=128 * gib) == 1
    assert default_jobs(cuda, cpus=16, memory=WORKER_MEMORY) == 1
    assert [threads_per_job(j, cpus=8) for j in (1, 3, 8, 16)] == [8, 2, 1, 1]


def test_default_jobs_reads_this_machine():
    from genvae.experiments import default_jobs
    from genvae.settings import available_cpus, available_memory

    cpus, memory = available_cpus(), available_memory()
    assert 1 <= cpus <= (os.cpu_count() or 1)
    assert memory is None or memory > 0
    assert 1 <= default_jobs(torch.device("cpu")) <= cpus
