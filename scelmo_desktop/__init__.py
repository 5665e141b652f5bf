"""scELMo Desktop: offline LLM-derived embeddings for single-cell data (Liu et al., scELMo).

The Python face works the scanpy way::

    import scelmo_desktop as scelmo
    adata = scelmo.io.read("filtered_feature_bc_matrix.h5")
    scelmo.pp.qc(adata, sample_key="sample")
    scelmo.tl.embed_cells(adata, models=scelmo.models.load(mode="facts"), key_added="X_scelmo")
    scelmo.tl.cluster(adata, use_rep="X_scelmo")
    scelmo.pl.umap(adata)

Layers: ``core`` (pure computation and the workflows every door calls; no Qt, no backend), ``backends``
(llama.cpp, an OpenAI-compatible server, sentence-transformers), ``app`` (opening models for any door), and
the doors: this face (``pp``, ``tl``, ``pl``, ``io``, ``models``), the CLI, the desktop app (``gui``) and the
napari plugin. ``pyproject.toml`` holds the import contracts that keep them apart.
"""

from scelmo_desktop._offline import enforce_offline

enforce_offline()

__version__ = "0.1.0"

_FACE = ("pp", "tl", "pl", "io", "models")


def __getattr__(name: str):
    # the face is imported on first use: ``import scelmo_desktop`` stays light for the CLI and the app
    if name in _FACE:
        import importlib

        module = importlib.import_module(f"scelmo_desktop.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'scelmo_desktop' has no attribute '{name}'")
