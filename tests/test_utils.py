"""genvae.utils: batched, the one inference loop of the package; ConfigDict, the configs' dict round trip."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from genvae.models import ModelConfig
from genvae.outputs import DiscriminatorOutput
from genvae.utils import ConfigDict, batched


class Recorder(nn.Module):
    """A linear map that records the batch sizes it sees, whether it ran in training mode and with gradients."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.calls = []

    def forward(self, x, y=None):
        self.calls.append((len(x), self.training, torch.is_grad_enabled()))
        out = self.lin(x)
        return out if y is None else out + y[:, None]


def test_batched_equals_one_pass_and_restores_the_mode():
    model = Recorder().train()
    x, y = torch.randn(10, 3), torch.arange(10.0)
    out = batched(model, model, x, y, batch_size=4)
    assert [c[0] for c in model.calls] == [4, 4, 2]
    assert not any(training or grad for _, training, grad in model.calls)  # eval mode, no gradients
    assert model.training  # the caller's mode comes back
    with torch.no_grad():
        torch.testing.assert_close(out, model.lin(x) + y[:, None])
    assert out.device.type == "cpu" and not out.requires_grad


def test_batched_concatenates_each_field_of_a_dataclass():
    model = Recorder()
    x = torch.randn(7, 3)
    out = batched(model, lambda xb: DiscriminatorOutput(logits=model(xb)[:, 0], features=model(xb)), x, batch_size=3)
    assert type(out) is DiscriminatorOutput and out.logits.shape == (7,) and out.features.shape == (7, 2)
    torch.testing.assert_close(out.logits, out.features[:, 0])


def test_batched_concatenates_each_part_of_a_tuple_and_keeps_per_batch_sums_in_order():
    model = Recorder()
    x = torch.randn(7, 3)
    a, b = batched(model, lambda xb: (model(xb), -model(xb)[:, :1]), x, batch_size=3)
    assert a.shape == (7, 2) and b.shape == (7, 1)
    torch.testing.assert_close(b[:, 0], -a[:, 0])
    sums = batched(model, lambda xb: model(xb).sum()[None], x, batch_size=3)  # one (1,) sum per batch
    with torch.no_grad():
        expected = torch.stack([model.lin(c).sum() for c in x.split(3)])
    assert sums.shape == (3,) and torch.equal(sums, expected)


def test_batched_needs_a_tensor():
    with pytest.raises(ValueError, match="at least one tensor"):
        batched(Recorder(), lambda: None)


@dataclasses.dataclass(frozen=True)
class _Config(ConfigDict):
    size: int = 2
    widths: tuple[int, ...] = (3, 4)
    name: str | None = None


def test_config_dict_is_asdict_and_back():
    c = _Config(size=5)
    assert c.to_dict() == {"size": 5, "widths": (3, 4), "name": None} == dataclasses.asdict(c)
    assert list(c.to_dict()) == ["size", "widths", "name"]  # field order, as asdict gives it
    assert _Config.from_dict(c.to_dict()) == c and _Config.from_dict({}) == _Config()


def test_config_dict_names_unknown_fields_and_its_class():
    with pytest.raises(ValueError, match=r"^unknown _Config fields: \['colour', 'depth'\]$"):
        _Config.from_dict({"size": 1, "depth": 2, "colour": 3})
    with pytest.raises(ValueError, match=r"^unknown ModelConfig fields: \['bogus'\]$"):
        ModelConfig.from_dict({"kind": "ae", "bogus": 1})
