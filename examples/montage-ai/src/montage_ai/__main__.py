"""``python -m montage_ai`` is the ``montage-ai`` command."""

import sys

from .cli import main

sys.exit(main())
