"""IDX and .npz readers on small synthetic files, fuzzed; the dataset checks; the source order."""

import gzip
import io
import os
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vae_lab
from vae_lab import data as data_module
from vae_lab.data import read_directory, read_idx, read_npz

from conftest import idx_bytes, write_idx


def test_reads_plain_and_gzip(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for compress in (False, True):
        path = write_idx(tmp_path / f"a{'.gz' if compress else ''}", array, compress)
        np.testing.assert_array_equal(read_idx(path), array)


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-1], "truncated"),
    (lambda b: b + b"\0", "longer than"),
    (lambda b: b"\x00\x00\x0d" + b[3:], "magic"),
    (lambda b: b"\x01" + b[1:], "magic"),
    (lambda b: b[:3] + b"\x07" + b[4:], "dimensions"),
    (lambda b: b[:10], "truncated"),
    (lambda b: b[:2], "too short"),
])
def test_damaged_idx_files_name_the_file_and_the_fault(tmp_path, damage, message):
    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(damage(idx_bytes(np.zeros((2, 28, 28)))))
    with pytest.raises(ValueError, match=message) as error:
        read_idx(path)
    assert str(path) in str(error.value)


def test_huge_declared_size_is_refused_without_allocating(tmp_path):
    header = bytes([0, 0, 8, 3]) + np.array([10**9, 28, 28], dtype=">u4").tobytes()
    path = tmp_path / "huge-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(header + bytes(1000)))
    tracemalloc.start()
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 * 2**20


def test_corrupt_gzip_becomes_value_error(tmp_path):
    good = gzip.compress(idx_bytes(np.zeros((4, 28, 28))))
    path = tmp_path / "x.gz"
    path.write_bytes(good[:-8] + bytes(8))  # CRC and length trailer zeroed
    with pytest.raises(ValueError, match=str(path)):
        read_idx(path)
    path.write_bytes(good[: len(good) // 2])  # cut in the middle
    with pytest.raises(ValueError, match=str(path)):
        read_idx(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(max_size=300), compress=st.booleans())
def test_fuzzed_idx_bytes_give_array_or_value_error(tmp_path, blob, compress):
    path = tmp_path / ("f.gz" if compress else "f")
    path.write_bytes(gzip.compress(blob) if compress else blob)
    try:
        array = read_idx(path)
    except ValueError as error:
        assert str(path) in str(error)
    else:
        assert array.dtype == np.uint8 and array.size == len(blob) - 4 - 4 * array.ndim


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dims=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4), payload=st.binary(max_size=200))
def test_fuzzed_headers_give_array_or_value_error(tmp_path, dims, payload):
    path = tmp_path / "h"
    path.write_bytes(bytes([0, 0, 8, len(dims)]) + np.array(dims, dtype=">u4").tobytes() + payload)
    try:
        array = read_idx(path)
    except ValueError:
        return
    assert array.shape == tuple(dims)


def npz_bytes(**arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def small_split(n):
    return np.zeros((n, 28, 28), np.uint8), np.arange(n, dtype=np.uint8) % 10


def test_npz_in_keras_layout(tmp_path):
    (x, y), (xt, yt) = small_split(6), small_split(3)
    path = tmp_path / "mnist.npz"
    path.write_bytes(npz_bytes(x_train=x, y_train=y, x_test=xt, y_test=yt))
    (a, b), (c, d) = read_npz(path)
    assert a.shape == (6, 28, 28) and d.tolist() == [0, 1, 2]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 2000), flip=st.integers(0, 2000))
def test_fuzzed_npz_gives_arrays_or_value_error(tmp_path, cut, flip):
    (x, y), (xt, yt) = small_split(2), small_split(1)
    blob = bytearray(npz_bytes(x_train=x, y_train=y, x_test=xt, y_test=yt))
    if flip < len(blob):
        blob[flip] ^= 0xFF
    path = tmp_path / "m.npz"
    path.write_bytes(bytes(blob[: len(blob) - cut]))
    try:
        read_npz(path)
    except ValueError as error:
        assert str(path) in str(error)


def test_npz_with_missing_or_pickled_arrays(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(npz_bytes(x_train=np.zeros((1, 28, 28), np.uint8)))
    with pytest.raises(ValueError, match="y_train"):
        read_npz(path)
    path.write_bytes(npz_bytes(x_train=np.array([{"a": 1}], dtype=object), y_train=np.zeros(1),
                               x_test=np.zeros(1), y_test=np.zeros(1)))
    with pytest.raises(ValueError):
        read_npz(path)


def test_npz_header_claiming_huge_array_is_refused(tmp_path):
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, {"descr": "|u1", "fortran_order": False,
                                                  "shape": (10**9, 28, 28)})
    member.write(bytes(100))
    path = tmp_path / "m.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for key in ("x_train", "y_train", "x_test", "y_test"):
            archive.writestr(key + ".npy", member.getvalue())
    with pytest.raises(ValueError, match="declares"):
        read_npz(path)


def write_idx_dir(directory, train=60_000, test=10_000, max_label=9, side=28):
    rng = np.random.default_rng(0)
    for stem, count in (("train", train), ("t10k", test)):
        write_idx(directory / f"{stem}-images-idx3-ubyte.gz", rng.integers(0, 256, (count, side, side)), True)
        write_idx(directory / f"{stem}-labels-idx1-ubyte.gz", rng.integers(0, max_label + 1, count), True)
    return directory


def test_load_dataset_from_directory_scales_and_flattens(tmp_path):
    (x, y), (xt, yt) = vae_lab.load_mnist(write_idx_dir(tmp_path))
    assert x.shape == (60_000, 784) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert xt.shape == (10_000, 784) and y.max() <= 9


@pytest.mark.parametrize("kwargs, message", [
    ({"train": 100}, "expected 60000"),
    ({"max_label": 12}, "0-9"),
    ({"side": 27}, "28, 28"),
])
def test_load_dataset_checks_counts_size_and_labels(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        vae_lab.load_mnist(write_idx_dir(tmp_path, **kwargs))


def test_missing_files_are_listed(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        read_directory(tmp_path)


def test_source_order_argument_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_DATA", str(tmp_path / "from-env"))
    with pytest.raises(FileNotFoundError, match="from-env"):
        vae_lab.load_mnist()
    with pytest.raises(FileNotFoundError, match="from-arg"):
        vae_lab.load_mnist(tmp_path / "from-arg")


def test_no_local_data_and_no_network_says_what_to_do(monkeypatch):
    monkeypatch.delenv("VAE_LAB_DATA", raising=False)

    def offline():
        raise Exception("URL fetch failure: no network")

    import keras
    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(FileNotFoundError, match="VAE_LAB_DATA") as error:
        vae_lab.load_mnist()
    assert "--data" in str(error.value)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="fashion_mnist"):
        vae_lab.load_dataset("cifar")


def test_real_mnist_copy(mnist_dir):
    (x, y), (xt, yt) = vae_lab.load_mnist(mnist_dir)
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert np.bincount(yt).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert float(x.mean()) == pytest.approx(0.1307, abs=1e-4)


@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_debian_package():
    (x, y), (xt, yt) = vae_lab.load_dataset("fashion_mnist")
    assert x.shape == (60_000, 784) and np.bincount(y).tolist() == [6000] * 10
    assert data_module.DATASETS["fashion_mnist"].class_names[9] == "Ankle boot"


def test_images_scale_as_the_division_by_255_and_start_on_a_tensor_boundary(tmp_path):
    """The images, made in place in aligned memory, are bit for bit `astype(float32) / 255.0`: the numbers
    every record prints depend on them. Their start lets training share them with TensorFlow."""
    from vae_lab.data import prepare

    rng = np.random.default_rng(1)
    images, labels = rng.integers(0, 256, (300, 28, 28), dtype=np.uint8), rng.integers(0, 10, 300)
    flat, _ = prepare((images, labels), 300, "training")
    assert np.array_equal(flat, images.reshape(300, 784).astype(np.float32) / 255.0)
    assert flat.dtype == np.float32 and flat.flags.c_contiguous and flat.flags.writeable
    assert flat.ctypes.data % 64 == 0 and flat[7:].ctypes.data % 64 == 0  # any first N images too


def test_the_npz_read_is_the_datasets_own_or_the_one_named(tmp_path):
    """A folder like Keras's own cache holds several archives: mnist.npz is read for MNIST, never the first by
    name (boston_housing.npz, fashion_mnist.npz); an .npz named itself is read (code review, 2026-12-06)."""
    from vae_lab.data import DataNotFound, data_files

    (x, y), (xt, yt) = small_split(6), small_split(4)
    for name in ("boston_housing.npz", "fashion_mnist.npz", "mnist.npz"):
        (tmp_path / name).write_bytes(npz_bytes(x_train=x, y_train=y, x_test=xt, y_test=yt))
    assert data_files(tmp_path) == {"npz": tmp_path / "mnist.npz"}
    assert data_files(tmp_path, "fashion_mnist") == {"npz": tmp_path / "fashion_mnist.npz"}
    assert data_files(tmp_path / "fashion_mnist.npz") == {"npz": tmp_path / "fashion_mnist.npz"}
    (tmp_path / "mnist.npz").unlink()
    with pytest.raises(DataNotFound, match=r"several .npz archives \(boston_housing.npz, fashion_mnist.npz\)"):
        data_files(tmp_path)
    (tmp_path / "fashion_mnist.npz").unlink()
    assert data_files(tmp_path) == {"npz": tmp_path / "boston_housing.npz"}  # the only one: what else is meant
