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


def test_evaluate_denoiser_scores_the_samples_the_model_draws(assets, tmp_path):
    from kgen.evaluate import evaluate_denoiser
    from kgen.models import UNet
    from kgen.trainers import DDPM

    ddpm = DDPM(UNet((28, 28, 1), widths=(8, 16), attention_resolution=14, num_classes=10),
                num_train_timesteps=40, seed=0)
    path = str(tmp_path / "ddpm.keras")
    ddpm.save(path)
    results = evaluate_denoiser(path, data=str(assets / "mnist"), classifier=str(assets / "mnist.keras"),
                                per_class=3, guidance_scales=[1.0, 3.0], num_steps=4, seed=5)
    assert results["num_generated"] == 30 and results["num_real"] == 30
    assert [g["guidance_scale"] for g in results["guidance"]] == [1.0, 3.0]
    # Independently: the same seed draws the same images through the trainer's own sampler.
    labels = np.repeat(np.arange(10), 3)
    clf = ClassifierFeatures(str(assets / "mnist.keras"))
    for entry in results["guidance"]:
        images = ddpm.sample(labels=labels, num_steps=4, guidance_scale=entry["guidance_scale"], seed=5)
        _, probs = clf(images)
        assert entry["conditional_accuracy"] == pytest.approx(float((probs.argmax(1) == labels).mean()))
        assert set(entry["per_class_accuracy"]) == {str(i) for i in range(10)}
        assert entry["fid_classifier[mnist]"]["n_a"] == entry["fid_classifier[mnist]"]["n_b"] == 30
    with pytest.raises(ValueError, match="per_class must be at least 2"):
        evaluate_denoiser(path, data=str(assets / "mnist"), classifier=str(assets / "mnist.keras"), per_class=1)
    with pytest.raises(ValueError, match="guidance scales must be finite"):
        evaluate_denoiser(path, data=str(assets / "mnist"), classifier=str(assets / "mnist.keras"),
                          guidance_scales=[float("nan")])
