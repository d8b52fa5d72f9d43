"""Inspect and tidy the trained-model cache: what ``genvae cache list | verify | prune`` does.

The cache root (:func:`genvae.settings.cache_root`, or ``--cache DIR``) holds::

    <name>-<key>/                 an entry, a checkpoint folder (genvae.storage.checkpoint):
        model.safetensors           the weights
        meta.json                   configs, metrics, history, the weights' SHA-256
        evals.json                  evaluations kept with the model (genvae.storage.evals.cached_eval), optional
        .<file>.<random>.tmp        a file being saved, renamed into place when complete
    <name>-<key>.resume/          the state of an interrupted training of that entry (written by the trainer)

``key`` is :func:`genvae.storage.cache.cache_key` of the entry's configs and mode. An entry is
*ok* (both files, a sidecar with every field the cache reads), *partial* (no sidecar:
a save that never finished) or *corrupt* (anything else); :func:`verify` also reads
every byte (checksums, safetensors headers, loading the model into its configuration).
An entry or resume folder is an *orphan* when its key is not among the known ones that :func:`scan` is
given (the command line gives :func:`genvae.experiments.registry_keys`: any registry experiment, either data
set, quick or full mode, either precision): models of an older cache format, of a ``genvae train --epochs`` variant,
of a chapter run with other parameters, of a test.

:func:`prune` removes orphans, corrupt and partial entries, stale temporary files and
stale resume folders; nothing modified in the last :data:`STALE_SECONDS` (it may belong
to a save or a training in progress), and no folder holding files genvae does not write.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import checkpoint
from .cache import CACHE_FIELDS, cache_key, load_entry
from ..models import ModelConfig
from .resume import SUFFIX as RESUME
from ..training import TrainConfig

ENTRY_NAME = re.compile(r"^(?P<slug>.+)-(?P<key>[0-9a-f]{16})$")
STALE_SECONDS = 600  # a save renames its temporary file within seconds; a training writes its resume state every epoch
_ENTRY_FILES = {checkpoint.WEIGHTS, checkpoint.META, checkpoint.EVALS}


@dataclass
class Entry:
    """One folder under the cache root: an entry, or the resume state of one (``resume``)."""

    path: Path
    name: str  # from the sidecar, else from the registry, else from the folder's name
    key: str
    quick: bool | None  # None: not known (an unreadable sidecar of an orphan)
    dataset: str | None
    size: int  # bytes, every file in the folder
    created: str  # "YYYY-MM-DD HH:MM", from the sidecar, else the newest file's time
    status: str  # "ok", "partial", "corrupt"; "resume" for a resume folder
    problem: str = ""  # what is wrong, when the status is not "ok"
    orphan: bool = False
    modified: float = 0.0  # newest modification time of anything in the folder (seconds since the epoch)
    unknown_files: list[str] = field(default_factory=list)  # files genvae does not write there

    @property
    def mode(self) -> str:
        return "?" if self.quick is None else "quick" if self.quick else "full"


@dataclass
class Scan:
    """Everything under a cache root."""

    root: Path
    entries: list[Entry]
    resumes: list[Entry]
    temporaries: list[Path]  # ``.*.tmp`` files, in the root and one folder down


def _files(folder: Path) -> list[Path]:
    return [Path(d) / f for d, _, fs in os.walk(folder) for f in fs]


def _size_and_time(folder: Path) -> tuple[int, float]:
    size, newest = 0, 0.0
    for f in _files(folder):
        try:
            st = f.lstat()
        except OSError:  # removed meanwhile
            continue
        size, newest = size + st.st_size, max(newest, st.st_mtime)
    if not newest:
        newest = folder.lstat().st_mtime
    return size, newest


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def _inspect(path: Path, key: str, slug: str, known: dict) -> Entry:
    """The cheap look at an entry: its files and its sidecar, without reading the weights."""
    size, modified = _size_and_time(path)
    name, quick, dataset = known.get(key, (slug, None, None))
    entry = Entry(path=path, name=name, key=key, quick=quick, dataset=dataset, size=size,
                  created=_stamp(modified), status="ok", orphan=key not in known, modified=modified)
    entry.unknown_files = sorted(str(f.relative_to(path)) for f in _files(path)
                                 if not (f.parent == path and (f.name in _ENTRY_FILES or _is_temporary(f))))
    weights, meta_path = path / checkpoint.WEIGHTS, path / checkpoint.META
    if not meta_path.exists():
        entry.status = "partial"
        entry.problem = (f"{meta_path} is missing: a save that never finished"
                         + ("" if weights.exists() else f" (no {weights.name} either)"))
        return entry
    try:
        meta = checkpoint.read_meta(path, required=CACHE_FIELDS)
    except checkpoint.CheckpointError as e:
        entry.status, entry.problem = "corrupt", str(e)
        return entry
    entry.name = str(meta.get("name", entry.name))
    if isinstance(meta.get("quick"), bool):
        entry.quick = meta["quick"]
    if isinstance(meta["train_config"], dict) and isinstance(meta["train_config"].get("dataset"), str):
        entry.dataset = meta["train_config"]["dataset"]
    created = meta.get("created")
    if isinstance(created, str) and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d", created):
        entry.created = created[:16].replace("T", " ")
    if meta["cache_key"] != key:
        entry.status = "corrupt"
        entry.problem = f"{meta_path} records the key {meta['cache_key']!r}, the folder's name says {key!r}"
    elif not weights.is_file():
        entry.status, entry.problem = "corrupt", f"{weights} is missing"
    return entry


def _is_temporary(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(".tmp")


def scan(root: str | Path | None = None, *, known: Mapping[str, tuple[str, bool, str]]) -> Scan:
    """Look at every entry, resume folder and temporary file under ``root`` (default: the cache root).

    ``known`` maps the keys of the models in use to ``(name, quick, data set)``
    (:func:`genvae.experiments.registry_keys`); an entry whose key it lacks is an orphan, which
    :func:`prune` removes. It is a required argument, so that no caller prunes with an empty map by accident.
    Reads sidecars, not weights: see :func:`verify` for that. A root that does not exist is an empty cache.
    """
    from ..settings import cache_root

    root = Path(root).expanduser().resolve() if root is not None else cache_root()
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"the model cache {root} is not a folder")
    entries, resumes, temporaries = [], [], []
    children = sorted(root.iterdir()) if root.is_dir() else []
    for child in children:
        if _is_temporary(child) and child.is_file():
            temporaries.append(child)
            continue
        if child.is_symlink() or not child.is_dir():
            continue
        temporaries += sorted(f for f in child.iterdir() if _is_temporary(f) and f.is_file())
        is_resume = child.name.endswith(RESUME)
        m = ENTRY_NAME.match(child.name[:-len(RESUME)] if is_resume else child.name)
        if m is None:  # not ours: never listed, never removed
            continue
        if is_resume:
            size, modified = _size_and_time(child)
            name, quick, dataset = known.get(m["key"], (m["slug"], None, None))
            resumes.append(Entry(path=child, name=name, key=m["key"], quick=quick, dataset=dataset, size=size,
                                 created=_stamp(modified), status="resume", orphan=m["key"] not in known,
                                 modified=modified))
        else:
            entries.append(_inspect(child, m["key"], m["slug"], known))
    return Scan(root, entries, resumes, temporaries)


def verify_entry(entry: Entry) -> str | None:
    """What is wrong with an entry after reading all of it (sidecar, checksum, safetensors header, loading
    the weights into the model its sidecar describes, finite metrics), or None when it is sound.

    For an entry of the registry, the configuration in its sidecar must also give the key in its name
    (an orphan's may not: an older cache format gave other keys).
    """
    if entry.status != "ok":
        return entry.problem
    try:
        meta = checkpoint.read_meta(entry.path, required=CACHE_FIELDS)
        try:
            mc = ModelConfig.from_dict(meta["model_config"])
            tc = TrainConfig.from_dict(meta["train_config"])
        except (TypeError, ValueError, AttributeError) as e:
            raise checkpoint.CheckpointError(f"{entry.path / checkpoint.META} has an invalid configuration ({e})") \
                from None
        load_entry(entry.path, entry.key, mc, tc, torch.device("cpu"))
        if not entry.orphan and cache_key(mc, tc, bool(meta.get("quick"))) != entry.key:
            return (f"the configuration in {entry.path / checkpoint.META} gives the key "
                    f"{cache_key(mc, tc, bool(meta.get('quick')))}, not the folder's {entry.key}")
    except checkpoint.CheckpointError as e:
        return str(e)
    except OSError as e:
        return f"{entry.path} cannot be read ({e.strerror or e})"
    return None


def verify(scanned: Scan) -> dict[Path, str]:
    """``{entry folder: problem}`` for every entry that is not sound (see :func:`verify_entry`)."""
    problems = {}
    for entry in scanned.entries:
        problem = verify_entry(entry)
        if problem is not None:
            problems[entry.path] = problem
            if entry.status == "ok":
                entry.status, entry.problem = "corrupt", problem
    return problems


@dataclass
class Removal:
    """One thing :func:`prune` removes (or would remove), and why."""

    path: Path
    size: int
    reason: str


@dataclass
class PruneReport:
    removed: list[Removal]
    kept: list[tuple[Path, str]]  # left alone, and why


def prune(scanned: Scan, *, dry_run: bool = False, min_age: float = STALE_SECONDS,
          now: float | None = None) -> PruneReport:
    """Remove orphan, corrupt and partial entries, stale temporary files and stale resume folders.

    Corrupt means as found by :func:`verify` (every entry that is not an orphan is read in full).
    A resume folder is stale when its entry is complete and sound (the training finished) or it is an
    orphan; one whose entry is missing is kept, since it resumes that training. Nothing modified less
    than ``min_age`` seconds ago is removed (a save or training may be writing it), nor a folder holding
    files genvae does not write. With ``dry_run``, only says what it would remove.
    """
    now = time.time() if now is None else now
    removed: list[Removal] = []
    kept: list[tuple[Path, str]] = []

    def young(modified: float) -> bool:
        return now - modified < min_age

    sound: set[str] = set()  # folder names of complete, sound entries
    doomed: list[tuple[Path, int, str]] = []
    for entry in scanned.entries:
        reason = "orphan" if entry.orphan else None
        if reason is None:
            problem = verify_entry(entry)
            if problem is None:
                sound.add(entry.path.name)
                continue
            reason = f"{'partial' if entry.status == 'partial' else 'corrupt'}: {problem}"
        if entry.unknown_files:
            kept.append((entry.path, f"{reason}, but it holds files genvae does not write: "
                                     f"{', '.join(entry.unknown_files[:3])}"))
        elif entry.status == "partial" and young(entry.modified):
            kept.append((entry.path, f"{reason}, but modified less than {min_age:.0f} s ago (a save in progress?)"))
        else:
            doomed.append((entry.path, entry.size, reason))
    for r in scanned.resumes:
        entry_name = r.path.name[:-len(RESUME)]
        if r.orphan:
            reason = "orphan resume state"
        elif entry_name in sound:
            reason = "resume state of a finished training"
        else:
            continue  # it resumes an interrupted training of a registry model
        if young(r.modified):
            kept.append((r.path, f"{reason}, but modified less than {min_age:.0f} s ago (a training in progress?)"))
        else:
            doomed.append((r.path, r.size, reason))
    doomed_folders = {p for p, _, _ in doomed}
    for tmp in scanned.temporaries:
        if tmp.parent in doomed_folders:
            continue
        try:
            st = tmp.lstat()
        except OSError:
            continue
        if young(st.st_mtime):
            kept.append((tmp, f"temporary file modified less than {min_age:.0f} s ago (a save in progress?)"))
        else:
            doomed.append((tmp, st.st_size, "stale temporary file"))

    for path, size, reason in doomed:
        if not dry_run:
            try:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            except OSError as e:  # a read-only cache, say: say so and go on with the rest
                kept.append((path, f"{reason}, but it cannot be removed ({e.strerror or e})"))
                continue
        removed.append(Removal(path, size, reason))
    return PruneReport(removed, kept)


def human_size(n: int) -> str:
    """``734 B``, ``12.0 KiB``, ``1.4 MiB``, ``2.1 GiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def table(scanned: Scan) -> list[str]:
    """The lines of ``genvae cache list``: one per entry and per resume folder, and a summary."""
    rows = sorted(scanned.entries + scanned.resumes, key=lambda e: (e.name, e.key, e.status == "resume"))
    if not rows:
        return [f"cache: {scanned.root} (empty)"]
    width = max(12, *(len(e.name) for e in rows))
    lines = [f"cache: {scanned.root}",
             f"{'name':<{width}}  {'key':<16}  {'mode':<5}  {'data set':<13}  {'size':>9}  {'created':<16}  status"]
    for e in rows:
        status = e.status + (", orphan" if e.orphan else "")
        lines.append(f"{e.name:<{width}}  {e.key:<16}  {e.mode:<5}  {e.dataset or '?':<13}  {human_size(e.size):>9}  "
                     f"{e.created:<16}  {status}")
    total = sum(e.size for e in rows) + sum(_size(t) for t in scanned.temporaries if t.parent == scanned.root)
    orphans = sum(e.orphan for e in scanned.entries)
    bad = sum(e.status != "ok" for e in scanned.entries)
    lines.append(f"{plural(len(scanned.entries), 'entry', 'entries')} ({bad} partial or corrupt, "
                 f"{plural(orphans, 'orphan')}), {plural(len(scanned.resumes), 'resume folder')}, "
                 f"{plural(len(scanned.temporaries), 'temporary file')}; {human_size(total)} in all")
    return lines


def plural(n: int, word: str, words: str | None = None) -> str:
    """``"1 orphan"``, ``"2 orphans"``."""
    return f"{n} {word if n == 1 else words or word + 's'}"


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0
