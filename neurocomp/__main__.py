"""``python -m neurocomp``: the same as the ``neurocomp`` command."""

import sys

from .cli import main

sys.exit(main())
