"""Chapter 4's exercise checkers tell right layer formulas from wrong ones, and say what is wrong."""

from genvae.exercises import ch04


def test_the_right_formulas_pass():
    assert ch04.check_conv_output_size(lambda n, k, s, p: (n + 2 * p - k) // s + 1).ok is True
    assert ch04.check_transposed_output_size(lambda n, k, s, p: (n - 1) * s - 2 * p + k).ok is True
    assert ch04.check_conv_parameters(lambda ci, co, k: co * (ci * k * k + 1)).ok is True


def test_answers_not_attempted_are_neither_right_nor_wrong():
    for check in (ch04.check_conv_output_size, ch04.check_transposed_output_size, ch04.check_conv_parameters):
        assert check(None).ok is None


def test_common_slips_in_the_output_size_are_named():
    no_plus_one = ch04.check_conv_output_size(lambda n, k, s, p: (n + 2 * p - k) // s)
    assert no_plus_one.ok is False and "+1" in no_plus_one.message
    no_padding = ch04.check_conv_output_size(lambda n, k, s, p: (n - k) // s + 1)
    assert no_padding.ok is False and "padding" in no_padding.message
    not_rounded = ch04.check_conv_output_size(lambda n, k, s, p: (n + 2 * p - k) / s + 1)
    assert not_rounded.ok is False and "round down" in not_rounded.message
    doubling = ch04.check_transposed_output_size(lambda n, k, s, p: s * n)
    assert doubling.ok is False and "chapter's layers only" in doubling.message


def test_common_slips_in_the_parameter_count_are_named():
    no_bias = ch04.check_conv_parameters(lambda ci, co, k: co * ci * k * k)
    assert no_bias.ok is False and "bias" in no_bias.message
    one_channel = ch04.check_conv_parameters(lambda ci, co, k: co * (k * k + 1))
    assert one_channel.ok is False and "every input channel" in one_channel.message


def test_a_function_that_raises_is_reported_not_raised():
    bad = ch04.check_conv_output_size(lambda n, k, s, p: 1 / 0)
    assert bad.ok is False and "ZeroDivisionError" in bad.message


def test_the_denoising_loss_check_tells_right_from_wrong():
    import torch

    assert ch04.check_denoising_loss(ch04.reference_denoising_loss).ok is True
    assert ch04.check_denoising_loss(None).ok is None

    def noisy_target(model, x, sigma, generator):
        noisy = (x + sigma * torch.randn(x.shape, generator=generator)).clamp(0, 1)
        return (model(noisy).x_hat - noisy).pow(2).mean()

    bad = ch04.check_denoising_loss(noisy_target)
    assert bad.ok is False and "clean" in bad.message

    def no_clip(model, x, sigma, generator):
        return (model(x + sigma * torch.randn(x.shape, generator=generator)).x_hat - x).pow(2).mean()

    bad = ch04.check_denoising_loss(no_clip)  # the model refuses values outside [0, 1]: reported, not raised
    assert bad.ok is False and "[0, 1]" in bad.message

    def detached(model, x, sigma, generator):
        return ch04.reference_denoising_loss(model, x, sigma, generator).detach()

    assert "gradient" in ch04.check_denoising_loss(detached).message


def test_train_with_loss_lowers_the_loss_and_is_seeded():
    import torch

    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0)).round()
    a = ch04.train_with_loss(ch04.reference_denoising_loss, x, latent_dim=2, steps=5, batch_size=8)
    b = ch04.train_with_loss(ch04.reference_denoising_loss, x, latent_dim=2, steps=5, batch_size=8)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
