"""genvae.chapters: the chapters executed as Jupyter does, side by side, and handed to the book build."""

from __future__ import annotations

import sys

import nbformat
import pytest

from genvae import chapters
from genvae.cli import main


def _book(root, cells_by_name: dict[str, list[str]]):
    """A tiny book: _toc.yml listing one notebook per entry of ``cells_by_name`` (code cells)."""
    (root / "book").mkdir(parents=True)
    lines = ["format: jb-book", "root: book/intro", "chapters:"]
    for name, cells in cells_by_name.items():
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, root / "book" / f"{name}.ipynb")
        lines.append(f"  - file: book/{name}")
    (root / "book" / "intro.md").write_text("# Intro\n")
    (root / "_toc.yml").write_text("\n".join(lines) + "\n")
    return root


def test_chapter_paths_follow_the_toc_and_filter_by_name(tmp_path):
    root = _book(tmp_path, {"02_b": ["1"], "01_a": ["1"]})
    assert [p.name for p in chapters.chapter_paths(root)] == ["02_b.ipynb", "01_a.ipynb"]  # the toc's order
    assert [p.name for p in chapters.chapter_paths(root, ["01"])] == ["01_a.ipynb"]
    with pytest.raises(ValueError, match="no chapter matches 'nosuch'; chapters: 02_b, 01_a"):
        chapters.chapter_paths(root, ["nosuch"])
    with pytest.raises(FileNotFoundError, match="_toc.yml"):
        chapters.chapter_paths(tmp_path / "book")


def test_the_real_book_lists_every_chapter():
    names = [p.stem for p in chapters.chapter_paths()]
    assert names[0].startswith("01_") and any(n.startswith("11_") for n in names)


def test_plan_jobs_one_kernel_per_cpu_never_more_than_chapters():
    assert chapters.plan_jobs(11, cpus=2) == (2, 1)
    assert chapters.plan_jobs(11, cpus=8) == (8, 1)
    assert chapters.plan_jobs(3, cpus=8) == (3, 2)
    assert chapters.plan_jobs(11, cpus=8, jobs=2) == (2, 4)
    assert chapters.plan_jobs(0, cpus=2) == (1, 2)


def test_chapters_never_timed_here_start_by_their_first_build_time_elsewhere(tmp_path, monkeypatch):
    """A first build on an empty cache has no times of its own: the reference machine's first-build times order
    the chapters (a small notebook can be the slowest); a time measured here wins over them."""
    root = _book(tmp_path, {"01_a": ["1" * 300], "02_b": ["2"], "03_c": ["3" * 100], "04_new": ["4"]})
    a, b, c, new = chapters.chapter_paths(root)
    monkeypatch.setattr(chapters, "FIRST_BUILD_SECONDS", {"01_a": 20.0, "02_b": 300.0, "03_c": 50.0})
    assert chapters.run_order([a, b, c, new], {}) == [new, b, c, a]  # no estimate at all: first
    chapters.record_times([chapters.ChapterRun(a, a, 400.0)])
    assert chapters.run_order([a, b, c, new], chapters.read_times()) == [new, a, b, c]


def test_chapters_start_longest_first_by_their_last_time_here(tmp_path, monkeypatch):
    root = _book(tmp_path, {"01_a": ["1"], "02_b": ["2" * 300], "03_c": ["3"], "04_d": ["4" * 100]})
    a, b, c, d = chapters.chapter_paths(root)
    assert chapters.read_times() == {}
    assert chapters.run_order([a, b, c, d], {}) == [b, d, a, c]  # nothing timed yet: the largest file first
    runs = [chapters.ChapterRun(a, a, 40.0), chapters.ChapterRun(b, b, 5.0),
            chapters.ChapterRun(c, c, 9.0, error="failed")]  # a failed run says nothing about the time
    chapters.record_times(runs)
    times = chapters.read_times()
    assert times == {"full/mnist/01_a": 40.0, "full/mnist/02_b": 5.0}
    # never timed here first (the larger file first), then the slowest measured: a small file can be slow
    assert chapters.run_order([a, b, c, d], times) == [d, c, a, b]
    monkeypatch.setenv("GENVAE_QUICK", "1")  # another mode has its own times
    assert chapters.run_order([a, b, c, d], times) == [b, d, a, c]
    chapters.record_times([chapters.ChapterRun(a, a, 1.0)])
    assert chapters.read_times()["quick/mnist/01_a"] == 1.0 and chapters.read_times()["full/mnist/01_a"] == 40.0
    (chapters._times_path()).write_text("not json")  # a damaged record is only a lost hint
    assert chapters.read_times() == {}


@pytest.mark.slow
def test_execute_all_runs_side_by_side_keeps_a_failed_run_and_fills_the_build_cache(tmp_path):
    from jupyter_cache import get_cache

    root = _book(tmp_path, {"01_ok": ["import os\nprint(os.getcwd())", "6 * 7"],
                            "02_bad": ["x = 1", "raise ValueError('broken on purpose')", "print('never')"]})
    sources = chapters.chapter_paths(root)
    logged = []
    runs = chapters.execute_all(sources, tmp_path / "out", jobs=2, cwd=root / "book", log=logged.append)
    ok, bad = runs
    assert ok.ok and ok.source.name == "01_ok.ipynb" and not bad.ok and "broken on purpose" in bad.error
    assert any("02_bad" in line and "FAILED" in line for line in logged)
    done = nbformat.read(ok.executed, as_version=4)
    assert done.cells[0].outputs[0]["text"].strip() == str(root / "book")  # the kernel ran in book/, as Jupyter
    assert done.cells[1].outputs[0]["data"]["text/plain"] == "42"
    kept = nbformat.read(bad.executed, as_version=4)  # the failed run is written, its error included
    assert kept.cells[1].outputs[-1]["output_type"] == "error" and kept.cells[2].get("outputs") == []

    cache_dir = chapters.build_cache_path(tmp_path / "build")
    assert chapters.fill_build_cache(runs, cache_dir) == 1
    cache = get_cache(str(cache_dir))
    record = cache.match_cache_notebook(nbformat.read(sources[0], as_version=4))  # what the build looks up
    assert record.uri == str(sources[0].resolve())
    with pytest.raises(KeyError):
        cache.match_cache_notebook(nbformat.read(sources[1], as_version=4))
    # some chapters again: only theirs are replaced (a failed run leaves its chapter to the build)
    assert chapters.fill_build_cache([bad], cache_dir, replace_all=False) == 0
    assert get_cache(str(cache_dir)).match_cache_notebook(nbformat.read(sources[0], as_version=4)).uri == record.uri
    assert chapters.fill_build_cache([chapters.ChapterRun(ok.source, ok.executed, 0.0, "failed")], cache_dir,
                                     replace_all=False) == 0
    with pytest.raises(KeyError):
        get_cache(str(cache_dir)).match_cache_notebook(nbformat.read(sources[0], as_version=4))
    # the whole book again: an older run never lingers
    chapters.fill_build_cache(runs, cache_dir)
    assert chapters.fill_build_cache([], cache_dir) == 0
    with pytest.raises(KeyError):
        get_cache(str(cache_dir)).match_cache_notebook(nbformat.read(sources[0], as_version=4))


def test_the_command_refuses_an_unknown_chapter(capsys):
    assert main(["chapters", "no_such_chapter"]) == 2
    assert "genvae: error: no chapter matches 'no_such_chapter'" in capsys.readouterr().err


@pytest.mark.parametrize("flags, reuse", [([], True), (["--rerun"], False)])
def test_the_command_reuses_unchanged_chapters_unless_told_to_rerun(flags, reuse, monkeypatch, tmp_path, capsys):
    seen = {}

    def fake_execute_all(sources, out, **kw):
        seen.update(kw)
        return [chapters.ChapterRun(p, out / p.name, 0.0, reused=kw["reuse"]) for p in sources]

    monkeypatch.setattr(chapters, "execute_all", fake_execute_all)
    assert main(["chapters", "01_", "--out", str(tmp_path)] + flags) == 0
    assert seen["reuse"] is reuse
    assert ("1 reused" in capsys.readouterr().out) is reuse


@pytest.mark.slow
def test_an_unchanged_chapter_is_reused_and_any_change_runs_it_again(tmp_path, monkeypatch):
    import os
    import time

    from genvae.settings import cache_root

    root = _book(tmp_path, {"01_a": ["import random\nprint(random.random())"], "02_b": ["print('b')"]})
    a, b = chapters.chapter_paths(root)
    out = tmp_path / "out"

    def run():
        logged = []
        runs = chapters.execute_all([a, b], out, jobs=1, cwd=root / "book", log=logged.append, reuse=True)
        assert [r.source for r in runs] == [a, b] and all(r.ok for r in runs)  # the toc's order, whatever ran
        return {r.source.stem: r for r in runs}, logged

    first, _ = run()
    assert not first["01_a"].reused and not first["02_b"].reused
    printed = nbformat.read(first["01_a"].executed, as_version=4).cells[0].outputs[0]["text"]
    old = time.time() - 3600
    os.utime(a, (old, old))

    again, logged = run()  # nothing changed: nothing runs, and the outputs are those of the first run
    assert again["01_a"].reused and again["02_b"].reused and again["01_a"].seconds == 0.0
    assert nbformat.read(again["01_a"].executed, as_version=4).cells[0].outputs[0]["text"] == printed
    assert any("not run again" in line for line in logged) and os.path.getmtime(a) == pytest.approx(old)

    nb = nbformat.read(b, as_version=4)  # an edited notebook runs again, the other is still reused
    nb.cells[0].source = "print('b, edited')"
    nbformat.write(nb, b)
    edited, _ = run()
    assert edited["01_a"].reused and not edited["02_b"].reused
    assert "edited" in nbformat.read(edited["02_b"].executed, as_version=4).cells[0].outputs[0]["text"]

    monkeypatch.setenv("GENVAE_QUICK", "1")  # another mode: every chapter runs again
    quick, _ = run()
    assert not quick["01_a"].reused and not quick["02_b"].reused
    assert os.path.getmtime(a) > old + 1800  # a chapter that ran is touched: an incremental build reads it again
    assert run()[0]["01_a"].reused

    entry = cache_root() / "vae_d2-0123456789abcdef"  # a model trained (or imported) since: every chapter runs again
    entry.mkdir(parents=True)
    (entry / "model.safetensors").write_bytes(b"weights")
    retrained, _ = run()
    assert not retrained["01_a"].reused and not retrained["02_b"].reused

    (out / chapters.FINGERPRINTS).write_text("{not json")  # a damaged record reuses nothing and loses nothing
    assert not run()[0]["01_a"].reused
    (out / "01_a.ipynb").unlink()  # an executed notebook gone: that chapter runs
    assert not run()[0]["01_a"].reused
