"""The machine and the run around a workflow, as the doors use it: the error users can fix, cancelling,
atomic writes, the audit trail, the user's folders, threads and devices, the network check, and what set-up
prepares once (the gene catalog's install-time cache, numba's compiled code)."""

from scelmo_desktop.core._infra import audit
from scelmo_desktop.core._infra.atomic import write_bytes_atomic, write_text_atomic
from scelmo_desktop.core._infra.audit import audit_path, read_entries
from scelmo_desktop.core._infra.compile_cache import enable_compile_cache, warm_install_compile_cache
from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core._infra.hardware import default_threads, torch_device
from scelmo_desktop.core._infra.jobs import Cancelled, TimeLeft, no_progress
from scelmo_desktop.core._infra.network import check_address
from scelmo_desktop.core._infra.paths import default_store_path, docs_dir, user_data_dir
from scelmo_desktop.core.knowledge.genes import prepare_install_cache

__all__ = ["Cancelled", "ScelmoError", "TimeLeft", "audit", "audit_path", "check_address", "default_store_path",
           "default_threads", "docs_dir", "enable_compile_cache", "no_progress", "prepare_install_cache", "read_entries", "torch_device",
           "user_data_dir", "warm_install_compile_cache",
           "write_bytes_atomic", "write_text_atomic"]  # fmt: skip
