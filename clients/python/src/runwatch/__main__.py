"""``python -m runwatch``: see :mod:`runwatch.cli`."""
import sys

from .cli import main

sys.exit(main())
