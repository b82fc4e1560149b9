"""Request and response models for health articles and the patient's feed."""

from __future__ import annotations

import uuid
from dataclasses import fields
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from caresync.engagement.articles import service
from caresync.engagement.articles.markdown import excerpt, render_markdown
from caresync.engagement.models import Article
from caresync.engagement.rules import TOPICS

# Bounds at the edge are generous; the service applies the exact rules and explains what is wrong.
Title = Annotated[str, Field(max_length=1000)]
Summary = Annotated[str, Field(max_length=2000)]
Body = Annotated[str, Field(max_length=2 * service.BODY_MAX_BYTES)]
Topics = Annotated[list[Annotated[str, Field(max_length=40)]], Field(max_length=len(TOPICS) * 2)]
Keywords = Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=service.MAX_KEYWORDS * 2)]


def _article_input(body: ArticleIn | ArticlePatch) -> service.ArticleInput:
    """A request body as the service's input (fields left out of a patch stay ``None``: unchanged)."""
    return service.ArticleInput(**{f.name: getattr(body, f.name) for f in fields(service.ArticleInput)})


class ArticleIn(BaseModel):
    """A new article: a draft unless ``publish``."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    summary: Summary = ""
    body_markdown: Body
    topics: Topics = Field(description=f"one or more of: {', '.join(TOPICS)}")
    keywords: Keywords = Field(
        default_factory=list, description="ICD-10 code prefixes, drug names or words that match patients"
    )
    publish: bool = False

    def data(self) -> service.ArticleInput:
        """As the service's input."""
        return _article_input(self)


class ArticlePatch(BaseModel):
    """Changes to an article; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    summary: Summary | None = None
    body_markdown: Body | None = None
    topics: Topics | None = None
    keywords: Keywords | None = None

    def data(self) -> service.ArticleInput:
        """As the service's input."""
        return _article_input(self)


class ArticleCard(BaseModel):
    """An article in a list: everything but its text, with a short excerpt."""

    id: uuid.UUID
    slug: str
    title: str
    summary: str
    excerpt: str
    topics: list[str]
    keywords: list[str]
    status: str
    author_name: str
    published_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, article: Article) -> ArticleCard:
        """From a row."""
        return cls(
            id=article.id,
            slug=article.slug,
            title=article.title,
            summary=article.summary,
            excerpt=excerpt(article.body_markdown),
            topics=list(article.topics),
            keywords=list(article.keywords),
            status=article.status,
            author_name=article.author.full_name,
            published_at=article.published_at,
            updated_at=article.updated_at,
        )


class ArticleOut(ArticleCard):
    """A whole article: its Markdown and the sanitised HTML to show."""

    body_markdown: str
    body_html: str

    @classmethod
    def of(cls, article: Article) -> ArticleOut:
        """From a row, with the Markdown rendered and sanitised."""
        card = ArticleCard.of(article)
        return cls(
            **card.model_dump(),
            body_markdown=article.body_markdown,
            body_html=render_markdown(article.body_markdown),
        )


class ArticlePage(BaseModel):
    """A page of articles."""

    items: list[ArticleCard]
    next_cursor: str | None


class SuggestionOut(BaseModel):
    """An article suggested to the reader, and why."""

    article: ArticleCard
    why: str
    matches: list[str] = Field(description="what in the patient's record it matches (empty: a general pick)")

    @classmethod
    def of(cls, suggestion: service.Suggestion) -> SuggestionOut:
        """From the service's suggestion."""
        return cls(
            article=ArticleCard.of(suggestion.article), why=suggestion.why, matches=list(suggestion.matches)
        )
