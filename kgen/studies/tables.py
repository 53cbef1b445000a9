"""Seed aggregation, Markdown tables and the report files of the study recipes."""

import os
import time
from typing import Any, Iterable, Sequence

import numpy as np

from kgen.utils.atomic import write_json, write_text


def aggregate_seeds(per_seed: Sequence[dict]) -> dict:
    """Mean and sample standard deviation over seeds of every numeric field of the per-seed dicts.

    A single seed gets std 0. Non-numeric fields (and booleans) are left out.
    """
    out = {}
    for key, value in per_seed[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values = np.array([r[key] for r in per_seed], np.float64)
            out[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
    return out


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table: `header` is a list of column titles, `rows` lists of cell values (str() each)."""
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def measure_table(columns: Sequence[dict], names: Sequence[str], measures: Sequence[tuple]) -> str:
    """One row per measure, one column per name: "mean ± std" cells from `aggregate_seeds` outputs.

    Args:
        columns: list of dicts `{key: {"mean", "std"}}`, one per name.
        names: list of str. Column titles.
        measures: list of `(key, label, digits)`; keys absent from the
            columns are skipped. A zero std prints the mean alone.
    """
    rows = []
    for key, label, digits in measures:
        if key not in columns[0]:
            continue
        cells = [f"{c[key]['mean']:.{digits}f}" + (f" ± {c[key]['std']:.{digits}f}" if c[key]["std"] else "")
                 for c in columns]
        rows.append([label, *cells])
    return markdown_table(["measure", *names], rows)


def write_report(report_dir: str, report: dict, lines: Sequence[str], started: float, prefix: str = "") -> None:
    """Write a study's `<prefix>results.json` and `<prefix>tables.md` and print the tables.

    Args:
        report_dir: str. The report folder (exists).
        report: dict. The JSON report; gets `study_time_s`, the seconds since `started`.
        lines: list of str. The Markdown lines of `tables.md`.
        started: float. `time.perf_counter()` when the study began.
        prefix: str. File name prefix (e.g. the dataset name and "_").
    """
    report["study_time_s"] = time.perf_counter() - started
    write_json(os.path.join(report_dir, f"{prefix}results.json"), report)
    write_text(os.path.join(report_dir, f"{prefix}tables.md"), "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"took {report['study_time_s']:.0f} s; report in {report_dir}")
