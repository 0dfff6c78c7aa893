"""The `memlane` command end to end: each command builds its own Memlane from Settings (so
MEMLANE_HOME points it at a tmp home), with the real models. One small LoCoMo conversation
is imported once for the module; only `import` and `search` load models."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from app import cli
from tests.conftest import MakeMemlane
from tests.helpers import CONVERSATION, OPENAI_KEY, event

TURNS = sum(len(CONVERSATION[f"session_{n}"]) for n in (1, 2))


@dataclass(frozen=True)
class Imported:
    home: Path
    conversation: Path
    result: Result


def cli_environment(patch: pytest.MonkeyPatch, home: Path) -> None:
    for name in list(os.environ):
        if name.startswith("MEMLANE_"):
            patch.delenv(name)
    patch.setenv("MEMLANE_HOME", str(home))
    patch.setenv("COLUMNS", "250")  # wide enough that rich never folds a snippet or an id


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Imported:
    root = tmp_path_factory.mktemp("cli")
    conversation = root / "conv-7.json"
    conversation.write_text(json.dumps(CONVERSATION), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        cli_environment(patch, root / "home")
        result = CliRunner().invoke(cli.app, ["import", str(conversation)])
    return Imported(root / "home", conversation, result)


Invoke = Callable[..., Result]


@pytest.fixture
def memlane_cli(imported: Imported, monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoke]:
    cli_environment(monkeypatch, imported.home)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        result = runner.invoke(cli.app, list(args))
        assert result.exit_code == 0, (args, result.output, result.exception)
        return result

    yield invoke


def search_json(invoke: Invoke, *args: str) -> list[dict]:
    return json.loads(invoke("search", *args, "--json").stdout)


def test_import_stores_the_file_once(imported: Imported, memlane_cli: Invoke) -> None:
    assert imported.result.exit_code == 0, imported.result.output
    assert f"Imported {TURNS} new events" in imported.result.stdout
    assert "(0 already known)" in imported.result.stdout

    again = memlane_cli("import", str(imported.conversation)).stdout
    assert "Imported 0 new events" in again and f"({TURNS} already known)" in again


def test_search_prints_a_matching_snippet(memlane_cli: Invoke) -> None:
    out = memlane_cli("search", "who opened a bakery in Lisbon").stdout
    assert "Quentin Tarrow opened a bakery in Lisbon" in out
    assert "2023-05-08" in out  # with the date it was said


def test_search_only_in_one_store(memlane_cli: Invoke) -> None:
    hits = search_json(memlane_cli, "Quentin Tarrow bakery", "--store", "semantic")
    assert hits and {hit["store"] for hit in hits} == {"semantic"}
    assert hits[0]["fields"]["name"] == "Quentin Tarrow"


def test_memories_list_episodic(memlane_cli: Invoke) -> None:
    out = memlane_cli("memories", "list", "episodic").stdout
    assert "Caroline: I am researching adoption agencies" in out
    assert "Melanie: Pottery class is my favourite way to relax" in out
    assert "REDACTED" in out and OPENAI_KEY not in out


def test_a_vault_secret_is_shown_only_with_reveal(memlane_cli: Invoke) -> None:
    listed = memlane_cli("memories", "list", "vault").stdout
    assert OPENAI_KEY not in listed
    [vault_id] = re.findall(r"vault-[0-9a-f]{16}", listed)

    shown = memlane_cli("memories", "show", vault_id).stdout
    assert OPENAI_KEY not in shown and "••••••" in shown
    assert "ADD" in shown  # its history is shown too

    revealed = memlane_cli("memories", "show", vault_id, "--reveal").stdout
    assert OPENAI_KEY in revealed


def test_a_deleted_memory_is_no_longer_found(imported: Imported, memlane_cli: Invoke) -> None:
    before = search_json(memlane_cli, "marshmallows")
    [target] = [hit["id"] for hit in before
                if hit["store"] == "episodic" and "marshmallows" in hit["fields"]["summary"]]

    assert f"Deleted {target}" in memlane_cli("memories", "delete", target, "--yes").stdout
    after = search_json(memlane_cli, "marshmallows")
    assert target not in {hit["id"] for hit in after}
    assert not any("marshmallows" in json.dumps(hit) for hit in after)
    # An episode takes its turn along: importing the file again brings that turn back.
    again = memlane_cli("import", str(imported.conversation)).stdout
    assert "Imported 1 new events" in again
    assert target in {hit["id"] for hit in search_json(memlane_cli, "marshmallows")}


def test_stats(imported: Imported, memlane_cli: Invoke) -> None:
    facts = json.loads(memlane_cli("stats", "--json").stdout)
    assert facts["home"] == str(imported.home)
    assert facts["counts"]["events"] == TURNS
    assert facts["counts"]["vault"] == 1 and facts["counts"]["semantic"] >= 1
    assert facts["vectors"] > 0 and facts["pending_index"] == 0
    assert facts["disk_bytes"] > 0


def test_a_bad_file_is_refused_by_name_and_nothing_stored(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    cli_environment(monkeypatch, tmp_path / "home")
    broken = tmp_path / "broken-export.json"
    broken.write_text('{"speaker_a": "Ann", "session_1": [{"speaker": ', encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["memlane", "import", str(broken)])

    with pytest.raises(SystemExit) as exited:
        cli.main()  # the installed `memlane` entry point, which turns errors into a message
    assert exited.value.code != 0
    message = " ".join(capsys.readouterr().err.split())
    assert f"Cannot import {broken}" in message and "invalid JSON" in message

    stats = CliRunner().invoke(cli.app, ["stats", "--json"])
    assert set(json.loads(stats.stdout)["counts"].values()) == {0}


def test_memory_text_is_printed_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           make_memlane: MakeMemlane) -> None:
    memlane = make_memlane(tmp_path / "home")
    memlane.ingest([event("My list says [urgent] call the vet [/b] today")])
    memlane.close()
    cli_environment(monkeypatch, tmp_path / "home")
    result = CliRunner().invoke(cli.app, ["memories", "list", "episodic"])
    assert result.exit_code == 0, result.exception
    assert "[urgent] call the vet [/b] today" in result.stdout


# -- the assistant and its models ---------------------------------------------------------------
def test_models_lists_each_with_status_and_the_active_one(memlane_cli: Invoke) -> None:
    out = memlane_cli("models").stdout
    rows = {line.split()[1]: line for line in out.splitlines() if "-" in line and "│" in line}
    assert set(rows) >= {"qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2-135m"}
    assert "ready" in rows["smollm2-135m"]
    assert "yes" in rows["qwen2.5-coder-1.5b"]  # the default


def test_an_unknown_model_is_named_and_nothing_happens(imported: Imported,
                                                       memlane_cli: Invoke) -> None:
    result = CliRunner().invoke(cli.app, ["ask", "Who opened a bakery?", "--model", "gpt-9"])
    assert result.exit_code != 0
    assert "no packaged model is called 'gpt-9'" in str(result.exception)


@pytest.mark.slow
def test_ask_and_chat_answer_with_the_tiny_model(memlane_cli: Invoke,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMLANE_MODEL", "smollm2-135m")
    monkeypatch.setenv("MEMLANE_ANSWER_TOKENS", "12")
    before = len(search_json(memlane_cli, "bakery Lisbon", "--store", "episodic", "-k", "50"))
    asked = memlane_cli("ask", "Who opened a bakery in Lisbon?").stdout
    assert asked.strip()
    chatted = CliRunner().invoke(cli.app, ["chat"], input="/help\n/pause\n"
                                 "Who opened a bakery?\n/model\n/quit\n")
    assert chatted.exit_code == 0, chatted.output
    assert "/forget ID" in chatted.stdout and "Paused" in chatted.stdout
    assert "Model: smollm2-135m" in chatted.stdout
    after = len(search_json(memlane_cli, "bakery Lisbon", "--store", "episodic", "-k", "50"))
    assert after == before + 2  # the ask was remembered, the paused chat was not
