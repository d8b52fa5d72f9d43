"""Checkpoint folders that cannot be trusted are refused with a message naming the file and the problem,
and nothing is ever unpickled."""

from __future__ import annotations

import ast
import errno
import json
import os
import struct
from pathlib import Path

import pytest
import torch

from genvae import checkpoint
from genvae.checkpoint import CheckpointError
from genvae.models import ModelConfig, build_model
from genvae.utils import file_digest

CFG = ModelConfig("ae", latent_dim=2, hidden=(8,))


@pytest.fixture
def saved(tmp_path) -> Path:
    torch.manual_seed(0)
    return checkpoint.save(build_model(CFG), tmp_path / "ckpt", note="hello")


def _meta(folder: Path) -> dict:
    return json.loads((folder / "meta.json").read_text())


def _write_meta(folder: Path, meta: dict) -> None:
    (folder / "meta.json").write_text(json.dumps(meta))


def _reseal(folder: Path) -> None:
    """Record the current weights' checksum, so that only the other checks can catch a bad file."""
    meta = _meta(folder)
    meta["weights_sha256"] = file_digest(folder / "model.safetensors")
    _write_meta(folder, meta)


def _refusal(folder: Path, **kw) -> str:
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(folder, **kw)
    return str(info.value)


def test_a_sound_checkpoint_loads(saved):
    model, meta = checkpoint.load(saved)
    assert model.config == CFG and meta["note"] == "hello"


def test_saved_files_get_the_umask_mode_not_mkstemps_0600(saved):
    """A shared cache is readable by whoever the umask allows, as files made by open() would be."""
    mask = os.umask(0o022)
    os.umask(mask)
    for name in ("model.safetensors", "meta.json"):
        assert (saved / name).stat().st_mode & 0o777 == 0o666 & ~mask


def test_tampered_weights_name_both_files(saved):
    weights = saved / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-5] ^= 0xFF  # inside the last tensor's data: the header still parses
    weights.write_bytes(bytes(blob))
    message = _refusal(saved)
    assert f"{weights} does not match the checksum (SHA-256) recorded in {saved / 'meta.json'}" in message
    assert "changed or damaged after they were saved" in message


def test_truncated_weights_say_how_many_bytes_are_missing(saved):
    weights = saved / "model.safetensors"
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[:-10])
    # Caught by the format check before the checksum, with or without a matching checksum.
    for _ in range(2):
        assert _refusal(saved) == (f"{weights} is truncated: its tensors need {size} bytes, the file has "
                                   f"{size - 10} (10 missing)")
        _reseal(saved)


def test_weights_truncated_inside_the_header(saved):
    weights = saved / "model.safetensors"
    blob = weights.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])  # safetensors: an 8-byte little-endian header length, then JSON
    weights.write_bytes(blob[:40])
    _reseal(saved)
    assert _refusal(saved) == (f"{weights} is truncated: its header needs {n} bytes, the file has 32 after "
                               "the header length")
    weights.write_bytes(blob[:5])
    _reseal(saved)
    assert _refusal(saved) == f"{weights} is truncated: 5 bytes, fewer than a safetensors header's 8"


def test_extra_bytes_after_the_tensors_are_refused(saved):
    weights = saved / "model.safetensors"
    weights.write_bytes(weights.read_bytes() + b"\0\0\0")
    _reseal(saved)
    assert _refusal(saved) == f"{weights} has 3 unexpected bytes after its last tensor"


def test_a_damaged_header_is_refused(saved):
    weights = saved / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[8] = ord("[")  # the header's opening brace
    weights.write_bytes(bytes(blob))
    _reseal(saved)
    assert f"{weights} has a damaged safetensors header" in _refusal(saved)


@pytest.mark.parametrize("field", ["model_config", "weights_sha256"])
def test_a_sidecar_without_a_required_field(saved, field):
    meta = _meta(saved)
    del meta[field]
    _write_meta(saved, meta)
    assert _refusal(saved) == (f"{saved / 'meta.json'} lacks the field {field} "
                               "(required: model_config, weights_sha256)")


def test_a_caller_names_the_fields_it_needs(saved):
    message = _refusal(saved, required=("metrics", "note", "history"))
    assert message == (f"{saved / 'meta.json'} lacks the fields metrics, history "
                       "(required: model_config, weights_sha256, metrics, note, history)")


@pytest.mark.parametrize("text, problem", [
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "holds a JSON list, not an object of named fields"),
])
def test_a_sidecar_that_is_not_a_json_object(saved, text, problem):
    (saved / "meta.json").write_text(text)
    assert _refusal(saved).startswith(f"{saved / 'meta.json'} {problem}")


@pytest.mark.parametrize("content, reason, problem", [
    (None, "missing", "is missing"),
    ("{not json", "invalid", "is not valid JSON (Expecting property name"),
    (b"\xff{}", "invalid", "is not valid JSON ('utf-8' codec can't decode"),
    ("1" * 5000, "invalid", "is not valid JSON (Exceeds the limit"),  # a ValueError, but not a JSONDecodeError
    ('"text"', "not an object", "holds a JSON str, not an object of named fields"),
    ("dir", "unreadable", "cannot be read (Is a directory)"),
])
def test_read_json_object_names_the_file_and_why(tmp_path, content, reason, problem):
    path = tmp_path / "sidecar.json"
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(checkpoint.JSONFileError) as info:
        checkpoint.read_json_object(path)
    assert isinstance(info.value, CheckpointError) and info.value.reason == reason
    assert str(info.value).startswith(f"{path} {problem}")
    assert (info.value.cause is None) == (reason == "not an object")


def test_read_json_object_reads_an_object(tmp_path):
    (tmp_path / "a.json").write_text('{"b": [1, 2.5, null]}')
    assert checkpoint.read_json_object(tmp_path / "a.json") == {"b": [1, 2.5, None]}


def test_an_invalid_model_config(saved):
    meta = _meta(saved)
    meta["model_config"]["kind"] = "transformer"
    _write_meta(saved, meta)
    assert _refusal(saved).startswith(f"{saved / 'meta.json'} has an invalid model_config (kind must be one of")


def test_another_config_than_the_one_asked_for(saved):
    wanted = ModelConfig("ae", latent_dim=3, hidden=(16,))
    assert _refusal(saved, config=wanted) == (
        f"{saved / 'meta.json'} describes another model than the one asked for: "
        "hidden is (8,) in meta.json, (16,) asked for; latent_dim is 2 in meta.json, 3 asked for")


def test_weights_whose_shapes_do_not_fit_the_config(saved):
    meta = _meta(saved)
    meta["model_config"]["latent_dim"] = 3  # the sidecar now describes a 3-D code; the file holds a 2-D one
    _write_meta(saved, meta)
    # An MLP autoencoder 784 -> 8 -> z -> 8 -> 784: the layers next to the code change with its size.
    assert _refusal(saved) == (
        f"{saved / 'model.safetensors'} does not fit the model_config in {saved / 'meta.json'}: shapes differ: "
        "encoder.net.2.weight is (2, 8) in the file, (3, 8) in the model, "
        "encoder.net.2.bias is (2,) in the file, (3,) in the model, "
        "decoder.net.0.weight is (8, 2) in the file, (8, 3) in the model")


def test_weights_of_another_architecture(saved):
    meta = _meta(saved)
    meta["model_config"] = ModelConfig("classifier", hidden=(8,), channels=(2, 2)).to_dict()
    _write_meta(saved, meta)
    message = _refusal(saved)
    assert "does not fit the model_config" in message
    assert "missing tensors: " in message and "unexpected tensors: decoder.net.0.bias, decoder.net.0.weight, " \
                                              "decoder.net.2.bias and 5 more" in message


class SideEffect:
    """Unpickling this creates a folder: the visible side effect that must never happen."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


@pytest.mark.parametrize("style, looks_like", [
    ("zip", "a zip archive, which is what torch.save writes (a pickle inside)"),
    ("legacy", "a Python pickle"),
])
def test_a_pickle_is_refused_and_never_unpickled(saved, tmp_path, style, looks_like):
    weights, marker = saved / "model.safetensors", tmp_path / "unpickled"
    torch.save({"encoder.net.0.weight": SideEffect(marker)}, weights, _use_new_zipfile_serialization=style == "zip")
    _reseal(saved)  # a consistent sidecar: only the format can give it away
    assert _refusal(saved) == (f"{weights} is not a safetensors file: it is {looks_like}. genvae reads weights only "
                               "from safetensors and never unpickles a file")
    assert not marker.exists()
    # The control: unpickling the same bytes would have made the folder.
    copy = tmp_path / "model.pt"
    copy.write_bytes(weights.read_bytes())
    torch.load(copy, weights_only=False)
    assert marker.is_dir()


@pytest.mark.parametrize("content, problem", [
    (b"", "is empty (0 bytes), not a safetensors file"),
    (b"weights: see the attached spreadsheet\n", "is not a safetensors file: it is a text file (it begins "
                                                  "'weights: see the attache')"),
])
def test_an_empty_or_text_file_is_refused(saved, content, problem):
    weights = saved / "model.safetensors"
    weights.write_bytes(content)
    _reseal(saved)
    assert _refusal(saved).startswith(f"{weights} {problem}")


def test_unreadable_weights(saved, monkeypatch):
    def denied(path, *a, **k):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(checkpoint, "file_digest", denied)  # root reads through chmod, so the read itself fails
    assert _refusal(saved) == f"{saved / 'model.safetensors'} cannot be read (Permission denied)"


def test_missing_weights(saved):
    (saved / "model.safetensors").unlink()
    assert _refusal(saved) == f"{saved / 'model.safetensors'} is missing"


_UNPICKLING_MODULES = {"pickle", "marshal", "shelve", "dill", "joblib", "cloudpickle"}


def _unpicklers(source: str) -> list[str]:
    """Imports of unpickling modules and calls of ``torch.load`` in Python source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in _UNPICKLING_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in _UNPICKLING_MODULES:
            found.append(f"from {node.module} import")
        elif (isinstance(node, ast.Attribute) and node.attr == "load" and isinstance(node.value, ast.Name)
              and node.value.id == "torch"):
            found.append(f"torch.load (line {node.lineno})")
    return found


def test_the_unpickler_scan_sees_each_way_in():
    source = "import torch, pickle\nfrom joblib import load\nimport dill.settings\nstate = torch.load('x.pt')\n"
    assert _unpicklers(source) == ["import pickle", "from joblib import", "import dill.settings",
                                   "torch.load (line 4)"]


def test_nothing_in_genvae_can_unpickle():
    package = Path(checkpoint.__file__).parent
    found = {str(p.relative_to(package)): _unpicklers(p.read_text()) for p in sorted(package.rglob("*.py"))}
    assert {k: v for k, v in found.items() if v} == {}


def test_a_header_length_that_starts_like_a_pickle_is_still_safetensors(saved):
    """A header of 640-1535 bytes is stored as b"\\x80\\x02\\x00..." (little-endian), which is also how a
    protocol-2 pickle begins: the sniffing must not call such a file a pickle, whole or truncated."""
    from safetensors.torch import load_file, save

    weights = saved / "model.safetensors"
    state = {k: v.clone() for k, v in load_file(str(weights)).items()}  # not views of a file rewritten below
    blobs = (save(state, metadata={"pad": "x" * pad}) for pad in range(1500))
    blob = next(b for b in blobs if b[0] == 0x80 and 2 <= b[1] <= 5 and b[2] == 0)
    weights.write_bytes(blob)
    _reseal(saved)
    model, _ = checkpoint.load(saved)
    assert torch.equal(model.state_dict()["decoder.net.2.bias"], state["decoder.net.2.bias"])
    weights.write_bytes(blob[:100])
    _reseal(saved)
    assert _refusal(saved) == (f"{weights} is truncated: its header needs {struct.unpack('<Q', blob[:8])[0]} bytes, "
                               "the file has 92 after the header length")
