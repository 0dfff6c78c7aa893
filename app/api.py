"""A small HTTP API on 127.0.0.1 for scripts and programs that do not speak MCP
(`memlane api`): the same four operations as the MCP server, over the same code.

    GET  /v1/search?q=TEXT&k=10&store=episodic&since=YYYY-MM-DD&until=YYYY-MM-DD
    POST /v1/ask       {"question": "..."}
    GET  /v1/episodes?n=10&source=screen
    POST /v1/notes     {"text": "...", "title": "..."}     (only with writes on)

Every request carries `Authorization: Bearer TOKEN`; the token is made once, kept outside
the data folder with the keys (readable by the user only) and shown by `memlane api
--token`. The server listens on 127.0.0.1 only and answers only requests addressed to it
by that name (a web page cannot reach it through a DNS name of its own), one at a time.
Answers are JSON; an error is `{"error": "..."}` with a 4xx status and changes nothing.
Read-only, secrets masked and questions not remembered, exactly as `memlane mcp`.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from app.errors import InvalidInput, MemlaneError
from app.mcp_server import MemoryTools

log = logging.getLogger(__name__)
HOST = "127.0.0.1"
MAX_BODY = 1 * 2**20
TOKEN_FILE = "api-token"


def api_token(key_dir: Path) -> str:
    """The API's token, made on first use in the key folder (mode 0600)."""
    path = key_dir / TOKEN_FILE
    if path.exists():
        return path.read_text().strip()
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(token + "\n")
    return token


class Refused(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def one(query: dict[str, list[str]], name: str, default: str | None = None) -> str | None:
    values = query.get(name)
    return values[-1] if values else default


def number(value: str | None, name: str, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, not {value!r}") from None


class Routes:
    """Request → answer, apart from HTTP's plumbing."""

    def __init__(self, tools: MemoryTools, token: str, port: int) -> None:
        self.tools, self.token = tools, token
        self.hosts = {f"{HOST}:{port}", f"localhost:{port}"}

    def answer(self, method: str, target: str, headers: Any, body: bytes) -> Any:
        if headers.get("Host", "") not in self.hosts:
            raise Refused(HTTPStatus.FORBIDDEN, "this API answers requests to "
                          f"{HOST} only")
        given = headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            raise Refused(HTTPStatus.UNAUTHORIZED, "a valid 'Authorization: Bearer TOKEN' "
                          "header is needed (`memlane api --token` shows the token)")
        url = urlsplit(target)
        query = parse_qs(url.query)
        route = (method, url.path.rstrip("/"))
        if route == ("GET", "/v1/search"):
            return self.tools.search(one(query, "q") or "", number(one(query, "k"), "k", 10),
                                     query.get("store"), one(query, "since"),
                                     one(query, "until"))
        if route == ("GET", "/v1/episodes"):
            return self.tools.recent(number(one(query, "n"), "n", 10), one(query, "source"))
        if route == ("POST", "/v1/ask"):
            return self.tools.ask(str(fields(body, "question")["question"]))
        if route == ("POST", "/v1/notes"):
            note = fields(body, "text")
            return self.tools.add_note(str(note["text"]), str(note.get("title") or ""))
        if url.path.rstrip("/") in {"/v1/search", "/v1/episodes", "/v1/ask", "/v1/notes"}:
            raise Refused(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not allowed here")
        raise Refused(HTTPStatus.NOT_FOUND, f"no such endpoint: {url.path}")


def fields(body: bytes, required: str) -> dict[str, Any]:
    """A JSON object with at least `required`, else a clear error."""
    try:
        value = json.loads(body or b"null")
    except (ValueError, RecursionError):
        raise InvalidInput("the body must be JSON") from None
    if not isinstance(value, dict) or not isinstance(value.get(required), str):
        raise InvalidInput(f'the body must be a JSON object with a "{required}" string')
    return value


def handler(routes: Routes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "memlane"
        sys_version = ""

        def do_GET(self) -> None:  # noqa: N802 (http.server's names)
            self.respond("GET")

        def do_POST(self) -> None:  # noqa: N802
            self.respond("POST")

        def respond(self, method: str) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                  f"the body is {length:,} bytes; at most {MAX_BODY:,}")
                body = self.rfile.read(length) if length > 0 else b""
                status, out = HTTPStatus.OK, routes.answer(method, self.path, self.headers,
                                                           body)
            except Refused as refused:
                status, out = refused.status, {"error": str(refused)}
            except MemlaneError as bad:
                status, out = HTTPStatus.BAD_REQUEST, {"error": str(bad)}
            except ValueError:
                status, out = HTTPStatus.BAD_REQUEST, {"error": "bad Content-Length"}
            data = json.dumps(out, ensure_ascii=False, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.info("%s %s", self.address_string(), format % args)

    return Handler


def make_server(tools: MemoryTools, token: str, port: int) -> HTTPServer:
    """The API's server on 127.0.0.1:`port` (0: any free port), not yet serving."""
    server = HTTPServer((HOST, port), handler(Routes(tools, token, port)))
    if port == 0:  # the port is known only now
        server.RequestHandlerClass = handler(Routes(tools, token, server.server_address[1]))
    return server
