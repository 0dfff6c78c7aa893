"""The assistant with real llama.cpp and the tiny packaged model (SmolLM2-135M): structured
output, prompts that carry dates and sources, the vault kept out, abstention, chat turns
remembered. What the tiny model says is not judged; what reaches it and what is stored is."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from app.container import Memlane, Parts
from app.settings import Settings
from inference.assistant import DONT_KNOW, FOLLOW_UP_MEMORIES, cited_numbers, memory_line
from inference.attribution import named, owned_sentences
from inference.llm import BadModelOutput, LlamaModel, Message, parse_structured
from memory.writepath import ASSISTANT
from tests.helpers import OPENAI_KEY, T0, event


class Recording:
    """The real model, with every prompt it was given kept for the test to read."""

    def __init__(self, model: LlamaModel) -> None:
        self.model, self.name, self.context = model, model.name, model.context
        self.prompts: list[list[Message]] = []

    def count_tokens(self, text: str) -> int:
        return self.model.count_tokens(text)

    def stream(self, messages: Sequence[Message], max_tokens: int = 512) -> Iterator[str]:
        self.prompts.append(list(messages))
        return self.model.stream(messages, max_tokens)

    def structured(self, messages: Sequence[Message], schema: Mapping[str, Any],
                   max_tokens: int = 512) -> Any:
        self.prompts.append(list(messages))
        return self.model.structured(messages, schema, max_tokens)


class Scripted(Recording):
    """The real model, but its first replies are the given ones (what a model might say)."""

    def __init__(self, model: LlamaModel, *replies: str) -> None:
        super().__init__(model)
        self.replies = list(replies)

    def stream(self, messages: Sequence[Message], max_tokens: int = 512) -> Iterator[str]:
        if not self.replies:
            return super().stream(messages, max_tokens)
        self.prompts.append(list(messages))
        return iter(re.findall(r"\S+\s*", self.replies.pop(0)))


@pytest.fixture
def llm(tiny: LlamaModel) -> Recording:
    return Recording(tiny)


@pytest.fixture
def memlane(tmp_path: Path, parts: Parts, llm: Recording) -> Iterator[Memlane]:
    memlane = Memlane(Settings(home=tmp_path / "home", answer_tokens=24),
                      Parts(embedder=parts.embedder, analyzer=parts.analyzer, llm=llm))
    yield memlane
    memlane.close()


CHAT = [
    ("I went to the LGBTQ support group yesterday, it was powerful.", "Caroline", 0),
    ("My grandma gave me this necklace in Sweden.", "Caroline", 1),
    ("We camped at the beach with the kids last weekend.", "Melanie", 2),
]


def remember_chat(memlane: Memlane) -> None:
    memlane.ingest([event(text, actor=actor, when=T0 + timedelta(days=n), source="chat")
                    for text, actor, n in CHAT])


# -- structured output ------------------------------------------------------------------------
PERSON = {"type": "object", "properties": {"name": {"type": "string"},
                                           "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}


def test_structured_output_parses_and_fits_its_schema(tiny: LlamaModel) -> None:
    reply = tiny.structured([{"role": "user", "content": "Alice is 31 years old. "
                              "Give her name and age as JSON."}], PERSON, max_tokens=40)
    assert set(reply) == {"name", "age"}
    assert isinstance(reply["name"], str) and isinstance(reply["age"], int)


@pytest.mark.parametrize("text", ['{"name": "Alice"}', '{"name": "Alice", "age": "31"}',
                                  '{"name": "Alice", "age": 31', "Alice, 31"])
def test_output_off_schema_is_a_clear_error(text: str) -> None:
    with pytest.raises(BadModelOutput, match="does not fit the schema"):
        parse_structured(text, PERSON)


# -- prompts ----------------------------------------------------------------------------------
def test_the_prompt_numbers_memories_with_date_and_source(memlane: Memlane,
                                                          llm: Recording) -> None:
    remember_chat(memlane)
    answer = memlane.assistant().ask("Where is Caroline's necklace from?")
    [prompt] = llm.prompts
    shown = prompt[-1]["content"]
    assert shown.endswith("Question: Where is Caroline's necklace from?")
    necklace = next(m for m in answer.memories if "necklace" in m.line)
    assert necklace.line in shown
    assert necklace.line.startswith(f"[{necklace.number}] 3 January 2024, 9:30 am · chat · ")
    assert prompt[0]["role"] == "system" and "[2]" in prompt[0]["content"]  # how to cite


def test_core_memory_leads_the_system_prompt(memlane: Memlane, llm: Recording) -> None:
    memlane.ingest([event("My name is Dana and I love hiking.")])
    memlane.assistant().ask("What do I love?")
    assert "Dana" in llm.prompts[0][0]["content"]


def test_high_sensitivity_vault_entries_never_reach_a_prompt(memlane: Memlane,
                                                             llm: Recording) -> None:
    memlane.ingest([event(f"my openai key is {OPENAI_KEY}"),
                    event("Alice's email is alice@example.com")])
    question = "What is my openai key?"
    found = {hit.record.store for hit in memlane.retriever.search(question, 20).hits}
    assert "vault" in found  # the retriever finds the secret; the assistant must drop it
    answer = memlane.assistant().ask(question)
    assert llm.prompts and all(OPENAI_KEY not in m["content"] for p in llm.prompts for m in p)
    assert all(m.record.fields.get("sensitivity") != "high" for m in answer.memories)
    assert OPENAI_KEY not in answer.text


def test_citations_are_the_numbers_shown() -> None:
    assert cited_numbers("She went [2] and came back [1][2] [7] [x]", [1, 2, 3]) == [2, 1]
    assert cited_numbers("as [4] said", [11, 12]) == []


# -- abstention and memory --------------------------------------------------------------------
def test_with_nothing_remembered_it_says_so_without_asking_the_model(memlane: Memlane,
                                                                     llm: Recording) -> None:
    pieces: list[str] = []
    answer = memlane.assistant().ask("What did I eat in Rome?", on_piece=pieces.append)
    assert answer.abstained and answer.text == DONT_KNOW == "".join(pieces)
    assert llm.prompts == []


TEAM_CHAT = [
    ("Guess what, I signed with the Falcons last week!", "John", 0),
    ("Congrats! Which position did you sign for?", "Tim", 0),
    ("I'll be playing as a shooting guard for the Falcons.", "John", 0),
    ("Amazing. I finished my fantasy novel draft and sent it to an editor.", "Tim", 0),
]


def remember_team_chat(memlane: Memlane) -> None:
    memlane.ingest([event(text, actor=actor, when=T0 + timedelta(minutes=n), source="chat")
                    for n, (text, actor, _) in enumerate(TEAM_CHAT)])


def test_what_someone_else_said_of_themselves_is_not_an_answer(memlane: Memlane,
                                                               llm: Recording) -> None:
    remember_team_chat(memlane)
    pieces: list[str] = []
    answer = memlane.assistant().ask("What position did Tim sign for with the Falcons?",
                                     on_piece=pieces.append)
    assert answer.abstained and "that of Tim: the closest is about John [" in answer.text
    assert "".join(pieces) == answer.text and llm.prompts == []
    closest = next(c for c in answer.memories if c.number == answer.cited[0])
    assert "sign" in closest.record.search_text


def test_the_same_question_about_the_one_who_said_it_goes_to_the_model(
        memlane: Memlane, llm: Recording) -> None:
    remember_team_chat(memlane)
    memlane.assistant().ask("What position did John sign for with the Falcons?")
    assert len(llm.prompts) == 1 and "shooting guard" in llm.prompts[0][-1]["content"]


def test_a_question_asked_of_someone_is_about_them(memlane: Memlane) -> None:
    remember_team_chat(memlane)
    question = next(r for r in memlane.stores.iter_all("episodic")
                    if "Which position" in r.search_text)
    assert owned_sentences(question) == [("Tim", "Congrats!"),
                                          ("John", "Which position did you sign for?")]
    assert named("Did Tim or johnny call?", ["Tim", "John", "user", "Tim Brown"]) == [
        "Tim", "Tim Brown"]


def test_every_turn_is_remembered_and_the_answer_is_no_fact(memlane: Memlane) -> None:
    remember_chat(memlane)
    before = memlane.stores.counts()
    assistant = memlane.assistant(session="s1")
    answer = assistant.ask("Where did Melanie camp?")

    turns = [r for r in memlane.stores.iter_all("episodic") if r.source == "assistant:s1"]
    assert sorted(r.fields["actor"] for r in turns) == sorted(["user", ASSISTANT])
    [reply] = [r for r in turns if r.fields["actor"] == ASSISTANT]
    assert answer.text in reply.search_text
    assert reply.fields["context"] == "user: Where did Melanie camp?"
    after = memlane.stores.counts()
    assert after["semantic"] == before["semantic"]  # the model's words are not facts
    assert after["episodic"] == before["episodic"] + 2

    assistant.paused = True
    assistant.ask("And Caroline?")
    assert memlane.stores.counts()["episodic"] == after["episodic"]


def test_a_follow_up_keeps_the_earlier_turn_first(memlane: Memlane, llm: Recording) -> None:
    """The earlier turn is the prompt's unchanged prefix (the model's cache covers it), and
    the follow-up shows only memories not shown yet, numbered on from the first turn's."""
    remember_chat(memlane)
    assistant = memlane.assistant()
    first = assistant.ask("Where did Melanie camp?")
    second = assistant.ask("And Caroline's necklace?")
    earlier, later = llm.prompts
    assert later[:2] == earlier
    assert later[2] == {"role": "assistant", "content": first.text}

    shown_first = {c.record.id: c.number for c in first.memories}
    again = [c for c in second.memories if c.record.id in shown_first]
    fresh = [c for c in second.memories if c.record.id not in shown_first]
    assert again and all(c.number == shown_first[c.record.id] for c in again)
    assert all(c.line not in later[3]["content"] for c in again)  # not shown twice
    assert all(c.line in later[3]["content"] for c in fresh)
    assert all(c.number > max(shown_first.values()) for c in fresh)
    assert len(fresh) <= FOLLOW_UP_MEMORIES


@pytest.mark.parametrize("again", ["She camped at the beach [3].", "[3]"])
def test_an_answer_of_citations_alone_is_asked_again_in_words(
        tmp_path: Path, parts: Parts, tiny: LlamaModel, again: str) -> None:
    llm = Scripted(tiny, "[3], [1]", again)
    memlane = Memlane(Settings(home=tmp_path / "home", answer_tokens=24),
                      Parts(embedder=parts.embedder, analyzer=parts.analyzer, llm=llm))
    remember_chat(memlane)
    pieces: list[str] = []
    answer = memlane.assistant().ask("Where did Melanie camp?", on_piece=pieces.append)
    memlane.close()

    first, second = llm.prompts
    assert second[:-2] == first and second[-2]["content"] == "[3], [1]"
    assert "in words" in second[-1]["content"]
    expected = again if "beach" in again else "[3], [1]"  # words, or the first try's cites
    assert answer.text == expected == "".join(pieces)


def test_memory_line_drops_the_episode_date_prefix() -> None:
    from memory.writepath import raw_episode

    record = raw_episode(event("Hi there", actor="Mel", when=T0), "Hi there", "user")
    assert memory_line(4, record) == "[4] 2 January 2024, 9:30 am · chat · episodic: Mel: Hi there"
