"""Every chapter runs top to bottom, in quick mode, with a non-default value for each of its parameters.

Each parameter cell promises that papermill can override its values; this test keeps that promise. The
table below must name every parameter of every chapter (a new parameter without an entry fails
``test_every_parameter_has_a_value``), so no parameter escapes the matrix.
"""

import ast
import json
import os
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]*_*.ipynb"))

# One non-default value per parameter; each chapter runs once with all of them. Every chapter runs on
# Fashion-MNIST here (nbval and the quick book build run them on MNIST), so both data sets are tested
# without an extra run per chapter.
FASHION = dict(dataset="fashion-mnist")
MATRIX = {
    "01_generative_models": dict(**FASHION, n_train=300, n_test=1000, n_components=4, mass=0.8, seed=1),
    "02_autoencoders": dict(**FASHION, latent_dim=3, latent_sizes=[3, 8], n_show=6),
    "03_latent_space": dict(**FASHION, seeds=[0, 1], claims=[[1, 7]], top=3, knn_k=3, style_r=0.4),
    "04_convolutional_autoencoders": dict(**FASHION, latent_dim=3, latent_sizes=[3], n_show=6, knn_k=3, noise_seed=1),
    "05_kl_divergence": dict(**FASHION, n_pairs=1000, n_mc=2000, mc_n_max=5000, n_repeats=10, batch=8, latent_dim=3,
                             gd_steps=50, lr=0.1, seed=1),
    "06_variational_autoencoders": dict(**FASHION, latent_dim=3, latent_dim_large=8, n_show=6, n_samples=64,
                                        iwae_k_gaussian=20, iwae_images=100, quality_samples=500),
    "06b_likelihood_and_explorer": dict(**FASHION, latent_dim=3, iwae_k=20, iwae_images=100),
    "07_multistage_vae": dict(**FASHION, betas=[0.5, 2.0], beta=2.0, gamma=5.0, gammas=[1.0, 5.0], latent_dim=3, knn_k=3),
    "08_transitions": dict(**FASHION, beta=2.0, gamma=5.0, betas=[1.0, 2.0], latent_dim=3, n_frames=8, pair=[1, 7],
                           frames_per_leg=6, n_samples=500),
    "09_gans": dict(**FASHION, latent_dim=16, failure_seeds=[1], n_samples=500, n_frames=6),
    "10_vae_gan": dict(**FASHION, latent_dim=16, vae_latent_dim=8, n_samples=500, n_show=6, gamma_sweep=[0.01]),
    # MNIST here: on Fashion-MNIST the digit parts are skipped, and this run must reach them too.
    "11_conditional_vae": dict(latent_dim=4, gamma=5.0, n_eval=400, n_sources=50, n_sweep=6, steps=[-1.0, 0.0, 1.0],
                               n_analogies=60, analogy_pair=[2, 5], dataset="mnist"),
    "12_diffusion": dict(**FASHION, n_samples=100, ddim_steps=[4], n_ancestral=2, bpd_images=6, bpd_samples=2),
    "13_flow_matching": dict(**FASHION, n_samples=100, evaluations=[4], toy_steps=200, ll_images=4, ll_steps=3,
                             latent_dim=8, latent_steps=200),
    "14_scoreboard": dict(**FASHION, n_samples=100, seeds=[0, 1], pixel_evaluations=2, likelihood_images=4,
                          likelihood_effort=2, latent_steps=100, generators=["VAE, d = 2", "AE + latent flow, d = 16"]),
}


def parameters(path: Path) -> set[str]:
    """The names a chapter's ``parameters`` cell assigns."""
    for cell in json.loads(path.read_text())["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            names = set()
            for node in ast.parse("".join(cell["source"])).body:
                if isinstance(node, ast.Assign):
                    for target in node.targets:
                        elts = target.elts if isinstance(target, ast.Tuple) else [target]
                        names |= {t.id for t in elts if isinstance(t, ast.Name)}
            return names
    raise AssertionError(f"{path.name} has no cell tagged 'parameters'")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_parameter_has_a_value(path):
    assert path.stem in MATRIX, f"add {path.stem} to MATRIX"
    assert parameters(path) == set(MATRIX[path.stem]), "MATRIX must name exactly the chapter's parameters"


@pytest.mark.slow
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_runs_with_other_parameters(path, tmp_path, monkeypatch, chapters_cache):
    papermill = pytest.importorskip("papermill")
    monkeypatch.setenv("GENVAE_QUICK", "1")
    monkeypatch.setenv("GENVAE_CACHE", str(chapters_cache))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    papermill.execute_notebook(
        str(path), str(tmp_path / path.name), parameters=MATRIX[path.stem], cwd=str(BOOK),
        kernel_name="python3", progress_bar=False, log_output=False,
    )
    ran = json.loads((tmp_path / path.name).read_text())
    errors = [o for c in ran["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors and os.path.getsize(tmp_path / path.name) > 0
