"""anda in Google's Agent Development Kit: a memory service, one memory per app and user.

Install the extra (``pip install 'anda[google-adk]'``); ADK is imported when
:func:`memory_service` is first called, never by ``import anda``.

    memory = anda.Nexus("./memory", tenancy="per_caller")
    runner = Runner(agent=agent, app_name="app", session_service=...,
                    memory_service=memory_service(memory))

The service implements ADK's ``BaseMemoryService``:

- ``add_session_to_memory(session)`` and ``add_events_to_memory(...)`` store
  each event that has text verbatim as an ``Event`` (Cognitive Memory
  Profile), keyed by the ADK event's id, so adding a session again (ADK apps
  do, after each turn) stores nothing twice. ``add_memory(...)`` stores
  explicit :class:`MemoryEntry` items the same way. No LLM runs.
- ``search_memory(...)`` runs the engine's keyword ``SEARCH`` over them and
  returns ``MemoryEntry`` items whose ``id`` is the memory's id.
- ``delete_memory(...)`` purges one memory (``PURGE ... CONFIRM "PURGE"``: the
  engine erases its content and its history), and records that its id was
  deleted, so adding the same session again does not bring it back.

Isolation is the engine's, not a filter: every call runs as a caller derived
from ``(app_name, user_id)`` on a memory opened with ``tenancy="per_caller"``,
so one user's memories cannot be read, found or deleted by another. A memory
with shared tenancy is refused. (An :class:`anda.Client` cannot pick its
caller, the server decides it from the key, so the service needs the
embedded per-caller :class:`anda.Nexus`.) Every call awaits the memory's
async twins: the event loop is never blocked. A refused command raises the
engine's :class:`anda.KipError`.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from anda.integrations import require

if TYPE_CHECKING:
    from anda._memory import Memory

__all__ = ["DELETED_CLASS", "EVENT_CLASS", "caller_for", "memory_service"]

_EXTRA = "google-adk"

#: The ``event_class`` of the Events that hold memories.
EVENT_CLASS = "adk_memory"
#: The ``event_class`` of the records that a memory id was deleted (no content).
DELETED_CLASS = "adk_memory_deleted"

_STORE = (
    'CREATE CONCEPT ?memory { TYPE "Event" CLIENT KEY :key NAME :name SET ATTRIBUTES { '
    "event_class: :event_class, summary: :text, memory_id: :memory_id, author: :author, "
    "session_id: :session_id, started_at: :at, custom_metadata: :custom_metadata } }"
)
_SEARCH = (
    "FIND(?memory.attributes, ?memory.retrieval.score) WHERE { "
    '?memory SEARCH CONCEPT :query WITH TYPE "Event" MODE "keyword" LIMIT :candidates '
    "FILTER(?memory.attributes.event_class == :event_class) } "
    "ORDER BY ?memory.retrieval.score DESC LIMIT :limit"
)
_DELETED_IDS = (
    'FIND(?deleted.attributes.memory_id) WHERE { ?deleted {type: "Event", '
    "attributes: {event_class: :event_class}} }"
)
_PURGE = (
    'PURGE ?memory WHERE { ?memory {type: "Event", attributes: '
    '{event_class: :event_class, memory_id: :memory_id}} } CONFIRM "PURGE"'
)
_MARK_DELETED = (
    'CREATE CONCEPT ?deleted { TYPE "Event" CLIENT KEY :key NAME "deleted memory" '
    "SET ATTRIBUTES { event_class: :event_class, summary: "
    '"a memory that was deleted", memory_id: :memory_id } }'
)
# At most this many operations per engine call.
_BATCH = 256


def caller_for(app_name: str, user_id: str) -> str:
    """The caller id an app's user runs as: one memory per ``(app_name, user_id)``.

    >>> caller_for("travel", "alice")
    'google-adk:["travel", "alice"]'
    >>> caller_for("a/b", "c") != caller_for("a", "b/c")
    True
    """
    if not isinstance(app_name, str) or not isinstance(user_id, str):
        raise TypeError("app_name and user_id must be str")
    return "google-adk:" + json.dumps([app_name, user_id], ensure_ascii=False)


def memory_service(memory: Memory, *, limit: int = 10) -> Any:
    """An ADK memory service over a per-caller anda memory.

    Args:
        memory: a :class:`anda.Nexus` opened with ``tenancy="per_caller"``.
        limit: the most memories one ``search_memory`` returns.

    Returns:
        A ``google.adk.memory.BaseMemoryService`` for ``Runner(memory_service=...)``.

    Raises:
        ValueError: the memory does not isolate callers.
    """
    if getattr(memory, "tenancy", None) != "per_caller":
        raise ValueError(
            "the ADK memory service keeps one memory per app and user through per-caller "
            "tenancy: open the memory with anda.Nexus(..., tenancy='per_caller')"
        )
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be an int >= 1, not {limit!r}")
    return _service_class()(memory, limit)


@functools.cache
def _service_class() -> Any:
    base = require("google.adk.memory.base_memory_service", _EXTRA)
    entry = require("google.adk.memory.memory_entry", _EXTRA)
    genai_types = require("google.genai.types", _EXTRA)

    class AndaMemoryService(base.BaseMemoryService):  # type: ignore[misc,name-defined]
        """ADK memory on anda: keyword SEARCH recall, verbatim storage, real deletes."""

        def __init__(self, memory: Memory, limit: int) -> None:
            self.memory = memory
            self.limit = limit

        async def add_session_to_memory(self, session: Any) -> None:
            await self.add_events_to_memory(
                app_name=session.app_name,
                user_id=session.user_id,
                events=session.events,
                session_id=session.id,
            )

        async def add_events_to_memory(
            self,
            *,
            app_name: str,
            user_id: str,
            events: Sequence[Any],
            session_id: str | None = None,
            custom_metadata: Mapping[str, object] | None = None,
        ) -> None:
            rows = []
            for event in events:
                text = _text(event.content)
                if text is None:
                    continue
                rows.append(
                    _row(event.id, text, event.author, session_id, event.timestamp, custom_metadata)
                )
            await self._store(caller_for(app_name, user_id), rows)

        async def add_memory(
            self,
            *,
            app_name: str,
            user_id: str,
            memories: Sequence[Any],
            custom_metadata: Mapping[str, object] | None = None,
        ) -> None:
            rows = []
            for item in memories:
                text = _text(item.content)
                if text is None:
                    continue
                metadata = {**(custom_metadata or {}), **(item.custom_metadata or {})}
                rows.append(
                    _row(
                        item.id or str(uuid.uuid4()),
                        text,
                        item.author,
                        None,
                        _seconds(item.timestamp),
                        metadata,
                    )
                )
            await self._store(caller_for(app_name, user_id), rows)

        async def _store(self, caller: str, rows: list[dict[str, Any]]) -> None:
            if not rows:
                return
            deleted = await self._deleted_ids(caller)
            batch = [(_STORE, row) for row in rows if row["memory_id"] not in deleted]
            for start in range(0, len(batch), _BATCH):
                await self.memory.execute_kip_async(batch[start : start + _BATCH], caller=caller)

        async def _deleted_ids(self, caller: str) -> set[str]:
            response = await self.memory.execute_kip_async(
                _DELETED_IDS, {"event_class": DELETED_CLASS}, caller=caller
            )
            return {value for value in response["results"][0]["result"] if isinstance(value, str)}

        async def search_memory(self, *, app_name: str, user_id: str, query: str) -> Any:
            if not query.strip():
                return base.SearchMemoryResponse()
            response = await self.memory.execute_kip_async(
                _SEARCH,
                {
                    "query": query,
                    "event_class": EVENT_CLASS,
                    # Candidates before the filter drops the deletion records.
                    "candidates": self.limit * 2 + 10,
                    "limit": self.limit,
                },
                caller=caller_for(app_name, user_id),
            )
            memories = []
            for attributes, _score in response["results"][0]["result"]:
                metadata = attributes.get("custom_metadata")
                memories.append(
                    entry.MemoryEntry(
                        id=attributes.get("memory_id"),
                        content=genai_types.Content(
                            role="user" if attributes.get("author") == "user" else "model",
                            parts=[genai_types.Part(text=attributes.get("summary", ""))],
                        ),
                        author=attributes.get("author") or None,
                        timestamp=attributes.get("started_at") or None,
                        custom_metadata=metadata if isinstance(metadata, dict) else {},
                    )
                )
            return base.SearchMemoryResponse(memories=memories)

        async def delete_memory(
            self, *, app_name: str, user_id: str, memory_id: str | None = None
        ) -> None:
            if not memory_id:
                return
            await self.memory.execute_kip_async(
                [
                    (_PURGE, {"event_class": EVENT_CLASS, "memory_id": memory_id}),
                    (
                        _MARK_DELETED,
                        {
                            "key": f"deleted:{memory_id}",
                            "event_class": DELETED_CLASS,
                            "memory_id": memory_id,
                        },
                    ),
                ],
                caller=caller_for(app_name, user_id),
            )

    return AndaMemoryService


def _text(content: Any) -> str | None:
    parts = getattr(content, "parts", None) or []
    texts = [part.text for part in parts if isinstance(getattr(part, "text", None), str)]
    text = "\n".join(texts)
    return text if text.strip() else None


def _row(
    memory_id: str,
    text: str,
    author: str | None,
    session_id: str | None,
    timestamp: float | None,
    custom_metadata: Mapping[str, object] | None,
) -> dict[str, Any]:
    return {
        "key": f"memory:{memory_id}",
        "name": f"{author or 'someone'} said",
        "event_class": EVENT_CLASS,
        "text": text,
        "memory_id": memory_id,
        "author": author or "",
        "session_id": session_id or "",
        "at": _timestamp(timestamp),
        "custom_metadata": json.loads(json.dumps(dict(custom_metadata or {}), default=str)),
    }


def _timestamp(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _seconds(text: str | None) -> float | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
