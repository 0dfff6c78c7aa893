"""The dashboard end to end in a real headless Chromium (Debian's, driven by Playwright):
the real server on 127.0.0.1 over a tmp memory; import a sample, search, open a memory,
ask a question, and visit every page, saving a PNG of each under `test-output/dashboard/`
(`MEMLANE_TEST_OUTPUT` moves it)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import TINY
from tests.helpers import CONVERSATION
from ui.dashboard.serve import start

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OUTPUT = Path(os.environ.get("MEMLANE_TEST_OUTPUT", "test-output")) / "dashboard"

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serving(process: subprocess.Popen, port: int, log: Path) -> None:
    """Wait until the dashboard listens (Streamlit takes seconds to start)."""
    deadline = time.monotonic() + 120
    while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("browser") / "home"
    port = free_port()
    previous = os.environ.get("MEMLANE_MODEL")
    os.environ["MEMLANE_MODEL"] = TINY  # the test model answers the chat
    process = start(port, home, home.parent / "dashboard.log")
    try:
        serving(process, port, home.parent / "dashboard.log")
        listening = [c.laddr.ip for c in psutil.Process(process.pid).net_connections("inet")
                     if c.status == psutil.CONN_LISTEN]
        assert listening and set(listening) == {"127.0.0.1"}  # this computer only
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(20)
        if previous is None:
            os.environ.pop("MEMLANE_MODEL", None)
        else:
            os.environ["MEMLANE_MODEL"] = previous


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=FLAGS)
        yield chromium
        chromium.close()


def snap(page, name: str) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(500)  # let the last rerun paint
    page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)


def settled(page) -> None:
    """Wait for Streamlit to finish running the page."""
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']",
                           timeout=120_000)


def test_a_user_imports_searches_opens_and_asks(server: str, browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=120_000)  # the server loads its models on first use
    sample = tmp_path / "sample"
    sample.mkdir()
    (sample / "conversation.json").write_text(json.dumps(CONVERSATION), encoding="utf-8")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(120_000)
    away: list[str] = []  # the dashboard must fetch nothing from outside this computer
    page.on("request", lambda r: away.append(r.url)
            if not r.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:"))
            else None)
    chart = page.locator("[data-testid='stVegaLiteChart'] svg, "
                         "[data-testid='stVegaLiteChart'] canvas").first

    page.goto(server)
    expect(page.get_by_text("Nothing remembered yet")).to_be_visible()
    snap(page, "01-home-empty")

    page.get_by_role("link", name="Import / export").click()
    page.get_by_label("…or a folder on this computer").fill(str(sample))
    page.keyboard.press("Enter")
    settled(page)
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_text("Imported 8 new events")).to_be_visible()
    snap(page, "02-import")

    page.get_by_role("link", name="Home").click()
    expect(page.get_by_text("Knowledge vault")).to_be_visible()
    snap(page, "03-home")

    page.get_by_role("link", name="Search").click()
    page.get_by_label("Search all your memories").fill("necklace from Sweden")
    page.keyboard.press("Enter")
    expect(page.get_by_text("grandmother gave me a necklace").first).to_be_visible()
    snap(page, "04-search")
    page.get_by_role("button", name="Open").first.click()
    expect(page.get_by_text("Save changes")).to_be_visible()
    expect(page.get_by_text("History (")).to_be_visible()
    snap(page, "05-memory")

    page.get_by_role("link", name="Timeline").click()
    expect(page.get_by_text("episodes").first).to_be_visible()
    expect(chart).to_be_visible()  # the activity chart
    snap(page, "06-timeline")

    page.get_by_role("link", name="Graph").click()
    page.get_by_label("A name, a thing or a question").fill("Caroline")
    page.keyboard.press("Enter")
    expect(page.get_by_text("What joins them")).to_be_visible()
    expect(chart).to_be_visible()
    snap(page, "07-graph")
    page.locator("[aria-roledescription='circle'][aria-label*='name: grandmother']").click()
    expect(page.get_by_text("What joins grandmother to the others")).to_be_visible()

    page.get_by_role("link", name="Chat").click()
    page.get_by_placeholder("Ask your memory").fill("Where is Caroline's necklace from?")
    page.keyboard.press("Enter")
    expect(page.locator("[data-testid='stChatMessage']")).to_have_count(2)
    settled(page)
    assert page.locator("[data-testid='stChatMessage']").nth(1).inner_text().strip()
    snap(page, "08-chat")

    for link, name in (("Capture & privacy", "09-capture"), ("Model", "10-model")):
        page.get_by_role("link", name=link).click()
        settled(page)
        expect(page.get_by_role("heading", name=link)).to_be_visible()
        snap(page, name)
    page.close()
    assert away == []
