import importlib.util
import sys
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


torch_only = pytest.mark.skipif(keras.backend.backend() != "torch", reason="kgen's torch kernels")


@torch_only
@pytest.mark.parametrize("channels, size, mean, affine", [
    (32, 16, 0.0, True),     # torch's forward reads columns here: kgen's own forward
    (32, 16, 100.0, True),   # a mean far from zero against the spread
    (16, 9, 1.0, False),
    (8, 33, 5.0, True),      # 1,089 positions: torch's forward, kgen's backward
])
def test_channels_last_group_norm_matches_float64_in_bfloat16(channels, size, mean, affine):
    import torch
    import torch.nn.functional as F

    from kgen.models.torch_ops import ChannelsLastGroupNorm

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(mean, 2.0, (4, size, size, channels))).bfloat16().permute(0, 3, 1, 2)
    dy = torch.from_numpy(rng.normal(size=(4, size, size, channels))).bfloat16().permute(0, 3, 1, 2)
    params = [torch.from_numpy(rng.normal(size=channels)) for _ in range(2)] if affine else [None, None]
    results = []
    for dtype in (torch.float32, torch.float64):  # kgen's kernel; the float64 truth on the same inputs
        inputs = (x if dtype == torch.float32 else x.double()).detach().requires_grad_(True)
        w, b = (p.to(dtype).requires_grad_(True) if affine else None for p in params)
        if dtype == torch.float32:
            y = ChannelsLastGroupNorm.apply(inputs, 4, w, b, 1e-5)
            assert y.dtype == torch.bfloat16 and y.is_contiguous(memory_format=torch.channels_last)
        else:
            y = F.group_norm(inputs, 4, w, b, 1e-5)
        y.backward(dy.to(y.dtype))
        results.append([y, inputs.grad] + ([w.grad, b.grad] if affine else []))
    for ours, truth in zip(*results):
        # Within two units in the last place of bfloat16 (2**-7) of the largest value.
        scale = truth.abs().max().item()
        np.testing.assert_allclose(ours.detach().double().numpy(), truth.detach().numpy(), rtol=0, atol=scale * 2.0**-7)


@torch_only
def test_the_group_norm_layer_takes_kgens_kernel_exactly_where_it_was_measured_faster():
    import torch

    from kgen.models import torch_ops
    from kgen.models.group_normalization import GroupNormalization

    def tensor(shape, dtype=torch.bfloat16, channels_last=True):
        n, c, h, w = shape
        x = torch.randn(n, h, w, c).to(dtype).permute(0, 3, 1, 2)
        return x if channels_last else x.contiguous()

    narrow = torch_ops._narrow_groups_channels_last
    assert narrow(tensor((40, 32, 16, 16)), 8)                              # 4 channels per group
    assert not narrow(tensor((40, 32, 16, 16), torch.float32), 8)           # float32: torch's kernel
    assert not narrow(tensor((40, 32, 16, 16), channels_last=False), 8)     # NCHW
    assert not narrow(tensor((40, 128, 16, 16)), 8)                         # 16 channels per group
    assert not narrow(tensor((4, 8, 48, 48)), 2)                            # 2,304 positions: rows already
    assert not narrow(tensor((2, 32, 16, 16)), 8)                           # 16,384 elements: too small

    layer = GroupNormalization(8, axis=1, dtype="mixed_bfloat16")
    reference = keras.layers.GroupNormalization(8, axis=1, dtype="mixed_bfloat16")
    x = tensor((40, 32, 16, 16), torch.float32)  # the layer casts to its compute dtype, as under Keras
    layer.build(x.shape)
    reference.build(x.shape)
    y = layer(x.bfloat16())
    assert type(y.grad_fn).__name__ == "ChannelsLastGroupNormBackward" or y.grad_fn is None
    # Keras rounds its float32 statistics' result once, kgen's kernel its scale too: two bfloat16 units apart.
    np.testing.assert_allclose(to_numpy(keras.ops.cast(y, "float32")),
                               to_numpy(keras.ops.cast(reference(x.bfloat16()), "float32")), rtol=2e-2, atol=2e-2)


@torch_only
def test_a_bfloat16_unet_has_float32_gradients_as_close_with_kgens_group_norm_as_with_torchs(monkeypatch):
    import torch

    from kgen.models import UNet, torch_ops

    def gradients(unet):
        out = unet([x, t, labels])
        cotangent = torch.from_numpy(np.random.default_rng(5).normal(size=tuple(out.shape)).astype("float32"))
        grads = torch.autograd.grad((out.float() * cotangent).sum(), [w.value for w in unet.trainable_weights])
        # Keys' biases shift every logit of a query alike: their true gradient is 0, theirs is rounding noise.
        return torch.cat([g.flatten() for g, w in zip(grads, unet.trainable_weights) if "key/bias" not in w.path])

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(40, 16, 16, 3)).astype("float32"))  # norms of 40x32x16x16: kgen's kernel
    t, labels = (torch.from_numpy(rng.integers(0, n, 40).astype("int32")) for n in (1000, 10))
    nets = {}
    for policy in ("float32", "mixed_bfloat16"):
        keras.config.set_dtype_policy(policy)  # conftest.py restores float32 after each test
        nets[policy] = UNet((16, 16, 3), widths=(32, 64), attention_resolution=8, num_classes=10)
    keras.config.set_dtype_policy("float32")
    weights = [rng.normal(0, 0.05, w.shape).astype("float32") for w in nets["float32"].get_weights()]
    for net in nets.values():
        net.set_weights(weights)
    truth = gradients(nets["float32"])
    calls = []
    real = torch_ops.ChannelsLastGroupNorm.apply
    monkeypatch.setattr(torch_ops.ChannelsLastGroupNorm, "apply", lambda *a: calls.append(a[0].shape) or real(*a))
    kgen = gradients(nets["mixed_bfloat16"])
    assert len(calls) >= 4 and all(s[1] // 8 < 16 for s in calls)
    monkeypatch.setattr(torch_ops, "CHANNELS_LAST_GROUP_NORM", False)
    torch_kernel = gradients(nets["mixed_bfloat16"])
    errors = [float((g - truth).norm() / truth.norm()) for g in (kgen, torch_kernel)]
    # bfloat16 training is about 2% off float32 either way (measured: 1.9% and 1.7%); a wrong kernel is 100%.
    assert errors[0] < 1.5 * errors[1] and errors[0] < 0.05, errors


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


def _bench_train():
    path = Path(__file__).parents[1] / "benchmarks/bench_train.py"
    spec = importlib.util.spec_from_file_location("bench_train", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


@once
@pytest.mark.parametrize("peer_models", ["unet_plain", "unet_plain,diffusers,unet_bogus", ""])
def test_bench_train_rejects_a_peer_comparison_without_both_sides(monkeypatch, capsys, peer_models):
    """--peer-models must keep kgen's UNet and diffusers' (the ratio needs both); checked before any timing."""
    bench = _bench_train()
    monkeypatch.setattr(sys, "argv", ["bench_train.py", "--peer", "--peer-models", peer_models])
    monkeypatch.setattr(bench, "measure", lambda *a, **k: pytest.fail("timed before the arguments were checked"))
    with pytest.raises(SystemExit) as exit_info:
        bench.main()
    assert exit_info.value.code == 2
    assert "--peer-models takes unet_plain and diffusers" in capsys.readouterr().err


@once
def test_bench_train_flop_count_does_not_depend_on_the_layout(monkeypatch):
    """benchmarks/bench_train.py's FLOP count: a conv and an attention layer by hand, the UNet in both layouts."""
    from kgen.models import UNet, layout
    from kgen.models.unet import SpatialAttention

    monkeypatch.setattr(layout, "channels_first_runs", lambda: True)  # only built, never run

    bench = _bench_train()
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
