"""Hand-written DCGAN training loops in each framework, for benchmarks only.

Each builds the same networks as `kgen.models.DCGANGenerator` /
`DCGANDiscriminator` for 28x28x1 images (latent 100, width 64), the same
non-saturating loss with one-sided label smoothing, and Adam(2e-4, 0.5),
and exposes `make_step(batch_size) -> (step(images), sync())`.
"""
