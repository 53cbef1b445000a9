"""Loss curves with matplotlib (Agg backend: no display needed)."""

from typing import Optional, Sequence

import numpy as np

from kgen.utils.atomic import atomic_path


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Centered moving average that keeps the length (shrinks at the ends)."""
    values = np.asarray(values, dtype=np.float64)
    if window <= 1 or len(values) < 3:
        return values
    kernel = np.ones(window)
    num = np.convolve(values, kernel, mode="same")
    den = np.convolve(np.ones_like(values), kernel, mode="same")
    return num / den


def plot_history(step_rows: Sequence[dict], epoch_rows: Sequence[dict], keys: Sequence[str], path: str,
                 title: Optional[str] = None) -> None:
    """Per-step curves (raw, faint, and smoothed) beside per-epoch means.

    Args:
        step_rows: list of dict with 'step' and the keys.
        epoch_rows: list of dict with 'epoch' and the keys (epoch means).
        keys: list of str. Series to draw.
        path: str. PNG to write.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_step, ax_epoch) = plt.subplots(1, 2, figsize=(12, 4.2))
    steps = [r["step"] for r in step_rows]
    window = max(1, len(steps) // 50)
    for i, key in enumerate(keys):
        color = f"C{i}"
        values = [r.get(key, np.nan) for r in step_rows]
        if steps:
            ax_step.plot(steps, values, color=color, alpha=0.2, linewidth=0.6)
            ax_step.plot(steps, smooth(values, window), color=color, label=key)
        epochs = [r["epoch"] for r in epoch_rows]
        if epochs:
            ax_epoch.plot(epochs, [r.get(key, np.nan) for r in epoch_rows], "o-", color=color, label=key)
    ax_step.set_xlabel("step")
    ax_step.set_title(f"per step (faint: raw, solid: moving average of {window})")
    ax_epoch.set_xlabel("epoch")
    ax_epoch.set_title("epoch mean")
    for ax in (ax_step, ax_epoch):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def _save(fig, path):
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_image_rows(rows: Sequence[tuple], path: str, title: Optional[str] = None) -> None:
    """One labelled row of images per entry, e.g. inputs above reconstructions.

    Args:
        rows: list of `(label, images)`, images (N, H, W, C) in [-1, 1]; rows
            may differ in N.
        path: str. PNG to write.
        title: str or None. Figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kgen.utils.images import make_grid, to_uint8

    fig, axes = plt.subplots(len(rows), 1, figsize=(12, 1.1 * len(rows) + 0.4), squeeze=False)
    for ax, (label, images) in zip(axes[:, 0], rows):
        grid = make_grid(to_uint8(images), ncols=len(images))
        ax.imshow(grid.squeeze(-1) if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=255)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title)
    _save(fig, path)


def plot_curves(panels: Sequence[dict], path: str, title: Optional[str] = None) -> None:
    """Several labelled curves per panel, panels side by side.

    Args:
        panels: list of dict with `title`, `xlabel`, `ylabel` and `series`,
            a dict label -> (x, y). A panel may set `log_y` and `points`
            (draw markers only, with the labels written beside them) or
            `markers` (lines through marked points), and `vertical_line`,
            an `(x, label)` drawn dashed across the panel.
        path: str. PNG to write.
        title: str or None. Figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for i, (label, (x, y)) in enumerate(panel["series"].items()):
            if panel.get("points"):
                ax.plot(x, y, "o", color=f"C{i}", label=label)
                for xi, yi in zip(np.atleast_1d(x), np.atleast_1d(y)):
                    ax.annotate(label, (xi, yi), textcoords="offset points", xytext=(5, 5), fontsize=8)
            else:
                ax.plot(x, y, "o-" if panel.get("markers") else "-", color=f"C{i}", label=label)
        if panel.get("vertical_line"):
            x, label = panel["vertical_line"]
            ax.axvline(x, color="grey", linestyle="--", linewidth=1, label=label)
        if panel.get("log_y"):
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(matplotlib.ticker.LogFormatter())  # 60, not 6x10^1
            ax.yaxis.set_minor_formatter(matplotlib.ticker.LogFormatter(minor_thresholds=(2, 0.4)))
        ax.set_title(panel.get("title", ""))
        ax.set_xlabel(panel.get("xlabel", ""))
        ax.set_ylabel(panel.get("ylabel", ""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def plot_class_grid(images: np.ndarray, class_names: Sequence[str], path: str, title: Optional[str] = None,
                    row_labels: Optional[Sequence[str]] = None) -> None:
    """Images in a (rows, classes) grid with the class names above the columns.

    Args:
        images: array (rows, classes, H, W, C) in [-1, 1].
        class_names: list of str, one per column.
        path: str. PNG to write.
        title: str or None.
        row_labels: list of str or None, one per row.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kgen.utils.images import to_uint8

    rows, cols = images.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols + 0.6, 1.1 * rows + 0.5), squeeze=False)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            image = to_uint8(images[r, c])
            ax.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(class_names[c], fontsize=8)
            if c == 0 and row_labels:
                ax.set_ylabel(row_labels[r], rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title)
    _save(fig, path)
