"""The intuition figures render and show the nodes, arrows and numbers they promise."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from genvae import diagrams, posterior  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_graphical_model_has_the_vae_nodes_arrows_and_plate():
    ax = diagrams.graphical_model()
    p = diagrams.parts(ax)
    assert p["nodes"] == {"z": "latent", "x": "observed", "theta": "parameter", "phi": "parameter"}
    assert set(p["arrows"]) == {("z", "x"), ("theta", "x"), ("x", "z"), ("phi", "z")}
    # generative arrows solid, inference arrows dashed
    solid = lambda a: a.get_linestyle() in ("-", "solid")
    assert solid(p["arrows"][("z", "x")]) and solid(p["arrows"][("theta", "x")])
    assert not solid(p["arrows"][("x", "z")]) and not solid(p["arrows"][("phi", "z")])
    assert any(patch.get_gid() == "plate:N" for patch in ax.patches) and "$N$" in p["texts"]
    assert any("q_\\phi(z \\mid x)" in t for t in p["texts"]) and any("p_\\theta(x \\mid z)" in t for t in p["texts"])
    ax.figure.canvas.draw()  # renders (mathtext included)


def test_reparameterisation_shows_where_randomness_enters_and_where_the_gradient_flows():
    left, right = diagrams.reparameterisation()
    before, after = diagrams.parts(left), diagrams.parts(right)
    # without the trick, z itself is random and the gradient stops there
    assert before["nodes"]["z"] == "random" and "eps" not in before["nodes"]
    assert set(before["grads"]) == {("loss", "z")}
    # with it, z, mu and sigma are deterministic, eps is the only random node
    assert after["nodes"]["z"] == after["nodes"]["mu"] == after["nodes"]["sigma"] == "deterministic"
    assert [n for n, k in after["nodes"].items() if k == "random"] == ["eps"]
    assert ("eps", "z") in after["arrows"]
    assert {("loss", "z"), ("z", "mu"), ("z", "sigma")} <= set(after["grads"])
    assert not any("eps" in edge for edge in after["grads"])  # no gradient into the noise
    right.figure.canvas.draw()


def test_elbo_gap_figure_shows_the_split_of_log_px():
    gauss = lambda z: torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1) - 3.0  # log p(x) = -3
    r = posterior.posterior_from_log_joint(gauss, torch.tensor([0.4, 0.0]), torch.tensor([-1.0, -0.5]), n=151)
    assert r.log_px == pytest.approx(-3.0, abs=1e-5)
    fig = diagrams.elbo_gap([r], torch.rand(1, 1, 28, 28), iwae=[-3.1])
    bar_ax = fig.axes[3]
    bar = [p for p in bar_ax.patches if p.get_height() > 0][0]
    assert bar.get_y() == pytest.approx(r.elbo) and bar.get_y() + bar.get_height() == pytest.approx(-3.0, abs=1e-5)
    labels = bar_ax.get_legend_handles_labels()[1]
    assert any(l.startswith("ELBO") for l in labels) and any(l.startswith("log p(x)") for l in labels)
    assert any(l.startswith("IWAE") for l in labels)
    assert math.isclose(r.gap, -3.0 - r.elbo, abs_tol=1e-5) and r.gap > 0
    fig.canvas.draw()
