"""``python -m neurocomp``: the same as the ``neurocomp`` command."""

import sys

from .cli.main import main

sys.exit(main())
