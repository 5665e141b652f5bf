"""The knowledge read from installed packages (issue 16's sources), on the real files: GO biological processes
(blitzgsea), pathways (pegasuspy), consensus markers (cellconsensus, through the restricted unpickler) and the
immune hierarchy; each with its package, version and sha256 for provenance."""

import re

import pytest

from scelmo_desktop.core.knowledge import markers as markers_module
from scelmo_desktop.core.knowledge.function import GeneFunction, go_term_name, pathway_name
from scelmo_desktop.core.knowledge.go_database import GODatabase
from scelmo_desktop.core.knowledge.markers import CellMarkers

SHA256 = re.compile(r"^[0-9a-f]{64}$")


def installed(loaded, missing: str):
    """The loaded knowledge, or skip the test saying what is not installed."""
    if loaded is None:
        pytest.skip(f"{missing} not installed")
    return loaded


@pytest.fixture(scope="module")
def function():
    return installed(GeneFunction.load(), "blitzgsea/pegasuspy (the knowledge extra: requirements-knowledge.txt)")


@pytest.fixture(scope="module")
def markers():
    return installed(CellMarkers.load(), "cellconsensus/pegasuspy (the knowledge extra: requirements-knowledge.txt)")


def test_go_processes_for_marker_genes_most_specific_first(function):
    """The same records from either GO source: Bioconductor's databases where installed, else blitzgsea."""
    assert "alpha-beta T cell activation" in function.processes_of("CD3E")
    assert "defense response to gram-positive bacterium" in [p.lower() for p in function.processes_of("LYZ")]
    assert "natural killer cell degranulation" in function.processes_of("NKG7", 5)
    assert "B cell proliferation" in function.processes_of("MS4A1", 5)
    assert function.processes_of("LINC00115") == [] and function.pathways_of("LINC00115") == []  # no GO term
    assert len(function.processes) > 14_000  # GO_Biological_Process_2023: 14,698 genes; GO.db non-IEA: 16,795
    if GODatabase.load() is None:  # blitzgsea's sets: the smaller set first
        processes = function.processes_of("CD3E")
        assert processes.index("alpha-beta T cell activation") < processes.index("T cell activation")


@pytest.fixture(scope="module")
def go_database():
    return installed(GODatabase.load(), "Bioconductor's GO databases (packaging/go_databases.sh; Debian/Ubuntu only)")


def test_go_database_reads_direct_annotations_functions_and_definitions(go_database, function):
    processes = go_database.processes["NKG7"]
    assert "natural killer cell degranulation" in processes
    sizes = {}  # most specific first: no later term annotates fewer genes than an earlier one
    for terms in go_database.processes.values():
        for term in terms:
            sizes[term] = sizes.get(term, 0) + 1
    assert [sizes[t] for t in processes] == sorted(sizes[t] for t in processes)
    assert "lysozyme activity" in go_database.functions["LYZ"]
    assert "T cell receptor binding" in go_database.functions["CD3E"]
    assert "LINC00115" not in go_database.processes
    assert go_database.definition("natural killer cell degranulation").startswith("The regulated exocytosis")
    assert function.processes is go_database.processes  # the sheets' processes come from GO.db when present
    for source in go_database.sources:
        assert source["package"] in ("r-bioc-org.hs.eg.db", "r-bioc-go.db") and SHA256.match(source["sha256"])
        assert source["version"] != "unknown" and "Artistic-2.0" in source["licence"]


def test_go_database_script_says_why_when_it_cannot(tmp_path):
    """Without apt-get (not Debian/Ubuntu) the set-up step explains and succeeds; nothing is written."""
    import shutil
    import subprocess
    from pathlib import Path

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "ls", "mkdir", "tail", "tar", "mv", "rm", "tr", "cat"):
        if shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool))
    script = Path(__file__).resolve().parents[1] / "packaging" / "go_databases.sh"
    result = subprocess.run(
        [str(bin_dir / "bash"), str(script), str(tmp_path / "go")],
        capture_output=True,
        text=True,
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
        timeout=60,
    )
    assert result.returncode == 0 and "not installed" in result.stdout and "apt-get" in result.stdout
    assert not (tmp_path / "go").exists()


def test_pathways_exclude_kegg_and_read_as_names(function):
    pathways = function.pathways_of("CD3E")
    assert any("(Reactome)" in p for p in pathways) and not any("KEGG" in p for p in pathways)
    assert pathway_name("KEGG_T_CELL_RECEPTOR_SIGNALING_PATHWAY") is None
    assert pathway_name("REACTOME_TCR_SIGNALING") == "TCR signaling (Reactome)"
    assert go_term_name("B Cell Activation (GO:0042113)") == "B cell activation"
    assert (
        go_term_name("Positive Regulation Of Interleukin-2 Production (GO:0032743)")
        == "positive regulation of interleukin-2 production"
    )


def test_sources_record_package_version_and_hash(function, markers):
    for source in function.sources + markers.sources:
        assert source["package"] and source["version"] != "unknown" and SHA256.match(source["sha256"])
        assert source["licence"]
    assert {s["package"] for s in function.sources} & {"blitzgsea", "r-bioc-org.hs.eg.db"}
    assert {s["package"] for s in markers.sources} >= {"cellconsensus"}


def test_consensus_markers_for_blood_types(markers):
    assert markers.markers("CL:0001054", 3) == ["CD14", "LYZ", "FCGR3A"]  # CD14-positive monocyte
    assert "MS4A1" in markers.markers("CL:0000236", 3)  # B cell
    assert {"PPBP", "PF4"} <= set(markers.markers("CL:0000556", 5))  # megakaryocyte
    assert "CL:0000236" in markers.types_marked_by("MS4A1")[:3]
    assert markers.markers("CL:0001054", 5, genes=["LYZ", "S100A8", "NOTAGENE"]) == ["LYZ", "S100A8"]
    assert markers.names["CL:0000623"] == "natural killer cell"


def test_immune_hierarchy_has_signed_markers(markers):
    nk = markers.immune["Natural killer cell"]
    assert {"GNLY", "KLRF1"} <= set(nk.positive) and "CD3E" in nk.negative
    assert markers.immune["CD4 Naive T cell"].parent == "T cell"
    assert len(markers.immune) == 42


def test_the_marker_pickle_goes_through_the_restricted_unpickler(monkeypatch, markers):
    seen = []
    real = markers_module.safe_unpickle
    monkeypatch.setattr(markers_module, "safe_unpickle", lambda data: seen.append(len(data)) or real(data))
    markers_module._load.cache_clear()
    try:
        reloaded = CellMarkers.load()
    finally:
        markers_module._load.cache_clear()
    assert seen and seen[0] > 1_000_000 and reloaded.markers("CL:0000623", 1) == markers.markers("CL:0000623", 1)


@pytest.mark.parametrize(
    "label, term",
    [
        ("CD14 Monocytes", "CL:0001054"),
        ("Megakaryocytes", "CL:0000556"),
        ("NK cells", "CL:0000623"),
        ("CD8 T", "CL:0000625"),
    ],
)
def test_lab_labels_map_to_cell_ontology(label, term):
    from scelmo_desktop.core.knowledge.cell_ontology import CellOntology

    match = CellOntology.load().map_label(label)
    assert match is not None and match.term_id == term, match


def test_a_gene_symbol_in_a_label_reads_as_its_cd_name():
    from scelmo_desktop.core.knowledge.cell_ontology import CellOntology

    match = CellOntology.load().map_label("FCGR3A Monocytes")  # FCGR3A is CD16
    assert match is not None and "CD16-positive" in match.term_label and "monocyte" in match.term_label


def test_annotation_with_no_reference_from_curated_markers(tmp_path, markers):
    """Text mode with knowledge scoring: the file's own label names → Cell Ontology → curated markers → scores.
    On pbmc68k_reduced's 10 fine types (765 genes) the text-space route reached 0.229 accuracy."""
    import scanpy as sc

    import scelmo_desktop as scelmo

    adata = sc.datasets.pbmc68k_reduced()
    names = sorted(set(adata.obs["bulk_labels"].astype(str)))
    with scelmo.models.load(mode="facts", store=tmp_path / "store.sqlite") as models:
        record = scelmo.tl.annotate(
            adata,
            method="text",
            text_scoring="knowledge",
            candidates=names,
            label_key="bulk_labels",
            models=models,
            layer="raw",
            threshold=0.5,
        )
    assert record["metrics"]["accuracy"] > 0.55, record["metrics"]  # measured 0.667 without a threshold
    assert record["cell_ontology"]["CD14+ Monocyte"]["term_id"] == "CL:0001054"
    assert "LYZ" in record["markers"]["CD14+ Monocyte"] and record["table_genes"] == 0  # no gene table built
    calls = adata.obs["scelmo_label"].astype(str)
    assert 0 < (calls == "Unknown").mean() < 0.5  # the threshold leaves the unsure cells unnamed
    assert adata.obs["scelmo_label_confidence"].between(0, 1).all()


def test_fact_sheets_say_what_genes_do_within_the_window(function, markers):
    from scelmo_desktop.core.knowledge.facts import MAX_SHEET_CHARS, gene_fact_sheets

    sheets = gene_fact_sheets(["CD3E", "LYZ", "NKG7", "LINC00115"])
    assert "Biological processes:" in sheets.texts["CD3E"] and "alpha-beta T cell activation" in sheets.texts["CD3E"]
    assert "Marker of:" in sheets.texts["NKG7"] and "natural killer cell" in sheets.texts["NKG7"]
    assert "Pathways:" in sheets.texts["LYZ"] and "(Reactome)" in sheets.texts["LYZ"]
    assert "Biological processes" not in sheets.texts["LINC00115"]  # no GO term: the sheet says only what is known
    assert all(len(text) <= MAX_SHEET_CHARS for text in sheets.texts.values())
    # the sources are part of the knowledge id: a grounded answer is cached per sheet content
    packages = {s["package"] for s in sheets.source["function"]}
    assert "cellconsensus" in packages and packages & {"blitzgsea", "r-bioc-org.hs.eg.db"}
    assert "cellconsensus" in sheets.knowledge_id
    if GODatabase.load() is not None:  # its processes; functions and definitions measured worse in the sheet
        assert (
            "natural killer cell degranulation" in sheets.texts["NKG7"]
            and "Molecular functions" not in sheets.texts["LYZ"]
        )
