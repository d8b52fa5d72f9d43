"""One suite over every model family with tiny configs (in the spirit of diffusers' ModelTesterMixin),
on every device type: the CPU always, CUDA and MPS where present (skipped with the reason elsewhere)."""

from __future__ import annotations

import pytest
import torch

from genvae import checkpoint
from genvae.losses import objective
from genvae.models import (
    AEOutput, ClassifierOutput, GANOutput, ModelConfig, MultiStageOutput, VAEGANOutput, VAEOutput, build_model,
    count_parameters,
)
from genvae.train import forward
from genvae.utils import init_seed, noise_generator

from conftest import device_params, images

TINY = dict(latent_dim=3, hidden=(32, 16), channels=(4, 8), head_hidden=8)
CONFIGS = {
    "ae-mlp": ModelConfig("ae", "mlp", **TINY),
    "ae-conv": ModelConfig("ae", "conv", **TINY),
    "ae-linear-overcomplete": ModelConfig("ae", "mlp", latent_dim=1000, hidden=()),
    "ae-fullconv": ModelConfig("ae", "fullconv", latent_dim=2 * 784),
    "vae-mlp": ModelConfig("vae", "mlp", **TINY),
    "vae-conv": ModelConfig("vae", "conv", **TINY),
    "multistage-mlp": ModelConfig("multistage", "mlp", **TINY),
    "multistage-conv": ModelConfig("multistage", "conv", **TINY),
    "classifier": ModelConfig("classifier", **TINY),
    "gan": ModelConfig("gan", "conv", **TINY),
    "vaegan": ModelConfig("vaegan", "conv", **TINY),
    "cvae": ModelConfig("cvae", "mlp", **TINY),
}
EXPECTED_OUTPUT = {"ae": AEOutput, "vae": VAEOutput, "multistage": MultiStageOutput, "classifier": ClassifierOutput,
                   "gan": GANOutput, "vaegan": VAEGANOutput, "cvae": VAEOutput}
EXPECTED_PARTS = {"ae": {"total", "recon"}, "vae": {"total", "recon", "kl"}, "cvae": {"total", "recon", "kl"},
                  "multistage": {"total", "recon", "kl", "ce"}, "classifier": {"total", "ce"},
                  "gan": {"total", "d", "g"}, "vaegan": {"total", "recon", "kl", "d", "g", "feature"}}

B = 5


def _build(cfg: ModelConfig, seed: int = 0, device: str = "cpu"):
    with init_seed(seed):
        return build_model(cfg).to(device)


def _batch(device: str = "cpu"):
    return images(B).to(device), torch.arange(B, device=device) % 10


def _run(model, x, seed=0):
    """The model's forward pass with its noise (a VAE's z, a GAN's z, the classifier's dropout) from a
    generator seeded with ``seed`` on x's device; the labels reach class-conditional models only."""
    return forward(model, x, y=torch.arange(len(x), device=x.device) % 10, generator=noise_generator(seed, x.device))


@pytest.fixture(params=list(CONFIGS), ids=list(CONFIGS))
def cfg(request) -> ModelConfig:
    return CONFIGS[request.param]


@pytest.fixture(params=device_params())
def device(request) -> str:
    return request.param


def test_output_fields_and_shapes(cfg, device):
    model = _build(cfg, device=device)
    out = _run(model, _batch(device)[0])
    assert type(out) is EXPECTED_OUTPUT[cfg.kind]
    assert all(v.device.type == device for v in vars(out).values()), "outputs left the model's device"
    if cfg.kind == "classifier":
        assert out.logits.shape == (B, cfg.n_classes)
        assert out.features.shape == (B, cfg.hidden[-1])
        return
    if cfg.kind == "gan":
        assert out.x_fake.shape == (B, 1, 28, 28) and torch.all((out.x_fake >= 0) & (out.x_fake <= 1))
        assert out.z.shape == (B, cfg.latent_dim)
        assert out.real_logits.shape == out.fake_logits.shape == (B,)
        return
    assert out.x_hat.shape == out.x_logits.shape == (B, 1, 28, 28)
    assert torch.all((out.x_hat >= 0) & (out.x_hat <= 1))
    assert out.z.shape == (B, cfg.latent_dim)
    if cfg.kind in ("vae", "multistage", "cvae", "vaegan"):
        assert out.mu.shape == out.logvar.shape == (B, cfg.latent_dim)
    if cfg.kind == "vaegan":
        assert out.real_logits.shape == out.recon_logits.shape == out.prior_logits.shape == (B,)
        assert out.real_features.shape == out.recon_features.shape == (B, cfg.channels[1] * 49)
    if cfg.kind == "multistage":
        assert out.logits.shape == (B, cfg.n_classes)


def test_loss_is_finite_scalar(cfg, device):
    model = _build(cfg, device=device)
    x, y = _batch(device)
    parts = objective(_run(model, x), x, y, beta=2.0, gamma=0.5)
    assert parts.total.dim() == 0 and torch.isfinite(parts.total)
    assert set(parts.to_dict()) == EXPECTED_PARTS[cfg.kind]


def test_gradients_reach_every_parameter(cfg, device):
    model = _build(cfg, device=device)
    x, y = _batch(device)
    objective(_run(model, x), x, y).total.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} received no gradient"
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


def test_save_load_gives_equal_outputs(cfg, device, tmp_path):
    model = _build(cfg, device=device).eval()
    x, _ = _batch(device)
    checkpoint.save(model, tmp_path / "ckpt", note="hello")
    loaded, meta = checkpoint.load(tmp_path / "ckpt", map_location=device)
    assert loaded.config == cfg and meta["note"] == "hello"
    assert not loaded.training
    assert {t.device.type for t in loaded.state_dict().values()} == {device}
    a, b = _run(model, x), _run(loaded, x)
    for field, value in vars(a).items():
        torch.testing.assert_close(getattr(b, field), value, rtol=0, atol=0, msg=field)


def test_seeded_determinism(cfg, device):
    m1, m2 = _build(cfg, seed=3, device=device), _build(cfg, seed=3, device=device)
    for (n, p1), p2 in zip(m1.named_parameters(), m2.parameters()):
        assert torch.equal(p1, p2), n
    x, _ = _batch(device)
    o1, o2 = _run(m1.train(), x, seed=7), _run(m2.train(), x, seed=7)
    for field, value in vars(o1).items():
        assert torch.equal(getattr(o2, field), value), field


@pytest.mark.parametrize("seed", [3, 4])
def test_initial_weights_are_pytorchs_default_draws_from_the_seed(cfg, seed):
    """Every weight of a Linear or (transposed) convolution layer is drawn from PyTorch's default
    initialisation, kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the first one the
    model creates is the first draw from the seeded generator: built here independently, from the seed."""
    model = _build(cfg, seed=seed)
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    for layer in layers:
        w = layer.weight.detach()
        fan_in = w[0].numel()  # in * k * k (Linear: in); a transposed convolution's weight is (in, out, k, k)
        assert float(w.abs().max()) <= 1 / fan_in ** 0.5
        if w.numel() >= 200:  # the whole interval is used, not a narrower one (else p = 0.9^200 < 1e-9)
            assert float(w.abs().max()) > 0.9 / fan_in ** 0.5
    first = layers[0].weight
    assert next(model.parameters()) is first  # the first parameter created is that layer's weight
    gen = torch.Generator().manual_seed(seed)
    bound = 1 / first[0].numel() ** 0.5
    expected = torch.empty(first.shape).uniform_(-bound, bound, generator=gen)
    torch.testing.assert_close(first.detach(), expected)  # float32 rounding of the bound aside, the same draw


@pytest.mark.parametrize("name", [n for n, c in CONFIGS.items() if c.kind not in ("classifier", "gan")])
def test_x_hat_is_the_sigmoid_of_the_logits_decoded_from_z(name):
    """For every model with both: x_hat = 1 / (1 + exp(-x_logits)), and x_logits is the decoder's output at z."""
    cfg = CONFIGS[name]
    model = _build(cfg).eval()
    x, y = _batch()
    with torch.no_grad():
        out = _run(model, x)
    torch.testing.assert_close(out.x_hat, 1 / (1 + torch.exp(-out.x_logits.double())).float())
    assert float(out.x_logits.abs().max()) > 0  # the logits are not all 0 (where any squashing would agree)
    with torch.no_grad():
        decoded = model.decode(out.z, y) if cfg.kind == "cvae" else model.decode(out.z)
    torch.testing.assert_close(out.x_logits, decoded)


def _global_rng_states() -> list[torch.Tensor]:
    states = [torch.get_rng_state()]
    if torch.cuda.is_available():
        states += torch.cuda.get_rng_state_all()
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        states.append(torch.mps.get_rng_state())
    return states


def test_noise_comes_from_the_generator_not_the_global_rng(cfg, device):
    model = _build(cfg, device=device).train()  # training mode: the classifier's dropout is on too
    x, _ = _batch(device)
    before = _global_rng_states()
    a, b, other = _run(model, x, seed=1), _run(model, x, seed=1), _run(model, x, seed=2)
    assert all(torch.equal(s, t) for s, t in zip(before, _global_rng_states())), "the global RNG was used"
    for field, value in vars(a).items():
        assert torch.equal(getattr(b, field), value), field
    stochastic = cfg.kind != "ae"  # every other model draws noise in training mode
    assert stochastic == any(not torch.equal(getattr(other, f), v) for f, v in vars(a).items())


def test_one_step_changes_every_weight(cfg, device):
    model = _build(cfg, device=device)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = _batch(device)
    objective(_run(model, x), x, y).total.backward()
    opt.step()
    for n, p in model.named_parameters():
        assert not torch.equal(p, before[n]), f"{n} did not change"


def test_rejects_wrong_input_shape(cfg):
    model = _build(cfg)
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        forward(model, torch.rand(2, 784), y=torch.tensor([0, 1]))


def test_rejects_images_in_0_255_and_uint8(cfg):
    model = _build(cfg)
    x, y = _batch()
    with pytest.raises(ValueError, match=r"^expected values in \[0, 1\], got max 2\d\d\.\d+; divide by 255$"):
        forward(model, x * 255, y=y)
    with pytest.raises(TypeError, match=r"got torch.uint8; convert with x.float\(\) / 255$"):
        forward(model, (x * 255).to(torch.uint8), y=y)


def test_config_round_trips_through_json():
    for cfg in CONFIGS.values():
        assert ModelConfig.from_dict(__import__("json").loads(cfg.to_json())) == cfg


@pytest.mark.parametrize("bad", [
    dict(kind="gan"), dict(kind="ae", arch="rnn"), dict(kind="ae", latent_dim=0),
    dict(kind="ae", channels=(4,)), dict(kind="ae", arch="conv", hidden=()), dict(kind="ae", bogus=1),
    dict(kind="ae", arch="fullconv", latent_dim=1000), dict(kind="gan", arch="mlp"), dict(kind="vaegan", arch="mlp"),
    dict(kind="cvae", arch="conv"),
])
def test_bad_config_is_rejected(bad):
    with pytest.raises((ValueError, TypeError)):
        ModelConfig.from_dict(bad)


def test_vae_embed_is_the_posterior_mean_and_sampling_is_stochastic():
    model = _build(CONFIGS["vae-mlp"])
    x, _ = _batch()
    mu, logvar = model.encode(x)
    assert torch.equal(model.embed(x), mu)
    o1, o2 = model(x), model(x)
    assert not torch.equal(o1.z, o2.z)  # reparameterised samples differ
    assert torch.equal(o1.mu, o2.mu)
    assert model.sample(6).shape == (6, 1, 28, 28)


def test_parameter_counts_by_hand():
    mlp = build_model(ModelConfig("ae", "mlp", latent_dim=2))
    conv = build_model(ModelConfig("ae", "conv", latent_dim=2))
    # 784*512+512 + 512*256+256 + 256*2+2, and the mirror image for the decoder
    enc = 784 * 512 + 512 + 512 * 256 + 256 + 256 * 2 + 2
    dec = 2 * 256 + 256 + 256 * 512 + 512 + 512 * 784 + 784
    assert count_parameters(mlp) == enc + dec  # 1,070,354
    # The conv AE (channels 32, 64; its one dense layer hidden[-1] = 256 wide), weights + biases per layer:
    conv_enc = (1 * 32 * 4 * 4 + 32  # Conv2d(1, 32, 4): 28 -> 14
                + 32 * 64 * 4 * 4 + 64  # Conv2d(32, 64, 4): 14 -> 7
                + 64 * 7 * 7 * 256 + 256  # Linear(3136, 256)
                + 256 * 2 + 2)  # Linear(256, 2)
    conv_dec = (2 * 256 + 256  # Linear(2, 256)
                + 256 * 64 * 7 * 7 + 64 * 7 * 7  # Linear(256, 3136)
                + 64 * 32 * 4 * 4 + 32  # ConvTranspose2d(64, 32, 4): 7 -> 14
                + 32 * 1 * 4 * 4 + 1)  # ConvTranspose2d(32, 1, 4): 14 -> 28
    assert count_parameters(conv) == conv_enc + conv_dec == 1_676_995


def test_layer_table_lists_shapes_in_call_order():
    from genvae.models import layer_table

    model = build_model(ModelConfig("ae", "conv", latent_dim=2, channels=(32, 64), hidden=(256,)))
    rows = layer_table(model, torch.zeros(1, 1, 28, 28))
    shapes = [r["output"] for r in rows if r["type"] in ("Conv2d", "ConvTranspose2d")]
    assert shapes == [(32, 14, 14), (64, 7, 7), (32, 14, 14), (1, 28, 28)]
    assert sum(r["params"] for r in rows) == count_parameters(model)
    assert rows[0]["layer"].startswith("encoder") and rows[-1]["layer"].startswith("decoder")
