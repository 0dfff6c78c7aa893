"""ChatGPT data exports (`conversations.json`): the thread the user last saw in each
conversation, one Event per visible message."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.errors import ImportFailed
from capture.importers.base import failure, leading_keys, load_json, read_prefix
from memory.events import Event

_HIDDEN_ROLES = frozenset({"system"})


class ChatGPTImporter:
    """Follows each conversation from `current_node` back to the root, so edited messages and
    regenerated answers the user moved away from are not imported as if they were said."""

    name = "chatgpt"

    def detects(self, path: Path) -> bool:
        return "mapping" in leading_keys(read_prefix(path), in_list=True)

    def read(self, path: Path) -> list[Event]:
        data = load_json(path)
        if not isinstance(data, list):
            raise failure(path, "a ChatGPT export must hold a JSON list of conversations")
        events: list[Event] = []
        for index, conversation in enumerate(data):
            events.extend(_Conversation(path, index, conversation).events())
        return events


class _Conversation:
    """One conversation of the export, with the context every error message needs."""

    def __init__(self, path: Path, index: int, raw: Any) -> None:
        self.path = path
        self.where = f"conversation {index + 1}"
        if not isinstance(raw, dict):
            raise self.fail("it must be a JSON object")
        self.raw = raw
        title = raw.get("title")
        if title is not None and not isinstance(title, str):
            raise self.fail("its title must be text")
        self.title = title or ""
        if self.title:
            self.where = f"{self.where} ({self.title!r})"

    def fail(self, problem: str) -> ImportFailed:
        return failure(self.path, f"{self.where}: {problem}")

    def events(self) -> list[Event]:
        conversation_id = self.raw.get("conversation_id") or self.raw.get("id")
        if not isinstance(conversation_id, str):
            raise self.fail("it has no conversation_id")
        events = []
        for node_id, node in self.main_thread():
            message = node.get("message")
            if message is not None:
                event = self.message_event(node_id, message, conversation_id)
                if event is not None:
                    events.append(event)
        return events

    def main_thread(self) -> list[tuple[str, dict[str, Any]]]:
        """(node id, node) from the root to `current_node`, oldest first."""
        mapping = self.raw.get("mapping")
        if not isinstance(mapping, dict):
            raise self.fail("its mapping must be a JSON object")
        thread: list[tuple[str, dict[str, Any]]] = []
        node_id = self.raw.get("current_node")
        seen: set[str] = set()
        while node_id is not None:
            node = mapping.get(node_id) if isinstance(node_id, str) else None
            if not isinstance(node, dict):
                raise self.fail(f"the thread refers to node {node_id!r}, which is not in mapping")
            if node_id in seen:
                raise self.fail(f"the thread loops back to node {node_id!r}")
            seen.add(node_id)
            thread.append((node_id, node))
            node_id = node.get("parent")
        if not thread:
            raise self.fail("it has no current_node")
        return thread[::-1]

    def message_event(self, node_id: str, message: Any, conversation_id: str) -> Event | None:
        """The Event of a message, or None for what the user never saw as text."""
        if not isinstance(message, dict):
            raise self.fail(f"node {node_id!r}: message must be a JSON object")
        author = message.get("author")
        role = author.get("role") if isinstance(author, dict) else None
        if not isinstance(role, str):
            raise self.fail(f"node {node_id!r}: the message has no author role")
        if role in _HIDDEN_ROLES:
            return None
        text = self.message_text(node_id, message.get("content"))
        if not text:
            return None
        message_id = message.get("id")
        return Event(
            source="chatgpt", occurred_at=self.message_time(node_id, message), actor=role,
            text=text,
            metadata={
                "conversation_id": conversation_id, "title": self.title,
                "message_id": message_id if isinstance(message_id, str) else node_id,
            },
        )

    def message_text(self, node_id: str, content: Any) -> str:
        """The string parts joined by newlines; images and other non-text parts are left out."""
        if not isinstance(content, dict):
            raise self.fail(f"node {node_id!r}: the message has no content")
        parts = content.get("parts")
        if parts is None:  # code, browsing results, ...: content without text parts
            return ""
        if not isinstance(parts, list):
            raise self.fail(f"node {node_id!r}: content parts must be a list")
        return "\n".join(part for part in parts if isinstance(part, str)).strip()

    def message_time(self, node_id: str, message: dict[str, Any]) -> datetime:
        """The message's own time, else the conversation's: some messages carry none."""
        for owner, stamp in (("message", message.get("create_time")),
                             ("conversation", self.raw.get("create_time"))):
            if stamp is None:
                continue
            if not isinstance(stamp, int | float) or isinstance(stamp, bool):
                raise self.fail(f"node {node_id!r}: the {owner}'s create_time is not a number")
            try:
                return datetime.fromtimestamp(stamp, UTC)
            except (ValueError, OverflowError, OSError) as err:
                raise self.fail(f"node {node_id!r}: {stamp!r} is not a valid time") from err
        raise self.fail(f"node {node_id!r}: neither the message nor the conversation has a time")
