"""Metrics against independent float64 computations (scipy, scikit-image, loops)."""

import numpy as np
import pytest
from scipy import linalg

from kgen import metrics


def _scipy_frechet(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_frechet_identical_sets_is_zero():
    x = np.random.default_rng(0).normal(size=(500, 16))
    result = metrics.frechet_distance(x, x)
    assert abs(result["value"]) < 1e-8 and result["n_a"] == result["n_b"] == 500


def test_frechet_closed_form_for_known_gaussians():
    rng = np.random.default_rng(1)
    d = 6
    q1, _ = np.linalg.qr(rng.normal(size=(d, d)))
    q2, _ = np.linalg.qr(rng.normal(size=(d, d)))
    s1 = q1 @ np.diag(rng.uniform(0.5, 2, d)) @ q1.T
    s2 = q2 @ np.diag(rng.uniform(0.5, 2, d)) @ q2.T
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expected = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real))
    assert metrics.frechet_distance_from_stats(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
    # Diagonal covariances: sum of per-dimension 1-D Fréchet distances.
    v1, v2 = rng.uniform(0.5, 2, d), rng.uniform(0.5, 2, d)
    diag = float(((mu1 - mu2) ** 2).sum() + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2))
    got = metrics.frechet_distance_from_stats(mu1, np.diag(v1), mu2, np.diag(v2))
    assert got == pytest.approx(diag, rel=1e-10)


def test_frechet_on_samples_matches_scipy_sqrtm():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(400, 10)) @ rng.normal(size=(10, 10))
    b = rng.normal(0.3, 1.0, size=(300, 10)) @ rng.normal(size=(10, 10))
    assert metrics.frechet_distance(a, b)["value"] == pytest.approx(_scipy_frechet(a, b), rel=1e-6)


def test_kid_matches_direct_float64_loop():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(30, 5)), rng.normal(0.5, 1.0, size=(25, 5))
    d = a.shape[1]
    k = lambda x, y: (np.dot(x, y) / d + 1.0) ** 3
    m, n = len(a), len(b)
    xx = sum(k(a[i], a[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(b[i], b[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(a[i], b[j]) for i in range(m) for j in range(n)) / (m * n)
    result = metrics.kernel_inception_distance(a, b, subset_size=100, num_subsets=3)
    assert result["subset_size"] == 25
    full = metrics.kernel_inception_distance(a[:25], b, subset_size=25, num_subsets=1)
    xx25 = sum(k(a[i], a[j]) for i in range(25) for j in range(25) if i != j) / (25 * 24)
    xy25 = sum(k(a[i], b[j]) for i in range(25) for j in range(25)) / (25 * 25)
    assert full["value"] == pytest.approx(xx25 + yy - 2 * xy25, rel=1e-10)
    assert xx + yy - 2 * xy > 0.05  # the two sets differ, so KID is clearly positive


def test_kid_unbiased_near_zero_for_same_distribution():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8))
    result = metrics.kernel_inception_distance(a, b, subset_size=500, num_subsets=20)
    assert abs(result["value"]) < 3 * result["std"] + 1e-3


def test_psnr_mse_and_binarized_accuracy():
    rng = np.random.default_rng(5)
    a = rng.uniform(-1, 1, size=(3, 8, 8, 1))
    b = a + 0.1
    np.testing.assert_allclose(metrics.mse(a, b), 0.01)
    np.testing.assert_allclose(metrics.psnr(a, b), 10 * np.log10(4 / 0.01))
    assert np.isinf(metrics.psnr(a, a)).all()
    expected = ((a > 0) == (b > 0)).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(metrics.binarized_accuracy(a, b), expected)


def test_ssim_matches_scikit_image():
    skm = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(6)
    a = rng.uniform(-1, 1, size=(2, 28, 28, 3))
    b = np.clip(a + rng.normal(0, 0.2, size=a.shape), -1, 1)
    ours = metrics.ssim(a, b)
    for i in range(2):
        ref = skm.structural_similarity(
            a[i], b[i], data_range=2.0, channel_axis=-1, gaussian_weights=True,
            sigma=1.5, use_sample_covariance=False,
        )
        assert ours[i] == pytest.approx(ref, abs=1e-6)
    np.testing.assert_allclose(metrics.ssim(a, a), 1.0)


def test_classifier_scores():
    probs = np.eye(4)[[0, 1, 2, 3, 0, 1, 2, 2]]
    acc = metrics.conditional_accuracy(probs, [0, 1, 2, 3, 0, 1, 2, 3])
    assert acc["accuracy"] == 7 / 8 and acc["per_class"][3] == 0.5 and acc["per_class"][0] == 1.0
    cov = metrics.class_coverage(probs)
    assert cov["histogram"] == [2, 2, 3, 1] and cov["classes_covered"] == 4
    hist = np.array([2, 2, 3, 1]) / 8
    assert cov["kl_to_uniform"] == pytest.approx(np.sum(hist * np.log(hist * 4)))
    collapsed = metrics.class_coverage(np.eye(4)[[1] * 10])
    assert collapsed["classes_covered"] == 1
    assert collapsed["kl_to_uniform"] == pytest.approx(np.log(4))
    # Confident, balanced predictions: IS equals the number of classes.
    assert metrics.inception_score(np.eye(4)[np.arange(40) % 4], splits=2)["value"] == pytest.approx(4.0)
    assert metrics.inception_score(np.full((10, 4), 0.25), splits=1)["value"] == pytest.approx(1.0)


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="feature sizes differ"):
        metrics.frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="num_samples >= 2"):
        metrics.frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="sum to 1"):
        metrics.inception_score(np.ones((3, 4)))
    with pytest.raises(ValueError, match="share one"):
        metrics.mse(np.zeros((1, 4, 4, 1)), np.zeros((1, 4, 4, 3)))


def _linear_gaussian(seed=7, d=5, latent=2, sigma=0.5):
    """p(z) = N(0, I), p(x|z) = N(Wz + b, sigma^2 I): p(x) and p(z|x) are exact."""
    rng = np.random.default_rng(seed)
    w, b = rng.normal(size=(d, latent)), rng.normal(size=d)
    cov_x = w @ w.T + sigma**2 * np.eye(d)
    x = rng.multivariate_normal(b, cov_x, size=6)
    diff = x - b
    log_px = -0.5 * (d * np.log(2 * np.pi) + np.linalg.slogdet(cov_x)[1]
                     + np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov_x), diff))
    post_cov = np.linalg.inv(np.eye(latent) + w.T @ w / sigma**2)
    post_mean = diff @ w @ post_cov.T / sigma**2

    def log_likelihood(x, z):
        return metrics.gaussian_log_prob(x, z @ w.T + b, np.full(d, 2 * np.log(sigma)))

    return x, log_px, post_mean, post_cov, log_likelihood


def test_iwae_equals_exact_log_likelihood_with_exact_posterior():
    # With a 1-D latent the exact posterior is a diagonal Gaussian, so q can
    # be exact; then every importance weight equals p(x) and the bound is
    # exact for any k.
    x, log_px, post_mean, post_cov, log_lik = _linear_gaussian(latent=1)
    encode = lambda _: (post_mean, np.full_like(post_mean, np.log(post_cov[0, 0])))
    for k in (1, 5):
        result = metrics.importance_weighted_nll(encode, log_lik, x, num_samples=k)
        np.testing.assert_allclose(result["nll"], -log_px, rtol=1e-10)


def test_iwae_bound_tightens_towards_exact_value():
    x, log_px, post_mean, post_cov, log_lik = _linear_gaussian(latent=2)
    encode = lambda _: (post_mean + 0.3, np.zeros_like(post_mean))  # a poor q
    n1 = metrics.importance_weighted_nll(encode, log_lik, x, num_samples=1, seed=1)["mean"]
    n100 = metrics.importance_weighted_nll(encode, log_lik, x, num_samples=100, seed=1)["mean"]
    n5000 = metrics.importance_weighted_nll(encode, log_lik, x, num_samples=5000, seed=1)["mean"]
    exact = -log_px.mean()
    assert n1 > n100 > n5000 > exact - 0.02
    assert n5000 - exact < 0.05


def test_elbo_terms_against_direct_formulas():
    rng = np.random.default_rng(8)
    mean, log_var = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    var = np.exp(log_var)
    expected = 0.5 * np.sum(var + mean**2 - 1 - log_var, axis=1)
    np.testing.assert_allclose(metrics.gaussian_kl(mean, log_var), expected)
    x = (rng.uniform(size=(4, 6)) > 0.5).astype(float)
    logits = rng.normal(size=(4, 6))
    p = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(
        metrics.bernoulli_log_prob(x, logits), np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
    )
    assert metrics.nats_to_bits_per_dim(3072 * np.log(2) * 4.5, 3072) == pytest.approx(4.5)


def test_nearest_neighbour_distances_match_brute_force_and_flag_copies():
    from kgen.metrics import memorization, nearest_neighbour_distances

    rng = np.random.default_rng(0)
    train, queries = rng.uniform(-1, 1, (50, 4, 4, 3)), rng.uniform(-1, 1, (7, 4, 4, 3))
    brute = np.linalg.norm(queries.reshape(7, 1, -1) - train.reshape(1, 50, -1), axis=-1).min(axis=1)
    np.testing.assert_allclose(nearest_neighbour_distances(queries, train, batch_size=3), brute, rtol=1e-5)
    test = rng.uniform(-1, 1, (20, 4, 4, 3))
    copies = train[:10] + 1e-3  # a generator that returns its training images
    result = memorization(copies, test, train)
    assert result["ratio"] < 0.01 and result["near_copies"] == 1.0 and (result["n"], result["n_test"]) == (10, 20)
    fresh = memorization(rng.uniform(-1, 1, (30, 4, 4, 3)), test, train)
    assert 0.7 < fresh["ratio"] < 1.3 and fresh["near_copies"] < 0.2


def test_laplacian_variance_matches_scipy_and_falls_with_blur():
    from scipy import ndimage

    from kgen.metrics import laplacian_variance

    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (3, 12, 10, 3))
    grey = images.mean(-1)
    want = [ndimage.laplace(g)[1:-1, 1:-1].var() for g in grey]
    np.testing.assert_allclose(laplacian_variance(images), want, rtol=1e-12)
    blurred = ndimage.gaussian_filter(images, sigma=(0, 1, 1, 0))
    assert np.all(laplacian_variance(blurred) < 0.2 * laplacian_variance(images))
    assert laplacian_variance(np.full((1, 5, 5, 1), 0.3))[0] == 0.0
