"""``anda.Client``: the memory protocol over HTTP, equal to ``anda.Nexus`` call for call.

The properties run the same generated calls through a Client of a live
``python -m anda serve`` and through an embedded Nexus, and require the same
outcome. The wire format and the retry rules are checked against a scripted
stand-in server, where every byte and every failure is under control.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import anda
from anda._client import Client, RemoteError, ServerUnreachableError
from anda.testing import strategies as kst
from conftest import FIND_PERSON_NAME, UPSERT_PERSON, result
from test_server import Served, free_port, serving

FIND_ATTRIBUTES = "FIND(?c.name, ?c.attributes) WHERE { ?c {type: :type, key: :key} }"
FIND_ANY = 'FIND(?p) WHERE { ?p {type: "Person"} }'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("client"), in_memory=True) as served:
        yield served


@pytest.fixture(scope="module")
def client(server: Served) -> Iterator[Client]:
    with Client(server.url) as remote:
        yield remote


@pytest.fixture(scope="module")
def local() -> Iterator[anda.Nexus]:
    with anda.Nexus() as nexus:
        yield nexus


# -- the API, without a server ------------------------------------------------------------


def test_construction_and_repr() -> None:
    remote = Client("http://127.0.0.1:9/kip/", api_key="very-secret")
    assert remote.url == "http://127.0.0.1:9"
    assert repr(remote) == "<anda.Client 'http://127.0.0.1:9' (open)>"
    assert repr(Client("https://example.org/memory", readonly=True)) == (
        "<anda.Client 'https://example.org/memory' (read-only)>"
    )
    assert isinstance(remote, anda.Memory)
    for bad in ("ftp://x", "127.0.0.1:8080", "http://user:pw@host"):
        with pytest.raises(ValueError, match=r"url|URL"):
            Client(bad)
    with pytest.raises(ValueError, match="api_key"):
        Client("http://x", api_key=" ")
    with pytest.raises(ValueError, match="timeout"):
        Client("http://x", timeout=0)
    remote.close()
    assert remote.closed
    with pytest.raises(anda.MemoryClosedError):
        remote.execute_kip("DESCRIBE PRIMER")


def test_the_caller_is_the_servers_to_decide() -> None:
    remote = Client("http://127.0.0.1:9")
    with pytest.raises(ValueError, match="API key"):
        remote.execute_kip("DESCRIBE PRIMER", caller="alice")
    with pytest.raises(ValueError, match="API key"):
        remote.call_tool("execute_kip", {"command": "DESCRIBE PRIMER"}, caller="alice")
    with pytest.raises(ValueError, match="unknown tool"):
        remote.call_tool("rm_rf", {})


def test_unreachable_server() -> None:
    remote = Client(f"http://127.0.0.1:{free_port()}", retries=1)
    with pytest.raises(ServerUnreachableError) as caught:
        remote.execute_kip("DESCRIBE PRIMER")
    assert not caught.value.outcome_unknown
    assert isinstance(caught.value, anda.AndaError)


def test_bad_arguments_raise_as_nexus_raises(local: anda.Nexus) -> None:
    remote = Client("http://127.0.0.1:9")  # never reached: the arguments are refused first
    for parameters in (
        {"x": float("nan")},
        {"x": 2**60},
        {1: "x"},
        {"x": {1, 2}},
        {"x": "\udc80"},
        {"x": _nested(150)},
        [("x", 1)],
    ):
        errors = []
        for memory in (local, remote):
            with pytest.raises((TypeError, ValueError)) as caught:
                memory.execute_kip("DESCRIBE PRIMER", parameters)  # type: ignore[arg-type]
            errors.append(type(caught.value))
            assert str(caught.value).startswith("parameters"), caught.value
        assert errors[0] is errors[1], parameters
    with pytest.raises(TypeError):
        remote.execute_kip(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="execution"):
        remote.execute_kip("x", execution="parallel")  # type: ignore[arg-type]


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


# -- a scripted stand-in server -----------------------------------------------------------


class _Script:
    """Answers in order: (status, body) pairs, or "drop" (read the request, close)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []
        self.connections = 0


@contextlib.contextmanager
def scripted(script: _Script) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            script.connections += 1

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            script.requests.append(
                {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
            )
            answer = script.answers.pop(0)
            if answer == "drop":
                self.close_connection = True
                return
            status, payload = answer
            data = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _ok(value: Any = None) -> tuple[int, dict[str, Any]]:
    return 200, {
        "kip": "2.0",
        "status": "succeeded",
        "results": [{"status": "succeeded", "result": value}],
    }


def _error(status: int, code: str, category: str, retry: str) -> tuple[int, dict[str, Any]]:
    error = {"code": code, "category": category, "message": "m", "retry": {"class": retry}}
    return status, {"kip": "2.0", "status": "failed", "results": [], "error": error}


def test_the_wire_is_the_upstream_envelope() -> None:
    script = _Script(_ok(), _ok(), _ok(), _ok(), _ok())
    with scripted(script) as url, Client(url + "/kip", api_key="k") as remote:
        remote.execute_kip(UPSERT_PERSON, {"key": "a", "name": "A"})
        remote.execute_kip(["DESCRIBE PRIMER", ("FIND(?x)", {"k": 1})], dry_run=True)
        remote.call_tool("execute_kip", '{"command": "DESCRIBE PRIMER", "dry_run": false}')
        # Reads, proven so by the engine's read-only gate: sent as execute_kip.
        remote.call_tool("execute_kip_readonly", {"operations": ["DESCRIBE PRIMER", FIND_ANY]})
        # Commands the gate cannot read: for the server's read-only method to judge.
        remote.call_tool("execute_kip_readonly", {"operations": ["A", "B"]})
    assert [request["body"] for request in script.requests] == [
        {
            "method": "execute_kip",
            "params": {
                "kip": "2.0",
                "operations": [{"command": UPSERT_PERSON}],
                "parameters": {"key": "a", "name": "A"},
            },
        },
        {
            "method": "execute_kip",
            "params": {
                "kip": "2.0",
                "operations": [
                    {"command": "DESCRIBE PRIMER"},
                    {"command": "FIND(?x)", "parameters": {"k": 1}},
                ],
                "execution": {"mode": "sequence"},
                "options": {"dry_run": True},
            },
        },
        {
            "method": "execute_kip",
            "params": {
                "kip": "2.0",
                "operations": [{"command": "DESCRIBE PRIMER"}],
                "options": {"dry_run": False},
            },
        },
        {
            "method": "execute_kip",
            "params": {
                "kip": "2.0",
                "operations": [{"command": "DESCRIBE PRIMER"}, {"command": FIND_ANY}],
                "execution": {"mode": "independent"},
            },
        },
        {
            "method": "execute_kip_readonly",
            "params": {
                "kip": "2.0",
                "operations": [{"command": "A"}, {"command": "B"}],
                "execution": {"mode": "independent"},
            },
        },
    ]
    assert {request["path"] for request in script.requests} == {"/kip"}
    assert {request["headers"]["Authorization"] for request in script.requests} == {"Bearer k"}
    # One kept-alive connection served all five calls.
    assert script.connections == 1


def test_kip_errors_raise_the_nexus_exceptions() -> None:
    script = _Script(
        _error(400, "InvalidSyntax", "syntax", "requires_different_input"),
        _error(401, "Unauthenticated", "governance", "requires_authority"),
    )
    with scripted(script) as url, Client(url) as remote:
        with pytest.raises(anda.KipSyntaxError) as caught:
            remote.execute_kip("FIND(?x WHERE")
        assert caught.value.response["error"]["code"] == "InvalidSyntax"
        with pytest.raises(anda.KipGovernanceError):
            remote.execute_kip("DESCRIBE PRIMER")


def test_retries_only_what_is_safe() -> None:
    # Refused without running (rate limited, shutting down): sent again.
    script = _Script(
        _error(429, "RateLimited", "resource", "safe_same_request"),
        _error(503, "InternalError", "system", "safe_same_request"),
        _ok("third time"),
    )
    with scripted(script) as url, Client(url) as remote:
        assert remote.execute_kip(UPSERT_PERSON)["results"][0]["result"] == "third time"
    assert len(script.requests) == 3

    # A write whose answer was lost: never sent again, and said to be unknown.
    script = _Script("drop", _ok())
    with scripted(script) as url, Client(url) as remote:
        with pytest.raises(RemoteError) as caught:
            remote.execute_kip(UPSERT_PERSON)
        assert caught.value.outcome_unknown
        assert not isinstance(caught.value, ServerUnreachableError)
    assert len(script.requests) == 1

    # The same loss for a call that cannot write: sent again.
    for call in (
        lambda remote: remote.execute_kip(UPSERT_PERSON, dry_run=True),
        lambda remote: remote.call_tool("execute_kip_readonly", {"command": "FIND(?x)"}),
    ):
        script = _Script("drop", _ok("again"))
        with scripted(script) as url, Client(url) as remote:
            call(remote)
        assert len(script.requests) == 2
    script = _Script("drop", _ok())
    with scripted(script) as url, Client(url, readonly=True) as remote:
        remote.execute_kip("FIND(?x)")
    assert len(script.requests) == 2

    # An outcome the engine says is unknown is an error, never a retry.
    script = _Script(_error(408, "OutcomeUnknown", "transaction", "outcome_lookup_required"))
    with scripted(script) as url, Client(url) as remote, pytest.raises(anda.KipTransactionError):
        remote.execute_kip(UPSERT_PERSON)
    assert len(script.requests) == 1


def test_an_answer_that_is_not_kip() -> None:
    script = _Script((502, b"<html>bad gateway</html>"), (404, b"Not Found"))
    with scripted(script) as url, Client(url, retries=0) as remote:
        with pytest.raises(RemoteError) as caught:
            remote.execute_kip(UPSERT_PERSON)
        assert (caught.value.status, caught.value.outcome_unknown) == (502, True)
        with pytest.raises(RemoteError) as caught:
            remote.execute_kip("FIND(?x)", dry_run=True)
        assert (caught.value.status, caught.value.outcome_unknown) == (404, False)


# -- against a live server --------------------------------------------------------------


@pytest.mark.timeout(120)
def test_write_then_read(client: Client) -> None:
    client.execute_kip(UPSERT_PERSON, {"key": "ada", "name": "Ada"})
    assert result(client.execute_kip(FIND_PERSON_NAME, {"key": "ada"})) == ["Ada"]
    with pytest.raises(anda.KipSyntaxError) as caught:
        client.execute_kip("FIND(?x WHERE")
    assert caught.value.code == "InvalidSyntax"
    assert caught.value.response["status"] == "failed"


@pytest.mark.timeout(120)
def test_async_calls(client: Client) -> None:
    async def main() -> list[Any]:
        return await asyncio.gather(
            client.execute_kip_async(FIND_PERSON_NAME, {"key": "nobody"}),
            client.call_tool_async("execute_kip_readonly", {"command": "DESCRIBE PRIMER"}),
        )

    found, tool = asyncio.run(main())
    assert result(found) == []
    assert not tool.is_error


@pytest.mark.timeout(120)
def test_threads_share_one_client(client: Client) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(20):
                key = f"thread{n}-{i}"
                client.execute_kip(UPSERT_PERSON, {"key": key, "name": key})
                assert result(client.execute_kip(FIND_PERSON_NAME, {"key": key})) == [key]
        except BaseException as err:  # noqa: BLE001 - handed to the main thread
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []


@pytest.mark.timeout(120)
def test_a_client_is_a_memory_for_the_other_doors(client: Client) -> None:
    call = {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "execute_kip",
        "input": {"command": "FIND(?x WHERE"},
    }
    reply = anda.tools.handle(client, call)
    assert (reply["tool_use_id"], reply["is_error"]) == ("toolu_1", True)
    assert "DESCRIBE PRIMER" in anda.tools.instructions(client)


@pytest.mark.timeout(120)
def test_readonly_client(server: Served) -> None:
    with Client(server.url, readonly=True) as reader:
        with pytest.raises(anda.KipProtocolError) as caught:
            reader.execute_kip(UPSERT_PERSON, {"key": "ro", "name": "R"})
        assert caught.value.code == "ReadonlyViolation"
        assert reader.execute_kip(["DESCRIBE PRIMER", "DESCRIBE PRIMER"])["status"] == "succeeded"
        refused = reader.call_tool("execute_kip", {"command": UPSERT_PERSON})
        assert refused.response["error"]["code"] == "ReadonlyViolation"


@pytest.mark.timeout(120)
def test_a_worker_serves_the_owners_memory(server: Served) -> None:
    """create_app over a Client: how extra worker processes share one owner's store."""
    from starlette.testclient import TestClient

    from anda.server import create_app

    app = create_app(Client(server.url), api_keys={"worker-key": None})
    write = {
        "method": "execute_kip",
        "params": {
            "kip": "2.0",
            "request_id": "via-worker",
            "operations": [{"command": UPSERT_PERSON}],
            "parameters": {"key": "via", "name": "Via"},
        },
    }
    with TestClient(app) as http:
        answer = http.post("/kip", json=write, headers={"Authorization": "Bearer worker-key"})
    assert (answer.status_code, answer.json()["request_id"]) == (200, "via-worker")
    with Client(server.url) as owner:
        assert result(owner.execute_kip(FIND_PERSON_NAME, {"key": "via"})) == ["Via"]


# -- properties: a Client is a Nexus -----------------------------------------------------


def _isolated(upsert: kst.Upsert) -> kst.Upsert:
    """The same upsert on a key no other example uses (the server's store is shared)."""
    concept = kst.Concept(upsert.concept.type, f"{uuid.uuid4().hex}:{upsert.concept.key}")
    return kst.Upsert(concept, upsert.name, upsert.attributes)


@given(upserts=st.lists(kst.upserts(), min_size=1, max_size=3))
def test_written_values_read_back_as_from_a_nexus(
    client: Client, local: anda.Nexus, upserts: list[kst.Upsert]
) -> None:
    for upsert in map(_isolated, upserts):
        command, parameters = upsert.render()
        assert client.execute_kip(command, parameters)["status"] == "succeeded"
        local.execute_kip(command, parameters)
        read = (FIND_ATTRIBUTES, {"type": upsert.concept.type, "key": upsert.concept.key})
        assert result(client.execute_kip(*read)) == result(local.execute_kip(*read))


def _outcome(call: Any) -> tuple[Any, ...]:
    try:
        response = call()
    except anda.KipError as err:
        return ("kip", type(err), err.code)
    except (TypeError, ValueError) as err:
        return ("argument", type(err), str(err).split(":", 1)[0])
    return ("ok", response["status"], len(response["results"]))


@given(
    command=st.text(max_size=200)
    | kst.adversarial_text().filter(lambda t: len(t) < 100_000)
    | kst.valid_commands().map(lambda c: c[0]),
    parameters=st.none() | kst.parameter_maps() | kst.adversarial_parameters(),
    dry_run=st.booleans(),
)
def test_any_call_ends_as_on_a_nexus(
    client: Client, local: anda.Nexus, command: str, parameters: Any, dry_run: bool
) -> None:
    # Dry runs only: the two stores stay equal whatever was generated.
    assert _outcome(lambda: client.execute_kip(command, parameters, True)) == _outcome(
        lambda: local.execute_kip(command, parameters, True)
    )


@given(
    arguments=st.one_of(
        st.text(max_size=100),
        st.builds(lambda c: json.dumps({"command": c, "dry_run": True}), kst.adversarial_text()),
        st.dictionaries(
            st.sampled_from(["command", "operations", "dry_run", "bogus"]),
            st.just("DESCRIBE PRIMER"),
        ),
        st.builds(
            lambda p: {"command": "DESCRIBE PRIMER", "parameters": p}, kst.adversarial_parameters()
        ),
    ),
    name=st.sampled_from(["execute_kip", "execute_kip_readonly"]),
)
def test_tool_calls_end_as_on_a_nexus(
    client: Client, local: anda.Nexus, name: str, arguments: Any
) -> None:
    if isinstance(arguments, dict) and arguments.get("command") and "operations" not in arguments:
        arguments = {**arguments, "dry_run": True}
    remote_result = client.call_tool(name, arguments)
    local_result = local.call_tool(name, arguments)
    assert remote_result.is_error == local_result.is_error
    codes = [(r.response.get("error") or {}).get("code") for r in (remote_result, local_result)]
    assert codes[0] == codes[1], (remote_result.response, local_result.response)


# -- durability through a Client -------------------------------------------------------------


@pytest.mark.timeout(180)
def test_writes_through_a_client_are_in_the_store(tmp_path: Path) -> None:
    with serving(tmp_path) as served, Client(served.url) as remote:
        remote.execute_kip([(UPSERT_PERSON, {"key": f"d{i}", "name": f"D{i}"}) for i in range(10)])
        assert served.stop() == 0
    with anda.Nexus(served.store) as store:
        assert result(store.execute_kip(FIND_PERSON_NAME, {"key": "d7"})) == ["D7"]


@pytest.mark.parametrize("memory", ["client", "local"])
def test_a_whole_envelope_runs_the_same_on_a_client_and_a_nexus(
    memory: str, request: pytest.FixtureRequest
) -> None:
    """execute_request: preconditions and request ids honoured by the engine,
    failures returned rather than raised, the read-only path refusing writes."""
    target: anda.Memory = request.getfixturevalue(memory)
    key = f"envelope-{uuid.uuid4().hex[:8]}"
    write = {"command": UPSERT_PERSON, "parameters": {"key": key, "name": "Env"}}
    stale = target.execute_request(
        {
            "kip": "2.0",
            "request_id": "r-1",
            "operations": [write],
            "preconditions": {"space_seq": 10**9},
        }
    )
    assert stale["request_id"] == "r-1"
    assert stale["results"][0]["error"]["code"] == "PreconditionFailed"
    assert result(target.execute_kip(FIND_PERSON_NAME, {"key": key})) == []
    refused = target.execute_request({"kip": "2.0", "operations": [write]}, readonly=True)
    assert refused["error"]["code"] == "ReadonlyViolation"
    done = asyncio.run(target.execute_request_async({"kip": "2.0", "operations": [write]}))
    assert done["status"] == "succeeded"
    assert result(target.execute_kip(FIND_PERSON_NAME, {"key": key})) == ["Env"]
    with pytest.raises(TypeError):
        target.execute_request({"kip": "2.0", "operations": [write]}, readonly="yes")  # type: ignore[arg-type]
