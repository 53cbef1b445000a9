"""Data-parallel training on 2 virtual CPU devices: jax (keras.distribution.DataParallel) and
tensorflow (tf.distribute.MirroredStrategy).

Each check runs in a subprocess: the devices must exist before the backend starts.
"""

import json
import os
import subprocess
import sys

import pytest

from tests import helpers
from tests.test_recipes import ROOT, run

pytestmark = helpers.once  # the subprocesses choose their backend (jax) themselves
TWO_CPUS = {"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}


@pytest.fixture(scope="module", params=["jax", "tensorflow"])
def steps(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("distributed")
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "distributed_step.py"), str(folder),
                             request.param],
                            cwd=ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **TWO_CPUS),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", ["DCGAN", "VAE", "DDPM"])
def test_one_step_on_two_devices_equals_one_step_on_one(steps, kind):
    assert steps["devices"] == 2
    entry = steps[kind]
    # The two steps moved every network (by about the learning rate per step: Adam) ...
    update = entry["smallest_largest_update_per_network"]
    assert update > 1e-4
    # ... and the 2-device steps moved it as the 1-device steps on the same global batches, up to the
    # order of float sums (the 2-device gradient is a sum of two halves): a thousandth of the update.
    # (Without the per-replica loss share, the global-batch noise and the synchronised batch norm,
    # TensorFlow's differences are the size of the update itself.)
    assert entry["max_weight_difference"] < 1e-3 * update and entry["max_log_difference"] < 1e-4
    # Weights and every optimizer's state (the DCGAN's two, as one OptimizerGroup) live on both
    # devices; the batch is split along its first axis (jax: the layout; tensorflow: 8 + 8).
    assert entry["weights_replicated"] and entry["optimizer_replicated"] and entry["optimizer_variables"] > 2
    assert entry["batch_split"][0] == "batch" or entry["batch_split"] == [8, 8]
    # The checkpoint of the distributed run loads on one device, weight for weight, and samples.
    assert entry["loaded_matches"] and entry["loaded_samples_shape"] == [4, 8, 8, 1]


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_recipe_trains_on_two_devices_and_writes_one_run_folder(tmp_path, backend):
    helpers.make_mnist_dir(str(tmp_path / "mnist"), n_train=64)
    out = tmp_path / "run"
    result = run(["recipes/train_vae.py", "--data", "mnist", "--devices", "2", "--batch-size", "16", "--epochs", "1",
                  "--widths", "4,8", "--latent-dim", "2", "--output-dir", str(out)], backend=backend,
                 KGEN_DATA_DIR=str(tmp_path), XLA_FLAGS=TWO_CPUS["XLA_FLAGS"])
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out / "summary.json") as f:
        assert json.load(f)["steps"] == 4  # 64 images, global batch 16
    with open(out / "config.json") as f:
        assert json.load(f)["devices"] == 2
    assert (out / "checkpoints" / "last.keras").is_file()
    odd = run(["recipes/train_vae.py", "--devices", "2", "--batch-size", "15", "--output-dir", str(tmp_path / "x")],
              backend=backend, XLA_FLAGS=TWO_CPUS["XLA_FLAGS"])
    assert odd.returncode == 2 and "must be a multiple of devices (2)" in odd.stderr


def test_torch_refuses_several_devices_before_any_work(tmp_path):
    out = tmp_path / "run"
    result = run(["recipes/train_vae.py", "--devices", "2", "--output-dir", str(out)], backend="torch")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "data-parallel training runs on the jax and tensorflow backends; torch is not supported" in result.stderr
    assert not out.exists()
