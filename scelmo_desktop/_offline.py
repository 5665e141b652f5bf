"""Offline switches set by the app itself, not left to the user's environment.

Hugging Face libraries read these variables at import time, so they must be set before ``transformers`` or
``sentence_transformers`` is imported; importing ``scelmo_desktop`` does that.
"""

import os

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}


def enforce_offline() -> None:
    """Set every known offline/telemetry switch (overriding any value that would allow network use)."""
    for key, value in OFFLINE_ENV.items():
        os.environ[key] = value
