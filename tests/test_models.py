import importlib.util
from pathlib import Path

import keras
import numpy as np
import pytest

from kgen.models import DCGANDiscriminator, DCGANGenerator
from kgen.models.layout import halving_plan
from tests.helpers import once, to_numpy

SHAPES = [(28, 28, 1), (32, 32, 3), (64, 64, 3)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_generator_and_discriminator_shapes(shape):
    g = DCGANGenerator(shape, latent_dim=16, width=8)
    d = DCGANDiscriminator(shape, width=8)
    images = to_numpy(g(keras.random.normal((3, 16))))
    assert images.shape == (3, *shape) and images.dtype == np.float32
    assert np.abs(images).max() <= 1.0
    assert tuple(d(images).shape) == (3, 1)


def test_halving_plan():
    assert halving_plan((28, 28, 1)) == (2, (7, 7))
    assert halving_plan((32, 32, 3)) == (3, (4, 4))
    with pytest.raises(ValueError, match="cannot be halved"):
        halving_plan((7, 7, 1))
    with pytest.raises(ValueError, match="height, width, channels"):
        halving_plan((28, 28))


def test_config_round_trip():
    g = DCGANGenerator((32, 32, 3), latent_dim=12, width=8, name="g")
    clone = DCGANGenerator.from_config(g.get_config())
    assert clone.get_config() == g.get_config()
    assert clone.count_params() == g.count_params()


def skip_channels_first_where_it_cannot_run(data_format="channels_first"):
    from kgen.models.layout import channels_first_runs

    if data_format == "channels_first" and not channels_first_runs():
        pytest.skip("this TensorFlow runs channels-first convolutions only with oneDNN, off on this CPU")


def test_layout_does_not_change_the_function():
    skip_channels_first_where_it_cannot_run()
    z = keras.random.normal((2, 16))
    outputs = []
    for fmt in ("channels_last", "channels_first"):
        keras.utils.set_random_seed(1)
        g = DCGANGenerator((28, 28, 1), latent_dim=16, width=8, data_format=fmt)
        d = DCGANDiscriminator((28, 28, 1), width=8, data_format=fmt)
        outputs.append((to_numpy(g(z)), to_numpy(d(g(z)))))
    np.testing.assert_allclose(outputs[0][0], outputs[1][0], atol=1e-5)
    np.testing.assert_allclose(outputs[0][1], outputs[1][1], atol=1e-4)


def test_a_layout_the_backend_cannot_run_is_refused_with_what_to_use(monkeypatch):
    from kgen.models import layout

    probe = layout.channels_first_runs.__wrapped__
    assert probe("torch") and probe("jax")  # only TensorFlow's CPU kernels can refuse the layout
    monkeypatch.setattr(layout, "channels_first_runs", lambda: False)
    with pytest.raises(ValueError, match="Use 'channels_last' or None"):
        DCGANGenerator((28, 28, 1), latent_dim=16, width=8, data_format="channels_first")
    assert layout.resolve_data_format("channels_last") == "channels_last"


def assert_layer_matches_keras(ours, ref, x):
    """Same outputs (and dtype); under torch, where kgen's layers run torch kernels, the same gradients.

    bfloat16 outputs may differ by their rounding (one unit in the last of 8 bits: 0.4-0.8%).
    """
    rtol, atol = (2e-2, 2e-2) if ours.compute_dtype == "bfloat16" else (1e-3, 1e-4)
    rng = np.random.default_rng(1)
    ours.build(x.shape)
    ref.build(x.shape)
    ours.set_weights([rng.normal(size=w.shape).astype("float32") for w in ours.get_weights()])
    ref.set_weights(ours.get_weights())
    outputs = [ours(x), ref(x)]
    assert outputs[0].dtype == outputs[1].dtype
    np.testing.assert_allclose(*(to_numpy(keras.ops.cast(y, "float32")) for y in outputs), rtol=rtol, atol=atol)
    if keras.backend.backend() == "torch":
        import torch

        cotangent = torch.from_numpy(rng.normal(size=tuple(outputs[0].shape)).astype("float32"))
        grads = []
        for layer in (ours, ref):
            inputs = torch.tensor(x, requires_grad=True)
            (layer(inputs).float() * cotangent).sum().backward()
            grads.append([inputs.grad.numpy()] + [w.value.grad.numpy() for w in layer.trainable_weights])
        for a, b in zip(*grads):
            # In bfloat16 the kernels round partial sums as large as the largest gradient: two units
            # in its last place (2**-7 of it) is how far two correct summation orders can differ.
            scale = np.abs(b).max()
            bound = max(atol, scale * 2.0**-7) if ours.compute_dtype == "bfloat16" else atol * max(1.0, scale / 10)
            np.testing.assert_allclose(a, b, rtol=rtol, atol=bound)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("kernel, strides, padding", [(3, 1, "same"), (1, 1, "same"), (3, 2, "same"), (4, 2, "same"),
                                                      (3, 1, "valid"), (5, 3, "same")])
@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_conv2d_matches_keras_layer(data_format, kernel, strides, padding, policy):
    from kgen.models.conv2d import Conv2D

    skip_channels_first_where_it_cannot_run(data_format)
    x = np.random.default_rng(0).normal(size=(2, 8, 7, 3)).astype("float32")
    if data_format == "channels_first":
        x = x.transpose(0, 3, 1, 2)
    args = dict(strides=strides, padding=padding, data_format=data_format, activation="silu", dtype=policy)
    assert_layer_matches_keras(Conv2D(5, kernel, **args), keras.layers.Conv2D(5, kernel, **args), x)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("kernel, strides", [(4, 2), (3, 1), (3, 2), (5, 3)])
def test_conv2d_transpose_matches_keras_layer(data_format, kernel, strides):
    from kgen.models.conv2d_transpose import Conv2DTranspose

    skip_channels_first_where_it_cannot_run(data_format)
    x = np.random.default_rng(0).normal(size=(2, 7, 6, 3)).astype("float32")
    if data_format == "channels_first":
        x = x.transpose(0, 3, 1, 2)
    args = dict(strides=strides, padding="same", data_format=data_format, activation="tanh")
    assert_layer_matches_keras(Conv2DTranspose(5, kernel, **args), keras.layers.Conv2DTranspose(5, kernel, **args), x)


@pytest.mark.parametrize("shape, axis", [((16, 5, 3, 3), 1), ((16, 5), -1), ((16, 3, 3, 5), -1)])
def test_batch_normalization_matches_keras_layer(shape, axis):
    from kgen.models.batch_normalization import BatchNormalization

    rng = np.random.default_rng(0)
    ours = BatchNormalization(axis=axis, momentum=0.9)
    ref = keras.layers.BatchNormalization(axis=axis, momentum=0.9)
    ours.build(shape)
    ref.build(shape)
    weights = [rng.normal(size=w.shape).astype("float32") for w in ref.get_weights()]
    weights[3] = np.abs(weights[3])  # moving variance
    ref.set_weights(weights)
    ours.set_weights(weights)
    for _ in range(2):
        x = rng.normal(2.0, 3.0, size=shape).astype("float32")
        np.testing.assert_allclose(to_numpy(ours(x, training=True)), to_numpy(ref(x, training=True)), atol=1e-4)
    for a, b in zip(ours.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(ours(x)), to_numpy(ref(x)), atol=1e-4)


@pytest.mark.parametrize("shape, axis, affine, policy", [
    ((4, 8, 5, 5), 1, True, "float32"), ((4, 8, 5, 5), 1, False, "float32"),
    ((4, 8, 5, 5), 1, True, "mixed_bfloat16"), ((4, 5, 5, 8), -1, True, "float32"),
])
def test_group_normalization_matches_keras_layer(shape, axis, affine, policy):
    from kgen.models.group_normalization import GroupNormalization

    x = np.random.default_rng(0).normal(2.0, 3.0, size=shape).astype("float32")
    args = dict(axis=axis, center=affine, scale=affine, dtype=policy)
    assert_layer_matches_keras(GroupNormalization(4, **args), keras.layers.GroupNormalization(4, **args), x)


def test_classifier_is_deterministic_unless_training():
    from kgen.models import ImageClassifier

    clf = ImageClassifier((28, 28, 1), 10, widths=(4,), feature_dim=8, translate=0.2, flip=True)
    x = np.random.default_rng(0).uniform(-1, 1, (4, 28, 28, 1)).astype("float32")
    np.testing.assert_array_equal(to_numpy(clf(x)), to_numpy(clf(x)))
    assert not np.allclose(to_numpy(clf(x, training=True)), to_numpy(clf(x, training=True)))
    assert tuple(clf.features_model()(x).shape) == (4, 8)


def test_save_inference_copy_keeps_outputs_and_drops_optimizer(tmp_path):
    from kgen.models import ImageClassifier
    from kgen.utils.saving import save_inference_copy

    clf = ImageClassifier((28, 28, 1), 10, widths=(4,), feature_dim=8)
    clf.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    clf.fit(np.zeros((8, 28, 28, 1), "float32"), np.arange(8) % 10, verbose=0)
    save_inference_copy(clf, str(tmp_path / "c.keras"))
    restored = keras.saving.load_model(str(tmp_path / "c.keras"))
    x = np.random.default_rng(1).uniform(-1, 1, (3, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(to_numpy(restored(x)), to_numpy(clf(x)), atol=1e-6)
    assert getattr(restored, "optimizer", None) is None


@once
def test_bench_train_flop_count_does_not_depend_on_the_layout(monkeypatch):
    """benchmarks/bench_train.py's FLOP count: a conv and an attention layer by hand, the UNet in both layouts."""
    from kgen.models import UNet, layout
    from kgen.models.unet import SpatialAttention

    monkeypatch.setattr(layout, "channels_first_runs", lambda: True)  # only built, never run

    path = Path(__file__).parents[1] / "benchmarks/bench_train.py"
    spec = importlib.util.spec_from_file_location("bench_train", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    counts = []
    for fmt in ("channels_last", "channels_first"):
        images = keras.Input((16, 8, 8) if fmt == "channels_first" else (8, 8, 16))
        x = keras.layers.Conv2D(16, 3, padding="same", data_format=fmt)(images)
        x = SpatialAttention(data_format=fmt)(x)
        n, c = 64, 16
        assert bench.forward_flops(keras.Model(images, x)) == 2 * n * 9 * c * c + 2 * (4 * n * c * c + 2 * n * n * c)
        counts.append(bench.forward_flops(UNet((16, 16, 3), (8, 16), attention_resolution=8, num_classes=2,
                                               data_format=fmt)))
    assert counts[0] == counts[1]
