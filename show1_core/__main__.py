"""``python -m show1_core`` is the ``show1`` command."""

import sys

from .cli import main

sys.exit(main())
