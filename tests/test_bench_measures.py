"""The measures the benchmarks report, on hand-computed cases: a wrong measure would make
every figure in BENCHMARKS.md wrong."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bench.locomo_qa import abstains, sample, token_f1
from bench.locomo_retrieval import recall_at


@pytest.mark.parametrize(("prediction", "gold", "expected"), [
    ("Sweden", "Sweden", 1.0),
    ("She moved from Sweden [3].", "Sweden", 0.4),  # P 1/4, R 1; the citation is no word
    ("The adoption agencies", "adoption agencies", 1.0),  # articles and case do not count
    ("7 May 2023", "8 May 2023", 2 / 3),
    ("Lisbon", "Porto", 0.0),
])
def test_token_f1_is_the_locomo_measure(prediction: str, gold: str, expected: float) -> None:
    assert token_f1(prediction, gold) == pytest.approx(expected)


def test_abstention_is_read_from_the_answer() -> None:
    assert abstains("Your memories don't say.") and abstains("That is not mentioned.")
    assert not abstains("She went to Sweden [2].")


def test_the_sample_keeps_each_categorys_share() -> None:
    questions = [(Path("a.json"), {"category": c, "question": f"q{i}"})
                 for i, c in enumerate([1] * 20 + [2] * 20 + [4] * 50 + [5] * 10)]
    chosen = sample(questions, 20, seed=7)
    assert Counter(q["category"] for _, q in chosen) == {1: 4, 2: 4, 4: 10, 5: 2}
    assert chosen == sample(questions, 20, seed=7)  # fixed by the seed


def test_recall_counts_distinct_turns_in_the_first_k() -> None:
    assert recall_at(["D1:1", "D1:1", "D1:2", "D1:3"], {"D1:3", "D2:1"}, 3) == 0.5
    assert recall_at(["D1:1", "D1:2", "D1:3"], {"D1:3"}, 2) == 0.0
