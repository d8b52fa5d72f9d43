"""The model suite (tests/model_suite.py) over every family of the book: one class per family, run on every
device type (the CPU always, CUDA and MPS where present, skipped with the reason elsewhere)."""

from __future__ import annotations

import pytest
import torch

from genvae.models import (
    AEOutput, ClassifierOutput, DiffusionOutput, FlowOutput, GANOutput, ModelConfig, MultiStageOutput, VAEGANOutput, VAEOutput, build_model,
    count_parameters, kinds,
)

from genvae.models.diffusion import alpha_bars, noise_schedule
from model_suite import TINY, B, ModelTesterMixin, batch, build, check_decoded, check_posterior


class TestAutoEncoder(ModelTesterMixin):
    configs = {"ae-mlp": dict(kind="ae", arch="mlp", **TINY), "ae-conv": dict(kind="ae", arch="conv", **TINY),
               "ae-linear-overcomplete": dict(kind="ae", arch="mlp", latent_dim=1000, hidden=()),
               "ae-fullconv": dict(kind="ae", arch="fullconv", latent_dim=2 * 784)}
    output_type = AEOutput
    loss_parts = {"total", "recon"}
    stochastic = False  # no noise: the same image gives the same code in training mode too

    def check_output(self, out, cfg):
        check_decoded(out, cfg)


class TestVAE(ModelTesterMixin):
    configs = {"vae-mlp": dict(kind="vae", arch="mlp", **TINY), "vae-conv": dict(kind="vae", arch="conv", **TINY)}
    output_type = VAEOutput
    loss_parts = {"total", "recon", "kl"}

    def check_output(self, out, cfg):
        check_posterior(out, cfg)


class TestMultiStageVAE(ModelTesterMixin):
    configs = {"multistage-mlp": dict(kind="multistage", arch="mlp", **TINY),
               "multistage-conv": dict(kind="multistage", arch="conv", **TINY)}
    output_type = MultiStageOutput
    loss_parts = {"total", "recon", "kl", "ce"}

    def check_output(self, out, cfg):
        check_posterior(out, cfg)
        assert out.logits.shape == (B, cfg.n_classes)


class TestClassifier(ModelTesterMixin):
    configs = {"classifier": dict(kind="classifier", **TINY)}
    output_type = ClassifierOutput
    loss_parts = {"total", "ce"}
    reconstructs = False

    def check_output(self, out, cfg):
        assert out.logits.shape == (B, cfg.n_classes)
        assert out.features.shape == (B, cfg.hidden[-1])


class TestGAN(ModelTesterMixin):
    configs = {"gan": dict(kind="gan", arch="conv", **TINY)}
    output_type = GANOutput
    loss_parts = {"total", "d", "g"}
    reconstructs = False

    def check_output(self, out, cfg):
        assert out.x_fake.shape == (B, 1, 28, 28) and torch.all((out.x_fake >= 0) & (out.x_fake <= 1))
        assert out.z.shape == (B, cfg.latent_dim)
        assert out.real_logits.shape == out.fake_logits.shape == (B,)


class TestVAEGAN(ModelTesterMixin):
    configs = {"vaegan": dict(kind="vaegan", arch="conv", **TINY)}
    output_type = VAEGANOutput
    loss_parts = {"total", "recon", "kl", "d", "g", "feature"}

    def check_output(self, out, cfg):
        check_posterior(out, cfg)
        assert out.real_logits.shape == out.recon_logits.shape == out.prior_logits.shape == (B,)
        assert out.real_features.shape == out.recon_features.shape == (B, cfg.channels[1] * 49)


class TestCVAE(ModelTesterMixin):
    configs = {"cvae": dict(kind="cvae", arch="mlp", **TINY)}
    output_type = VAEOutput
    loss_parts = {"total", "recon", "kl"}

    def check_output(self, out, cfg):
        check_posterior(out, cfg)


class TestDDPM(ModelTesterMixin):
    configs = {"ddpm-linear": dict(kind="ddpm", arch="conv", **TINY, timesteps=50),
               "ddpm-cosine": dict(kind="ddpm", arch="conv", **TINY, timesteps=20, noise_schedule="cosine")}
    output_type = DiffusionOutput
    loss_parts = {"total", "recon"}
    reconstructs = False

    def check_output(self, out, cfg):
        assert out.eps_hat.shape == out.eps.shape == out.x_t.shape == (B, 1, 28, 28)
        assert out.t.shape == (B,) and out.t.dtype == torch.int64
        assert int(out.t.min()) >= 0 and int(out.t.max()) < cfg.timesteps
        # x_t is the closed form q(x_t | x_0) at the drawn step, with the drawn noise
        abar = alpha_bars(noise_schedule(cfg.timesteps, cfg.noise_schedule)).float().to(out.t.device)[out.t]
        x0 = 2 * batch(out.t.device.type)[0] - 1
        expected = abar.sqrt()[:, None, None, None] * x0 + (1 - abar).sqrt()[:, None, None, None] * out.eps
        torch.testing.assert_close(out.x_t, expected)


class TestFlowMatching(ModelTesterMixin):
    configs = {"flow": dict(kind="flow", arch="conv", **TINY)}
    output_type = FlowOutput
    loss_parts = {"total", "recon"}
    reconstructs = False

    def check_output(self, out, cfg):
        assert out.v_hat.shape == out.v.shape == out.x_t.shape == (B, 1, 28, 28)
        assert out.t.shape == (B,) and float(out.t.min()) >= 0 and float(out.t.max()) < 1
        # x_t lies on the straight line from the noise x_0 = x_1 - v to the digit x_1, at time t
        x1 = 2 * batch(out.t.device.type)[0] - 1
        t = out.t[:, None, None, None]
        torch.testing.assert_close(out.x_t, (1 - t) * (x1 - out.v) + t * x1)


SUITES = [TestAutoEncoder, TestVAE, TestMultiStageVAE, TestClassifier, TestGAN, TestVAEGAN, TestCVAE, TestDDPM,
          TestFlowMatching]


def test_every_family_of_the_book_has_a_suite():
    tested = {ModelConfig(**c).kind for s in SUITES for c in s.configs.values()}
    assert tested == {"ae", "vae", "multistage", "classifier", "gan", "vaegan", "cvae", "ddpm", "flow"} and tested <= set(kinds())


@pytest.mark.parametrize("bad", [
    dict(kind="gan"), dict(kind="ae", arch="rnn"), dict(kind="ae", latent_dim=0),
    dict(kind="ae", channels=(4,)), dict(kind="ae", arch="conv", hidden=()), dict(kind="ae", bogus=1),
    dict(kind="ae", arch="fullconv", latent_dim=1000), dict(kind="gan", arch="mlp"), dict(kind="vaegan", arch="mlp"),
    dict(kind="cvae", arch="conv"), dict(kind="ddpm", arch="mlp"), dict(kind="ddpm", arch="conv", timesteps=1),
    dict(kind="ddpm", arch="conv", noise_schedule="sigmoid"), dict(kind="ddpm", arch="conv", timesteps=10.5),
    dict(kind="flow", arch="mlp"),
])
def test_bad_config_is_rejected(bad):
    with pytest.raises((ValueError, TypeError)):
        ModelConfig.from_dict(bad)


def test_vaegan_state_dict_names_are_those_its_cached_checkpoints_hold():
    """The VAE-GAN shares the VAE's, the autoencoder's and the GAN's methods; its modules, and so the tensor
    names in every saved VAE-GAN (genvae.checkpoint), stay its own: encoder, decoder (the GAN's generator),
    discriminator."""
    model = build_model(ModelConfig("vaegan", "conv", latent_dim=4, channels=(4, 8), hidden=(16,)))
    assert list(model.state_dict()) == [
        *(f"encoder.net.{i}.{p}" for i in (0, 2, 5, 7) for p in ("weight", "bias")),
        "decoder.net.0.weight",
        *(f"decoder.net.1.{p}" for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")),
        "decoder.net.4.weight",
        *(f"decoder.net.5.{p}" for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")),
        "decoder.net.7.weight", "decoder.net.7.bias",
        *(f"discriminator.features.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")),
        "discriminator.out.weight", "discriminator.out.bias",
    ]


def test_vae_embed_is_the_posterior_mean_and_sampling_is_stochastic():
    model = build(ModelConfig(**TestVAE.configs["vae-mlp"]))
    x, _ = batch()
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
