"""Model packs: trained cache entries in one file, to train once and build the book anywhere.

``genvae cache export PACK`` writes the chosen entries of a cache into a pack; ``genvae cache import PACK``
checks a pack in full and only then adds its entries to a cache (:func:`export_pack`, :func:`import_pack`).

A pack is an uncompressed POSIX tar archive (nothing in it is ever unpickled), its members::

    manifest.json                       always the first member: JSON, described below
    <name>-<key>/meta.json              the files of each entry, as they are in the cache
    <name>-<key>/model.safetensors        (see genvae.storage.cachedir)
    <name>-<key>/evals.json             only where the entry keeps evaluations

and nothing else: no folders, links or devices, no other file names. The manifest::

    {"format": "genvae-pack", "pack_format": 1,
     "cache_format": 2, "genvae_version": "0.1.0", "genvae_code": "<16 hex digits>", "torch_version": "2.5.1",
     "created": "2026-01-02T03:04:05+0000",
     "entries": [{"folder": "vae_d2-<key>", "name": "vae_d2", "key": "<key>", "quick": false, "dataset": "mnist",
                  "files": {"meta.json": {"size": 2817, "sha256": "<64 hex digits>"}, ...}}, ...]}

Which packs fit this genvae. A cached model is used when its cache key (:func:`genvae.storage.cache.cache_key`)
is the one asked for; the key is a hash of the cache format (:data:`~genvae.storage.cache.CACHE_FORMAT`, bumped
when the meaning of stored weights changes), the model and training configurations and the mode. So the key, not
the version number, is the compatibility guarantee, and "another code version" means another cache format: a
pack of another cache format is refused as a whole. The genvae version (the installed package's metadata), the
digest of its source files (``genvae_code``, what a resume state is tied to) and the torch version are recorded
and shown, not compared: two checkouts that differ by a comment have other digests but interchangeable weights,
and the cache itself loads an entry whatever code wrote it. Safetensors weights do not depend on torch's version.

:func:`import_pack` verifies everything before it writes anything into the cache: the archive (a tar whose first
member is the manifest; only plain files, each at ``<folder>/<file>`` with a folder named ``<name>-<key>`` and a
file an entry may hold; no member twice, none the manifest does not list, none it lists missing), the manifest
(well formed, this pack format and cache format), every file's size and SHA-256, and every entry: its key is one
of ``known`` (the command line gives :func:`genvae.experiments.registry_keys`), its folder is the one the cache
looks up, and its ``meta.json`` gives that very key from its own configurations and loads as a sound entry
(:func:`genvae.storage.cache.load_entry`: the weights' checksum, safetensors header and shapes, finite metrics).
Files are extracted into a temporary folder inside the cache root (``.pack-import-*.tmp``); any problem raises
:class:`PackError`, naming it in one line, and removes that folder, so a refused pack leaves the cache as it was.
Only after every check has passed is each entry renamed into place:

* an entry that is not in the cache yet is *imported*;
* one already there with the same weights and sidecar is *skipped* (its ``evals.json`` is left as it is);
* one already there that differs and is sound is *kept*: the cache's own entry wins (remove it, e.g. with
  ``rm -r``, and import again to take the pack's);
* one already there that is partial or corrupt (the cache would retrain it) is *replaced* by the pack's,
  unless its folder holds other files (notes, a save in progress): then it is *kept* too.

A folder ``.pack-import-*.tmp`` left in the cache root by an import that was killed can be deleted.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import __version__
from . import cachedir, checkpoint
from .cache import CACHE_FIELDS, CACHE_FORMAT, _package_digest, cache_key, entry_path, load_entry
from ..models import ModelConfig
from ..settings import cache_root
from ..training import TrainConfig
from ..utils import file_digest

PACK_FORMAT = 1  # bump when the layout of a pack or its manifest changes
FORMAT_NAME = "genvae-pack"
MANIFEST = "manifest.json"
ENTRY_FILES = (checkpoint.META, checkpoint.WEIGHTS, checkpoint.EVALS)  # the files an entry may hold, in pack order
_REQUIRED_FILES = (checkpoint.META, checkpoint.WEIGHTS)
_FOLDER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*-(?P<key>[0-9a-f]{16})$")  # entry_path's form, no leading dot
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MAX_MANIFEST = 16 << 20  # bytes
_CHUNK = 1 << 20

Say = Callable[[str], None]


class PackError(ValueError):
    """A pack that cannot be imported (or a cache that cannot be exported); the message names the problem."""


@dataclass(frozen=True)
class PackEntry:
    """One cache entry of a pack, as its manifest describes it."""

    folder: str  # "<name>-<key>", the entry's folder in the cache
    name: str
    key: str
    quick: bool
    dataset: str
    files: Mapping[str, tuple[int, str]]  # file name -> (size in bytes, SHA-256)

    @property
    def size(self) -> int:
        return sum(size for size, _ in self.files.values())

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "full"

    def to_json(self) -> dict:
        return {"folder": self.folder, "name": self.name, "key": self.key, "quick": self.quick,
                "dataset": self.dataset,
                "files": {f: {"size": s, "sha256": h} for f, (s, h) in self.files.items()}}


@dataclass(frozen=True)
class Manifest:
    """What a pack holds, and what made it."""

    entries: tuple[PackEntry, ...]
    cache_format: int = CACHE_FORMAT
    genvae_version: str = __version__
    genvae_code: str = field(default_factory=_package_digest)
    torch_version: str = torch.__version__
    created: str = ""
    pack_format: int = PACK_FORMAT

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)

    def made_by(self) -> str:
        """``genvae 0.1.0 (code 0123456789abcdef, cache format 2, torch 2.5.1)``."""
        return (f"genvae {self.genvae_version} (code {self.genvae_code}, cache format {self.cache_format}, "
                f"torch {self.torch_version})")

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT_NAME, "pack_format": self.pack_format, "cache_format": self.cache_format,
                           "genvae_version": self.genvae_version, "genvae_code": self.genvae_code,
                           "torch_version": self.torch_version, "created": self.created,
                           "entries": [e.to_json() for e in self.entries]}, indent=1, sort_keys=True)


@dataclass
class ImportResult:
    """What :func:`import_pack` did: ``(entry, action, detail)`` per entry of the pack, in its order, where
    the action is ``"imported"``, ``"replaced"``, ``"skipped"`` or ``"kept"`` (see the module's doc)."""

    pack: Path
    root: Path
    manifest: Manifest
    actions: list[tuple[PackEntry, str, str]]

    def count(self, action: str) -> int:
        return sum(a == action for _, a, _ in self.actions)


@dataclass
class ExportResult:
    """What :func:`export_pack` wrote, and the selected entries it left out because they are not sound."""

    pack: Path
    root: Path
    manifest: Manifest
    left_out: list[tuple[Path, str]]  # (entry folder, problem)


# --- Reading the manifest -----------------------------------------------------------------------------------------

def parse_manifest(data: bytes) -> Manifest:
    """The manifest in ``data`` (the bytes of ``manifest.json``), after checking its form: :class:`PackError`
    naming the first problem otherwise. Checks the form only; :func:`check_compatible` says whether it fits."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except ValueError as e:  # UnicodeDecodeError is a ValueError too
        raise PackError(f"its {MANIFEST} is not JSON ({e})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_NAME:
        raise PackError(f"its {MANIFEST} does not say \"format\": \"{FORMAT_NAME}\": not a genvae pack")
    fields = {"pack_format": int, "cache_format": int, "genvae_version": str, "genvae_code": str,
              "torch_version": str, "created": str, "entries": list}
    for name, kind in fields.items():
        if not isinstance(raw.get(name), kind) or isinstance(raw.get(name), bool):
            raise PackError(f"its {MANIFEST} lacks the field {name!r} or it is not a {kind.__name__}")
    entries = tuple(_parse_entry(e, i) for i, e in enumerate(raw["entries"]))
    for attr in ("folder", "key"):
        seen = [getattr(e, attr) for e in entries]
        twice = sorted({v for v in seen if seen.count(v) > 1})
        if twice:
            raise PackError(f"its {MANIFEST} lists the {attr} {twice[0]} more than once")
    return Manifest(entries=entries, **{k: raw[k] for k in fields if k != "entries"})


def _parse_entry(raw, i: int) -> PackEntry:
    where = f"entry {i + 1} of its {MANIFEST}"
    if not isinstance(raw, dict):
        raise PackError(f"{where} is not an object of named fields")
    for name, kind in (("folder", str), ("name", str), ("key", str), ("quick", bool), ("dataset", str),
                       ("files", dict)):
        if not isinstance(raw.get(name), kind):
            raise PackError(f"{where} lacks the field {name!r} or it is not a {kind.__name__}")
    folder, key = raw["folder"], raw["key"]
    m = _FOLDER.match(folder)
    if m is None or m["key"] != key:
        raise PackError(f"{where} has the folder {folder!r}, which is not of the form <name>-<key> with its key {key}")
    if entry_path(raw["name"], key, "/").name != folder:
        raise PackError(f"{where} has the folder {folder!r}, not {entry_path(raw['name'], key, '/').name!r}, "
                        f"where the cache looks for {raw['name']!r}")
    files = {}
    for fname, info in raw["files"].items():
        if fname not in ENTRY_FILES:
            raise PackError(f"{where} lists the file {folder}/{fname}; an entry holds only {', '.join(ENTRY_FILES)}")
        if not (isinstance(info, dict) and isinstance(info.get("size"), int) and not isinstance(info["size"], bool)
                and info["size"] >= 0 and isinstance(info.get("sha256"), str) and _SHA256.match(info["sha256"])):
            raise PackError(f"{where} describes {folder}/{fname} without a size (bytes) and a SHA-256 (64 hex digits)")
        files[fname] = (info["size"], info["sha256"])
    missing = [f for f in _REQUIRED_FILES if f not in files]
    if missing:
        raise PackError(f"{where} ({folder}) lacks {' and '.join(missing)}")
    files = {f: files[f] for f in ENTRY_FILES if f in files}
    return PackEntry(folder, raw["name"], key, raw["quick"], raw["dataset"], files)


def check_compatible(manifest: Manifest, known: Collection[str]) -> None:
    """:class:`PackError` unless this genvae can use the pack: its pack format, its cache format (part of every
    cache key: the compatibility guarantee, see the module's doc) and the key of every entry (one of ``known``)."""
    if manifest.pack_format != PACK_FORMAT:
        newer = "a newer genvae; update genvae to read it" if manifest.pack_format > PACK_FORMAT else "another genvae"
        raise PackError(f"it is a pack of format {manifest.pack_format}, made by {newer} "
                        f"(this genvae reads pack format {PACK_FORMAT})")
    if manifest.cache_format != CACHE_FORMAT:
        raise PackError(
            f"it was made by another code version: genvae {manifest.genvae_version} (code {manifest.genvae_code}) "
            f"with cache format {manifest.cache_format}, where this genvae {__version__} has cache format "
            f"{CACHE_FORMAT}; the format is part of every cache key, which is what says that stored weights fit "
            "this code. Train the models here (genvae reproduce), or import the pack with the genvae that made it")
    for e in manifest.entries:
        if e.key not in known:
            raise PackError(f"its entry {e.folder} has the key {e.key}, which is no model of this genvae's registry "
                            "(genvae list: either mode, data set or precision); it may come from another genvae "
                            "version, from genvae train --epochs or from a chapter run with other parameters")


# --- Import -------------------------------------------------------------------------------------------------------

def _member_kind(m: tarfile.TarInfo) -> str | None:
    """What a member is when it is not a plain file (``"a symbolic link"``...), else None."""
    if m.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
        return None
    kinds = {tarfile.SYMTYPE: "a symbolic link", tarfile.LNKTYPE: "a hard link", tarfile.DIRTYPE: "a folder",
             tarfile.CHRTYPE: "a character device", tarfile.BLKTYPE: "a block device", tarfile.FIFOTYPE: "a FIFO"}
    return kinds.get(m.type, f"of tar type {m.type!r}")


def _chunks(tar: tarfile.TarFile, m: tarfile.TarInfo):
    """The bytes of the file member ``m``, a chunk at a time (tarfile.ReadError where the archive ends early)."""
    src = tar.extractfile(m)
    yield from iter(lambda: src.read(_CHUNK), b"")


def _write_member(tar: tarfile.TarFile, m: tarfile.TarInfo, dest: Path) -> tuple[int, str]:
    """Copy the file member ``m`` into the new file ``dest``; return the bytes copied and their SHA-256."""
    h, n = hashlib.sha256(), 0
    with open(dest, "xb") as out:
        for chunk in _chunks(tar, m):
            h.update(chunk)
            out.write(chunk)
            n += len(chunk)
    return n, h.hexdigest()


def _extract(tar: tarfile.TarFile, known: Collection[str], staging: Callable[[], Path]) -> Manifest:
    """Read the whole archive: its manifest (checked with :func:`check_compatible` before any file is written),
    then every file into ``staging()`` (a folder made on first use), checking names, types, sizes and SHA-256."""
    first = tar.next()
    if first is None:
        raise PackError("it holds no member at all")
    if first.name != MANIFEST or _member_kind(first) is not None:
        raise PackError(f"its first member is {first.name!r}, not the file {MANIFEST}: not a genvae pack")
    if first.size > _MAX_MANIFEST:
        raise PackError(f"its {MANIFEST} is {first.size} bytes, more than a manifest's {_MAX_MANIFEST}")
    data = b"".join(_chunks(tar, first))
    if len(data) != first.size:
        raise PackError(f"its {MANIFEST} is truncated")
    manifest = parse_manifest(data)
    check_compatible(manifest, known)
    expected = {f"{e.folder}/{f}": info for e in manifest.entries for f, info in e.files.items()}
    seen: set[str] = {MANIFEST}
    while (m := tar.next()) is not None:  # not `for m in tar`, which would give the manifest again
        name = m.name
        if name in seen:
            raise PackError(f"it holds {name!r} twice")
        kind = _member_kind(m)
        if kind is not None:
            raise PackError(f"its member {name!r} is {kind}; a pack holds only plain files")
        folder, _, fname = name.partition("/")
        if not (_FOLDER.match(folder) and fname in ENTRY_FILES):
            raise PackError(f"its member {name!r} is not <name>-<key>/ followed by one of {', '.join(ENTRY_FILES)} "
                            "(an absolute path, '..', another folder or file name): refusing it")
        if name not in expected:
            raise PackError(f"it holds {name!r}, which its {MANIFEST} does not list")
        size, sha = expected[name]
        if m.size != size:
            raise PackError(f"{name} is {m.size} bytes in the archive, {size} in its {MANIFEST}")
        (staging() / folder).mkdir(exist_ok=True)
        got, digest = _write_member(tar, m, staging() / folder / fname)
        if got != size:
            raise PackError(f"{name} is truncated ({got} of {size} bytes)")
        if digest != sha:
            raise PackError(f"{name} does not match the SHA-256 in its {MANIFEST}: the pack was changed or damaged "
                            "after it was made")
        seen.add(name)
    missing = sorted(set(expected) - seen)
    if missing:
        raise PackError(f"{missing[0]}, listed in its {MANIFEST}, is not in the archive"
                        + (f" (nor {len(missing) - 1} more)" if len(missing) > 1 else "")
                        + ": the pack is incomplete (truncated?)")
    return manifest


def _configs(folder: Path) -> tuple[dict, ModelConfig, TrainConfig]:
    """The sidecar of an entry folder and the configurations it records; CheckpointError when it is unusable."""
    meta = checkpoint.read_meta(folder, required=CACHE_FIELDS)
    try:
        mc = ModelConfig.from_dict(meta["model_config"])
        tc = TrainConfig.from_dict(meta["train_config"])
    except (TypeError, ValueError, AttributeError) as e:
        raise checkpoint.CheckpointError(f"{folder / checkpoint.META} has an invalid configuration ({e})") from None
    if not isinstance(meta.get("quick"), bool):
        raise checkpoint.CheckpointError(f"{folder / checkpoint.META} does not say whether it is a quick-mode model")
    return meta, mc, tc


def check_entry(folder: Path, entry: PackEntry) -> None:
    """:class:`PackError` unless the extracted entry ``folder`` is what ``entry`` claims: a sound cache entry
    (:func:`~genvae.storage.cache.load_entry`) whose ``meta.json`` records the entry's key, name, mode and data
    set, and whose configurations give that very key (:func:`~genvae.storage.cache.cache_key`)."""
    try:
        meta, mc, tc = _configs(folder)
        key = cache_key(mc, tc, meta["quick"])
        if key != entry.key:
            raise PackError(f"its entry {entry.folder} claims the key {entry.key}, but the configurations in its "
                            f"{checkpoint.META} give {key}: it is not the model its name says")
        claims = {"name": (meta.get("name", entry.name), entry.name), "quick": (meta["quick"], entry.quick),
                  "dataset": (tc.dataset, entry.dataset)}
        for what, (found, said) in claims.items():
            if found != said:
                raise PackError(f"its entry {entry.folder} has {what} {said!r} in the {MANIFEST}, {found!r} in its "
                                f"{checkpoint.META}")
        load_entry(folder, entry.key, mc, tc, "cpu")
        if checkpoint.EVALS in entry.files:
            checkpoint.read_json_object(folder / checkpoint.EVALS)
    except checkpoint.CheckpointError as e:
        raise PackError(f"its entry {entry.folder} is not a sound cache entry: "
                        f"{str(e).replace(str(folder.parent) + os.sep, '')}") from None


def _same_files(a: Path, b: Path) -> bool:
    """Whether two entry folders hold the same weights and sidecar (byte for byte)."""
    try:
        return all(file_digest(a / f) == file_digest(b / f) for f in _REQUIRED_FILES)
    except OSError:
        return False


def _existing_problem(path: Path, key: str) -> str | None:
    """What is wrong with the cache's own entry at ``path`` (partial, corrupt, another key), or None if sound."""
    try:
        meta, mc, tc = _configs(path)
        load_entry(path, key, mc, tc, "cpu")
        if cache_key(mc, tc, meta["quick"]) != key:
            return f"its configurations give another key than {key}"
    except checkpoint.CheckpointError as e:
        return str(e)
    except OSError as e:
        return f"it cannot be read ({e.strerror or e})"
    return None


def _plan(root: Path, staged: Path, entry: PackEntry) -> tuple[str, str]:
    """What to do with one verified entry: ``(action, detail)``, see :class:`ImportResult`."""
    target = root / entry.folder
    if not target.exists() and not target.is_symlink():
        return "imported", ""
    if target.is_symlink() or not target.is_dir():
        return "kept", f"{target} exists and is not a folder; left alone"
    if _same_files(target, staged):
        return "skipped", "already in the cache, identical"
    problem = _existing_problem(target, entry.key)
    others = sorted(p.name for p in target.iterdir() if p.name not in ENTRY_FILES)
    if problem is not None and others:  # someone's notes, or a save in progress (.*.tmp): never removed
        return "kept", f"the cache's entry is unusable ({problem}), but it also holds {', '.join(others[:3])}; left alone"
    if problem is None:
        return "kept", ("the cache holds another sound model under this name and key (trained here?); it is kept: "
                        "remove it and import again to take the pack's")
    return "replaced", f"the cache's entry was unusable: {problem}"


def _make_folders(path: Path) -> list[Path]:
    """Create ``path`` and its missing parents; return those created, deepest first (to undo)."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
    return missing


def _remove_folders(made: list[Path]) -> None:
    for d in made:
        try:
            d.rmdir()  # only if still empty
        except OSError:
            pass


def import_pack(pack: str | Path, root: str | Path | None = None, *, known: Collection[str],
                say: Say | None = None) -> ImportResult:
    """Add the entries of the pack ``pack`` to the cache ``root`` (default: :func:`genvae.settings.cache_root`),
    after verifying all of it (see the module's doc); ``known`` holds the keys this genvae's registry uses
    (:func:`genvae.experiments.registry_keys`). ``say`` gets one line per step and a summary.

    Raises :class:`PackError` (one line, naming the problem) for a pack that is not a genvae pack, is damaged,
    truncated or tampered with, was made for another cache format, or holds an entry that is not the registry
    model its key names; the cache is then left exactly as it was. ``OSError`` when the cache cannot be written.
    """
    say = say or (lambda line: None)
    pack = Path(pack).expanduser()
    root = Path(root).expanduser().resolve() if root is not None else cache_root()
    if not pack.is_file():
        raise PackError(f"cannot import {pack}: {'it is not a file' if pack.exists() else 'no such file'}")
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"the model cache {root} is not a folder")
    made: list[Path] = []
    staging: list[Path] = []

    def staging_folder() -> Path:
        if not staging:
            made.extend(_make_folders(root))
            staging.append(Path(tempfile.mkdtemp(dir=root, prefix=".pack-import-", suffix=".tmp")))
        return staging[0]

    try:
        try:
            with tarfile.open(pack, "r:") as tar:
                manifest = _extract(tar, known, staging_folder)
        except (tarfile.TarError, EOFError) as e:
            raise PackError(f"it is not a complete tar archive ({e}): damaged, truncated or not a pack") from None
        say(f"{pack}: {cachedir.plural(len(manifest.entries), 'entry', 'entries')}, "
            f"{cachedir.human_size(manifest.size)}; made by {manifest.made_by()}")
        mine = Manifest(entries=())
        if (manifest.genvae_version, manifest.genvae_code) != (mine.genvae_version, mine.genvae_code):
            say(f"  this is genvae {mine.genvae_version} (code {mine.genvae_code}): other code, same cache format; "
                "accepted entry by entry, since each one's cache key must be this genvae's")
        plans = []
        for e in manifest.entries:
            staged = staging_folder() / e.folder
            check_entry(staged, e)
            plans.append((e, *_plan(root, staged, e)))
        say("verified: every file's SHA-256, and every entry's key against this genvae's registry and its own "
            "configurations")
    except PackError as e:
        _discard(staging, made)
        raise PackError(f"cannot import {pack}: {e}; nothing was imported") from None
    except BaseException:
        _discard(staging, made)
        raise
    try:
        for e, action, _ in plans:
            staged, target = staging[0] / e.folder, root / e.folder
            if action == "imported":
                os.rename(staged, target)
            elif action == "replaced":
                old = staging[0] / f"old-{e.folder}"
                os.rename(target, old)
                try:
                    os.rename(staged, target)
                except BaseException:
                    os.rename(old, target)  # the cache's own entry back, as it was
                    raise
    finally:
        _discard(staging, [])
    for e, action, detail in plans:
        say(f"  {action:<8} {e.name} ({e.mode}, {e.dataset}, {cachedir.human_size(e.size)})"
            + (f": {detail}" if detail else ""))
    result = ImportResult(pack, root, manifest, plans)
    say(f"imported {result.count('imported')}, replaced {result.count('replaced')}, skipped {result.count('skipped')} "
        f"(already present), kept {result.count('kept')} (the cache's own, different); cache: {root}")
    return result


def _discard(staging: list[Path], made: list[Path]) -> None:
    for s in staging:
        shutil.rmtree(s, ignore_errors=True)
    _remove_folders(made)


# --- Export -------------------------------------------------------------------------------------------------------

def select(entries: list[cachedir.Entry], *, quick: bool | None = None, dataset: str | None = None,
           only: str = "") -> list[cachedir.Entry]:
    """The entries to export: complete (``"ok"``), of a registry key (not orphans), of the mode ``quick``
    (None: both), of ``dataset`` (None: every one) and whose name contains ``only``."""
    return [e for e in entries if e.status == "ok" and not e.orphan and (quick is None or e.quick == quick)
            and (dataset is None or e.dataset == dataset) and only in e.name]


def describe(folder: Path) -> PackEntry:
    """The manifest entry of the cache entry ``folder``, its files read and hashed now; :class:`PackError`
    when its name, sidecar and configurations do not agree (as :func:`check_entry` would find on import)."""
    m = _FOLDER.match(folder.name)
    if m is None:
        raise PackError(f"{folder.name} is not an entry folder name (<name>-<16 hex digits>)")
    try:
        meta, mc, tc = _configs(folder)
    except checkpoint.CheckpointError as e:
        raise PackError(str(e)) from None
    name = str(meta.get("name", folder.name[:-17]))
    if entry_path(name, m["key"], folder.parent) != folder:
        raise PackError(f"{folder} is not where the cache keeps {name!r}")
    if cache_key(mc, tc, meta["quick"]) != m["key"]:
        raise PackError(f"the configurations in {folder / checkpoint.META} do not give the key in its name")
    files = {f: ((folder / f).stat().st_size, file_digest(folder / f)) for f in ENTRY_FILES if (folder / f).is_file()}
    return PackEntry(folder.name, name, m["key"], meta["quick"], tc.dataset, files)


def write_pack(pack: str | Path, folders: list[Path], say: Say | None = None) -> Manifest:
    """Write the entry ``folders`` into the pack file ``pack`` (replaced if it exists, through a temporary
    file and a rename, so a failed export leaves no half pack). Checks nothing about the entries beyond
    :func:`describe`: :func:`export_pack` chooses and verifies them. :class:`PackError` when a file changes
    while it is packed."""
    say = say or (lambda line: None)
    pack = Path(pack).expanduser()
    if not pack.parent.is_dir():
        raise PackError(f"cannot write {pack}: the folder {pack.parent} does not exist")
    entries = tuple(describe(Path(f)) for f in folders)
    manifest = Manifest(entries=entries, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    now = int(time.time())

    def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), now, 0o644
        tar.addfile(info, io.BytesIO(data))

    fd, tmp = tempfile.mkstemp(dir=pack.parent, prefix=f".{pack.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            add(tar, MANIFEST, manifest.to_json().encode())
            for folder, e in zip(folders, entries):
                for fname, (_, sha) in e.files.items():
                    data = (Path(folder) / fname).read_bytes()
                    if hashlib.sha256(data).hexdigest() != sha:
                        raise PackError(f"{Path(folder) / fname} changed while it was being exported; try again")
                    add(tar, f"{e.folder}/{fname}", data)
                say(f"  packed {e.name} ({e.mode}, {e.dataset}, {cachedir.human_size(e.size)})")
        os.chmod(tmp, checkpoint.FILE_MODE)
        os.replace(tmp, pack)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return manifest


def export_pack(pack: str | Path, root: str | Path | None = None, *, known: Mapping[str, tuple[str, bool, str]],
                quick: bool | None = None, dataset: str | None = None, only: str = "",
                say: Say | None = None) -> ExportResult:
    """Write the cache entries chosen by :func:`select` (``quick``, ``dataset``, ``only``) of the cache ``root``
    (default: :func:`genvae.settings.cache_root`) into the pack file ``pack``. ``known`` maps the keys of this
    genvae's registry as for :func:`genvae.storage.cachedir.scan`. Every chosen entry is read in full first
    (:func:`genvae.storage.cachedir.verify_entry`); one that is not sound is left out and reported.
    :class:`PackError` when nothing is left to export."""
    say = say or (lambda line: None)
    scanned = cachedir.scan(root, known=known)
    chosen = select(scanned.entries, quick=quick, dataset=dataset, only=only)
    good, left_out = [], []
    for e in chosen:
        problem = cachedir.verify_entry(e)
        if problem is None:
            good.append(e.path)
        else:
            left_out.append((e.path, problem))
            say(f"  left out {e.path.name}: {problem}")
    if not good:
        what = ", ".join(filter(None, ["quick mode" if quick else "full mode" if quick is False else "",
                                       dataset or "", f"name containing {only!r}" if only else ""]))
        raise PackError(f"nothing to export: {scanned.root} holds no sound entry of a registry model"
                        + (f" ({what})" if what else "") + " (see genvae cache list)")
    say(f"packing {cachedir.plural(len(good), 'entry', 'entries')} of {scanned.root}")
    manifest = write_pack(pack, good, say)
    say(f"wrote {pack}: {cachedir.plural(len(manifest.entries), 'entry', 'entries')}, "
        f"{cachedir.human_size(manifest.size)} of models; {cachedir.human_size(Path(pack).stat().st_size)} in all")
    return ExportResult(Path(pack), scanned.root, manifest, left_out)
