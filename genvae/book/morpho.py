"""Digit morphometrics measured from pixels: area, stroke thickness, slant, width and height.

Our own implementation of the standard measures of Castro et al. (2019),
*Morpho-MNIST*, so that chapter 11 can say "thicker" or "more slanted" with a
number instead of by eye. Every function takes images ``(N, 1, H, W)`` (or a
single image ``(H, W)``, treated as ``N = 1``) with values in [0, 1] and returns
a float32 tensor ``(N,)`` on the CPU.

Definitions (all on the binary image ``images >= threshold``; pixel coordinates
are column ``x`` to the right and row ``r`` downwards, measured at pixel centres):

- **area**: the number of foreground pixels, in pixels.
- **slant**: the shear angle, in **degrees**, that best explains the foreground
  as an upright shape leaning over. With central moments ``mu11 = sum (x - x̄)(r - r̄)``
  and ``mu02 = sum (r - r̄)²``, the least-squares fit of ``x`` on height
  ``-(r - r̄)`` has slope ``s = -mu11 / mu02`` and ``slant = atan(s)``. Positive
  means the top is to the right of the bottom, like italics; a bar sheared by
  ``θ`` (each row shifted right by ``tan θ`` per row upwards) measures ``θ``.
  A shape on a single row (``mu02 = 0``) has slant 0.
- **width**: the horizontal extent after removing the slant: each foreground
  pixel's ``x`` is moved to ``x - s · (r̄ - r)``, and the extent is the
  98th minus the 2nd percentile of those positions plus one pixel (so an
  upright bar ``w`` pixels wide measures exactly ``w``; the percentiles ignore
  a stray pixel or two).
- **height**: the same extent over the rows (shearing does not move rows).
- **thickness**: the mean stroke thickness ``t``, from the area ``A`` and the
  skeleton (Zhang–Suen thinning, 8-connected, one pixel wide). We model the
  digit as strokes of constant thickness ``t`` along the skeleton, with caps
  reaching ``t / 2`` past each of its ``e`` end points, so
  ``A = t · (L + e · t / 2)``, where ``L`` is the skeleton's length (edges
  between 4-neighbours count 1, diagonal edges √2, plus half a pixel at each
  end point) and ``t`` is the positive root. For a closed loop (``e = 0``) this
  is the classic ``A / L``. The cap term matters: thinning shortens a stroke by
  about ``t`` in all, so plain ``A / L`` would put an upright 5×18 bar at 6.9 px;
  with the caps it measures 5.0. Zhang–Suen leaves staircase pixels on slanted
  strokes (two 4-connected steps where one diagonal step would do); we drop
  them before measuring ``L``. Slanted strokes still read a little thin
  (a 4-px bar sheared by 15° measures 3.4 px against ``4 cos 15° = 3.9``),
  because a jagged digital line is longer than the line it approximates.
  Why not ``2 × mean distance transform on the skeleton``: on a pixel grid the
  skeleton of an even-width stroke lies off centre, so that estimate (with the
  half-pixel correction, ``2d - 1``) gives ``w`` for odd widths but ``w - 1`` for
  even ones: bars 3 and 4 px wide would tie.

Empty images (no pixel at or above the threshold) give NaN for every measure
except area, which is 0. On the 10,000 MNIST test digits the median thickness
is 2.5 px (5th–95th percentile 1.6–4.1), the median slant 5° (−18° to 28°),
the mean width 4.5 px for "1"s and 15.8 px for "0"s.

Speed: the thinning is vectorised over the batch, the rest is closed form;
:func:`measure` takes about 5 s for 10,000 MNIST digits on two CPU cores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "Morphometrics", "measure", "binarise", "skeleton",
    "area", "thickness", "slant", "width", "height", "threshold_gap",
]

_LOW_Q, _HIGH_Q = 0.02, 0.98
_CHUNK = 2048  # images thinned at once: bounds memory, keeps the loop vectorised


@dataclass(frozen=True)
class Morphometrics:
    """Measured attributes of a batch of images, each a float32 tensor ``(N,)``.

    Units: pixels for area (pixel count), thickness, width and height; degrees
    for slant (positive = leaning right). NaN where an image has no foreground
    (area is 0 there).
    """

    area: torch.Tensor
    thickness: torch.Tensor
    slant: torch.Tensor
    width: torch.Tensor
    height: torch.Tensor

    def __len__(self) -> int:
        return len(self.area)

    def as_dict(self) -> dict[str, torch.Tensor]:
        """The attributes by name, in declaration order."""
        return {"area": self.area, "thickness": self.thickness, "slant": self.slant,
                "width": self.width, "height": self.height}


# --------------------------------------------------------------------------- input


def binarise(images: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Foreground mask ``images >= threshold``, bool ``(N, H, W)``.

    Args:
        images: ``(N, 1, H, W)`` or ``(H, W)``, values in [0, 1].
        threshold: in (0, 1].

    Raises:
        ValueError: another shape, a value outside [0, 1] (or NaN), or a
            threshold outside (0, 1].
    """
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if images.dim() == 2:
        images = images[None, None]
    if images.dim() != 4 or images.shape[1] != 1 or images.shape[-1] < 1 or images.shape[-2] < 1:
        raise ValueError(f"images must be (N, 1, H, W) or (H, W), got {tuple(images.shape)}")
    x = images.detach().to("cpu", torch.float32)[:, 0]
    if x.numel() and not bool(((x >= 0) & (x <= 1)).all()):  # NaN fails both comparisons
        raise ValueError(f"image values must lie in [0, 1], got min {x.min().item():g}, max {x.max().item():g}"
                         " (NaN counts as out of range; divide 0–255 images by 255)")
    return x >= threshold


# --------------------------------------------------------------------------- skeleton


def _neighbours(b: torch.Tensor) -> list[torch.Tensor]:
    """The 8 neighbours P2..P9 of every pixel (N, E clockwise from north), each ``(N, H, W)`` uint8."""
    p = F.pad(b, (1, 1, 1, 1))
    h, w = b.shape[-2:]
    offsets = [(-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)]
    return [p[:, 1 + dr:1 + dr + h, 1 + dc:1 + dc + w] for dr, dc in offsets]


def _zhang_suen(mask: torch.Tensor) -> torch.Tensor:
    """Zhang–Suen (1984) thinning of a bool ``(N, H, W)`` batch, all images in parallel, then :func:`_drop_corners`."""
    b = mask.to(torch.uint8)
    while True:
        changed = False
        for first in (True, False):
            p2, p3, p4, p5, p6, p7, p8, p9 = nb = _neighbours(b)
            count = sum(q.to(torch.int16) for q in nb)  # B(P1): foreground neighbours
            ring = nb + [p2]
            crossings = sum(((ring[i] == 0) & (ring[i + 1] == 1)).to(torch.int16) for i in range(8))  # A(P1)
            if first:
                side = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                side = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            remove = (b == 1) & (count >= 2) & (count <= 6) & (crossings == 1) & side
            if bool(remove.any()):
                b = b * (~remove).to(torch.uint8)
                changed = True
        if not changed:
            return _drop_corners(b.bool())


def _drop_corners(skel: torch.Tensor) -> torch.Tensor:
    """Remove staircase pixels that Zhang–Suen leaves: a pixel whose two perpendicular 4-neighbours
    (N and E, say) touch diagonally anyway and whose removal keeps its neighbours 8-connected
    (Yokoi connectivity number 1). Such a step costs 2 px of length instead of √2. Done in four
    2×2 subfields so that no two pixels removed together are neighbours; repeated until stable."""
    b = skel.to(torch.uint8)
    h, w = b.shape[-2:]
    r = torch.arange(h).view(h, 1)
    c = torch.arange(w).view(1, w)
    fields = [((r % 2 == i) & (c % 2 == j)) for i in (0, 1) for j in (0, 1)]
    while True:
        changed = False
        for field in fields:
            n, ne, e, se, s, sw, w_, nw = _neighbours(b)
            ring = [1 - q for q in (e, ne, n, nw, w_, sw, s, se, e)]  # complements, counterclockwise from E
            yokoi = sum(ring[k] - ring[k] * ring[k + 1] * ring[k + 2] for k in (0, 2, 4, 6))
            corner = (n & e) | (e & s) | (s & w_) | (w_ & n)
            remove = (b == 1) & field & (corner == 1) & (yokoi == 1)
            if bool(remove.any()):
                b = b * (~remove).to(torch.uint8)
                changed = True
        if not changed:
            return b.bool()


def skeleton(images: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """One-pixel-wide, 8-connected skeleton (Zhang–Suen thinning) of the binarised images, bool ``(N, H, W)``."""
    mask = binarise(images, threshold)
    return torch.cat([_zhang_suen(m) for m in mask.split(_CHUNK)]) if len(mask) else mask


def _skeleton_length(skel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Length ``L`` (float64 ``(N,)``, see the module docstring) and number of end points ``e`` of skeletons ``(N, H, W)``."""
    s = skel.to(torch.float64)
    straight = (s[:, :, :-1] * s[:, :, 1:]).sum((1, 2)) + (s[:, :-1, :] * s[:, 1:, :]).sum((1, 2))
    # a diagonal step counts only where no 4-connected corner pixel already joins the two pixels
    down_right = s[:, :-1, :-1] * s[:, 1:, 1:] * (1 - s[:, :-1, 1:]) * (1 - s[:, 1:, :-1])
    down_left = s[:, :-1, 1:] * s[:, 1:, :-1] * (1 - s[:, :-1, :-1]) * (1 - s[:, 1:, 1:])
    diagonal = (down_right + down_left).sum((1, 2))
    degree = sum(q.to(torch.float64) for q in _neighbours(skel.to(torch.uint8)))
    ends = ((degree == 1) & skel).sum((1, 2)) + 2 * ((degree == 0) & skel).sum((1, 2))  # a dot has two ends
    ends = ends.to(torch.float64)
    return straight + math.sqrt(2) * diagonal + 0.5 * ends, ends


def _thickness(mask: torch.Tensor, skel: torch.Tensor) -> torch.Tensor:
    a = mask.sum((1, 2)).to(torch.float64)
    length, ends = _skeleton_length(skel)
    # positive root of (e/2) t² + L t - A = 0, written to stay exact when e = 0
    t = 2 * a / (length + torch.sqrt(length ** 2 + 2 * ends * a))
    t = torch.where(length > 0, t, a.sqrt())  # thinning erased everything (a 2×2 blob): a square's side
    return torch.where(a > 0, t, torch.full_like(t, math.nan)).float()


# --------------------------------------------------------------------------- moments


def _coordinates(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Column and row grids ``(1, H, W)`` float64, and the per-image foreground count ``(N,)``."""
    h, w = mask.shape[-2:]
    rows = torch.arange(h, dtype=torch.float64).view(1, h, 1).expand(1, h, w)
    cols = torch.arange(w, dtype=torch.float64).view(1, 1, w).expand(1, h, w)
    return cols, rows, mask.sum((1, 2)).to(torch.float64)


def _shear(mask: torch.Tensor) -> torch.Tensor:
    """Least-squares shear ``s = -mu11 / mu02`` per image, float64 ``(N,)``; NaN when empty, 0 on one row."""
    m = mask.to(torch.float64)
    cols, rows, n = _coordinates(mask)
    safe = n.clamp(min=1)[:, None, None]
    dx = cols - (m * cols).sum((1, 2), keepdim=True) / safe
    dr = rows - (m * rows).sum((1, 2), keepdim=True) / safe
    mu11 = (m * dx * dr).sum((1, 2))
    mu02 = (m * dr * dr).sum((1, 2))
    s = torch.where(mu02 > 1e-9, -mu11 / mu02.clamp(min=1e-9), torch.zeros_like(mu11))
    return torch.where(n > 0, s, torch.full_like(s, math.nan))


def _extent(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """98th minus 2nd percentile (linear interpolation) of ``values`` over each image's foreground, plus 1; NaN when empty."""
    n = mask.flatten(1).sum(1)
    v = torch.where(mask, values, torch.full_like(values, math.inf)).flatten(1).sort(dim=1).values
    last = (n - 1).clamp(min=0).to(torch.float64)

    def quantile(q: float) -> torch.Tensor:
        pos = q * last
        lo = pos.floor().long()
        hi = pos.ceil().long()
        a, b = v.gather(1, lo[:, None])[:, 0], v.gather(1, hi[:, None])[:, 0]
        return a + (pos - lo) * torch.where(hi > lo, b - a, torch.zeros_like(a))

    e = quantile(_HIGH_Q) - quantile(_LOW_Q) + 1
    return torch.where(n > 0, e, torch.full_like(e, math.nan))


def _width(mask: torch.Tensor, shear: torch.Tensor) -> torch.Tensor:
    cols, rows, n = _coordinates(mask)
    safe = n.clamp(min=1)[:, None, None]
    r_mean = (mask * rows).sum((1, 2), keepdim=True) / safe
    upright = cols - torch.nan_to_num(shear)[:, None, None] * (r_mean - rows)
    return _extent(upright, mask).float()


def _height(mask: torch.Tensor) -> torch.Tensor:
    _, rows, _ = _coordinates(mask)
    return _extent(rows.expand(mask.shape), mask).float()


# --------------------------------------------------------------------------- public measures


def area(images: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Number of pixels ``>= threshold`` per image, float32 ``(N,)`` (0 for an empty image)."""
    return binarise(images, threshold).sum((1, 2)).float()


def thickness(images: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Mean stroke thickness in pixels, float32 ``(N,)``: area over skeleton length with end caps (module docstring); NaN if empty."""
    mask = binarise(images, threshold)
    return _thickness(mask, skeleton(images, threshold))


def slant(images: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Shear angle in degrees, float32 ``(N,)``, ``atan(-mu11 / mu02)``: positive leans right (italics); NaN if empty."""
    return torch.rad2deg(torch.atan(_shear(binarise(images, threshold)))).float()


def width(images: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Horizontal extent in pixels after undoing the slant (2nd–98th percentile, +1), float32 ``(N,)``; NaN if empty."""
    mask = binarise(images, threshold)
    return _width(mask, _shear(mask))


def height(images: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Vertical extent in pixels (2nd–98th percentile of rows, +1), float32 ``(N,)``; NaN if empty."""
    return _height(binarise(images, threshold))


def measure(images: torch.Tensor, threshold: float = 0.5) -> Morphometrics:
    """All measures at once (one binarisation, one thinning).

    Args:
        images: ``(N, 1, H, W)`` or ``(H, W)`` (then ``N = 1``), values in [0, 1],
            on any device; measured on the CPU.
        threshold: foreground is ``images >= threshold``.

    Returns:
        :class:`Morphometrics`, each field float32 ``(N,)``; NaN (area 0) for empty images.

    Raises:
        ValueError: wrong shape, values outside [0, 1], or a threshold outside (0, 1].
    """
    mask = binarise(images, threshold)
    skel = torch.cat([_zhang_suen(m) for m in mask.split(_CHUNK)]) if len(mask) else mask
    shear = _shear(mask)
    return Morphometrics(
        area=mask.sum((1, 2)).float(),
        thickness=_thickness(mask, skel),
        slant=torch.rad2deg(torch.atan(shear)).float(),
        width=_width(mask, shear),
        height=_height(mask),
    )


def threshold_gap(images: torch.Tensor, attribute: str = "thickness", low: float = 0.3,
                  high: float = 0.7) -> torch.Tensor:
    """How much an attribute depends on where the image is binarised: the attribute measured with
    foreground ``images >= low`` minus the same attribute with ``images >= high``, ``(N,)``.

    Every measure here binarises first (at 0.5 by default), so a blurred image, whose stroke edges are
    grey, reads thicker or thinner depending on the threshold: a near-binary real digit gives a gap
    near 0, a decoder's blurred output a larger one. NaN where either binarisation is empty.
    """
    if not 0.0 < low < high <= 1.0:
        raise ValueError(f"need 0 < low < high <= 1, got low={low}, high={high}")
    names = ("area", "thickness", "slant", "width", "height")
    if attribute not in names:
        raise ValueError(f"attribute must be one of {names}, got {attribute!r}")
    return measure(images, low).as_dict()[attribute] - measure(images, high).as_dict()[attribute]
