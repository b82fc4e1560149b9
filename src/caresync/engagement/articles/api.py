"""Health article endpoints under ``/api/v1/articles``: search, write, publish and archive, read one with its
sanitised HTML, and the signed-in reader's personalised feed."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from caresync.core.pagination import MAX_LIMIT
from caresync.engagement.articles import service
from caresync.engagement.articles.schemas import (
    ArticleCard,
    ArticleIn,
    ArticleOut,
    ArticlePage,
    ArticlePatch,
    SuggestionOut,
)
from caresync.engagement.rules import ARTICLE_STATUSES, TOPICS
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/articles", tags=["articles"])

TOPIC_HELP = f"one of: {', '.join(TOPICS)}"
STATUS_HELP = (
    f"one of: {', '.join(ARTICLE_STATUSES)} (drafts and archived articles: writers, those they may edit)"
)


@router.get("", response_model=ArticlePage)
def search(
    principal: CurrentUser,
    db: Db,
    q: Annotated[
        str, Query(max_length=100, description="words in the title, summary, text or keywords")
    ] = "",
    topic: Annotated[str, Query(max_length=20, description=TOPIC_HELP)] = "",
    status_: Annotated[str, Query(alias="status", max_length=20, description=STATUS_HELP)] = "published",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ArticlePage:
    """Articles matching the search, newest first."""
    query = service.ArticleQuery(q=q, topic=topic, status=status_)
    page = service.search(db, principal, query, limit=limit, cursor=cursor)
    out = ArticlePage(items=[ArticleCard.of(a) for a in page.items], next_cursor=page.next_cursor)
    db.commit()
    return out


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ArticleOut)
def create(body: ArticleIn, principal: CurrentUser, db: Db) -> ArticleOut:
    """Write an article (a draft unless ``publish``). Staff who write articles only."""
    article = service.create(db, principal, body.data(), publish=body.publish)
    out = ArticleOut.of(article)
    db.commit()
    return out


@router.get("/feed", response_model=list[SuggestionOut])
def feed(
    principal: CurrentUser, db: Db, limit: Annotated[int, Query(ge=1, le=service.FEED_MAX)] = 3
) -> list[SuggestionOut]:
    """Articles suggested to the signed-in reader: for patients, matched to the conditions and medications
    in their own record, each with the reason."""
    out = [SuggestionOut.of(s) for s in service.feed(db, principal, limit)]
    db.commit()  # a patient's feed reads their record: the read is audited
    return out


@router.get("/{slug}", response_model=ArticleOut)
def read(slug: Annotated[str, Path(max_length=120)], principal: CurrentUser, db: Db) -> ArticleOut:
    """One article with its sanitised HTML (drafts and archived ones only for those who may edit them)."""
    out = ArticleOut.of(service.get_by_slug(db, principal, slug))
    db.commit()
    return out


@router.patch("/{article_id}", response_model=ArticleOut)
def update(article_id: uuid.UUID, body: ArticlePatch, principal: CurrentUser, db: Db) -> ArticleOut:
    """Change an article (its author, or an administrator of the author's organisation)."""
    out = ArticleOut.of(service.update(db, principal, article_id, body.data()))
    db.commit()
    return out


@router.post("/{article_id}/publish", response_model=ArticleOut)
def publish(article_id: uuid.UUID, principal: CurrentUser, db: Db) -> ArticleOut:
    """Make the article visible to readers."""
    out = ArticleOut.of(service.publish(db, principal, article_id))
    db.commit()
    return out


@router.post("/{article_id}/archive", response_model=ArticleOut)
def archive(article_id: uuid.UUID, principal: CurrentUser, db: Db) -> ArticleOut:
    """Withdraw the article from readers (it can be published again)."""
    out = ArticleOut.of(service.archive(db, principal, article_id))
    db.commit()
    return out
