"""The shared parts of the exercise checkers (genvae.exercises): each check tells right from wrong."""

import torch

from genvae.exercises import compare, compare_tensors, not_attempted


def test_compare_accepts_the_right_number_and_names_the_error_of_a_wrong_one():
    assert compare(0.5, 0.5 + 1e-8, "x").ok is True
    wrong = compare(1.0, 0.5, "x")
    assert wrong.ok is False and "factor of 2" in wrong.message
    flipped = compare(-0.5, 0.5, "x")
    assert flipped.ok is False and "sign" in flipped.message
    assert compare("abc", 0.5, "x").ok is False
    assert compare(float("nan"), 0.5, "x").ok is False


def test_compare_tensors_checks_type_shape_and_values():
    ref = torch.arange(6.0).view(2, 3)
    assert compare_tensors(ref.clone(), ref, "z").ok is True
    assert "shape" in compare_tensors(ref.view(3, 2), ref, "z").message
    assert "torch.Tensor" in compare_tensors(ref.tolist(), ref, "z").message
    off = ref.clone()
    off[1, 2] += 1
    bad = compare_tensors(off, ref, "z")
    assert bad.ok is False and "flat index 5" in bad.message
    assert "sign" in compare_tensors(-ref - 1, -(-ref - 1), "z").message


def test_an_answer_not_attempted_is_neither_right_nor_wrong():
    r = not_attempted("`my_kl`")
    assert r.ok is None and not bool(r) and "my_kl" in r.message and "not attempted" in r._repr_markdown_()
