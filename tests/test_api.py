"""The local HTTP API (`memlane api`) over real HTTP on 127.0.0.1: the token, the host
check, the four endpoints, read-only by default, secrets masked, and clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest

from app.api import api_token, make_server
from app.container import Memlane, Parts
from app.maintenance import import_path
from app.mcp_server import MemoryTools
from app.settings import Settings
from inference.llm import LlamaModel
from tests.helpers import CONVERSATION, OPENAI_KEY

Call = Callable[..., tuple[int, Any]]


@pytest.fixture
def memory(tmp_path: Path, parts: Parts, tiny: LlamaModel) -> Iterator[Memlane]:
    """A memory that heard an API key, answering with the packaged test model."""
    sample = tmp_path / "conversation.json"
    sample.write_text(json.dumps(CONVERSATION), encoding="utf-8")
    with Memlane(Settings(home=tmp_path / "home"), replace(parts, llm=tiny)) as memlane:
        import_path(memlane, sample)
        yield memlane


def serving(tools: MemoryTools, token: str) -> Iterator[Call]:
    server = make_server(tools, token, 0)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def call(method: str, path: str, body: Any = None, token: str | None = token,
             host: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if host:
            headers["Host"] = host
        data = json.dumps(body).encode() if not isinstance(body, bytes | None) else body
        request = Request(f"http://127.0.0.1:{port}{path}", data, headers, method=method)
        try:
            with urlopen(request, timeout=300) as answer:
                return answer.status, json.loads(answer.read())
        except HTTPError as refused:
            return refused.code, json.loads(refused.read())

    try:
        yield call
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def api(memory: Memlane) -> Iterator[Call]:
    yield from serving(MemoryTools(memory, writes=False), "s3cret-token")


def events(memlane: Memlane) -> int:
    return memlane.db.execute("SELECT count(*) FROM events").fetchone()[0]


def test_search_episodes_and_ask_answer_with_secrets_masked_and_nothing_written(
        api: Call, memory: Memlane) -> None:
    before = events(memory)
    status, found = api("GET", "/v1/search?q=support+group&k=3")
    assert status == 200 and 1 <= len(found) <= 3 and "support group" in found[0]["text"]
    status, vault = api("GET", "/v1/search?q=openai+key&store=vault")
    assert status == 200 and [r["store"] for r in vault] == ["vault"]
    assert vault[0]["fields"]["secret_value"] == "••••••"
    status, recent = api("GET", "/v1/episodes?n=2&source=locomo")
    assert status == 200 and len(recent) == 2
    assert recent[0]["occurred_at"] >= recent[1]["occurred_at"] >= "2023-05-25"
    status, answer = api("POST", "/v1/ask",
                         {"question": "What did Caroline's grandmother give her?"})
    assert status == 200 and answer["answer"].strip()
    assert any("necklace" in m["text"] for m in answer["memories"])
    assert OPENAI_KEY not in json.dumps([found, vault, recent, answer])
    assert events(memory) == before  # read-only: the question was not remembered


@pytest.mark.parametrize(("method", "path", "body", "status", "words"), [
    ("GET", "/v1/search?q=lake&k=0", None, 400, "between 1 and 50"),
    ("GET", "/v1/search?q=lake&k=many", None, 400, "k must be a whole number"),
    ("GET", "/v1/search?q=lake&store=diary", None, 400, "unknown store 'diary'"),
    ("GET", "/v1/search?q=lake&since=last+May", None, 400, "YYYY-MM-DD"),
    ("GET", "/v1/search?q=+", None, 400, "the query is empty"),
    ("POST", "/v1/ask", b"{not json", 400, "the body must be JSON"),
    ("POST", "/v1/ask", {"q": "hi"}, 400, 'a "question" string'),
    ("POST", "/v1/ask", [1] * 3, 400, 'a "question" string'),
    ("POST", "/v1/notes", {"text": "a note"}, 400, "read-only"),
    ("GET", "/v1/ask", None, 405, "GET is not allowed"),
    ("GET", "/v1/../etc/passwd", None, 404, "no such endpoint"),
])
def test_bad_requests_get_a_clear_error_and_change_nothing(
        api: Call, memory: Memlane, method: str, path: str, body: Any, status: int,
        words: str) -> None:
    before = events(memory)
    got, answer = api(method, path, body)
    assert (got, words in answer["error"]) == (status, True), answer
    assert events(memory) == before


def test_without_the_token_or_by_another_host_name_nothing_is_answered(api: Call) -> None:
    assert api("GET", "/v1/search?q=lake", token=None)[0] == 401
    status, answer = api("GET", "/v1/search?q=lake", token="guess")
    assert status == 401 and "memlane api --token" in answer["error"]
    status, answer = api("GET", "/v1/search?q=lake", host="attacker.example:80")
    assert status == 403 and "127.0.0.1" in answer["error"]


def test_with_writes_on_a_note_is_stored_and_found(memory: Memlane) -> None:
    for call in serving(MemoryTools(memory, writes=True), "t"):
        status, added = call("POST", "/v1/notes", {"text": "The router's admin page moved to "
                                                            "the attic closet shelf.",
                                                   "title": "Home network"})
        assert status == 200 and added["stored"]
        status, found = call("GET", "/v1/search?q=where+is+the+router&k=3")
        assert any("attic closet" in hit["text"] and hit["source"] == "mcp" for hit in found)


def test_the_token_is_made_once_outside_the_data_folder_for_the_user_only(
        tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    env = {**os.environ, "MEMLANE_HOME": str(tmp_path / "home"), "MEMLANE_KEY_DIR": str(keys)}
    shown = [subprocess.run([sys.executable, "-m", "app.cli", "api", "--token"], env=env,
                            capture_output=True, text=True, check=True).stdout.strip()
             for _ in range(2)]
    assert shown[0] == shown[1] == api_token(keys) and len(shown[0]) >= 40
    assert (keys / "api-token").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "home").exists() or not any(
        shown[0].encode() in p.read_bytes() for p in (tmp_path / "home").rglob("*")
        if p.is_file())
