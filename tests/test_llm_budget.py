"""The LLM budget (issue 14): fact sheets cover every gene, the real LLM refines the first ``llm_genes`` within
``llm_minutes``, and what was done is reported."""

import pytest
from conftest import TEST_PARAMS

from scelmo_desktop.core.knowledge.facts import gene_fact_sheets
from scelmo_desktop.core.text.gene_texts import describe_gene_list
from scelmo_desktop.core.text.store import Store

# the real LLM in grounded mode over the gene list (and a re-run): the full tier only
pytestmark = pytest.mark.slow

GENES = ["CD3E", "MS4A1", "LYZ", "NKG7", "PPBP", "GNLY"]


def test_llm_genes_budget_describes_the_first_genes_and_gives_the_rest_fact_sheets(tmp_path, llm_source):
    with Store(tmp_path / "s.sqlite") as store:
        result = describe_gene_list(
            GENES, mode="grounded", llm=llm_source, store=store, params=TEST_PARAMS, llm_genes=2
        )
    sheets = gene_fact_sheets(GENES).texts
    assert list(result.generated) == GENES[:2] and result.n_llm_calls == 2
    assert result.from_facts == GENES[2:] and all(result.texts[g] == sheets[g] for g in GENES[2:])
    assert set(result.texts) == set(GENES)
    assert result.budget_report() == {"genes": 6, "llm": 2, "fact_sheets": 4, "time_budget_reached": False}


def test_llm_minutes_budget_stops_generation_and_keeps_what_finished(tmp_path, llm_source):
    with Store(tmp_path / "s.sqlite") as store:
        # a budget shorter than one answer: the first answers that finish are kept, generation then stops
        result = describe_gene_list(
            GENES, mode="grounded", llm=llm_source, store=store, params=TEST_PARAMS, llm_minutes=1e-6
        )
        assert result.budget_reached and 1 <= len(result.generated) < len(GENES)
        assert set(result.texts) == set(GENES) and len(result.from_facts) == len(GENES) - len(result.generated)
        again = describe_gene_list(GENES, mode="grounded", llm=llm_source, store=store, params=TEST_PARAMS)
    # the answers that finished were stored: the unbounded re-run reuses them
    assert again.n_cached >= len(result.generated) and not again.budget_reached
    assert set(again.generated) == set(GENES)


def test_zero_llm_genes_makes_no_llm_call(tmp_path, llm_source):
    with Store(tmp_path / "s.sqlite") as store:
        result = describe_gene_list(
            GENES, mode="grounded", llm=llm_source, store=store, params=TEST_PARAMS, llm_genes=0
        )
    assert result.n_llm_calls == 0 and not llm_source.loads and result.from_facts == GENES
