"""Chapter 11's checker tells a right attribute direction from the usual wrong ones, and never raises."""

import torch

from genvae import arithmetic
from genvae.exercises import ch11


def right(codes, values, labels, k):
    mine = (labels == k) & torch.isfinite(values)
    v = values[mine]
    low, high = torch.quantile(v, 0.25), torch.quantile(v, 0.75)
    return codes[mine][v >= high].mean(0) - codes[mine][v <= low].mean(0)


def test_the_right_direction_passes_and_matches_the_package():
    assert ch11.check_attribute_direction(right).ok is True
    case = ch11.direction_cases()
    ref = arithmetic.attribute_directions(case["codes"], case["values"], case["labels"], 3)
    torch.testing.assert_close(right(case["codes"], case["values"], case["labels"], 2), ref[2])


def test_not_attempted_is_neither_right_nor_wrong():
    assert ch11.check_attribute_direction(None).ok is None
    assert ch11.check_attribute_direction(lambda c, v, y, k: None).ok is None


def test_each_usual_slip_is_named():
    flipped = ch11.check_attribute_direction(lambda c, v, y, k: -right(c, v, y, k))
    assert flipped.ok is False and "sign" in flipped.message

    def median(c, v, y, k):
        mine = (y == k) & torch.isfinite(v)
        m = v[mine].median()
        return c[mine][v[mine] > m].mean(0) - c[mine][v[mine] <= m].mean(0)

    assert "median" in ch11.check_attribute_direction(median).message

    def every_class(c, v, y, k):
        return right(c, v, torch.zeros_like(y), 0)

    assert "other classes" in ch11.check_attribute_direction(every_class).message

    def keeps_nan(c, v, y, k):
        mine = y == k
        vv = v[mine]
        low, high = torch.nanquantile(vv, 0.25), torch.nanquantile(vv, 0.75)
        return c[mine][vv >= high].mean(0) - c[mine][vv <= low].mean(0) + 0 * vv.sum()

    assert "NaN" in ch11.check_attribute_direction(keeps_nan).message
    assert "alone" in ch11.check_attribute_direction(
        lambda c, v, y, k: arithmetic.attribute_directions(c, v, y, 3)).message


def test_a_broken_answer_is_reported_not_raised():
    def broken(c, v, y, k):
        raise RuntimeError("oops")

    res = ch11.check_attribute_direction(broken)
    assert res.ok is False and "RuntimeError" in res.message
    assert ch11.check_attribute_direction(lambda c, v, y, k: [0.0] * 4).ok is False
    assert ch11.check_attribute_direction(lambda c, v, y, k: torch.zeros(3)).ok is False


def right_input(z, y, n_classes):
    return torch.cat([z, torch.nn.functional.one_hot(y, n_classes).to(z.dtype)], dim=1)


def test_the_right_decoder_input_passes_on_made_up_codes_and_on_a_cvae():
    from genvae.models import ModelConfig, build_model

    assert ch11.check_decoder_input(right_input).ok is True
    torch.manual_seed(0)
    cvae = build_model(ModelConfig("cvae", latent_dim=3, hidden=(16,)))
    res = ch11.check_decoder_input(right_input, cvae)
    assert res.ok is True and "model.decode" in res.message
    assert ch11.check_decoder_input(None).ok is None
    assert ch11.check_decoder_input(lambda z, y, k: None).ok is None


def test_wrong_decoder_inputs_are_named():
    as_number = ch11.check_decoder_input(lambda z, y, k: torch.cat([z, y[:, None].float()], 1))
    assert as_number.ok is False and "one-hot" in as_number.message
    swapped = ch11.check_decoder_input(lambda z, y, k: torch.cat([torch.nn.functional.one_hot(y, k).float(), z], 1))
    assert swapped.ok is False and "first" in swapped.message
    wrong_dtype = ch11.check_decoder_input(lambda z, y, k: right_input(z, y, k).double())
    assert wrong_dtype.ok is False and "dtype" in wrong_dtype.message
    off_by_one = ch11.check_decoder_input(lambda z, y, k: right_input(z, (y + 1) % k, k))
    assert off_by_one.ok is False
    assert ch11.check_decoder_input(lambda z, y, k: 1 / 0).ok is False
