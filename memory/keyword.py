"""Keyword search over SQLite FTS5 (BM25), with the store, source and time filters."""

from __future__ import annotations

import re
from itertools import combinations

from memory.db import Database
from memory.records import Filters
from memory.stores import iso

WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its itself
just me more most my myself no nor not now of off on once only or other our ours ourselves
out over own same she should so some such than that the their theirs them themselves then
there these they this those through to too under until up very was we were what when where
which while who whom why will with would you your yours yourself yourselves s t don didn
doesn isn wasn weren won shouldn couldn wouldn ve ll re d m o y ever also get got
""".split())


def query_terms(text: str) -> list[str]:
    """Content words of a query, lower-cased, in order, without repeats."""
    seen: dict[str, None] = {}
    for word in WORD.findall(text.lower()):
        word = word.replace("’", "'").split("'")[0]
        if word and word not in STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)


def match_expression(text: str) -> str | None:
    """An FTS5 MATCH string that ORs the quoted content words (None when there are none)."""
    terms = query_terms(text)
    return " OR ".join(f'"{term}"' for term in terms) if terms else None


def overlap_expression(text: str, longest: int = 5, missing: int = 2) -> str | None:
    """An FTS5 MATCH string for texts holding all but `missing` of a text's `longest`
    content words (all but one when it has fewer): where a restatement of the text must
    be, found through short posting lists instead of every text sharing a common word.
    A restatement with 85% of its words in common misses at most 2 of 5 in texts of up to
    ~17 words."""
    terms = sorted(query_terms(text), key=len, reverse=True)[:longest]
    if not terms:
        return None
    needed = len(terms) - missing if len(terms) == longest else max(len(terms) - 1, 1)
    return " OR ".join("(" + " AND ".join(f'"{t}"' for t in group) + ")"
                       for group in combinations(terms, needed))


class KeywordIndex:
    def __init__(self, db: Database) -> None:
        self.db = db

    def search(self, text: str, n: int, filters: Filters | None = None
               ) -> list[tuple[str, float]]:
        """(record id, BM25 score; higher is better) pairs, best first."""
        return self.match(match_expression(text), n, filters)

    def count(self) -> int:
        """How many records are indexed."""
        return self.db.execute("SELECT count(*) FROM keyword_rows").fetchone()[0]

    def frequency(self, word: str) -> int:
        """How many indexed records hold a word (its document frequency)."""
        return self.db.execute("SELECT count(*) FROM memory_fts WHERE memory_fts MATCH ?",
                               (f'"{word}"',)).fetchone()[0]

    def match(self, expression: str | None, n: int, filters: Filters | None = None,
              newest_first: bool = False) -> list[tuple[str, float]]:
        """`search` with an FTS5 MATCH string of one's own. `newest_first` takes the most
        recently indexed matches instead of the best: it stops after n, where ranking
        must score every match (thousands, for common words in a large memory)."""
        if expression is None:
            return []
        filters = filters or Filters()
        clauses, params = ["memory_fts MATCH ?"], [expression]
        if filters.stores:
            clauses.append(f"store IN ({','.join('?' * len(filters.stores))})")
            params.extend(filters.stores)
        if filters.sources:
            marks = ",".join("?" * len(filters.sources))
            clauses.append(f"(source IN ({marks}) OR substr(source, 1, instr(source, ':') - 1) "
                           f"IN ({marks}))")
            params.extend((*filters.sources, *filters.sources))
        if filters.since:
            clauses.append("occurred_at >= ?")
            params.append(iso(filters.since))
        if filters.until:
            clauses.append("occurred_at < ?")
            params.append(iso(filters.until))
        order = "rowid DESC" if newest_first else "bm25(memory_fts)"
        rows = self.db.execute(
            f"SELECT record_id, -bm25(memory_fts) AS score FROM memory_fts WHERE "
            f"{' AND '.join(clauses)} ORDER BY {order} LIMIT ?", (*params, n),
        )
        return [(row[0], row[1]) for row in rows]
