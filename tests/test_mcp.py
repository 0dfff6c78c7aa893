"""`memlane mcp` end to end: the MCP client of the `mcp` package starts the server on stdio,
as another assistant would, over a memory that heard an API key; every answer is read as
the client gets it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TINY, MakeMemlane
from tests.helpers import CONVERSATION, OPENAI_KEY

pytestmark = pytest.mark.slow
Session = Any
NOTE = "The spare key to the allotment shed is under the blue flowerpot."


@pytest.fixture
def home(tmp_path: Path, make_memlane: MakeMemlane) -> Path:
    """A memory with the two-session conversation imported (its key goes to the vault)."""
    from app.maintenance import import_path

    sample = tmp_path / "conversation.json"
    sample.write_text(json.dumps(CONVERSATION), encoding="utf-8")
    memlane = make_memlane(tmp_path / "home")
    import_path(memlane, sample)
    assert memlane.stores.counts()["vault"] == 1
    memlane.close()
    return tmp_path / "home"


def served(home: Path, *args: str) -> Callable[[Callable[[Session], Awaitable[Any]]], Any]:
    """Run `body(session)` against `memlane mcp ARGS` started by the MCP client."""
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    server = StdioServerParameters(
        command=sys.executable, args=["-m", "app.cli", "mcp", *args],
        env={**os.environ, "MEMLANE_HOME": str(home), "MEMLANE_MODEL": TINY})

    def run(body: Callable[[Session], Awaitable[Any]]) -> Any:
        async def session() -> Any:
            async with stdio_client(server) as (read, write), \
                    ClientSession(read, write) as client:
                await client.initialize()
                return await body(client)
        return asyncio.run(asyncio.wait_for(session(), 600))
    return run


async def call(client: Session, tool: str, **arguments: Any) -> Any:
    """A tool's result as the client reads it; a tool error raises with the server's words."""
    result = await client.call_tool(tool, arguments)
    text = "".join(getattr(part, "text", "") for part in result.content)
    if result.is_error:
        raise ToolError(text)
    structured = result.structured_content
    if structured is not None:
        return structured.get("result", structured)
    return json.loads(text)


class ToolError(Exception):
    pass


def events(home: Path) -> int:
    from memory.db import Database

    db = Database(home / "memlane.sqlite3")
    try:
        return db.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        db.close()


def test_a_client_searches_asks_and_lists_episodes_and_changes_nothing(home: Path) -> None:
    before = events(home)

    async def body(client: Session) -> dict[str, Any]:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        found = await call(client, "search_memories", query="support group", k=3)
        vault = await call(client, "search_memories", query="openai key", stores=["vault"])
        recent = await call(client, "recent_episodes", n=2)
        answer = await call(client, "ask", question="What did Caroline's grandmother give her?")
        refused = {}
        for name, arguments in (("search_memories", {"query": "lake", "k": 0}),
                                ("search_memories", {"query": "lake", "stores": ["diary"]}),
                                ("search_memories", {"query": "lake", "since": "May 8"}),
                                ("add_note", {"text": NOTE})):
            with pytest.raises(ToolError) as error:
                await call(client, name, **arguments)
            refused[name + json.dumps(arguments)] = str(error.value)
        return {"tools": tools, "found": found, "vault": vault, "recent": recent,
                "answer": answer, "refused": refused}

    seen = served(home)(body)
    assert seen["tools"] == {"search_memories", "ask", "recent_episodes"}  # read-only
    assert "support group" in seen["found"][0]["text"]
    assert seen["found"][0]["store"] in {"episodic", "semantic"} and seen["found"][0]["id"]
    assert len(seen["found"]) <= 3
    assert [r["store"] for r in seen["vault"]] == ["vault"]
    assert seen["vault"][0]["fields"]["secret_value"] == "••••••"
    days = [r["occurred_at"] for r in seen["recent"]]
    assert len(days) == 2 and days == sorted(days, reverse=True) and days[0] >= "2023-05-25"
    assert seen["answer"]["answer"].strip() and seen["answer"]["memories"]
    assert any("necklace" in m["text"] for m in seen["answer"]["memories"])
    words = list(seen["refused"].values())
    assert "between 1 and 50" in words[0] and "unknown store 'diary'" in words[1]
    assert "YYYY-MM-DD" in words[2] and "add_note" in words[3]
    assert OPENAI_KEY not in json.dumps(seen, default=sorted)  # the secret never leaves
    assert events(home) == before  # read-only: not even the question was remembered


def test_with_writes_on_a_note_is_remembered_and_found(home: Path) -> None:
    before = events(home)

    async def body(client: Session) -> dict[str, Any]:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        added = await call(client, "add_note", text=NOTE, title="Allotment")
        found = await call(client, "search_memories", query="where is the spare shed key")
        with pytest.raises(ToolError) as empty:
            await call(client, "add_note", text="   ")
        return {"tools": tools, "added": added, "found": found, "empty": str(empty.value)}

    seen = served(home, "--writes")(body)
    assert "add_note" in seen["tools"]
    assert seen["added"]["stored"] and seen["added"]["event_id"].startswith("event-")
    assert any("blue flowerpot" in hit["text"] and hit["source"] == "mcp"
               for hit in seen["found"][:3])
    assert "the note is empty" in seen["empty"]
    assert events(home) == before + 1
