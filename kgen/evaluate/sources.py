"""What `kgen.evaluate` scores: a checkpoint, an exported model or a folder, behind one interface."""

import os
from typing import Any, Optional

import numpy as np


class ImageSource:
    """Something that yields images in [-1, 1] for evaluation.

    Attributes:
        path: str. Where it came from.
        kind: str. What it is, for the report.
        num_classes: int. Classes it is conditioned on; 0 if unconditional.
        class_names: list of str.
        dataset: str or None. The data it was trained on, if known.
        sample_options: tuple of str. Keyword options `sample` accepts.
    """

    num_classes = 0
    class_names = ()
    dataset = None
    sample_options = ()
    has_held_out_metrics = False

    def sample(self, count: int, labels: Optional[np.ndarray] = None, seed: int = 0,
               **options: Any) -> np.ndarray:
        """`count` images (or one per label), float32 `(N, H, W, C)` in [-1, 1]."""
        raise NotImplementedError

    def held_out_metrics(self, images: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict:
        """The model's own measures on held-out images; empty if it has none."""
        return {}


class CheckpointSource(ImageSource):
    """A `.keras` checkpoint of any `GenerativeTrainer`, through the trainer contract."""

    def __init__(self, path):
        from kgen.runs import RunFolder
        from kgen.trainers import load_trainer

        self.path = path
        self.model = load_trainer(path)
        self.kind = f"{type(self.model).__name__} checkpoint"
        self.has_held_out_metrics = True
        self.num_classes = int(self.model.num_classes)
        self.sample_options = tuple(o for o in self.model.sample_options if o != "progress")
        self.dataset, names = RunFolder.of_checkpoint(path).names()
        self.class_names = list(names or [])

    def sample(self, count: int, labels: Optional[np.ndarray] = None, seed: int = 0,
               **options: Any) -> np.ndarray:
        return self.model.sample(None if labels is not None else count, labels=labels, seed=seed, **options)

    def held_out_metrics(self, images: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict:
        return self.model.held_out_metrics(images, labels, seed=seed)


class ExportedSource(ImageSource):
    """An ONNX file from `kgen.export` (generator, VAE decoder or denoiser), run by onnxruntime."""

    def __init__(self, path, engine="onnxruntime", precision="f32"):
        from kgen.infer import runtime

        self.path = path
        self.model = runtime.load(path, engine=engine, precision=precision)
        if self.model.kind in ("vae_encoder", "discriminator"):
            raise ValueError(f"{path} is a {self.model.kind.replace('_', ' ')}, which draws no images; evaluate "
                             f"the {'decoder' if self.model.kind == 'vae_encoder' else 'generator'}.")
        self.kind = f"exported {self.model.kind}" + (f" ({self.model.provider})" if engine != "onnxruntime" else "")
        self.num_classes = int(self.model.metadata.get("num_classes") or 0)
        self.class_names = self.model.class_names
        self.dataset = self.model.metadata.get("dataset")
        if self.model.kind == "denoiser":
            self.sample_options = ("sampler", "num_steps", "eta", "guidance_scale")
        elif self.model.kind == "sampler":  # its sampler, steps and eta are part of the graph
            self.sample_options = ("guidance_scale",)

    def sample(self, count: int, labels: Optional[np.ndarray] = None, seed: int = 0, sampler: Optional[str] = None,
               num_steps: Optional[int] = None, eta: float = 0.0, guidance_scale: float = 1.0) -> np.ndarray:
        from kgen.infer.sample import draw, own_sampling

        sampler, num_steps = own_sampling(self.model, sampler, num_steps)
        return draw(self.model, count, seed, labels, sampler, num_steps, eta, guidance_scale, progress=False)


class FolderSource(ImageSource):
    """A folder of images (any size kgen's local loader reads), scored as they are."""

    def __init__(self, path, image_count):
        from kgen.data import load_images

        self.path = path
        self.kind = "image folder"
        self.images = np.concatenate([x.numpy() for x, _ in load_images(
            path, batch_size=500, shuffle=False, drop_remainder=False, limit=int(image_count))])

    def sample(self, count: int, labels: Optional[np.ndarray] = None, seed: int = 0) -> np.ndarray:
        return self.images[:count]


def open_source(path: str, image_count: int = 10_000, engine: str = "onnxruntime",
                precision: str = "f32") -> ImageSource:
    """The `ImageSource` for `path`: a `.keras` checkpoint, an `.onnx` export (run by `engine` at
    `precision`) or a folder of images."""
    if os.path.isdir(path):
        return FolderSource(path, image_count)
    if (engine, precision) != ("onnxruntime", "f32") and not path.endswith(".onnx"):
        raise ValueError(f"--engine and --precision apply to exported .onnx models; {path} is not one.")
    if path.endswith(".keras"):
        return CheckpointSource(path)
    if path.endswith(".onnx"):
        return ExportedSource(path, engine, precision)
    raise ValueError(f"{path!r}: accepted are a .keras checkpoint (kgen recipes), an .onnx file "
                     "(kgen.export) or a folder of images.")
