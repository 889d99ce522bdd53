"""Runs an example agent as a user would: its own process, its SDK pointed at the stand-in.

Shared by the framework tests (``test_integrations_*.py``): only the
stand-in's settings reach the provider SDKs (nothing of a developer's own
OpenAI or Anthropic configuration, no proxy for 127.0.0.1).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from conftest import UPSERT_PERSON
from provider_standin import API_KEY, Answer, StandIn, Step, ToolCall

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MODEL = "standin-model"

# What every example agent is asked, and what its model (the stand-in) answers.
REQUEST = "Remember that Ada Lovelace wrote the first program."
FINAL = "Noted: Ada Lovelace is in my memory now."
ADA = {"key": "ada", "name": "Ada Lovelace"}
# An UPSERT cut short: the engine refuses it with InvalidSyntax.
MALFORMED = 'UPSERT CONCEPT ?p { MATCH { type: "Person", key: :key '


def corrects_itself(final: str = FINAL) -> list[Step]:
    """The stand-in's script: a malformed write the engine refuses, the
    corrected write once the model has read the typed error, the answer."""
    return [
        ToolCall(MALFORMED, ADA, expect="InvalidSyntax"),
        ToolCall(UPSERT_PERSON, ADA),
        Answer(final),
    ]


def run_example(
    script: str,
    standin: StandIn,
    *args: str,
    model: str = MODEL,
    timeout: float = 120,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    own = ("OPENAI_", "ANTHROPIC_", "ANDA_", "GOOGLE_", "LANGCHAIN_", "LANGSMITH_")
    environment = {name: value for name, value in os.environ.items() if not name.startswith(own)}
    environment.update(
        OPENAI_API_KEY=API_KEY,
        OPENAI_BASE_URL=f"{standin.url}/v1",
        ANTHROPIC_API_KEY=API_KEY,
        ANTHROPIC_BASE_URL=standin.url,
        ANDA_EXAMPLE_MODEL=model,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        **(env or {}),
    )
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        check=False,
    )
