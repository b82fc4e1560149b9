"""Snippets: a passage with the query's concepts and words wrapped in ``<mark>``, everything else
HTML-escaped (a document can contain anything)."""

from __future__ import annotations

import html
import re
from collections.abc import Collection

from caresync.documents.clinical_terms import find_mentions

MAX_SNIPPET_CHARS = 300
_WORD = re.compile(r"[A-Za-z0-9]+")
_ELLIPSIS = "\u2026"


def highlight_spans(text: str, concepts: Collection[str], words: Collection[str]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping ``(start, end)`` of the mentions of ``concepts`` and of ``words`` (whole
    words, any case) in ``text``."""
    spans = [(m.start, m.end) for m in find_mentions(text) if m.concept in concepts]
    lowered = {w.lower() for w in words}
    spans += [(m.start(), m.end()) for m in _WORD.finditer(text) if m.group().lower() in lowered]
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _window(text: str, spans: list[tuple[int, int]]) -> tuple[int, int]:
    if len(text) <= MAX_SNIPPET_CHARS:
        return 0, len(text)
    first = spans[0][0] if spans else 0
    start = max(0, min(first - MAX_SNIPPET_CHARS // 4, len(text) - MAX_SNIPPET_CHARS))
    if start:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < first else start
    end = min(len(text), start + MAX_SNIPPET_CHARS)
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start else end
    return start, end


def snippet(text: str, concepts: Collection[str], words: Collection[str]) -> str:
    """HTML for a passage (cut to about 300 characters around the first highlight) with highlights."""
    spans = highlight_spans(text, concepts, words)
    start, end = _window(text, spans)
    parts = [_ELLIPSIS] if start else []
    cursor = start
    for a, b in spans:
        if a < start or b > end:
            continue
        parts += [html.escape(text[cursor:a]), "<mark>", html.escape(text[a:b]), "</mark>"]
        cursor = b
    parts.append(html.escape(text[cursor:end]))
    if end < len(text):
        parts.append(_ELLIPSIS)
    return "".join(parts)
