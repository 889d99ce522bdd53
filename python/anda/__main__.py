"""``python -m anda``: the command line, :mod:`anda.cli`.

``python -m anda 'DESCRIBE PRIMER'`` runs one KIP command;
``python -m anda --help`` lists the subcommands (``load``, ``check``,
``export``, ``import``, ``copy``, ``mcp``, ``serve``).
"""

from __future__ import annotations

import sys

from anda.cli import run_in_a_pipeline

if __name__ == "__main__":
    sys.exit(run_in_a_pipeline())
