"""UNet denoiser for diffusion models."""

import math

import keras
from keras import ops

from kgen.models import layout
from kgen.models.conv2d import Conv2D
from kgen.models.group_normalization import GroupNormalization


@keras.saving.register_keras_serializable(package="kgen")
class SinusoidalEmbedding(keras.layers.Layer):
    """Transformer-style sinusoidal features of a (batch,) timestep vector.

    Args:
        dim: int. Output size (even).
        max_period: float. Longest wavelength. Defaults to `10000`.
    """

    def __init__(self, dim, max_period=10000.0, **kwargs):
        super().__init__(**kwargs)
        if int(dim) < 2 or int(dim) % 2:
            raise ValueError(f"dim must be an even number >= 2; got {dim}.")
        self.dim = int(dim)
        self.max_period = float(max_period)

    def call(self, timesteps):
        half = self.dim // 2
        freqs = ops.exp(-math.log(self.max_period) * ops.arange(half, dtype="float32") / half)
        args = ops.cast(ops.reshape(timesteps, (-1, 1)), "float32") * freqs[None, :]
        return ops.concatenate([ops.cos(args), ops.sin(args)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "max_period": self.max_period}


@keras.saving.register_keras_serializable(package="kgen")
class SpatialAttention(keras.layers.Layer):
    """Multi-head self-attention over the pixels of a feature map, residual.

    Args:
        num_heads: int. Defaults to `1`.
        data_format: str. `"channels_last"` or `"channels_first"`.
    """

    def __init__(self, num_heads=1, data_format="channels_last", groups=8, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.data_format = data_format
        self.groups = int(groups)

    def build(self, input_shape):
        axis = layout.channel_axis(self.data_format)
        channels = int(input_shape[axis])
        self.norm = GroupNormalization(min(self.groups, channels), axis=axis, name="norm")
        self.norm.build(input_shape)
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads, channels // self.num_heads, name="attention"
        )
        self.attention.build((None, None, channels), (None, None, channels))

    def call(self, x):
        h = self.norm(x)
        if self.data_format == "channels_first":
            h = ops.transpose(h, (0, 2, 3, 1))
        batch, height, width, channels = ops.shape(h)
        seq = ops.reshape(h, (batch, height * width, channels))
        out = ops.reshape(self.attention(seq, seq), (batch, height, width, channels))
        if self.data_format == "channels_first":
            out = ops.transpose(out, (0, 3, 1, 2))
        return x + out

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "data_format": self.data_format,
                "groups": self.groups}


def _res_block(x, emb, width, fmt, groups, dropout, name, adaptive_norm=False):
    axis = layout.channel_axis(fmt)
    conv = lambda w, k, n: Conv2D(w, k, padding="same", data_format=fmt, name=n)  # noqa: E731
    per_channel = keras.layers.Reshape((width, 1, 1) if fmt == "channels_first" else (1, 1, width))
    h = GroupNormalization(min(groups, x.shape[axis]), axis=axis, name=f"{name}_norm1")(x)
    h = conv(width, 3, f"{name}_conv1")(keras.layers.Activation("silu")(h))
    emb = keras.layers.Activation("silu")(emb)
    if adaptive_norm:
        # AdaGN: norm(h) * (1 + scale(emb)) + shift(emb); the bias of ones is the "1 +".
        h = GroupNormalization(min(groups, width), axis=axis, center=False, scale=False,
                               name=f"{name}_norm2")(h)
        scale = keras.layers.Dense(width, bias_initializer="ones", name=f"{name}_emb_scale")(emb)
        shift = keras.layers.Dense(width, name=f"{name}_emb_shift")(emb)
        h = keras.layers.Multiply()([h, per_channel(scale)])
        h = keras.layers.Add()([h, keras.layers.Reshape(per_channel.target_shape)(shift)])
    else:
        e = per_channel(keras.layers.Dense(width, name=f"{name}_emb")(emb))
        h = keras.layers.Add()([h, e])
        h = GroupNormalization(min(groups, width), axis=axis, name=f"{name}_norm2")(h)
    h = keras.layers.Activation("silu")(h)
    if dropout:
        h = keras.layers.Dropout(dropout)(h)
    h = conv(width, 3, f"{name}_conv2")(h)
    if x.shape[axis] != width:
        x = conv(width, 1, f"{name}_skip")(x)
    return keras.layers.Add()([x, h])


@keras.saving.register_keras_serializable(package="kgen")
class UNet(keras.Model):
    """Time- and class-conditioned UNet that predicts the noise (or v) of x_t.

    Inputs: `images` (B, H, W, C) noisy images, `timesteps` (B,) int32 in
    [0, T), `labels` (B,) int32 in [0, num_classes], where `num_classes` is
    the "null" class of classifier-free guidance. Output: (B, H, W, C).

    Each level has `num_res_blocks` residual blocks (group norm, SiLU, 3x3
    convolutions, the embedding added in between) at `widths[i]` channels;
    levels are separated by stride-2 convolutions going down and
    nearest-neighbour upsampling going up, with skip connections across.
    Self-attention runs at every level whose resolution is at most
    `attention_resolution`, and in the middle. With `adaptive_norm`, the
    embedding scales and shifts each block's second normalisation (AdaGN,
    Dhariwal and Nichol) instead of being added before it.

    Args:
        image_shape: tuple of int. (H, W, C); H and W divisible by
            2^(len(widths) - 1). Defaults to `(28, 28, 1)`.
        widths: tuple of int. Channels per level. Defaults to `(32, 64, 128)`.
        num_res_blocks: int. Residual blocks per level. Defaults to `1`.
        attention_resolution: int. Largest side with attention.
            Defaults to `8`.
        num_classes: int. Classes; 0 makes the network unconditional.
            Defaults to `10`.
        dropout: float. Defaults to `0.0`.
        groups: int. Group-norm groups. Defaults to `8`.
        data_format: str or None. Layout inside. Defaults to `None`.
        adaptive_norm: bool. AdaGN conditioning. Defaults to `False`.
        guidance_input: bool. A fourth input, `guidance_scales` (B,) float32,
            added to the time embedding through a small MLP whose last layer
            starts at zero: a distilled student (Meng et al.) takes the
            classifier-free guidance scale as an input, and starts as the
            network it was copied from. Defaults to `False`.

    Example:
    >>> unet = UNet((28, 28, 1), widths=(16, 32), num_classes=10)
    >>> eps = unet([images, timesteps, labels])

    References:
        Ho et al., "Denoising Diffusion Probabilistic Models", NeurIPS 2020.
        Ho and Salimans, "Classifier-Free Diffusion Guidance", 2021.
        Dhariwal and Nichol, "Diffusion Models Beat GANs on Image Synthesis",
        NeurIPS 2021 (adaptive group normalisation).
        Meng et al., "On Distillation of Guided Diffusion Models", CVPR 2023
        (the guidance scale as an input).
    """

    def __init__(self, image_shape=(28, 28, 1), widths=(32, 64, 128), num_res_blocks=1,
                 attention_resolution=8, num_classes=10, dropout=0.0, groups=8, data_format=None,
                 adaptive_norm=False, guidance_input=False, **kwargs):
        height, width, channels = (int(d) for d in image_shape)
        factor = 2 ** (len(widths) - 1)
        if not widths or min(widths) < 1 or height % factor or width % factor:
            raise ValueError(
                f"image size {height}x{width} must be divisible by 2^(len(widths) - 1) = {factor} "
                f"and widths positive; got widths={tuple(widths)}."
            )
        if int(num_classes) < 0 or int(num_res_blocks) < 1:
            raise ValueError(f"num_classes must be >= 0 and num_res_blocks >= 1; got {num_classes}, {num_res_blocks}.")
        fmt = layout.resolve_data_format(data_format)
        axis = layout.channel_axis(fmt)
        images = keras.Input((height, width, channels), name="images")
        timesteps = keras.Input((), dtype="int32", name="timesteps")
        labels = keras.Input((), dtype="int32", name="labels")

        emb_dim = 4 * widths[0]
        emb = SinusoidalEmbedding(widths[0], name="time_features")(timesteps)
        emb = keras.layers.Dense(emb_dim, activation="silu", name="time_mlp1")(emb)
        emb = keras.layers.Dense(emb_dim, name="time_mlp2")(emb)
        if num_classes:
            cls = keras.layers.Embedding(int(num_classes) + 1, emb_dim, name="class_embedding")(labels)
            emb = keras.layers.Add()([emb, cls])
        inputs = [images, timesteps, labels]
        if guidance_input:
            scales = keras.Input((), dtype="float32", name="guidance_scales")
            # Periods of 2 pi to 200 pi resolve scales of 0-10 as 10,000 does timesteps of 0-1000;
            # float32, so a bfloat16 policy does not round the scale.
            g = SinusoidalEmbedding(widths[0], max_period=100.0, dtype="float32", name="guidance_features")(scales)
            g = keras.layers.Dense(emb_dim, activation="silu", name="guidance_mlp1")(g)
            g = keras.layers.Dense(emb_dim, kernel_initializer="zeros", name="guidance_mlp2")(g)
            emb = keras.layers.Add()([emb, g])
            inputs.append(scales)

        x = Conv2D(widths[0], 3, padding="same", data_format=fmt, name="stem")(
            layout.to_internal(images, fmt)
        )
        skips, size = [x], height
        for level, w in enumerate(widths):
            for b in range(num_res_blocks):
                x = _res_block(x, emb, w, fmt, groups, dropout, f"down{level}_res{b}", adaptive_norm)
                if size <= attention_resolution:
                    x = SpatialAttention(data_format=fmt, groups=groups, name=f"down{level}_attn{b}")(x)
                skips.append(x)
            if level < len(widths) - 1:
                x = Conv2D(w, 3, strides=2, padding="same", data_format=fmt,
                           name=f"down{level}_downsample")(x)
                skips.append(x)
                size //= 2
        x = _res_block(x, emb, widths[-1], fmt, groups, dropout, "mid_res0", adaptive_norm)
        x = SpatialAttention(data_format=fmt, groups=groups, name="mid_attn")(x)
        x = _res_block(x, emb, widths[-1], fmt, groups, dropout, "mid_res1", adaptive_norm)
        for level in reversed(range(len(widths))):
            for b in range(num_res_blocks + 1):
                x = keras.layers.Concatenate(axis=axis)([x, skips.pop()])
                x = _res_block(x, emb, widths[level], fmt, groups, dropout, f"up{level}_res{b}", adaptive_norm)
                if size <= attention_resolution:
                    x = SpatialAttention(data_format=fmt, groups=groups, name=f"up{level}_attn{b}")(x)
            if level > 0:
                x = keras.layers.UpSampling2D(2, data_format=fmt, name=f"up{level}_upsample")(x)
                x = Conv2D(widths[level], 3, padding="same", data_format=fmt,
                                        name=f"up{level}_upconv")(x)
                size *= 2
        x = GroupNormalization(min(groups, widths[0]), axis=axis, name="out_norm")(x)
        x = keras.layers.Activation("silu")(x)
        x = Conv2D(channels, 3, padding="same", data_format=fmt, kernel_initializer="zeros",
                                dtype="float32", name="out")(x)
        super().__init__(inputs=inputs, outputs=layout.to_external(x, fmt), **kwargs)
        self.image_shape = (height, width, channels)
        self.widths = tuple(int(w) for w in widths)
        self.num_res_blocks = int(num_res_blocks)
        self.attention_resolution = int(attention_resolution)
        self.num_classes = int(num_classes)
        self.dropout = float(dropout)
        self.groups = int(groups)
        self.data_format = data_format
        self.adaptive_norm = bool(adaptive_norm)
        self.guidance_input = bool(guidance_input)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "image_shape": self.image_shape,
                "widths": self.widths, "num_res_blocks": self.num_res_blocks,
                "attention_resolution": self.attention_resolution, "num_classes": self.num_classes,
                "dropout": self.dropout, "groups": self.groups, "data_format": self.data_format,
                "adaptive_norm": self.adaptive_norm, "guidance_input": self.guidance_input}
