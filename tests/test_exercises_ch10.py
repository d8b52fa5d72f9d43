"""Chapter 10's exercise checker: the feature reconstruction loss, right and wrong."""

from genvae.exercises import ch10


def test_the_right_loss_passes_and_none_is_not_attempted():
    assert ch10.check_feature_loss(lambda r, f: 0.5 * (r - f).pow(2).sum(1).mean()).ok is True
    assert ch10.check_feature_loss(None).ok is None
    assert ch10.check_feature_loss(lambda r, f: None).ok is None


def test_wrong_losses_fail_with_the_slip_named():
    doubled = ch10.check_feature_loss(lambda r, f: (r - f).pow(2).sum(1).mean())
    assert doubled.ok is False and "1/2" in doubled.message
    mean_features = ch10.check_feature_loss(lambda r, f: 0.5 * (r - f).pow(2).mean())
    assert mean_features.ok is False and "averages over the features" in mean_features.message
    batch_sum = ch10.check_feature_loss(lambda r, f: 0.5 * (r - f).pow(2).sum())
    assert batch_sum.ok is False and "sums over the batch" in batch_sum.message
    unreduced = ch10.check_feature_loss(lambda r, f: 0.5 * (r - f).pow(2).sum(1))
    assert unreduced.ok is False and "0-d" in unreduced.message
    assert ch10.check_feature_loss(lambda r, f: (r - f).abs().sum(1).mean()).ok is False
    assert ch10.check_feature_loss(lambda r, f: 1 / 0).ok is False
    assert ch10.check_feature_loss(lambda r, f: 3.0).ok is False
