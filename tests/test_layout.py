"""The package's layout: old module paths stay importable as the same module objects."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from genvae import _moved


@pytest.mark.parametrize("old,new", sorted(_moved.MOVED.items()))
def test_an_old_module_path_is_the_new_module(old, new):
    module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert module.__name__ == new and module.__spec__.name == new  # the alias does not rename the real module
    top = old.removeprefix("genvae.")
    if "." not in top:  # from genvae import <old name>
        assert getattr(importlib.import_module("genvae"), top) is module


def test_an_old_path_works_in_a_fresh_interpreter_and_unknown_names_still_fail():
    old, new = next(iter(_moved.MOVED.items()))
    code = (f"import {old} as o, {new} as n; assert o is n\n"
            "try:\n    import genvae.no_such_module\nexcept ModuleNotFoundError:\n    print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# --- Layers ------------------------------------------------------------------------------------------
# The package's folders are its layers, lowest first. A module imports only from its own layer or lower
# ones, so nothing points back up (imports under `if TYPE_CHECKING:`, for annotations only, do not count).
LAYERS = [
    ("base", ["genvae._moved", "genvae.settings", "genvae.utils", "genvae.checks", "genvae.frontend", "genvae.data",
              "genvae.gaussian"]),
    ("models", ["genvae.models"]),
    ("training", ["genvae.training"]),
    ("storage", ["genvae.storage"]),
    ("experiments", ["genvae.experiments"]),
    ("analysis", ["genvae.analysis"]),
    ("book", ["genvae.book", "genvae.exercises"]),
    ("entry", ["genvae.cli", "genvae.__main__"]),
]
ROOT = Path(__file__).resolve().parents[1]


def layer_of(module: str) -> int | None:
    best = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if module == p or module.startswith(p + "."):
                best = i
    return best


def _package_files():
    for path in sorted((ROOT / "genvae").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        yield path, ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path.name == "__init__.py"


def _runtime_imports(path: Path, name: str, is_pkg: bool):
    """(line, imported module) of every import that runs (not those under ``if TYPE_CHECKING:``)."""
    tree = ast.parse(path.read_text())
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for b in node.body for n in ast.walk(b))
    package = name if is_pkg else name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("genvae"):
                    yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("genvae"):
                continue
            for a in node.names:  # `from . import x`: x may be a module
                sub = f"{target}.{a.name}"
                yield node.lineno, sub if _is_module(sub) else target


def _is_module(name: str) -> bool:
    p = ROOT / Path(*name.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def test_every_module_has_a_layer():
    unplaced = [name for _, name, _ in _package_files() if name != "genvae" and layer_of(name) is None]
    assert not unplaced, f"modules in no layer (add them to LAYERS): {unplaced}"


def test_imports_flow_down_the_layers():
    upward = []
    for path, name, is_pkg in _package_files():
        if name == "genvae":  # the package's front door re-exports from every layer
            continue
        mine = layer_of(name)
        for line, target in _runtime_imports(path, name, is_pkg):
            if target == "genvae":  # the root (its __version__) is initialised before any of its modules
                continue
            theirs = layer_of(target)
            assert theirs is not None, f"{name} imports {target}, which is in no layer"
            if theirs > mine:
                upward.append(f"{path.relative_to(ROOT)}:{line}: {name} ({LAYERS[mine][0]}) imports {target} "
                              f"({LAYERS[theirs][0]})")
    assert not upward, "imports that point up the layers:\n" + "\n".join(upward)


def test_no_old_module_path_is_used_inside_the_package():
    """The package's own code uses the new paths; the old ones are for chapters and users."""
    old = []
    for path, name, is_pkg in _package_files():
        for line, target in _runtime_imports(path, name, is_pkg):
            if any(target == o or target.startswith(o + ".") for o in _moved.MOVED):
                old.append(f"{path.relative_to(ROOT)}:{line}: {target}")
    assert not old, "old module paths used inside genvae:\n" + "\n".join(old)
