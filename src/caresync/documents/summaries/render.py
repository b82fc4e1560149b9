"""The draft note and key facts as Markdown or plain text: a heading per section, a bullet per sentence and
the segment references ``[3, 4]`` each sentence came from."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from caresync.documents.summaries.facts import KeyFacts
from caresync.documents.summaries.soap import Section
from caresync.documents.summaries.summary import Summary

NOTHING = "(nothing recorded)"
_Heading = Callable[[str, int], str]  # (title, level 1 or 2) -> heading line


def render_markdown(summary: Summary) -> str:
    """The summary as Markdown: ``## Subjective`` ... ``## Plan``, then ``## Key facts``. Transcript text is
    escaped, so nothing said can become Markdown or HTML markup."""
    return _render(summary, lambda title, level: f"{'#' * (level + 1)} {title}", "-", _escape_markdown)


def render_text(summary: Summary) -> str:
    """The summary as plain text: upper-case section titles and ``*`` bullets."""
    return _render(summary, lambda title, level: title.upper() if level == 1 else f"{title}:", "*", str)


def _escape_markdown(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", text)


def refs(segments: Iterable[int]) -> str:
    """A segment reference: ``[3, 4]``."""
    return "[" + ", ".join(str(index) for index in segments) + "]"


def _render(summary: Summary, heading: _Heading, bullet: str, escape: Callable[[str], str]) -> str:
    blocks = []
    for section in Section:
        lines = [f"{escape(s.text)} {refs(s.segments)}" for s in summary.note.section(section)]
        blocks.append(_block(heading(section.value.capitalize(), 1), lines, bullet))
    blocks.append(heading("Key facts", 1))
    for title, lines in _fact_lines(summary.facts, escape):
        blocks.append(_block(heading(title, 2), lines, bullet))
    return "\n\n".join(blocks) + "\n"


def _block(title: str, lines: list[str], bullet: str) -> str:
    return "\n".join([title, *(f"{bullet} {line}" for line in lines or [NOTHING])])


def _fact_lines(facts: KeyFacts, escape: Callable[[str], str]) -> list[tuple[str, list[str]]]:
    symptoms = [
        f"{fact.concept}: {'absent' if fact.negated else 'present'} {refs(fact.segments)}"
        for fact in facts.symptoms
    ]
    medications = [
        " ".join(
            part
            for part in (
                fact.name,
                fact.dose or "",
                (fact.frequency_label or "").lower(),
                "(not taken)" if fact.negated else "",
                "(plan)" if fact.in_plan else "",
                refs(fact.segments),
            )
            if part
        )
        for fact in facts.medications
    ]
    vitals = [f"{fact.kind}: {fact.value} {fact.unit} {refs(fact.segments)}" for fact in facts.vitals]
    follow_ups = [
        f"{fact.kind}{f' ({fact.when})' if fact.when else ''}: {escape(fact.text)} {refs(fact.segments)}"
        for fact in facts.follow_ups
    ]
    return [
        ("Symptoms", symptoms),
        ("Medications", medications),
        ("Vitals", vitals),
        ("Follow-up", follow_ups),
    ]
