"""The dashboard's pages in Streamlit's AppTest, against a tmp memory home holding a small
imported conversation: each page renders, and its main actions work and reach the core.

The memory opens with the session's loaded models and the tiny test model, registered
through the dashboard's parts seam (`register_parts`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.container import Memlane, Parts
from app.maintenance import import_path
from app.settings import SETTINGS_FILE, Settings
from tests.conftest import MakeMemlane
from tests.helpers import CONVERSATION, OPENAI_KEY
from ui.dashboard import shared


def script(page: str) -> None:
    """The dashboard as `app.py` builds it, opened on one page."""
    import streamlit as st

    from ui.dashboard.pages import PAGES

    pages = {key: st.Page(run, title=title, url_path=key, default=key == page)
             for key, (run, title, _) in PAGES.items()}
    st.session_state["pages"] = pages
    st.navigation(list(pages.values())).run()


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sample")
    (folder / "conversation.json").write_text(json.dumps(CONVERSATION), encoding="utf-8")
    return folder


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parts: Parts, tiny) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("MEMLANE_HOME", str(home))
    shared.register_parts(Parts(embedder=parts.embedder, analyzer=parts.analyzer, llm=tiny))
    yield home
    held = shared.opened()
    held.worker.shutdown(wait=True)
    held.memlane.close()
    shared._open.clear()


@pytest.fixture
def imported(home: Path, sample: Path, make_memlane: MakeMemlane) -> Memlane:
    memlane = make_memlane(home)
    import_path(memlane, sample)
    return memlane


def page(name: str) -> AppTest:
    app = AppTest.from_function(script, args=(name,), default_timeout=120)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def shown(app: AppTest) -> str:
    """Everything the page shows in words."""
    parts = [e.value for kind in ("title", "subheader", "markdown", "caption", "info",
                                  "success", "warning", "error", "text")
             for e in getattr(app, kind)]
    parts += [f"{m.label} {m.value}" for m in app.metric]
    parts += [b.label for b in app.button]
    return "\n".join(str(p) for p in parts)


def test_home_counts_what_is_remembered_and_says_capture_is_off(imported: Memlane) -> None:
    app = page("home")
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Episodic"] == str(imported.stores.counts()["episodic"])
    assert metrics["Knowledge vault"] == "1"  # the API key said in the chat
    assert "Capture is **off**" in shown(app)
    app.button(key="capture-start").click().run()  # no display in the test: said in words
    assert any("DISPLAY" in e.value or "display" in e.value for e in app.error)


def test_an_empty_memory_says_what_to_do(home: Path) -> None:
    assert "Nothing remembered yet" in shown(page("home"))
    assert "timeline is empty" in shown(page("timeline"))
    assert "No memories here yet" in shown(page("memories"))


def test_timeline_shows_the_days_episodes_and_opens_one(imported: Memlane) -> None:
    app = page("timeline")
    assert app.date_input(key="timeline-day").value.isoformat() == "2023-05-25"
    assert "necklace from Sweden" in shown(app)
    app.date_input(key="timeline-day").set_value(app.date_input(key="timeline-day").value
                                                 .replace(day=8)).run()
    assert "support group" in shown(app) and "necklace" not in shown(app)
    app.button(key="timeline-open-0").click().run()
    assert "Episodic memory" in shown(app)  # on the Memories page, the record open


def test_search_finds_filters_and_opens(imported: Memlane) -> None:
    app = page("search")
    app.text_input(key="search-query").input("necklace from Sweden").run()
    assert "grandmother gave me a necklace" in shown(app)
    app.multiselect(key="search-stores").set_value(["semantic"]).run()
    assert "Semantic" in shown(app) and "**Episodic**" not in shown(app)
    app.multiselect(key="search-stores").set_value([]).run()
    app.date_input(key="search-until").set_value(date(2023, 5, 10)).run()
    assert "25 May 2023" not in shown(app) and "08 May 2023" in shown(app)
    app.button(key="search-open-0").click().run()
    assert "memory" in app.subheader[0].value  # the record, open on the Memories page


def test_memories_edit_keeps_history_and_delete_asks_first(imported: Memlane) -> None:
    app = page("memories")
    app.radio(key="memories-store").set_value("semantic").run()
    app.button(key="memories-open-0").click().run()
    record_id = app.session_state["open_record"]
    name_field = next(t for t in app.text_area if "-name-" in t.key)
    name_field.input("Caroline's Swedish necklace")
    next(b for b in app.button if b.label == "Save changes").click().run()
    assert "Saved" in shown(app)
    assert imported.stores.get(record_id).fields["name"] == "Caroline's Swedish necklace"
    assert [row["op"] for row in imported.stores.history(record_id)][-1] == "UPDATE"

    app.button(key=f"delete-{record_id}").click().run()
    assert "cannot be undone" in shown(app)
    app.button(key=f"yes-delete-{record_id}").click().run()
    assert imported.stores.find(record_id) is None


def test_a_vault_secret_is_masked_until_revealed(imported: Memlane) -> None:
    app = page("memories")
    app.radio(key="memories-store").set_value("vault").run()
    assert OPENAI_KEY not in shown(app)
    app.button(key="memories-open-0").click().run()
    assert all(OPENAI_KEY not in t.value for t in app.text_area)
    app.toggle(key="reveal").set_value(True).run()
    assert any(OPENAI_KEY in t.value for t in app.text_area)


def test_a_memory_made_by_hand_is_stored(imported: Memlane) -> None:
    app = page("memories")
    app.radio(key="memories-store").set_value("procedural").run()
    app.text_area(key="new-procedural-summary").input("Water the ferns")
    app.text_area(key="new-procedural-steps").input("Fill the can\nWater each fern")
    next(b for b in app.button if b.label == "Add").click().run()
    assert "Added" in shown(app)
    [made] = [r for r in imported.stores.iter_all("procedural") if r.source == "dashboard"]
    assert made.fields["steps"] == ["Fill the can", "Water each fern"]


def test_graph_shows_the_entities_a_query_is_about(imported: Memlane) -> None:
    app = page("graph")
    app.text_input(key="graph-query").input("Caroline").run()
    assert "What joins them" in shown(app)
    assert any("caroline" in e.label.lower() for e in app.expander)


def test_chat_streams_an_answer_with_its_sources(imported: Memlane) -> None:
    app = page("chat")
    app.chat_input[0].set_value("Where is Caroline's necklace from?").run()
    log = app.session_state["chat"]
    assert [turn["role"] for turn in log] == ["user", "assistant"]
    assert log[1]["text"].strip()  # the tiny model's words, streamed onto the page
    assert any(m.name == "assistant" for m in app.chat_message)
    assert log[1]["sources"]  # what it cited, or else what it was shown

    app.chat_input[0].set_value("And who gave it to her?").run()  # a follow-up
    assert len(app.session_state["chat"]) == 4
    app.button(key=f"cited-1-{log[1]['sources'][0][0]}").click().run()
    assert app.session_state["open_record"] == log[1]["sources"][0][1]
    assert "memory" in app.subheader[0].value  # opened on the Memories page


def test_capture_settings_save_and_a_bad_pattern_changes_nothing(home: Path,
                                                                 imported: Memlane) -> None:
    app = page("capture")
    app.number_input(key="capture-interval").set_value(10.0)
    app.text_area(key="capture-titles").input("(unclosed")
    next(b for b in app.button if b.label == "Save").click().run()
    assert any("not a valid regular expression" in e.value for e in app.error)
    assert not (home / SETTINGS_FILE).exists()

    app.text_area(key="capture-titles").input("(?i)bank")
    app.text_area(key="redact-rules").input("project falcon")
    app.number_input(key="picture-seconds").set_value(0.0)
    assert app.checkbox(key="mcp-writes").value is False  # other assistants only read
    app.checkbox(key="mcp-writes").check()
    next(b for b in app.button if b.label == "Save").click().run()
    assert "Saved" in shown(app)
    saved = Settings(home=home)
    assert saved.capture_interval == 10.0 and saved.capture_excluded_titles == ("(?i)bank",)
    assert saved.redact_patterns == ("project falcon",) and saved.capture_picture_seconds == 0
    assert saved.mcp_writes


def test_the_privacy_page_locks_and_unlocks_the_vault(imported: Memlane) -> None:
    app = page("capture")
    app.text_input(key="lock-passphrase").input("marmot-valley-42")
    app.text_input(key="lock-again").input("marmot-valley-41")
    next(b for b in app.button if b.label == "Lock").click().run()
    assert any("the two passphrases differ" in e.value for e in app.error)
    assert not imported.keys.locked and not imported.keys.has_passphrase

    app.text_input(key="lock-again").input("marmot-valley-42")
    next(b for b in app.button if b.label == "Lock").click().run()
    assert imported.keys.locked and "Locked" in shown(app)
    memories = page("memories")
    memories.radio(key="memories-store").set_value("vault").run()
    memories.button(key="memories-open-0").click().run()
    memories.toggle(key="reveal").set_value(True).run()
    assert "memlane unlock" in shown(memories)
    assert all(OPENAI_KEY not in t.value for t in memories.text_area)

    app.text_input(key="unlock-passphrase").input("wrong-passphrase")
    next(b for b in app.button if b.label == "Unlock").click().run()
    assert any("wrong passphrase" in e.value for e in app.error) and imported.keys.locked
    app.text_input(key="unlock-passphrase").input("marmot-valley-42")
    next(b for b in app.button if b.label == "Unlock").click().run()
    assert not imported.keys.locked


def test_the_privacy_page_forgets_a_whole_source_after_asking(imported: Memlane) -> None:
    [source] = [row[0] for row in imported.db.execute("SELECT DISTINCT source FROM events")]
    before = imported.stores.counts()["events"]
    app = page("capture")
    app.selectbox(key="forget-source").set_value(source)
    next(b for b in app.button if b.label == "See what it covers").click().run()
    assert f"Everything from {source}: {before} events" in shown(app)
    assert imported.stores.counts()["events"] == before  # nothing yet

    app.button(key="forget-go").click().run()
    app.button(key="yes-forget-go").click().run()
    assert f"Forgot {before} events" in shown(app)
    assert imported.stores.counts()["events"] == 0
    assert not imported.retriever.search("Caroline", 5).hits


def test_model_page_lists_the_models_and_the_budget_status(imported: Memlane) -> None:
    app = page("model")
    table = app.dataframe[0].value
    assert "qwen2.5-coder-1.5b" in set(table["name"])
    assert "memlane model compress" in shown(app)  # no BitStack file yet: it says how
    assert "resident memory" in shown(app)
    app.text_input(key="model-budget").input("lots")
    next(b for b in app.button if b.label == "Save budget").click().run()
    assert any("a number of MB or 'auto'" in e.value for e in app.error)
    app.text_input(key="model-budget").input("900")
    next(b for b in app.button if b.label == "Save budget").click().run()
    assert "Saved" in shown(app) and Settings(home=imported.settings.home).model_budget == "900"


def test_model_page_shows_the_size_ladder_of_a_compressed_model(home: Path,
                                                                compressed: dict) -> None:
    import math
    import shutil

    from inference.stacked import fit_of

    manifest = compressed["manifest"]
    small = math.ceil(fit_of(manifest, manifest.minimum + 80, 2048).total / 2**20)
    (home / "models").mkdir(parents=True)
    shutil.copy(compressed["path"], home / "models" / "smollm2-135m.bitstack")
    (home / SETTINGS_FILE).write_text(json.dumps({"model": "smollm2-135m",
                                                  "model_budget": str(small)}))
    app = page("model")
    ladder = app.dataframe[1].value  # the models, then the size ladder
    assert set(ladder["method"]) == {"bitstack", "llama.cpp"}
    assert list(ladder[ladder["runs"] == "yes"]["method"]) == ["bitstack"]
    assert "Runs: BitStack, the first" in shown(app)

    app.number_input(key="model-speed").set_value(4.0)
    next(b for b in app.button if b.label == "Save budget").click().run()
    assert Settings(home=home).model_speed_mb == 4
    assert "4 MiB of rebuilt weights kept for speed" in shown(page("model"))


def test_import_a_folder_and_export(home: Path, sample: Path) -> None:
    app = page("transfer")
    app.text_input(key="import-folder").input(str(sample)).run()
    next(b for b in app.button if b.label == "Import").click().run()
    assert "Imported" in shown(app)
    app.text_input(key="import-folder").input(str(sample / "missing")).run()
    next(b for b in app.button if b.label == "Import").click().run()
    assert app.error  # a folder that is not there: said, nothing changed
    app.button(key="export").click().run()
    exported = Path(app.session_state["export-path"])
    assert exported.exists() and "necklace" in exported.read_text()


def test_a_screen_episode_shows_its_thumbnail_and_opens_its_screenshot(
        home: Path, make_memlane: MakeMemlane, display: str, ocr) -> None:
    from app.service import build_capture
    from capture.xvfb import TextWindow

    memlane = make_memlane(home, capture_skip_idle_seconds=0)
    window = TextWindow(display, "Harbour - Notes", ["The Zanzibar pineapple shipment"])
    capture = build_capture(memlane, {"DISPLAY": display}, ocr)
    start = datetime.now(UTC)
    try:
        capture.clock = lambda: start
        capture.tick(1).result()
        window.add("The ferry to Pemba leaves at noon")
        capture.clock = lambda: start + timedelta(seconds=5)  # read, but no picture kept
        text_frame = capture.tick(1).result()
        capture.flush()
    finally:
        capture.close()
        window.close()
    app = page("timeline")
    assert len(app.get("image")) == 1  # the episode's thumbnail
    assert "Zanzibar pineapple" in shown(app) and "Pemba" in shown(app)
    app.button(key="timeline-open-0").click().run()

    def caption() -> str:
        [said] = [shot.caption for image in app.get("image") for shot in image.proto.imgs
                  if "·" in shot.caption]
        return said

    assert "Harbour - Notes" in caption()  # the screenshot
    app.session_state["timeline-frame"] = text_frame
    app.run()
    assert "kept 5 s before" in caption()  # a moment without a picture shows the one before


def test_capture_can_be_paused_resumed_and_stopped_from_home(home: Path,
                                                             imported: Memlane) -> None:
    """The service's pid and status files as the running capture service writes them, for
    a stand-in process (the real service needs a screen; tests/test_capture runs it)."""
    import subprocess
    import sys
    import threading

    from app.service import ServiceFiles
    from capture.privacy import PauseSwitch

    files = ServiceFiles(imported.settings.capture_dir)
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    threading.Thread(target=stand_in.wait, daemon=True).start()  # reaped when it stops
    files.folder.mkdir(parents=True, exist_ok=True)
    files.pid.write_text(str(stand_in.pid))
    files.status.write_text(json.dumps({"kept": 12, "last_frame_at": "2026-11-20T10:00:00+00:00",
                                        "errors": ["monitor 1: the grab failed"]}))
    try:
        app = page("home")
        assert "Capture is **on**: 12 frames kept" in shown(app)
        assert "monitor 1: the grab failed" in shown(app)  # recent problems, in words
        app.button(key="capture-pause").click().run()
        assert "Capture is **paused**" in shown(app)
        assert PauseSwitch(files.folder).paused  # the switch the service reads
        app.button(key="capture-resume").click().run()
        assert "Capture is **on**" in shown(app)
        app.button(key="capture-stop").click().run()
        assert "Capture is **off**" in shown(app) and stand_in.poll() is not None
    finally:
        stand_in.kill()
