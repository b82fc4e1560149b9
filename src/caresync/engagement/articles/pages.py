"""Health article pages: the library with live search and topic chips, one article, the writing form with a
live Markdown preview, publish and archive, and the patient dashboard's "suggested for you" panel (an HTMX
fragment). Thin: they parse forms and call the same service as the API."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from caresync.core.auth import Principal
from caresync.core.errors import DomainError, Forbidden
from caresync.core.rbac import Perm, has_perm
from caresync.engagement.articles import service
from caresync.engagement.articles.markdown import excerpt, render_markdown
from caresync.engagement.models import Article
from caresync.engagement.rules import TOPICS
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import PageUser, domain_field_errors, is_htmx, redirect, render_page

router = APIRouter(include_in_schema=False)
DIR = "articles"
PAGE_SIZE = 12
PANEL_SIZE = 3
STATUS_TABS = (("published", "Published"), ("draft", "Drafts"), ("archived", "Archived"))


# --- the library --------------------------------------------------------------------------------------------


@router.get("/articles", response_class=HTMLResponse)
def library(request: Request, principal: PageUser, db: Db) -> HTMLResponse:
    """Search the articles (HTMX requests get just the results): text, topic chips and, for writers, their
    drafts and archived articles."""
    params = request.query_params
    writer = has_perm(principal, Perm.ARTICLE_WRITE)
    values = {
        "q": params.get("q", "")[:100],
        "topic": params.get("topic", "") if params.get("topic", "") in TOPICS else "",
        "status": params.get("status", "published") if writer else "published",
    }
    errors: dict[str, str] = {}
    cards: list[dict[str, Any]] = []
    next_url = ""
    try:
        query = service.ArticleQuery(q=values["q"], topic=values["topic"], status=values["status"])
        page = service.search(db, principal, query, limit=PAGE_SIZE, cursor=params.get("cursor") or None)
        cards = [_card(article) for article in page.items]
        if page.next_cursor:
            next_url = f"/articles?{urlencode({**values, 'cursor': page.next_cursor})}"
    except DomainError as exc:
        db.rollback()
        if exc.status in (401, 403):
            raise
        errors = domain_field_errors(exc)
    context = {
        "values": values,
        "errors": errors,
        "cards": cards,
        "next_url": next_url,
        "first_url": f"/articles?{urlencode(values)}" if params.get("cursor") else "",
        "topics": list(TOPICS.items()),
        "writer": writer,
        "status_tabs": STATUS_TABS,
    }
    template = f"{DIR}/_results.html" if is_htmx(request) else f"{DIR}/list.html"
    return render_page(request, db, principal, template, context)


def _card(article: Article) -> dict[str, Any]:
    return {
        "article": article,
        "text": article.summary or excerpt(article.body_markdown),
        "topics": [TOPICS[t] for t in article.topics if t in TOPICS],
    }


# --- writing ------------------------------------------------------------------------------------------------


def _require_writer(principal: Principal) -> None:
    if not has_perm(principal, Perm.ARTICLE_WRITE):
        raise Forbidden("Your role does not write articles.")


def _form_values(article: Article | None) -> dict[str, str]:
    if article is None:
        return {"title": "", "summary": "", "body_markdown": "", "keywords": ""}
    values = {
        "title": article.title,
        "summary": article.summary,
        "body_markdown": article.body_markdown,
        "keywords": ", ".join(article.keywords),
    }
    values.update({f"topic_{code}": "1" for code in article.topics})
    return values


def _input(values: dict[str, str]) -> service.ArticleInput:
    return service.ArticleInput(
        title=values.get("title", "")[:1000],
        summary=values.get("summary", "")[:2000],
        body_markdown=values.get("body_markdown", ""),
        topics=[code for code in TOPICS if values.get(f"topic_{code}")],
        keywords=values.get("keywords", "")[:5000].split(","),
    )


def _editor(
    request: Request,
    db: Session,
    principal: Principal,
    article: Article | None,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = {
        "article": article,
        "values": values,
        "errors": errors or {},
        "topics": list(TOPICS.items()),
        "preview": render_markdown(values.get("body_markdown", "")),
        "limits": {"title": service.TITLE_MAX, "summary": service.SUMMARY_MAX},
    }
    return render_page(request, db, principal, f"{DIR}/edit.html", context, status_code)


def _save(
    request: Request,
    db: Session,
    principal: Principal,
    article: Article | None,
    values: dict[str, str],
) -> Response:
    """Create or update from the form, then publish if asked; errors go back to the form (422)."""
    try:
        if article is None:
            saved = service.create(db, principal, _input(values), publish=values.get("action") == "publish")
        else:
            saved = service.update(db, principal, article.id, _input(values))
            if values.get("action") == "publish":
                saved = service.publish(db, principal, article.id)
    except DomainError as exc:
        db.rollback()
        if exc.status in (401, 403, 404):
            raise
        current = service.get_for_edit(db, principal, article.id) if article is not None else None
        return _editor(request, db, principal, current, values, domain_field_errors(exc), exc.status)
    slug = saved.slug
    db.commit()
    return redirect(f"/articles/{slug}?saved=1")


@router.get("/articles/new", response_class=HTMLResponse)
def new_article(request: Request, principal: PageUser, db: Db) -> HTMLResponse:
    """The writing form for a new article."""
    _require_writer(principal)
    return _editor(request, db, principal, None, _form_values(None))


@router.post("/articles/new", response_model=None)
def create_article(request: Request, principal: PageUser, db: Db, values: FormValues) -> Response:
    """Save a new article as a draft, or publish it at once."""
    _require_writer(principal)
    return _save(request, db, principal, None, values)


@router.post("/articles/preview", response_class=HTMLResponse)
def preview(request: Request, principal: PageUser, db: Db, values: FormValues) -> HTMLResponse:
    """The Markdown being written, rendered and sanitised exactly as readers will see it (HTMX)."""
    _require_writer(principal)
    body = values.get("body_markdown", "")
    too_long = len(body.encode()) > service.BODY_MAX_BYTES
    context = {"preview": "" if too_long else render_markdown(body), "too_long": too_long}
    return render_page(request, db, principal, f"{DIR}/_preview.html", context)


# --- the patient's suggestions ------------------------------------------------------------------------------


@router.get("/articles/feed/panel", response_class=HTMLResponse)
def feed_panel(request: Request, principal: PageUser, db: Db) -> HTMLResponse:
    """The top suggestions for the signed-in reader, with why (a fragment for the patient dashboard)."""
    suggestions = service.feed(db, principal, PANEL_SIZE)
    items = [{"card": _card(s.article), "why": s.why, "personal": bool(s.matches)} for s in suggestions]
    return render_page(request, db, principal, f"{DIR}/_feed_panel.html", {"suggestions": items})


# --- one article --------------------------------------------------------------------------------------------


@router.get("/articles/{slug}", response_class=HTMLResponse)
def read_article(request: Request, slug: str, principal: PageUser, db: Db, saved: int = 0) -> HTMLResponse:
    """One article, rendered and sanitised; its editors also see its status and actions."""
    article = service.get_by_slug(db, principal, slug)
    context = {
        "article": article,
        "body_html": render_markdown(article.body_markdown),
        "topics": [TOPICS[t] for t in article.topics if t in TOPICS],
        "editable": service.may_edit(principal, article),
        "saved": saved,
    }
    return render_page(request, db, principal, f"{DIR}/article.html", context)


@router.get("/articles/{article_id}/edit", response_class=HTMLResponse)
def edit_article(request: Request, article_id: uuid.UUID, principal: PageUser, db: Db) -> HTMLResponse:
    """The writing form for an existing article (its author or an administrator of their organisation)."""
    article = service.get_for_edit(db, principal, article_id)
    return _editor(request, db, principal, article, _form_values(article))


@router.post("/articles/{article_id}/edit", response_model=None)
def update_article(
    request: Request, article_id: uuid.UUID, principal: PageUser, db: Db, values: FormValues
) -> Response:
    """Save changes (and publish, if asked)."""
    article = service.get_for_edit(db, principal, article_id)
    return _save(request, db, principal, article, values)


@router.post("/articles/{article_id}/publish", response_model=None)
def publish_article(article_id: uuid.UUID, principal: PageUser, db: Db) -> Response:
    """Publish a draft or an archived article."""
    slug = service.publish(db, principal, article_id).slug
    db.commit()
    return redirect(f"/articles/{slug}?saved=1")


@router.post("/articles/{article_id}/archive", response_model=None)
def archive_article(article_id: uuid.UUID, principal: PageUser, db: Db) -> Response:
    """Withdraw an article from readers (after the page asked for confirmation)."""
    slug = service.archive(db, principal, article_id).slug
    db.commit()
    return redirect(f"/articles/{slug}?saved=1")
