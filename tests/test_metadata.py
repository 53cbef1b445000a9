"""The metadata schema of exported models (kgen/metadata.py): what loading accepts and refuses."""

import copy
import json
import os
import subprocess
import sys

import onnx
import pytest

from kgen import metadata as kgen_metadata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(ROOT, "exported", "mnist_denoiser.onnx")


def shipped_metadata():
    model = onnx.load(SHIPPED)
    return json.loads({p.key: p.value for p in model.metadata_props}[kgen_metadata.METADATA_KEY])


def test_every_shipped_model_passes():
    for name in sorted(os.listdir(os.path.join(ROOT, "exported"))):
        if name.endswith(".onnx"):
            model = onnx.load(os.path.join(ROOT, "exported", name), load_external_data=False)
            raw = {p.key: p.value for p in model.metadata_props}[kgen_metadata.METADATA_KEY]
            assert kgen_metadata.parse(raw, name)["kind"] in kgen_metadata.KINDS


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.update(kind="painter"), "unknown kgen model kind 'painter'"),
    (lambda d: d.pop("image_shape"), "lacks image_shape"),
    (lambda d: d.pop("num_classes"), "lacks num_classes"),
    (lambda d: d["schedule"].pop("prediction_type"), "lacks schedule.prediction_type"),
    (lambda d: d.update(image_shape=[28, 28]), "bad image_shape"),
    (lambda d: d.update(image_shape=[28, 28, 4]), "bad image_shape"),
    (lambda d: d.update(image_shape=[100_000, 28, 1]), "sides 1..4096"),
    (lambda d: d.update(image_shape=["28", 28, 1]), "bad image_shape"),
    (lambda d: d.update(num_classes=True), "bad num_classes"),
    (lambda d: d.update(num_classes=-3), "bad num_classes"),
    (lambda d: d["schedule"].update(num_train_timesteps=0), "bad schedule.num_train_timesteps"),
    (lambda d: d["schedule"].update(alphas_cumprod=d["schedule"]["alphas_cumprod"][::-1]), "strictly decreasing"),
    (lambda d: d["schedule"].update(alphas_cumprod=[float("nan")] * 1000), "finite"),
    (lambda d: d["schedule"].update(alphas_cumprod=[0.5, 0.4]), "expected 1000 finite values"),
    (lambda d: d["schedule"].update(alphas_cumprod="x"), "alphas_cumprod"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_a_broken_field_is_named(mutate, message):
    meta = shipped_metadata()
    broken = copy.deepcopy(meta)
    mutate(broken)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        kgen_metadata.parse(json.dumps(broken), "model.onnx")


def test_not_json_and_not_an_object_are_refused():
    with pytest.raises(ValueError, match="not JSON"):
        kgen_metadata.parse("{", "m.onnx")
    with pytest.raises(ValueError, match="unknown kgen model kind"):
        kgen_metadata.parse("[1, 2]", "m.onnx")


def test_a_tampered_file_is_one_line_and_exit_2(tmp_path):
    model = onnx.load(SHIPPED)
    meta = shipped_metadata()
    del meta["schedule"]["num_train_timesteps"]
    for prop in model.metadata_props:
        if prop.key == kgen_metadata.METADATA_KEY:
            prop.value = json.dumps(meta)
    path = tmp_path / "tampered.onnx"
    onnx.save(model, path)
    result = subprocess.run([sys.executable, "-m", "kgen.infer", "sample", "--model", str(path), "--output-dir",
                             str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {path}: its kgen metadata (denoiser) lacks schedule.num_train_timesteps; "
        "re-export it with `python -m kgen.export`.")
    assert not (tmp_path / "out").exists()
