"""The chat assistant in the terminal: streamed answers with their sources, and a few
slash commands for the memory behind them."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console

from app.container import Memlane
from app.errors import MemlaneError
from inference.assistant import Answer, Assistant

HELP = """Ask anything about your past; answers cite the memories they use.
  /search TEXT   show the memories a search finds, with their ids
  /forget ID     delete a memory (its history is kept)
  /model [NAME]  show the model, or switch to another packaged one
  /pause         stop or resume writing this chat into memory
  /help          this text
  /quit          leave (an empty line or Ctrl-D too)"""


def print_answer(console: Console, answer: Answer) -> None:
    """The sources an answer cites, after the streamed text."""
    console.print()
    for cited in answer.memories:
        if cited.number in answer.cited:
            console.print(f"[dim]{cited.line}[/dim]", highlight=False)


def ask_streaming(console: Console, assistant: Assistant, question: str) -> Answer:
    def show(piece: str) -> None:
        console.print(piece, end="", highlight=False, markup=False)

    answer = assistant.ask(question, on_piece=show)
    print_answer(console, answer)
    return answer


def chat_loop(memlane: Memlane, console: Console, read: Callable[[str], str]) -> None:
    """Read questions until an empty line, /quit or end of input."""
    assistant = memlane.assistant()
    console.print(f"Memlane chat with {assistant.llm.name}. /help lists the commands.")
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
        for hit in memlane.retriever.search(rest, memlane.settings.search_k).hits:
            console.print(f"[dim]{hit.record.id}[/dim] {hit.record.title[:100]}", highlight=False)
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
