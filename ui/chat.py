"""The chat assistant in the terminal: streamed answers with their sources, and a few
slash commands for the memory behind them."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from app.container import Memlane
from app.errors import MemlaneError
from inference.assistant import Answer, Assistant
from memory.records import masked

HELP = """Ask anything about your past; answers cite the memories they use.
  /search TEXT   show the memories a search finds, with their ids
  /open ID       show a memory whole (vault secrets stay hidden)
  /forget ID     forget a memory everywhere (an episode takes its event)
  /model [NAME]  show the model, or switch to another packaged one
  /pause         stop or resume writing this chat into memory
  /help          this text
  /quit          leave (an empty line or Ctrl-D too)"""


def print_answer(console: Console, answer: Answer) -> None:
    """The sources an answer cites, after the streamed text, as a small table."""
    console.print()
    cited = [c for c in answer.memories if c.number in answer.cited]
    if not cited:
        if answer.memories and not answer.abstained:
            console.print("[dim](no memory cited)[/dim]")
        return
    table = Table(box=None, show_header=False, padding=(0, 1), expand=False)
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")
    for c in cited:
        record = c.record
        day = record.occurred_at.strftime("%d %b %Y") if record.occurred_at else ""
        text = c.line.split(": ", 1)[1] if ": " in c.line else c.line
        table.add_row(f"[{c.number}]", f"{day} {record.store}", escape(text))
    console.print(Panel(table, title="sources", title_align="left", border_style="dim"))


def ask_streaming(console: Console, assistant: Assistant, question: str) -> Answer:
    def show(piece: str) -> None:
        console.print(piece, end="", highlight=False, markup=False)

    answer = assistant.ask(question, on_piece=show)
    print_answer(console, answer)
    return answer


def chat_loop(memlane: Memlane, console: Console, read: Callable[[str], str]) -> None:
    """Read questions until an empty line, /quit or end of input."""
    try:
        import readline  # noqa: F401  (arrow keys and history for input())
    except ImportError:  # not on every platform
        pass
    assistant = memlane.assistant()
    counts = memlane.stores.counts()
    console.print(Panel(f"Talking with [bold]{assistant.llm.name}[/bold] about "
                        f"{counts['events']:,} remembered events. /help lists the commands.",
                        title="Memlane chat", title_align="left", border_style="blue"))
    while True:
        try:
            line = read("you> ").strip()
        except EOFError:
            return
        if not line or line in {"/quit", "/exit"}:
            return
        try:
            if line.startswith("/"):
                assistant = command(memlane, console, assistant, line)
            else:
                ask_streaming(console, assistant, line)
        except MemlaneError as exc:
            console.print(f"[red]{exc}[/red]")


def command(memlane: Memlane, console: Console, assistant: Assistant, line: str) -> Assistant:
    """Run one slash command; returns the assistant to go on with."""
    name, _, rest = line[1:].partition(" ")
    rest = rest.strip()
    if name == "help":
        console.print(HELP, highlight=False)
    elif name == "search" and rest:
        hits = memlane.retriever.search(rest, memlane.settings.search_k).hits
        for hit in hits:
            console.print(f"[dim]{hit.record.id}[/dim] {escape(hit.record.title[:100])}",
                          highlight=False)
        if not hits:
            console.print("Nothing found.")
    elif name == "open" and rest:
        show_memory(memlane, console, rest)
    elif name == "forget" and rest:
        memlane.forget(rest)
        console.print(f"Forgot {rest}.")
    elif name == "model":
        if rest:
            assistant.llm = memlane.llm(rest)
        console.print(f"Model: {assistant.llm.name}")
    elif name == "pause":
        assistant.paused = not assistant.paused
        console.print("Paused: this chat is not written to memory." if assistant.paused
                      else "Resumed: this chat is written to memory.")
    else:
        console.print(f"Unknown command {line!r}.\n{HELP}", highlight=False)
    return assistant


def show_memory(memlane: Memlane, console: Console, record_id: str) -> None:
    """A memory's fields, with a vault secret hidden."""
    record = memlane.stores.get(record_id)
    table = Table(box=None, show_header=False, padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    hidden = masked(record)
    for name in record.fields:
        table.add_row(name, escape(hidden.text_of((name,))))
    when = record.occurred_at.strftime("%d %b %Y %H:%M") if record.occurred_at else "undated"
    console.print(Panel(table, title=f"{record.store} · {when} · {record.source}",
                        title_align="left", border_style="dim"))
