"""Entry point: `python -m tests.bench [--breakdown | --soak]` (see the package docstring)."""

import sys

from tests.bench.run import main

sys.exit(main())
