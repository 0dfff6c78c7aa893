"""What every dashboard page shares: the open memory (one per data folder, kept by
`st.cache_resource`), a lock so reruns take turns with it, and small display helpers."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import streamlit as st

from app.container import Memlane, Parts
from app.settings import Settings, data_dir
from capture.shots import FrameStore
from inference.assistant import Answer, Assistant

STORE_LABELS = {"core": "Core", "episodic": "Episodic", "semantic": "Semantic",
                "procedural": "Procedural", "resource": "Resources", "vault": "Knowledge vault"}


@dataclass
class Opened:
    """The memory of one data folder, as the dashboard holds it."""

    memlane: Memlane
    frames: FrameStore
    lock: threading.RLock = field(default_factory=threading.RLock)
    worker: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="memlane-answer"))
    assistants: dict[str, Assistant] = field(default_factory=dict)


_registered: list[Parts] = []
"""The parts every memory the dashboard opens is built with (empty: load the defaults)."""


def register_parts(parts: Parts) -> None:
    """Loaded parts (models) for every memory the dashboard opens from now on: a memory
    opened again after a settings change keeps them, and tests register theirs here."""
    _registered[:] = [parts]


@st.cache_resource(show_spinner="Opening your memory…")
def _open(home: str) -> Opened:
    from app.service import frame_store

    memlane = Memlane(Settings(home=home), _registered[0] if _registered else None)
    if not _registered:
        register_parts(Parts(embedder=memlane.embedder, analyzer=memlane.analyzer))
    return Opened(memlane, frame_store(memlane))


def opened() -> Opened:
    return _open(str(data_dir()))


def reopen() -> None:
    """Open the memory again with the settings just saved."""
    held = opened()
    with held.lock:
        _open.clear()
        held.worker.shutdown(wait=True)
        held.memlane.close()


@contextmanager
def memory() -> Iterator[Memlane]:
    """The memory, for one page's work (reruns and sessions take turns)."""
    held = opened()
    with held.lock:
        yield held.memlane


def settings() -> Settings:
    return opened().memlane.settings


def when(moment: datetime | None, with_time: bool = True) -> str:
    if moment is None:
        return ""
    local = moment.astimezone()
    return f"{local:%a %d %b %Y, %H:%M}" if with_time else f"{local:%d %b %Y}"


def snippet(text: str, limit: int = 220) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit].rsplit(" ", 1)[0] + "…"


def open_record(record_id: str) -> None:
    """Show a memory on the Memories page (from a search result, a citation, a timeline
    entry)."""
    st.session_state["open_record"] = record_id
    st.switch_page(st.session_state["pages"]["memories"])


def streamed_answer(assistant: Assistant, question: str
                    ) -> tuple[Iterator[str], Future[Answer]]:
    """The answer's pieces as they come (for `st.write_stream`) and the finished answer.
    The model runs on the memory's answer thread; the page holds the memory meanwhile."""
    pieces: queue.Queue[str | None] = queue.Queue()
    future = opened().worker.submit(assistant.ask, question, pieces.put)
    future.add_done_callback(lambda _: pieces.put(None))

    def pieces_of() -> Iterator[str]:
        while (piece := pieces.get()) is not None:
            yield piece

    return pieces_of(), future


def confirmable(key: str, label: str, action: Callable[[], None], help_: str = "") -> None:
    """A button that asks once more before doing something that cannot be undone."""
    if st.session_state.get(f"confirm-{key}"):
        st.warning(f"{label}? This cannot be undone.")
        left, right = st.columns(2)
        if left.button("Yes, " + label.lower(), key=f"yes-{key}", type="primary"):
            st.session_state[f"confirm-{key}"] = False
            action()
        if right.button("Cancel", key=f"no-{key}"):
            st.session_state[f"confirm-{key}"] = False
            st.rerun()
    elif st.button(label, key=key, help=help_):
        st.session_state[f"confirm-{key}"] = True
        st.rerun()


def capture_switch(status: dict) -> None:
    """Capture on or off, paused or not, with the buttons that change it."""
    from app.errors import CaptureUnavailable
    from app.service import start_background, stop_background
    from capture.privacy import PauseSwitch

    pause = PauseSwitch(settings().capture_dir)
    if not status.get("running"):
        st.write("Capture is **off**.")
        if st.button("Start capture", key="capture-start", type="primary"):
            try:
                start_background(settings())
            except CaptureUnavailable as off:
                st.error(str(off))
            else:
                st.rerun()
        return
    last = status.get("last_frame_at")
    st.write("Capture is **paused**: nothing on screen is kept until you resume."
             if pause.paused else
             f"Capture is **on**: {status.get('kept', 0):,} frames kept since it started"
             + (f", the last {when(datetime.fromisoformat(last))}." if last else "."))
    left, right = st.columns(2)
    if pause.paused and left.button("Resume", key="capture-resume", type="primary"):
        pause.resume()
        st.rerun()
    if not pause.paused and left.button("Pause", key="capture-pause"):
        pause.pause()
        st.rerun()
    if right.button("Stop capture", key="capture-stop"):
        stop_background(settings())
        st.rerun()
