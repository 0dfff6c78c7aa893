"""The dashboard's pages. Each is a function `st.navigation` runs; each only shows what
the core (`app`, `memory`, `capture`, `inference`) gives and hands actions back to it.
The Memories page is in `ui.dashboard.memories`, the settings pages in
`ui.dashboard.settings_pages`."""

from __future__ import annotations

from datetime import date

import streamlit as st

from app import queries
from app.errors import Locked, MemlaneError
from memory.records import masked
from memory.writepath import undated
from ui.dashboard.memories import memories
from ui.dashboard.settings_pages import capture, model, transfer
from ui.dashboard.shared import (
    STORE_LABELS,
    capture_switch,
    memory,
    open_record,
    opened,
    settings,
    snippet,
    streamed_answer,
    when,
)


# -- Home -------------------------------------------------------------------------------------
def home() -> None:
    from app.maintenance import stats
    from app.service import read_status
    from app.sizing import size_status
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
        runs = size_status(settings())["summary"].splitlines()[-1]
        st.caption(f"Status: {ModelStore(settings().models_dir).status(spec)}. {runs}")
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
    frames = opened().frames
    with memory() as memlane:
        episodes = queries.day_episodes(memlane, frames, day)
    if not episodes:
        st.info(f"Nothing remembered on {day:%A %d %B %Y}.")
        return
    st.caption(f"{len(episodes)} episodes")
    for number, episode in enumerate(episodes):
        record = episode.record
        with st.container(border=True):
            picture, words = st.columns([1, 4]) if episode.thumbnail else (None, st.container())
            if picture is not None and episode.thumbnail:
                try:
                    picture.image(frames.thumbnail_bytes(episode.thumbnail))
                except Locked:
                    picture.caption("🔒 screenshot locked")
                except OSError:
                    picture.caption("screenshot deleted")
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
