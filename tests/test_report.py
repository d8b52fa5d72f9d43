"""genvae.report: glued values, verdict words, Markdown tables, the quick-mode note."""

import json

import pandas as pd
import pytest

from genvae import report


def test_table_from_rows_formats_and_escapes():
    md = report.table([{"model": "a|b", "E[log p(x|z)]": 0.123456, "n": 12544, "ok": True}], floatfmt="{:.3f}")
    header, rule, row = md.splitlines()
    assert header == "| model | E[log p(x\\|z)] | n | ok |"  # a pipe in a header would split the column
    assert rule == "|---|---|---|---|"
    assert row == "| a\\|b | 0.123 | 12,544 | yes |"


def test_table_from_a_dataframe_keeps_its_index():
    frame = pd.DataFrame({"MSE": [0.5, 0.25]}, index=pd.Index([2, 16], name="d"))
    assert report.table(frame, floatfmt="{:.2f}").splitlines()[2:] == ["| 2 | 0.50 |", "| 16 | 0.25 |"]
    with pytest.raises(ValueError):
        report.table([])


def test_a_nan_cell_reads_as_not_applicable_and_infinities_stay():
    md = report.table([{"model": "GAN", "MSE": float("nan"), "KL": float("inf"), "FD": -float("inf")}])
    assert md.splitlines()[2] == "| GAN | – | inf | -inf |"


def test_verdicts_and_counts():
    assert report.verdict(0.03 < 0.04, "below", "above") == "below"
    assert report.verdict(0.05 < 0.04, "below", "above") == "above"
    assert report.how_often([True, False, True], "seed") == "in 2 of 3 seeds"
    assert report.how_often([True], "size") == "in 1 of 1 size"
    with pytest.raises(ValueError):
        report.how_often([], "seed")


def test_quick_note_only_in_quick_mode(monkeypatch):
    shown = []
    monkeypatch.setattr(report, "show", shown.append)
    report.quick_note()
    assert shown == []
    monkeypatch.setenv("GENVAE_QUICK", "1")
    report.quick_note()
    assert len(shown) == 1 and "quick mode" in shown[0] and shown[0].startswith("<div class=\"admonition note\">")
    json.dumps(shown)  # plain text


def test_dataset_note_names_the_data_set_and_its_classes(monkeypatch):
    shown = []
    monkeypatch.setattr(report, "show", shown.append)
    assert report.dataset_note("mnist") is None and shown == []
    text = report.dataset_note("fashion-mnist")
    assert shown == [text] and text.startswith("<div class=\"admonition note\">") and text.endswith("</div>") and "\n" not in text
    assert "Fashion-MNIST" in text and "Ankle boot" in text and "T-shirt/top" in text
    with pytest.raises(KeyError):
        report.dataset_note("cifar")


def test_digits_only_skips_with_a_note_on_other_data_sets(monkeypatch):
    shown = []
    monkeypatch.setattr(report, "show", shown.append)
    assert report.digits_only("mnist", "the 3~8 claim") is True and shown == []
    assert report.digits_only("fashion-mnist", "the 3~8 claim") is False
    assert len(shown) == 1 and "skipped on fashion-mnist" in shown[0] and "3~8" in shown[0]


def test_noun_follows_the_data_set():
    from genvae import report

    assert report.noun("mnist") == "digits" and report.noun("mnist", plural=False) == "digit"
    assert report.noun("fashion-mnist") == "clothing images"
    assert report.noun("something-else", plural=False) == "image"
