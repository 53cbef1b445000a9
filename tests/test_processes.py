"""Training on 2 processes on this machine (CPU collectives: gloo under torch and JAX, gRPC under TensorFlow).

Each process is a subprocess started with its engine's own variables (`kgen.utils.launch`); torch's
step check goes through `torchrun` itself. Every test runs once, not once per backend suite.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from kgen.utils.launch import free_local_ports, launch_from_environment, local_environments
from tests import helpers
from tests.test_recipes import ROOT

pytestmark = helpers.once
BACKENDS = ["jax", "tensorflow", "torch"]
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}


def launch_environments(backend, count=2):
    """Each process's variables, as its engine's launcher would set them."""
    return local_environments(backend, free_local_ports(count))


def start(backend, argv, cwds, **env):
    """`python ARGV` on len(cwds) processes of one launch, process i in cwds[i]."""
    return [subprocess.Popen([sys.executable, *argv], cwd=cwd, text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE,
                             env=dict(os.environ, PYTHONPATH=ROOT, KERAS_BACKEND=backend, **QUIET, **env, **launch))
            for cwd, launch in zip(cwds, launch_environments(backend, len(cwds)))]


def finish(processes, timeout=600):
    return [(p.wait(timeout=timeout), p.stdout.read(), p.stderr.read()) for p in processes]


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_processes_train_as_one_on_the_global_batch(tmp_path, backend):
    two, one = tmp_path / "two", tmp_path / "one"
    two.mkdir()
    one.mkdir()
    script = os.path.join(ROOT, "tests", "multiprocess_step.py")
    if backend == "torch":  # through torch's own launcher
        port = free_local_ports(1)[0]
        result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                                 "--master-port", str(port), script, str(two)], cwd=ROOT, capture_output=True,
                                text=True, timeout=600, env=dict(os.environ, KERAS_BACKEND="torch", **QUIET))
        assert result.returncode == 0, result.stderr[-3000:]
    else:
        for status, _, err in finish(start(backend, [script, str(two)], [ROOT, ROOT])):
            assert status == 0, err[-3000:]
    alone = subprocess.run([sys.executable, script, str(one), "--compare", str(two)], cwd=ROOT, capture_output=True,
                           text=True, timeout=600, env=dict(os.environ, KERAS_BACKEND=backend, **QUIET))
    assert alone.returncode == 0, alone.stderr[-3000:]
    for kind in ("DCGAN", "VAE", "DDPM"):
        with open(two / f"{kind}.json") as f:
            distributed = json.load(f)
        with open(one / f"compare_{kind}.json") as f:
            compared = json.load(f)
        assert distributed["processes"] == 2
        # torch: each process read half of every global batch (jax, tensorflow: the engine splits it in the step)
        assert distributed["local_batch"] == (8 if backend == "torch" else 16)
        # Two steps on 2 processes moved the weights as two steps of one process on the same global batches,
        # up to the order of float sums. Adam divides each gradient by its root mean square (+ 1e-7), so an
        # element whose gradient is ~0 turns a rounding difference into up to ~1e-3 of the step: measured
        # 1.0e-3 at worst (torch, VAE, one element of up1/kernel), 1e-5 or less elsewhere; allowed 2e-3.
        assert distributed["update"] > 1e-4
        assert compared["max_weight_difference"] < 2e-3 * distributed["update"], (kind, compared, distributed)
        assert compared["max_log_difference"] < 1e-4 * max(1.0, max(abs(v) for v in distributed["logs"].values()))
        # The chief's checkpoint loads in one process, weight for weight, and samples.
        assert compared["loaded_equals_saved"] and compared["loaded_samples_shape"] == [4, 8, 8, 1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_process_knows_its_place_from_its_engines_variables(backend):
    for index, env in enumerate(local_environments(backend, free_local_ports(3))):
        launch = launch_from_environment(backend, env)
        assert (launch.index, launch.count, launch.chief) == (index, 3, index == 0)
    assert not launch_from_environment(backend, {}).several
    bad = {"jax": {"KERAS_DISTRIBUTION_NUM_PROCESSES": "2", "KERAS_DISTRIBUTION_PROCESS_ID": "2"},
           "torch": {"WORLD_SIZE": "2", "RANK": "x"}, "tensorflow": {"TF_CONFIG": "{not json"}}[backend]
    with pytest.raises(ValueError):
        launch_from_environment(backend, bad)


def test_several_processes_refuse_unusable_flags_before_any_work(tmp_path):
    env = local_environments("torch", free_local_ports(2))[1]
    for flags, message in ((["--devices", "2"], "--devices 2 with 2 processes"),
                           (["--batch-size", "15"], "must be a multiple of the number of processes (2)")):
        result = subprocess.run([sys.executable, "-m", "kgen.train", "vae", *flags, "--output-dir",
                                 str(tmp_path / "run")], cwd=ROOT, capture_output=True, text=True, timeout=120,
                                env=dict(os.environ, KERAS_BACKEND="torch", **QUIET, **env))
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def _state(folder):
    try:
        with open(os.path.join(folder, "state.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


@pytest.mark.parametrize("backend", BACKENDS)
def test_command_on_two_processes_chief_writes_survives_a_killed_worker_and_resumes(tmp_path, backend):
    helpers.make_mnist_dir(str(tmp_path / "data" / "mnist"), n_train=256)
    train = ["-m", "kgen.train", "vae", "--data", "mnist", "--batch-size", "16", "--widths", "4,8",
             "--latent-dim", "2"]
    env = {"KGEN_DATA_DIR": str(tmp_path / "data")}

    # 1. The same command in two working folders (two machines without a shared disk): only the chief writes,
    #    and only the chief speaks (the worker's output holds at most its engine's own lines, e.g. gloo's).
    chief, worker = tmp_path / "chief", tmp_path / "worker"
    chief.mkdir()
    worker.mkdir()
    run = str(chief / "run")
    processes = start(backend, [*train, "--epochs", "100", "--checkpoint-every", "0.02", "--output-dir", "run"],
                      [chief, worker], **env)
    deadline = time.time() + 300
    while _state(run).get("step", 0) < 16 and time.time() < deadline and processes[0].poll() is None:
        time.sleep(0.5)
    assert _state(run).get("step", 0) >= 16, processes[0].stderr.read()[-3000:] if processes[0].poll() else "slow"
    assert not (worker / "run").exists()
    with open(os.path.join(run, "chunks.json")) as f:
        assert json.load(f)[-1]["processes"] == 2

    # 2. The worker killed mid-run: the chief ends in seconds with one line; its commits stand.
    processes[1].send_signal(signal.SIGKILL)
    killed = time.time()
    status = processes[0].wait(timeout=180)
    waited = time.time() - killed
    out, err = processes[0].stdout.read(), processes[0].stderr.read()
    worker_out = processes[1].stdout.read()
    processes[1].wait()
    assert status == 1 and "Traceback" not in err, err[-3000:]
    assert "another training process ended or cannot be reached" in err and "rerun the same commands" in err
    assert waited < 60, waited  # benchmarks/kill_and_resume_processes.sh measured 0.5-1.6 s
    assert "VAE" in out and "VAE" not in worker_out and "Epoch" not in worker_out
    assert not (worker / "run").exists()
    committed = _state(run)["step"]
    assert committed >= 16

    # 3. The same commands again (fewer epochs: a changeable flag) resume from the chief's last commit.
    epochs = committed // 16 + 1
    again = [*train, "--epochs", str(epochs), "--checkpoint-every", "0.02", "--output-dir", "run"]
    ended = finish(start(backend, again, [chief, chief], **env))  # now on a shared disk
    assert [status for status, _, _ in ended] == [0, 0], ended[0][2][-2000:] + ended[1][2][-2000:]
    assert f"Resuming run after step {committed}" in ended[0][1] and "Run folder:" in ended[0][1]
    assert _state(run)["step"] == epochs * 16
    with open(os.path.join(run, "chunks.json")) as f:
        chunks = json.load(f)
    assert [c["processes"] for c in chunks] == [2, 2] and chunks[1]["step_start"] == committed


def test_chunk_commands_are_portable_whatever_copy_of_kgen_ran_them(tmp_path, monkeypatch):
    from kgen.utils.commands import portable_argv, runnable_command

    monkeypatch.chdir(ROOT)
    # A copy of the package outside the repository (a snapshot a long run trained from): its module, not its path.
    assert portable_argv(["/work/snap2/kgen/train/__main__.py", "distill", "--x", "1"]) == [
        "python", "-m", "kgen.train", "distill", "--x", "1"]
    assert portable_argv([os.path.join(ROOT, "kgen", "evaluate", "__main__.py")]) == ["python", "-m", "kgen.evaluate"]
    assert portable_argv([os.path.join(ROOT, "recipes", "train_dcgan.py"), "--epochs", "2"]) == [
        "python", "recipes/train_dcgan.py", "--epochs", "2"]
    assert portable_argv(["/usr/local/bin/kgen.train", "vae"]) == ["kgen.train", "vae"]
    # Commands recorded before they were portable become runnable in a card; `~/` stays expandable.
    assert runnable_command("kgen/train/__main__.py dcgan --output-dir ~/kgen-runs/a --x 'b c'") == (
        "python -m kgen.train dcgan --output-dir ~/kgen-runs/a --x 'b c'")
    assert runnable_command("recipes/train_ddpm.py --data cifar10") == "python recipes/train_ddpm.py --data cifar10"
    assert runnable_command("python -m kgen.train vae") == "python -m kgen.train vae"
