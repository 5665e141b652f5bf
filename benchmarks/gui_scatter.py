"""How the desktop app's embedding view copes with large data (offscreen Qt, one thread).

For 10k, 100k and 300k cells with a 12-category label: time to load the view (set_data: subsample, colours,
legend), to recolour by another column, and to render one frame (grab); the box selection over all cells.
Above the view's MAX_DRAWN (150k) a fixed random subset is drawn, which is what keeps 300k interactive.

    OMP_NUM_THREADS=1 QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/gui_scatter.py
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _results import report  # noqa: E402


def main() -> dict:
    import anndata as ad
    import torch  # noqa: F401  (before Qt, as the app does)
    from PySide6.QtWidgets import QApplication

    from scelmo_desktop.gui.embedding_view import EmbeddingView

    app = QApplication.instance() or QApplication([])
    rows = {}
    for n in (10_000, 100_000, 300_000):
        rng = np.random.default_rng(0)
        centres = rng.normal(0, 10, (12, 2))
        labels = rng.integers(0, 12, n)
        adata = ad.AnnData(
            obs=pd.DataFrame(
                {"label": pd.Categorical(labels.astype(str)), "cluster": pd.Categorical((labels % 5).astype(str))},
                index=[f"c{i}" for i in range(n)],
            )
        )
        adata.obsm["X_umap"] = (centres[labels] + rng.normal(0, 1, (n, 2))).astype(np.float32)
        view = EmbeddingView()
        view.resize(1000, 700)
        view.show()
        started = time.perf_counter()
        view.set_data(adata, "X_umap", color_by="label")
        app.processEvents()
        load = time.perf_counter() - started
        started = time.perf_counter()
        view.colour_combo.setCurrentText("cluster")
        app.processEvents()
        recolour = time.perf_counter() - started
        started = time.perf_counter()
        view.grab()
        frame = time.perf_counter() - started
        view._add_box()
        started = time.perf_counter()
        selected = len(view.selected_cells())
        select = time.perf_counter() - started
        rows[f"{n} cells"] = {
            "drawn": view.n_points(),
            "load_s": round(load, 2),
            "recolour_s": round(recolour, 2),
            "frame_s": round(frame, 3),
            "box_select_s": round(select, 3),
            "selected": selected,
        }
        view.close()
        print(n, rows[f"{n} cells"])
    return report("gui_scatter", rows)


if __name__ == "__main__":
    main()
