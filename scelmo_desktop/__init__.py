"""scELMo Desktop: offline LLM-derived embeddings for single-cell data (Liu et al., scELMo).

The package has three layers: ``core`` (pure computation on AnnData/numpy, no Qt), ``backends`` (the local
LLM and the text embedder behind small protocols) and the thin doors over them (``cli``; the GUI later).
"""

from scelmo_desktop._offline import enforce_offline

enforce_offline()

__version__ = "0.1.0"
