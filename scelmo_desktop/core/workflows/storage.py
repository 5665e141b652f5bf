"""What the app keeps between runs, as the doors use it: the description store, description packs, stored
gene tables, whether the gene catalog is installed, and a Dask cluster for out-of-memory embedding."""

from scelmo_desktop.core.embedding.dask_embedding import dask_client
from scelmo_desktop.core.embedding.tables import import_table, list_tables, resolve_table
from scelmo_desktop.core.knowledge.genes import catalog_available
from scelmo_desktop.core.text.packs import export_pack, import_pack
from scelmo_desktop.core.text.store import Store

__all__ = ["Store", "catalog_available", "dask_client", "export_pack", "import_pack", "import_table",
           "list_tables", "resolve_table"]  # fmt: skip
