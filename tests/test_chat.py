"""The terminal chat's slash commands and its sources table, over a real memory."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from app.container import Memlane
from app.errors import MemlaneError
from inference.assistant import Answer, Cited, memory_line
from tests.helpers import OPENAI_KEY, event
from ui.chat import command, print_answer


@pytest.fixture
def console() -> Console:
    return Console(record=True, width=120, color_system=None)


def test_search_then_open_a_memory(memlane: Memlane, console: Console) -> None:
    memlane.ingest([event("My grandmother gave me a necklace from Sweden.")])
    command(memlane, console, None, "/search necklace Sweden")  # type: ignore[arg-type]
    found = re.search(r"(episodic-[0-9a-f]+)", console.export_text())
    assert found
    command(memlane, console, None, f"/open {found.group(1)}")  # type: ignore[arg-type]
    shown = console.export_text()
    assert "necklace from Sweden" in shown and "episodic ·" in shown


def test_a_vault_secret_stays_hidden_when_opened(memlane: Memlane, console: Console) -> None:
    memlane.ingest([event(f"my openai key is {OPENAI_KEY}")])
    [vault] = memlane.stores.list("vault")
    command(memlane, console, None, f"/open {vault.id}")  # type: ignore[arg-type]
    shown = console.export_text()
    assert "••••••" in shown and OPENAI_KEY not in shown


def test_opening_an_unknown_memory_is_a_clear_error(memlane: Memlane,
                                                    console: Console) -> None:
    with pytest.raises(MemlaneError, match="no memory has the id"):
        command(memlane, console, None, "/open episodic-0000")  # type: ignore[arg-type]


def test_sources_are_the_cited_memories(memlane: Memlane, console: Console) -> None:
    memlane.ingest([event("The ferry to Pemba leaves at noon."),
                    event("Oskar has the harbour permit.")])
    [ferry] = [r for r in memlane.stores.list("episodic") if "ferry" in r.search_text]
    [permit] = [r for r in memlane.stores.list("episodic") if "permit" in r.search_text]
    answer = Answer("When does the ferry leave?",
                    [Cited(1, permit, memory_line(1, permit)),
                     Cited(2, ferry, memory_line(2, ferry))], "At noon [2].", [2])
    print_answer(console, answer)
    shown = console.export_text()
    assert "sources" in shown and "[2]" in shown and "Pemba leaves at noon" in shown
    assert "harbour permit" not in shown  # shown to the model, not cited
