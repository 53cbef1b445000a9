"""The contract every kgen trainer implements, and all that its consumers may use."""

from typing import Any, Callable, Optional, Sequence

import keras
import numpy as np

from kgen.backend import Trainer

METADATA_FORMAT_VERSION = 1


def sample_from_latents(generate: Callable, latent_dim: int, count: int, seed: int,
                        batch_size: int = 500) -> np.ndarray:
    """`generate(latents)` on `count` standard-normal latent vectors drawn from `seed`, in batches (numpy)."""
    from keras import ops

    latents = np.random.default_rng(seed).standard_normal((count, latent_dim)).astype("float32")
    return np.concatenate([ops.convert_to_numpy(generate(latents[i:i + batch_size]))
                           for i in range(0, count, batch_size)])


def frozen_copy(network: keras.Model) -> keras.Model:
    """A non-trainable clone of `network` holding its current weights (an EMA, a previous round's student)."""
    copy = keras.models.clone_model(network)
    copy.set_weights(network.get_weights())
    copy.trainable = False
    for variable in copy.variables:
        variable.trainable = False
    return copy


class GenerativeTrainer(Trainer):
    """A trainer that draws images and names the networks it exports.

    Export, evaluation, the run recorder and the recipes reach a model only
    through these members; a new model family implements them and nothing
    else in kgen changes. (Training itself is `compute_phase_loss` and
    `compile`, from `kgen.backend`.)

    - `loss_keys`: the logged keys that are losses (plotted, summarised).
    - `num_classes`: classes the model is conditioned on; 0 if unconditional.
    - `sample_options`: the keyword options `sample` accepts besides
      `num_samples`, `labels` and `seed`.
    - `sample(num_samples, *, labels=None, seed=0, **options)`: float32
      numpy images in [-1, 1], the same for the same seed.
    - `inference_parts()`: the exportable networks, the main one first.
    - `export_part(part, dataset, class_names)`: one of them with its metadata.
    - `held_out_metrics(images, labels, *, seed=0)`: the model's own measures
      on data it did not train on (a likelihood, a loss); empty if none.
    - `loaded_export(part, network)`: a hook after an exported part's weights were loaded back
      (`kgen.export.warm_start.load_export`: a warm start).

    Subclasses implement `_sample` and `inference_parts`, and may override
    `held_out_metrics`.
    """

    loss_keys = ("loss",)
    num_classes = 0
    sample_options = ()

    @property
    def class_conditional(self) -> bool:
        return self.num_classes > 0

    def sample(self, num_samples: Optional[int] = None, *, labels: Optional[Sequence[int]] = None, seed: int = 0,
               **options: Any) -> np.ndarray:
        """Draws images in [-1, 1].

        Args:
            num_samples: int or None. How many, when `labels` is None.
            labels: int array or None. One image per label (conditional
                models only; `num_classes` is the null label, "no class").
            seed: int. Seed of every random draw. Defaults to `0`.
            **options: the model's `sample_options` (e.g. a DDPM's sampler,
                number of steps and guidance scale).

        Returns:
            float32 numpy array `(N, height, width, channels)`.
        """
        unknown = sorted(set(options) - set(self.sample_options))
        if unknown:
            accepted = ", ".join(self.sample_options) or "none"
            raise ValueError(f"a {type(self).__name__} takes no sampling option {', '.join(unknown)}; "
                             f"accepted: {accepted}.")
        if labels is None:
            if num_samples is None or int(num_samples) < 1:
                raise ValueError(f"give num_samples >= 1 or a non-empty labels array; got {num_samples}.")
            count = int(num_samples)
        else:
            labels = np.asarray(labels, np.int32).reshape(-1)
            if not self.class_conditional:
                raise ValueError(f"this {type(self).__name__} is unconditional; pass labels=None.")
            if len(labels) == 0 or labels.min() < 0 or labels.max() > self.num_classes:
                raise ValueError(f"labels must be in 0..{self.num_classes - 1} (or {self.num_classes} for none); "
                                 f"got {labels.tolist()[:10]}.")
            count = len(labels)
        images = np.asarray(self._sample(count, labels, int(seed), **options), np.float32)
        return np.clip(images, -1.0, 1.0)

    def _sample(self, count, labels, seed, **options):
        """`count` images (labels already checked, or None) as a numpy array."""
        raise NotImplementedError

    def inference_parts(self) -> dict:
        """`{part: build}`, main part first; `build()` returns `(network, metadata)`.

        `network` is a functional `keras.Model` whose inputs are in the order
        of `metadata["input_names"]`; `metadata` holds at least `kind` (a
        kind of `kgen.metadata.KINDS`), `input_names`, `output_names` and
        `image_shape`.
        """
        raise NotImplementedError

    def export_part(self, part: Optional[str] = None, dataset: Optional[str] = None,
                    class_names: Optional[Sequence[str]] = None) -> tuple:
        """`(network, metadata)` of one inference part, with kgen's common metadata.

        Args:
            part: str or None. A key of `inference_parts()`; None is the main part.
            dataset: str or None. Training data name, for the metadata.
            class_names: list of str or None.
        """
        parts = self.inference_parts()
        part = part or next(iter(parts))
        if part not in parts:
            raise ValueError(f"a {type(self).__name__} has no part {part!r}; accepted: {', '.join(parts)}.")
        network, own = parts[part]()
        metadata = {"kind": part, "value_range": [-1.0, 1.0], "dataset": dataset,
                    "class_names": list(class_names or []), "trainer": type(self).__name__,
                    "format_version": METADATA_FORMAT_VERSION, **own}
        metadata["image_shape"] = [int(d) for d in metadata["image_shape"]]
        return network, metadata

    def loaded_export(self, part: str, network: keras.Model) -> None:
        """Hook after `kgen.export.warm_start.load_export` set `network` (the part `part`): e.g. copy it to a twin."""

    def held_out_metrics(self, images: np.ndarray, labels: Optional[np.ndarray], *, seed: int = 0) -> dict:
        """The model's own measures on held-out `images` (N, H, W, C) in [-1, 1]: a dict."""
        return {}
