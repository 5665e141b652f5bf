"""Reading pickles without running code: only plain containers, numbers, strings and numpy arrays are built.

Used for imported gene tables (GenePT / scELMo pickles) and for pickled knowledge shipped in packages
(cellconsensus' marker table). A pickle naming any other class (the way malicious pickles run code) is refused
before anything in it is constructed.
"""

from __future__ import annotations

import io
import pickle

from scelmo_desktop.core._infra.errors import ScelmoError

ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("builtins", "dict"),
    ("builtins", "list"),
    ("builtins", "tuple"),
    ("builtins", "float"),
    ("builtins", "int"),
    ("builtins", "str"),
    ("collections", "OrderedDict"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only the globals in :data:`ALLOWED_GLOBALS`; any other is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise ScelmoError(
            f"Refused to load the pickle: it asks for '{module}.{name}', which is not a plain dict/list/number/"
            "string/numpy array. Pickles can run code when loaded; convert the table to .npz or .csv instead."
        )


def safe_unpickle(data: bytes):
    """Unpickle ``data`` allowing only plain containers, numbers, strings and numpy arrays."""
    return RestrictedUnpickler(io.BytesIO(data)).load()
