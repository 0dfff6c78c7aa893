"""Importers on tiny hand-made files, one real LoCoMo conversation, and every kind of bad file."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.errors import ImportFailed
from capture.importers import (
    DEFAULT_IMPORTERS,
    ChatGPTImporter,
    LocomoImporter,
    TextImporter,
    read_path,
)
from capture.importers.base import leading_keys

LOCOMO_26 = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo" / "26.json"
MTIME = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def write_note(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    os.utime(path, (MTIME.timestamp(), MTIME.timestamp()))
    return path


def tiny_locomo() -> dict[str, Any]:
    return {
        "speaker_a": "Ann",
        "speaker_b": "Bob",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            {"speaker": "Ann", "dia_id": "D1:1", "text": "Hi Bob!"},
            {"speaker": "Bob", "dia_id": "D1:2", "text": "Look at my dog.",
             "img_url": ["https://example.invalid/dog.jpg"], "blip_caption": "a photo of a dog",
             "query": "dog"},
        ],
        "session_2_date_time": "9:05 am on 12 June, 2023",
        "session_2": [{"speaker": "Ann", "dia_id": "D2:1", "text": "Cute dog."}],
        "session_3_date_time": "10:00 am on 1 July, 2023",  # a session that never took place
        "session_1_summary": "Bob shows his dog.",
        "events_session_1": {"Ann": [], "Bob": []},
        "qa": [{"question": "Whose dog?", "answer": "Bob", "evidence": ["D1:2"], "category": 4}],
    }


def chatgpt_node(node_id: str, parent: str | None, role: str | None, parts: list[Any],
                 create_time: float | None = None) -> dict[str, Any]:
    message = None
    if role is not None:
        message = {"id": node_id, "author": {"role": role}, "create_time": create_time,
                   "content": {"content_type": "text", "parts": parts}}
    return {"id": node_id, "message": message, "parent": parent, "children": []}


def chatgpt_export() -> list[dict[str, Any]]:
    """One conversation where the second question was edited: `u2` and `a2` are the branch
    the user left, `u2b` and `a2b` the one they were on last."""
    nodes = [
        chatgpt_node("root", None, None, []),
        chatgpt_node("sys", "root", "system", [""], 1_700_000_000.0),
        chatgpt_node("u1", "sys", "user", ["What is a heron?"], 1_700_000_010.0),
        chatgpt_node("a1", "u1", "assistant", ["A wading bird."], 1_700_000_020.0),
        chatgpt_node("u2", "a1", "user", ["Old question"], 1_700_000_030.0),
        chatgpt_node("a2", "u2", "assistant", ["Old answer"], 1_700_000_040.0),
        chatgpt_node("u2b", "a1", "user",
                     [{"content_type": "image_asset_pointer", "asset_pointer": "file-service://x"},
                      "Is this one a heron?"], 1_700_000_050.0),
        chatgpt_node("empty", "u2b", "assistant", ["  "], 1_700_000_055.0),
        chatgpt_node("a2b", "empty", "assistant", ["Yes,", "a grey heron."], None),
    ]
    return [{"title": "Herons", "create_time": 1_699_999_999.0, "conversation_id": "c-1",
             "current_node": "a2b", "mapping": {node["id"]: node for node in nodes}}]


# -- LoCoMo ---------------------------------------------------------------------------------
def test_locomo_tiny_file(tmp_path: Path) -> None:
    path = write_json(tmp_path / "conv-7.json", tiny_locomo())
    events = read_path(path)
    assert [event.metadata["dia_id"] for event in events] == ["D1:1", "D1:2", "D2:1"]
    assert [event.actor for event in events] == ["Ann", "Bob", "Ann"]
    assert events[0].occurred_at == datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    assert events[2].occurred_at == datetime(2023, 6, 12, 9, 5, tzinfo=UTC)
    assert events[1].text == "Look at my dog. (shared a photo: a photo of a dog)"
    assert events[1].source == "locomo:conv-7.json"
    assert events[1].metadata == {
        "dia_id": "D1:2", "session": 1, "turn": 1, "conversation": "conv-7",
        "photo_caption": "a photo of a dog", "speakers": ["Ann", "Bob"],
    }
    assert "photo_caption" not in events[0].metadata


@pytest.mark.skipif(not LOCOMO_26.exists(), reason="the shared LoCoMo data is not checked out")
def test_locomo_real_conversation() -> None:
    events = read_path(LOCOMO_26)
    assert len(events) == 419
    assert events[0].actor == "Caroline"
    assert events[0].occurred_at == datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    assert all(event.occurred_at.tzinfo is UTC for event in events)
    assert len({event.id for event in events}) == 419
    sessions = [event.metadata["session"] for event in events]
    assert sessions == sorted(sessions)


def test_locomo_detection_is_by_content(tmp_path: Path) -> None:
    path = write_json(tmp_path / "no-suffix", tiny_locomo())
    assert LocomoImporter().detects(path)
    assert not ChatGPTImporter().detects(path)
    assert not LocomoImporter().detects(write_json(tmp_path / "other.json", {"speaker_a": "x"}))


# -- ChatGPT --------------------------------------------------------------------------------
def test_chatgpt_imports_only_the_current_thread(tmp_path: Path) -> None:
    path = write_json(tmp_path / "conversations.json", chatgpt_export())
    assert ChatGPTImporter().detects(path)
    events = read_path(path)
    assert [(event.actor, event.text) for event in events] == [
        ("user", "What is a heron?"),
        ("assistant", "A wading bird."),
        ("user", "Is this one a heron?"),
        ("assistant", "Yes,\na grey heron."),
    ]
    assert events[0].source == "chatgpt"
    assert events[0].occurred_at == datetime.fromtimestamp(1_700_000_010, UTC)
    assert events[3].occurred_at == datetime.fromtimestamp(1_699_999_999, UTC)  # undated message
    assert events[2].metadata == {"conversation_id": "c-1", "title": "Herons",
                                  "message_id": "u2b"}


# -- text and Markdown ----------------------------------------------------------------------
def test_markdown_note(tmp_path: Path) -> None:
    content = "Intro line\n\n```sh\n# not a title\n```\n## Birds I saw #\n\nA heron.\n"
    path = write_note(tmp_path / "Birds.MD", content.encode())
    [event] = read_path(path)
    assert event.source == f"file:{path.resolve()}"
    assert event.actor == "user"
    assert event.occurred_at == MTIME
    assert event.text == content.strip()
    assert event.metadata == {"title": "Birds I saw", "path": str(path.resolve()),
                              "format": "markdown"}


@pytest.mark.parametrize(
    ("content", "title"),
    [
        ("\ufeff\n  First line  \nsecond\n".encode(), "First line"),  # UTF-8 with BOM
        ("Héron cendré\n".encode("utf-16"), "Héron cendré"),  # UTF-16 with BOM
        (b"# not a heading in plain text\n", "# not a heading in plain text"),
        (("x" * 121 + "\n").encode(), "long-line"),  # too long for a title: the file name
    ],
)
def test_text_note_encodings_and_titles(tmp_path: Path, content: bytes, title: str) -> None:
    [event] = TextImporter().read(write_note(tmp_path / "long-line.txt", content))
    assert event.metadata["title"] == title
    assert event.metadata["format"] == "text"
    assert not event.text.startswith("\ufeff")


# -- folders --------------------------------------------------------------------------------
def test_folder_reads_known_files_in_sorted_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    write_json(tmp_path / "b" / "conversations.json", chatgpt_export())
    write_json(tmp_path / "a-locomo.json", tiny_locomo())
    write_note(tmp_path / "c.txt", b"a note")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (tmp_path / "settings.json").write_text('{"theme": "dark"}')
    sources = [event.source for event in read_path(tmp_path)]
    assert sources == ["locomo:a-locomo.json"] * 3 + ["chatgpt"] * 4 + [
        f"file:{(tmp_path / 'c.txt').resolve()}"]


def test_folder_with_a_bad_file_imports_nothing(tmp_path: Path) -> None:
    write_note(tmp_path / "a.txt", b"fine")
    bad = write_note(tmp_path / "b.txt", b"caf\xe9")
    with pytest.raises(ImportFailed, match="b.txt"):
        read_path(tmp_path)
    assert bad.exists()


def test_folder_without_importable_files(tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    with pytest.raises(ImportFailed, match="locomo, chatgpt, text") as failed:
        read_path(tmp_path)
    assert str(tmp_path) in str(failed.value)


# -- bad files ------------------------------------------------------------------------------
def locomo_with(change: dict[str, Any]) -> dict[str, Any]:
    return {**tiny_locomo(), **change}


def chatgpt_with(change: dict[str, Any]) -> list[dict[str, Any]]:
    [conversation] = chatgpt_export()
    return [{**conversation, **change}]


BAD_JSON_FILES = {
    "locomo bad date": (locomo_with({"session_2_date_time": "2023-06-12 09:05"}),
                        "session 2: the date"),
    "locomo turn without text": (locomo_with({"session_2": [{"speaker": "Ann", "dia_id": "x"}]}),
                                 "session 2, turn 1: text is missing"),
    "locomo turn not an object": (locomo_with({"session_1": ["hello"]}), "session 1, turn 1"),
    "locomo session not a list": (locomo_with({"session_2": {"speaker": "Ann"}}),
                                  "session_2 must be a list"),
    "locomo speaker not text": (locomo_with({"speaker_b": 7}), "speaker_b must be text"),
    "locomo without turns": (locomo_with({"session_1": [], "session_2": []}),
                             "no dialogue turns"),
    "locomo session without date": (locomo_with({"session_2_date_time": None}),
                                    "session 2: session_2_date_time is missing"),
    "chatgpt mapping not an object": (chatgpt_with({"mapping": []}),
                                      "conversation 1 ('Herons'): its mapping"),
    "chatgpt dangling current node": (chatgpt_with({"current_node": "gone"}), "'gone'"),
    "chatgpt no conversation id": (chatgpt_with({"conversation_id": None}), "conversation_id"),
    "chatgpt message without role": (
        chatgpt_with({"mapping": {"n": {"message": {"author": {}}, "parent": None}},
                      "current_node": "n"}), "no author role"),
    "chatgpt parts not a list": (
        chatgpt_with({"mapping": {"n": {"parent": None, "message": {
            "author": {"role": "user"}, "content": {"parts": "hi"}}}}, "current_node": "n"}),
        "parts must be a list"),
    "chatgpt loop": (chatgpt_with({"mapping": {"n": {"parent": "n", "message": None}},
                                   "current_node": "n"}), "loops"),
}


@pytest.mark.parametrize("case", sorted(BAD_JSON_FILES))
def test_bad_json_files(tmp_path: Path, case: str) -> None:
    data, problem = BAD_JSON_FILES[case]
    path = write_json(tmp_path / "export.json", data)
    with pytest.raises(ImportFailed) as failed:
        read_path(path)
    assert str(path) in str(failed.value)
    assert problem in str(failed.value)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("latin1.txt", "café au lait".encode("latin-1"), "is not UTF-8 text"),
        ("nul.md", b"abc\x00def", "is not UTF-8 text"),
        ("blank.md", b" \n\t\n", "empty"),
        ("data.csv", b"a,b\n1,2\n", "not in a supported format (supported: locomo, chatgpt"),
        ("cut.json", b'{"speaker_a": "A", "speaker_b": "B", "session_1": [{"speaker": "A",',
         "invalid JSON at line 1, column 68"),
        ("cut-export.json", b'[{"title": "t", "mapping": {"a": {"message": nul',
         "invalid JSON at line 1, column 46"),
    ],
)
def test_bad_files(tmp_path: Path, name: str, content: bytes, problem: str) -> None:
    path = write_note(tmp_path / name, content)
    with pytest.raises(ImportFailed) as failed:
        read_path(path)
    assert str(path) in str(failed.value)
    assert problem in str(failed.value)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ImportFailed, match="does not exist") as failed:
        read_path(tmp_path / "nowhere.md")
    assert "nowhere.md" in str(failed.value)


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    path = write_note(tmp_path / "big.txt", b"x" * 2000)
    with pytest.raises(ImportFailed, match="2,000 bytes, over the import limit of 1,000 bytes"):
        read_path(path, max_bytes=1000)
    assert read_path(path, importers=DEFAULT_IMPORTERS, max_bytes=2000)


def test_leading_keys_reads_only_what_the_prefix_holds() -> None:
    assert leading_keys('{"a": 1, "b": [1, 2], "c": "unfinis') == {"a", "b", "c"}
    assert leading_keys(' [ {"mapping": {"x":', in_list=True) == {"mapping"}
    assert leading_keys('{"a": 1}', in_list=True) == set()
    assert leading_keys("not json") == set()
