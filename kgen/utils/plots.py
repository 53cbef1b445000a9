"""Loss curves with matplotlib (Agg backend: no display needed)."""

import os

import numpy as np


def smooth(values, window):
    """Centered moving average that keeps the length (shrinks at the ends)."""
    values = np.asarray(values, dtype=np.float64)
    if window <= 1 or len(values) < 3:
        return values
    kernel = np.ones(window)
    num = np.convolve(values, kernel, mode="same")
    den = np.convolve(np.ones_like(values), kernel, mode="same")
    return num / den


def plot_history(step_rows, epoch_rows, keys, path, title=None):
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
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
