"""``python -m workbench.cli``: the command line (as ``python -m workbench``)."""

import sys

from . import main

sys.exit(main())
