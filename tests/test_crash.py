"""Crash safety as the user meets it: Memlane's capture service and a writer that imports
and chats, each its own process, killed with SIGKILL at random moments and started again
(`bench.crash` runs 50 kills; here a few)."""

from __future__ import annotations

import pytest

from bench.crash import run


@pytest.mark.slow
def test_random_kills_lose_nothing_acknowledged_and_leave_the_memory_whole() -> None:
    result = run(kills=3, seed=11, turns=600, longest=25.0)
    assert result["failures"] == []
    assert (result["lost"], result["duplicates"], result["integrity_failures"]) == (0, 0, 0)
    assert result["events"] >= result["import_events"] + result["chat_turns_acked"]
    assert result["frames"] > 0 and result["chat_turns_acked"] >= 5
