"""The dashboard's pages. Each is a function `st.navigation` runs; each only shows what
the core (`app`, `memory`, `capture`, `inference`) gives and hands actions back to it."""

from __future__ import annotations

import json
import tempfile
from datetime import date, datetime
from pathlib import Path

import streamlit as st

from app import queries
from app.errors import MemlaneError
from memory.records import STORES
from memory.writepath import undated
from ui.dashboard.shared import (
    MASK,
    STORE_LABELS,
    confirmable,
    masked,
    memory,
    open_record,
    opened,
    reopen,
    settings,
    snippet,
    streamed_answer,
    when,
)


# -- Home -------------------------------------------------------------------------------------
def home() -> None:
    from app.maintenance import stats
    from app.service import read_status
    from inference.models import ModelStore, spec_of

    st.title("Memlane")
    st.caption("Your private memory. Everything stays on this computer.")
    with memory() as memlane:
        facts = stats(memlane)
    counts = facts["counts"]
    if not counts["events"]:
        st.info("Nothing remembered yet. Import a chat export or notes on **Import / "
                "export**, or turn screen capture on below: what you see and say becomes "
                "memories you can search and ask about.")
    columns = st.columns(len(STORE_LABELS))
    for column, (store, label) in zip(columns, STORE_LABELS.items(), strict=True):
        column.metric(label, f"{counts.get(store, 0):,}")
    st.divider()
    capture, model, disk = st.columns(3)
    status = read_status(settings())
    with capture:
        st.subheader("Screen capture")
        capture_switch(status)
    with model:
        st.subheader("Model")
        spec = spec_of(settings().model)
        st.write(f"**{spec.title}** ({spec.size / 2**20:,.0f} MiB on disk)")
        st.caption(f"Status: {ModelStore(settings().models_dir).status(spec)}. Memory "
                   "budget: the whole model; size control is not available yet.")
    with disk:
        st.subheader("Storage")
        st.metric("Disk used", f"{facts['disk_bytes'] / 2**20:,.1f} MiB")
        st.caption(f"In {facts['home']}")
    errors = status.get("errors") or []
    st.subheader("Recent problems")
    if errors:
        for error in errors[-5:]:
            st.error(error)
    else:
        st.caption("None.")


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


# -- Timeline ---------------------------------------------------------------------------------
def timeline() -> None:
    import altair as alt
    import pandas as pd

    st.title("Timeline")
    with memory() as memlane:
        latest = queries.latest_day(memlane)
        busy = queries.activity(memlane, days=60, until=latest) if latest else []
    if latest is None:
        st.info("Your timeline is empty. Memories appear here as they are made: import "
                "a conversation or let screen capture run.")
        return
    if busy:
        frame = pd.DataFrame([(day.isoformat(), hour, n) for day, hour, n in busy],
                             columns=["day", "hour", "events"])
        pick = alt.selection_point(fields=["day"], name="pick")
        chart = alt.Chart(frame).mark_rect(cornerRadius=2).encode(
            x=alt.X("day:O", title=None, axis=alt.Axis(labelAngle=-45)),
            y=alt.Y("hour:O", title="hour of day", scale=alt.Scale(domain=list(range(24)))),
            color=alt.Color("events:Q", scale=alt.Scale(scheme="blues"),
                            legend=alt.Legend(format="d", title="events")),
            tooltip=["day:O", "hour:O", "events:Q"]).add_params(pick).properties(height=300)
        clicked = st.altair_chart(chart, width="stretch", on_select="rerun", key="activity")
        chosen = clicked.selection.get("pick") if clicked else None
        if chosen:  # a click on the chart opens that day
            st.session_state["timeline-day"] = date.fromisoformat(chosen[0]["day"])
        st.caption("Activity in the 60 days up to your newest memory; click a day to open it.")
    day = st.date_input("Day", value=latest, key="timeline-day")
    with memory() as memlane:
        episodes = queries.day_episodes(memlane, opened().frames, day)
    if not episodes:
        st.info(f"Nothing remembered on {day:%A %d %B %Y}.")
        return
    st.caption(f"{len(episodes)} episodes")
    for number, episode in enumerate(episodes):
        record = episode.record
        with st.container(border=True):
            picture, words = st.columns([1, 4]) if episode.thumbnail else (None, st.container())
            if picture is not None and episode.thumbnail:
                picture.image(str(settings().home / episode.thumbnail.thumb))
            words.markdown(f"**{record.occurred_at.astimezone():%H:%M}** · "
                           f"{episode.app or record.source}")
            words.write(snippet(undated(record.search_text), 300))
            if words.button("Open", key=f"timeline-open-{number}"):
                st.session_state["timeline-frame"] = episode.frame.id if episode.frame else None
                open_record(record.id)


# -- Search -----------------------------------------------------------------------------------
def search() -> None:
    st.title("Search")
    with memory() as memlane:
        apps, sources = queries.screen_apps(memlane), queries.sources(memlane)
    query = st.text_input("Search all your memories", key="search-query",
                          placeholder="e.g. the harbour permit, what Oskar said last week")
    with st.expander("Filters"):
        stores = st.multiselect("Stores", list(STORE_LABELS)[1:], key="search-stores",
                                format_func=STORE_LABELS.get)
        chosen_sources = st.multiselect("Sources", sources, key="search-sources")
        chosen_apps = st.multiselect("Apps (screen memories)", apps, key="search-apps")
        since, until = st.columns(2)
        start = since.date_input("From", value=None, key="search-since")
        end = until.date_input("Until", value=None, key="search-until")
    if not query.strip():
        st.caption("Type words, a name or a question; time phrases such as \"last May\" "
                   "narrow the search.")
        return
    with memory() as memlane:
        hits = queries.search(memlane, query, 20, tuple(stores), tuple(chosen_sources),
                              tuple(chosen_apps), start, end)
    if not hits:
        st.info("Nothing found. Try fewer words, or remove a filter.")
        return
    st.caption(f"{len(hits)} memories")
    for number, hit in enumerate(hits):
        record = masked(hit.record)
        with st.container(border=True):
            st.markdown(f"**{STORE_LABELS[record.store]}** · {when(record.occurred_at)} · "
                        f"{record.source}")
            st.write(snippet(undated(record.search_text)))
            if st.button("Open", key=f"search-open-{number}"):
                open_record(record.id)


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
    shown = masked(record, reveal)
    with st.form(f"edit-{record.id}"):
        values = {name: st.text_area(name.replace("_", " ").capitalize(),
                                     "\n".join(value) if isinstance(value, list)
                                     else str(value or ""),
                                     key=f"field-{record.id}-{name}-{reveal}",
                                     disabled=value == MASK)
                  for name, value in shown.fields.items()}
        saved = st.form_submit_button("Save changes")
    if saved:
        changes = {name: value.split("\n") if name in record.spec.list_fields else value
                   for name, value in values.items()
                   if value != MASK and value != ("\n".join(record.fields[name])
                                                  if isinstance(record.fields[name], list)
                                                  else str(record.fields[name] or ""))}
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
        st.toast("Deleted. Its history keeps the old value.")
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
            frame, picture = frames.get(frame_id), frames.image(frame_id)
    except (InvalidInput, OSError):
        st.caption("Its screenshot was deleted (retention or forgetting).")
        return
    st.image(picture, caption=f"{frame.title or frame.app} · {when(frame.captured_at)}")


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
    from datetime import UTC, datetime

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


# -- Graph ------------------------------------------------------------------------------------
def graph() -> None:
    import altair as alt
    import networkx as nx
    import pandas as pd

    st.title("Graph")
    st.caption("The people, places and things in your memories, and what joins them.")
    query = st.text_input("A name, a thing or a question", key="graph-query",
                          placeholder="e.g. Oskar, the harbour permit")
    if not query.strip():
        st.info("Type a name or a question to see the part of the graph it is about.")
        return
    with memory() as memlane:
        around = memlane.graph.around(query)
    if not around.nodes:
        st.info("Nothing in the graph matches that yet.")
        return
    network = nx.Graph()
    network.add_nodes_from(node.name for node in around.nodes)
    network.add_edges_from((edge.a, edge.b) for edge in around.edges)
    layout = nx.spring_layout(network, seed=7)
    nodes = pd.DataFrame([{"name": n.name, "x": layout[n.name][0], "y": layout[n.name][1],
                           "relevance": n.score, "mentions": n.mentions}
                          for n in around.nodes])
    lines = pd.DataFrame([{"edge": i, "kind": e.kind, "x": layout[end][0], "y": layout[end][1]}
                          for i, e in enumerate(around.edges) for end in (e.a, e.b)])
    axis = alt.Axis(labels=False, ticks=False, grid=False, title=None, domain=False)
    roomy = alt.Scale(padding=60, zero=False)  # labels at the edges stay inside
    chart = alt.Chart(nodes).mark_circle(opacity=0.9).encode(
        x=alt.X("x:Q", axis=axis, scale=roomy), y=alt.Y("y:Q", axis=axis, scale=roomy),
        size=alt.Size("mentions:Q", legend=None, scale=alt.Scale(range=[120, 900])),
        color=alt.Color("relevance:Q", legend=None, scale=alt.Scale(scheme="blues")),
        tooltip=["name", "mentions", "relevance"]).add_params(
        alt.selection_point(fields=["name"], name="entity"))
    labels = alt.Chart(nodes).mark_text(dy=-16, fontSize=13).encode(
        x=alt.X("x:Q", scale=roomy), y=alt.Y("y:Q", scale=roomy), text="name")
    layers = [chart, labels]
    if not lines.empty:
        layers.insert(0, alt.Chart(lines).mark_line(opacity=0.4, color="#64748b").encode(
            x=alt.X("x:Q", scale=roomy), y=alt.Y("y:Q", scale=roomy), detail="edge:N",
            strokeDash=alt.StrokeDash("kind:N", title="link")))
    clicked = st.altair_chart(alt.layer(*layers).interactive().properties(height=480),
                              width="stretch", on_select="rerun", key="graph-chart")
    picked = clicked.selection.get("entity") if clicked else None
    entity = picked[0]["name"] if picked else None
    st.subheader(f"What joins {entity} to the others" if entity else "What joins them")
    st.caption("Click an entity in the picture to see only its links; drag and scroll to "
               "move and zoom.")
    edges = [e for e in around.edges if entity in (e.a, e.b)] if entity else around.edges
    if not edges:
        st.caption("No links among these yet.")
    for number, edge in enumerate(edges):
        with st.expander(f"{edge.a} — {edge.b} ({edge.kind}, {len(edge.record_ids)} memories)"):
            for fact in edge.facts[:5]:
                st.write(f"“{fact}”")
            with memory() as memlane:
                records = memlane.stores.get_many(edge.record_ids)
            for index, record in enumerate(records.values()):
                if st.button(snippet(masked(record).search_text, 120),
                             key=f"graph-open-{number}-{index}"):
                    open_record(record.id)


# -- Chat -------------------------------------------------------------------------------------
def chat() -> None:
    st.title("Chat")
    log = st.session_state.setdefault("chat", [])
    question = st.chat_input("Ask your memory")
    if not log and not question:
        st.info("Ask about your past: what you did, who said what, when something "
                "happened. Answers cite the memories they come from.")
    for turn_number, turn in enumerate(log):
        with st.chat_message(turn["role"]):
            st.markdown(turn["text"])
            sources(turn.get("sources", []), turn.get("cited", False), turn_number)
    if not question:
        return
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        try:
            answer = ask(question)
        except MemlaneError as failed:
            st.error(str(failed))
            return
        cited = [c for c in answer.memories if c.number in answer.cited]
        shown = [(c.number, c.record.id, c.line) for c in (cited or answer.memories[:3])]
        sources(shown, bool(cited), len(log) + 1)  # its place in the log
    log += [{"role": "user", "text": question},
            {"role": "assistant", "text": answer.text, "sources": shown, "cited": bool(cited)}]


def ask(question: str):
    """The assistant's answer, streamed onto the page; one assistant per browser session,
    so follow-up questions keep the conversation."""
    held = opened()
    session = st.session_state.setdefault("chat-session", f"dashboard-{id(st.session_state)}")
    with memory() as memlane:
        memlane.llm()
        if session not in held.assistants:
            held.assistants[session] = memlane.assistant(session)
        pieces, finished = streamed_answer(held.assistants[session], question)
        st.write_stream(pieces)
        return finished.result()


def sources(shown: list, cited: bool, turn_number: int) -> None:
    """The memories an answer cites (or, when it cites none, the ones it was shown), each
    a button that opens it."""
    if not shown:
        return
    st.caption("Sources" if cited else "It cited nothing; the memories it looked at:")
    for number, record_id, line in shown:
        if st.button(snippet(line, 140), key=f"cited-{turn_number}-{number}",
                     help="Open this memory"):
            open_record(record_id)


# -- Capture & privacy ------------------------------------------------------------------------
def capture() -> None:
    from app.service import read_status
    from app.settings import save_settings

    st.title("Capture & privacy")
    current = settings()
    capture_switch(read_status(current))
    st.divider()
    with st.form("capture-settings"):
        st.subheader("What is captured")
        interval = st.number_input("Seconds between screenshots", 1.0, 600.0,
                                   float(current.capture_interval), key="capture-interval")
        idle = st.number_input("Stop after this many idle seconds (0: never)", 0.0, 86400.0,
                               float(current.capture_skip_idle_seconds), key="capture-idle")
        apps = st.text_area("Applications never captured (one per line)",
                            "\n".join(current.capture_excluded_apps), key="capture-apps")
        titles = st.text_area("Window titles never captured (patterns, one per line)",
                              "\n".join(current.capture_excluded_titles), key="capture-titles")
        st.subheader("Secrets")
        st.caption("Card numbers, API keys and tokens, private keys, passwords beside a "
                   "password label and one-time codes are always cut out of what you say "
                   "and see, and blacked out of screenshots, before anything is stored.")
        rules = st.text_area("Also cut out (your own patterns, one per line, e.g. "
                             "`project falcon` or `\\bINV-\\d+`)",
                             "\n".join(current.redact_patterns), key="redact-rules",
                             help="Regular expressions, case-insensitive. What they match "
                                  "is never stored, not even in the vault. They apply to "
                                  "what is remembered from now on.")
        vault = st.checkbox("Keep the secrets found on screen in the knowledge vault",
                            current.capture_vault_secrets, key="capture-vault")
        st.subheader("Screenshots kept")
        days = st.number_input("Days", 1.0, 3650.0, float(current.frames_keep_days),
                               key="frames-days")
        size = st.number_input("At most (MB)", 10.0, 1e6, float(current.frames_max_mb),
                               key="frames-mb")
        saved = st.form_submit_button("Save", type="primary")
    if saved:
        try:
            save_settings(current, {
                "capture_interval": interval, "capture_skip_idle_seconds": idle,
                "capture_excluded_apps": [a.strip() for a in apps.splitlines() if a.strip()],
                "capture_excluded_titles": [t.strip() for t in titles.splitlines()
                                            if t.strip()],
                "redact_patterns": [r.strip() for r in rules.splitlines() if r.strip()],
                "capture_vault_secrets": vault, "frames_keep_days": days,
                "frames_max_mb": size})
        except MemlaneError as bad:
            st.error(str(bad))
        else:
            reopen()
            st.success("Saved. Capture uses the new settings when it next starts.")


# -- Model ------------------------------------------------------------------------------------
def model() -> None:
    import psutil

    from app.settings import save_settings
    from inference.models import MODELS, ModelStore

    st.title("Model")
    current = settings()
    store = ModelStore(current.models_dir)
    rows = [{"model": spec.title, "name": spec.name, "role": spec.role,
             "size (MiB)": round(spec.size / 2**20), "status": str(store.status(spec)),
             "active": "yes" if spec.name == current.model else ""}
            for spec in MODELS.values()]
    st.dataframe(rows, hide_index=True, width="stretch")
    names = [spec.name for spec in MODELS.values()]
    chosen = st.selectbox("Answer with", names, index=names.index(current.model)
                          if current.model in names else 0, key="model-choice")
    if chosen != current.model and st.button("Use this model", type="primary"):
        save_settings(current, {"model": chosen})
        reopen()
        st.success(f"Memlane answers with {chosen} from the next question on.")
    st.subheader("Memory budget")
    st.info("Size control (growing and shrinking the model with free memory) is not "
            "available yet; the whole model is loaded, its weights paged in from disk.")
    resident = psutil.Process().memory_info().rss
    free = psutil.virtual_memory().available
    left, right = st.columns(2)
    left.metric("Memlane's resident memory", f"{resident / 2**20:,.0f} MiB")
    right.metric("Free memory", f"{free / 2**20:,.0f} MiB")


# -- Import / export --------------------------------------------------------------------------
def transfer() -> None:
    st.title("Import / export")
    st.subheader("Import")
    st.caption("Chat exports (ChatGPT, LoCoMo JSON), Markdown and text notes. Files already "
               "imported are skipped; a file that cannot be read changes nothing.")
    uploads = st.file_uploader("Files", accept_multiple_files=True, key="import-files")
    folder = st.text_input("…or a folder on this computer", key="import-folder")
    if st.button("Import", type="primary", disabled=not uploads and not folder.strip()):
        if uploads:
            with tempfile.TemporaryDirectory() as staging:
                for upload in uploads:
                    (Path(staging) / Path(upload.name).name).write_bytes(upload.getvalue())
                run_import(Path(staging))
        if folder.strip():
            run_import(Path(folder.strip()).expanduser())
    st.divider()
    st.subheader("Export")
    st.caption("The whole memory as JSON lines, vault secrets included: keep the file safe.")
    if st.button("Prepare an export", key="export"):
        from app.maintenance import export

        target = settings().home / "exports" / f"memlane-{date.today():%Y-%m-%d}.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        with memory() as memlane:
            counts = export(memlane, target)
        st.session_state["export-path"] = str(target)
        st.success(f"{sum(counts.values()):,} rows exported to {target}.")
    if st.session_state.get("export-path"):
        path = Path(st.session_state["export-path"])
        st.download_button("Download the export", path.read_bytes(), file_name=path.name)
    st.divider()
    st.subheader("Restore")
    st.caption("Loads an export into an empty memory.")
    restore_file = st.file_uploader("Export file (.jsonl)", key="restore-file")
    if restore_file and st.button("Restore", key="restore"):
        from app.maintenance import restore

        with tempfile.TemporaryDirectory() as staging:
            path = Path(staging) / "restore.jsonl"
            path.write_bytes(restore_file.getvalue())
            try:
                with memory() as memlane:
                    counts = restore(memlane, path)
            except MemlaneError as bad:
                st.error(str(bad))
            else:
                st.success(f"Restored {sum(counts.values()):,} rows.")


def run_import(path: Path) -> None:
    from app.maintenance import import_path

    bar = st.progress(0.0, text=f"Reading {path.name}…")

    def progress(label: str, total: int):
        done = [0]

        def step(count: int) -> None:
            done[0] += count
            bar.progress(min(1.0, done[0] / max(1, total)), text=f"{label} ({done[0]:,} of "
                                                                   f"{total:,})")
        return step

    try:
        with memory() as memlane:
            summary = import_path(memlane, path, progress)
    except MemlaneError as bad:
        bar.empty()
        st.error(str(bad))
        return
    bar.progress(1.0, text="Done")
    report = summary.report
    st.success(f"Imported {report.events:,} new events"
               + (f" ({report.duplicates:,} already there)" if report.duplicates else "")
               + ".")


PAGES = {
    "home": (home, "Home", ":material/home:"),
    "timeline": (timeline, "Timeline", ":material/calendar_month:"),
    "search": (search, "Search", ":material/search:"),
    "memories": (memories, "Memories", ":material/psychology:"),
    "graph": (graph, "Graph", ":material/hub:"),
    "chat": (chat, "Chat", ":material/chat:"),
    "capture": (capture, "Capture & privacy", ":material/screenshot_monitor:"),
    "model": (model, "Model", ":material/memory:"),
    "transfer": (transfer, "Import / export", ":material/import_export:"),
}
"""Each page: what runs it, its title and its icon; the key is its address."""
