"""Package helpers chapter 6 measures with: collapse flags, the judge's confident share, grid codes."""

import matplotlib

matplotlib.use("Agg")
import pytest  # noqa: E402
import torch  # noqa: E402

from genvae import latent, metrics, plots  # noqa: E402
from genvae.models import ModelConfig, build_model  # noqa: E402


def test_is_collapsed_reads_counts_and_reports():
    assert metrics.is_collapsed(0) and not metrics.is_collapsed(3)
    assert metrics.is_collapsed({"active units": 0}) and not metrics.is_collapsed({"active units": 1})
    # codes that never move: 0 active units, hence collapsed
    z = torch.zeros(100, 2) + 1e-3 * torch.randn(100, 2, generator=torch.Generator().manual_seed(0))
    assert metrics.is_collapsed(metrics.active_units(z))


def test_confident_share_counts_top_probabilities_above_the_threshold():
    probs = torch.tensor([[0.6, 0.3, 0.1], [0.5, 0.5, 0.0], [0.2, 0.2, 0.6], [0.34, 0.33, 0.33]])
    j = metrics.Judgement(probs, torch.zeros(4, 1))
    assert metrics.confident_share(j) == pytest.approx(0.5)  # 0.6 and 0.6; 0.5 is not above 0.5
    assert metrics.confident_share(j, threshold=0.3) == pytest.approx(1.0)


def test_grid_codes_are_the_codes_latent_grid_draws():
    codes = latent.grid_codes(3, (-1, 1, -2, 2))
    assert codes.tolist() == [[-1, 2], [0, 2], [1, 2], [-1, 0], [0, 0], [1, 0], [-1, -2], [0, -2], [1, -2]]
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model(ModelConfig("vae", latent_dim=3, hidden=(8,)))
    plane = latent.CodePlane(torch.randn(50, 3, generator=torch.Generator().manual_seed(1)))
    lifted = latent.grid_codes(4, plane=plane)
    assert lifted.shape == (16, 3) and torch.allclose(plane.project(lifted), latent.grid_codes(4), atol=1e-5)
    ax = plots.latent_grid(model, n=4, plane=plane)
    expected = plots.tile(latent.decode(model, lifted), 4, pad=0)
    assert torch.allclose(torch.as_tensor(ax.images[0].get_array()).float(), torch.as_tensor(expected).float())


def test_class_borders_marks_cells_with_a_neighbour_of_another_class():
    pred = torch.tensor([[0, 0, 1], [0, 0, 1], [2, 2, 2]]).reshape(-1)
    border = latent.class_borders(pred, 3).reshape(3, 3)
    assert border.tolist() == [[False, True, True], [True, True, True], [True, True, True]]
    assert not latent.class_borders(torch.zeros(16, dtype=torch.long), 4).any()


def test_encode_gaussian_gives_the_encoders_mu_and_logvar():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model(ModelConfig("vae", latent_dim=3, hidden=(8,)))
    x = torch.rand(10, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    mu, logvar = latent.encode_gaussian(model, x, batch_size=4)
    want_mu, want_lv = model.encode(x)
    assert mu.shape == logvar.shape == (10, 3)
    assert torch.allclose(mu, want_mu.detach(), atol=1e-6) and torch.allclose(logvar, want_lv.detach(), atol=1e-6)
