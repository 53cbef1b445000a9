"""The trainer contract: every consumer reaches a model through it, a new family included."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from kgen.evaluate import evaluate
from kgen.export import export_onnx
from kgen.infer import runtime
from kgen.infer.sample import draw
from kgen.models import DCGANDiscriminator, DCGANGenerator, UNet, VAEDecoder, VAEEncoder
from kgen.runs import FitStatus, RunRecorder, describe_checkpoint, fit_resumable
from kgen.trainers import DCGAN, DDPM, VAE, GenerativeTrainer
from tests import helpers
from tests.toy_trainer import ToyGenerator


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    root = tmp_path_factory.mktemp("contract")
    helpers.make_mnist_dir(str(root / "mnist"), n_train=32, n_test=24)
    helpers.save_tiny_classifier(root / "mnist.keras")
    return root


def trainers():
    return [DCGAN(DCGANGenerator((28, 28, 1), 8, 8), DCGANDiscriminator((28, 28, 1), 8), seed=0),
            VAE(VAEEncoder((28, 28, 1), 4, widths=(4, 8)), VAEDecoder((28, 28, 1), 4, widths=(8, 4)), seed=0),
            DDPM(UNet((28, 28, 1), widths=(8, 16), attention_resolution=14, num_classes=10),
                 num_train_timesteps=20, seed=0),
            ToyGenerator(seed=0)]


@pytest.mark.parametrize("model", trainers(), ids=lambda m: type(m).__name__)
def test_every_trainer_keeps_the_contract(model):
    assert isinstance(model, GenerativeTrainer)
    assert model.loss_keys and all(isinstance(k, str) for k in model.loss_keys)
    labels = np.array([3, 1, 10]) if model.class_conditional else None
    options = {"num_steps": 3} if "num_steps" in model.sample_options else {}
    images = model.sample(3, labels=labels, seed=7, **options)
    assert images.shape == (3, 28, 28, 1) and images.dtype == np.float32
    assert images.min() >= -1 and images.max() <= 1
    np.testing.assert_array_equal(images, model.sample(3, labels=labels, seed=7, **options))
    assert not np.array_equal(images, model.sample(3, labels=labels, seed=8, **options))
    with pytest.raises(ValueError, match="takes no sampling option bogus"):
        model.sample(3, labels=labels, bogus=1)
    if not model.class_conditional:
        with pytest.raises(ValueError, match="unconditional"):
            model.sample(labels=[0, 1])
    parts = model.inference_parts()
    for part in parts:
        network, metadata = model.export_part(part, dataset="mnist")
        assert metadata["trainer"] == type(model).__name__ and metadata["image_shape"] == [28, 28, 1]
        assert len(network.inputs) == len(metadata["input_names"])
    with pytest.raises(ValueError, match="has no part 'nope'; accepted: " + ", ".join(parts)):
        model.export_part("nope")


def test_a_fourth_trainer_goes_through_the_run_recorder_export_infer_and_evaluate(mnist, tmp_path):
    x = np.random.default_rng(0).uniform(-1, 1, (32, 28, 28, 1)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((x, np.arange(32) % 10)).batch(8, drop_remainder=True)
    model = ToyGenerator(seed=0)
    model.compile()
    run_dir = tmp_path / "toy"
    recorder = RunRecorder(str(run_dir), batch_size=8, checkpoint_every=None,
                           config={"data": str(mnist / "mnist")})
    assert fit_resumable(model, dataset, recorder, 2, "toy run") is FitStatus.FINISHED
    # The recorder plots the declared losses apart from the other logs.
    assert (run_dir / "losses.png").exists() and (run_dir / "metrics.png").exists()
    checkpoint = str(run_dir / "checkpoints" / "last.keras")

    network, metadata = describe_checkpoint(checkpoint)
    assert metadata["kind"] == "generator" and metadata["dataset"] == str(mnist / "mnist")
    onnx_path = str(tmp_path / "toy.onnx")
    result = export_onnx(checkpoint, output=onnx_path)
    assert result["max_abs_error"] < 1e-4 and result["metadata"]["trainer"] == "ToyGenerator"
    exported = runtime.load(onnx_path)
    loaded = keras.saving.load_model(checkpoint)
    latents = np.random.default_rng(3).standard_normal((2, 4)).astype("float32")
    np.testing.assert_allclose(exported.run(latents=latents)[0],
                               keras.ops.convert_to_numpy(loaded.network(latents)), atol=1e-5)
    assert draw(exported, 5, seed=0).shape == (5, 28, 28, 1)

    for source in (checkpoint, onnx_path):
        results = evaluate(source, classifier=str(mnist / "mnist.keras"), num_samples=12, held_out_images=0)
        assert results["reference"] == f"{mnist / 'mnist'}:test"
        [setting] = results["settings"]
        assert setting["num_generated"] == 12 and setting["fid_classifier[mnist]"]["n_b"] == 12
    assert json.loads(json.dumps(results))  # the JSON the CLI writes
