"""Candidate cell types per tissue, for annotation with no reference and no label list of the user's own.

Each entry names a Cell Ontology term by id, so a preset never depends on the label mapper; its markers come
from the installed marker tables (``knowledge/markers.py``). The blood preset is the populations a 10x PBMC run
holds (Zheng et al. 2017; the PBMC 3k and Kang 2018 labels), at the level markers can separate.
"""

from __future__ import annotations

from scelmo_desktop.core._infra.errors import ScelmoError

TISSUE_PRESETS: dict[str, dict[str, str]] = {
    "blood": {  # display name -> Cell Ontology id
        "classical monocyte": "CL:0000860",
        "non-classical monocyte": "CL:0000875",
        "CD4-positive, alpha-beta T cell": "CL:0000624",
        "CD8-positive, alpha-beta T cell": "CL:0000625",
        "natural killer cell": "CL:0000623",
        "B cell": "CL:0000236",
        "plasma cell": "CL:0000786",
        "conventional dendritic cell": "CL:0000990",
        "plasmacytoid dendritic cell": "CL:0000784",
        "megakaryocyte": "CL:0000556",
    },
}
TISSUE_PRESETS["pbmc"] = TISSUE_PRESETS["blood"]


def preset_terms(name: str) -> dict[str, str]:
    """The candidate types of tissue preset ``name`` (display name → Cell Ontology id)."""
    try:
        return dict(TISSUE_PRESETS[name.lower()])
    except KeyError:
        raise ScelmoError(
            f"Unknown tissue preset '{name}'; use one of {', '.join(sorted(TISSUE_PRESETS))}, or "
            "name the candidate cell types yourself."
        ) from None
