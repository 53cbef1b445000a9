"""`kgen.load`: a shipped or exported model as a pipeline with the verbs of `kgen.infer`, in numpy.

Framework-free: onnxruntime (or OpenVINO), numpy and Pillow. A `.keras`
checkpoint loads too, through Keras (the one case that imports a framework).
"""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import numpy as np

from kgen.infer import runtime
from kgen.infer.image_io import read_image
from kgen.infer.sample import MAX_COUNT, MAX_GUIDANCE_SCALE, draw, own_sampling
from kgen.utils.shipped import shipped_dir

ImagesLike = Union[np.ndarray, Sequence[Union[str, os.PathLike]], str, os.PathLike]


def list_models() -> dict:
    """The shipped models by name (`"cifar10_denoiser"`, `"mnist_generator"`, ...), each with its model card.

    Example:
    >>> import kgen
    >>> card = kgen.list_models()["cifar10_denoiser"]   # its model card, as a dict
    """
    import json

    folder = shipped_dir()
    models = {}
    for name in sorted(os.listdir(folder)) if folder else []:
        if name.endswith(".onnx"):
            card_path = os.path.join(folder, name[: -len(".onnx")] + ".json")
            card = {}
            if os.path.isfile(card_path):
                with open(card_path) as f:
                    card = json.load(f)
            models[name[: -len(".onnx")]] = card
    return models


def load(name_or_path: Union[str, os.PathLike], *, threads: Optional[int] = None, engine: str = "onnxruntime",
         precision: str = "f32") -> "Pipeline":
    """A model as a `Pipeline`: a shipped name (see `list_models`), or any kgen `.onnx` or `.keras` file.

    Args:
        name_or_path: str. `"cifar10_denoiser"`, `"mnist_generator"`, ... or a path.
        threads: int or None. Intra-op threads (None: kgen.infer's default). Defaults to `None`.
        engine: str. `"onnxruntime"` or `"openvino"`. Defaults to `"onnxruntime"`.
        precision: str. `"f32"`, or `"bf16"` with OpenVINO. Defaults to `"f32"`.

    Example:
    >>> import kgen
    >>> images = kgen.load("mnist_denoiser").sample(labels=[0, 1, 2], seed=0)   # (3, 28, 28, 1) in [-1, 1]
    >>> kgen.to_pil(images)[0].save("zero.png")
    """
    path = os.fspath(name_or_path)
    if not path.endswith((".onnx", ".keras")):
        models = list_models()
        if path not in models:
            raise ValueError(f"{path!r} is neither a shipped model nor an .onnx/.keras file; shipped: "
                             f"{', '.join(models) or 'none (no exported/ folder found)'}.")
        path = os.path.join(shipped_dir(), path + ".onnx")
    return Pipeline(runtime.load(path, threads=threads, engine=engine, precision=precision))


class Pipeline:
    """One model with the verbs of `kgen.infer`; images are float32 numpy arrays (N, H, W, C) in [-1, 1].

    Which verbs a model has depends on its kind: generators and VAE
    decoders `sample`, `decode` and `interpolate`; denoisers and sampler
    graphs `sample` (by class, with guidance) and denoisers `denoise`; VAE
    encoders `encode`; a VAE decoder whose encoder lies beside it
    (`<name>_vae_encoder.onnx`) also `encode`s and `reconstruct`s.

    Args:
        model: `kgen.infer.runtime.InferenceModel`. What `load` opens.
    """

    def __init__(self, model: runtime.InferenceModel):
        self.model = model
        self.kind: str = model.kind
        self.metadata: dict = model.metadata
        self.image_shape: tuple = model.image_shape
        self.class_names: list = model.class_names
        self._encoder: Optional[runtime.InferenceModel] = model if model.kind == "vae_encoder" else None

    def __repr__(self) -> str:
        return f"Pipeline({self.kind}, {self.model.path!r}, {self.model.provider})"

    @property
    def num_classes(self) -> int:
        return int(self.metadata.get("num_classes") or 0)

    def sample(self, count: Optional[int] = None, labels: Optional[Sequence[Union[int, str]]] = None,
               guidance_scale: float = 2.0, sampler: Optional[str] = None, steps: Optional[int] = None,
               eta: float = 0.0, seed: int = 0) -> np.ndarray:
        """New images: `count` of them, or one per entry of `labels` (class ids or names; denoisers).

        Same seed, same images. A sampler graph samples with its own sampler,
        steps and eta; a denoiser with DDIM-50 by default, a distilled one
        with the sampler and steps it was trained for.
        """
        self._require("generator", "vae_decoder", "denoiser", "sampler")
        label_ids = self._labels(labels)
        if label_ids is None:
            count = 16 if count is None else int(count)
            if not 1 <= count <= MAX_COUNT:
                raise ValueError(f"count must be in 1..{MAX_COUNT:,}; got {count}.")
        elif count is not None and count != len(label_ids):
            raise ValueError(f"count {count} and {len(label_ids)} labels disagree; give one of them.")
        if not (np.isfinite(guidance_scale) and 0 <= guidance_scale <= MAX_GUIDANCE_SCALE):
            raise ValueError(f"guidance_scale must be in 0..{MAX_GUIDANCE_SCALE:g}; got {guidance_scale}.")
        if self.kind == "denoiser" and steps is not None:
            top = self.metadata["schedule"]["num_train_timesteps"]
            if not 1 <= int(steps) <= top:
                raise ValueError(f"steps must be in 1..{top} (the model's T); got {steps}.")
        n = len(label_ids) if label_ids is not None else count
        sampler, steps = own_sampling(self.model, sampler, steps)
        return draw(self.model, n, seed, label_ids, sampler, steps, float(eta), float(guidance_scale), progress=False)

    def denoise(self, images: ImagesLike, t: int, label: Optional[Union[int, str]] = None,
                guidance_scale: float = 1.0, sampler: str = "ddpm", steps: Optional[int] = None,
                seed: int = 0, fit: str = "auto") -> np.ndarray:
        """Noises `images` for `t` steps with q(x_t | x_0), then denoises them back (`kgen.infer denoise`)."""
        from kgen import metadata as kgen_metadata
        from kgen.schedulers import make_scheduler, partial_denoise

        self._require("denoiser")
        x = self._images(images, fit=fit)
        labels = None
        if label is not None:
            labels = np.full(len(x), self._labels([label])[0], np.int32)
        scheduler = make_scheduler(sampler, kgen_metadata.schedule_config(self.metadata), 0.0)
        _, denoised = partial_denoise(self.model.denoiser_predict(), scheduler, x, int(t), labels,
                                      self.metadata.get("null_label"), float(guidance_scale), steps,
                                      np.random.default_rng(seed), guidance_input=self.model.guidance_input)
        return denoised

    def decode(self, latents: np.ndarray) -> np.ndarray:
        """Images of latent vectors (N, latent_dim)."""
        self._require("generator", "vae_decoder")
        latents = np.asarray(latents, np.float32)
        if latents.ndim != 2 or latents.shape[1] != self.metadata["latent_dim"]:
            raise ValueError(f"latents must be (N, {self.metadata['latent_dim']}); got {latents.shape}.")
        return np.clip(self.model.run(latents=latents)[0], -1, 1)

    def encode(self, images: ImagesLike) -> np.ndarray:
        """The mean of q(z | x) of `images` (VAE encoders, and decoders with their encoder beside them)."""
        encoder = self._vae_encoder()
        x = self._images(images, encoder.image_shape)
        return encoder.run(images=x)[0]

    def reconstruct(self, images: ImagesLike) -> np.ndarray:
        """`decode(encode(images))` (a VAE decoder with its encoder beside it)."""
        self._require("vae_decoder")
        return self.decode(self.encode(images))

    def interpolate(self, steps: int = 8, seed: int = 0, ends: Optional[np.ndarray] = None) -> np.ndarray:
        """Images along the straight line between two latents (`ends`, or two drawn from `seed`)."""
        self._require("generator", "vae_decoder")
        if not 2 <= int(steps) <= 1000:
            raise ValueError(f"steps must be in 2..1000; got {steps}.")
        if ends is None:
            ends = np.random.default_rng(seed).standard_normal((2, self.metadata["latent_dim"]))
        w = np.linspace(0.0, 1.0, int(steps))[:, None]
        return self.decode((1 - w) * ends[0] + w * ends[1])

    # Helpers -----------------------------------------------------------
    def _require(self, *kinds: str) -> None:
        if self.kind not in kinds:
            raise ValueError(f"{self.model.path} is a {self.kind}; this needs a {' or '.join(kinds)}.")

    def _labels(self, labels) -> Optional[np.ndarray]:
        if labels is None:
            return None
        if self.kind not in ("denoiser", "sampler") or not self.num_classes:
            raise ValueError(f"{self.model.path} is unconditional; drop labels.")
        ids = []
        for label in ([labels] if isinstance(labels, (int, str)) else labels):
            if isinstance(label, str):
                if label not in self.class_names:
                    raise ValueError(f"unknown class {label!r}; accepted: {', '.join(self.class_names)}.")
                label = self.class_names.index(label)
            if not 0 <= int(label) < self.num_classes:
                raise ValueError(f"labels must be in 0..{self.num_classes - 1}; got {label}.")
            ids.append(int(label))
        if not 1 <= len(ids) <= MAX_COUNT:
            raise ValueError(f"labels must name 1..{MAX_COUNT:,} images; got {len(ids)}.")
        return np.asarray(ids, np.int32)

    def _images(self, images: ImagesLike, shape: Optional[tuple] = None, fit: str = "auto") -> np.ndarray:
        shape = tuple(shape or self.image_shape)
        if isinstance(images, (str, os.PathLike)):
            images = [images]
        if not isinstance(images, np.ndarray):
            return np.stack([read_image(os.fspath(p), shape, fit=fit) for p in images])
        x = np.asarray(images, np.float32)
        if x.ndim == 3:
            x = x[None]
        if x.shape[1:] != shape:
            raise ValueError(f"images must be (N, {', '.join(map(str, shape))}) in [-1, 1]; got {x.shape}. "
                             "Give file paths to have them cropped and resized.")
        if not np.isfinite(x).all() or x.min() < -1.001 or x.max() > 1.001:
            raise ValueError("images must be finite and in [-1, 1] (kgen's range; uint8 pixels / 127.5 - 1).")
        return x

    def _vae_encoder(self) -> runtime.InferenceModel:
        if self._encoder is None:
            self._require("vae_decoder", "vae_encoder")
            path = self.model.path
            sibling = path[: -len("_vae_decoder.onnx")] + "_vae_encoder.onnx" if path.endswith(
                "_vae_decoder.onnx") else None
            if not (sibling and os.path.isfile(sibling)):
                raise ValueError(f"{path} has no encoder beside it (<name>_vae_encoder.onnx); load the encoder.")
            self._encoder = runtime.load(sibling).require("vae_encoder")
        return self._encoder


def to_pil(images: np.ndarray) -> list:
    """Images in [-1, 1] (N, H, W, C) as a list of `PIL.Image` (grey or RGB)."""
    from PIL import Image

    pixels = np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    if pixels.ndim == 3:
        pixels = pixels[None]
    return [Image.fromarray(p[..., 0] if p.shape[-1] == 1 else p) for p in pixels]
