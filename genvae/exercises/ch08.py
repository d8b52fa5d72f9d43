"""Chapter 8's exercise checker: the learner writes a slerp path between two codes.

A slerp path turns the direction of c_a into the direction of c_b at a constant angular speed, in the plane the
two codes span, while its norm moves linearly from ‖c_a‖ to ‖c_b‖. :func:`check_slerp_path` calls the learner's
``path_fn(c_a, c_b, n_frames) -> (n_frames, D)`` on a few pairs of codes and checks, in this order: the shape,
the two end points, that every point lies in the plane of c_a and c_b, the angles (frame i sits at the angle
i·Ω/(n_frames - 1) from c_a, Ω the angle between the codes) and the norms. A straight line and slerp applied
to the raw vectors are recognised and named.

    >>> from genvae.exercises import ch08
    >>> ch08.check_slerp_path(ch08.reference_slerp_path).ok
    True
    >>> from genvae import latent
    >>> ch08.check_slerp_path(latent.line_path).ok
    False
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..analysis.latent import line_path
from . import Result, call_answer, compare_tensors, failed, not_attempted, passed

__all__ = ["CASES", "check_slerp_path", "reference_slerp_path", "angles_from"]

# (c_a, c_b, n_frames): equal norms at a right angle; a wide angle with unequal norms; a 3-D pair with unequal
# norms (the points must stay in the plane of the two codes).
CASES = (
    ((2.0, 0.0), (0.0, 2.0), 5),
    ((3.0, 1.0), (-1.0, 2.5), 7),
    ((1.0, 2.0, 0.5), (-2.0, 1.0, 1.5), 9),
)


def reference_slerp_path(c_a: Tensor, c_b: Tensor, n_frames: int) -> Tensor:
    """The checker's own answer, ``(n_frames, D)``: slerp of the unit directions, linear in the norm."""
    t = torch.linspace(0, 1, n_frames, dtype=c_a.dtype)[:, None]
    norm_a, norm_b = c_a.norm(), c_b.norm()
    u_a, u_b = c_a / norm_a, c_b / norm_b
    omega = torch.arccos((u_a @ u_b).clamp(-1, 1))
    direction = (torch.sin((1 - t) * omega) * u_a + torch.sin(t * omega) * u_b) / torch.sin(omega)
    return ((1 - t) * norm_a + t * norm_b) * direction


def angles_from(c_a: Tensor, points: Tensor) -> Tensor:
    """The angle (radians) between ``c_a`` ``(D,)`` and each row of ``points`` ``(F, D)``, accurate near 0."""
    u = c_a / c_a.norm()
    along = points @ u
    across = (points - along[:, None] * u).norm(dim=1)
    return torch.atan2(across, along)


def _raw_slerp(c_a: Tensor, c_b: Tensor, n_frames: int) -> Tensor:
    """Slerp's textbook formula applied to the raw vectors (right only when the norms are equal)."""
    t = torch.linspace(0, 1, n_frames, dtype=c_a.dtype)[:, None]
    omega = torch.arccos((c_a @ c_b / (c_a.norm() * c_b.norm())).clamp(-1, 1))
    return (torch.sin((1 - t) * omega) * c_a + torch.sin(t * omega) * c_b) / torch.sin(omega)


def _close(a: Tensor, b: Tensor, atol: float = 1e-4) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-4, atol=atol))


def check_slerp_path(path_fn) -> Result:
    """Check ``path_fn(c_a, c_b, n_frames) -> (n_frames, D)`` on every pair of :data:`CASES`; the message names
    the first property that fails (shape, ends, plane, angles, norms)."""
    if path_fn is None:
        return not_attempted("`my_slerp_path`")
    for a, b, n in CASES:
        c_a, c_b = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
        where = f"from {list(a)} to {list(b)} in {n} frames"
        got, raised = call_answer(lambda: path_fn(c_a.clone(), c_b.clone(), n), doing=f"{where}: it")
        if raised is not None:
            return raised
        if got is None:
            return not_attempted("`my_slerp_path` (it returned None)")
        if not isinstance(got, Tensor):
            return failed(f"{where}: it returned a {type(got).__name__}, not a torch.Tensor")
        if tuple(got.shape) != (n, len(a)):
            return failed(f"{where}: the path has shape {tuple(got.shape)}, expected ({n}, {len(a)}): one row per frame")
        got = got.detach().double()
        if not torch.isfinite(got).all():
            return failed(f"{where}: the path holds NaN or infinite values")
        if not (_close(got[0], c_a) and _close(got[-1], c_b)):
            return failed(f"{where}: the path should start at c_a and end at c_b; it runs from "
                          f"{[round(v, 4) for v in got[0].tolist()]} to {[round(v, 4) for v in got[-1].tolist()]}")
        reference = reference_slerp_path(c_a, c_b, n)
        if _close(got, reference):
            continue
        if _close(got, line_path(c_a, c_b, n)):
            return failed(f"{where}: this is the straight line r(d) of the chapter. Its direction does not turn at a "
                          "constant speed, and its norm sags between the ends; slerp walks along an arc instead")
        basis, _ = torch.linalg.qr(torch.stack([c_a, c_b], dim=1))  # (D, 2): the plane of c_a and c_b
        off_plane = (got - got @ basis @ basis.T).norm(dim=1).max()
        if off_plane > 1e-4:
            return failed(f"{where}: the path leaves the plane of c_a and c_b (by up to {float(off_plane):.3g}); every "
                          "point should be a combination of the two codes")
        if _close(got, _raw_slerp(c_a, c_b, n)):
            return failed(f"{where}: this is slerp's formula applied to the raw codes, which turns evenly only when "
                          "the two norms are equal. Slerp the unit directions c/‖c‖, and move the norm linearly "
                          "from ‖c_a‖ to ‖c_b‖")
        omega = float(angles_from(c_a, c_b[None])[0])
        angles, expected = angles_from(c_a, got), torch.linspace(0, omega, n, dtype=torch.float64)
        if not _close(angles, expected):
            i = int((angles - expected).abs().argmax())
            return failed(f"{where}: the angle to c_a should grow evenly, by Ω/{n - 1} per frame (Ω = "
                          f"{math.degrees(omega):.1f}° between the codes); frame {i} is at "
                          f"{math.degrees(float(angles[i])):.2f}°, expected {math.degrees(float(expected[i])):.2f}°")
        norms = got.norm(dim=1)
        expected_norms = torch.linspace(float(c_a.norm()), float(c_b.norm()), n, dtype=torch.float64)
        if not _close(norms, expected_norms):
            i = int((norms - expected_norms).abs().argmax())
            return failed(f"{where}: the norm should move linearly from ‖c_a‖ = {float(c_a.norm()):.3f} to ‖c_b‖ = "
                          f"{float(c_b.norm()):.3f}; frame {i} has norm {float(norms[i]):.4f}, expected "
                          f"{float(expected_norms[i]):.4f}")
        return compare_tensors(got, reference, f"the path {where}")
    return passed(f"on all {len(CASES)} pairs the path starts and ends at the two codes, stays in their plane, turns "
                  "at a constant angular speed, and its norm moves linearly")
