import os

import numpy as np
import pytest

from kgen.data import DATA_DIR_ENV, load_images, resolve_source
from tests import helpers


def _all(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_idx_files_scaled_and_labelled(tmp_path, compress):
    arrays = helpers.make_mnist_dir(str(tmp_path), compress=compress)
    ds, info = load_images(str(tmp_path), split="test", batch_size=5, shuffle=False, with_info=True)
    x, y = _all(ds)
    images, labels = arrays["t10k"]
    assert x.shape == (20, 28, 28, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x[..., 0], images / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_array_equal(y, labels)
    assert info.source == "mnist" and info.image_shape == (28, 28, 1) and info.num_examples == 20


def test_cifar_binary_batches_decode_planar_rgb(tmp_path):
    arrays = helpers.make_cifar_dir(str(tmp_path))
    ds, info = load_images(str(tmp_path), split="train", batch_size=8, shuffle=False, with_info=True)
    x, y = _all(ds)
    expected = np.concatenate([arrays[f"data_batch_{i}.bin"][0] for i in range(1, 6)])
    assert x.shape == (40, 32, 32, 3)
    np.testing.assert_allclose(x, expected / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_array_equal(y, np.concatenate([arrays[f"data_batch_{i}.bin"][1] for i in range(1, 6)]))
    assert info.class_names[0] == "airplane" and info.num_classes == 10


def test_image_folder_classes_resize_and_channels(tmp_path):
    helpers.make_image_folder(str(tmp_path))
    ds, info = load_images(
        str(tmp_path), batch_size=2, image_size=16, channels=1, drop_remainder=False, with_info=True
    )
    x, y = _all(ds)
    assert x.shape == (6, 16, 16, 1)
    assert sorted(y.tolist()) == [0, 0, 0, 1, 1, 1]
    assert info.class_names == ["cats", "dogs"] and info.source == "folder"
    assert -1.0 <= x.min() and x.max() <= 1.0


def test_name_resolves_under_data_dir_env(tmp_path, monkeypatch):
    helpers.make_mnist_dir(str(tmp_path / "mnist"))
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert resolve_source("mnist") == ("mnist", str(tmp_path / "mnist"))
    x, _ = next(iter(load_images("mnist", batch_size=4)))
    assert x.shape == (4, 28, 28, 1)


def test_shuffle_is_seeded_and_flip_augments(tmp_path):
    helpers.make_mnist_dir(str(tmp_path))
    a, _ = _all(load_images(str(tmp_path), batch_size=8, seed=3))
    b, _ = _all(load_images(str(tmp_path), batch_size=8, seed=3))
    c, _ = _all(load_images(str(tmp_path), batch_size=8, seed=4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    plain, _ = _all(load_images(str(tmp_path), batch_size=40, shuffle=False))
    flipped, _ = _all(load_images(str(tmp_path), batch_size=40, shuffle=False, augment=True))
    same = [np.array_equal(p, f) for p, f in zip(plain, flipped)]
    mirrored = [np.array_equal(p[:, ::-1], f) for p, f in zip(plain, flipped)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert 5 < sum(mirrored) < 35


def test_tfds_name_with_mock_data(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    with tfds.testing.mock_data(num_examples=16):
        ds, info = load_images("mnist", batch_size=4, image_size=32, channels=3, with_info=True)
        x, y = next(iter(ds))
    assert x.shape == (4, 32, 32, 3) and y.shape == (4,)
    assert info.source == "tfds" and info.num_classes == 10


def test_bad_sources_name_the_accepted_formats(tmp_path):
    with pytest.raises(ValueError, match="does not exist.*Accepted"):
        load_images("./no/such/folder")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="found no dataset.*MNIST IDX"):
        load_images(str(tmp_path))
    with pytest.raises(ValueError, match="neither an existing path nor a TFDS dataset"):
        load_images("no_such_dataset_xyz")
    with pytest.raises(ValueError, match="channels must be 1, 3"):
        load_images(str(tmp_path), channels=2)


def test_truncated_idx_file_is_rejected(tmp_path):
    helpers.make_mnist_dir(str(tmp_path), compress=False)
    path = os.path.join(tmp_path, "train-images-idx3-ubyte")
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:-100])
    with pytest.raises(ValueError, match="truncated"):
        load_images(str(tmp_path))


def test_a_named_data_folder_that_is_not_there_is_refused_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(ValueError, match=r"KGEN_DATA_DIR=.*missing is not a folder; point it at the folder holding "
                                         r"mnist/, or unset it"):
        load_images("mnist")
    (tmp_path / "cifar10").mkdir()
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(ValueError, match=r"holds no mnist/ \(it holds: cifar10\); unset it to download"):
        load_images("mnist")


def test_an_offline_download_is_one_line_in_seconds(tmp_path, monkeypatch):
    import socket
    import time

    pytest.importorskip("tensorflow_datasets")
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))  # nothing prepared here

    def offline(*args, **kwargs):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", offline)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"'mnist' is not on this machine and TFDS cannot download it "
                                         r"\(storage.googleapis.com: Network is unreachable\)"):
        load_images("mnist")
    assert time.perf_counter() - start < 30
