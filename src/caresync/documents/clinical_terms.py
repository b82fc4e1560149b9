"""Clinical terms: a mention finder and NegEx-style negation over the lexicon of
:mod:`caresync.documents.clinical_lexicon` (common symptoms, conditions and medications).

Matching works on normalised word tokens, so British and American spellings (dyspnoea/dyspnea,
oedema/edema, tumour/tumor), simple plurals and possessives all meet the same lexicon entry; inside a
concept phrase a possessive determiner reads as "the" and a subject pronoun as "I" ("pain in my chest" is
"pain in the chest"). The longest lexicon phrase wins ("chest pain" over "pain"). Abbreviations written in
capitals in the lexicon (SOB, MI, HTN) only match capitalised text unless ``strict_abbreviations=False``
(typed queries).

Negation follows NegEx (Chapman et al., 2001): a pre-trigger ("no", "denies", "without", "negative for")
negates concepts after it until a terminator (sentence punctuation, "but", "however", "reports" ...) or
twelve units (a whole mention counts as one unit, so "denies chest pain, shortness of breath or fever"
negates all three); a post-trigger ("ruled out", "excluded", "absent") negates the concept just before it.
Pseudo-negations cancel a trigger: "no increase in pain", "no change in", "no further", "not ruled out",
"cannot be excluded" leave the concept affirmed (the pain is there, only its change is denied). Who has the
symptom (a family member) and when (history) are not modelled.

Speed: the lexicon and the negation phrases are indexed by their first word, so a text is read in one
pass over its words (linear in its length); the tokens, concept matches and trigger positions of a short
text are kept in a small LRU cache, so ``is_negated`` on a sentence ``find_mentions`` has just read (as the
summariser does for each drug) costs only the scope check, a binary search for the nearest trigger and
terminator.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

from caresync.documents.clinical_lexicon import (
    CONCEPTS,
    CONDITION,
    MEDICATION,
    POST_NEGATION,
    PRE_NEGATION,
    PSEUDO_NEGATION,
    SCOPE_TERMINATORS,
    SYMPTOM,
    WORD_CLASSES,
    Concept,
    american,
)

__all__ = [
    "CONCEPTS",
    "CONDITION",
    "MEDICATION",
    "SYMPTOM",
    "Concept",
    "Mention",
    "concept",
    "expand",
    "find_mentions",
    "is_negated",
    "lookup",
]


@dataclass(frozen=True)
class Mention:
    """A concept found in a text, at ``text[start:end]``."""

    concept: str
    kind: str
    start: int
    end: int
    text: str
    negated: bool
    code: str | None = None


# --- tokens and normalisation -------------------------------------------------------------------------------

_APOSTROPHE = "\u2019"  # typographic apostrophe, as in "Parkinson\u2019s"
# A line break ends a sentence, except where the next line goes on in lower case: a line wrapped by the
# layout of a letter or a scan ("shortness of / breath"), not a new list item or sentence.
_TOKEN = re.compile(rf"\d+(?:\.\d+)?|[A-Za-z0-9]+(?:['{_APOSTROPHE}][A-Za-z]+)*|[.;:!?]|\n(?![ \t]*[a-z])")
_TERMINATOR_CHARS = frozenset(".;:!?\n")
_CACHED_TEXT_CHARS = 1000  # longer texts (whole documents) are read afresh each time, not kept
_PRE_WINDOW = 12  # units (a whole mention is one unit)
_POST_WINDOW = 4


@lru_cache(maxsize=65536)
def _norm(word: str) -> str:
    """A spelling- and number-insensitive key for one word token."""
    w = word.lower().replace(_APOSTROPHE, "'")
    if w.endswith("'s"):
        w = w[:-2]
    w = american(w.replace("'", ""))
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if w.endswith(("shes", "xes", "sses")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


_CLASS_OF = {_norm(word): _norm(words[0]) for words in WORD_CLASSES for word in words}


def _keys(text: str) -> tuple[str, ...]:
    """The normalised words of a phrase."""
    return tuple(_norm(m.group()) for m in _TOKEN.finditer(text) if m.group() not in _TERMINATOR_CHARS)


def _concept_key(words: Iterable[str]) -> tuple[str, ...]:
    """Normalised words as concept phrases compare them: a word of a class reads as the class's first."""
    return tuple(_CLASS_OF.get(w, w) for w in words)


def _is_abbreviation(term: str) -> bool:
    return any(ch.isupper() for ch in term) and term.upper() == term


# --- the phrase tables, indexed by first word ---------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    concept: Concept
    strict: bool  # an abbreviation: matches capitalised text only (unless the caller relaxes it)


@lru_cache(maxsize=1)
def _lexicon() -> dict[tuple[str, ...], _Entry]:
    """Concept key -> entry; a plain word wins over an abbreviation with the same letters."""
    table: dict[tuple[str, ...], _Entry] = {}
    for c in CONCEPTS:
        for term in c.terms:
            key = _concept_key(_keys(term))
            strict = _is_abbreviation(term)
            current = table.get(key)
            if current is None or (current.strict and not strict):
                table[key] = _Entry(c, strict)
    return table


# first word -> (key, entry), longest first
_Candidates = dict[str, tuple[tuple[tuple[str, ...], _Entry], ...]]


@lru_cache(maxsize=1)
def _concepts_by_first_word() -> _Candidates:
    table: dict[str, list[tuple[tuple[str, ...], _Entry]]] = {}
    for key, entry in sorted(_lexicon().items(), key=lambda item: len(item[0]), reverse=True):
        table.setdefault(key[0], []).append((key, entry))
    return {first: tuple(found) for first, found in table.items()}


_PRE, _POST, _PSEUDO, _STOP = range(4)
_Triggers = dict[str, tuple[tuple[tuple[str, ...], int], ...]]  # first word -> (key, kind), longest first


def _trigger_table(*kinds: tuple[int, Sequence[str]]) -> _Triggers:
    table: dict[str, list[tuple[tuple[str, ...], int]]] = {}
    keyed = {(_keys(phrase), kind) for kind, phrases in kinds for phrase in phrases}
    for key, kind in sorted(keyed, key=lambda item: (-len(item[0]), item)):
        table.setdefault(key[0], []).append((key, kind))
    return {first: tuple(found) for first, found in table.items()}


_TRIGGERS = _trigger_table(
    (_PRE, PRE_NEGATION), (_POST, POST_NEGATION), (_PSEUDO, PSEUDO_NEGATION), (_STOP, SCOPE_TERMINATORS)
)


@lru_cache(maxsize=1)
def _by_name() -> dict[str, Concept]:
    return {c.name: c for c in CONCEPTS}


def concept(name: str) -> Concept:
    """The concept with this canonical name (``KeyError`` when unknown)."""
    return _by_name()[name]


def lookup(term: str) -> Concept | None:
    """The concept a whole term names (any synonym, spelling, plural or case), or ``None``."""
    entry = _lexicon().get(_concept_key(_keys(term)))
    return entry.concept if entry else None


def expand(query_term: str) -> frozenset[str]:
    """Every surface form of the concept a term names (synonyms, abbreviations, both spellings);
    a term the lexicon does not know expands to itself."""
    found = lookup(query_term)
    return found.terms if found else frozenset({query_term.strip()})


# --- reading a text -----------------------------------------------------------------------------------------


class _Reading:
    """One text read once: its tokens, the lexicon concepts in it (longest first, left to right; a
    terminator's empty key is in no phrase, so no match crosses one) and its negation triggers."""

    def __init__(self, text: str, strict: bool) -> None:
        found = list(_TOKEN.finditer(text))
        self.starts = [m.start() for m in found]
        self.ends = [m.end() for m in found]
        raws = [m.group() for m in found]
        keys = tuple("" if raw in _TERMINATOR_CHARS else _norm(raw) for raw in raws)
        self.matches = self._concepts(_concept_key(keys), raws, strict)
        spans: tuple[list[tuple[int, int]], ...] = ([], [], [], [])
        n = len(keys)
        for i in [i for i, key in enumerate(keys) if key in _TRIGGERS]:
            seen: set[int] = set()  # the kinds found at ``i``: only the longest phrase of each kind counts
            for phrase, kind in _TRIGGERS[keys[i]]:
                end = i + len(phrase)
                if kind not in seen and end <= n and keys[i:end] == phrase:
                    seen.add(kind)
                    spans[kind].append((i, end))
        self.pre, self.post, self.pseudo = spans[_PRE], spans[_POST], spans[_PSEUDO]
        words = [a for a, _ in spans[_STOP]]
        self.pre_stops = sorted([i for i, key in enumerate(keys) if not key] + words)
        # "Chest pain: denied" - a colon ends a pre-trigger's scope but not a post-trigger's.
        self.post_stops = sorted([i for i, key in enumerate(keys) if not key and raws[i] != ":"] + words)

    @staticmethod
    def _concepts(keys: tuple[str, ...], raws: list[str], strict: bool) -> list[tuple[int, int, Concept]]:
        table, out, i, n = _concepts_by_first_word(), [], 0, len(keys)
        while i < n:
            for phrase, entry in table.get(keys[i], ()):
                end = i + len(phrase)
                if (
                    end <= n
                    and keys[i:end] == phrase
                    and (not strict or not entry.strict or all(raw.isupper() for raw in raws[i:end]))
                ):
                    out.append((i, end, entry.concept))
                    i = end
                    break
            else:
                i += 1
        return out

    def scope(self, groups: list[tuple[int, int]]) -> _Scope:
        """The negation scopes when each ``[a, b)`` token group (sorted, disjoint) is one unit."""
        inner = bytearray(len(self.starts))  # tokens of a group after its first
        covered = bytearray(len(self.starts))  # a trigger inside a concept ("no sense of smell") is none
        for a, b in groups:
            inner[a + 1 : b] = b"\1" * (b - a - 1)
            covered[a:b] = b"\1" * (b - a)
        for a, b in self.pseudo:
            covered[a:b] = b"\1" * (b - a)
        return _Scope(
            units=list(accumulate(0 if inside else 1 for inside in inner)),
            pre_ends=sorted(b for a, b in self.pre if not any(covered[a:b])),
            post_starts=sorted(a for a, b in self.post if not any(covered[a:b])),
            pre_stops=self.pre_stops,
            post_stops=self.post_stops,
        )


@dataclass(frozen=True)
class _Scope:
    units: list[int]  # a unit number per token
    pre_ends: list[int]  # sorted
    post_starts: list[int]  # sorted
    pre_stops: list[int]  # sorted
    post_stops: list[int]  # sorted

    def negated(self, first: int, last: int) -> bool:
        """Whether the tokens ``first..last`` (inclusive) lie in a negation scope. Only the nearest trigger
        on each side can: a farther one is past as many units and terminators."""
        units = self.units
        i = bisect_right(self.pre_ends, first) - 1
        if i >= 0:
            b = self.pre_ends[i]
            stop = bisect_left(self.pre_stops, first) - 1  # the last terminator before the span
            if units[first] - units[b - 1] <= _PRE_WINDOW and (stop < 0 or self.pre_stops[stop] < b):
                return True
        i = bisect_right(self.post_starts, last)
        if i < len(self.post_starts):
            a = self.post_starts[i]
            stop = bisect_right(self.post_stops, last)  # the first terminator after the span
            if units[a] - units[last] <= _POST_WINDOW and (
                stop == len(self.post_stops) or self.post_stops[stop] >= a
            ):
                return True
        return False


@lru_cache(maxsize=256)
def _cached_reading(text: str, strict: bool) -> _Reading:
    return _Reading(text, strict)


def _read(text: str, strict: bool) -> _Reading:
    return _cached_reading(text, strict) if len(text) <= _CACHED_TEXT_CHARS else _Reading(text, strict)


def find_mentions(text: str, *, strict_abbreviations: bool = True) -> list[Mention]:
    """Every lexicon concept mentioned in ``text``, in order, longest phrase first, with negation.

    With ``strict_abbreviations`` (the default, for documents) abbreviations such as SOB or MI must be
    written in capitals; pass ``False`` for typed queries ("sob at night")."""
    reading = _read(text, strict_abbreviations)
    scope = reading.scope([(a, b) for a, b, _ in reading.matches])
    starts, ends = reading.starts, reading.ends
    return [
        Mention(
            concept=c.name,
            kind=c.kind,
            start=starts[a],
            end=ends[b - 1],
            text=text[starts[a] : ends[b - 1]],
            negated=scope.negated(a, b - 1),
            code=c.code,
        )
        for a, b, c in reading.matches
    ]


def is_negated(text: str, start: int, end: int) -> bool:
    """Whether the span ``text[start:end]`` (a concept, or any phrase) lies in a negation scope."""
    reading = _read(text, True)
    first = bisect_right(reading.ends, start)  # the first token ending after ``start``
    after = bisect_left(reading.starts, end)  # the first token starting at or after ``end``
    if first >= after:
        return False
    groups = [(a, b) for a, b, _ in reading.matches if b <= first or a >= after]
    groups = sorted([*groups, (first, after)])
    return reading.scope(groups).negated(first, after - 1)
