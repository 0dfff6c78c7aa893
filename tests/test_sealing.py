"""Encryption at rest: the vault's secrets and the screenshots are sealed, a copy of the data
folder opens neither, and `memlane lock|unlock` shuts and opens them while capture and
search go on."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from app import cli
from app.container import Memlane
from app.errors import InvalidInput, Locked
from app.keys import KEYS_FILE, HomeKeys, KeyFolder
from app.maintenance import export, reindex, restore
from app.service import build_capture
from capture.ocr import OCR
from capture.screen import ScreenCapture
from capture.shots import FRAMES, encode
from capture.xvfb import TextWindow
from memory.events import content_id
from memory.sealing import MAGIC
from memory.stores import SECRET
from tests.conftest import MakeMemlane
from tests.helpers import OPENAI_KEY, event, files_holding

PASSPHRASE = "correct horse battery"
WEBP = b"WEBP"


@pytest.fixture
def captured(display: str, ocr: OCR, tmp_path: Path, make_memlane: MakeMemlane
             ) -> Iterator[tuple[Memlane, ScreenCapture]]:
    """A memory that saw a screen with a secret on it, and was told a secret in chat."""
    memlane = make_memlane(tmp_path / "home", capture_skip_idle_seconds=0,
                           capture_vault_secrets=True)
    capture = build_capture(memlane, {"DISPLAY": display}, ocr)
    shown = TextWindow(display, "Deploy notes",
                       [f"OPENAI_API_KEY={OPENAI_KEY}", "The marmalade rollout starts Friday"])
    try:
        result = capture.tick(1)
        result.result()
    finally:
        shown.close()
    capture.flush()
    memlane.ingest([event(f"my github token is ghp_{'Q7' * 18}", when=event("x").occurred_at)])
    yield memlane, capture
    capture.close()


def vault_secrets(memlane: Memlane) -> set[str]:
    return {memlane.stores.reveal(r).fields[SECRET] for r in memlane.stores.list("vault")}


def test_a_copy_of_the_data_folder_opens_no_secret_and_no_screenshot(
        captured: tuple[Memlane, ScreenCapture], tmp_path: Path, make_memlane: MakeMemlane
        ) -> None:
    memlane, capture = captured
    token = f"ghp_{'Q7' * 18}"
    assert vault_secrets(memlane) == {OPENAI_KEY, token}  # the owner sees them
    frame = capture.frames.recent(1)[0]
    assert capture.frames.image(frame.id).shape[0] > 0
    home = memlane.settings.home
    memlane.close()

    copy = tmp_path / "copy"
    shutil.copytree(home, copy)
    for secret in (OPENAI_KEY, token):
        assert files_holding(copy, secret) == [], secret
    pictures = [p for p in (copy / FRAMES).rglob("*") if p.is_file()]
    assert pictures and all(p.read_bytes().startswith(MAGIC) for p in pictures)
    assert not [p for p in pictures if WEBP in p.read_bytes()[:64]]

    # Elsewhere, without this machine's key store: search works, secrets and pictures stay shut.
    thief = make_memlane(copy, key_dir=tmp_path / "other-keys")
    assert thief.keys.locked
    assert any("marmalade" in hit.record.search_text
               for hit in thief.retriever.search("marmalade rollout", 5).hits)
    stolen = thief.stores.list("vault")
    assert len(stolen) == 2
    assert content_id("vault", "api_key", OPENAI_KEY) not in {r.id for r in stolen}  # no hash
    with pytest.raises(Locked, match="not in key files"):
        thief.stores.reveal(stolen[0])
    from app.service import frame_store

    with pytest.raises(Locked):
        frame_store(thief).image(frame.id)


def test_lock_shuts_secrets_and_screenshots_while_capture_goes_on(
        captured: tuple[Memlane, ScreenCapture], display: str) -> None:
    memlane, capture = captured
    runner = CliRunner()
    done = runner.invoke(cli.app, ["lock"], input=f"{PASSPHRASE}\n{PASSPHRASE}\n",
                         env={"MEMLANE_HOME": str(memlane.settings.home)})
    assert done.exit_code == 0, done.output
    assert "Locked" in done.output and memlane.keys.locked
    record = memlane.stores.list("vault")[0]
    with pytest.raises(Locked, match="memlane unlock"):
        memlane.stores.reveal(record)
    first = capture.frames.recent(1)[0]
    with pytest.raises(Locked):
        capture.frames.image(first.id)

    shown = TextWindow(display, "Shopping", ["Buy quince paste and oatcakes"])
    try:
        later = capture.tick(1).result()  # capture keeps storing pictures while locked
    finally:
        shown.close()
    capture.flush()
    assert any("quince" in hit.record.search_text
               for hit in memlane.retriever.search("quince paste", 5).hits)

    wrong = runner.invoke(cli.app, ["unlock"], input="not the passphrase\n",
                          env={"MEMLANE_HOME": str(memlane.settings.home)})
    assert isinstance(wrong.exception, InvalidInput) and "wrong passphrase" in str(
        wrong.exception)
    assert memlane.keys.locked
    right = runner.invoke(cli.app, ["unlock"], input=f"{PASSPHRASE}\n",
                          env={"MEMLANE_HOME": str(memlane.settings.home)})
    assert right.exit_code == 0, right.output
    assert OPENAI_KEY in vault_secrets(memlane)
    assert capture.frames.image(later).shape == capture.frames.image(first.id).shape


def test_lock_needs_a_passphrase_it_can_be_unlocked_with(keys: HomeKeys) -> None:
    with pytest.raises(InvalidInput, match="passphrase first"):
        keys.lock()
    with pytest.raises(InvalidInput, match="at least 8"):
        keys.set_passphrase("short")
    assert not keys.locked and not keys.has_passphrase  # nothing changed


def test_one_key_pair_when_two_processes_open_a_new_home_at_once(
        tmp_path: Path, key_folder: Path) -> None:
    store = KeyFolder(key_folder)
    first = HomeKeys(tmp_path, store)
    late = HomeKeys.__new__(HomeKeys)  # the other process, which also saw no keys.json
    late.path, late.store = tmp_path / KEYS_FILE, store
    late._create()
    assert store.get(f"{late.id}.private") is None  # it forgot its own pair
    again = HomeKeys(tmp_path, store)
    assert again.id == first.id and not again.locked


def test_what_was_stored_before_sealing_is_sealed_on_the_next_open(
        tmp_path: Path, make_memlane: MakeMemlane) -> None:
    home = tmp_path / "home"
    memlane = make_memlane(home)
    memlane.ingest([event(f"the openai key is {OPENAI_KEY}")])
    record = memlane.stores.list("vault")[0]
    picture = np.zeros((40, 60, 3), dtype=np.uint8)
    picture[10:20, 10:50] = 255
    relative = f"{FRAMES}/2024-01-02/frame-old.webp"
    (home / relative).parent.mkdir(parents=True)
    (home / relative).write_bytes(encode(picture, 60))
    memlane.db.execute(  # as an older Memlane left them: in clear, under a hash of the secret
        "INSERT INTO frames VALUES ('frame-old', 1, '2024-01-02T09:30:00+00:00', 'Notes', '', "
        "60, 40, 'key', '[]', ?, '', 100, '[]', 'old', NULL, 1)", (relative,))
    old_id = content_id("vault", "api_key", OPENAI_KEY)
    memlane.db.execute(f"UPDATE vault SET id = ?, {SECRET} = ? WHERE id = ?",
                       (old_id, OPENAI_KEY, record.id))
    memlane.db.execute("UPDATE provenance SET record_id = ? WHERE record_id = ?",
                       (old_id, record.id))
    reindex(memlane)  # every index as the older Memlane had it
    keys_file = home / KEYS_FILE
    keys_file.write_text(json.dumps({**json.loads(keys_file.read_text()),
                                     "sealed_existing": False}))
    memlane.close()

    reopened = make_memlane(home)
    (sealed,) = reopened.stores.list("vault")
    assert sealed.id == record.id and sealed.event_ids == record.event_ids
    assert reopened.stores.reveal(sealed).fields[SECRET] == OPENAI_KEY
    assert (home / relative).read_bytes().startswith(MAGIC)
    from app.service import frame_store

    assert np.array_equal(frame_store(reopened).image("frame-old"), picture)
    reopened.close()
    assert files_holding(home, OPENAI_KEY) == []  # nor in freed pages or the log


def test_a_new_home_opens_while_another_process_is_writing(
        tmp_path: Path, make_memlane: MakeMemlane) -> None:
    """The service, the dashboard and chat start together on a new home: one that finds
    nothing to seal does not wait for the write lock another process holds."""
    home = tmp_path / "home"
    first = make_memlane(home)
    first.close()
    keys_file = home / KEYS_FILE  # as a process sees it before the first one marked it
    keys_file.write_text(json.dumps({**json.loads(keys_file.read_text()),
                                     "sealed_existing": False}))
    writing = sqlite3.connect(first.settings.db_path, isolation_level=None)
    writing.execute("BEGIN IMMEDIATE")
    try:
        with ThreadPoolExecutor(1) as pool:
            opening = pool.submit(make_memlane, home)
            opened = opening.result(timeout=30)  # the old code waited for the lock
    finally:
        writing.execute("ROLLBACK")
        writing.close()
    assert opened.keys.record["sealed_existing"]


def test_an_export_holds_the_secret_opened_and_a_restore_seals_it_again(
        tmp_path: Path, make_memlane: MakeMemlane) -> None:
    source = make_memlane(tmp_path / "home")
    source.ingest([event(f"the openai key is {OPENAI_KEY}")])
    path = tmp_path / "memory.jsonl"
    export(source, path)
    assert OPENAI_KEY in path.read_text()
    target = make_memlane(tmp_path / "restored")
    restore(target, path)
    assert vault_secrets(target) == {OPENAI_KEY}
    assert files_holding(tmp_path / "restored", OPENAI_KEY) == []
    source.keys.set_passphrase(PASSPHRASE)
    source.keys.lock()
    with pytest.raises(Locked):
        export(source, tmp_path / "locked.jsonl")
    assert not (tmp_path / "locked.jsonl").exists()
