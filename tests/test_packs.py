"""Model packs (`genvae cache export | import`): a round trip, the choice of entries, entries already in the cache,
and every kind of bad pack refused with the cache left exactly as it was.

The entries are written as load_or_train writes them, with untrained weights (as in test_cachedir.py): what a
pack carries and checks does not depend on training, and the whole file runs in seconds.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
import torch

from genvae.cli import main
from genvae.experiments import get, registry_keys
from genvae.models import ModelConfig, build_model
from genvae.storage import cache, checkpoint, packs
from genvae.storage.packs import PackError
from genvae.training import TrainConfig

KNOWN = registry_keys()
QUICK, FULL, FASHION, OTHER = (("small_conv_ae_d2", True), ("small_conv_ae_d2", False),
                               ("small_conv_ae_d2_fashion", True), ("small_conv_ae_d16", True))


def _entry(root: Path, name: str, quick: bool, seed: int = 0, model: ModelConfig | None = None,
           train: TrainConfig | None = None) -> Path:
    """A cache entry as load_or_train writes it, with untrained weights drawn from ``seed``."""
    exp = get(name) if model is None else None
    model = model or exp.model
    train = train or (exp.train.quick() if quick else exp.train)
    key = cache.cache_key(model, train, quick)
    torch.manual_seed(seed)
    return checkpoint.save(build_model(model), cache.entry_path(name, key, root), cache_key=key, name=name,
                           quick=quick, train_config=train.to_dict(), history=[], metrics={"recon": 0.05},
                           train_seconds=1.0, created="2026-01-02T03:04:05+0000")


def _orphan(root: Path) -> Path:
    tiny = ModelConfig("ae", latent_dim=2, hidden=(8,))
    return _entry(root, "ae_d2_e7", True, model=tiny, train=TrainConfig(epochs=7, train_size=64))


def _flip(path: Path) -> None:
    blob = bytearray(path.read_bytes())
    blob[-3] ^= 0xFF
    path.write_bytes(bytes(blob))


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A cache with three registry entries (one with kept evaluations), an orphan and a damaged entry."""
    root = tmp_path_factory.mktemp("source")
    for name, quick in (QUICK, FULL, FASHION):
        _entry(root, name, quick)
    (cache.entry_path(*_slot(FASHION), root) / checkpoint.EVALS).write_text('{"knn": {"value": 0.9}}')
    _orphan(root)
    _flip(_entry(root, "small_conv_ae_d16", False) / checkpoint.WEIGHTS)
    return root


def _slot(which: tuple[str, bool]) -> tuple[str, str]:
    name, quick = which
    exp = get(name)
    return name, cache.cache_key(exp.model, exp.train.quick() if quick else exp.train, quick)


def _folder(which: tuple[str, bool]) -> str:
    return cache.entry_path(*_slot(which), "/").name


@pytest.fixture(scope="module")
def pack(source, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pack") / "models.tar"
    packs.export_pack(path, source, known=KNOWN)
    return path


@pytest.fixture
def target(tmp_path) -> Path:
    """A cache that already holds an entry the pack lacks and a file that is not genvae's."""
    root = tmp_path / "target"
    _entry(root, *OTHER)
    (root / "README.txt").write_text("not genvae's")
    return root


def _snapshot(root: Path) -> dict[str, bytes | None] | None:
    """Every path under ``root`` with its bytes (None for a folder); None if ``root`` does not exist."""
    if not root.exists():
        return None
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes() for p in sorted(root.rglob("*"))}


# --- Editing a pack -------------------------------------------------------------------------------------------------

def _members(path: Path) -> list[list]:
    with tarfile.open(path) as tar:
        return [[m, tar.extractfile(m).read() if m.isfile() else b""] for m in tar.getmembers()]


def _write(members: list[list], path: Path) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def _manifest(members: list[list]) -> dict:
    return json.loads(members[0][1])


def _set_manifest(members: list[list], manifest: dict) -> None:
    members[0][1] = json.dumps(manifest).encode()


def _member(members: list[list], name: str) -> list:
    return next(m for m in members if m[0].name == name)


def _resign(members: list[list], name: str) -> None:
    """Write the size and SHA-256 of the member ``name`` into the manifest, as a forger would."""
    folder, fname = name.split("/")
    data = _member(members, name)[1]
    manifest = _manifest(members)
    entry = next(e for e in manifest["entries"] if e["folder"] == folder)
    entry["files"][fname] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    _set_manifest(members, manifest)


def _extra(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"x", link: str = "") -> list:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return [info, data]


# --- Round trip and choice ------------------------------------------------------------------------------------------

def test_round_trip_into_an_empty_cache(source, pack, tmp_path):
    dst = tmp_path / "new" / "cache"  # not there yet
    lines: list[str] = []
    result = packs.import_pack(pack, dst, known=KNOWN, say=lines.append)
    folders = sorted(_folder(w) for w in (QUICK, FULL, FASHION))
    assert sorted(p.name for p in dst.iterdir()) == folders  # no orphan, no damaged entry, no staging left
    for folder in folders:
        files = sorted(p.name for p in (source / folder).iterdir())
        assert sorted(p.name for p in (dst / folder).iterdir()) == files
        assert all((dst / folder / f).read_bytes() == (source / folder / f).read_bytes() for f in files)
    assert (dst / _folder(FASHION) / checkpoint.EVALS).is_file()
    assert [a for _, a, _ in result.actions] == ["imported"] * 3
    assert lines[0].startswith(f"{pack}: 3 entries, ") and "cache format 2" in lines[0]
    assert lines[-1] == f"imported 3, replaced 0, skipped 0 (already present), kept 0 (the cache's own, different); " \
                        f"cache: {dst}"
    for name, quick in (QUICK, FULL):  # what the book asks for now loads, training nothing
        trained = get(name).load(quick=quick, cache_dir=dst, progress=False)
        assert trained.from_cache
    again = packs.import_pack(pack, dst, known=KNOWN)
    assert [a for _, a, _ in again.actions] == ["skipped"] * 3


def test_the_manifest_records_files_versions_and_formats(source, pack):
    members = _members(pack)
    assert members[0][0].name == packs.MANIFEST and all(m.isfile() for m, _ in members)
    manifest = packs.parse_manifest(members[0][1])
    assert (manifest.pack_format, manifest.cache_format) == (packs.PACK_FORMAT, cache.CACHE_FORMAT)
    assert manifest.torch_version == torch.__version__ and manifest.genvae_code == cache._package_digest()
    entry = next(e for e in manifest.entries if e.folder == _folder(FASHION))
    assert (entry.name, entry.key, entry.quick, entry.dataset) == (*_slot(FASHION), True, "fashion-mnist")
    assert list(entry.files) == ["meta.json", "model.safetensors", "evals.json"]
    size, sha = entry.files["model.safetensors"]
    weights = source / entry.folder / "model.safetensors"
    assert size == weights.stat().st_size and sha == checkpoint.file_digest(weights)


def test_export_chooses_by_mode_data_set_and_name_and_leaves_out_bad_entries(source, tmp_path):
    def folders(damaged_chosen: bool, **choice) -> list[str]:
        lines: list[str] = []
        result = packs.export_pack(tmp_path / "p.tar", source, known=KNOWN, say=lines.append, **choice)
        left_out = [line for line in lines if line.startswith("  left out ")]
        assert len(left_out) == damaged_chosen and len(result.left_out) == damaged_chosen
        assert all("small_conv_ae_d16-" in line and "SHA-256" in line for line in left_out)
        return sorted(e.folder for e in result.manifest.entries)

    assert folders(True) == sorted(_folder(w) for w in (QUICK, FULL, FASHION))  # not the orphan
    assert folders(False, quick=True) == sorted([_folder(QUICK), _folder(FASHION)])
    assert folders(True, quick=False) == [_folder(FULL)]
    assert folders(False, dataset="fashion-mnist", quick=True) == [_folder(FASHION)]
    assert folders(False, only="d2_fash") == [_folder(FASHION)]
    with pytest.raises(PackError, match="nothing to export: .* no sound entry of a registry model"):
        packs.export_pack(tmp_path / "none.tar", source, known=KNOWN, dataset="fashion-mnist", quick=False)
    assert not (tmp_path / "none.tar").exists() and not list(tmp_path.glob(".*.tmp"))


def test_entries_already_in_the_cache(pack, tmp_path):
    root = tmp_path / "cache"
    same = _entry(root, *QUICK)  # identical: skipped
    other = _entry(root, *FULL, seed=1)  # another sound model under the same key: the cache's own is kept
    broken = _entry(root, *FASHION)  # damaged: replaced by the pack's
    _flip(broken / checkpoint.WEIGHTS)
    kept_bytes = (other / checkpoint.WEIGHTS).read_bytes()
    result = packs.import_pack(pack, root, known=KNOWN)
    actions = {e.folder: (a, d) for e, a, d in result.actions}
    assert actions[same.name][0] == "skipped"
    assert actions[other.name][0] == "kept" and "remove it and import again" in actions[other.name][1]
    assert actions[broken.name][0] == "replaced" and "SHA-256" in actions[broken.name][1]
    assert (other / checkpoint.WEIGHTS).read_bytes() == kept_bytes
    assert cache.load_entry(broken, *_slot(FASHION)[1:], get(FASHION[0]).model, get(FASHION[0]).train.quick())
    assert sorted(p.name for p in root.iterdir()) == sorted([same.name, other.name, broken.name])


def test_a_damaged_entry_holding_other_files_is_left_alone(pack, tmp_path):
    root = tmp_path / "cache"
    broken = _entry(root, *QUICK)
    _flip(broken / checkpoint.WEIGHTS)
    (broken / "notes.txt").write_text("mine")
    before = _snapshot(broken)
    actions = {e.folder: a for e, a, _ in packs.import_pack(pack, root, known=KNOWN).actions}
    assert actions[broken.name] == "kept" and _snapshot(broken) == before


# --- Refusals -------------------------------------------------------------------------------------------------------

def _flip_weights(members):
    name = f"{_folder(QUICK)}/model.safetensors"
    data = bytearray(_member(members, name)[1])
    data[len(data) // 2] ^= 0x01
    _member(members, name)[1] = bytes(data)


def _wrong_sha(members):
    manifest = _manifest(members)
    manifest["entries"][-1]["files"]["meta.json"]["sha256"] = "0" * 64
    _set_manifest(members, manifest)


def _edited_configs(members):
    """A consistent forgery: meta.json says 99 epochs, the manifest's SHA-256 is updated; the key is the old one."""
    name = f"{_folder(FULL)}/meta.json"
    meta = json.loads(_member(members, name)[1])
    meta["train_config"]["epochs"] = 99
    _member(members, name)[1] = json.dumps(meta).encode()
    _resign(members, name)


def _swapped_weights(members):
    """Other weights of the same shapes, the manifest updated, but not the checksum inside meta.json."""
    torch.manual_seed(5)
    name = f"{_folder(QUICK)}/model.safetensors"
    state = {k: v.contiguous() for k, v in build_model(get(QUICK[0]).model).state_dict().items()}
    from safetensors.torch import save as save_bytes

    _member(members, name)[1] = save_bytes(state)
    _resign(members, name)


def _other_cache_format(members):
    manifest = _manifest(members)
    manifest["cache_format"] = cache.CACHE_FORMAT + 1
    manifest["genvae_version"] = "9.9.9"
    _set_manifest(members, manifest)


def _newer_pack_format(members):
    manifest = _manifest(members)
    manifest["pack_format"] = packs.PACK_FORMAT + 1
    _set_manifest(members, manifest)


def _malformed_manifest(members):
    manifest = _manifest(members)
    del manifest["entries"][0]["files"]["model.safetensors"]["sha256"]
    _set_manifest(members, manifest)


def _unlisted_file(members):
    members.append(_extra(f"{_folder(QUICK)}/evals.json", data=b"{}"))


def _twice(members):
    members.append(list(members[-1]))


def _missing_file(members):
    members.pop()


def _manifest_not_first(members):
    members.append(members.pop(0))


REFUSALS = {
    "flipped byte in weights": (_flip_weights, "model.safetensors does not match the SHA-256 in its manifest.json"),
    "wrong SHA in manifest": (_wrong_sha, "meta.json does not match the SHA-256 in its manifest.json"),
    "key not of its configs": (_edited_configs, "claims the key .* but the configurations in its meta.json give"),
    "weights not of its meta": (_swapped_weights, "not a sound cache entry: .*does not match the checksum"),
    "other code version": (_other_cache_format, "another code version: genvae 9.9.9 .* with cache format 3, where "
                                                "this genvae .* has cache format 2; .* part of every cache key"),
    "newer pack format": (_newer_pack_format, "pack of format 2, made by a newer genvae"),
    "malformed manifest": (_malformed_manifest, "describes .*model.safetensors without a size .* and a SHA-256"),
    "file not in manifest": (_unlisted_file, "evals.json', which its manifest.json does not list"),
    "member twice": (_twice, "holds .* twice"),
    "file missing": (_missing_file, "is not in the archive: the pack is incomplete"),
    "manifest not first": (_manifest_not_first, "its first member is .*, not the file manifest.json"),
    "parent folder": (lambda m: m.append(_extra("../escape.txt")), "member '../escape.txt' is not <name>-<key>/"),
    "absolute path": (lambda m: m.append(_extra(f"/tmp/{_folder(QUICK)}/meta.json")), "is not <name>-<key>/"),
    "dot-dot inside": (lambda m: m.append(_extra(f"{_folder(QUICK)}/../../x.txt")), "is not <name>-<key>/"),
    "hidden folder": (lambda m: m.append(_extra(f".{_folder(QUICK)}/meta.json")), "is not <name>-<key>/"),
    "other file name": (lambda m: m.append(_extra(f"{_folder(QUICK)}/notes.txt")), "is not <name>-<key>/"),
    "symbolic link": (lambda m: m.insert(1, _extra(f"{_folder(QUICK)}/evals.json", tarfile.SYMTYPE, b"",
                                                   "/etc/passwd")), "is a symbolic link; a pack holds only plain"),
    "hard link": (lambda m: m.append(_extra(f"{_folder(QUICK)}/evals.json", tarfile.LNKTYPE, b"", "manifest.json")),
                  "is a hard link"),
    "device": (lambda m: m.append(_extra(f"{_folder(QUICK)}/evals.json", tarfile.CHRTYPE, b"")), "character device"),
    "folder member": (lambda m: m.insert(1, _extra(_folder(QUICK), tarfile.DIRTYPE, b"")), "is a folder"),
}


@pytest.mark.parametrize("damage", list(REFUSALS))
def test_a_bad_pack_is_refused_and_the_cache_is_unchanged(damage, pack, target, tmp_path):
    change, message = REFUSALS[damage]
    members = _members(pack)
    change(members)
    bad = _write(members, tmp_path / "bad.tar")
    before = _snapshot(target)
    with pytest.raises(PackError, match=message) as e:
        packs.import_pack(bad, target, known=KNOWN)
    text = str(e.value)
    assert text.startswith(f"cannot import {bad}: ") and text.endswith("; nothing was imported") and "\n" not in text
    assert _snapshot(target) == before
    assert not (tmp_path / "escape.txt").exists()


def test_an_unknown_key_is_refused(source, target, tmp_path):
    bad = tmp_path / "orphan.tar"
    packs.write_pack(bad, [source / _folder(QUICK), _orphan(tmp_path / "elsewhere")])
    before = _snapshot(target)
    with pytest.raises(PackError, match=r"entry ae_d2_e7-\w+ has the key \w+, which is no model of this genvae's "
                                        "registry"):
        packs.import_pack(bad, target, known=KNOWN)
    assert _snapshot(target) == before


@pytest.mark.parametrize("cut", ["header", "middle", "last file", "member boundary"])
def test_a_truncated_pack_is_refused(cut, pack, target, tmp_path):
    data = pack.read_bytes()
    members = [m for m, _ in _members(pack)]
    third = members[3].offset  # the header of the third file: two files come through whole, the rest is gone
    last = members[-1].offset_data + members[-1].size // 2  # (the zeros after it are the tar's padding)
    end = {"header": 100, "middle": len(data) // 2, "last file": last, "member boundary": third}[cut]
    bad = tmp_path / "cut.tar"
    bad.write_bytes(data[:end])
    before = _snapshot(target)
    with pytest.raises(PackError, match="not a complete tar archive|is truncated|the pack is incomplete"):
        packs.import_pack(bad, target, known=KNOWN)
    assert _snapshot(target) == before


@pytest.mark.parametrize("content", [b"", b"hello, not a tar\n" * 40])
def test_a_file_that_is_not_a_pack_is_refused_and_a_missing_cache_stays_missing(content, tmp_path):
    bad = tmp_path / "bad.tar"
    bad.write_bytes(content)
    root = tmp_path / "no" / "cache"
    with pytest.raises(PackError, match="not a complete tar archive"):
        packs.import_pack(bad, root, known=KNOWN)
    assert not (tmp_path / "no").exists()


def test_a_refusal_after_files_were_staged_removes_the_new_cache_folder(pack, tmp_path):
    members = _members(pack)
    _edited_configs(members)  # found after every file is extracted
    bad = _write(members, tmp_path / "bad.tar")
    with pytest.raises(PackError):
        packs.import_pack(bad, tmp_path / "no" / "cache", known=KNOWN)
    assert not (tmp_path / "no").exists()


# --- The command line -----------------------------------------------------------------------------------------------

def test_cli_export_then_import(source, tmp_path, capsys, monkeypatch):
    pack = tmp_path / "models.tar"
    assert main(["cache", "--cache", str(source), "export", str(pack), "--quick", "--dataset", "mnist"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith(f"wrote {pack}: 1 entry, ")
    monkeypatch.setenv("GENVAE_CACHE", str(tmp_path / "laptop"))
    assert main(["cache", "import", str(pack)]) == 0
    out = capsys.readouterr().out
    assert "  imported small_conv_ae_d2 (quick, mnist, " in out
    assert "imported 1, replaced 0, skipped 0" in out.splitlines()[-1]
    assert get(QUICK[0]).is_cached(quick=True)

    members = _members(pack)
    _flip_weights(members)
    bad = _write(members, tmp_path / "bad.tar")
    assert main(["cache", "import", str(bad), "--cache", str(tmp_path / "other")]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith(f"genvae: error: cannot import {bad}: ") and captured.err.count("\n") == 1
    assert "does not match the SHA-256" in captured.err and not (tmp_path / "other").exists()
    assert main(["cache", "export", str(tmp_path / "x.tar"), "--cache", str(source), "--only", "nothing"]) == 1
    assert "genvae: error: nothing to export" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # --quick and --full together: a usage error
        main(["cache", "export", str(tmp_path / "y.tar"), "--quick", "--full"])
    assert e.value.code == 2


def test_cli_import_says_when_entries_are_of_the_other_precision(tmp_path, capsys):
    """A GPU trains the recipes in fp32, a CPU with native bf16 in bf16: such entries are imported, with a note."""
    from dataclasses import replace

    exp = get("ae_d2")
    other = "bf16" if exp.train.precision == "fp32" else "fp32"
    folder = _entry(tmp_path / "gpu", "ae_d2", True, train=replace(exp.train, precision=other).quick())
    pack = tmp_path / "other.tar"
    packs.write_pack(pack, [folder])
    assert main(["cache", "import", str(pack), "--cache", str(tmp_path / "laptop")]) == 0
    note = capsys.readouterr().out.splitlines()[-1]
    assert note.startswith("note: 1 of these entries were trained in another precision") and f"={other}" in note
    assert (tmp_path / "laptop" / folder.name).is_dir()
