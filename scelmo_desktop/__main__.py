"""``python -m scelmo_desktop`` starts the desktop app (the CLI is ``scelmo``)."""

import sys

from scelmo_desktop.gui.app import main

sys.exit(main())
