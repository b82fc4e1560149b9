"""Safe Markdown for health articles: CommonMark (plus tables) with raw HTML disabled, then sanitised by nh3
against an explicit allow-list, so that nothing an author writes can run script in a reader's browser. Also
a plain-text excerpt for article cards."""

from __future__ import annotations

import html
import re
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS = frozenset(
    {
        *(f"h{level}" for level in range(1, 7)),
        "p",
        "ul",
        "ol",
        "li",
        "em",
        "strong",
        "a",
        "blockquote",
        "code",
        "pre",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "img",
        "hr",
        "br",
    }
)
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "th": {"style"},  # only text-align survives: see FILTERED_STYLE (markdown-it aligns table columns so)
    "td": {"style"},
}
FILTERED_STYLE = frozenset({"text-align"})
URL_SCHEMES = frozenset({"http", "https", "mailto"})
IMAGE_SCHEMES = ("https://",)
LINK_REL = "noopener noreferrer nofollow"
# Elements dropped together with their content (their text is never meant for the reader).
DROPPED_WITH_CONTENT = frozenset({"script", "style", "iframe", "object", "embed", "template", "noscript"})
EXCERPT_SKIPS = frozenset({"pre", *(f"h{level}" for level in range(1, 7))})  # code and headings read badly
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # "commonmark" with html off: raw HTML in the source is shown as text, never passed through
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    """Images load only over https or from this site (no ``//host`` URLs, which could be plain http)."""
    if tag == "img" and attribute == "src":
        if value.startswith(IMAGE_SCHEMES):
            return value
        if _SCHEME.match(value) or value.startswith("//") or value.startswith("\\"):
            return None
    return value


def sanitise_html(fragment: str) -> str:
    """``html`` reduced to the allow-list: article tags only, links to http, https, mailto or this site
    (opened with ``rel="noopener noreferrer nofollow"``), images from https or this site, no scripts, styles
    (other than table alignment), event handlers, frames, ``javascript:`` or ``data:`` URLs."""
    return nh3.clean(
        fragment,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_keep_attribute,
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        filter_style_properties=set(FILTERED_STYLE),
        set_tag_attribute_values={"img": {"loading": "lazy", "referrerpolicy": "no-referrer"}},
        strip_comments=True,
    )


def render_markdown(source: str) -> str:
    """The article's Markdown as sanitised HTML, safe to insert into a page as is."""
    return sanitise_html(_parser().render(source))


def excerpt(source: str, length: int = 200) -> str:
    """The article's text without Markdown, cut at a word boundary to about ``length`` characters (with an
    ellipsis when cut), for cards and search results."""
    rendered = _parser().render(source[: max(length * 20, 2000)])  # the opening is enough
    text = nh3.clean(rendered, tags=set(), clean_content_tags=set(EXCERPT_SKIPS))
    text = " ".join(html.unescape(text).split())
    if len(text) <= length:
        return text
    cut = text[: length + 1].rsplit(" ", 1)[0] if " " in text[:length] else text[:length]
    return cut.rstrip(" ,.;:-") + "…"
