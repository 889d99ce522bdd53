"""A small memory with a past, for the inspector's tests: people, places and
an organisation, a move (a new value from a date), a wrong claim superseded
by its correction, and a renamed concept.

After :func:`seed`: Ada (C-1) knows Charles, works for the Analytical
Engine Society, lived in London and lives in Paris since 2024-06 (the world
changed), said her timezone was +02:00 and corrected it to +01:00 (the claim
was wrong), and was renamed from "Ada" to "Ada Lovelace".
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import anda

#: The commands :func:`seed` runs, one commit each.
STORY = [
    """MUTATE {
      UPSERT CONCEPT ?ada { MATCH { type: "Person", key: "ada" } SET FIELDS { name: "Ada" } }
      UPSERT CONCEPT ?charles {
        MATCH { type: "Person", key: "charles" } SET FIELDS { name: "Charles Babbage" }
      }
      UPSERT CONCEPT ?london {
        MATCH { type: "Place", key: "london" } SET FIELDS { name: "London" }
      }
      UPSERT CONCEPT ?society {
        MATCH { type: "Organization", key: "aes" } SET FIELDS { name: "Analytical Engine Society" }
      }
      ASSERT (?ada, "knows", ?charles) { by: ?ada, mode: "stated" }
      ASSERT (?ada, "lives_in", ?london) {
        by: ?ada, mode: "stated", valid: {from: "2020-01-01T00:00:00.000Z"}
      }
      ASSERT (?charles, "lives_in", ?london) { by: ?charles, mode: "stated", confidence: 0.9 }
      ASSERT (?ada, "works_for", ?society) { by: ?charles, mode: "stated", confidence: 0.8 }
      ASSERT (?ada, "timezone", "+02:00") { by: ?ada, mode: "stated" }
    }""",
    """MUTATE {
      UPSERT CONCEPT ?ada { MATCH { type: "Person", key: "ada" } }
      UPSERT CONCEPT ?paris { MATCH { type: "Place", key: "paris" } SET FIELDS { name: "Paris" } }
      ASSERT (?ada, "lives_in", ?paris) {
        by: ?ada, mode: "stated", valid: {from: "2024-06-01T00:00:00.000Z"}
      }
    }""",
    'UPSERT CONCEPT ?ada { MATCH { type: "Person", key: "ada" } '
    'SET FIELDS { name: "Ada Lovelace" } }',
]
_CORRECTION = 'ASSERT (:ada, "timezone", "+01:00") { by: :ada, mode: "stated" } SUPERSEDING :old'
_OLD_TIMEZONE = (
    'FIND(?a.id) WHERE { ?ada {type: "Person", key: "ada"} ?p (?ada, "timezone", "+02:00") '
    "?a ASSERTION {proposition: ?p} }"
)


def seed(memory: anda.Memory, caller: str | None = None) -> dict[str, Any]:
    """Writes the story into ``memory`` (as ``caller``); returns the ids."""
    for command in STORY[:2]:
        memory.execute_kip(command, caller=caller)
    old = memory.execute_kip(_OLD_TIMEZONE, caller=caller)["results"][0]["result"][0]
    ada = memory.execute_kip(
        'FIND(?a.id) WHERE { ?a {type: "Person", key: "ada"} }', caller=caller
    )["results"][0]["result"][0]
    memory.execute_kip(_CORRECTION, {"ada": ada, "old": old}, caller=caller)
    memory.execute_kip(STORY[2], caller=caller)
    ids = {
        key: memory.execute_kip(
            "FIND(?c.id) WHERE { ?c {key: :key} }", {"key": key}, caller=caller
        )["results"][0]["result"][0]
        for key in ("ada", "charles", "london", "paris", "aes")
    }
    return {**ids, "old_timezone": old}


@contextlib.contextmanager
def on_uvicorn(app: Any) -> Iterator[str]:
    """``app`` on uvicorn on a free loopback port, in a thread; its URL."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise AssertionError("the server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        app.state.feeds.stop()  # open change feeds end, so uvicorn can shut down
        server.should_exit = True
        thread.join()
