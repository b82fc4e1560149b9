"""Splitting a document's text into passages of one to three sentences, keeping character offsets."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_SENTENCES = 3
MAX_CHARS = 400

# A sentence ends at . ! ? followed by white space (not inside "37.5"), or at a line break.
_SENTENCE = re.compile(r"(?:[^\n.!?]|[.!?]+(?!\s|$))+[.!?]*")


@dataclass(frozen=True)
class Passage:
    """``text == document[start:end]``."""

    start: int
    end: int
    text: str


def sentences(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each non-blank sentence or line, trimmed of surrounding white space."""
    spans = []
    for m in _SENTENCE.finditer(text):
        piece = m.group()
        if not piece.strip():
            continue
        start = m.start() + len(piece) - len(piece.lstrip())
        end = m.end() - (len(piece) - len(piece.rstrip()))
        spans.append((start, end))
    return spans


def passages(text: str) -> list[Passage]:
    """Consecutive sentences grouped into passages of at most three sentences and about 400 characters
    (a longer single sentence stays whole)."""
    out: list[Passage] = []
    group: list[tuple[int, int]] = []
    for span in sentences(text):
        if group and (len(group) == MAX_SENTENCES or span[1] - group[0][0] > MAX_CHARS):
            out.append(Passage(group[0][0], group[-1][1], text[group[0][0] : group[-1][1]]))
            group = []
        group.append(span)
    if group:
        out.append(Passage(group[0][0], group[-1][1], text[group[0][0] : group[-1][1]]))
    return out
