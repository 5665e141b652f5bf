"""``python -m scelmo_desktop.cli`` is ``scelmo``."""

import sys

from scelmo_desktop.cli.main import main

sys.exit(main())
