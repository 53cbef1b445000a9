"""Guidance and progressive distillation: the grid, the targets, the trainers, the commands."""

import json
import os

import keras
import numpy as np
import pytest

from kgen.models import UNet
from kgen.objectives import distillation
from kgen.schedulers import DDIMScheduler, NoiseSchedule, make_scheduler, trailing_timesteps
from kgen.trainers import GuidanceDistillation, ProgressiveDistillation
from tests import helpers
from tests.helpers import to_numpy, weights_of


def tiny_unet(num_classes=10, guidance_input=False, seed=0, random_output=True):
    keras.utils.set_random_seed(seed)
    unet = UNet((8, 8, 1), widths=(8, 16), attention_resolution=4, num_classes=num_classes,
                guidance_input=guidance_input)
    if not random_output:
        return unet  # the output layer starts at zero: the network outputs 0
    # A nonzero output layer, so the network's output depends on its inputs from the start.
    out = unet.get_layer("out")
    rng = np.random.default_rng(seed)
    out.set_weights([rng.normal(0, 0.05, w.shape).astype("float32") for w in out.get_weights()])
    return unet


def data(n=32):
    rng = np.random.default_rng(0)
    y = (np.arange(n) % 10).astype("int32")
    x = np.tanh(rng.normal(0, 0.3, (n, 8, 8, 1)) + (y[:, None, None, None] / 5.0 - 1.0)).astype("float32")
    return x, y


def fixed_loss(model, x, y, seeds=(1, 2, 3)):
    """The training loss on (x, y) with the same draws (t, noise, labels, scales) at every call."""
    own, losses = model.seed_generator, []
    for seed in seeds:
        model.seed_generator = keras.random.SeedGenerator(seed)
        losses.append(float(to_numpy(model.compute_phase_loss("student", (x, y))[0])))
    model.seed_generator = own
    return float(np.mean(losses))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 8, 32, 64])
def test_trailing_timesteps_are_diffusers_trailing_spacing_and_nest(n):
    # diffusers' DDIMScheduler, timestep_spacing="trailing" (written out independently).
    expected = np.round(np.arange(1000, 0, -1000 / n)).astype(np.int64) - 1
    np.testing.assert_array_equal(trailing_timesteps(n, 1000), expected)
    np.testing.assert_array_equal(trailing_timesteps(2 * n, 1000)[::2], expected)  # every other point of 2n
    scheduler = DDIMScheduler(1000, "cosine", timestep_spacing="trailing")
    np.testing.assert_array_equal(scheduler.set_timesteps(n), expected)
    assert scheduler.get_config()["timestep_spacing"] == "trailing"
    assert "timestep_spacing" not in DDIMScheduler(1000, "cosine").get_config()  # old files read the same


def test_trailing_grid_in_keras_ops_matches_numpy():
    for n in (2, 4, 8, 32):
        position = np.arange(n, dtype=np.float32)
        t, t_mid, t_next = (to_numpy(a) for a in distillation.trailing_grid(position, float(n), 1000))
        grid, fine = trailing_timesteps(n, 1000), trailing_timesteps(2 * n, 1000)
        np.testing.assert_array_equal(t, grid)
        np.testing.assert_array_equal(t_mid, fine[1::2])
        np.testing.assert_array_equal(t_next, np.append(grid[1:], -1))


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_x0_and_eps_match_the_numpy_samplers(prediction_type):
    schedule = NoiseSchedule(1000, "cosine", prediction_type)
    rng = np.random.default_rng(0)
    t = np.array([0, 10, 500, 900, 999], np.int32)
    z = rng.standard_normal((5, 4, 4, 1)).astype(np.float32)
    output = rng.standard_normal((5, 4, 4, 1)).astype(np.float32)
    alpha, sigma = distillation.alpha_sigma(t, schedule.alphas_cumprod, 4)
    x0, eps = (to_numpy(a) for a in distillation.x0_and_eps(output, z, alpha, sigma, prediction_type))
    for i, step in enumerate(t):
        want_x0, want_eps = schedule.predict_original_and_noise(output[i:i + 1], step, z[i:i + 1])
        np.testing.assert_allclose(x0[i:i + 1], want_x0, atol=2e-4)
        np.testing.assert_allclose(eps[i:i + 1], want_eps, rtol=1e-3, atol=2e-3)
    # t = -1 is the clean image.
    a, s = distillation.alpha_sigma(np.array([-1], np.int32), schedule.alphas_cumprod, 4)
    assert float(to_numpy(a).squeeze()) == 1.0 and float(to_numpy(s).squeeze()) == 0.0


def test_one_step_target_recovers_the_data_behind_an_exact_two_step_teacher():
    # A teacher that knows the data (one image c) exactly: two of its DDIM steps and one of the student's
    # land on the same z, so the target is c, at every position of the grid (the last step ends at x_0).
    schedule = NoiseSchedule(1000, "cosine", "v_prediction")
    rng = np.random.default_rng(0)
    c = np.clip(rng.normal(0, 0.5, (1, 4, 4, 1)), -1, 1).astype(np.float32)
    for n in (4, 8):
        position = np.arange(n, dtype=np.float32)
        t, t_mid, t_next = distillation.trailing_grid(position, float(n), 1000)
        images = np.repeat(c, n, axis=0)
        noise = rng.standard_normal(images.shape).astype(np.float32)
        alpha, sigma = distillation.alpha_sigma(t, schedule.alphas_cumprod, 4)
        z = alpha * images + sigma * noise
        z_step = z
        for start, end in ((t, t_mid), (t_mid, t_next)):
            a, s = distillation.alpha_sigma(start, schedule.alphas_cumprod, 4)
            v = distillation.velocity(images, (z_step - a * images) / s, a, s)  # the exact v at z_step
            x0, eps = distillation.x0_and_eps(v, z_step, a, s, "v_prediction")
            z_step = distillation.ddim_step(x0, eps, *distillation.alpha_sigma(end, schedule.alphas_cumprod, 4))
        target = distillation.one_step_target(z, z_step, alpha, sigma,
                                              *distillation.alpha_sigma(t_next, schedule.alphas_cumprod, 4))
        np.testing.assert_allclose(to_numpy(target), images, atol=2e-3)


def test_guided_output_is_classifier_free_guidance_per_example():
    cond, uncond = np.ones((2, 2, 2, 1), np.float32), np.zeros((2, 2, 2, 1), np.float32)
    out = to_numpy(distillation.guided_output(cond, uncond, np.array([1.0, 3.0], np.float32)))
    np.testing.assert_allclose(out[0], 1.0)
    np.testing.assert_allclose(out[1], 3.0)


def test_student_of_a_teacher_starts_as_the_teacher_at_every_guidance_scale():
    teacher = tiny_unet()
    student = GuidanceDistillation.student_of(teacher)
    assert student.guidance_input and student.trainable and len(student.inputs) == 4
    x, y = data(4)
    t = np.array([0, 100, 500, 999], np.int32)
    want = to_numpy(teacher([x, t, y]))
    for scale in (0.0, 1.0, 4.5):
        got = to_numpy(student([x, t, y, np.full(4, scale, np.float32)]))
        np.testing.assert_allclose(got, want, atol=1e-5)
    # The guidance branch is trained: the scale matters once its last layer moves.
    layer = student.get_layer("guidance_mlp2")
    layer.set_weights([np.full(w.shape, 0.05, np.float32) for w in layer.get_weights()])
    a = to_numpy(student([x, t, y, np.full(4, 1.0, np.float32)]))
    b = to_numpy(student([x, t, y, np.full(4, 4.0, np.float32)]))
    assert np.abs(a - b).max() > 1e-4


def test_guidance_distillation_learns_and_round_trips(tmp_path):
    # A teacher that predicts eps = 0: its guided (x, eps) is a function of z and t per pixel, which the
    # student (starting from the same zero output) can learn in a few dozen steps.
    teacher = tiny_unet(random_output=False)
    model = GuidanceDistillation(teacher, GuidanceDistillation.student_of(teacher), num_train_timesteps=50,
                                 guidance_range=(1.0, 3.0), sample_steps=4, seed=0)
    model.compile(keras.optimizers.Adam(3e-3))
    teacher_before = weights_of(teacher)
    x, y = data()
    before = fixed_loss(model, x, y)
    model.fit(x, y, batch_size=16, epochs=20, verbose=0)
    after = fixed_loss(model, x, y)
    assert after < 0.8 * before, (before, after)
    for a, b in zip(teacher_before, weights_of(teacher)):  # the teacher is frozen
        np.testing.assert_array_equal(a, b)
    samples = model.sample(labels=np.arange(10), guidance_scale=2.0, seed=1)
    assert samples.shape == (10, 8, 8, 1) and -1 <= samples.min() and samples.max() <= 1
    network, metadata = model.export_part()
    assert metadata["guidance_input"] and metadata["sampling"] == {"sampler": "ddim", "num_steps": 4}
    assert metadata["input_names"] == ["images", "timesteps", "labels", "guidance_scales"]
    assert metadata["schedule"]["prediction_type"] == "v_prediction"
    assert metadata["schedule"]["timestep_spacing"] == "trailing"
    path = str(tmp_path / "student.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, GuidanceDistillation) and loaded.guidance_range == (1.0, 3.0)
    np.testing.assert_allclose(loaded.sample(labels=np.arange(10), guidance_scale=2.0, seed=1), samples, atol=1e-5)


def test_a_student_samples_in_one_pass_per_step_with_the_scale_as_input():
    calls = []

    def predict(x, t, labels, scales=None):
        calls.append((len(x), None if scales is None else scales.copy()))
        return np.zeros_like(x)

    scheduler = make_scheduler("ddim", {"num_train_timesteps": 100, "beta_schedule": "cosine",
                                        "prediction_type": "v_prediction", "timestep_spacing": "trailing"})
    scheduler.set_timesteps(4)
    from kgen.schedulers import denoise_loop

    x = np.zeros((3, 2, 2, 1), np.float32)
    denoise_loop(predict, scheduler, x, np.array([0, 1, 2]), 10, 2.5, guidance_input=True)
    assert len(calls) == 4 and all(n == 3 and np.all(s == 2.5) for n, s in calls)
    calls.clear()
    denoise_loop(predict, scheduler, x, None, 10, 2.5, guidance_input=True)  # unconditional: no guidance
    assert len(calls) == 4 and all(np.all(s == 1.0) for _, s in calls)


def test_progressive_rounds_halve_the_steps_and_hand_the_student_over():
    student = GuidanceDistillation.student_of(tiny_unet())
    model = ProgressiveDistillation(student, num_train_timesteps=64, teacher_steps=8, student_steps=2,
                                    round_steps=2, seed=0)
    model.compile(keras.optimizers.Adam(1e-2))
    x, y = data(16)
    assert model.rounds == 2 and model.sampling_steps == 4
    logs = model.fit(x, y, batch_size=8, epochs=1, verbose=0).history  # steps 1-2: round 1
    assert logs["student_steps"][-1] == 2.0 and model.sampling_steps == 2
    for a, b in zip(weights_of(model.student), weights_of(model.previous)):  # handed over at the round's end
        np.testing.assert_array_equal(a, b)
    handed = weights_of(model.previous)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # steps 3-4: the last round, no hand-over after it
    assert to_numpy(model.steps_seen) == 4
    for a, b in zip(handed, weights_of(model.previous)):
        np.testing.assert_array_equal(a, b)
    assert max(np.abs(a - b).max() for a, b in zip(weights_of(model.student), handed)) > 1e-5
    assert model.sample(labels=np.arange(3), guidance_scale=2.0).shape == (3, 8, 8, 1)
    assert model.export_part()[1]["sampling"]["num_steps"] == 2


@pytest.mark.parametrize("kwargs, message", [
    ({"teacher_steps": 8, "student_steps": 3}, "power of two"),
    ({"teacher_steps": 4, "student_steps": 4}, "power of two"),
    ({"guidance_range": (3.0, 1.0)}, "guidance_range"),
])
def test_progressive_distillation_refuses_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ProgressiveDistillation(GuidanceDistillation.student_of(tiny_unet()), **kwargs)
    with pytest.raises(ValueError, match="guidance_input=True"):
        ProgressiveDistillation(tiny_unet())


@helpers.once
def test_distill_commands_train_export_and_sample_in_the_students_steps(tmp_path):
    """A DDPM teacher -> stage guidance -> stage steps, each exported; kgen.infer samples with the student's steps."""
    from tests.test_recipes import run

    helpers.make_mnist_dir(str(tmp_path / "mnist"), n_train=64)
    env = {"KGEN_DATA_DIR": str(tmp_path)}
    common = ["--data", "mnist", "--batch-size", "32", "--epochs", "1"]
    teacher_run = str(tmp_path / "ddpm")
    result = run(["-m", "kgen.train", "ddpm", *common, "--widths", "8,16", "--timesteps", "100", "--sample-steps", "2",
                  "--output-dir", teacher_run], **env)
    assert result.returncode == 0, result.stderr[-2000:]
    teacher = str(tmp_path / "teacher.onnx")
    result = run(["-m", "kgen.export", "--format", "onnx", f"{teacher_run}/checkpoints/last.keras",
                  "--output", teacher])
    assert result.returncode == 0, result.stderr[-2000:]
    # One command, both stages: guidance into fast/guidance, its export, then steps into fast/steps. In mixed
    # precision, as the shipped students trained: the export between the stages is float32 all the same.
    out = str(tmp_path / "fast")
    result = run(["-m", "kgen.train", "distill", *common, "--teacher", teacher, "--guidance-epochs", "1",
                  "--epochs", "2", "--teacher-steps", "8", "--student-steps", "2", "--round-steps", "2",
                  "--dtype-policy", "mixed_bfloat16", "--output-dir", out], **env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Stage guidance" in result.stdout and "Stage steps" in result.stdout and "relative_loss" in result.stdout
    # No TensorFlow start-up lines (CUDA probes) on a CPU-only machine, in either stage.
    assert not [line for line in result.stderr.splitlines() if helpers.is_tensorflow_log(line)], result.stderr[:2000]
    guided = os.path.join(out, "guidance", "exported", "mnist_denoiser.onnx")
    assert os.path.isfile(guided)
    # Stage steps alone refuses a teacher whose steps it is not told, before any training.
    result = run(["-m", "kgen.train", "distill", *common, "--stage", "steps", "--teacher", guided,
                  "--teacher-steps", "16", "--output-dir", str(tmp_path / "refused")], **env)
    assert result.returncode == 2 and "samples in 8 steps; give --teacher-steps 8" in result.stderr
    assert not os.path.exists(tmp_path / "refused")
    fast_run, fast = os.path.join(out, "steps"), str(tmp_path / "fast.onnx")
    result = run(["-m", "kgen.export", "--format", "onnx", f"{fast_run}/checkpoints/last.keras", "--output", fast])
    assert result.returncode == 0, result.stderr[-2000:]
    with open(str(tmp_path / "fast.json")) as f:
        card = json.load(f)
    # The card counts the teacher's and the first stage's training too: 2 + 2 + 4 steps, one chunk each.
    assert card["trainer"] == "ProgressiveDistillation" and card["steps"] == 8
    assert [chunk["steps"] if "steps" in chunk else chunk["step_end"] - chunk["step_start"]
            for chunk in card["chunks"]] == [2, 2, 4], card["chunks"]

    from kgen.infer import runtime
    from kgen.infer.sample import draw, own_sampling

    model = runtime.load(fast)
    assert model.metadata["sampling"]["num_steps"] == 2 and model.guidance_input
    passes = []
    predict = model.denoiser_predict

    def counting(batch_size=256):
        inner = predict(batch_size)

        def run_once(*args):
            passes.append(len(args[0]))
            return inner(*args)
        return run_once

    model.denoiser_predict = counting
    assert own_sampling(model) == ("ddim", 2)
    images = draw(model, 0, 0, np.arange(10), *own_sampling(model), guidance_scale=3.0, progress=False)
    assert images.shape == (10, 28, 28, 1) and passes == [10, 10]  # 2 steps, one pass each, guidance included
    result = run(["-m", "kgen.infer", "sample", "--model", fast, "--labels", "all",
                  "--output-dir", str(tmp_path / "samples")])
    assert result.returncode == 0, result.stderr[-2000:]
    assert len([f for f in os.listdir(tmp_path / "samples") if f.startswith("sample_")]) == 10
    # The whole sampler as one graph: the student's steps by default, its one pass per step inside.
    result = run(["-m", "kgen.export", "--sampler", "ddim", fast,
                  "--sampler-output", str(tmp_path / "fast_sampler.onnx")])
    assert result.returncode == 0 and "ddim-2 sampler graph" in result.stdout, result.stderr[-2000:]
    graph = runtime.load(str(tmp_path / "fast_sampler.onnx"))
    np.testing.assert_allclose(draw(graph, 0, 0, np.arange(10), guidance_scale=3.0, progress=False), images,
                               atol=2e-3)
