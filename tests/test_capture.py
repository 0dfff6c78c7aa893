"""Screen capture on a real virtual X display (Xvfb): real windows (Tk), real grabs (mss),
real OCR (RapidOCR), real SQLite and Chroma. What the user relies on: what they saw is
found again, an unchanged screen costs nothing, excluded windows and secrets are never
kept, and no display is a clear message."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from app import cli
from app.container import Memlane
from app.errors import CaptureUnavailable, InvalidInput
from app.maintenance import consolidate
from app.service import apply_retention, build_capture, forget_frame, read_status
from app.settings import Settings
from capture.frames import Box, changed_boxes, difference, small_gray
from capture.ocr import OCR, Line, TesseractEngine
from capture.privacy import Exclusions, redact
from capture.screen import ScreenCapture
from capture.xvfb import TextWindow
from memory.records import Record
from tests.conftest import MakeMemlane
from tests.helpers import OPENAI_KEY, files_holding, tables_holding

CARD = "4111 1111 1111 1111"


@pytest.fixture
def window(display: str) -> Iterator[TextWindow]:
    shown = TextWindow(display, "Quarterly planning - Notes",
                       ["The Zanzibar pineapple shipment arrives on Thursday"])
    yield shown
    shown.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def capture_of(display: str, ocr: OCR, home: Path, make_memlane: MakeMemlane):
    made: list[ScreenCapture] = []

    def make(**settings: object) -> tuple[Memlane, ScreenCapture]:
        memlane = make_memlane(home, capture_skip_idle_seconds=0, **settings)
        capture = build_capture(memlane, {"DISPLAY": display}, ocr)
        made.append(capture)
        return memlane, capture

    yield make
    for capture in made:
        capture.close()


def kept(result: Future | str) -> str:
    assert isinstance(result, Future), f"the frame was skipped: {result}"
    return result.result()


def test_a_window_seen_is_read_stored_and_found(capture_of, window: TextWindow) -> None:
    memlane, capture = capture_of()
    frame = capture.frames.get(kept(capture.tick(1)))
    assert (frame.app, frame.title) == ("Tk", "Quarterly planning - Notes")
    assert "Zanzibar pineapple shipment" in frame.text
    [line] = [line for line in frame.lines if "Zanzibar" in line.text]
    assert line.box.top > 0 and line.box.right - line.box.left > 300  # where it was read
    for relative in (frame.path, frame.thumb):
        assert (memlane.settings.home / relative).stat().st_size > 0

    assert capture.flush() == 1
    hits = memlane.retriever.search("pineapple shipment Thursday", 5).hits
    top = hits[0].record
    assert top.store == "episodic" and top.source == "screen"
    assert "Quarterly planning" in top.search_text and "Zanzibar" in top.search_text
    assert capture.frames.for_event(top.event_ids[0]).id == frame.id  # click through


def test_an_unchanged_screen_adds_no_frame(capture_of, window: TextWindow) -> None:
    memlane, capture = capture_of()
    kept(capture.tick(1))
    assert capture.tick(1) == "unchanged"
    assert capture.frames.count() == 1 and capture.stats.skipped == {"unchanged": 1}


def test_only_the_change_is_read_and_text_is_not_stored_twice(capture_of,
                                                              window: TextWindow) -> None:
    memlane, capture = capture_of(capture_picture_seconds=0)
    kept(capture.tick(1))
    window.add("Remember to call Oskar about the harbour permit")
    grabbed = capture.grabber.grab(1).copy()
    second = capture.frames.get(kept(capture.tick(1)))

    assert second.kind == "patch" and second.boxes
    assert all(box.area < 0.5 * 1280 * 720 for box in second.boxes)
    assert "Oskar" in second.text and "Zanzibar" not in second.text
    rebuilt = capture.frames.image(second.id)  # the key frame with the patch pasted on
    assert np.array_equal(rebuilt, grabbed)  # text is stored lossless


def test_a_window_in_front_is_read_at_every_look_and_pictured_every_half_minute(
        capture_of, window: TextWindow) -> None:
    memlane, capture = capture_of()  # capture_picture_seconds: 30
    start = datetime.now(UTC)
    capture.clock = lambda: start
    first = kept(capture.tick(1))
    window.add("The ferry to Pemba leaves at noon")
    capture.clock = lambda: start + timedelta(seconds=5)
    second = capture.frames.get(kept(capture.tick(1)))
    assert second.kind == "text" and "Pemba" in second.text  # read, but no picture kept
    assert (second.path, second.bytes) == ("", 0)
    assert capture.frames.picture_of(second).id == first
    with pytest.raises(InvalidInput, match="no picture"):
        capture.frames.image(second.id)

    window.add("Book the hotel in Stone Town")
    grabbed = capture.grabber.grab(1).copy()
    capture.clock = lambda: start + timedelta(seconds=31)
    third = capture.frames.get(kept(capture.tick(1)))
    assert third.kind == "patch" and "Stone Town" in third.text and "Pemba" not in third.text
    assert np.array_equal(capture.frames.image(third.id), grabbed)  # both lines pasted on

    forget_frame(memlane, capture.frames, first)  # the next picture takes over
    assert capture.frames.get(third.id).kind == "key"
    assert np.array_equal(capture.frames.image(third.id), grabbed)
    assert capture.frames.picture_of(capture.frames.get(second.id)) is None


def test_a_windows_frames_make_one_episode_until_another_window(capture_of,
                                                                window: TextWindow) -> None:
    memlane, capture = capture_of()
    first = kept(capture.tick(1))
    window.add("The ferry to Pemba leaves at noon")
    second = capture.frames.get(kept(capture.tick(1)))
    window.set_title("Travel - Notes")
    window.add("Book the hotel in Stone Town")
    third = capture.frames.get(kept(capture.tick(1)))
    assert not second.thumb and capture.frames.thumbnail_of(second).id == first
    assert third.thumb  # a thumbnail for each window and minute

    assert capture.flush(wait_open=True) == 1  # the travel episode may still grow
    assert capture.unflushed == 1
    assert capture.flush() == 1
    planning, travel = sorted(memlane.stores.iter_all("episodic"), key=lambda r: r.occurred_at)
    assert "Quarterly planning" in planning.search_text
    assert "Zanzibar" in planning.search_text and "Pemba" in planning.search_text
    assert "Stone Town" in travel.search_text and "Zanzibar" not in travel.search_text
    assert capture.flush() == 0


def test_an_episode_lasts_at_most_its_length(capture_of, window: TextWindow) -> None:
    memlane, capture = capture_of(capture_episode_seconds=0.001)
    kept(capture.tick(1))
    window.add("The ferry to Pemba leaves at noon")
    kept(capture.tick(1))
    assert capture.flush(wait_open=True) == 2
    assert memlane.stores.counts()["episodic"] == 2


def test_an_excluded_window_is_not_captured(capture_of, window: TextWindow) -> None:
    memlane, capture = capture_of()
    window.set_title("Online banking - Mozilla Firefox Private Browsing")
    assert capture.tick(1) == "excluded"
    assert capture.frames.count() == 0


def test_paused_and_idle_capture_grab_nothing(capture_of, window: TextWindow,
                                              home: Path) -> None:
    memlane, capture = capture_of()
    capture.pause.pause()
    assert capture.tick(1) == "paused"
    assert read_status(memlane.settings)["paused"]
    capture.pause.resume()
    capture.rules = type(capture.rules)(skip_idle_seconds=0.5)
    time.sleep(0.6)  # no input on the virtual display since
    assert capture.tick(1) == "idle"
    assert capture.frames.count() == 0


def test_secrets_on_screen_are_in_no_store_index_or_file(capture_of, display: str,
                                                          ocr: OCR) -> None:
    memlane, capture = capture_of()
    shown = TextWindow(display, "Checkout", [f"Card number {CARD}", f"OPENAI_API_KEY={OPENAI_KEY}",
                                             "Your order of garden gnomes ships today"])
    try:
        frame = capture.frames.get(kept(capture.tick(1)))
    finally:
        shown.close()
    capture.flush()
    assert "garden gnomes" in frame.text and "[REDACTED card_number]" in frame.text
    home = memlane.settings.home
    for secret in (CARD, CARD.replace(" ", ""), OPENAI_KEY):
        assert tables_holding(memlane.db, secret) == {}, secret
        assert files_holding(home, secret) == [], secret
    assert memlane.stores.counts()["vault"] == 0  # the user did not opt in
    picture_text = " ".join(line.text for line in ocr.read(capture.frames.image(frame.id)))
    assert "gnomes" in picture_text  # the stored picture is readable...
    assert "4111" not in picture_text and "Zr4TqW9" not in picture_text  # ...but not these


def test_deleting_a_frame_deletes_what_came_only_from_it(capture_of,
                                                        window: TextWindow) -> None:
    memlane, capture = capture_of(capture_picture_seconds=0)
    first = kept(capture.tick(1))
    window.add("The ferry to Pemba leaves at noon")
    grabbed = capture.grabber.grab(1).copy()
    second = kept(capture.tick(1))
    capture.flush()
    assert memlane.stores.counts()["episodic"] == 1  # one window's minute: one episode

    forget_frame(memlane, capture.frames, first)
    assert memlane.stores.counts()["episodic"] == 1  # made again from the second frame
    assert not memlane.retriever.search("Zanzibar pineapple", 5).hits or all(
        "Zanzibar" not in hit.record.search_text
        for hit in memlane.retriever.search("Zanzibar pineapple", 5).hits)
    assert not list((memlane.settings.home / "frames").rglob(f"{first}*"))
    rebuilt = capture.frames.image(second)  # the later frame is still whole
    assert capture.frames.get(second).kind == "key"
    assert np.array_equal(rebuilt, grabbed)
    assert any("Pemba" in hit.record.search_text
               for hit in memlane.retriever.search("ferry Pemba", 5).hits)


def test_forgetting_an_apps_captures_leaves_no_trace(capture_of, window: TextWindow) -> None:
    """What real capture kept of an app (tests/test_forget.py checks the rest of memory)."""
    from app.forget import Scope, forget

    memlane, capture = capture_of(capture_picture_seconds=0)
    first = capture.frames.get(kept(capture.tick(1)))
    window.add("The ferry to Pemba leaves at noon")
    kept(capture.tick(1))
    capture.flush()
    assert memlane.retriever.search("Zanzibar pineapple", 3).hits
    home = memlane.settings.home
    pictures = [path for path in (home / "frames").rglob("*") if path.is_file()]
    assert pictures and tables_holding(memlane.db, "Zanzibar")

    done = forget(memlane, capture.frames, Scope(app=first.app.upper()))
    assert done.frames == 2 and capture.frames.count() == 0
    assert not any(path.exists() for path in pictures)
    assert tables_holding(memlane.db, "Zanzibar") == {}
    assert tables_holding(memlane.db, "Pemba") == {}
    assert not any("Zanzibar" in hit.record.search_text
                   for hit in memlane.retriever.search("Zanzibar pineapple", 5).hits)
    assert files_holding(home, "Zanzibar") == [] and files_holding(home, "Pemba") == []


def test_the_service_starts_by_deleting_what_a_crash_left_unnamed(capture_of) -> None:
    from app.service import CaptureService

    memlane, capture = capture_of(capture_picture_seconds=0)
    frame = capture.frames.get(kept(capture.tick(1)))
    folder = memlane.settings.home / frame.path
    stray, partial = folder.with_name("frame-killed.webp"), folder.with_name("x.webp.partial")
    stray.write_bytes(b"RIFF")
    partial.write_bytes(b"RI")
    service = CaptureService(memlane, capture)
    service.start()
    service.scheduler.shutdown(wait=True)
    assert not stray.exists() and not partial.exists()
    assert capture.frames.image(frame.id).shape[0] > 0  # the named picture is kept


def test_retention_deletes_the_oldest_frames_past_the_limits(capture_of,
                                                            window: TextWindow) -> None:
    memlane, capture = capture_of(frames_keep_days=1)
    kept(capture.tick(1))
    capture.flush()
    assert apply_retention(memlane, capture.frames) == 0
    later = capture.frames.recent()[0].captured_at + timedelta(days=2)
    assert apply_retention(memlane, capture.frames, now=later) == 1
    assert capture.frames.count() == 0 and capture.frames.total_bytes() == 0
    assert not any("Zanzibar" in r.search_text for r in memlane.stores.iter_all("episodic"))


# -- no display --------------------------------------------------------------------------------
@pytest.mark.parametrize(("environ", "says"), [
    ({}, "DISPLAY is not set"),
    ({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}, "Wayland"),
    ({"DISPLAY": ":987"}, "cannot open the display ':987'"),
])
def test_no_usable_display_is_a_clear_error(memlane: Memlane, environ: dict[str, str],
                                            says: str) -> None:
    with pytest.raises(CaptureUnavailable, match=says):
        build_capture(memlane, environ)


def test_capture_start_without_a_display_says_so_and_memory_still_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("MEMLANE_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(cli.app, ["capture", "start"])
    assert isinstance(result.exception, CaptureUnavailable)
    assert "DISPLAY is not set" in str(result.exception)
    assert not read_status(Settings())["running"]
    assert CliRunner().invoke(cli.app, ["stats", "--json"]).exit_code == 0


# -- the parts, on small inputs ---------------------------------------------------------------
def test_difference_and_changed_boxes() -> None:
    before = np.full((80, 160, 3), 255, dtype=np.uint8)
    after = before.copy()
    after[40:48, 100:140] = 0  # a word typed
    a, b = small_gray(before), small_gray(after)
    assert difference(a, a) == 0.0 and 0 < difference(a, b) < 0.05
    [box] = changed_boxes(a, b, 160, 80)
    assert box.left <= 100 and box.right >= 140 and box.top <= 40 and box.bottom >= 48
    assert changed_boxes(None, b, 160, 80) == [Box(0, 0, 160, 80)]


def test_a_password_beside_its_label_is_redacted() -> None:
    lines = [Line("Password:", Box(10, 100, 120, 130)),
             Line("tr0ub4dor&3", Box(140, 102, 300, 128)),
             Line("Sign in to your account", Box(10, 20, 400, 50))]
    redaction = redact(lines)
    assert "tr0ub4dor&3" not in redaction.text and "Sign in" in redaction.text
    assert Box(140, 102, 300, 128) in redaction.secret_boxes


def test_exclusions_match_apps_and_titles_and_refuse_bad_patterns() -> None:
    from capture.desktop import Window

    rules = Exclusions(Settings.model_fields["capture_excluded_apps"].default,
                       Settings.model_fields["capture_excluded_titles"].default)
    assert rules.reason(Window("KeePassXC", "Passwords.kdbx"))
    assert rules.reason(Window("Google-chrome", "New Tab - Google Chrome (Incognito)"))
    assert rules.reason(Window("firefox", "Recipes - Mozilla Firefox")) is None
    with pytest.raises(InvalidInput, match="not a valid regular expression"):
        Exclusions((), ("(unclosed",))


def test_tesseract_reads_the_screen_when_rapidocr_is_missing(display: str,
                                                             window: TextWindow) -> None:
    import mss

    with mss.MSS(display=display) as shooter:
        rgb = np.asarray(shooter.grab(shooter.monitors[1]))[:, :, 2::-1]
    text = " ".join(line.text for line in TesseractEngine().read(np.ascontiguousarray(rgb)))
    assert "Zanzibar" in text and "pineapple" in text


def test_consolidation_merges_the_same_fact_said_twice(memlane: Memlane) -> None:
    fact = {"name": "Oskar", "summary": "Oskar works at the harbour", "details": ""}
    with memlane.db.transaction():
        for n in range(2):
            memlane.stores.add(Record(store="semantic", id=f"semantic-{n}", source="chat",
                                      fields=fact), actor="test")
    assert consolidate(memlane) == {"semantic": 1}
    assert memlane.stores.counts()["semantic"] == 1
    assert [h["op"] for h in memlane.stores.history("semantic-0")] == ["ADD", "MERGE"]


# -- the service, end to end --------------------------------------------------------------------
@pytest.mark.slow
def test_the_capture_service_runs_in_the_background(display: str, window: TextWindow,
                                                    home: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", display)
    monkeypatch.setenv("MEMLANE_HOME", str(home))
    monkeypatch.setenv("MEMLANE_CAPTURE_SKIP_IDLE_SECONDS", "0")
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()
    started = runner.invoke(cli.app, ["capture", "start"])
    assert started.exit_code == 0, started.output
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not read_status(Settings()).get("kept"):
            time.sleep(0.5)
        status = runner.invoke(cli.app, ["capture", "status"]).stdout
        assert "running" in status and "Frames kept: 1" in status
    finally:
        assert runner.invoke(cli.app, ["capture", "stop"]).exit_code == 0
    assert not read_status(Settings())["running"]
    found = runner.invoke(cli.app, ["search", "Zanzibar pineapple"])
    assert found.exit_code == 0 and "Zanzibar pineapple shipment" in found.stdout
