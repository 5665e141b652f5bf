"""Thread counts and compute devices.

On small shared VMs two OpenMP threads can be slower than one, so tests/CI pin ``OMP_NUM_THREADS=1``;
users get their physical core count unless they set ``SCELMO_THREADS`` (or ``OMP_NUM_THREADS``).
"""

from __future__ import annotations

import os


def default_threads() -> int:
    """``SCELMO_THREADS`` or ``OMP_NUM_THREADS`` when set to a positive number, else the physical core count
    (without psutil: half the logical cores, at least 1)."""
    for variable in ("SCELMO_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(variable, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
        if physical:
            return int(physical)
    except ImportError:
        pass
    return max(1, (os.cpu_count() or 2) // 2)


def torch_device(preferred: str = "auto") -> str:
    """``cuda`` or ``mps`` when present (or asked for), else ``cpu``."""
    if preferred != "auto":
        return preferred
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"
