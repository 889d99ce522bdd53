"""``python -m anda.mcp``: the same as ``python -m anda mcp``."""

import sys

from anda.mcp import main

sys.exit(main())
