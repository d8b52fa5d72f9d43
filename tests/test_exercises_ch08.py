"""Chapter 8's checker (genvae.exercises.ch08) accepts a slerp path and names what is wrong with others."""

import torch

from genvae import latent
from genvae.exercises import ch08


def slerp(c_a, c_b, n_frames):
    t = torch.linspace(0, 1, n_frames, dtype=c_a.dtype)[:, None]
    u_a, u_b = c_a / c_a.norm(), c_b / c_b.norm()
    omega = torch.arccos((u_a @ u_b).clamp(-1, 1))
    return ((1 - t) * c_a.norm() + t * c_b.norm()) * (torch.sin((1 - t) * omega) * u_a + torch.sin(t * omega) * u_b) / torch.sin(omega)


def test_a_right_slerp_passes_and_the_reference_has_its_properties():
    assert ch08.check_slerp_path(slerp).ok is True
    assert ch08.check_slerp_path(ch08.reference_slerp_path).ok is True
    a, b = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 2.0])
    path = ch08.reference_slerp_path(a, b, 5)
    assert torch.allclose(path.norm(dim=1), torch.full((5,), 2.0))  # equal norms: the arc keeps the norm
    assert torch.allclose(ch08.angles_from(a, path), torch.linspace(0, torch.pi / 2, 5))


def test_an_answer_left_as_none_is_not_attempted():
    assert ch08.check_slerp_path(None).ok is None
    assert ch08.check_slerp_path(lambda c_a, c_b, n: None).ok is None


def test_the_straight_line_is_recognised():
    result = ch08.check_slerp_path(latent.line_path)
    assert result.ok is False and "straight line" in result.message


def test_slerp_of_the_raw_codes_is_named_when_the_norms_differ():
    def raw(c_a, c_b, n):
        t = torch.linspace(0, 1, n, dtype=c_a.dtype)[:, None]
        omega = torch.arccos((c_a @ c_b / (c_a.norm() * c_b.norm())).clamp(-1, 1))
        return (torch.sin((1 - t) * omega) * c_a + torch.sin(t * omega) * c_b) / torch.sin(omega)

    result = ch08.check_slerp_path(raw)
    assert result.ok is False and "raw codes" in result.message


def test_uneven_angles_wrong_norms_wrong_ends_and_shapes_fail_without_raising():
    def uneven(c_a, c_b, n):  # the right arc, but frames bunched towards c_a (t squared)
        t = torch.linspace(0, 1, n, dtype=c_a.dtype) ** 2
        return torch.stack([slerp(c_a, c_b, 1001)[int(round(float(s) * 1000))] for s in t])

    assert "angle" in ch08.check_slerp_path(uneven).message

    def constant_norm(c_a, c_b, n):  # the right directions at the norm of c_a, rescaled only at the end
        p = slerp(c_a, c_b, n)
        p[1:-1] = p[1:-1] / p[1:-1].norm(dim=1, keepdim=True) * c_a.norm()
        return p

    assert "norm" in ch08.check_slerp_path(constant_norm).message
    assert "start at c_a" in ch08.check_slerp_path(lambda c_a, c_b, n: slerp(c_b, c_a, n)).message
    assert "shape" in ch08.check_slerp_path(lambda c_a, c_b, n: slerp(c_a, c_b, n).T).message
    assert "ZeroDivisionError" in ch08.check_slerp_path(lambda c_a, c_b, n: 1 / 0).message

    def off_plane(c_a, c_b, n):
        p = slerp(c_a, c_b, n)
        if len(c_a) > 2:
            p[1:-1, :] += torch.tensor([1.0, -1.0, 0.5], dtype=p.dtype) * 0.1
        return p

    assert "plane" in ch08.check_slerp_path(off_plane).message
