"""The commands' bad-input corpus: every case is one `error:` line, exit status 2, no traceback, nothing written.

Each case runs a command's `main(argv)` in this process with the working
directory set to an empty folder (the default output locations are relative),
and checks the folder is unchanged afterwards. The checks run before any model
is built, so the whole corpus takes seconds; `kgen.infer`'s own corpus (real
subprocesses, real model files) is in `test_export_infer.py`, and a recipe's
and `kgen.evaluate`'s exit status through the interpreter in `test_recipes.py`
and `test_evaluate.py`. Input checks do not depend on the backend: the corpus
runs once, under tensorflow.
"""

import importlib.util
import os

import keras
import pytest

from tests import helpers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="backend-independent input checks; run once, under tensorflow")


def _recipe(name):
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", os.path.join(ROOT, "recipes", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _command(name):
    if name == "export":
        from kgen.export.__main__ import main
    elif name == "evaluate":
        from kgen.evaluate.__main__ import main
    elif name == "infer":
        from kgen.infer.__main__ import main
    else:
        main = _recipe(name)
    return main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Real inputs the bad cases are built around: a DCGAN checkpoint, a tiny dataset, a classifier."""
    from kgen.models import DCGANDiscriminator, DCGANGenerator
    from kgen.trainers import DCGAN

    root = tmp_path_factory.mktemp("inputs")
    helpers.make_mnist_dir(str(root / "mnist"), n_train=32, n_test=16)
    helpers.save_tiny_classifier(root / "classifier.keras")
    DCGAN(DCGANGenerator((28, 28, 1), 8, 8), DCGANDiscriminator((28, 28, 1), 8)).save(str(root / "gan.keras"))
    (root / "weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    (root / "notes.txt").write_text("not a model\n")
    (root / "metrics.json").write_text("{not json")
    (root / "afile").write_text("a file where a folder is expected\n")
    return root


def _cases(f):
    gan, data, clf = str(f / "gan.keras"), str(f / "mnist"), str(f / "classifier.keras")
    shipped_generator = os.path.join(ROOT, "exported", "mnist_generator.onnx")
    scored = [gan, "--data", data, "--classifier", clf]
    return {
        # kgen.export
        "export_missing_checkpoint": ("export", [str(f / "nope.keras")], "give an existing .keras file"),
        "export_h5": ("export", [str(f / "weights.h5")], "give an existing .keras file"),
        "export_unknown_format": ("export", [gan, "--format", "tflite"], "accepted: onnx"),
        "export_unknown_part": ("export", [gan, "--part", "decoder"], "accepted: generator"),
        "export_opset_too_new": ("export", [gan, "--opset", "40"], "--opset must be in 13..18"),
        "export_output_not_onnx": ("export", [gan, "--output", "model.pt"], "--output must end in .onnx"),
        "export_output_is_folder": ("export", [gan, "--output", str(f)], "is a folder"),
        "export_output_under_file": ("export", [gan, "--output", str(f / "afile" / "g.onnx")],
                                     "lies under, an existing file"),
        "export_nan_tolerance": ("export", [gan, "--tolerance", "nan"], "--tolerance must be a finite number > 0"),
        "export_card_metrics_missing": ("export", [gan, "--card-metrics", str(f / "m.json")], "not found"),
        "export_card_metrics_not_json": ("export", [gan, "--card-metrics", str(f / "metrics.json")],
                                         "is not a JSON file"),
        "export_onnx_without_sampler": ("export", [str(f / "x.onnx")], "is already ONNX"),
        "export_sampler_zero_steps": ("export", [gan, "--sampler", "ddim", "--steps", "0"],
                                      "--steps must be >= 1"),
        "export_sampler_nan_eta": ("export", [gan, "--sampler", "ddim", "--eta", "nan"],
                                   "--eta must be a finite number >= 0"),
        "export_class_names_unconditional": ("export", [gan, "--class-names", "a,b"],
                                             "holds an unconditional DCGAN; --class-names applies"),
        "export_quantize_zero_calibration": ("export", [gan, "--quantize", "int8", "--calibration-images", "0"],
                                             "--calibration-images must be in 1..100,000"),
        "export_quantize_unknown": ("export", [gan, "--quantize", "int4"], "invalid choice"),
        "export_quantize_with_sampler": ("export", [gan, "--quantize", "int8", "--sampler", "ddim"],
                                         "separate steps"),
        "export_quantize_missing_onnx": ("export", [str(f / "nope.onnx"), "--quantize", "int8"], "not found"),
        "export_fuse_with_sampler": ("export", [shipped_generator, "--fuse-group-norms", "--sampler", "ddim"],
                                     "--fuse-group-norms is a step of its own"),
        "export_fuse_nothing_to_fuse": ("export", [shipped_generator, "--fuse-group-norms", "--output",
                                                   str(f / "fused.onnx")], "has no unfused group norm"),
        "export_opset_not_a_number": ("export", [gan, "--opset", "seventeen"], "invalid int value"),
        # kgen.evaluate
        "evaluate_missing_source": ("evaluate", [str(f / "nothing.keras")], "give an existing .keras file"),
        "evaluate_text_source": ("evaluate", [str(f / "notes.txt")], "accepted are a .keras checkpoint"),
        "evaluate_classifier_as_source": ("evaluate", [clf, "--data", data, "--classifier", clf],
                                          "not a kgen generative"),
        "evaluate_per_class_on_unconditional": ("evaluate", [*scored, "--per-class", "4"],
                                                "unconditional: give --num-samples"),
        "evaluate_per_class_zero": ("evaluate", [*scored, "--per-class", "0"], "per_class must be at least 2"),
        "evaluate_one_sample": ("evaluate", [*scored, "--num-samples", "1"], "num_samples must be at least 2"),
        "evaluate_too_many_samples": ("evaluate", [*scored, "--num-samples", "10000000"],
                                      "num_samples must be at most 1,000,000"),
        "evaluate_nan_guidance": ("evaluate", [*scored, "--guidance-scale", "1,nan"],
                                  "--guidance-scale must be finite numbers"),
        "evaluate_guidance_not_numbers": ("evaluate", [*scored, "--guidance-scale", "x"], "comma-separated numbers"),
        "evaluate_zero_batch": ("evaluate", [*scored, "--batch-size", "0"], "--batch-size must be in 1..100,000"),
        "evaluate_negative_held_out": ("evaluate", [*scored, "--held-out-images", "-1"],
                                       "held_out_images must be >= 0"),
        "evaluate_json_is_folder": ("evaluate", [*scored, "--json", str(f)], "is a folder"),
        "evaluate_bf16_on_onnxruntime": ("evaluate", [*scored, "--precision", "bf16"], "bf16 needs --engine openvino"),
        "evaluate_unknown_dataset": ("evaluate", [gan, "--data", str(f / "no_data"), "--classifier", clf],
                                     "does not exist"),
        "evaluate_unknown_sampler": ("evaluate", [*scored, "--sampler", "euler"], "invalid choice"),
        # the recipes
        "ddpm_widths_not_numbers": ("train_ddpm", ["--widths", "32,wide"], "comma-separated integers"),
        "ddpm_zero_width": ("train_ddpm", ["--widths", "32,0"], "widths must be one or more positive"),
        "ddpm_unknown_schedule": ("train_ddpm", ["--beta-schedule", "quadratic"], "beta_schedule must be one of"),
        "ddpm_label_dropout_one": ("train_ddpm", ["--label-dropout", "1"], "label_dropout must be in [0, 1)"),
        "ddpm_sample_steps_over_t": ("train_ddpm", ["--timesteps", "10", "--sample-steps", "25"],
                                     "sample_steps must be in 1..timesteps (10)"),
        "ddpm_nan_learning_rate": ("train_ddpm", ["--learning-rate", "nan"], "learning_rate must be a finite"),
        "ddpm_output_dir_is_file": ("train_ddpm", ["--output-dir", str(f / "afile")], "existing file"),
        "ddpm_negative_time_budget": ("train_ddpm", ["--time-budget", "-5"], "time_budget must be a positive"),
        "ddpm_init_from_h5": ("train_ddpm", ["--init-from", str(f / "weights.h5")],
                              "init_from must be an existing .keras checkpoint, or one or more"),
        "ddpm_init_from_missing_onnx": ("train_ddpm", ["--init-from", str(f / "nope.onnx")],
                                        "init_from must be an existing .keras checkpoint, or one or more"),
        "ddpm_bool_not_bool": ("train_ddpm", ["--augment", "maybe"], "expected true or false"),
        # TensorFlow fixes its logical devices when it starts (here: building the fixture's models);
        # the recipes ask for devices first, so only a late in-process call meets this refusal.
        "ddpm_devices_after_tensorflow_started": ("train_ddpm", ["--devices", "2"],
                                                  "call use_devices before any TensorFlow work"),
        "ddpm_zero_devices": ("train_ddpm", ["--devices", "0"], "devices must be >= 1"),
        "dcgan_zero_batch": ("train_dcgan", ["--batch-size", "0"], "batch_size must be in 1..65,536"),
        "dcgan_real_label_zero": ("train_dcgan", ["--real-label", "0"], "real_label must be in (0, 1]"),
        "dcgan_float16_policy": ("train_dcgan", ["--dtype-policy", "mixed_float16"], "dtype_policy must be one of"),
        "vae_unknown_variant": ("train_vae", ["--variant", "hourglass"], "variant must be one of"),
        "vae_negative_beta": ("train_vae", ["--beta", "-1"], "beta must be a finite number >= 0"),
        "dcgan_zero_discriminator_rate": ("train_dcgan", ["--discriminator-learning-rate", "0"],
                                          "discriminator_learning_rate must be a finite number > 0"),
        "vae_iwae_with_beta": ("train_vae", ["--iwae-samples", "3", "--beta", "2"], "it needs --beta 1"),
        "classifier_export_not_keras": ("train_classifier", ["--export", "clf.h5"], "export must be a .keras path"),
        "classifier_zero_epochs": ("train_classifier", ["--epochs", "0"], "epochs must be >= 1"),
    }


CASES = sorted(_cases(__import__("pathlib").Path("/")))


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_exit_2_and_nothing_written(files, tmp_path, monkeypatch, capsys, case):
    command, argv, message = _cases(files)[case]
    main = _command(command)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("KGEN_DEBUG", raising=False)
    monkeypatch.setenv("KGEN_DATA_DIR", str(files))
    before = sorted(p.name for p in files.iterdir())
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    stderr = capsys.readouterr().err
    assert exit_info.value.code == 2, stderr[-1500:]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], stderr[-1500:]
    assert "Traceback" not in stderr
    assert list(work.iterdir()) == [], "a refused command left files behind"
    assert sorted(p.name for p in files.iterdir()) == before


def test_the_corpus_is_large_and_covers_every_command():
    commands = {command for command, _, _ in _cases(__import__("pathlib").Path("/")).values()}
    assert len(CASES) >= 25
    assert commands == {"export", "evaluate", "train_ddpm", "train_dcgan", "train_vae", "train_classifier"}


def test_usage_errors_are_one_line_and_help_shows_defaults(capsys):
    from kgen.infer.__main__ import main as infer

    with pytest.raises(SystemExit) as exit_info:
        infer(["sample", "--count", "many"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("error: argument --count: invalid int value")
    assert len(err.strip().splitlines()) == 1
    for argv in (["sample", "--help"], ["denoise", "--help"], ["reconstruct", "--help"], ["interpolate", "--help"]):
        with pytest.raises(SystemExit):
            infer(argv)
        assert "(default: " in capsys.readouterr().out, argv
