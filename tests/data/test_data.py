"""Tests for neuro_pc.data: digits split, MNIST idx/npz parsing and errors, MNIST-1D."""
from __future__ import annotations

import gzip
import random
import struct
from pathlib import Path

import numpy as np
import pytest

from neuro_pc.data import (Dataset, load_dataset, load_digits, load_mnist, load_mnist1d,
                           read_idx_images, read_idx_labels)

IDX_NAMES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
             "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


# ---------------------------------------------------------------- helpers

def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def _idx3(images: np.ndarray, magic: int = 0x00000803) -> bytes:
    n, rows, cols = images.shape
    return struct.pack(">IIII", magic, n, rows, cols) + images.tobytes()


def _idx1(labels: np.ndarray, magic: int = 0x00000801) -> bytes:
    return struct.pack(">II", magic, len(labels)) + labels.astype(np.uint8).tobytes()


def _write(path: Path, payload: bytes, gz: bool) -> None:
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)


def _mnist_dir(root: Path, gz: bool = False, n_train: int = 5, n_test: int = 3, **override):
    """Write a tiny MNIST directory; ``override`` maps a key of IDX_NAMES to raw bytes."""
    data = {"x_train": _images(n_train, 1), "y_train": np.arange(n_train) % 10,
            "x_test": _images(n_test, 2), "y_test": (np.arange(n_test) + 3) % 10}
    payloads = {"train_images": _idx3(data["x_train"]), "train_labels": _idx1(data["y_train"]),
                "test_images": _idx3(data["x_test"]), "test_labels": _idx1(data["y_test"])}
    payloads.update(override)
    root.mkdir(parents=True, exist_ok=True)
    for key, payload in payloads.items():
        if payload is not None:
            _write(root / IDX_NAMES[key], payload, gz)
    return data


# ---------------------------------------------------------------- Dataset

def test_dataset_one_hot_and_n_features():
    ds = Dataset(np.zeros((3, 4)), np.array([0, 2, 1]), np.zeros((1, 4)), np.array([2]),
                 n_classes=3, name="toy")
    assert ds.n_features == 4
    oh = ds.one_hot(ds.y_train)
    assert oh.dtype == np.float64 and oh.shape == (3, 3)
    np.testing.assert_array_equal(oh.argmax(1), ds.y_train)
    np.testing.assert_array_equal(oh.sum(1), 1.0)
    with pytest.raises(ValueError, match="labels must lie"):
        ds.one_hot(np.array([3]))
    with pytest.raises(Exception):
        ds.name = "other"  # frozen


def test_dataset_rejects_bad_shapes():
    with pytest.raises(ValueError, match="labels"):
        Dataset(np.zeros((3, 4)), np.zeros(2, int), np.zeros((1, 4)), np.zeros(1, int), 2, "x")
    with pytest.raises(ValueError, match="features"):
        Dataset(np.zeros((3, 4)), np.zeros(3, int), np.zeros((1, 5)), np.zeros(1, int), 2, "x")


# ---------------------------------------------------------------- digits

def test_digits_split_sizes_dtypes_range():
    ds = load_digits()
    assert (len(ds.y_train), len(ds.y_test)) == (1347, 450)
    assert ds.x_train.shape == (1347, 64) and ds.x_test.shape == (450, 64)
    assert ds.x_train.dtype == np.float64 and ds.y_train.dtype == np.int64
    assert ds.n_classes == 10 and ds.n_features == 64 and ds.name == "digits"
    for x in (ds.x_train, ds.x_test):
        assert x.min() >= 0.0 and x.max() <= 1.0
    assert ds.x_train.max() == 1.0
    raw = load_digits(scale=False)
    assert raw.x_train.max() == 16.0
    np.testing.assert_allclose(raw.x_train / 16.0, ds.x_train)


def test_digits_split_is_stratified():
    ds = load_digits()
    y_all = np.concatenate([ds.y_train, ds.y_test])
    frac = len(ds.y_test) / len(y_all)
    counts_all = np.bincount(y_all, minlength=10)
    counts_test = np.bincount(ds.y_test, minlength=10)
    assert np.all(np.abs(counts_test - frac * counts_all) <= 1.0)


def test_digits_deterministic_per_seed_and_differs_across_seeds():
    a, b, c = load_digits(seed=0), load_digits(seed=0), load_digits(seed=1)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert a.x_train.shape == c.x_train.shape
    assert not np.array_equal(a.x_train, c.x_train)


# ---------------------------------------------------------------- MNIST idx / npz

@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_mnist_idx_round_trip(tmp_path, gz):
    data = _mnist_dir(tmp_path, gz=gz)
    ds = load_mnist(tmp_path)
    assert ds.x_train.shape == (5, 784) and ds.x_test.shape == (3, 784)
    assert ds.x_train.dtype == np.float64 and ds.y_train.dtype == np.int64
    np.testing.assert_array_equal(ds.x_train, data["x_train"].reshape(5, -1) / 255.0)
    np.testing.assert_array_equal(ds.y_train, data["y_train"])
    np.testing.assert_array_equal(ds.x_test, data["x_test"].reshape(3, -1) / 255.0)
    np.testing.assert_array_equal(ds.y_test, data["y_test"])
    assert ds.n_classes == 10 and ds.name == "mnist"
    suffix = ".gz" if gz else ""
    img = read_idx_images(tmp_path / (IDX_NAMES["train_images"] + suffix))
    assert img.dtype == np.uint8 and img.shape == (5, 28, 28)
    np.testing.assert_array_equal(img, data["x_train"])
    np.testing.assert_array_equal(read_idx_labels(tmp_path / (IDX_NAMES["train_labels"] + suffix)),
                                  data["y_train"])


def test_mnist_limits_and_dispatch(tmp_path):
    _mnist_dir(tmp_path)
    ds = load_mnist(tmp_path, limit_train=2, limit_test=1)
    assert ds.x_train.shape == (2, 784) and ds.x_test.shape == (1, 784)
    full = load_mnist(tmp_path)
    np.testing.assert_array_equal(ds.x_train, full.x_train[:2])
    for spec in (f"mnist:{tmp_path}", str(tmp_path), tmp_path):
        np.testing.assert_array_equal(load_dataset(spec).y_train, full.y_train)
    with pytest.raises(ValueError, match="limit_train"):
        load_mnist(tmp_path, limit_train=0)


def test_mnist_npz_layout(tmp_path):
    x_tr, x_te = _images(4, 3), _images(2, 4)
    y_tr, y_te = np.array([1, 2, 3, 4], np.uint8), np.array([9, 0], np.uint8)
    file = tmp_path / "mnist.npz"
    np.savez(file, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    ds = load_mnist(file)
    np.testing.assert_array_equal(ds.x_train, x_tr.reshape(4, -1) / 255.0)
    np.testing.assert_array_equal(ds.y_test, y_te)
    np.testing.assert_array_equal(load_dataset(str(file)).x_test, ds.x_test)

    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=x_tr, y_train=y_tr)
    with pytest.raises(ValueError, match="x_test"):
        load_mnist(bad)
    short = tmp_path / "short.npz"
    np.savez(short, x_train=x_tr, y_train=y_tr[:3], x_test=x_te, y_test=y_te)
    with pytest.raises(ValueError, match="count mismatch"):
        load_mnist(short)


def test_mnist_missing_file_lists_names(tmp_path):
    _mnist_dir(tmp_path, test_labels=None)
    with pytest.raises(FileNotFoundError) as err:
        load_mnist(tmp_path)
    msg = str(err.value)
    assert "t10k-labels-idx1-ubyte" in msg and ".gz" in msg and str(tmp_path) in msg
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset(f"mnist:{tmp_path / 'nowhere'}")


def test_mnist_bad_magic(tmp_path):
    _mnist_dir(tmp_path, train_images=_idx3(_images(5, 1), magic=0x00000801))
    with pytest.raises(ValueError, match=r"bad magic number 0x00000801.*0x00000803"):
        load_mnist(tmp_path)


def test_mnist_gzip_without_suffix_hint(tmp_path):
    _mnist_dir(tmp_path, train_labels=gzip.compress(_idx1(np.arange(5))))
    with pytest.raises(ValueError, match="gzip"):
        load_mnist(tmp_path)


def test_mnist_count_mismatch(tmp_path):
    _mnist_dir(tmp_path, train_labels=_idx1(np.arange(4)))
    with pytest.raises(ValueError, match=r"count mismatch: 5 images .* 4 labels"):
        load_mnist(tmp_path)


def test_mnist_truncated_payload(tmp_path):
    _mnist_dir(tmp_path, train_images=_idx3(_images(5, 1))[:-10])
    with pytest.raises(ValueError, match="truncated"):
        load_mnist(tmp_path)


# ---------------------------------------------------------------- dispatcher

def test_load_dataset_names():
    ds = load_dataset("digits", seed=3, test_size=0.5)
    ref = load_digits(test_size=0.5, seed=3)
    np.testing.assert_array_equal(ds.y_train, ref.y_train)
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset("cifar10")


# ---------------------------------------------------------------- MNIST-1D

def test_mnist1d_shapes_standardised_deterministic():
    pytest.importorskip("mnist1d")
    np_state, py_state = np.random.get_state(), random.getstate()
    a = load_mnist1d(n=200, seed=0)
    b = load_mnist1d(n=200, seed=0)
    c = load_mnist1d(n=200, seed=1)
    assert a.x_train.shape == (160, 40) and a.x_test.shape == (40, 40)
    assert a.x_train.dtype == np.float64 and a.y_train.dtype == np.int64
    assert a.n_classes == 10 and a.name == "mnist1d"
    np.testing.assert_allclose(a.x_train.mean(0), 0.0, atol=1e-10)
    np.testing.assert_allclose(a.x_train.std(0), 1.0, atol=1e-10)
    np.testing.assert_array_equal(np.bincount(a.y_test, minlength=10), 4)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, c.x_train)
    # the global RNGs are left as they were
    assert random.getstate() == py_state
    np.testing.assert_array_equal(np.random.get_state()[1], np_state[1])
    with pytest.raises(ValueError, match="multiple of 10"):
        load_mnist1d(n=205)


def test_mnist1d_missing_package_names_the_fix(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(ImportError, match="pip install mnist1d"):
        load_mnist1d(n=20)
