"""Resume states: an interrupted training goes on from its last finished epoch.

At the end of every epoch but the last, the training loop (:func:`genvae.training.training_epochs`)
writes everything the next epoch depends on into a *resume folder* (after the first epoch, only once the
training since the last write has taken 20 times that write's time: see :func:`genvae.settings.resume_share`):

* the weights and buffers of the model (or of a stack of models);
* every optimiser's state (Adam's moments and step counts, the learning rate of each group) and
  the learning-rate schedule's state;
* the state of every random generator (the noise generator on the training device, the CPU
  generators that shuffle the data);
* the history so far, and the number of the epoch just finished.

A new process that finds a valid resume state for the same configuration loads it and trains the
remaining epochs. On a CPU the result is bit-identical to an uninterrupted run (the tests check it),
since nothing else carries over from one epoch to the next.

The files are safetensors and JSON, never pickle. Optimiser states are flattened into named tensors
(``optim.<name>.state.<param index>.<key>``) and JSON for the rest. A state is written as a new
``state-e<epoch>.safetensors`` file, then the ``resume.json`` that names it (with its SHA-256)
replaces the old one in one rename, and only then is the previous tensor file deleted. A crash or
Ctrl-C at any moment therefore leaves the previous complete state or the new one, never a mix. The
cache keeps the folder beside the entry it will become (``<entry>.resume``) and deletes it once the
entry is saved (:func:`genvae.storage.cache.load_or_train_many`).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from ..utils import file_digest

FORMAT = 1
INDEX = "resume.json"
SUFFIX = ".resume"


class ResumeWarning(UserWarning):
    """A resume state was unusable (damaged, or made for another configuration) and is discarded."""


def resume_path(entry: str | Path) -> Path:
    """The resume folder of a cache entry: a sibling named ``<entry folder name>.resume``."""
    entry = Path(entry)
    return entry.with_name(entry.name + SUFFIX)


@dataclass
class ResumeState:
    """A loaded resume state: what the loop needs to go on after epoch ``epoch``."""

    epoch: int
    history: list[dict]
    trainee: dict[str, Tensor]
    optimizers: dict[str, dict]  # name -> a state dict for Optimizer.load_state_dict
    scheduler: dict | None
    generators: dict[str, Tensor]  # name -> ByteTensor state


def _flatten_optimizer(name: str, state_dict: dict, tensors: dict[str, Tensor]) -> dict:
    """Move the tensors of an optimiser's state dict into ``tensors``; return the JSON rest."""
    rest: dict = {"state": {}, "param_groups": []}
    for index, per_param in state_dict["state"].items():
        kept = {}
        for key, value in per_param.items():
            if isinstance(value, Tensor):
                tensors[f"optim.{name}.state.{index}.{key}"] = value
            else:
                kept[key] = value
        rest["state"][str(index)] = {"keys": sorted(per_param), "values": kept}
    for g, group in enumerate(state_dict["param_groups"]):
        kept = {}
        for key, value in group.items():
            if isinstance(value, Tensor):  # a CUDA-graph-friendly learning rate
                tensors[f"optim.{name}.group.{g}.{key}"] = value
                kept[key] = {"tensor": True}
            else:
                kept[key] = {"tuple": list(value)} if isinstance(value, tuple) else value
        rest["param_groups"].append(kept)
    return rest


def _unflatten_optimizer(name: str, rest: dict, tensors: dict[str, Tensor]) -> dict:
    state = {}
    for index, entry in rest["state"].items():
        per_param = dict(entry["values"])
        for key in entry["keys"]:
            if key not in per_param:
                per_param[key] = tensors[f"optim.{name}.state.{index}.{key}"]
        state[int(index)] = per_param
    groups = []
    for g, group in enumerate(rest["param_groups"]):
        restored = {}
        for key, value in group.items():
            if isinstance(value, dict) and value.get("tensor"):
                value = tensors[f"optim.{name}.group.{g}.{key}"]
            elif isinstance(value, dict) and "tuple" in value:
                value = tuple(value["tuple"])
            restored[key] = value
        groups.append(restored)
    return {"state": state, "param_groups": groups}


_TENSOR = "__tensor__"  # marks where a tensor stood in a JSON-ed state: the value is its name in the tensor file


def _flatten_tensors(prefix: str, value, tensors: dict[str, Tensor]):
    """``value`` (nested dicts and lists, as a learning-rate schedule's state dict) with every tensor moved
    into ``tensors`` under ``prefix`` and its path, and a marker left in its place. On CUDA the schedule
    remembers its last rates as the optimiser's tensor learning rates."""
    if isinstance(value, Tensor):
        tensors[prefix] = value
        return {_TENSOR: prefix}
    if isinstance(value, dict):
        return {k: _flatten_tensors(f"{prefix}.{k}", v, tensors) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_flatten_tensors(f"{prefix}.{i}", v, tensors) for i, v in enumerate(value)]
    return value


def _unflatten_tensors(value, tensors: dict[str, Tensor]):
    if isinstance(value, dict):
        if set(value) == {_TENSOR}:
            return tensors[value[_TENSOR]]
        return {k: _unflatten_tensors(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_unflatten_tensors(v, tensors) for v in value]
    return value


def _to_cpu(t: Tensor) -> Tensor:
    return t.detach().to("cpu").contiguous()


class ResumeStore:
    """One training's resume folder.

    ``identity`` says what the state belongs to (the cache key and configurations, the device type,
    the genvae code and torch version): a state whose identity differs is discarded with a warning.
    """

    clock = staticmethod(time.perf_counter)

    def __init__(self, folder: str | Path, identity: dict, *, label: str = "training", max_share: float | None = None):
        from ..settings import resume_share

        self.folder = Path(folder)
        self.identity = json.loads(json.dumps(identity, sort_keys=True))  # as it will read back
        self.label = label
        self.writable = True  # False after a failed write: the training goes on without resume states
        # The share of the training's time that writing states may take (settings.resume_share), and the
        # last write's cost and end, which decide whether the next epoch's state is written.
        self.max_share = resume_share() if max_share is None else max_share
        self._last_cost: float | None = None
        self._last_end = 0.0
        self.written: list[int] = []  # the epochs whose state was written

    # --- writing ---------------------------------------------------------------------------------

    def save(self, epoch: int, trainee: nn.Module, optimizers: dict[str, torch.optim.Optimizer],
             scheduler, generators: dict[str, torch.Generator], history: list[dict]) -> None:
        """Write the state after ``epoch`` (atomically: see the module's docstring).

        A folder that cannot be written (a read-only cache, a full disk) costs the ability to resume,
        not the training: a warning says so once, and later epochs write nothing. The first epoch's state is
        always written; a later one only when the training since the last write took at least that write's
        time divided by ``max_share`` (so writing costs at most that share of the training; 0: every epoch).
        """
        if not self.writable:
            return
        start = self.clock()
        if self.max_share and self._last_cost is not None and (start - self._last_end) * self.max_share < self._last_cost:
            return  # too soon: an interruption now loses these few epochs, not a tenth of the training
        try:
            self._write(epoch, trainee, optimizers, scheduler, generators, history)
            self.written.append(epoch)
            self._last_end = self.clock()
            self._last_cost = self._last_end - start
        except OSError as e:
            self.writable = False
            warnings.warn(f"cannot write the resume state {self.folder} ({e}); training goes on, but an interruption "
                          "will start it over", ResumeWarning, stacklevel=3)

    def _write(self, epoch, trainee, optimizers, scheduler, generators, history) -> None:
        from .checkpoint import _atomic_write, atomic_write_text

        tensors = {f"trainee.{k}": _to_cpu(v) for k, v in trainee.state_dict().items()}
        optim_json = {}
        for name, opt in optimizers.items():
            flat: dict[str, Tensor] = {}
            optim_json[name] = _flatten_optimizer(name, opt.state_dict(), flat)
            tensors.update({k: _to_cpu(v) for k, v in flat.items()})
        for name, g in generators.items():
            tensors[f"generator.{name}"] = g.get_state()
        schedule: dict[str, Tensor] = {}
        schedule_json = None if scheduler is None else _flatten_tensors("scheduler", scheduler.state_dict(), schedule)
        tensors.update({k: _to_cpu(v) for k, v in schedule.items()})
        self.folder.mkdir(parents=True, exist_ok=True)
        weights = self.folder / f"state-e{epoch}.safetensors"
        _atomic_write(weights, lambda p: save_file(tensors, str(p)))
        index = {
            "format": FORMAT, "identity": self.identity, "epoch": epoch, "file": weights.name,
            "sha256": file_digest(weights), "history": history, "optimizers": optim_json,
            "scheduler": schedule_json,
            "generators": sorted(generators), "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        atomic_write_text(self.folder / INDEX, json.dumps(index))  # the commit point
        for old in self.folder.glob("state-e*.safetensors"):
            if old.name != weights.name:
                old.unlink(missing_ok=True)

    # --- reading ---------------------------------------------------------------------------------

    def load(self) -> ResumeState | None:
        """The saved state, or ``None`` when there is none; an unusable one is discarded with a warning."""
        if not self.folder.exists():
            return None
        try:
            return self._read()
        except _Unusable as e:
            warnings.warn(f"resume state {self.folder} is unusable ({e}); discarding it and training from the start",
                          ResumeWarning, stacklevel=3)
            self.discard()
            return None

    def _read(self) -> ResumeState:
        from .checkpoint import JSONFileError, read_json_object

        try:
            index = read_json_object(self.folder / INDEX)
        except JSONFileError as e:
            if e.reason == "missing":
                raise _Unusable(f"{INDEX} is missing") from None
            if e.reason == "not an object":
                raise _Unusable(f"{INDEX} has another format") from None
            raise _Unusable(f"{INDEX} is unreadable: {e.cause}") from None
        if index.get("format") != FORMAT:
            raise _Unusable(f"{INDEX} has another format")
        if index.get("identity") != self.identity:
            theirs, ours = index.get("identity") or {}, self.identity
            diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
            raise _Unusable(f"it was made for another configuration (differs in: {', '.join(diff)})")
        weights = self.folder / str(index.get("file"))
        if not weights.is_file():
            raise _Unusable(f"{weights.name} is missing")
        if file_digest(weights) != index.get("sha256"):
            raise _Unusable(f"{weights.name} does not match its checksum")
        try:
            tensors = {k: v.clone() for k, v in load_file(str(weights)).items()}  # aligned copies (see checkpoint.load)
            trainee = {k[len("trainee."):]: v for k, v in tensors.items() if k.startswith("trainee.")}
            optimizers = {name: _unflatten_optimizer(name, rest, tensors) for name, rest in index["optimizers"].items()}
            generators = {name: tensors[f"generator.{name}"] for name in index["generators"]}
            return ResumeState(epoch=int(index["epoch"]), history=list(index["history"]), trainee=trainee,
                               optimizers=optimizers, scheduler=_unflatten_tensors(index["scheduler"], tensors),
                               generators=generators)
        except (KeyError, TypeError, ValueError, SafetensorError) as e:
            raise _Unusable(f"{type(e).__name__}: {e}") from None

    def restore(self, state: ResumeState, trainee: nn.Module, optimizers: dict[str, torch.optim.Optimizer],
                scheduler, generators: dict[str, torch.Generator]) -> bool:
        """Put ``state`` into the live objects of a freshly set-up loop. When it does not fit, put back
        what they held, discard the state with a warning and return False (the loop starts afresh)."""
        import copy

        before = (copy.deepcopy(trainee.state_dict()), {n: copy.deepcopy(o.state_dict()) for n, o in optimizers.items()},
                  None if scheduler is None else copy.deepcopy(scheduler.state_dict()),
                  {n: g.get_state() for n, g in generators.items()})
        try:
            _put(trainee, optimizers, scheduler, generators, state.trainee, state.optimizers, state.scheduler,
                 state.generators)
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            _put(trainee, optimizers, scheduler, generators, *before)
            warnings.warn(f"resume state {self.folder} does not fit this training ({type(e).__name__}: {e}); "
                          "discarding it and training from the start", ResumeWarning, stacklevel=3)
            self.discard()
            return False
        print(f"{self.label}: resuming from epoch {state.epoch} (state in {self.folder})", file=sys.stderr, flush=True)
        return True

    def discard(self) -> None:
        """Delete the folder (after the final entry is saved, or when the state is unusable)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _put(trainee, optimizers, scheduler, generators, trainee_state, optimizer_states, scheduler_state,
         generator_states) -> None:
    if sorted(optimizer_states) != sorted(optimizers) or sorted(generator_states) != sorted(generators):
        raise ValueError("it has other optimisers or generators than this loop")
    if (scheduler_state is None) != (scheduler is None):
        raise ValueError("it has a learning-rate schedule where this loop has none, or the reverse")
    trainee.load_state_dict(trainee_state, strict=True)
    for name, opt in optimizers.items():
        live = [{k: v for k, v in g.items() if isinstance(v, Tensor)} for g in opt.param_groups]
        opt.load_state_dict(optimizer_states[name])
        for group, tensors in zip(opt.param_groups, live):
            for key, t in tensors.items():  # a tensor learning rate stays the live one, on its device:
                if isinstance(group.get(key), Tensor):  # the schedule updates it and a CUDA graph reads it
                    t.copy_(group[key])
                    group[key] = t
    if scheduler is not None:
        scheduler.load_state_dict(scheduler_state)
    for name, g in generators.items():
        g.set_state(generator_states[name])


class _Unusable(Exception):
    pass
