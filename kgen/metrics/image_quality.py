"""Reconstruction measures on image batches, in float64 numpy.

Images are (N, H, W, C) in a known `data_range`; kgen's own range is
[-1, 1], so `data_range` defaults to 2.
"""

import numpy as np


def _pair(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"images must share one (N, H, W, C) shape; got {a.shape} and {b.shape}.")
    return a, b


def mse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean squared error per image, shape (N,)."""
    a, b = _pair(a, b)
    return ((a - b) ** 2).mean(axis=(1, 2, 3))


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 2.0) -> np.ndarray:
    """Peak signal-to-noise ratio in dB per image, shape (N,); inf where equal."""
    error = mse(a, b)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(data_range**2 / error)


def _gaussian_filter(x, sigma=1.5, radius=5):
    """Separable Gaussian blur over H and W of (N, H, W, C), 'valid' borders."""
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (t / sigma) ** 2)
    kernel /= kernel.sum()
    size = len(kernel)
    h = sum(kernel[i] * x[:, i : x.shape[1] - size + 1 + i] for i in range(size))
    return sum(kernel[i] * h[:, :, i : h.shape[2] - size + 1 + i] for i in range(size))


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 2.0) -> np.ndarray:
    """Structural similarity per image, shape (N,).

    The convention of Wang et al. (2004) and scikit-image's
    `gaussian_weights=True`: an 11x11 Gaussian window with sigma 1.5,
    K1 = 0.01, K2 = 0.03, population (co)variances, averaged over the valid
    window positions and the channels.

    References:
        Wang et al., "Image Quality Assessment: From Error Visibility to
        Structural Similarity", IEEE TIP 2004.
    """
    a, b = _pair(a, b)
    if min(a.shape[1:3]) < 11:
        raise ValueError(f"ssim needs images of at least 11x11; got {a.shape[1:3]}.")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = _gaussian_filter(a), _gaussian_filter(b)
    var_a = _gaussian_filter(a * a) - mu_a**2
    var_b = _gaussian_filter(b * b) - mu_b**2
    cov = _gaussian_filter(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.mean(axis=(1, 2, 3))


def binarized_accuracy(a: np.ndarray, b: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Fraction of pixels on the same side of `threshold`, per image.

    With kgen's [-1, 1] range the default threshold 0 is the mid-grey level
    (pixel value 127.5 of 255), the usual binarisation of MNIST.
    """
    a, b = _pair(a, b)
    return ((a > threshold) == (b > threshold)).mean(axis=(1, 2, 3))


def laplacian_variance(images: np.ndarray) -> np.ndarray:
    """Sharpness per image: the variance of the 4-neighbour Laplacian of its grey levels.

    The classic focus measure (Pech-Pacheco et al., ICPR 2000): blur removes
    high frequencies and lowers it; compare a model's samples with real
    images of the same data at the same scale ([-1, 1] here). Colour images
    are averaged over channels first; borders are left out (valid region).

    Args:
        images: array (N, H, W, C), H and W at least 3.

    Returns:
        float64 array (N,).
    """
    grey = np.asarray(images, np.float64).mean(axis=-1)
    if grey.ndim != 3 or min(grey.shape[1:]) < 3:
        raise ValueError(f"images must be (N, H, W, C) with H, W >= 3; got {np.shape(images)}.")
    lap = (grey[:, :-2, 1:-1] + grey[:, 2:, 1:-1] + grey[:, 1:-1, :-2] + grey[:, 1:-1, 2:]
           - 4.0 * grey[:, 1:-1, 1:-1])
    return lap.reshape(len(lap), -1).var(axis=1)
