import numpy as np

from kgen.objectives import adversarial
from tests.helpers import to_numpy


def _bce64(logits, target):
    p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    return np.mean(-target * np.log(p) - (1 - target) * np.log(1 - p))


def test_losses_match_float64_cross_entropy():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(64, 1)).astype("float32") * 3
    fake = rng.normal(size=(64, 1)).astype("float32") * 3
    r, f = adversarial.discriminator_losses(real, fake, real_label=0.9)
    np.testing.assert_allclose(to_numpy(r), _bce64(real, 0.9), rtol=1e-5)
    np.testing.assert_allclose(to_numpy(f), _bce64(fake, 0.0), rtol=1e-5)
    np.testing.assert_allclose(to_numpy(adversarial.generator_loss(fake)), _bce64(fake, 1.0), rtol=1e-5)


def test_large_logits_stay_finite():
    logits = np.array([[-200.0], [200.0]], "float32")
    value = to_numpy(adversarial.sigmoid_cross_entropy(logits, 1.0))
    np.testing.assert_allclose(value, 100.0, rtol=1e-5)
