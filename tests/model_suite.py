"""The tests every model family passes (in the spirit of diffusers' ``ModelTesterMixin``).

A family's tests are one class that inherits :class:`ModelTesterMixin` and says what to expect::

    class TestVAE(ModelTesterMixin):
        configs = {"vae-mlp": dict(kind="vae", arch="mlp", **TINY)}   # ModelConfig keywords, one run each
        output_type = VAEOutput
        loss_parts = {"total", "recon", "kl"}

        def check_output(self, out, cfg):                               # the fields its output adds
            ...

``tests/conftest.py`` runs every test of such a class once per config and device type (the CPU always, CUDA
and MPS where present, skipped with the reason elsewhere). The configs are built when a test runs, so a class
may test a family that a fixture registers (``tests/test_model_family.py``).
"""

from __future__ import annotations

import json

import pytest
import torch

from genvae import checkpoint
from genvae.losses import objective
from genvae.models import ModelConfig, build_model, is_conditional
from genvae.train import forward
from genvae.utils import init_seed, noise_generator

from conftest import images

TINY = dict(latent_dim=3, hidden=(32, 16), channels=(4, 8), head_hidden=8)
B = 5


def build(cfg: ModelConfig, seed: int = 0, device: str = "cpu"):
    with init_seed(seed):
        return build_model(cfg).to(device)


def batch(device: str = "cpu"):
    return images(B).to(device), torch.arange(B, device=device) % 10


def run(model, x, seed=0):
    """The model's forward pass with its noise (a VAE's z, a GAN's z, the classifier's dropout) from a
    generator seeded with ``seed`` on x's device; the labels reach class-conditional models only."""
    return forward(model, x, y=torch.arange(len(x), device=x.device) % 10, generator=noise_generator(seed, x.device))


def check_decoded(out, cfg: ModelConfig) -> None:
    """A model that decodes a code into an image: ``x_hat`` in [0, 1], its logits, and the code ``z``."""
    assert out.x_hat.shape == out.x_logits.shape == (B, 1, 28, 28)
    assert torch.all((out.x_hat >= 0) & (out.x_hat <= 1))
    assert out.z.shape == (B, cfg.latent_dim)


def check_posterior(out, cfg: ModelConfig) -> None:
    """...and the parameters of a diagonal Gaussian q(z|x)."""
    check_decoded(out, cfg)
    assert out.mu.shape == out.logvar.shape == (B, cfg.latent_dim)


def _global_rng_states() -> list[torch.Tensor]:
    states = [torch.get_rng_state()]
    if torch.cuda.is_available():
        states += torch.cuda.get_rng_state_all()
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        states.append(torch.mps.get_rng_state())
    return states


class ModelTesterMixin:
    """What every family's test class inherits. Set ``configs``, ``output_type`` and ``loss_parts``; set
    ``reconstructs = False`` for a model without ``x_hat`` and ``stochastic = False`` for one that draws no
    noise in training mode; override :meth:`check_output` for the fields of the family's output."""

    configs: dict[str, dict] = {}
    output_type: type = object
    loss_parts: set[str] = set()
    reconstructs = True
    stochastic = True

    def check_output(self, out, cfg: ModelConfig) -> None:
        """The family's own fields and shapes (batch ``B``)."""
        raise NotImplementedError(f"{type(self).__name__} must say what its output holds")

    def test_output_fields_and_shapes(self, cfg, device):
        model = build(cfg, device=device)
        out = run(model, batch(device)[0])
        assert type(out) is self.output_type
        assert all(v.device.type == device for v in vars(out).values()), "outputs left the model's device"
        self.check_output(out, cfg)

    def test_loss_is_finite_scalar(self, cfg, device):
        model = build(cfg, device=device)
        x, y = batch(device)
        parts = objective(run(model, x), x, y, beta=2.0, gamma=0.5)
        assert parts.total.dim() == 0 and torch.isfinite(parts.total)
        assert set(parts.to_dict()) == self.loss_parts

    def test_gradients_reach_every_parameter(self, cfg, device):
        model = build(cfg, device=device)
        x, y = batch(device)
        objective(run(model, x), x, y).total.backward()
        for name, p in model.named_parameters():
            assert p.grad is not None, f"{name} received no gradient"
            assert torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"

    def test_save_load_gives_equal_outputs(self, cfg, device, tmp_path):
        model = build(cfg, device=device).eval()
        x, _ = batch(device)
        checkpoint.save(model, tmp_path / "ckpt", note="hello")
        loaded, meta = checkpoint.load(tmp_path / "ckpt", map_location=device)
        assert loaded.config == cfg and meta["note"] == "hello"
        assert not loaded.training
        assert {t.device.type for t in loaded.state_dict().values()} == {device}
        a, b = run(model, x), run(loaded, x)
        for field, value in vars(a).items():
            torch.testing.assert_close(getattr(b, field), value, rtol=0, atol=0, msg=field)

    def test_seeded_determinism(self, cfg, device):
        m1, m2 = build(cfg, seed=3, device=device), build(cfg, seed=3, device=device)
        for (n, p1), p2 in zip(m1.named_parameters(), m2.parameters()):
            assert torch.equal(p1, p2), n
        x, _ = batch(device)
        o1, o2 = run(m1.train(), x, seed=7), run(m2.train(), x, seed=7)
        for field, value in vars(o1).items():
            assert torch.equal(getattr(o2, field), value), field

    @pytest.mark.parametrize("seed", [3, 4])
    def test_initial_weights_are_pytorchs_default_draws_from_the_seed(self, cfg, seed):
        """Every weight of a Linear or (transposed) convolution layer is drawn from PyTorch's default
        initialisation, kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the first one the
        model creates is the first draw from the seeded generator: built here independently, from the seed."""
        model = build(cfg, seed=seed)
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

    def test_x_hat_is_the_sigmoid_of_the_logits_decoded_from_z(self, cfg):
        """For every model with both: x_hat = 1 / (1 + exp(-x_logits)), and x_logits is the decoder's output at z."""
        if not self.reconstructs:
            pytest.skip(f"a {cfg.kind} has no x_hat")
        model = build(cfg).eval()
        x, y = batch()
        with torch.no_grad():
            out = run(model, x)
        torch.testing.assert_close(out.x_hat, 1 / (1 + torch.exp(-out.x_logits.double())).float())
        assert float(out.x_logits.abs().max()) > 0  # the logits are not all 0 (where any squashing would agree)
        with torch.no_grad():
            decoded = model.decode(out.z, y) if is_conditional(model) else model.decode(out.z)
        torch.testing.assert_close(out.x_logits, decoded)

    def test_noise_comes_from_the_generator_not_the_global_rng(self, cfg, device):
        model = build(cfg, device=device).train()  # training mode: the classifier's dropout is on too
        x, _ = batch(device)
        before = _global_rng_states()
        a, b, other = run(model, x, seed=1), run(model, x, seed=1), run(model, x, seed=2)
        assert all(torch.equal(s, t) for s, t in zip(before, _global_rng_states())), "the global RNG was used"
        for field, value in vars(a).items():
            assert torch.equal(getattr(b, field), value), field
        assert self.stochastic == any(not torch.equal(getattr(other, f), v) for f, v in vars(a).items())

    def test_one_step_changes_every_weight(self, cfg, device):
        model = build(cfg, device=device)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        x, y = batch(device)
        objective(run(model, x), x, y).total.backward()
        opt.step()
        for n, p in model.named_parameters():
            assert not torch.equal(p, before[n]), f"{n} did not change"

    def test_rejects_wrong_input_shape(self, cfg):
        model = build(cfg)
        with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
            forward(model, torch.rand(2, 784), y=torch.tensor([0, 1]))

    def test_rejects_images_in_0_255_and_uint8(self, cfg):
        model = build(cfg)
        x, y = batch()
        with pytest.raises(ValueError, match=r"^expected values in \[0, 1\], got max 2\d\d\.\d+; divide by 255$"):
            forward(model, x * 255, y=y)
        with pytest.raises(TypeError, match=r"got torch.uint8; convert with x.float\(\) / 255$"):
            forward(model, (x * 255).to(torch.uint8), y=y)

    def test_config_round_trips_through_json(self, cfg):
        assert ModelConfig.from_dict(json.loads(cfg.to_json())) == cfg
