"""The napari plugin: the npe2 manifest points at a real widget, the widget builds and adds a Points layer.
With napari installed (optional extra) the manifest is validated by npe2 and the widget docks in a headless
viewer; without it those two checks are skipped and the rest still runs."""

import importlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import scelmo_desktop.napari_plugin as plugin

MANIFEST = Path(plugin.__file__).with_name("napari.yaml")


class FakeViewer:
    def __init__(self):
        self.layers = []

    def add_points(self, data, **kwargs):
        self.layers.append((data, kwargs))


def _widget_class():
    manifest = yaml.safe_load(MANIFEST.read_text())
    command = manifest["contributions"]["commands"][0]
    assert manifest["contributions"]["widgets"][0]["command"] == command["id"]
    module, name = command["python_name"].split(":")
    return getattr(importlib.import_module(module), name)


def test_manifest_names_a_widget_that_adds_the_cells(qtbot):
    widget_class = _widget_class()
    viewer = FakeViewer()
    widget = widget_class(viewer)
    qtbot.addWidget(widget)
    fake = type(
        "A",
        (),
        {
            "obsm": {"X_umap": np.random.default_rng(0).random((30, 2))},
            "obs": pd.DataFrame({"scelmo_leiden": np.repeat(["0", "1", "2"], 10)}),
            "n_obs": 30,
        },
    )()
    widget.add_cells_layer(fake)
    data, options = viewer.layers[0]
    assert data.shape == (30, 2) and options["face_color"] == "cluster"
    assert list(options["features"]["cluster"][:2]) == ["0", "0"]


def test_entry_point_is_declared():
    text = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert '[project.entry-points."napari.manifest"]' in text and "scelmo_desktop.napari_plugin:napari.yaml" in text


def test_npe2_validates_the_manifest():
    npe2 = pytest.importorskip("npe2", reason="napari extra not installed (pip install scelmo-desktop[napari])")
    manifest = npe2.PluginManifest.from_file(MANIFEST)
    assert manifest.name == "scelmo-desktop" and manifest.contributions.widgets


def test_widget_docks_in_a_headless_napari_viewer():
    napari = pytest.importorskip("napari", reason="napari extra not installed (pip install scelmo-desktop[napari])")
    viewer = napari.Viewer(show=False)
    try:
        viewer.window.add_dock_widget(_widget_class()(viewer), name="scELMo")
    finally:
        viewer.close()
