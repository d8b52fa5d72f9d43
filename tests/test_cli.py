"""The genvae command: happy paths, and usage errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from genvae.cli import main


def test_list_names_the_book_experiments(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("classifier", "ae_d2", "vae_d2", "conv_ae_d2"):
        assert name in out


def test_list_shows_both_data_sets(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "vae_d2_fashion" in out and "fashion-mnist" in out
    assert all(len(line) < 200 for line in out.splitlines())


def test_reproduce_picks_the_data_set(capsys, monkeypatch):
    assert main(["reproduce", "--quick", "--dataset", "fashion-mnist", "--only", "ae_d32", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "fashion-mnist: 1 models" in out and "[1/1] ae_d32_fashion" in out
    monkeypatch.setenv("GENVAE_DATASET", "fashion-mnist")
    assert main(["reproduce", "--quick", "--only", "ae_d32", "--jobs", "1"]) == 0
    assert "1 already cached" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:  # an unknown --dataset is a usage error
        main(["reproduce", "--quick", "--dataset", "cifar"])
    assert e.value.code == 2


def test_train_quick_then_hit_the_cache(capsys):
    assert main(["train", "ae_d32", "--quick"]) == 0
    assert "trained in" in capsys.readouterr().out
    assert main(["train", "ae_d32", "--quick", "--epochs", "1"]) == 0
    assert main(["train", "ae_d32", "--quick"]) == 0
    assert "loaded from cache" in capsys.readouterr().out.splitlines()[-2]


def test_reproduce_only_a_subset(capsys):
    assert main(["reproduce", "--quick", "--only", "ae_d32"]) == 0
    out = capsys.readouterr().out
    assert "[1/1] ae_d32" in out and "done: 1 models (1 trained)" in out


def test_reproduce_says_what_is_left_and_how_long_it_may_take(capsys):
    assert main(["reproduce", "--quick", "--only", "ae_d2_s", "--no-stack", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "2 models, 0 already cached; training 2" in out
    assert "[1/2] ae_d2_s1: trained in" in out and "1 left, about" in out and "to go" in out
    assert main(["reproduce", "--quick", "--only", "ae_d2_s"]) == 0
    assert "2 models, 2 already cached; training 0" in capsys.readouterr().out


@pytest.mark.slow
def test_reproduce_in_two_processes_caches_every_model(capsys):
    from genvae.experiments import get

    assert main(["reproduce", "--quick", "--only", "ae_d2_s", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 processes side by side" in out and "done: 2 models (2 trained)" in out
    assert all(get(n).is_cached(quick=True) for n in ("ae_d2_s1", "ae_d2_s2"))


def test_reproduce_can_stack_a_grid_on_the_cpu(capsys):
    assert main(["reproduce", "--quick", "--only", "ae_d2_s", "--stack", "--jobs", "1"]) == 0
    assert "ae_d2_s1, ae_d2_s2 (one stack of 2)" in capsys.readouterr().out


def test_data_check(capsys, tmp_path):
    assert main(["data", "check"]) == 0
    assert "all files present and verified" in capsys.readouterr().out
    assert main(["data", "check", "--root", str(tmp_path)]) == 1
    assert "missing" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [[], ["train"], ["bogus"], ["train", "ae_d2", "--epochs", "0"],
                                  ["train", "ae_d2", "--epochs", "many"], ["data"], ["list", "--frobnicate"]])
def test_bad_arguments_give_usage_and_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "Traceback" not in err


def test_unknown_experiment_is_a_usage_error(capsys):
    assert main(["train", "no_such_model"]) == 2
    err = capsys.readouterr().err
    assert err == ("genvae: error: unknown experiment 'no_such_model'; `genvae list` (or genvae.experiments.REGISTRY) "
                   "has all 100 known names\n")
    assert main(["train", "vae_2d"]) == 2  # a near miss gets the nearest names
    assert "unknown experiment 'vae_2d'; did you mean vae_d8, vae_d2, vae_d16?" in capsys.readouterr().err


def test_missing_data_is_an_error_message_not_a_traceback(monkeypatch, tmp_path, capsys):
    import genvae.data

    monkeypatch.setenv("GENVAE_DATA", str(tmp_path))
    genvae.data._load_raw.cache_clear()
    monkeypatch.setattr(genvae.data, "_ensure_files", lambda *a: (_ for _ in ()).throw(
        genvae.data.DataNotFoundError(f"MNIST was not found in {tmp_path}")))
    assert main(["train", "ae_d2", "--quick"]) == 1
    assert "was not found" in capsys.readouterr().err


def test_console_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "genvae", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "reproduce" in r.stdout
    r = subprocess.run([sys.executable, "-m", "genvae", "train", "ae_d2", "--frobnicate"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr  # a usage error: the usage, then the problem
    assert r.stderr.startswith("usage: genvae") and r.stderr.endswith("genvae: error: unrecognized arguments: --frobnicate\n")


def test_a_model_the_cache_could_not_keep_is_not_reported_as_kept(capsys, monkeypatch):
    """An unwritable cache: `train` and `reproduce` say the model was not kept instead of printing its path."""
    import errno
    import os

    from genvae import checkpoint
    from genvae.cache import CacheWarning

    def read_only(*a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), "somewhere")

    monkeypatch.setattr(checkpoint, "save_file", read_only)
    with pytest.warns(CacheWarning, match="cannot write the model cache folder"):
        assert main(["train", "ae_d32", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "not kept in the cache" in out and "->" not in out
    with pytest.warns(CacheWarning, match="cannot write the model cache folder"):
        assert main(["reproduce", "--quick", "--only", "ae_d32", "--jobs", "1"]) == 0
    assert "ae_d32: test " in (out := capsys.readouterr().out) and "(not kept in the cache" in out


def test_the_command_line_imports_no_plotting_library():
    """`genvae list` (and so `genvae --help`, `genvae train`...) starts without matplotlib or seaborn: the
    package imports its figures only where they are drawn."""
    code = ("import contextlib, io, sys\nimport genvae.cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    genvae.cli.main(['list'])\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'matplotlib', 'seaborn'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_version_has_one_source():
    import importlib.metadata
    import tomllib
    from pathlib import Path

    import genvae

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert genvae.__version__ == importlib.metadata.version("genvae") == pyproject["project"]["version"]


def test_a_warning_reads_as_one_line():
    """A damaged cache entry is retrained with a warning; the command line shows it as one line, without the
    source path and line of code that Python's default format adds (run in a process of its own, where no test
    runner records the warnings)."""
    code = ("import sys, warnings\nimport genvae.cli as cli\n"
            "def run(args):\n"
            "    warnings.warn('cache entry x is unusable (meta.json is missing); retraining it', UserWarning)\n"
            "    return 0\n"
            "cli._run = run\nsys.exit(cli.main(['list']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stderr == "genvae: warning: cache entry x is unusable (meta.json is missing); retraining it\n"
