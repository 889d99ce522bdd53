"""The provider examples: the real OpenAI and Anthropic SDKs, against a local stand-in.

Each example runs as its own process, as a user would run it, with the SDK's
base URL pointed at :mod:`provider_standin` on 127.0.0.1 (no network, no key).
The stand-in scripts the model's side (tool calls, then a final text) and
checks every request; the test then opens the example's store and finds what
the agent wrote.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import anda
from conftest import FIND_PERSON_NAME, UPSERT_PERSON, result
from example_runner import ADA, FINAL, MALFORMED, REQUEST, corrects_itself
from provider_standin import API_KEY, Answer, StandIn, ToolCall, call_id, tool_results

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MODEL = "standin-model"

# The example and its arguments, per API.
AGENTS = {
    "chat": ("openai_agent.py", ["--api", "chat"]),
    "responses": ("openai_agent.py", ["--api", "responses"]),
    "anthropic": ("anthropic_agent.py", []),
}
APIS = list(AGENTS)


def run_agent(api: str, standin: StandIn, db: Path) -> subprocess.CompletedProcess[str]:
    script, args = AGENTS[api]
    # Only the stand-in's settings reach the SDKs: nothing of a developer's
    # own OpenAI or Anthropic configuration, no proxy for 127.0.0.1.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("OPENAI_", "ANTHROPIC_", "ANDA_"))
    }
    env.update(
        OPENAI_API_KEY=API_KEY,
        OPENAI_BASE_URL=f"{standin.url}/v1",
        ANTHROPIC_API_KEY=API_KEY,
        ANTHROPIC_BASE_URL=standin.url,
        ANDA_EXAMPLE_MODEL=MODEL,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--db", str(db), *args, REQUEST],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
        check=False,
    )


def find_ada(db: Path) -> list[Any]:
    with anda.Nexus(db) as nexus:
        return result(nexus.execute_kip(FIND_PERSON_NAME, {"key": "ada"}))


def assert_ran(proc: subprocess.CompletedProcess[str], standin: StandIn, rounds: int) -> None:
    # The stand-in's own findings first: they say which request was wrong.
    assert standin.failures == [], proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == FINAL
    assert [exchange.status for exchange in standin.exchanges] == [200] * rounds


@pytest.mark.timeout(120)
@pytest.mark.parametrize("api", APIS)
def test_agent_writes_memory_through_a_tool_call(api: str, tmp_path: Path) -> None:
    script = [ToolCall(UPSERT_PERSON, ADA), Answer(FINAL)]
    with StandIn(script, request=REQUEST, model=MODEL) as standin:
        proc = run_agent(api, standin, tmp_path / "memory")
    assert_ran(proc, standin, rounds=2)
    # The first request carries no tool result; the second carries exactly
    # the one for the scripted call, and it succeeded.
    first, second = standin.exchanges
    assert tool_results(api, first.body) == {}
    [(content, is_error)] = tool_results(api, second.body).values()
    assert '"status":"succeeded"' in content
    assert is_error is (False if api == "anthropic" else None)
    assert find_ada(tmp_path / "memory") == ["Ada Lovelace"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("api", APIS)
def test_agent_gets_the_error_back_and_carries_on(api: str, tmp_path: Path) -> None:
    # The model's first command is malformed; it reads the error and retries.
    script = corrects_itself()
    with StandIn(script, request=REQUEST, model=MODEL) as standin:
        proc = run_agent(api, standin, tmp_path / "memory")
    assert_ran(proc, standin, rounds=3)
    # The last request replays the whole exchange: the error, then the retry.
    results = tool_results(api, standin.exchanges[2].body)
    assert list(results) == [call_id(api, 0), call_id(api, 1)]
    content, is_error = results[call_id(api, 0)]
    assert '"code":"InvalidSyntax"' in content
    assert is_error is (True if api == "anthropic" else None)
    content, is_error = results[call_id(api, 1)]
    assert '"status":"succeeded"' in content
    assert is_error is (False if api == "anthropic" else None)
    assert find_ada(tmp_path / "memory") == ["Ada Lovelace"]


@pytest.mark.timeout(120)
def test_the_standin_rejects_a_wrong_tool_result(tmp_path: Path) -> None:
    # The checks above mean something only if the stand-in fails a run whose
    # tool result is not what the script expects.
    script = [ToolCall(MALFORMED, ADA), Answer(FINAL)]
    with StandIn(script, request=REQUEST, model=MODEL) as standin:
        proc = run_agent("anthropic", standin, tmp_path / "memory")
    assert proc.returncode != 0
    assert [exchange.status for exchange in standin.exchanges] == [200, 400]
    assert any("did not succeed" in failure for failure in standin.failures), standin.failures
    assert "did not succeed" in proc.stderr
    assert find_ada(tmp_path / "memory") == []
