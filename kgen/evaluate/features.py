"""What every evaluation shares: a network over images in batches, classifier features, real images of a split."""

import os
from typing import Callable, Optional, Union

import keras
import numpy as np


def batched(fn: Callable, images: np.ndarray, batch_size: int,
            label: Optional[str] = None) -> Union[np.ndarray, tuple]:
    """Applies `fn` to `images` in batches, with a progress bar (on a terminal) if `label`."""
    from tqdm.auto import tqdm

    if label:
        print(label)
    outputs = []
    with tqdm(total=len(images), unit="image", disable=None if label else True, leave=False) as bar:
        for start in range(0, len(images), batch_size):
            outputs.append(fn(images[start : start + batch_size]))
            bar.update(len(outputs[-1][0] if isinstance(outputs[-1], tuple) else outputs[-1]))
    if isinstance(outputs[0], tuple):
        return tuple(np.concatenate(parts) for parts in zip(*outputs))
    return np.concatenate(outputs)


class ClassifierFeatures:
    """Class probabilities and penultimate features of a kgen classifier.

    Args:
        path: str. A `.keras` file written by `recipes/train_classifier.py`.
    """

    def __init__(self, path):
        import kgen.models  # noqa: F401  (registers ImageClassifier)

        if not os.path.isfile(path):
            raise ValueError(
                f"classifier {path!r} not found; train one with recipes/train_classifier.py "
                "or pass --classifier."
            )
        if not path.endswith(".keras"):  # legacy .h5 files can run code when loaded, safe mode or not
            raise ValueError(f"classifier {path!r}: accepted is a .keras file (recipes/train_classifier.py).")
        model = keras.saving.load_model(path, compile=False)
        self.name = os.path.splitext(os.path.basename(path))[0]
        self.image_shape = tuple(model.inputs[0].shape[1:])
        # One input, not a list of one: called with a tensor, a list-input model warns about the structure.
        both = keras.Model(model.inputs[0], [model.get_layer("features").output, model.outputs[0]])
        self._model = both

    def __call__(self, images):
        features, logits = self._model(images, training=False)
        probs = keras.ops.softmax(keras.ops.cast(logits, "float32"), axis=-1)
        return keras.ops.convert_to_numpy(features), keras.ops.convert_to_numpy(probs)


def reference_images(data: str, split: str, count: int) -> tuple:
    """The first `count` images and labels of a split, as arrays."""
    from kgen.data import load_images

    images, labels = [], []
    for x, y in load_images(data, split=split, batch_size=1000, shuffle=False, drop_remainder=False,
                            limit=int(count)):
        images.append(x.numpy())
        labels.append(y.numpy())
    return np.concatenate(images), np.concatenate(labels).reshape(-1)
