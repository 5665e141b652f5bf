"""Each quality flag fires on a crafted bad text and stays quiet on a good one."""

from scelmo_desktop.core.knowledge.genes import GeneRecord
from scelmo_desktop.core.text.quality import quality_flags

PROMPT = (
    "Please summarize the major function of gene: LYZ. Use academic language in one paragraph and include "
    "pathway information."
)
LYZ = GeneRecord(symbol="LYZ", long_name="lysozyme", gene_type="protein_coding", chromosome="12", location="12q15")
GOOD = (
    "LYZ encodes lysozyme, an antimicrobial enzyme that hydrolyses peptidoglycan in bacterial cell walls. It is "
    "abundant in monocytes, macrophages and neutrophils, contributes to innate immunity and is secreted into "
    "body fluids; the gene lies on chromosome 12."
)


def flags(text, **kwargs):
    return quality_flags(text, entity="LYZ", prompt=PROMPT, record=LYZ, **kwargs)


def test_good_text_has_no_flags():
    assert flags(GOOD, n_tokens=60, max_tokens=160) == []


def test_prompt_echo():
    assert "prompt_echo" in flags(PROMPT + " " + GOOD)


def test_repetition_loop():
    assert "repetition" in flags("LYZ is lysozyme. " + "Proceed to the next section. " * 12)


def test_wrong_script():
    assert "wrong_script" in flags(GOOD + " リゾチームは細菌の細胞壁を分解する酵素であり、単球に多い。ご購入")


def test_too_short_and_truncated():
    assert "too_short" in flags("LYZ is lysozyme.")
    assert "truncated" in flags(GOOD[:-1] + " and it also", n_tokens=160, max_tokens=160)


def test_name_absent():
    assert "name_absent" in flags(GOOD.replace("LYZ", "This gene").replace("lysozyme", "an enzyme"))


def test_contradiction_with_the_fact_sheet():
    assert "contradicts_facts" in flags(GOOD.replace("chromosome 12", "chromosome 7"))
    assert "contradicts_facts" in flags("LYZ is a pseudogene. " + GOOD)
    assert "contradicts_facts" not in flags(GOOD)
