"""The latent explorer: what a point shows (against direct decoder and classifier calls), the loop through the
class centres, the static animation (frames, self-contained HTML) and the live sliders."""

import base64
import io
import json
import math
import re

import numpy as np
import pytest
import torch
from PIL import Image

from genvae import explorer, latent
from genvae.models import ModelConfig, build_model


def _models(latent_dim=2):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        vae = build_model(ModelConfig("vae", latent_dim=latent_dim, hidden=(16,))).eval()
        judge = build_model(ModelConfig("classifier", channels=(4, 8), hidden=(16,))).eval()
    return vae, judge


def _codes(n=400, k=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    angle = 2 * math.pi * y / k
    z = 2 * torch.stack([torch.cos(angle), torch.sin(angle)], 1) + 0.3 * torch.randn(n, 2, generator=g)  # (n, 2)
    return z, y


def test_frames_are_the_decoder_and_the_classifier_called_directly():
    vae, judge = _models()
    points = torch.tensor([[0.0, 0.0], [1.5, -0.5], [-2.0, 2.5]])
    got = explorer.frames(vae, judge, points)
    with torch.no_grad():
        images = torch.sigmoid(vae.decoder(points)).view(-1, 1, 28, 28)  # the mean image: sigmoid of the logits
        probs = torch.softmax(judge(images).logits, 1)
    assert len(got) == 3
    for f, p, im, pr in zip(got, points, images, probs):
        assert torch.equal(f.point, p) and torch.equal(f.z, p)
        assert torch.allclose(f.image, im, atol=1e-6)
        assert torch.allclose(f.probs, pr, atol=1e-6)
        assert f.pred == int(pr.argmax()) and f.confidence == pytest.approx(float(pr.max()))


def test_frames_lift_plane_points_to_codes():
    vae, judge = _models(latent_dim=3)
    z = torch.randn(200, 3, generator=torch.Generator().manual_seed(1)) * torch.tensor([3.0, 1.0, 0.2])
    plane = latent.CodePlane(z)
    points = torch.tensor([[0.5, 0.5], [-1.0, 0.0]])
    got = explorer.frames(vae, judge, points, plane)
    codes = torch.stack([f.z for f in got])
    assert codes.shape == (2, 3)
    assert torch.allclose(plane.project(codes), points, atol=1e-5)  # the codes lie on the plane, at the points
    with torch.no_grad():
        assert torch.allclose(got[1].image, vae.generate(codes[1:2])[0], atol=1e-6)


def test_centroid_loop_goes_round_the_class_centres():
    # four classes placed at exactly known centres: east, north, west, south
    centres = torch.tensor([[2.0, 0.0], [0.0, 2.0], [-2.0, 0.0], [0.0, -2.0]])
    offsets = torch.tensor([[0.1, 0.1], [-0.1, -0.1], [0.1, -0.1], [-0.1, 0.1]])  # zero mean per class
    z = (centres[:, None] + offsets[None]).reshape(-1, 2)
    y = torch.arange(4).repeat_interleave(4)
    loop = explorer.centroid_loop(z, y, frames_per_leg=5)
    assert len(loop) == 4 * 4 and loop.points.shape == (16, 2)
    assert loop.order == [3, 0, 1, 2]  # by angle from -pi: south, east, north, west
    assert torch.allclose(loop.points[loop.centre_frames], centres[loop.order], atol=1e-6)
    expected_mid = (centres[loop.order] + centres[loop.order[1:] + loop.order[:1]]) / 2
    assert torch.allclose(loop.points[loop.mid_frames], expected_mid, atol=1e-6)
    steps = (loop.points.roll(-1, 0) - loop.points).norm(dim=1)  # closed: the last frame steps back to the first
    assert torch.allclose(steps, steps[0].expand(16), atol=1e-5)
    with pytest.raises(ValueError, match="odd"):
        explorer.centroid_loop(z, y, frames_per_leg=4)
    collapsed = explorer.centroid_loop(torch.zeros(8, 2), torch.arange(8) % 4, frames_per_leg=3)  # centres coincide
    assert torch.equal(collapsed.points, torch.zeros(8, 2))


def _player_frames(html: str) -> list[str]:
    return json.loads(re.search(r'<script type="application/json">(.*?)</script>', html, re.S).group(1))


def test_animation_is_self_contained_html_with_one_frame_per_point():
    vae, judge = _models()
    z, y = _codes()
    loop = explorer.centroid_loop(z, y, frames_per_leg=3)
    path = explorer.frames(vae, judge, loop.points)
    html = explorer.animation_html(path, z, y)
    urls = _player_frames(html)
    assert len(urls) == len(loop) == 20
    assert f'max="{len(urls) - 1}"' in html and f"1 / {len(urls)}" in html
    assert re.search(r'<img src="([^"]+)"', html).group(1) == urls[0]  # shown even without JavaScript
    # Nothing from the network, no widget state: the static book must work offline.
    assert not re.search(r"https?://|//cdn|unpkg|jsdelivr|widget", html)
    sizes = set()
    for url in urls:
        assert url.startswith("data:image/png;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        sizes.add(image.size)
    width = round(explorer.FIGSIZE[0] * explorer.DPI)
    assert sizes == {(width, round(explorer.FIGSIZE[1] * explorer.DPI))} and 700 <= width <= 800
    assert f'width="{width}"' in html and "max-width" in html  # the column's width; shrinks with a narrower one
    assert len(set(urls)) == len(urls)  # every frame shows something else
    with pytest.raises(ValueError, match="at least one frame"):
        explorer.animation_html([], z, y)


def test_a_frame_draws_what_a_full_redraw_draws():
    """Frames are drawn over a saved background (blitting); the result must be the whole figure's drawing."""
    vae, judge = _models()
    z, y = _codes()
    fig = explorer.ExplorerFigure(z, y, extent=(-3, 3, -3, 3))
    first, second = explorer.frames(vae, judge, torch.tensor([[-1.0, 1.0], [1.0, -2.0]]))
    fig.render(first)
    fast = fig.render(second).astype(int)
    for artist in fig.changing:
        artist.set_animated(False)
    fig.draw(second)
    fig.canvas.draw()
    full = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)
    differ = np.abs(fast - full).max(-1) > 16
    assert differ.mean() < 0.002  # anti-aliasing at the changing artists' edges, nothing more
    # and the palette PNG keeps the page's white and the decoded image
    png = Image.open(io.BytesIO(fig.png(second, colors=64))).convert("RGB")
    assert png.getpixel((1, 1)) == (255, 255, 255)
    assert np.abs(np.asarray(png).astype(int) - fast).mean() < 2


def test_the_sliders_move_the_point_and_redraw():
    pytest.importorskip("ipywidgets")
    vae, judge = _models()
    z, y = _codes()
    live = explorer.widget(vae, judge, z, y, start=(0.0, 0.0))
    before = live.image.value
    assert before[:8] == b"\x89PNG\r\n\x1a\n" and torch.equal(live.frame.point, torch.tensor([0.0, 0.0]))
    live.sliders[0].value = 1.5
    live.sliders[1].value = -0.75
    with torch.no_grad():
        expected = vae.generate(torch.tensor([[1.5, -0.75]]))[0]
        probs = torch.softmax(judge(expected[None]).logits, 1)[0]
    assert torch.allclose(live.frame.point, torch.tensor([1.5, -0.75]))
    assert torch.allclose(live.frame.image, expected, atol=1e-6) and torch.allclose(live.frame.probs, probs, atol=1e-6)
    assert live.image.value != before
    assert np.allclose(live.figure.image.get_array(), expected[0].numpy(), atol=1e-6)  # the figure shows it
    assert np.allclose(live.figure.marker.get_offsets(), [[1.5, -0.75]])
    assert [b.get_height() for b in live.figure.bars] == pytest.approx(probs.tolist(), abs=1e-6)


def test_show_picks_sliders_or_the_animation():
    vae, judge = _models()
    z, y = _codes()
    loop = explorer.centroid_loop(z, y, frames_per_leg=3)
    static = explorer.show(vae, judge, z, y, path=loop, interactive=False)
    assert len(_player_frames(static.data)) == len(loop)
    pytest.importorskip("ipywidgets")
    live = explorer.show(vae, judge, z, y, path=loop, interactive=True)
    assert isinstance(live, explorer.LatentExplorer)
    assert torch.allclose(live.frame.point, loop.points[0])  # starts where the loop starts
