"""The Memories page: the six stores to browse, one memory whole (its fields to edit, its
history, its screenshot, what it came from), and memories made by hand."""

from __future__ import annotations

import json
from datetime import datetime

import streamlit as st

from app.errors import Locked, MemlaneError
from memory.records import MASK, STORES, masked
from memory.writepath import undated
from ui.dashboard.shared import (
    STORE_LABELS,
    confirmable,
    memory,
    opened,
    snippet,
    when,
)


# -- Memories ---------------------------------------------------------------------------------
def memories() -> None:
    st.title("Memories")
    opened_id = st.session_state.get("open_record")
    if opened_id:
        show_record(opened_id)
        st.divider()
    store = st.radio("Store", list(STORE_LABELS), format_func=STORE_LABELS.get, index=1,
                     horizontal=True, key="memories-store")
    if store == "core":
        core_blocks()
        return
    with st.expander(f"New {STORE_LABELS[store].lower()} memory"):
        create_form(store)
    page = st.number_input("Page", min_value=1, value=1, key=f"memories-page-{store}")
    with memory() as memlane:
        records = memlane.stores.list(store, 25, (page - 1) * 25)
    if not records:
        st.info("No memories here yet." if page == 1 else "No more memories.")
        return
    for number, record in enumerate(records):
        with st.container(border=True):
            st.markdown(f"**{when(record.occurred_at) or 'undated'}** · {record.source}")
            st.write(snippet(undated(masked(record).search_text)))
            if st.button("Open", key=f"memories-open-{number}"):
                st.session_state["open_record"] = record.id
                st.rerun()


def show_record(record_id: str) -> None:
    """One memory: its fields (editable), where it came from, its history, its screenshot."""
    with memory() as memlane:
        record = memlane.stores.find(record_id)
        history = memlane.stores.history(record_id) if record else []
        events = memlane.stores.event_metadata(record.event_ids) if record else {}
    if record is None:
        st.warning("That memory no longer exists.")
        st.session_state.pop("open_record", None)
        return
    st.subheader(f"{STORE_LABELS[record.store]} memory")
    st.caption(f"{when(record.occurred_at)} · {record.source} · id {record.id}")
    reveal = record.store == "vault" and st.toggle("Reveal the secret", key="reveal")
    if reveal:
        try:
            with memory() as memlane:
                record = memlane.stores.reveal(record)
        except Locked as locked:
            st.warning(f"{locked}.")
            reveal = False
    shown = masked(record, reveal)
    with st.form(f"edit-{record.id}"):
        values = {name: st.text_area(name.replace("_", " ").capitalize(),
                                     shown.text_of((name,)),
                                     key=f"field-{record.id}-{name}-{reveal}",
                                     disabled=value == MASK)
                  for name, value in shown.fields.items()}
        saved = st.form_submit_button("Save changes")
    if saved:
        changes = {name: value.split("\n") if name in record.spec.list_fields else value
                   for name, value in values.items()
                   if value != MASK and value != record.text_of((name,))}
        if changes:
            try:
                with memory() as memlane:
                    with memlane.db.transaction():
                        memlane.stores.update(record.id, changes, actor="user")
                    memlane.sync()
            except MemlaneError as bad:
                st.error(str(bad))
            else:
                st.success("Saved. The old value is in the history below.")
        else:
            st.info("Nothing changed.")
    frame_id = st.session_state.get("timeline-frame") or next(
        (str(meta["frame"]) for meta in events.values() if meta.get("frame")), None)
    if frame_id:
        screenshot(frame_id)
    with st.expander(f"History ({len(history)} changes)"):
        for row in history:
            st.write(f"{row['at'][:19].replace('T', ' ')} · {row['op'].lower()} by "
                     f"{row['actor']}")
    with st.expander("What it came from"):
        with memory() as memlane:
            derived = memlane.stores.derived_from(record.event_ids)
        for other in derived:
            if other.id != record.id:
                st.write(f"{STORE_LABELS[other.store]}: {snippet(masked(other).search_text, 120)}")
        st.caption(f"{len(record.event_ids)} source events")

    def delete() -> None:
        with memory() as memlane:
            memlane.forget(record.id)
        st.session_state.pop("open_record", None)
        st.toast("Forgotten: gone from every store, index and cache.")
        st.rerun()

    left, right = st.columns(2)
    with left:
        confirmable(f"delete-{record.id}", "Delete this memory", delete)
    if right.button("Close", key="close-record"):
        st.session_state.pop("open_record", None)
        st.session_state.pop("timeline-frame", None)
        st.rerun()


def screenshot(frame_id: str) -> None:
    from app.errors import InvalidInput

    frames = opened().frames
    try:
        with memory():
            frame = frames.get(frame_id)
            shown = frames.picture_of(frame)
            picture = frames.image(shown.id) if shown else None
    except Locked as locked:
        st.caption(f"🔒 {locked}.")
        return
    except (InvalidInput, OSError):
        shown = picture = None
    if shown is None or picture is None:
        st.caption("Its screenshot was deleted (retention or forgetting).")
        return
    caption = f"{shown.title or shown.app} · {when(shown.captured_at)}"
    if shown.id != frame.id:  # a picture is kept at most every capture_picture_seconds
        seconds = (frame.captured_at - shown.captured_at).total_seconds()
        caption += f" (the screenshot kept {seconds:.0f} s before this moment)"
    st.image(picture, caption=caption)


def core_blocks() -> None:
    st.caption("What Memlane always keeps in mind about you and about itself.")
    with memory() as memlane:
        blocks = {label: memlane.stores.core(label) for label in ("human", "persona")}
    for label, value in blocks.items():
        with st.form(f"core-{label}"):
            text = st.text_area("About you" if label == "human" else "About the assistant",
                                value, height=160, key=f"core-text-{label}")
            if st.form_submit_button("Save"):
                try:
                    with memory() as memlane, memlane.db.transaction():
                        memlane.stores.set_core(label, text, actor="user")
                except MemlaneError as bad:
                    st.error(str(bad))
                else:
                    st.success("Saved.")


def create_form(store: str) -> None:
    from datetime import UTC

    from memory.events import content_id
    from memory.records import Record

    spec = STORES[store]
    with st.form(f"create-{store}", clear_on_submit=True):
        values = {name: st.text_area(name.replace("_", " ").capitalize(), key=f"new-{store}-{name}")
                  for name in spec.fields}
        made = st.form_submit_button("Add")
    if not made:
        return
    if not any(v.strip() for v in values.values()):
        st.error("Fill in at least one field.")
        return
    fields = {name: [line for line in value.split("\n") if line.strip()]
              if name in spec.list_fields else value for name, value in values.items()}
    record = Record(store=store, id=content_id(store, "user", json.dumps(fields)),
                    source="dashboard", occurred_at=datetime.now(UTC), event_ids=(),
                    fields=fields)
    try:
        with memory() as memlane:
            with memlane.db.transaction():
                memlane.stores.add(record, actor="user")
            memlane.sync()
    except MemlaneError as bad:
        st.error(str(bad))
    else:
        st.success("Added.")
