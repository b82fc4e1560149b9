"""Summarise a consultation transcript: the draft SOAP note and the key facts, both grounded in segments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from caresync.documents.summaries import facts, soap
from caresync.documents.summaries.dialogue import utterances
from caresync.documents.summaries.transcript import Segment, sentences, validate


@dataclass(frozen=True)
class Summary:
    """A draft note and the key facts of one consultation (for the doctor to edit and approve)."""

    note: soap.SoapNote
    facts: facts.KeyFacts


def summarise(segments: Sequence[Segment]) -> Summary:
    """The draft SOAP note and key facts of a transcript (ordered segments with speaker roles). Pure and
    deterministic. Raises ValidationFailed for a transcript without speech or with malformed segments."""
    validate(segments)
    placed = soap.place(utterances(sentences(segments)))
    return Summary(note=soap.note_from(placed), facts=facts.extract(placed))
