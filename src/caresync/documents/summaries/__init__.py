"""Grounded, extractive summaries of consultation transcripts: a draft SOAP note and key facts, every
sentence and fact carrying the transcript segments it came from. Entry point: :func:`summarise`."""

from caresync.documents.summaries.render import render_markdown, render_text
from caresync.documents.summaries.summary import Summary, summarise
from caresync.documents.summaries.transcript import Segment

__all__ = ["Segment", "Summary", "render_markdown", "render_text", "summarise"]
