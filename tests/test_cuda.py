"""The loop on a CUDA device: graph replay, no host sync per step, models usable where they live.

Skipped where there is no CUDA device (as in CI); run on a GPU machine with
``pytest tests/test_cuda.py``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from genvae import latent, metrics, train
from genvae.models import ModelConfig, build_model
from genvae.stack import fit_stack
from genvae.train import TrainConfig, fit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

VAE = ModelConfig("vae", latent_dim=2, hidden=(128,))
TC = TrainConfig(epochs=2, batch_size=100, schedule="onecycle", lr=3e-3)


@pytest.fixture
def cuda(monkeypatch):
    monkeypatch.setenv("GENVAE_DEVICE", "cuda")
    return torch.device("cuda")


def _fit(data, graph: bool, monkeypatch, cfg=TC, model_cfg=VAE):
    monkeypatch.setenv("GENVAE_CUDA_GRAPH", "1" if graph else "0")
    torch.manual_seed(0)
    model = build_model(model_cfg)
    return model, fit(model, data, cfg, device="cuda", progress=False)


def test_graph_replay_learns_like_the_eager_step(small_mnist, cuda, monkeypatch):
    _, eager = _fit(small_mnist, False, monkeypatch)
    _, graphed = _fit(small_mnist, True, monkeypatch)
    e, g = eager.epochs[-1]["test"]["total"], graphed.epochs[-1]["test"]["total"]
    assert g == pytest.approx(e, rel=0.03)  # other noise draws, same recipe
    assert graphed.series("train")[-1] < graphed.series("train")[0]


def test_an_autoencoder_step_replayed_as_a_graph_equals_the_eager_one(small_mnist, cuda, monkeypatch):
    """No noise in an AE: replay must compute the same updates (up to kernel rounding)."""
    ae = ModelConfig("ae", latent_dim=4, hidden=(64,))
    cfg = replace(TC, epochs=1)
    m_eager, _ = _fit(small_mnist, False, monkeypatch, cfg, ae)
    m_graph, _ = _fit(small_mnist, True, monkeypatch, cfg, ae)
    for p, q in zip(m_eager.parameters(), m_graph.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4)


def test_no_host_sync_between_readings(small_mnist, cuda, monkeypatch):
    """With the sync debugger set to 'error', a whole epoch runs; only Watch.read may sync."""
    real_read = train.Watch.read

    def read_allowing_sync(self, upto):
        mode = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode(0)
        try:
            real_read(self, upto)
        finally:
            torch.cuda.set_sync_debug_mode(mode)

    monkeypatch.setattr(train.Watch, "read", read_allowing_sync)
    for graph in ("0", "1"):
        monkeypatch.setenv("GENVAE_CUDA_GRAPH", graph)
        torch.manual_seed(0)
        model = build_model(VAE).cuda()
        cfg = replace(TC, epochs=1)
        x, y = small_mnist.x_train.cuda(), small_mnist.y_train.cuda()
        opt = train.make_optimizer(model.parameters(), cfg, torch.device("cuda"))
        loss = train.loss_fn(model, cfg)

        def step(idx):
            return train.train_step(loss, opt, x, y, idx, cfg)

        if graph == "1":
            step = train.GraphedStep(step, torch.Size((cfg.batch_size,)))
        shuffle = [torch.Generator().manual_seed(0)]
        watch = train.Watch(len(x) // cfg.batch_size, 1, torch.device("cuda"), every=1000)
        # A first epoch warms up (and captures the graph, which synchronises once).
        train.train_epoch(step, train.epoch_order(len(x), shuffle, torch.device("cuda")), cfg.batch_size, watch)
        order = train.epoch_order(len(x), shuffle, torch.device("cuda"))
        watch.start(2)
        torch.cuda.set_sync_debug_mode("error")
        try:
            parts = train.train_epoch(step, order, cfg.batch_size, watch)
        finally:
            torch.cuda.set_sync_debug_mode(0)
        assert torch.isfinite(parts["total"]).item()


def test_a_stack_trains_on_cuda_with_graphs(small_mnist, cuda, monkeypatch):
    monkeypatch.setenv("GENVAE_CUDA_GRAPH", "1")
    out = fit_stack(VAE, [replace(TC, beta=b) for b in (0.5, 1.0, 4.0)], small_mnist, device="cuda", progress=False)
    kls = [h.epochs[-1]["test"]["kl"] for _, h in out]
    assert kls[0] > kls[1] > kls[2]  # larger beta, smaller KL
    assert all(next(m.parameters()).is_cuda for m, _ in out)


def test_helpers_take_cpu_inputs_for_models_on_cuda(small_mnist, cuda):
    torch.manual_seed(0)
    model = build_model(VAE).cuda().eval()
    x = small_mnist.x_test[:50]
    z = latent.encode(model, x)
    assert z.device.type == "cpu" and z.shape == (50, 2)
    assert latent.decode(model, z).device.type == "cpu"
    assert latent.reconstruct(model, x).shape == x.shape
    assert metrics.reconstruction_mse(model, x) > 0
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    cpu_model = build_model(VAE).eval()
    cpu_model.load_state_dict(model.state_dict())
    torch.testing.assert_close(model.sample(5, generator=g1).cpu(), cpu_model.sample(5, generator=g2), atol=1e-5, rtol=0)
    assert metrics.iwae_bound(model, x, k=200) == pytest.approx(metrics.iwae_bound(cpu_model, x, k=200), rel=0.01)


def test_layer_table_of_a_model_on_cuda_takes_a_cpu_image(small_mnist, cuda):
    from genvae.models import layer_table

    model = build_model(ModelConfig("ae", arch="conv", latent_dim=2, channels=(4, 8), hidden=(16,))).cuda()
    rows = layer_table(model, small_mnist.x_test[:1])
    assert rows[-1]["output"] == (1, 28, 28)


def test_a_replayed_step_draws_the_noise_the_eager_step_draws(small_mnist, cuda, monkeypatch):
    """The noise generator is registered with the CUDA graph, so a VAE trained with replays gets the same
    reparameterisation noise as one trained eagerly: the weights agree up to kernel rounding."""
    cfg = replace(TC, epochs=1)
    m_eager, _ = _fit(small_mnist, False, monkeypatch, cfg)
    m_graph, _ = _fit(small_mnist, True, monkeypatch, cfg)
    for p, q in zip(m_eager.parameters(), m_graph.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4)


def test_cuda_training_leaves_the_global_rngs_alone(small_mnist, cuda, monkeypatch):
    monkeypatch.setenv("GENVAE_CUDA_GRAPH", "1")
    torch.manual_seed(0)
    model = build_model(VAE)  # initialising the weights draws from the global RNG; training must not
    cpu, gpus = torch.get_rng_state(), torch.cuda.get_rng_state_all()
    fit(model, small_mnist, replace(TC, epochs=1), device="cuda", progress=False)
    assert torch.equal(cpu, torch.get_rng_state())
    assert all(torch.equal(a, b) for a, b in zip(gpus, torch.cuda.get_rng_state_all()))


def test_an_interrupted_cuda_training_resumes_where_it_stopped(cuda, monkeypatch, tmp_path):
    """With graphs on, the generator's position after the replays is saved and restored, so the resumed
    run draws fresh noise, as the uninterrupted one does (a repeated draw would show in the weights)."""
    from genvae.cache import load_or_train
    from genvae.training import epochs as training_epochs_module

    monkeypatch.setenv("GENVAE_CUDA_GRAPH", "1")
    tc = TrainConfig(epochs=3, batch_size=100, train_size=600, schedule="onecycle", lr=3e-3)
    reference = load_or_train(VAE, tc, name="ref", cache_dir=tmp_path, progress=False)
    real, calls = training_epochs_module.train_epoch, []

    def ctrl_c(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp, pytest.raises(KeyboardInterrupt):
        mp.setattr(training_epochs_module, "train_epoch", ctrl_c)  # the loop's own reference
        load_or_train(VAE, tc, name="tiny", progress=False)
    resumed = load_or_train(VAE, tc, name="tiny", progress=False)
    assert [e.get("resumed", False) for e in resumed.history.epochs] == [True, True, False]
    for p, q in zip(reference.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)

