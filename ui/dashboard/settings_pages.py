"""The dashboard's settings pages: capture and privacy, the model, import and export."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

import streamlit as st

from app.errors import InvalidInput, MemlaneError
from ui.dashboard.shared import (
    capture_switch,
    confirmable,
    memory,
    opened,
    reopen,
    settings,
)


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
        every = st.number_input("While one window stays in front, keep its screenshot at "
                                "most every (seconds; 0: at every change)", 0.0, 3600.0,
                                float(current.capture_picture_seconds), key="picture-seconds",
                                help="The text on screen is read and remembered at every "
                                     "look either way; this only thins the pictures kept.")
        days = st.number_input("Days", 1.0, 3650.0, float(current.frames_keep_days),
                               key="frames-days")
        size = st.number_input("At most (MB)", 10.0, 1e6, float(current.frames_max_mb),
                               key="frames-mb")
        st.subheader("Other assistants")
        st.caption("Assistants you run on this computer can search your memories and ask "
                   "questions through `memlane mcp`; secrets are never shown to them.")
        mcp_writes = st.checkbox("Let them add notes to your memory", current.mcp_writes,
                                 key="mcp-writes")
        saved = st.form_submit_button("Save", type="primary")
    if saved:
        try:
            save_settings(current, {
                "capture_interval": interval, "capture_skip_idle_seconds": idle,
                "capture_excluded_apps": [a.strip() for a in apps.splitlines() if a.strip()],
                "capture_excluded_titles": [t.strip() for t in titles.splitlines()
                                            if t.strip()],
                "redact_patterns": [r.strip() for r in rules.splitlines() if r.strip()],
                "capture_vault_secrets": vault, "capture_picture_seconds": every,
                "frames_keep_days": days, "frames_max_mb": size, "mcp_writes": mcp_writes})
        except MemlaneError as bad:
            st.error(str(bad))
        else:
            reopen()
            st.success("Saved. Capture uses the new settings when it next starts.")
    st.divider()
    encryption()
    st.divider()
    forgetting()


def encryption() -> None:
    """Lock and unlock, as `memlane lock|unlock` do."""
    st.subheader("Encryption")
    with memory() as memlane:
        keys = memlane.keys
    st.caption("Vault secrets and screenshots are encrypted; the key is kept outside the "
               f"data folder, in {keys.store.name}. Locked, they stay shut while capture "
               "and search go on.")
    if keys.locked:
        st.warning("🔒 Locked: secrets and screenshots cannot be opened.")
        with st.form("unlock"):
            passphrase = st.text_input("Passphrase", type="password", key="unlock-passphrase")
            if st.form_submit_button("Unlock"):
                act(lambda: keys.unlock(passphrase))
        return
    with st.form("lock"):
        if not keys.has_passphrase:
            st.caption("Choose a passphrase to lock with. It is stored nowhere: without it "
                       "a locked memory's secrets and screenshots cannot be opened again.")
            chosen = st.text_input("New passphrase", type="password", key="lock-passphrase")
            again = st.text_input("The same again", type="password", key="lock-again")
        if st.form_submit_button("Lock"):
            def lock() -> None:
                if not keys.has_passphrase:
                    if chosen != again:
                        raise InvalidInput("the two passphrases differ")
                    keys.set_passphrase(chosen)
                keys.lock()
            act(lock)


def forgetting() -> None:
    """Forget a time range, an app's captures or a whole source, as `memlane forget` does:
    first what it covers, then once more before it goes."""
    from app import queries
    from app.forget import Scope, select
    from app.forget import forget as forget_scope
    from app.queries import day_span

    st.subheader("Forget")
    with memory() as memlane:
        apps, sources = queries.screen_apps(memlane), queries.sources(memlane)
    with st.form("forget"):
        st.caption("Out of every memory, index and cache, the screenshots and the files' "
                   "free space. Leave a field empty to not narrow by it.")
        left, right = st.columns(2)
        since = left.date_input("From (included)", None, key="forget-from")
        until = right.date_input("To (included)", None, key="forget-to")
        app_name = left.selectbox("An app's captures", [""] + apps, key="forget-app")
        source = right.selectbox("Everything from a source", [""] + sources,
                                 key="forget-source")
        asked = st.form_submit_button("See what it covers")
    if asked:
        st.session_state["forget-scope"] = Scope(
            start=day_span(since)[0] if since else None,
            end=day_span(until)[1] if until else None,
            app=app_name or None, source=source or None)
    scope = st.session_state.get("forget-scope")
    if scope is None:
        return
    try:
        with memory() as memlane:
            selection = select(memlane, opened().frames, scope)
    except MemlaneError as bad:
        st.error(str(bad))
        return
    if selection.empty:
        st.info(f"Nothing to forget: {scope} holds no memory.")
        return
    said = str(scope)
    st.write(f"{said[:1].upper()}{said[1:]}: {len(selection.events)} events, "
             f"{len(selection.records)} memories, {len(selection.frames)} screenshots.")

    def go() -> None:
        with memory() as memlane:
            done = forget_scope(memlane, opened().frames, scope)
        st.session_state.pop("forget-scope", None)
        st.success(f"Forgot {done.events} events, {done.memories} memories and "
                   f"{done.frames} screenshots.")

    confirmable("forget-go", "Forget it for good", go)


def act(work: Callable[[], None]) -> None:
    """Do it and show the page again in its new state, or say why not."""
    try:
        work()
    except MemlaneError as bad:
        st.error(str(bad))
    else:
        st.rerun()


# -- Model ------------------------------------------------------------------------------------
def model() -> None:
    import psutil

    from app.settings import save_settings
    from app.sizing import size_status
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
    try:
        status = size_status(current)
    except MemlaneError as failed:
        st.error(str(failed))
        status = None
    if status:
        st.info(status["summary"])
        if status["ladder"]:
            st.dataframe([{"method": o["method"], "setting": o["setting"],
                           "resident (MiB)": o["resident_mb"], "perplexity": o["perplexity"],
                           "runs": "yes" if o["chosen"] else ""} for o in status["ladder"]],
                         hide_index=True, width="stretch", key="size-ladder")
    with st.form("budget-form"):
        budget = st.text_input("The model may use (MB, or 'auto' to follow free memory)",
                               current.model_budget, key="model-budget")
        speed = st.number_input(
            "Of that, MiB kept as rebuilt weights for speed (BitStack only)", min_value=0.0,
            value=float(current.model_speed_mb), step=25.0, key="model-speed",
            help="Faster answers from fewer blocks: at 590 MB on the 0.5B, 100 MiB gave "
                 "+55% tokens/s and +32% perplexity (BENCHMARKS.md). 0 spends it all on "
                 "blocks.")
        if st.form_submit_button("Save budget"):
            try:
                save_settings(current, {"model_budget": budget, "model_speed_mb": speed})
            except MemlaneError as bad:
                st.error(str(bad))
            else:
                reopen()
                st.success("Saved: the model takes its new size at the next question.")
    st.caption(f"Size control needs the model compressed once (about 10 minutes for the "
               f"0.5B): `memlane model compress {current.model}`.")
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
