"""Reproducibility: explicit generators, bit-identical CPU trainings, devices, map_location, `reproduce --check`."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from torch import nn

from genvae import checkpoint, experiments, metrics
from genvae.cache import load_or_train
from genvae.cli import main
from genvae.models import ModelConfig, build_model, reparameterize
from genvae.reproducibility import compare, exact_reason, platform
from genvae.train import TrainConfig, adversarial_step, batch_losses, evaluate, player_optimizers, train_model
from genvae.settings import DEVICE_TYPES, available_devices, resolve_device
from genvae.utils import init_seed, noise_generator

from conftest import device_params, images

TINY = dict(latent_dim=3, hidden=(16,), channels=(4, 8), head_hidden=8)
TINY_TC = TrainConfig(epochs=2, train_size=300, batch_size=100)


def _rng_states() -> list[torch.Tensor]:
    """torch's global RNG states: the CPU's, and every CUDA device's where there are some."""
    return [torch.get_rng_state(), *(torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [])]


def _same_states(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(s, t) for s, t in zip(a, b))


# --- the reparameterisation, by value -----------------------------------------------------------------

def test_reparameterize_is_mu_plus_sigma_times_the_generators_eps():
    mu = torch.tensor([[0.5, -1.0, 2.0], [0.0, 3.0, -0.25]])
    logvar = torch.tensor([[0.0, 2.0, -4.0], [1.0, -1.0, 0.5]])
    z = reparameterize(mu, logvar, torch.Generator().manual_seed(11))
    eps = torch.randn(2, 3, generator=torch.Generator().manual_seed(11))  # the same draw, from a copy
    expected = mu.double() + torch.exp(logvar.double() / 2) * eps.double()
    torch.testing.assert_close(z.double(), expected, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(z, reparameterize(mu, logvar, torch.Generator().manual_seed(12)))


def _pin_the_encoder_head(model: nn.Module, mu: float, logvar: float) -> None:
    """Make the encoder output mu and logvar whatever the image: its last linear layer gets zero weights
    and the bias (mu, ..., mu, logvar, ..., logvar), the layout the models document (first D, then D)."""
    head = [m for m in model.encoder.modules() if isinstance(m, nn.Linear)][-1]
    d = model.config.latent_dim
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([mu] * d + [logvar] * d))


@pytest.mark.parametrize("kind,arch", [("vae", "mlp"), ("multistage", "mlp"), ("cvae", "mlp"), ("vaegan", "conv")])
def test_mu_and_logvar_are_not_swapped_anywhere_from_encoder_to_loss(kind, arch):
    """With mu = 3 and log sigma^2 = -20 (sigma = 4.5e-5), z must sit at 3 with a tiny spread, and the KL
    must be its closed form 0.5 * (mu^2 + sigma^2 - 1 - log sigma^2) = 14 per dimension. A swap of the
    two anywhere (the encoder's split, the reparameterisation, the loss) would put z near -20 or spread
    it by exp(1.5), and give a KL of about 208 per dimension."""
    with init_seed(0):
        model = build_model(ModelConfig(kind, arch, **TINY)).train()
    _pin_the_encoder_head(model, 3.0, -20.0)
    x, y = images(64), torch.arange(64) % 10
    d = model.config.latent_dim
    kl_exact = 0.5 * (9 + torch.exp(torch.tensor(-20.0, dtype=torch.float64)).item() - 1 + 20) * d
    parts = batch_losses(model, x, y, beta=1.0, generator=noise_generator(0))  # the evaluation path
    out = model(x, y, generator=noise_generator(0)) if kind == "cvae" else model(x, generator=noise_generator(0))
    assert torch.allclose(out.mu, torch.full_like(out.mu, 3.0)) and torch.allclose(out.logvar, torch.full_like(out.mu, -20.0))
    assert (out.z - 3).abs().max() < 1e-3 and 0 < out.z.std() < 1e-3
    assert parts["kl"].item() == pytest.approx(kl_exact, rel=1e-6)
    if kind == "vaegan":  # and the training path, where each player steps on its own loss
        step = adversarial_step(model, player_optimizers(model, TrainConfig(), torch.device("cpu")), x,
                                TrainConfig(), noise_generator(0))
        assert step["kl"].item() == pytest.approx(kl_exact, rel=1e-6)


@pytest.mark.parametrize("kind,arch", [("vae", "mlp"), ("cvae", "mlp"), ("classifier", "mlp"), ("gan", "conv"),
                                       ("vaegan", "conv")])
def test_on_a_cpu_a_seeded_generator_draws_what_the_seeded_global_rng_drew(kind, arch):
    """Models cached before the generators came were trained on the global RNG seeded with the same seed;
    drawing the same numbers in the same order (z, a GAN's z, dropout masks) keeps them valid."""
    with init_seed(0):
        model = build_model(ModelConfig(kind, arch, **TINY)).train()
    x, y = images(8), torch.arange(8) % 10
    args = (x, y) if kind == "cvae" else (x,)
    mine = model(*args, generator=noise_generator(7))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        theirs = model(*args)  # no generator: the global RNG
    for name, value in vars(mine).items():
        assert torch.equal(value, getattr(theirs, name)), name


# --- nothing touches the global RNG --------------------------------------------------------------------

def test_training_evaluating_and_loading_leave_the_global_rng_alone(small_mnist):
    torch.manual_seed(1234)
    before = _rng_states()
    one = replace(TINY_TC, epochs=1)
    vae, _ = train_model(ModelConfig("vae", **TINY), replace(one, binarize=True, recon="bce"), device="cpu",
                         progress=False)
    train_model(ModelConfig("gan", "conv", **TINY), one, device="cpu", progress=False)
    train_model(ModelConfig("classifier", **TINY), one, device="cpu", progress=False)  # dropout
    x, y = small_mnist.x_test[:100], small_mnist.y_test[:100]
    evaluate(vae, x, y, TINY_TC)
    metrics.elbo(vae, x)
    metrics.iwae_bound(vae, x[:10], k=8)
    t = load_or_train(ModelConfig("vae", **TINY), TINY_TC, name="tiny", progress=False)  # trains, saves
    assert load_or_train(ModelConfig("vae", **TINY), TINY_TC, name="tiny", progress=False).from_cache  # loads
    checkpoint.load(t.path)
    assert _same_states(before, _rng_states())


def test_evaluation_noise_depends_on_the_evaluation_seed_only(small_mnist):
    with init_seed(0):
        vae = build_model(ModelConfig("vae", **TINY))
    x, y = small_mnist.x_test[:200], small_mnist.y_test[:200]
    a = evaluate(vae, x, y, TINY_TC, seed=0)
    torch.randn(1000)  # whatever the global RNG does meanwhile
    assert evaluate(vae, x, y, TINY_TC, seed=0) == a
    assert evaluate(vae, x, y, TINY_TC, seed=1)["recon"] != a["recon"]


# --- the same seed gives the same bits on a CPU ----------------------------------------------------------

@pytest.mark.parametrize("kind,arch,train", [
    ("ae", "mlp", dict(schedule="onecycle", lr=3e-3)),
    ("vae", "mlp", dict(recon="bce", binarize=True)),
    ("gan", "conv", dict(epochs=1)),  # one epoch: a GAN's test pass costs seconds (resuming checks three)
])
def test_two_trainings_with_one_seed_give_identical_weights_and_losses(kind, arch, train):
    mc, tc = ModelConfig(kind, arch, **TINY), replace(TINY_TC, **train)
    m1, h1 = train_model(mc, tc, device="cpu", progress=False)
    m2, h2 = train_model(mc, tc, device="cpu", progress=False)
    s1, s2 = m1.state_dict(), m2.state_dict()
    assert list(s1) == list(s2)
    for name in s1:
        assert torch.equal(s1[name], s2[name]), name
    assert [(e["train"], e["test"]) for e in h1.epochs] == [(e["train"], e["test"]) for e in h2.epochs]
    if kind == "ae":  # and the seed matters (checked once: a GAN's run costs seconds)
        m3, _ = train_model(mc, replace(tc, seed=1), device="cpu", progress=False)
        assert not all(torch.equal(s1[n], t) for n, t in m3.state_dict().items())


# --- devices ------------------------------------------------------------------------------------------------

def _fake_machine(monkeypatch, cuda: int, mps: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


def test_device_list_names_every_device_a_machine_has(monkeypatch):
    _fake_machine(monkeypatch, cuda=2, mps=True)
    assert available_devices() == ["cpu", "cuda", "mps"]
    params = device_params()
    assert [p.values[0] for p in params] == ["cpu", "cuda", "mps"] and all(not p.marks for p in params)
    _fake_machine(monkeypatch, cuda=0, mps=False)
    assert available_devices() == ["cpu"]
    params = {p.values[0]: p for p in device_params()}
    assert not params["cpu"].marks
    for t in ("cuda", "mps"):
        (mark,) = params[t].marks
        assert mark.name == "skip" and t.upper() in mark.kwargs["reason"]


def test_device_axis_runs_on_every_device_here():
    """The model suite's device list runs exactly the device types this machine has."""
    here = set(available_devices())
    assert {p.values[0] for p in device_params() if not p.marks} == here and "cpu" in here
    assert DEVICE_TYPES == ("cpu", "cuda", "mps")


def test_resolve_device_names_the_problem():
    assert resolve_device("cpu") == resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="'gpu' is not a device: choose cpu, cuda or mps"):
        resolve_device("gpu")
    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last CUDA device (cuda:0 without a GPU)
    with pytest.raises(ValueError, match=f"device '{missing}' is not available: this machine has"):
        resolve_device(missing)
    with pytest.raises(ValueError, match="meta"):
        resolve_device("meta")


# --- checkpoint.load(map_location=...) and the loaders above it ---------------------------------------------

@pytest.fixture
def saved(tmp_path):
    with init_seed(0):
        model = build_model(ModelConfig("vae", **TINY)).eval()
    checkpoint.save(model, tmp_path / "ckpt")
    return model, tmp_path / "ckpt"


@pytest.mark.parametrize("device", device_params())
@pytest.mark.parametrize("as_object", [False, True], ids=["name", "torch.device"])
def test_checkpoint_loads_onto_the_device_asked_for(saved, device, as_object):
    model, path = saved
    loaded, _ = checkpoint.load(path, map_location=torch.device(device) if as_object else device)
    state = loaded.state_dict()
    assert {t.device.type for t in state.values()} == {device}
    for name, t in model.state_dict().items():
        assert torch.equal(state[name].cpu(), t), name


def test_checkpoint_load_refuses_a_missing_device_clearly(saved):
    missing = f"cuda:{torch.cuda.device_count()}"
    with pytest.raises(ValueError, match=f"'{missing}' is not available"):
        checkpoint.load(saved[1], map_location=missing)
    with pytest.raises(ValueError, match="'gpu' is not a device: choose cpu, cuda or mps"):
        checkpoint.load(saved[1], map_location="gpu")


@pytest.mark.parametrize("device", device_params())
def test_the_cache_loads_a_cached_model_onto_the_device_asked_for(device):
    trained = load_or_train(ModelConfig("ae", **TINY), TINY_TC, name="tiny", device="cpu", progress=False)
    again = load_or_train(ModelConfig("ae", **TINY), TINY_TC, name="tiny", device=device, progress=False)
    assert again.from_cache and {p.device.type for p in again.model.parameters()} == {device}
    for a, b in zip(trained.model.parameters(), again.model.parameters()):
        assert torch.equal(a, b.cpu())


def test_cli_names_a_missing_device(capsys):
    missing = f"cuda:{torch.cuda.device_count()}"
    with pytest.raises(SystemExit) as stop:  # a bad option value: argparse's usage, exit code 2
        main(["train", "ae_d2", "--quick", "--device", missing])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"'{missing}' is not available" in err and "Traceback" not in err


# --- genvae reproduce --check ---------------------------------------------------------------------------------

TINY_EXPERIMENTS = [
    experiments.Experiment("tinycheck_ae", "-", "tiny AE", ModelConfig("ae", latent_dim=2, hidden=(16,)), TINY_TC),
    experiments.Experiment("tinycheck_vae", "-", "tiny VAE", ModelConfig("vae", latent_dim=2, hidden=(16,)), TINY_TC),
]


@pytest.fixture
def tiny_book(monkeypatch):
    monkeypatch.setattr(experiments, "book_experiments", lambda dataset="mnist", quick=False: TINY_EXPERIMENTS)
    return TINY_EXPERIMENTS


def _edit_meta(e, change) -> None:
    from genvae.cache import cache_key, entry_path

    path = entry_path(e.name, cache_key(e.model, e.train.quick(), True)) / "meta.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def test_reproduce_check_retrains_and_compares(tiny_book, capsys):
    assert main(["reproduce", "--quick", "--check", "--only", "tinycheck"]) == 1  # nothing cached yet
    assert "nothing to compare against" in capsys.readouterr().err
    assert main(["reproduce", "--quick", "--only", "tinycheck_ae", "--jobs", "1"]) == 0
    capsys.readouterr()

    assert main(["reproduce", "--quick", "--check", "--only", "tinycheck"]) == 0
    out = capsys.readouterr().out
    assert "checking 1 of 2 models (1 not cached)" in out and "tolerance: exact where bits can match" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("tinycheck")}
    assert rows["tinycheck_ae"].split()[1] == "exact" and rows["tinycheck_ae"].endswith("ok")
    assert rows["tinycheck_vae"].endswith("not cached")
    assert "1 of 1 cached models reproduced" in out

    # A cached metric that the retraining does not give is a mismatch, even by one part in 10^4...
    ae = tiny_book[0]
    _edit_meta(ae, lambda m: m["metrics"].update(recon=m["metrics"]["recon"] * 1.0001))
    assert main(["reproduce", "--quick", "--check", "--only", "tinycheck_ae"]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "mismatch: tinycheck_ae" in out


def test_reproduce_check_allows_the_tolerance_where_bits_cannot_match(tiny_book, capsys):
    assert main(["reproduce", "--quick", "--only", "tinycheck_ae", "--jobs", "1"]) == 0
    ae = tiny_book[0]
    # ...but an entry trained elsewhere (here: on a GPU, says its meta) is compared within --rtol.
    _edit_meta(ae, lambda m: (m.update(device="cuda:0"), m["metrics"].update(recon=m["metrics"]["recon"] * 1.01)))
    capsys.readouterr()
    assert main(["reproduce", "--quick", "--check", "--only", "tinycheck_ae"]) == 0
    out = capsys.readouterr().out
    assert "rtol 0.05" in out and "trained on cuda:0, checked on cpu" in out
    assert main(["reproduce", "--quick", "--check", "--only", "tinycheck_ae", "--rtol", "0.001"]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_exactness_needs_the_same_cpu_software_and_threads():
    cpu = torch.device("cpu")
    here = {"device": "cpu", "stack": None, **platform()}
    assert exact_reason(here, cpu) is None
    assert "checked on cuda" in exact_reason(here, torch.device("cuda"))
    assert "stacked" in exact_reason({**here, "stack": {"size": 2}}, cpu)
    assert "torch 1.0" in exact_reason({**here, "torch_version": "1.0"}, cpu)
    assert "thread" in exact_reason({k: v for k, v in here.items() if k != "threads"}, cpu)
    assert "AVX" in exact_reason({**here, "cpu_capability": "AVX"}, cpu)


def test_compare_is_exact_or_relative():
    assert compare({"a": 1.0, "b": 2.0}, {"a": 1.0, "b": 2.0}, None) == (True, "a", 0.0)
    ok, worst, diff = compare({"a": 1.0, "b": 2.0}, {"a": 1.0, "b": 2.02}, None)
    assert not ok and worst == "b" and diff == pytest.approx(0.02 / 2.02)
    assert compare({"a": 1.0, "b": 2.0}, {"a": 1.0, "b": 2.02}, 0.05)[0]
    assert not compare({"a": 1.0}, {"a": 1.0, "b": 2.0}, 0.05)[0]  # a metric went missing
    assert not compare({"a": 1.0}, {"a": float("nan")}, 0.05)[0]
