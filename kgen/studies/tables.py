"""Seed aggregation and Markdown tables of the study reports."""

import numpy as np


def aggregate_seeds(per_seed):
    """Mean and sample standard deviation over seeds of every numeric field of the per-seed dicts.

    A single seed gets std 0. Non-numeric fields (and booleans) are left out.
    """
    out = {}
    for key, value in per_seed[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values = np.array([r[key] for r in per_seed], np.float64)
            out[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
    return out


def markdown_table(header, rows):
    """A Markdown table: `header` is a list of column titles, `rows` lists of cell values (str() each)."""
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def measure_table(columns, names, measures):
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
