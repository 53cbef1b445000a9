"""Networks: pure Keras layers and models, no losses and no optimizers."""

from kgen.models.dcgan_discriminator import DCGANDiscriminator
from kgen.models.dcgan_generator import DCGANGenerator
from kgen.models.image_classifier import ImageClassifier

__all__ = ["DCGANDiscriminator", "DCGANGenerator", "ImageClassifier"]
