"""Entry point of ``python -m nas_engine``."""

import sys

from nas_engine.cli import main

sys.exit(main())
