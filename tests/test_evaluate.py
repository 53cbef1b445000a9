import json
import os

import keras
import numpy as np
import pytest

from kgen.evaluate import ClassifierFeatures, InceptionFeatures, evaluate
from kgen.models import DCGANDiscriminator, DCGANGenerator, ImageClassifier
from kgen.trainers import DCGAN
from tests import helpers
from tests.test_recipes import run


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    helpers.make_mnist_dir(str(root / "mnist"), n_train=64, n_test=48)
    clf = ImageClassifier((28, 28, 1), 10, widths=(4, 8), feature_dim=16, translate=0.0)
    clf.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    clf.fit(np.random.uniform(-1, 1, (32, 28, 28, 1)).astype("float32"), np.arange(32) % 10, verbose=0)
    clf.save(str(root / "mnist.keras"))
    gan = DCGAN(DCGANGenerator((28, 28, 1), 8, 8), DCGANDiscriminator((28, 28, 1), 8))
    gan.save(str(root / "gan.keras"))
    return root


def test_evaluate_checkpoint_reports_counts_and_consistent_values(assets):
    results = evaluate(
        str(assets / "gan.keras"), data=str(assets / "mnist"), classifier=str(assets / "mnist.keras"),
        num_samples=40, batch_size=16,
    )
    fid = results["fid_classifier[mnist]"]
    assert fid["n_a"] == 40 and fid["n_b"] == 40 and fid["value"] > 0
    assert results["kid_classifier[mnist]"]["subset_size"] == 40
    assert sum(results["coverage"]["histogram"]) == 40
    # The same images twice: distance ~0, and the classifier's features are
    # what the metric used.
    clf = ClassifierFeatures(str(assets / "mnist.keras"))
    x = np.random.default_rng(0).uniform(-1, 1, (8, 28, 28, 1)).astype("float32")
    features, probs = clf(x)
    assert features.shape == (8, 16) and probs.shape == (8, 10)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)


def test_evaluate_image_folder_against_itself_is_near_zero(assets, tmp_path):
    from PIL import Image

    images, _ = helpers.make_mnist_dir(str(tmp_path / "m"), n_test=30)["t10k"]
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i}.png")
    results = evaluate(
        str(folder), data=str(tmp_path / "m"), classifier=str(assets / "mnist.keras"), num_samples=30
    )
    assert results["source_kind"] == "image folder"
    assert abs(results["fid_classifier[mnist]"]["value"]) < 1e-6


def test_inception_features_shape_without_downloading():
    features = InceptionFeatures("random")(np.zeros((2, 28, 28, 1), "float32"))
    assert features.shape == (2, 2048)


def test_cli_writes_json_and_rejects_bad_input(assets, tmp_path):
    out = tmp_path / "r.json"
    result = run(["-m", "kgen.evaluate", str(assets / "gan.keras"), "--data", str(assets / "mnist"),
                  "--classifier", str(assets / "mnist.keras"), "--num-samples", "20", "--json", str(out)])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "fid_classifier[mnist]" in result.stdout
    assert json.loads(out.read_text())["num_generated"] == 20
    bad = run(["-m", "kgen.evaluate", str(tmp_path / "nothing.keras"), "--classifier", str(assets / "mnist.keras")])
    assert bad.returncode == 2 and "neither a .keras checkpoint nor a folder" in bad.stderr
    assert "Traceback" not in bad.stderr
    clf_as_source = run(["-m", "kgen.evaluate", str(assets / "mnist.keras"), "--data", str(assets / "mnist"),
                         "--classifier", str(assets / "mnist.keras"), "--num-samples", "4"])
    assert clf_as_source.returncode == 2 and "cannot be sampled" in clf_as_source.stderr
