"""Scheduler math against independent float64 computations."""

import math

import numpy as np
import pytest

from kgen.objectives import denoising
from kgen.schedulers import (
    DDIMScheduler,
    DDPMScheduler,
    NoiseSchedule,
    denoise_loop,
    make_beta_schedule,
    partial_denoise,
)
from tests.helpers import to_numpy


def test_linear_betas_match_ho_et_al():
    betas = make_beta_schedule("linear", 1000)
    assert betas[0] == pytest.approx(1e-4) and betas[-1] == pytest.approx(0.02)
    assert betas[499] == pytest.approx(1e-4 + 499 * (0.02 - 1e-4) / 999)
    # Other T keep the same total noise: 1000 / T times larger steps.
    assert make_beta_schedule("linear", 250)[-1] == pytest.approx(0.08)


def test_cosine_alpha_bar_is_the_closed_form():
    T, s = 1000, 0.008
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    alpha_bar = np.cumprod(1.0 - make_beta_schedule("cosine", T))
    for t in (0, 10, 500, 900):  # far from the clipped last steps
        assert alpha_bar[t] == pytest.approx(f(t + 1) / f(0), rel=1e-9)
    assert make_beta_schedule("cosine", T).max() <= 0.999


def test_unknown_schedule_and_prediction_type_are_rejected():
    with pytest.raises(ValueError, match="accepted: linear, cosine"):
        make_beta_schedule("quadratic", 10)
    with pytest.raises(ValueError, match="prediction_type"):
        NoiseSchedule(10, prediction_type="x0")


def test_set_timesteps_is_descending_and_spans_the_range():
    s = NoiseSchedule(1000)
    steps = s.set_timesteps(50)
    assert len(steps) == 50 and steps[0] == 999 and steps[-1] == 0 and np.all(np.diff(steps) < 0)
    assert list(s.set_timesteps(None, start=4)) == [4, 3, 2, 1, 0]
    with pytest.raises(ValueError, match="num_inference_steps must be in 1..5"):
        s.set_timesteps(6, start=4)


def test_add_noise_numpy_matches_keras_ops():
    s = NoiseSchedule(100, "cosine")
    rng = np.random.default_rng(0)
    x0, noise = rng.uniform(-1, 1, (4, 5, 5, 2)), rng.standard_normal((4, 5, 5, 2))
    t = np.array([0, 10, 50, 99])
    ab = np.cumprod(1 - make_beta_schedule("cosine", 100))[t][:, None, None, None]
    expected = np.sqrt(ab) * x0 + np.sqrt(1 - ab) * noise
    np.testing.assert_allclose(s.add_noise(x0, noise, t), expected, atol=1e-6)
    ops_value = to_numpy(denoising.add_noise(x0.astype("float32"), noise.astype("float32"), t, s.alphas_cumprod))
    np.testing.assert_allclose(ops_value, expected, atol=1e-5)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_prediction_types_recover_x0_and_noise(prediction_type):
    s = NoiseSchedule(100, "linear", prediction_type, clip_sample=False)
    rng = np.random.default_rng(1)
    x0, noise, t = rng.uniform(-1, 1, (3, 4, 4, 1)), rng.standard_normal((3, 4, 4, 1)), np.array([5, 40, 90])
    x_t = s.add_noise(x0, noise, t)
    target = noise if prediction_type == "epsilon" else s.get_velocity(x0, noise, t)
    ops_target = to_numpy(denoising.regression_target(
        x0.astype("float32"), noise.astype("float32"), t, s.alphas_cumprod, prediction_type))
    np.testing.assert_allclose(ops_target, target, atol=1e-5)
    got_x0, got_eps = s.predict_original_and_noise(target, t, x_t)
    np.testing.assert_allclose(got_x0, x0, atol=1e-4)
    np.testing.assert_allclose(got_eps, noise, atol=1e-4)


def test_ddpm_step_is_the_gaussian_posterior():
    """Posterior of x_{t-1} from the product of q(x_{t-1}|x_0) and q(x_t|x_{t-1}) (precision form)."""
    T = 50
    s = DDPMScheduler(T, "linear", clip_sample=False)
    s.set_timesteps(T)
    betas = make_beta_schedule("linear", T)
    rng = np.random.default_rng(2)
    x0, eps = rng.uniform(-1, 1, (2, 3, 3, 1)), rng.standard_normal((2, 3, 3, 1))
    for t in (1, 20, 49):
        x_t = s.add_noise(x0, eps, np.full(2, t)).astype(np.float64)
        ab_prev = np.prod(1 - betas[:t])
        precision = 1 / (1 - ab_prev) + (1 - betas[t]) / betas[t]
        mean = (np.sqrt(ab_prev) * x0 / (1 - ab_prev) + np.sqrt(1 - betas[t]) * x_t / betas[t]) / precision
        z = rng.standard_normal(x0.shape)
        expected = mean + np.sqrt(1 / precision) * z
        np.testing.assert_allclose(s.step(eps, t, x_t, noise=z), expected, atol=2e-5)
    # The last step returns the predicted x_0 itself, without noise.
    x_0 = s.add_noise(x0, eps, np.zeros(2, int))
    np.testing.assert_allclose(s.step(eps, 0, x_0, noise=z), x0, atol=1e-5)


def test_ddim_with_every_step_and_eta_1_is_ddpm():
    """Same seed, same network: DDIM(eta=1, T steps) and DDPM take the same path."""
    T = 40
    weights = np.random.default_rng(3).standard_normal((1, 1, 1, 2))

    def predict(x, t, labels):  # a fixed, t-dependent "network"
        return np.tanh(x * weights[..., :1] + t[:, None, None, None] / T * weights[..., 1:])

    start = np.random.default_rng(4).standard_normal((3, 4, 4, 1))
    paths = []
    for scheduler in (DDPMScheduler(T, "cosine"), DDIMScheduler(T, "cosine", eta=1.0)):
        scheduler.set_timesteps(T)
        paths.append(denoise_loop(predict, scheduler, start, rng=np.random.default_rng(5)))
    np.testing.assert_allclose(paths[0], paths[1], atol=1e-5)
    # eta = 0 is deterministic: the noise source does not matter.
    ddim = DDIMScheduler(T, "cosine", eta=0.0)
    ddim.set_timesteps(10)
    a = denoise_loop(predict, ddim, start, rng=np.random.default_rng(0))
    b = denoise_loop(predict, ddim, start, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)


def test_guidance_combines_conditional_and_unconditional_outputs():
    calls = []

    def predict(x, t, labels):
        calls.append(labels.copy())
        return np.where(labels[:, None, None, None] == 10, 0.0, 1.0) * np.ones_like(x)

    s = DDIMScheduler(10, "linear", clip_sample=False)
    s.set_timesteps(1)
    x = np.zeros((2, 2, 2, 1), np.float32)
    out = denoise_loop(predict, s, x, labels=np.array([1, 2]), null_label=10, guidance_scale=3.0)
    assert list(calls[0]) == [1, 2, 10, 10]
    ab = s.alphas_cumprod[9]
    # eps = 0 + 3 * (1 - 0) = 3; x0 = (0 - sqrt(1 - ab) * 3) / sqrt(ab), clipped to [-1, 1].
    np.testing.assert_allclose(out, np.clip(-np.sqrt(1 - ab) * 3 / np.sqrt(ab), -1, 1), atol=1e-6)


def test_partial_denoise_t0_returns_input_and_checks_t():
    images = np.random.default_rng(0).uniform(-1, 1, (2, 4, 4, 1)).astype(np.float32)
    s = DDPMScheduler(20)
    noised, denoised = partial_denoise(lambda x, t, y: np.zeros_like(x), s, images, 0)
    np.testing.assert_array_equal(denoised, images)
    with pytest.raises(ValueError, match=r"t must be in 0..20"):
        partial_denoise(lambda x, t, y: x, s, images, 21)
    # t steps of DDPM visit exactly t indices, from t - 1 down to 0.
    partial_denoise(lambda x, t, y: np.zeros_like(x), s, images, 5)
    assert list(s.timesteps) == [4, 3, 2, 1, 0]


def _gaussian_data_model(schedule, s):
    """The exact noise prediction when the data is N(0, s^2): E[x_0 | x_t] in closed form."""
    def predict(x, t):
        ab = schedule.alphas_cumprod[t]
        x0 = np.sqrt(ab) * s**2 * x / (ab * s**2 + 1.0 - ab)
        return (x - np.sqrt(ab) * x0) / np.sqrt(1.0 - ab)
    return predict


def _solve(scheduler, predict, x, steps):
    scheduler.set_timesteps(steps)
    for t in scheduler.timesteps:
        x = scheduler.step(predict(np.asarray(x, np.float64), int(t)), int(t), x)
    return np.asarray(x, np.float64)


def test_dpm_solver_pp_converges_at_second_order_on_the_gaussian_ode():
    from kgen.schedulers import DDIMScheduler, DPMSolverMultistepScheduler

    config = {"num_train_timesteps": 1000, "beta_schedule": "cosine", "clip_sample": False}
    dpm, ddim = DPMSolverMultistepScheduler(**config), DDIMScheduler(**config)
    s = 0.5
    predict = _gaussian_data_model(dpm, s)
    x_T = np.linspace(-2.0, 2.0, 9)
    # The probability-flow ODE of Gaussian data keeps each point's quantile: x_t / sqrt(ab s^2 + 1 - ab)
    # is constant; the solvers end with the x_0 prediction at index 0.
    ab_T, ab_0 = dpm.alphas_cumprod[-1], dpm.alphas_cumprod[0]
    x_at_0 = x_T / np.sqrt(ab_T * s**2 + 1 - ab_T) * np.sqrt(ab_0 * s**2 + 1 - ab_0)
    exact = np.sqrt(ab_0) * s**2 * x_at_0 / (ab_0 * s**2 + 1 - ab_0)
    error = {(name, n): np.abs(_solve(sch, predict, x_T, n) - exact).max()
             for name, sch in (("dpm", dpm), ("ddim", ddim)) for n in (10, 20, 40, 80)}
    assert error["dpm", 10] < error["ddim", 10] / 2, error
    assert error["dpm", 20] < error["ddim", 80] / 4, error  # 20 solver steps beat 80 DDIM steps
    assert error["dpm", 10] / error["dpm", 20] > 4.0, error  # at least second order per halving
    assert 1.8 < error["ddim", 20] / error["ddim", 40] < 2.2, error  # DDIM is first order


def test_dpm_solver_pp_first_step_is_ddim_and_state_resets():
    from kgen.schedulers import DDIMScheduler, DPMSolverMultistepScheduler

    rng = np.random.default_rng(0)
    x, out = rng.standard_normal((2, 3, 4, 4, 1))
    dpm, ddim = (DPMSolverMultistepScheduler(100, "linear", clip_sample=False),
                 DDIMScheduler(100, "linear", clip_sample=False))
    for scheduler in (dpm, ddim):
        scheduler.set_timesteps(10)
    t = int(dpm.timesteps[0])
    first = dpm.step(out, t, x)
    np.testing.assert_allclose(first, ddim.step(out, t, x), rtol=1e-5, atol=1e-6)
    # A constant noise prediction keeps DDIM's x_0 constant; another one makes the second-order
    # term (the change of x_0 between steps) non-zero.
    other = rng.standard_normal(out.shape)
    second = dpm.step(other, int(dpm.timesteps[1]), first)
    assert np.abs(second - ddim.step(other, int(dpm.timesteps[1]), first)).max() > 1e-3
    dpm.set_timesteps(10)  # a new sampling starts first-order again
    np.testing.assert_allclose(dpm.step(out, t, x), first, rtol=1e-6)


# The samplers as tables (what the ONNX sampler graph runs) ------------------------------------


@pytest.mark.parametrize("sampler,eta", [("ddim", 0.0), ("ddim", 0.7), ("dpmsolver++", 0.0)])
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("clip_sample", [True, False])
def test_step_coefficients_reproduce_each_scheduler(sampler, eta, prediction_type, clip_sample):
    from kgen.schedulers import apply_steps, denoise_loop, draw_step_noise, make_scheduler, step_coefficients

    config = {"num_train_timesteps": 100, "beta_schedule": "cosine", "prediction_type": prediction_type,
              "clip_sample": clip_sample}
    weights = np.random.default_rng(1).normal(size=100)

    def predict(x, t):  # a smooth, t-dependent stand-in for a network
        return np.tanh(1.5 * x + weights[t]).astype(np.float32)

    shape = (3, 4, 4, 1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    scheduler = make_scheduler(sampler, config, eta)
    scheduler.set_timesteps(12)
    want = denoise_loop(lambda x, t, labels: predict(x, int(t[0])), scheduler, x, rng=rng)
    table = step_coefficients(sampler, config, 12, eta)
    replay = np.random.default_rng(0)
    replay.standard_normal(shape)  # the initial x, drawn first as above
    noise = draw_step_noise(table, shape, replay)
    got = apply_steps(table, predict, x, noise)
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert (table["sigma"] > 0).any() == (eta > 0)


def test_step_coefficients_refuse_what_they_cannot_express():
    from kgen.schedulers import step_coefficients

    config = {"num_train_timesteps": 100, "beta_schedule": "cosine", "prediction_type": "epsilon"}
    with pytest.raises(ValueError, match="one of ddim, dpmsolver\\+\\+"):
        step_coefficients("ddpm", config, 10)
    with pytest.raises(ValueError, match="eta applies to ddim only"):
        step_coefficients("dpmsolver++", config, 10, eta=0.5)
