"""Data loading from the offline copy, and clear errors for missing or corrupt files."""

from __future__ import annotations

import shutil

import pytest
import torch

from genvae import data

FILES = list(data.DATASETS["mnist"].md5)


def test_mnist_loads_as_in_memory_tensors(mnist):
    assert mnist.x_train.shape == (60_000, 1, 28, 28) and mnist.x_test.shape == (10_000, 1, 28, 28)
    assert mnist.x_train.dtype == torch.float32 and mnist.y_train.dtype == torch.int64
    assert 0.0 == mnist.x_train.min() and mnist.x_train.max() == 1.0
    # Known facts of the official files: first label 5, 6,742 ones in training.
    assert int(mnist.y_train[0]) == 5
    assert int((mnist.y_train == 1).sum()) == 6742
    assert torch.bincount(mnist.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_fashion_mnist_loads():
    fm = data.load("fashion-mnist")
    assert fm.x_train.shape == (60_000, 1, 28, 28)
    assert torch.bincount(fm.y_train).tolist() == [6000] * 10  # balanced by construction
    assert fm.classes[9] == "Ankle boot"


def test_validation_split_and_subset_are_disjoint_and_seeded():
    d = data.load("mnist", val_size=5000, train_size=2000, seed=3)
    assert len(d.x_val) == 5000 and len(d.x_train) == 2000
    d2 = data.load("mnist", val_size=5000, train_size=2000, seed=3)
    assert torch.equal(d.x_train, d2.x_train) and torch.equal(d.y_val, d2.y_val)
    full = data.load("mnist")
    # No training image is also a validation image (compare by content hash of a few pixels rows).
    key = lambda x: {hash(t.numpy().tobytes()) for t in x}  # noqa: E731
    assert not key(d.x_train) & key(d.x_val)
    assert len(full.x_val) == 0


@pytest.mark.parametrize("kw", [dict(val_size=-1), dict(val_size=60_000), dict(train_size=0), dict(train_size=70_000)])
def test_bad_split_sizes(kw):
    with pytest.raises(ValueError):
        data.load("mnist", **kw)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="fashion-mnist"):
        data.load("cifar")


def test_missing_files_name_the_folder_and_the_four_files(tmp_path):
    with pytest.raises(data.DataNotFoundError) as err:
        data.load("mnist", root=tmp_path, download=False)
    msg = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in msg
    for f in FILES:
        assert f in msg
    assert "GENVAE_DATA" in msg


def test_failed_download_is_reported(tmp_path, monkeypatch):
    import torchvision

    class Offline:
        def __init__(self, *a, **k):
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: no network")

    monkeypatch.setattr(torchvision.datasets, "MNIST", Offline)
    with pytest.raises(data.DataNotFoundError, match="no network"):
        data.load("mnist", root=tmp_path / "fresh", download=True)


def _copy_mnist(tmp_path):
    src = data.data_root() / "MNIST" / "raw"
    dst = tmp_path / "MNIST" / "raw"
    dst.mkdir(parents=True)
    for f in FILES:
        shutil.copy(src / f, dst / f)
    return dst


def test_truncated_file_is_detected(tmp_path):
    raw = _copy_mnist(tmp_path)
    path = raw / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(data.DataCorruptError, match="t10k-images-idx3-ubyte"):
        data.load("mnist", root=tmp_path, download=False)
    assert data.check("mnist", tmp_path)["t10k-images-idx3-ubyte"] == "checksum mismatch"


def test_flipped_byte_is_detected(tmp_path):
    raw = _copy_mnist(tmp_path)
    path = raw / "train-labels-idx1-ubyte"
    blob = bytearray(path.read_bytes())
    blob[100] ^= 0xFF  # same size, different content: only a checksum can tell
    path.write_bytes(bytes(blob))
    with pytest.raises(data.DataCorruptError, match="MD5"):
        data.load("mnist", root=tmp_path, download=False)


def test_check_reports_each_file(tmp_path):
    assert set(data.check("mnist").values()) == {"ok"}
    assert set(data.check("mnist", tmp_path).values()) == {"missing"}


def test_binarize_is_seeded_and_binary():
    x = torch.full((2, 1, 28, 28), 0.3)
    a = data.binarize(x, torch.Generator().manual_seed(0))
    b = data.binarize(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0}
    assert 0.2 < float(a.mean()) < 0.4


def test_read_idx_agrees_with_torchvision(mnist):
    import torchvision

    from genvae.data import read_idx
    from genvae.settings import data_root

    ref = torchvision.datasets.MNIST(str(data_root()), train=False, download=False)
    images = read_idx(data_root() / "MNIST" / "raw" / "t10k-images-idx3-ubyte")
    labels = read_idx(data_root() / "MNIST" / "raw" / "t10k-labels-idx1-ubyte")
    assert torch.equal(images, ref.data) and torch.equal(labels.long(), ref.targets)
    assert torch.equal(mnist.x_test, ref.data.float().div(255).unsqueeze(1))


def test_read_idx_refuses_what_is_not_idx(tmp_path):
    from genvae.data import DataCorruptError, read_idx

    (tmp_path / "bad").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05abc")  # says 5 values, holds 3
    with pytest.raises(DataCorruptError, match="header says"):
        read_idx(tmp_path / "bad")
    (tmp_path / "text").write_bytes(b"hello world")
    with pytest.raises(DataCorruptError, match="not an IDX"):
        read_idx(tmp_path / "text")
