"""The GAN objective (Goodfellow et al. 2014), non-saturating form.

Losses take raw discriminator logits; labels are 1 for real, 0 for fake.
"""

from typing import Union

from keras import ops

from kgen.utils.types import Tensor


def sigmoid_cross_entropy(logits: Tensor, targets: Union[Tensor, float]) -> Tensor:
    """Mean binary cross-entropy between `sigmoid(logits)` and `targets`.

    Uses softplus so that large logits do not overflow:
    `-t log s(x) - (1 - t) log(1 - s(x)) = t softplus(-x) + (1 - t) softplus(x)`.
    """
    logits = ops.cast(logits, "float32")
    return ops.mean(targets * ops.softplus(-logits) + (1.0 - targets) * ops.softplus(logits))


def discriminator_losses(real_logits: Tensor, fake_logits: Tensor, real_label: float = 1.0) -> tuple:
    """Discriminator losses on real and on fake images.

    Args:
        real_logits: tensor. Discriminator logits for real images.
        fake_logits: tensor. Discriminator logits for generated images.
        real_label: float. Target for real images; below 1 gives one-sided
            label smoothing (Salimans et al. 2016), which keeps the
            discriminator from growing overconfident. Defaults to `1.0`.

    Returns:
        `(real_loss, fake_loss)`; the discriminator minimises their sum.
    """
    return (
        sigmoid_cross_entropy(real_logits, real_label),
        sigmoid_cross_entropy(fake_logits, 0.0),
    )


def generator_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating generator loss: `-log D(G(z))`, averaged."""
    return sigmoid_cross_entropy(fake_logits, 1.0)
