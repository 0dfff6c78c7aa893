"""Memlane's memory for other local assistants: an MCP server on stdio (`memlane mcp`).

An assistant the user runs (a code editor's, a desktop chat app's) starts `memlane mcp` and
asks it, over the Model Context Protocol, what the user remembers. The tools:

- `search_memories`: every store, by keyword, meaning and time, with the search page's filters;
- `ask`: a cited answer from the local model;
- `recent_episodes`: what happened lately, newest first;
- `add_note`: a note into memory, only when the user turned writes on (`mcp_writes`).

Read-only by default: nothing a client does changes the memory (a question is not even
remembered as a chat turn) until `MEMLANE_MCP_WRITES=1` or the dashboard's setting.
Knowledge-vault secrets never leave: a vault memory shows with its secret masked, exactly as
in search, and the model never sees a secret (its prompt carries captions only).
Everything runs in this process, on this computer; stdio carries the protocol, so nothing
here prints (logging goes to stderr).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from app.errors import InvalidInput, MemlaneError
from memory.events import Event
from memory.records import STORES, Record, masked

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from app.container import Memlane

log = logging.getLogger(__name__)
SOURCE = "mcp"
"""The source of notes added through MCP (`memlane forget --source mcp` takes them back)."""
MAX_RESULTS = 50
MAX_NOTE_CHARS = 20_000
INSTRUCTIONS = (
    "Memlane is the user's private, local memory of what they saw on screen, said in chat "
    "and imported. Search it before saying you do not know something about the user's past; "
    "cite memory ids when you use them. Secrets are never shown.")


def memory_json(record: Record, score: float | None = None) -> dict[str, Any]:
    """A memory as a client sees it: a vault secret masked, the text search matched."""
    shown = masked(record)
    out: dict[str, Any] = {
        "id": shown.id, "store": shown.store, "source": shown.source,
        "occurred_at": shown.occurred_at.isoformat() if shown.occurred_at else None,
        "title": shown.title, "text": shown.search_text, "fields": shown.fields}
    if score is not None:
        out["score"] = round(score, 6)
    return out


def day_of(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a date as YYYY-MM-DD, not {value!r}") from None


def how_many(k: int, name: str = "k") -> int:
    if not 1 <= k <= MAX_RESULTS:
        raise InvalidInput(f"{name} must be between 1 and {MAX_RESULTS}, not {k}")
    return k


class MemoryTools:
    """What the MCP tools do, over one open memory; plain methods, so a client's request
    and a test reach the same code."""

    def __init__(self, memlane: Memlane, writes: bool) -> None:
        self.memlane, self.writes = memlane, writes
        self._assistant = None

    def search(self, query: str, k: int = 10, stores: list[str] | None = None,
               since: str | None = None, until: str | None = None) -> list[dict[str, Any]]:
        from app.queries import search

        if not query.strip():
            raise InvalidInput("the query is empty")
        for name in stores or ():
            if name not in STORES:
                raise InvalidInput(f"unknown store {name!r}; the stores are "
                                   f"{', '.join(STORES)}")
        hits = search(self.memlane, query, how_many(k), tuple(stores or ()),
                      since=day_of(since, "since"), until=day_of(until, "until"))
        return [memory_json(hit.record, hit.score) for hit in hits]

    def ask(self, question: str) -> dict[str, Any]:
        """A cited answer. In read-only mode the exchange is not written to memory."""
        if not question.strip():
            raise InvalidInput("the question is empty")
        if self._assistant is None:
            self._assistant = self.memlane.assistant(session="mcp")
            self._assistant.paused = not self.writes
        answer = self._assistant.ask(question)
        cited = set(answer.cited)
        return {"answer": answer.text,
                "memories": [{"number": c.number, "cited": c.number in cited,
                              **memory_json(c.record)} for c in answer.memories]}

    def recent(self, n: int = 10, source: str | None = None) -> list[dict[str, Any]]:
        """The newest episodes (what happened), optionally from one source or source kind."""
        from app.queries import recent_episodes

        return [{**memory_json(record), "app": app}
                for record, app in recent_episodes(self.memlane, how_many(n, "n"), source)]

    def add_note(self, text: str, title: str = "") -> dict[str, Any]:
        if not self.writes:
            raise InvalidInput("Memlane is read-only to other programs: to let them add "
                               "notes, tick 'Let them add notes' on the dashboard's Capture & "
                               "privacy page, or set MEMLANE_MCP_WRITES=true, or start the "
                               "server with --writes")
        text = text.strip()
        if not text:
            raise InvalidInput("the note is empty")
        if len(text) > MAX_NOTE_CHARS:
            raise InvalidInput(f"the note is {len(text):,} characters; at most "
                               f"{MAX_NOTE_CHARS:,} go in one note")
        note = Event(source=SOURCE, occurred_at=datetime.now(UTC),
                     actor=self.memlane.settings.user_name, text=text,
                     metadata={"title": title.strip()} if title.strip() else {})
        report = self.memlane.remember([note])
        return {"event_id": note.id, "stored": report.events == 1,
                "memories": sorted({store for store, _ in report.operations})}


@contextmanager
def refused_in_words() -> Iterator[None]:
    """Memlane's own errors reach the client in words (anything else the MCP package hides
    as a crash, keeping its text on the server)."""
    from mcp.server.mcpserver.exceptions import ToolError

    try:
        yield
    except MemlaneError as refused:
        raise ToolError(str(refused)) from None


def build_server(tools: MemoryTools) -> MCPServer:
    """The MCP server with Memlane's tools; `add_note` only when writes are on."""
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    server = MCPServer("memlane", instructions=INSTRUCTIONS, log_level="WARNING")
    reads = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(annotations=reads)
    def search_memories(query: str, k: int = 10, stores: list[str] | None = None,
                        since: str | None = None, until: str | None = None
                        ) -> list[dict[str, Any]]:
        """Search the user's memories by keyword, meaning and time ("what did Caroline
        paint last May"). `stores`: any of episodic, semantic,
        procedural, resource, vault; `since`/`until`: YYYY-MM-DD, inclusive. Best first."""
        with refused_in_words():
            return tools.search(query, k, stores, since, until)

    @server.tool(annotations=reads if not tools.writes else None)
    def ask(question: str) -> dict[str, Any]:
        """Answer a question about the user's past with Memlane's local model, citing the
        memories it used ([n] in the answer is memories' number n)."""
        with refused_in_words():
            return tools.ask(question)

    @server.tool(annotations=reads)
    def recent_episodes(n: int = 10, source: str | None = None) -> list[dict[str, Any]]:
        """The user's most recent episodes (screen activity, chats, imports), newest first;
        `source` narrows to one source or kind (screen, chatgpt, locomo, file, mcp)."""
        with refused_in_words():
            return tools.recent(n, source)

    if tools.writes:
        @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False,
                                                 open_world_hint=False))
        def add_note(text: str, title: str = "") -> dict[str, Any]:
            """Remember a note for the user (it is filed into their memories like anything
            they write; `memlane forget --source mcp` removes every such note)."""
            with refused_in_words():
                return tools.add_note(text, title)

    return server


def protocol_stdout() -> None:
    """Keep the process's stdout for the protocol alone: what a native library prints (to
    file descriptor 1) goes to stderr instead of into the client's messages."""
    protocol = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(protocol, "w", encoding="utf-8", closefd=True)


def serve(memlane: Memlane, writes: bool) -> None:
    """Serve on stdio until the client closes it."""
    tools = MemoryTools(memlane, writes)
    log.info("MCP server on stdio (%s)", "writes on" if tools.writes else "read-only")
    build_server(tools).run("stdio")
