"""Runs an example agent as a user would: its own process, its SDK pointed at the stand-in.

Shared by the framework tests (``test_integrations_*.py``): only the
stand-in's settings reach the provider SDKs (nothing of a developer's own
OpenAI or Anthropic configuration, no proxy for 127.0.0.1).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from provider_standin import API_KEY, StandIn

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MODEL = "standin-model"


def run_example(
    script: str, standin: StandIn, *args: str, model: str = MODEL, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("OPENAI_", "ANTHROPIC_", "ANDA_", "GOOGLE_"))
    }
    env.update(
        OPENAI_API_KEY=API_KEY,
        OPENAI_BASE_URL=f"{standin.url}/v1",
        ANTHROPIC_API_KEY=API_KEY,
        ANTHROPIC_BASE_URL=standin.url,
        ANDA_EXAMPLE_MODEL=model,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
