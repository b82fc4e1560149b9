"""Template hygiene that rendering alone would not reveal."""

from __future__ import annotations

import re
from pathlib import Path

import caresync.web

TEMPLATES = Path(caresync.web.__file__).parent / "templates"
CSRF_IMPORT = re.compile(r"{%-?\s*from\s+\"macros.html\"\s+import\s+[^%]*\bcsrf\b[^%]*%}")


def test_forms_get_their_csrf_token() -> None:
    """The ``csrf`` macro reads the page's ``csrf_token``, which Jinja passes to imported macros only
    ``with context``; without it every form posts an empty token and is refused with 403."""
    missing = [
        str(path.relative_to(TEMPLATES))
        for path in sorted(TEMPLATES.rglob("*.html"))
        for statement in CSRF_IMPORT.findall(path.read_text())
        if "with context" not in statement
    ]
    assert missing == []
