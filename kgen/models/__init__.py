"""Networks: pure Keras layers and models, no losses and no optimizers."""

from kgen.models.dcgan_discriminator import DCGANDiscriminator
from kgen.models.dcgan_generator import DCGANGenerator
from kgen.models.image_classifier import ImageClassifier
from kgen.models.shared_log_scale import SharedLogScale
from kgen.models.unet import SinusoidalEmbedding, SpatialAttention, UNet
from kgen.models.vae_decoder import VAEDecoder
from kgen.models.vae_encoder import VAEEncoder

__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "ImageClassifier",
    "SharedLogScale",
    "SinusoidalEmbedding",
    "SpatialAttention",
    "UNet",
    "VAEDecoder",
    "VAEEncoder",
]
