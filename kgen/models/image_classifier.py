"""A small CNN classifier whose penultimate layer serves as a feature extractor."""

import keras

from kgen.models import layout
from kgen.models.batch_normalization import BatchNormalization
from kgen.models.conv2d import Conv2D


@keras.saving.register_keras_serializable(package="kgen")
class ImageClassifier(keras.Model):
    """VGG-style classifier: images in [-1, 1] to class logits.

    Blocks of two 3x3 convolutions with batch norm and ReLU, each followed by
    2x2 max pooling; global average pooling; a dense `features` layer; the
    logits. kgen trains one per dataset (`recipes/train_classifier.py`) for
    classifier-based metrics, and `features_model()` exposes the `features`
    layer for Fréchet distances in its feature space.

    Args:
        image_shape: tuple of int. Input (height, width, channels).
            Defaults to `(28, 28, 1)`.
        num_classes: int. Defaults to `10`.
        widths: tuple of int. Channels of each block. Defaults to
            `(32, 64, 128)`.
        feature_dim: int. Size of the feature layer. Defaults to `128`.
        dropout: float. Dropout after the feature layer. Defaults to `0.3`.
        translate: float. Random translation (fraction of the size) during
            training; 0 turns it off. Defaults to `0.1`.
        flip: bool. Random horizontal flips during training (natural
            images, not digits). Defaults to `False`.
        data_format: str or None. Layout inside; None picks the fastest for
            the backend. Defaults to `None`.

    Example:
    >>> clf = ImageClassifier((32, 32, 3), flip=True)
    >>> clf(keras.ops.zeros((2, 32, 32, 3))).shape
    (2, 10)
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_classes=10,
        widths=(32, 64, 128),
        feature_dim=128,
        dropout=0.3,
        translate=0.1,
        flip=False,
        data_format=None,
        **kwargs,
    ):
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be at least 2; got {num_classes}.")
        if not widths or min(widths) < 1:
            raise ValueError(f"widths must be positive channel counts; got {widths!r}.")
        fmt = layout.resolve_data_format(data_format)
        axis = layout.channel_axis(fmt)
        images = keras.Input(tuple(image_shape), name="images")
        x = images
        if translate:
            x = keras.layers.RandomTranslation(translate, translate, fill_mode="constant", fill_value=-1.0)(x)
        if flip:
            x = keras.layers.RandomFlip("horizontal")(x)
        x = layout.to_internal(x, fmt)
        for i, width in enumerate(widths):
            for j in range(2):
                x = Conv2D(
                    width, 3, padding="same", use_bias=False, data_format=fmt, name=f"block{i}_conv{j}"
                )(x)
                x = BatchNormalization(axis=axis, name=f"block{i}_bn{j}")(x)
                x = keras.layers.ReLU()(x)
            x = keras.layers.MaxPooling2D(2, data_format=fmt, name=f"block{i}_pool")(x)
        x = keras.layers.GlobalAveragePooling2D(data_format=fmt)(x)
        features = keras.layers.Dense(feature_dim, activation="relu", name="features")(x)
        x = keras.layers.Dropout(dropout)(features) if dropout else features
        logits = keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)
        super().__init__(inputs=images, outputs=logits, **kwargs)

        self.image_shape = tuple(int(d) for d in image_shape)
        self.num_classes = int(num_classes)
        self.widths = tuple(int(w) for w in widths)
        self.feature_dim = int(feature_dim)
        self.dropout = float(dropout)
        self.translate = float(translate)
        self.flip = bool(flip)
        self.data_format = data_format

    def call(self, inputs, training=False, mask=None):
        # Keras' augmentation layers default to training=True; without this a
        # plain `classifier(images)` call would translate and flip them.
        return super().call(inputs, training=training, mask=mask)

    def features_model(self) -> keras.Model:
        """A model from images to the `features` layer (inference only)."""
        return keras.Model(self.inputs, self.get_layer("features").output)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "image_shape": self.image_shape,
            "num_classes": self.num_classes,
            "widths": self.widths,
            "feature_dim": self.feature_dim,
            "dropout": self.dropout,
            "translate": self.translate,
            "flip": self.flip,
            "data_format": self.data_format,
        }
