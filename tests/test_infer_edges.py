"""kgen.infer at the edges: thread counts, a full disk, extreme aspect ratios, huge guidance, unsafe files."""

import errno
import json
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from kgen.infer import image_io
from kgen.infer.__main__ import main as infer


def refused(capsys, argv, status=2):
    with pytest.raises(SystemExit) as exit_info:
        infer(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == status and len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_threads_above_the_cpu_count_are_refused(capsys, tmp_path):
    line = refused(capsys, ["sample", "--threads", "100000", "--output-dir", str(tmp_path / "out")])
    assert f"--threads must be in 1..{os.cpu_count()}" in line
    assert not (tmp_path / "out").exists()


def test_guidance_far_outside_the_trained_range_is_refused(capsys, tmp_path):
    line = refused(capsys, ["sample", "--labels", "1", "--guidance-scale", "1e30", "--output-dir", str(tmp_path)])
    assert "--guidance-scale must be in -50..50" in line


def test_a_full_disk_is_one_line_and_leaves_no_partial_set(capsys, tmp_path, monkeypatch):
    from kgen.utils import images

    original, calls = images.save_image, []

    def save_image(array, path, scale=1):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return original(array, path, scale)

    monkeypatch.setattr(images, "save_image", save_image)
    monkeypatch.setattr(image_io, "save_image", save_image)
    out = tmp_path / "samples"
    line = refused(capsys, ["sample", "--labels", "0,1,2,3", "--steps", "2", "--output-dir", str(out)], status=1)
    assert "(No space left on device); nothing was left there" in line
    assert not out.exists()  # made for this run, removed with its partial files
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "mine.txt").write_text("a file of the user's")
    calls.clear()
    refused(capsys, ["sample", "--labels", "0,1,2,3", "--steps", "2", "--output-dir", str(tmp_path / "kept"),
                     "--overwrite"], status=1)
    assert sorted(os.listdir(tmp_path / "kept")) == ["mine.txt"]


def test_a_strip_is_padded_not_cut_to_a_pixel(tmp_path):
    strip = np.zeros((1, 4000), np.uint8)
    strip[0, :2000] = 255  # left half white, right half black
    Image.fromarray(strip).save(tmp_path / "strip.png")
    notes = []
    auto = image_io.read_image(str(tmp_path / "strip.png"), (28, 28, 1), background="black", notes=notes)
    assert len(notes) == 1 and "padded onto black" in notes[0] and "0.0%" in notes[0]
    row = auto[13]  # the strip, one row high, centred
    assert row[:10].mean() > 0.5 and row[-10:].mean() < -0.5  # its two halves, side by side
    assert auto[0].max() == -1.0 and auto[27].max() == -1.0  # above and below: the background
    crop = image_io.read_image(str(tmp_path / "strip.png"), (28, 28, 1), fit="crop")
    # What a crop does to it: a 1x1 box from the middle, stretched over all 28 rows.
    assert np.ptp(crop, axis=0).max() < 1e-6 and crop.min() > -0.5
    square = np.full((40, 30), 128, np.uint8)
    Image.fromarray(square).save(tmp_path / "square.png")
    notes.clear()
    image_io.read_image(str(tmp_path / "square.png"), (28, 28, 1), notes=notes)
    assert notes == []  # a 40x30 image is cropped (75% kept), as before


def test_an_unsafe_checkpoint_is_refused_in_one_short_line(capsys, tmp_path):
    path = tmp_path / "evil.keras"
    config = {"module": "os", "class_name": "system", "config": {"command": "echo owned", "pad": "x" * 8000},
              "registered_name": "system"}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
    line = refused(capsys, ["sample", "--model", str(path), "--output-dir", str(tmp_path / "out")])
    assert "cannot load" in line and len(line) < 400, line


def test_a_cuda_build_of_onnxruntime_is_used_when_present(monkeypatch):
    """With onnxruntime-gpu installed, sessions get the CUDA provider first (CPU stays the fallback)."""
    import onnxruntime as ort

    from kgen.infer import runtime
    from kgen.utils.shipped import shipped_path

    available = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: available[1:])
    assert runtime.providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: available)
    assert runtime.providers() == available
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert runtime.providers() == ["CPUExecutionProvider"]
    seen = {}

    class Session(ort.InferenceSession):
        def __init__(self, path, options=None, providers=None, **kwargs):
            seen["providers"] = providers
            super().__init__(path, options, providers=["CPUExecutionProvider"], **kwargs)

    monkeypatch.setattr(ort, "get_available_providers", lambda: available[1:])
    monkeypatch.setattr(ort, "InferenceSession", Session)
    runtime.load(shipped_path("mnist_generator.onnx"))
    assert seen["providers"] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
