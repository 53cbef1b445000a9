"""GeneralizationProbe: the model's own measures on training and held-out images, every epoch."""

from typing import Any, Optional

import numpy as np


class GeneralizationProbe:
    """Measures a model on fixed training and held-out images; a `RunRecorder` epoch measure.

    Calls the trainer's `held_out_metrics(images, labels, seed=...)` (the
    discriminator's probability of "real" for a DCGAN, the ELBO for a VAE,
    the denoising error for a DDPM) once on `train_images` and once on
    `test_images`, and returns every numeric measure twice: `train_<name>`
    and `test_<name>`. A model that memorises its training set drifts apart
    on the two; on images it generalises to, they stay together. Both sets
    go through the same inference-mode call, so they compare (the training
    log's per-step values are taken in training mode, on changing weights).

    Args:
        train_images, train_labels: arrays. A fixed subset of the training split.
        test_images, test_labels: arrays. The same number of held-out images.
        seed: int. Passed to `held_out_metrics` (its noise, if it draws any),
            the same for both sets and every epoch. Defaults to `0`.
        **metric_options: passed to `held_out_metrics` (e.g. `iw_samples=1`
            for a VAE, whose default k = 100 bound costs 100 passes).

    Example:
    >>> probe = GeneralizationProbe(x_train[:1000], y_train[:1000], x_test[:1000], y_test[:1000])
    >>> recorder = RunRecorder("runs/dcgan", epoch_measures=probe)  # train_d_real, test_d_real per epoch
    """

    def __init__(self, train_images, train_labels, test_images, test_labels, seed=0, **metric_options):
        if len(train_images) < 1 or len(test_images) < 1:
            raise ValueError(f"the probe needs images from both splits; got {len(train_images)} training "
                             f"and {len(test_images)} held-out images.")
        self.sets = {"train": (np.asarray(train_images, "float32"), train_labels),
                     "test": (np.asarray(test_images, "float32"), test_labels)}
        self.seed = int(seed)
        self.metric_options = metric_options

    @classmethod
    def from_data(cls, data: str, count: int, image_size: Optional[int] = None, seed: int = 0,
                  **metric_options: Any) -> "GeneralizationProbe":
        """The first `count` images of the train and test splits of `data` (as `kgen.data.load_images`).

        Raises:
            ValueError: the data has no test split, or fewer than 1 image in a split.
        """
        from kgen.data import load_images

        sets = []
        for split in ("train", "test"):
            dataset = load_images(data, split=split, batch_size=int(count), shuffle=False, drop_remainder=False,
                                  limit=int(count), image_size=image_size)
            images, labels = next(iter(dataset))
            sets += [images.numpy(), labels.numpy()]
        return cls(*sets, seed=seed, **metric_options)

    def __call__(self, model):
        measures = {}
        for split, (images, labels) in self.sets.items():
            results = model.held_out_metrics(images, labels, seed=self.seed, **self.metric_options)
            for name, value in results.items():
                if name == "held_out_images" or not isinstance(value, (int, float)):
                    continue
                measures[f"{split}_{name.removesuffix('_held_out')}"] = float(value)
        return measures
