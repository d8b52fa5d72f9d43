"""`genvae cache list | verify | prune` on a temporary cache holding good, corrupt, partial and orphan entries,
resume folders, temporary files and things that are not genvae's."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import pytest
import torch

from genvae import cache, cachedir, checkpoint
from genvae.cli import main
from genvae.experiments import get, registry_keys
from genvae.models import ModelConfig, build_model
from genvae.train import TrainConfig

OLD = time.time() - 7200  # two hours ago: well past cachedir.STALE_SECONDS


def _entry(root: Path, name: str, quick: bool, model: ModelConfig | None = None,
           train: TrainConfig | None = None) -> Path:
    """A cache entry as load_or_train writes it, with untrained weights (nothing here needs training)."""
    exp = get(name) if model is None else None
    model = model or exp.model
    train = train or (exp.train.quick() if quick else exp.train)
    key = cache.cache_key(model, train, quick)
    torch.manual_seed(0)
    return checkpoint.save(build_model(model), cache.entry_path(name, key, root), cache_key=key, name=name,
                           quick=quick, train_config=train.to_dict(), history=[], metrics={"recon": 0.05},
                           train_seconds=1.0, created="2026-01-02T03:04:05+0000")


def _age(path: Path, when: float = OLD) -> None:
    for p in [path, *path.rglob("*")]:
        os.utime(p, (when, when))


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


@pytest.fixture
def populated(tmp_path) -> dict[str, Path]:
    root = tmp_path / "models"
    p: dict[str, Path] = {"root": root}
    p["good"] = _entry(root, "small_conv_ae_d2", quick=True)
    p["good_full"] = _entry(root, "small_conv_ae_d2", quick=False)
    p["good_fashion"] = _entry(root, "small_conv_ae_d2_fashion", quick=True)
    (p["good_fashion"] / "evals.json").write_text("{}")

    p["tampered"] = _entry(root, "small_conv_ae_d16", quick=True)
    weights = p["tampered"] / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-3] ^= 0xFF
    weights.write_bytes(bytes(blob))

    p["partial"] = _entry(root, "small_conv_ae_d16", quick=False)
    (p["partial"] / "meta.json").unlink()  # a save that stopped between the weights and the sidecar

    p["broken"] = _entry(root, "small_conv_ae_d16_fashion", quick=True)
    (p["broken"] / "meta.json").write_text("{oops")

    p["edited"] = _entry(root, "small_conv_ae_d16_fashion", quick=False)
    meta = json.loads((p["edited"] / "meta.json").read_text())
    meta["train_config"]["epochs"] = 99  # valid JSON, right checksum, but not the configuration its key names
    (p["edited"] / "meta.json").write_text(json.dumps(meta))

    tiny = ModelConfig("ae", latent_dim=2, hidden=(8,))
    p["orphan"] = _entry(root, "ae_d2_e7", quick=True, model=tiny, train=TrainConfig(epochs=7, train_size=64))
    p["orphan_notes"] = _entry(root, "ae_d2_e8", quick=True, model=tiny, train=TrainConfig(epochs=8, train_size=64))
    (p["orphan_notes"] / "notes.txt").write_text("someone's notes")

    p["stale_tmp"] = p["good_fashion"] / ".model.safetensors.abc123.tmp"
    p["stale_tmp"].write_bytes(b"\0" * 100)
    p["stale_tmp_root"] = root / ".meta.json.zzz.tmp"
    p["stale_tmp_root"].write_bytes(b"\0" * 7)

    p["resume_done"] = root / (p["good"].name + ".resume")  # its training finished: a leftover
    # An interrupted training of a registry model (no entry yet): it resumes from here, so it stays.
    p["resume_live"] = root / f"small_conv_ae_d2_fashion-{_key('small_conv_ae_d2_fashion', quick=False)}.resume"
    p["resume_orphan"] = root / "ae_d2_e9-0123456789abcdef.resume"
    for r in ("resume_done", "resume_live", "resume_orphan"):
        p[r].mkdir()
        (p[r] / "state.safetensors").write_bytes(b"\0" * 50)
        (p[r] / "state.json").write_text("{}")

    p["readme"] = root / "README.txt"
    p["readme"].write_text("not genvae's")
    p["photos"] = root / "photos-0123456789abcdef0"  # not an entry name: 17 hex digits
    p["photos"].mkdir()
    (p["photos"] / "cat.jpg").write_bytes(b"\xff\xd8")

    _age(root)
    # Younger than STALE_SECONDS: may belong to a save or a training in progress.
    p["young_tmp"] = p["good_full"] / ".evals.json.def456.tmp"
    p["young_tmp"].write_text("{")
    p["resume_young"] = root / "ae_d2_e10-fedcba9876543210.resume"
    p["resume_young"].mkdir()
    (p["resume_young"] / "state.json").write_text("{}")
    return p


def _key(name: str, quick: bool) -> str:
    exp = get(name)
    return cache.cache_key(exp.model, exp.train.quick() if quick else exp.train, quick)


def test_list_shows_every_entry_with_its_status(populated, capsys):
    p = populated
    assert main(["cache", "list", "--cache", str(p["root"])]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"cache: {p['root']}"

    def row(name: str) -> list[str]:
        [line] = [line for line in out.splitlines() if line.split()[1:2] == [p[name].name.split("-")[-1]]
                  and "resume" not in line]
        return line.split(None, 6)

    good = row("good")
    assert good[:4] == ["small_conv_ae_d2", _key("small_conv_ae_d2", True), "quick", "mnist"]
    assert good[6].split()[-1] == "ok" and "2026-01-02 03:04" in good[6]
    assert f"{_du(p['good']) / 1024:.1f} KiB" == " ".join(good[4:6])
    assert row("good_full")[2] == "full" and row("good_fashion")[3] == "fashion-mnist"
    assert row("tampered")[6].endswith("ok")  # list reads sidecars only: the checksum is verify's job
    assert row("partial")[6].endswith("partial") and row("broken")[6].endswith("corrupt")
    assert row("broken")[:4] == ["small_conv_ae_d16_fashion", p["broken"].name[-16:], "quick", "fashion-mnist"]
    assert row("orphan")[0] == "ae_d2_e7" and row("orphan")[6].endswith("ok, orphan")
    resumes = [line for line in out.splitlines() if line.endswith(("resume", "resume, orphan"))]
    assert len(resumes) == 4 and sum(line.endswith("resume, orphan") for line in resumes) == 2
    assert "README" not in out and "photos" not in out and "cat" not in out
    assert out.splitlines()[-1] == (f"9 entries (2 partial or corrupt, 2 orphans), 4 resume folders, "
                                    f"3 temporary files; {cachedir.human_size(_du(p['root']))} in all")


def test_list_follows_genvae_cache_and_both_places_of_the_option(populated, capsys, monkeypatch):
    monkeypatch.setenv("GENVAE_CACHE", str(populated["root"]))
    assert main(["cache", "list"]) == 0
    via_env = capsys.readouterr().out
    assert main(["cache", "--cache", str(populated["root"]), "list"]) == 0
    assert capsys.readouterr().out == via_env and via_env.startswith(f"cache: {populated['root']}\n")


def test_verify_names_each_bad_entry_and_its_problem(populated, capsys):
    p = populated
    assert main(["cache", "verify", "--cache", str(p["root"])]) == 1
    out = capsys.readouterr().out
    bad = {line.split()[1].rstrip(":"): line for line in out.splitlines()[1:-1]}
    assert sorted(bad) == sorted(p[k].name for k in ("tampered", "partial", "broken", "edited"))
    assert "does not match the checksum (SHA-256) recorded in" in bad[p["tampered"].name]
    assert bad[p["partial"].name].endswith(f": {p['partial'] / 'meta.json'} is missing: a save that never finished")
    assert bad[p["partial"].name].startswith("partial ")
    assert "is not valid JSON" in bad[p["broken"].name]
    exp = get("small_conv_ae_d16_fashion")
    edited_key = cache.cache_key(exp.model, dataclasses.replace(exp.train, epochs=99), False)
    assert f"gives the key {edited_key}, not the folder's {p['edited'].name[-16:]}" in bad[p["edited"].name]
    assert out.splitlines()[-1] == ("9 entries verified: 5 sound, 4 bad; 2 orphans "
                                    "(`genvae cache prune` removes bad and orphan entries)")


def test_prune_dry_run_removes_nothing(populated, capsys):
    root = populated["root"]
    before = sorted(root.rglob("*"))
    assert main(["cache", "prune", "--dry-run", "--cache", str(root)]) == 0
    out = capsys.readouterr().out
    assert sorted(root.rglob("*")) == before
    assert sum(line.startswith("would remove ") for line in out.splitlines()) == 9
    assert out.splitlines()[-1].startswith("would free ")


def test_prune_removes_orphans_corrupt_partial_and_stale_leftovers(populated, capsys):
    p = populated
    gone = ["orphan", "tampered", "partial", "broken", "edited", "stale_tmp", "stale_tmp_root", "resume_done",
            "resume_orphan"]
    stay = ["good", "good_full", "good_fashion", "orphan_notes", "young_tmp", "resume_live", "resume_young",
            "readme", "photos"]
    freed = sum(_du(p[k]) for k in gone)
    assert main(["cache", "prune", "--cache", str(p["root"])]) == 0
    out = capsys.readouterr().out
    assert [k for k in gone if p[k].exists()] == [] and [k for k in stay if not p[k].exists()] == []
    assert (p["photos"] / "cat.jpg").exists() and (p["good_fashion"] / "evals.json").exists()
    removed = {line.split()[1]: line for line in out.splitlines() if line.startswith("removed ")}
    assert sorted(removed) == sorted(str(p[k]) for k in gone)
    assert removed[str(p["orphan"])].endswith("; orphan)")
    assert "corrupt: " in removed[str(p["tampered"])] and "partial: " in removed[str(p["partial"])]
    assert removed[str(p["resume_done"])].endswith("; resume state of a finished training)")
    assert removed[str(p["stale_tmp"])].endswith("B; stale temporary file)")
    kept = {line.split()[1].rstrip(":"): line for line in out.splitlines() if line.startswith("kept ")}
    assert sorted(kept) == sorted(str(p[k]) for k in ("orphan_notes", "young_tmp", "resume_young"))
    assert "holds files genvae does not write: notes.txt" in kept[str(p["orphan_notes"])]
    assert out.splitlines()[-1] == f"freed {cachedir.human_size(freed)} (9 removed, 3 kept)"
    # What is left is sound, and the sound entries still load.
    assert main(["cache", "verify", "--cache", str(p["root"])]) == 0
    assert "4 entries verified: 4 sound, 0 bad; 1 orphan " in capsys.readouterr().out
    exp = get("small_conv_ae_d2")
    assert cache.load_or_train(exp.model, exp.train, name=exp.name, quick=True, cache_dir=p["root"]).from_cache


def test_prune_reports_the_bytes_it_frees(populated):
    p = populated
    sizes = {p[k]: _du(p[k]) for k in ("orphan", "tampered", "partial", "broken", "edited", "stale_tmp",
                                       "stale_tmp_root", "resume_done", "resume_orphan")}
    report = cachedir.prune(cachedir.scan(p["root"], known=registry_keys()))
    assert {r.path: r.size for r in report.removed} == sizes


def test_human_size():
    assert [cachedir.human_size(n) for n in (0, 1023, 1536, 5 * 2**20, 3 * 2**30 // 2)] == \
        ["0 B", "1023 B", "1.5 KiB", "5.0 MiB", "1.5 GiB"]


def test_an_empty_or_absent_cache(tmp_path, capsys):
    for root in (tmp_path / "absent", tmp_path):
        assert main(["cache", "list", "--cache", str(root)]) == 0
        assert capsys.readouterr().out == f"cache: {root} (empty)\n"
        assert main(["cache", "verify", "--cache", str(root)]) == 0
        assert main(["cache", "prune", "--cache", str(root)]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == "freed 0 B (0 removed, 0 kept)"


def test_a_cache_that_is_a_file_is_a_clear_error(tmp_path, capsys):
    blocker = tmp_path / "models"
    blocker.write_text("")
    assert main(["cache", "list", "--cache", str(blocker)]) == 1
    assert capsys.readouterr().err == f"genvae: error: the model cache {blocker} is not a folder\n"


def test_a_registry_model_in_either_precision_is_not_an_orphan():
    exp = get("vae_d2")
    keys = registry_keys()
    for precision in ("fp32", "bf16"):
        train = dataclasses.replace(exp.train, precision=precision)
        assert keys[cache.cache_key(exp.model, train, False)] == ("vae_d2", False, "mnist")
        assert keys[cache.cache_key(exp.model, train.quick(), True)] == ("vae_d2", True, "mnist")
    assert cache.cache_key(exp.model, dataclasses.replace(exp.train, epochs=7), False) not in keys


def test_prune_goes_on_when_something_cannot_be_removed(populated, monkeypatch):
    p = populated
    real = cachedir.shutil.rmtree

    def read_only(path, *a, **k):
        if Path(path) == p["orphan"]:
            raise OSError(30, "Read-only file system")
        return real(path, *a, **k)

    monkeypatch.setattr(cachedir.shutil, "rmtree", read_only)
    report = cachedir.prune(cachedir.scan(p["root"], known=registry_keys()))
    assert p["orphan"].exists() and not p["tampered"].exists()
    assert (p["orphan"], "orphan, but it cannot be removed (Read-only file system)") in report.kept
    assert p["orphan"] not in {r.path for r in report.removed}


def test_cache_needs_an_action(capsys):
    with pytest.raises(SystemExit) as info:
        main(["cache"])
    assert info.value.code == 2 and "the following arguments are required: ACTION" in capsys.readouterr().err
