"""The package's layout: old module paths stay importable as the same module objects."""

from __future__ import annotations

import importlib
import subprocess
import sys

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
