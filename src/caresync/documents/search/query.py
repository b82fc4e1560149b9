"""From what a nurse types to what the database is asked: lexicon concepts, their synonyms, other words, and
a full-text query that user input can never break.

Every phrase is reduced to plain letters and digits before it reaches the database: FTS5 gets each phrase
double-quoted (``"short of breath" OR "dyspnoea" OR ...``), PostgreSQL gets each phrase as a bound parameter
of ``phraseto_tsquery``; no operator, quote or bracket the user typed survives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from caresync.core.errors import ValidationFailed
from caresync.documents.clinical_terms import Mention, expand, find_mentions

MAX_QUERY_CHARS = 500
_WORD = re.compile(r"[A-Za-z0-9]+")
_STOP = """a about after also an and any are as at be been before being but by can could did do does
during for from get getting got had has have he her his how i in into is it its just me my of on or over
she so some since than that the their them then there these they this those to too up down was were what
when where which while who why will with would you your patient patients pt"""
STOP_WORDS = frozenset(_STOP.split())


@dataclass(frozen=True)
class QueryPlan:
    """A parsed query: the lexicon concepts it names, its other words, and the full-text phrases."""

    text: str
    concepts: tuple[str, ...]
    words: tuple[str, ...]  # lower-case words outside any concept, stop words dropped
    phrases: tuple[str, ...]  # space-separated letters/digits only, deduplicated, lower case

    def fts5(self) -> str:
        """An FTS5 MATCH expression: every phrase quoted, joined by OR ("" when there is none)."""
        return " OR ".join(f'"{p}"' for p in self.phrases)


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _phrase(term: str) -> str:
    return " ".join(w.lower() for w in _words(term))


def plan_query(query: str, *, expand_synonyms: bool = True) -> QueryPlan:
    """Parse a typed query. Concepts are found with abbreviations in any case ("sob at night"); with
    ``expand_synonyms`` every concept brings all its surface forms into the full-text phrases."""
    text = " ".join(query.split())
    if len(text) > MAX_QUERY_CHARS:
        raise ValidationFailed(f"The search is too long: keep it under {MAX_QUERY_CHARS} characters.")
    if not _words(text):
        raise ValidationFailed("Type at least one word to search for.")
    mentions: list[Mention] = find_mentions(text, strict_abbreviations=False)
    concepts = tuple(dict.fromkeys(m.concept for m in mentions))
    covered = [(m.start, m.end) for m in mentions]
    words = tuple(
        dict.fromkeys(
            m.group().lower()
            for m in _WORD.finditer(text)
            if m.group().lower() not in STOP_WORDS and not any(a <= m.start() < b for a, b in covered)
        )
    )
    terms: list[str] = [m.text for m in mentions]
    if expand_synonyms:
        terms += [t for m in mentions for t in sorted(expand(m.text))]
    phrases = tuple(p for p in dict.fromkeys([*map(_phrase, terms), *words]) if p)
    return QueryPlan(text=text, concepts=concepts, words=words, phrases=phrases)
