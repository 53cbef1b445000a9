"""The study library: seed aggregation, tables and the run-folder cache (numpy and JSON only)."""

import json

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
