"""Interrupted training: no corrupt entry, a resume state per epoch, and bit-identical resumed weights."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import default_sigint

import genvae
from genvae import checkpoint, training
from genvae.training import epochs as training_epochs_module
from genvae.cache import Request, cache_key, entry_path, load_or_train, load_or_train_many
from genvae.models import ModelConfig
from genvae.resume import INDEX, ResumeStore, ResumeWarning, resume_path
from genvae.train import TrainConfig

AE = ModelConfig("ae", latent_dim=2, hidden=(16,))
VAE = ModelConfig("vae", latent_dim=2, hidden=(16,))
GAN = ModelConfig("gan", "conv", latent_dim=3, channels=(4, 8))
TC = TrainConfig(epochs=3, train_size=300, batch_size=100)
CASES = {  # (model, training): one per kind of state that must carry over
    "ae-onecycle": (AE, replace(TC, schedule="onecycle", lr=3e-3)),  # the schedule's position
    "vae-binarized": (VAE, replace(TC, recon="bce", binarize=True)),  # the noise generator's position
    "gan": (GAN, TC),  # three players' Adam states, batch-norm buffers, the per-step curves and snapshots
}


@contextmanager
def _ctrl_c_in_epoch(n: int):
    """Within the block, the n-th training epoch started raises KeyboardInterrupt, as Ctrl-C would.
    (Its own MonkeyPatch: undoing the test's would also undo conftest's isolated cache.)"""
    real, calls = training_epochs_module.train_epoch, []

    def epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training_epochs_module, "train_epoch", epoch)
        with pytest.raises(KeyboardInterrupt):
            yield


def _paths(name: str, mc: ModelConfig, tc: TrainConfig) -> tuple[Path, Path]:
    entry = entry_path(name, cache_key(mc, tc, False))
    return entry, resume_path(entry)


def _assert_same_training(a, b) -> None:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert list(sa) == list(sb)
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name
    strip = lambda h: [{k: v for k, v in e.items() if k not in ("seconds", "resumed")} for e in h.epochs]  # noqa: E731
    assert strip(a.history) == strip(b.history)  # losses, and a game's curves and snapshots
    assert a.metrics == b.metrics


@pytest.mark.parametrize("case", list(CASES))
def test_training_resumed_after_ctrl_c_equals_an_uninterrupted_one(case, capsys, tmp_path):
    mc, tc = CASES[case]
    reference = load_or_train(mc, tc, name="ref", cache_dir=tmp_path, progress=False)

    with _ctrl_c_in_epoch(3):  # during the third epoch: the second one's state is saved
        load_or_train(mc, tc, name="tiny", progress=False)
    entry, state = _paths("tiny", mc, tc)
    assert not entry.exists()  # no entry at all, let alone a corrupt one
    index = json.loads((state / INDEX).read_text())
    assert index["epoch"] == 2 and [p.name for p in state.glob("*.safetensors")] == [index["file"]]
    assert len(index["history"]) == 2

    capsys.readouterr()
    resumed = load_or_train(mc, tc, name="tiny", progress=False)
    assert "tiny: resuming from epoch 2" in capsys.readouterr().err
    assert [e.get("resumed", False) for e in resumed.history.epochs] == [True, True, False]
    assert resumed.train_seconds >= resumed.history.seconds  # the epochs of the interrupted run count too
    _assert_same_training(reference, resumed)
    assert not state.exists() and (entry / "meta.json").is_file()
    assert load_or_train(mc, tc, name="tiny", progress=False).from_cache


def test_an_interrupted_stack_leaves_no_entry_and_resumes(capsys, tmp_path):
    requests = [Request(f"b{b:g}", VAE, replace(TC, beta=b)) for b in (0.5, 2.0)]
    reference = load_or_train_many(requests, stack=True, cache_dir=tmp_path, progress=False)
    with _ctrl_c_in_epoch(2):
        load_or_train_many(requests, stack=True, progress=False)
    entries = [_paths(r.name, r.model_config, r.train_config)[0] for r in requests]
    assert not any(e.exists() for e in entries)
    assert json.loads((resume_path(entries[0]) / INDEX).read_text())["epoch"] == 1  # kept beside the first member

    capsys.readouterr()
    resumed = load_or_train_many(requests, stack=True, progress=False)
    assert "b0.5, b2: resuming from epoch 1" in capsys.readouterr().err
    for a, b in zip(reference, resumed):
        _assert_same_training(a, b)
    assert all((e / "meta.json").is_file() for e in entries) and not resume_path(entries[0]).exists()


def test_a_crash_while_saving_a_state_keeps_the_previous_one(capsys, tmp_path):
    mc, tc = CASES["vae-binarized"]
    reference = load_or_train(mc, tc, name="ref", cache_dir=tmp_path, progress=False)
    real, calls = checkpoint.atomic_write_text, []

    def commit(path, text):  # the second state's resume.json never replaces the first one's
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(path, text)

    with pytest.MonkeyPatch.context() as mp, pytest.raises(KeyboardInterrupt):
        mp.setattr(checkpoint, "atomic_write_text", commit)
        load_or_train(mc, tc, name="tiny", progress=False)
    entry, state = _paths("tiny", mc, tc)
    assert not entry.exists() and json.loads((state / INDEX).read_text())["epoch"] == 1
    assert not list(state.glob("*.tmp"))
    capsys.readouterr()
    resumed = load_or_train(mc, tc, name="tiny", progress=False)
    assert "resuming from epoch 1" in capsys.readouterr().err
    _assert_same_training(reference, resumed)


def _interrupted(mc=AE, tc=TC) -> Path:
    with _ctrl_c_in_epoch(3):
        load_or_train(mc, tc, name="tiny", progress=False)
    return _paths("tiny", mc, tc)[1]


@pytest.mark.parametrize("damage,message", [
    (lambda s: (s / INDEX).write_text("{not json"), "unreadable"),
    (lambda s: next(s.glob("*.safetensors")).write_bytes(b"\0" * 64), "checksum"),
    (lambda s: (s / INDEX).write_text(json.dumps({**json.loads((s / INDEX).read_text()),
                                                   "identity": {"cache_keys": ["0"]}})), "another configuration"),
])
def test_an_unusable_state_is_discarded_with_a_warning(damage, message, capsys, tmp_path):
    reference = load_or_train(AE, TC, name="ref", cache_dir=tmp_path, progress=False)
    state = _interrupted()
    damage(state)
    with pytest.warns(ResumeWarning, match=message):
        fresh = load_or_train(AE, TC, name="tiny", progress=False)
    assert "resuming" not in capsys.readouterr().err
    _assert_same_training(reference, fresh)  # trained from the start, as if nothing had been there
    assert not state.exists()


@pytest.mark.parametrize("index, message", [
    (None, f"{INDEX} is missing"),
    ("{not json", f"{INDEX} is unreadable: Expecting property name enclosed in double quotes"),
    ("[1, 2]", f"{INDEX} has another format"),
    ('{"format": 0}', f"{INDEX} has another format"),
])
def test_an_unreadable_index_is_named_and_the_state_discarded(index, message, tmp_path):
    folder = tmp_path / "tiny.resume"
    folder.mkdir()
    if index is not None:
        (folder / INDEX).write_text(index)
    with pytest.warns(ResumeWarning, match=re.escape(f"resume state {folder} is unusable ({message}")):
        assert ResumeStore(folder, {"cache_keys": ["0"]}).load() is None
    assert not folder.exists()


def test_retrain_starts_afresh(capsys):
    state = _interrupted()
    capsys.readouterr()
    load_or_train(AE, TC, name="tiny", progress=False, retrain=True)
    assert "resuming" not in capsys.readouterr().err and not state.exists()


def test_an_unwritable_cache_costs_the_resume_state_not_the_training(capsys, tmp_path):
    """A read-only cache folder (or a full disk): one warning, and the training is the same as ever."""
    reference = load_or_train(AE, TC, name="ref", cache_dir=tmp_path, progress=False)
    calls = []

    def refuse(*args, **kwargs):
        calls.append(1)
        raise OSError(30, "Read-only file system")

    with pytest.MonkeyPatch.context() as mp, pytest.warns(ResumeWarning, match="Read-only file system") as caught:
        mp.setattr("genvae.resume.save_file", refuse)
        trained = load_or_train(AE, TC, name="tiny", progress=False)
    assert len(calls) == 1 and len([w for w in caught if w.category is ResumeWarning]) == 1  # tried once, said once
    _assert_same_training(reference, trained)


def test_optimizer_state_round_trips_with_a_tensor_learning_rate(tmp_path):
    """On CUDA the learning rate is a tensor (a CUDA graph reads it) and betas a tuple: both must come back so."""
    def one_cycle(opt):  # with a tensor learning rate, the schedule's state holds tensors too (its last rates)
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=10, cycle_momentum=False)

    p = torch.nn.Parameter(torch.arange(4.0))
    opt = torch.optim.Adam([p], lr=torch.tensor(0.01), betas=(0.5, 0.99), foreach=False)
    schedule = one_cycle(opt)
    for _ in range(3):
        p.grad = torch.ones(4)
        opt.step()
        schedule.step()
    assert isinstance(schedule.state_dict()["_last_lr"][0], torch.Tensor)
    model = torch.nn.Linear(2, 2)
    store = ResumeStore(tmp_path / "r", {"k": 1})
    gen = torch.Generator().manual_seed(5)
    store.save(1, model, {"adam": opt}, schedule, {"noise": gen}, [{"epoch": 1}])
    expected_draw = torch.randn(3, generator=gen)
    lr_after_3 = opt.param_groups[0]["lr"].item()
    schedule.step()
    expected_next_lr = opt.param_groups[0]["lr"].item()

    q = torch.nn.Parameter(torch.zeros(4))
    live_lr = torch.tensor(0.5)  # on CUDA: a device tensor that a captured graph reads
    fresh = torch.optim.Adam([q], lr=live_lr, betas=(0.9, 0.999), foreach=False)
    fresh_schedule = one_cycle(fresh)
    gen2 = torch.Generator().manual_seed(6)
    state = store.load()
    assert state.epoch == 1 and state.history == [{"epoch": 1}]
    assert store.restore(state, torch.nn.Linear(2, 2), {"adam": fresh}, fresh_schedule, {"noise": gen2})
    group = fresh.param_groups[0]
    assert group["lr"] is live_lr and live_lr.item() == pytest.approx(lr_after_3)  # the same tensor, new value
    assert fresh_schedule.last_epoch == 3 and fresh_schedule.get_last_lr()[0].item() == pytest.approx(lr_after_3)
    fresh_schedule.step()
    assert live_lr.item() == pytest.approx(expected_next_lr)  # the schedule goes on where it stopped
    assert group["betas"] == (0.5, 0.99) and isinstance(group["betas"], tuple)
    for key in ("exp_avg", "exp_avg_sq", "step"):
        assert torch.equal(fresh.state[q][key], opt.state[p][key]), key
    assert torch.equal(torch.randn(3, generator=gen2), expected_draw)


# --- real signals, through the genvae command -------------------------------------------------------------

SCRIPT = textwrap.dedent('''
    """`genvae train tiny_interrupt`, with a pause per epoch so that a signal lands mid-training."""
    import sys
    import time

    import torch

    torch.set_num_threads(1)
    import genvae.train as T
    from genvae import cli, experiments
    from genvae.models import ModelConfig
    from genvae.train import TrainConfig

    real = T.train_epoch

    def slow(*args, **kwargs):
        time.sleep(float(sys.argv[1]))
        return real(*args, **kwargs)

    T.train_epoch = slow
    e = experiments.Experiment("tiny_interrupt", "-", "tiny", ModelConfig({model}), TrainConfig({train}))
    experiments.REGISTRY[e.name] = e
    sys.exit(cli.main(["train", e.name, "--device", "cpu"]))
''')
SIG_MODEL = dict(kind="vae", latent_dim=2, hidden=(16,))
SIG_TRAIN = dict(epochs=5, train_size=600, batch_size=100, recon="bce", binarize=True)


def _wait_for_state(state: Path, after: int, proc: subprocess.Popen, timeout: float = 120) -> int:
    """The epoch of the first resume state past ``after`` to appear (the process must still be training)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            epoch = json.loads((state / INDEX).read_text())["epoch"]
            if epoch > after:
                return epoch
        except (OSError, ValueError, KeyError):
            pass
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"training ended (rc {proc.returncode}) before a state past epoch {after} appeared:\n{err}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"no resume state past epoch {after} within {timeout} s")


@pytest.mark.slow
def test_sigint_then_sigkill_then_a_finished_run(tmp_path, capfd):
    """Ctrl-C exits 130 with the last epoch's state kept; a killed process (SIGKILL) keeps one too; each
    later run says where it resumes, and the finished weights equal an uninterrupted training's."""
    script = tmp_path / "tiny_train.py"
    script.write_text(SCRIPT.format(model=", ".join(f"{k}={v!r}" for k, v in SIG_MODEL.items()),
                                    train=", ".join(f"{k}={v!r}" for k, v in SIG_TRAIN.items())))
    root = Path(genvae.__file__).resolve().parents[1]  # run the genvae under test, not another install
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    mc, tc = ModelConfig(**SIG_MODEL), TrainConfig(**SIG_TRAIN)
    entry, state = _paths("tiny_interrupt", mc, tc)

    def start() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, str(script), "0.4"], env=env, text=True, preexec_fn=default_sigint,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    first = start()
    at_sigint = _wait_for_state(state, 0, first)
    first.send_signal(signal.SIGINT)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 130, err  # the command's "interrupted" exit
    assert "interrupted" in err and "Traceback" not in err
    assert not entry.exists()
    kept = json.loads((state / INDEX).read_text())["epoch"]
    assert kept >= at_sigint

    second = start()
    at_sigkill = _wait_for_state(state, kept, second)
    second.send_signal(signal.SIGKILL)
    out, err = second.communicate(timeout=120)
    assert second.returncode == -signal.SIGKILL
    assert f"resuming from epoch {kept}" in err
    assert not entry.exists()
    kept = json.loads((state / INDEX).read_text())["epoch"]
    assert kept >= at_sigkill

    # The last run, in this process (one interpreter start fewer), on one thread like the script's.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        capfd.readouterr()
        finished = load_or_train(mc, tc, name="tiny_interrupt", progress=False)
        assert f"resuming from epoch {kept}" in capfd.readouterr().err
        reference, history = training.train_model(mc, tc, device="cpu", progress=False)
    finally:
        torch.set_num_threads(threads)
    assert not state.exists() and not finished.from_cache
    model, meta = checkpoint.load(entry)
    assert [e.get("resumed", False) for e in meta["history"]] == [True] * kept + [False] * (tc.epochs - kept)
    for name, t in reference.state_dict().items():
        assert torch.equal(model.state_dict()[name], t), name
    assert [e["test"] for e in meta["history"]] == [e["test"] for e in history.epochs]


def test_resume_states_cost_at_most_their_share_of_the_training(monkeypatch, tmp_path):
    """After the first state, the next is written only once the training since the last write took at least
    that write's time divided by the share (on a GPU a 30-ms write after a 0.2-s epoch would cost 10%)."""
    now = [0.0]
    store = ResumeStore(tmp_path / "r", {"k": 1}, max_share=0.1)
    monkeypatch.setattr(store, "clock", lambda: now[0])
    monkeypatch.setattr(store, "_write", lambda *args: now.__setitem__(0, now[0] + 1.0))  # each write takes 1 s
    model = torch.nn.Linear(2, 2)
    for epoch, training in enumerate([0.0, 5.0, 5.0, 2.0, 9.0, 0.5], start=1):
        now[0] += training  # this epoch's training time
        store.save(epoch, model, {}, None, {}, [])
    # writes after epoch 1 (always), then once >= 10 s of training had passed since the last: epochs 3 and 5
    assert store.written == [1, 3, 5]


def test_a_share_of_0_writes_a_state_after_every_epoch(monkeypatch, tmp_path):
    monkeypatch.setenv("GENVAE_RESUME_SHARE", "0")
    store = ResumeStore(tmp_path / "r", {"k": 1})
    for epoch in range(1, 4):
        store.save(epoch, torch.nn.Linear(2, 2), {}, None, {}, [])
    assert store.written == [1, 2, 3] and store.load().epoch == 3


@pytest.mark.parametrize("value", ["-0.1", "1", "a tenth"])
def test_a_bad_resume_share_is_named(monkeypatch, value):
    monkeypatch.setenv("GENVAE_RESUME_SHARE", value)
    with pytest.raises(ValueError, match="GENVAE_RESUME_SHARE"):
        genvae.settings.resume_share()
