"""Canonical marker genes of the 10 ``bulk_labels`` types of pbmc68k_reduced, written by the project from
textbook immunology (sources per row). A marker may belong to several types (e.g. CCR7 marks naive T cells of
both lineages)."""

MARKERS = {
    # Monocytes: CD14 (LPS co-receptor), lysozyme and the S100A8/A9 calprotectin pair, ficolin-1 (Janeway's
    # Immunobiology, 9th ed., ch. 3; Zheng et al. 2017 PBMC 68k markers)
    "CD14+ Monocyte": ["CD14", "LYZ", "S100A8", "S100A9", "FCN1"],
    # Conventional dendritic cells: FcεRIα, CD1c (BDCA-1), CLEC10A, cystatin C (Villani et al. 2017, Science)
    "Dendritic": ["FCER1A", "CD1C", "CLEC10A", "CST3"],
    # B cells: CD19, CD20 (MS4A1), the BCR signalling chains CD79A/B (Janeway ch. 7)
    "CD19+ B": ["CD19", "MS4A1", "CD79A", "CD79B"],
    # NK cells: CD56 (NCAM1), granulysin, NKG7, KLRD1 (CD94) (Janeway ch. 3; Zheng et al. 2017)
    "CD56+ NK": ["NCAM1", "GNLY", "NKG7", "KLRD1"],
    # Cytotoxic CD8 T cells: CD8 α/β, granzyme B, perforin (Janeway ch. 9)
    "CD8+ Cytotoxic T": ["CD8A", "CD8B", "GZMB", "PRF1"],
    # Naive CD8 T cells: CD8, CCR7 and CD62L (SELL) for lymph-node homing, LEF1 (Sallusto et al. 1999, Nature)
    "CD8+/CD45RA+ Naive Cytotoxic": ["CD8A", "CCR7", "SELL", "LEF1"],
    # Regulatory T cells: FOXP3, CD25 (IL2RA), CTLA4 (Sakaguchi et al. 2008, Cell)
    "CD4+/CD25 T Reg": ["FOXP3", "IL2RA", "CTLA4"],
    # Naive CD4 T cells: CD4, CCR7, CD62L, TCF7 (Sallusto et al. 1999)
    "CD4+/CD45RA+/CD25- Naive T": ["CD4", "CCR7", "SELL", "TCF7"],
    # Memory CD4 T cells: CD4, IL-7 receptor α, CD40 ligand (Janeway ch. 11)
    "CD4+/CD45RO+ Memory": ["CD4", "IL7R", "CD40LG"],
    # Haematopoietic stem/progenitor cells: CD34, KIT (CD117), PROM1 (CD133) (Orkin & Zon 2008, Cell)
    "CD34+": ["CD34", "KIT", "PROM1"],
}
