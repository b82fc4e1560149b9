"""Cleaning free text people type, before it is stored or compared."""

from __future__ import annotations


def clean_text(value: str) -> str:
    """Free text as stored: without control characters (a NUL cannot even be stored in PostgreSQL) other
    than line breaks and tabs, with Windows line ends made plain, and trimmed."""
    text = value.replace("\r\n", "\n")
    return "".join(c for c in text if c.isprintable() or c in "\n\t").strip()


def clean_line(value: str) -> str:
    """A one-line text (a title, a subject, a label): :func:`clean_text` with all runs of white space made
    one space."""
    return " ".join(clean_text(value).split())
