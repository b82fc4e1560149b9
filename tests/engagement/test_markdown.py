"""Article Markdown: every injection attempt comes out inert (as text, or stripped), on both layers (the
Markdown renderer with raw HTML off, and the nh3 allow-list behind it); ordinary Markdown renders; excerpts
are plain text."""

from __future__ import annotations

import re

import pytest

from caresync.engagement.articles.markdown import excerpt, render_markdown, sanitise_html

pytestmark = pytest.mark.no_db

# (id, Markdown an author might write, what must not appear inside any tag of the result: shown as text it
# is harmless)
INJECTIONS = [
    ("script-tag", "<script>alert('x')</script>", "<script"),
    ("img-onerror", '<img src="x" onerror="alert(1)">', "<img"),
    ("javascript-link", "[click](javascript:alert(1))", "href"),
    ("javascript-link-upper", "[click](JaVaScRiPt:alert(1))", "href"),
    ("javascript-link-spaced", "[click](<  javascript:alert(1)>)", "href"),
    ("data-url-svg-image", "![x](data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=)", "data:"),
    ("data-url-png-image", "![x](data:image/png;base64,iVBORw0KGgo=)", "data:"),
    ("data-url-link", "[x](data:text/html,<script>alert(1)</script>)", "href"),
    ("raw-html-block", '<div onclick="alert(1)">\n\n**hi**\n\n</div>', "<div"),
    ("iframe", '<iframe src="https://evil.example"></iframe>', "<iframe"),
    ("style-attribute", '<p style="background:url(javascript:alert(1))">x</p>', "<p style"),
    ("entity-encoded-javascript", "[x](&#106;&#97;vascript:alert(1))", "href"),
    ("hex-entity-javascript", "[x](jav&#x61;script:alert(1))", "href"),
    ("reference-link-javascript", "[x][a]\n\n[a]: javascript:alert(1)", "href"),
    ("autolink-javascript", "<javascript:alert(1)>", "href"),
    ("vbscript-link", "[x](vbscript:msgbox(1))", "href"),
    ("svg-onload", '<svg onload="alert(1)"></svg>', "<svg"),
    ("object-embed", '<object data="x.swf"></object><embed src="x.swf">', "<object"),
    ("html-comment", "<!-- <script>alert(1)</script> -->", "<!--"),
    ("image-title-breakout", '![x](/a.png "a\\" onerror=\\"alert(1))', "onerror="),
]


@pytest.mark.parametrize(("source", "forbidden"), [c[1:] for c in INJECTIONS], ids=[c[0] for c in INJECTIONS])
def test_injection_comes_out_inert(source: str, forbidden: str) -> None:
    html = render_markdown(source)
    markup = " ".join(re.findall(r"<[^>]*>", html))
    assert forbidden.lower() not in markup.lower(), html
    _assert_no_live_markup(html)


# The same attacks as raw HTML reaching the sanitiser directly (the second layer, should the first change)
RAW_HTML = [
    ("script", "<p>a</p><script>alert(1)</script>", "<p>a</p>"),
    ("img-onerror", '<img src="https://x.org/a.png" onerror="alert(1)">', None),
    ("javascript-href", '<a href="javascript:alert(1)">x</a>', '<a rel="noopener noreferrer nofollow">x</a>'),
    ("entity-javascript-href", '<a href="&#106;avascript:alert(1)">x</a>', None),
    ("data-src", '<img src="data:image/png;base64,AAAA">', None),
    ("http-image", '<img src="http://x.org/a.png">', None),
    ("protocol-relative-image", '<img src="//x.org/a.png">', None),
    ("iframe", '<iframe src="https://x.org"></iframe>ok', "ok"),
    ("style-tag", "<style>body{display:none}</style>ok", "ok"),
    ("style-attribute", '<p style="color:red">x</p>', "<p>x</p>"),
    ("table-cell-style", '<td style="color:red;text-align:left">x</td>', None),
    ("form", '<form action="/x"><input name="a"><button>go</button></form>', None),
    ("class-and-id", '<p class="alert" id="main">x</p>', "<p>x</p>"),
]


@pytest.mark.parametrize(("html", "expected"), [c[1:] for c in RAW_HTML], ids=[c[0] for c in RAW_HTML])
def test_sanitiser_strips_raw_html(html: str, expected: str | None) -> None:
    clean = sanitise_html(html)
    _assert_no_live_markup(clean)
    for forbidden in ("<script", "<iframe", "<style", "<form", "<input", "<button", "class=", "id=", "color"):
        assert forbidden not in clean
    if expected is not None:
        assert clean == expected


def _assert_no_live_markup(html: str) -> None:
    tags = re.findall(r"<\s*([a-zA-Z0-9]+)([^>]*)>", html)
    for name, attributes in tags:
        assert name.lower() in {
            "p", "a", "img", "em", "strong", "code", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol",
            "li", "blockquote", "table", "thead", "tbody", "tr", "th", "td", "hr", "br",
        }, name  # fmt: skip
        assert not re.search(r"\bon\w+\s*=", attributes), attributes
        for url in re.findall(r'(?:href|src)="([^"]*)"', attributes):
            assert re.match(r"^(https?:|mailto:|/|#|[\w.-]+(/|$))", url), url
        if "style=" in attributes:
            assert re.fullmatch(r'\s*style="text-align:(left|right|center)"\s*', attributes), attributes


def test_ordinary_markdown_renders() -> None:
    source = (
        "## Taking metformin\n\nTake it **with meals**, *every day*, see [the leaflet](https://example.org/x)"
        " or [contact us](mailto:pharmacy@example.org) or [this page](/articles/other).\n\n"
        "1. First\n2. Second\n\n- a\n- b\n\n> A quote\n\n`code` and\n\n```\nblock <b>\n```\n\n---\n\n"
        "| Drug | Dose |\n|:--|--:|\n| Metformin | 500 mg |\n\n![Inhaler](https://example.org/i.png)\n\n"
        "line one  \nline two"
    )
    html = render_markdown(source)
    for fragment in (
        "<h2>Taking metformin</h2>",
        "<strong>with meals</strong>",
        "<em>every day</em>",
        '<a href="https://example.org/x" rel="noopener noreferrer nofollow">the leaflet</a>',
        '<a href="mailto:pharmacy@example.org" rel="noopener noreferrer nofollow">contact us</a>',
        '<a href="/articles/other" rel="noopener noreferrer nofollow">this page</a>',
        "<ol>\n<li>First</li>",
        "<ul>\n<li>a</li>",
        "<blockquote>\n<p>A quote</p>\n</blockquote>",
        "<code>code</code>",
        "<pre><code>block &lt;b&gt;\n</code></pre>",
        "<hr>",
        '<th style="text-align:left">Drug</th>',
        '<td style="text-align:right">500 mg</td>',
        "line one<br>",
    ):
        assert fragment in html, fragment
    assert re.search(r'<img[^>]* src="https://example.org/i.png"', html)
    assert 'alt="Inhaler"' in html
    assert 'referrerpolicy="no-referrer"' in html


def test_raw_html_is_shown_as_text() -> None:
    assert render_markdown("Use <b>bold</b> & more") == "<p>Use &lt;b&gt;bold&lt;/b&gt; &amp; more</p>\n"


def test_excerpt_is_plain_text_cut_at_a_word() -> None:
    source = "# Heading\n\nThis is **bold** &amp; <i>raw</i> text.\n\n```\ncode()\n```\n\n" + "word " * 100
    text = excerpt(source, 80)
    assert text.startswith("This is bold & <i>raw</i> text. word")
    assert "#" not in text
    assert "**" not in text
    assert "code()" not in text
    assert "Heading" not in text
    assert text.endswith("…")
    assert len(text) <= 81
    assert excerpt("Short text.") == "Short text."
