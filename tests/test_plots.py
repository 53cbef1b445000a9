"""Figures draw what they are given."""

import numpy as np
from PIL import Image

from kgen.utils.plots import plot_class_grid, plot_image_rows


def test_image_rows_and_class_grid_show_the_images(tmp_path):
    white = np.ones((3, 8, 8, 1), "float32")  # +1 is white in kgen's [-1, 1]
    black = -white
    rows_path, grid_path = str(tmp_path / "rows.png"), str(tmp_path / "grid.png")
    plot_image_rows([("white", white), ("black", black)], rows_path)
    plot_class_grid(np.stack([white, black]), ["a", "b", "c"], grid_path)
    for path in (rows_path, grid_path):
        pixels = np.asarray(Image.open(path).convert("L"), np.float32)
        # Both black and white image cells must appear (matplotlib's white margins alone are not enough).
        assert (pixels < 10).mean() > 0.02 and (pixels > 245).mean() > 0.05
    rows = np.asarray(Image.open(rows_path).convert("L"), np.float32)
    top, bottom = rows[: len(rows) // 2], rows[len(rows) // 2:]
    assert (top > 245).mean() > (bottom > 245).mean()  # the white row is on top
