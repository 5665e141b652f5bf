"""scELMo as a napari plugin (optional extra ``napari``): a dock widget that embeds an AnnData file with local
models and shows the cells' UMAP as a Points layer coloured by cluster. Discovered through the
``napari.manifest`` entry point (``napari.yaml``)."""
