"""Article use cases: write, edit, publish and archive health articles; search them; and suggest them to a
patient from their own record.

Who does what:
- Anyone with ``ARTICLE_WRITE`` (administrators, doctors, nurses, pharmacists) writes articles.
- An article is edited, published and archived by its author or by an administrator of the author's
  organisation (editorial oversight), nobody else: a colleague's article is not theirs to change.
- Readers (``ARTICLE_READ``) see published articles only. Drafts and archived articles exist only for
  those who may edit them (everyone else gets 404).
- The slug follows the title until the article is first published, then never changes (links stay valid).

Articles are not patient data, but every write is audited. The feed reads the patient's own diagnosis and
medication records and active prescriptions, once per computation, audited as ``article.feed``.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, String, cast, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from caresync.core import audit
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from caresync.core.pagination import Page, paginate
from caresync.core.rbac import Perm, has_perm, require
from caresync.core.text import clean_line, clean_text
from caresync.db import utcnow
from caresync.engagement.models import Article
from caresync.engagement.rules import ARTICLE_STATUSES, TOPICS
from caresync.identity.models import User
from caresync.prescriptions.models import Prescription
from caresync.prescriptions.rules import Status as PrescriptionStatus
from caresync.records.consent import read_scope
from caresync.records.models import HealthRecord

TITLE_MIN, TITLE_MAX = 5, 200
SUMMARY_MAX = 500
BODY_MAX_BYTES = 100_000
MAX_KEYWORDS, KEYWORD_MAX = 30, 40
SLUG_MAX = 100  # leaves room for a "-NN" suffix within the column's 120 characters
_SLUG = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*", re.ASCII)
RESERVED_SLUGS = frozenset({"feed", "new", "preview"})  # fixed paths beside /articles/{slug}
FEED_TOPIC = "wellness"  # the fallback when nothing in the record matches
FEED_MAX = 20
MIN_WORD_KEYWORD = 3  # shorter keywords would match too much by accident


@dataclass(frozen=True)
class ArticleInput:
    """What a writer sends; ``None`` leaves a field unchanged when editing."""

    title: str | None = None
    summary: str | None = None
    body_markdown: str | None = None
    topics: Sequence[str] | None = None
    keywords: Sequence[str] | None = None


@dataclass(frozen=True)
class ArticleQuery:
    """Search criteria: text ``q`` (title, summary, body and keywords, case-insensitive), a topic, and the
    status (writers only: their drafts or archived articles)."""

    q: str = ""
    topic: str = ""
    status: str = "published"


# --- validation ---------------------------------------------------------------------------------------------


def check_title(value: str) -> str:
    """The title on one line, 5 to 200 characters."""
    title = clean_line(value)
    if not TITLE_MIN <= len(title) <= TITLE_MAX:
        raise ValidationFailed(
            f"The title needs {TITLE_MIN} to {TITLE_MAX} characters.", extra={"field": "title"}
        )
    return title


def check_summary(value: str) -> str:
    """An optional one-line summary of up to 500 characters."""
    summary = clean_line(value)
    if len(summary) > SUMMARY_MAX:
        raise ValidationFailed(
            f"Keep the summary under {SUMMARY_MAX} characters.", extra={"field": "summary"}
        )
    return summary


def check_body(value: str) -> str:
    """The Markdown text: not empty, at most 100 kB."""
    body = clean_text(value)
    if not body:
        raise ValidationFailed("Write the article's text.", extra={"field": "body_markdown"})
    if len(body.encode()) > BODY_MAX_BYTES:
        raise ValidationFailed(
            f"The text is longer than {BODY_MAX_BYTES // 1000} kB; split it into several articles.",
            extra={"field": "body_markdown"},
        )
    return body


def check_topics(values: Iterable[str]) -> list[str]:
    """Known topic codes, at least one, in the vocabulary's order."""
    chosen = {v.strip() for v in values if v.strip()}
    unknown = sorted(chosen - TOPICS.keys())
    if unknown:
        raise ValidationFailed(
            f"Unknown topic {unknown[0]!r}; choose from {', '.join(TOPICS)}.", extra={"field": "topics"}
        )
    if not chosen:
        raise ValidationFailed("Choose at least one topic.", extra={"field": "topics"})
    return [code for code in TOPICS if code in chosen]


def normalise_keywords(values: Iterable[str]) -> list[str]:
    """Keywords in lower case with single spaces, without blanks or repeats, in the order given: at most
    30, each at most 40 characters."""
    keywords: list[str] = []
    for value in values:
        keyword = clean_line(value).lower()
        if not keyword or keyword in keywords:
            continue
        if len(keyword) > KEYWORD_MAX:
            raise ValidationFailed(
                f"Keyword {keyword[:20]!r}… is longer than {KEYWORD_MAX} characters.",
                extra={"field": "keywords"},
            )
        keywords.append(keyword)
    if len(keywords) > MAX_KEYWORDS:
        raise ValidationFailed(f"Use at most {MAX_KEYWORDS} keywords.", extra={"field": "keywords"})
    return keywords


def slugify(title: str) -> str:
    """A URL-friendly form of the title: ASCII letters and digits joined by hyphens."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:SLUG_MAX].rstrip("-") or "article"


def _free_slug(session: Session, base: str, article_id: uuid.UUID | None) -> str:
    """``base``, or ``base-2``, ``base-3``… whichever no other article uses (reserved words never)."""
    query = select(Article.slug).where(Article.slug.startswith(base, autoescape=True))
    if article_id is not None:
        query = query.where(Article.id != article_id)
    taken = set(session.execute(query).scalars()) | RESERVED_SLUGS
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


# --- permissions --------------------------------------------------------------------------------------------


def may_edit(principal: Principal, article: Article) -> bool:
    """Whether the principal may edit, publish and archive the article: its author, or an administrator of
    the author's organisation."""
    if not has_perm(principal, Perm.ARTICLE_WRITE):
        return False
    if article.author_id == principal.user_id:
        return True
    return principal.role == "admin" and article.author.organisation_id == principal.organisation_id


def _editable(session: Session, principal: Principal, article_id: uuid.UUID, action: str) -> Article:
    """The article, if the principal may change it: 403 for roles that never write, 404 for an article they
    cannot see, 403 for a published one that is not theirs to change (all audited)."""
    require(session, principal, Perm.ARTICLE_WRITE, action)
    article = session.get(Article, article_id)
    if article is not None and may_edit(principal, article):
        return article
    audit.record_and_commit(
        session, principal, action, outcome="denied", resource_type="Article", resource_id=article_id
    )
    if article is not None and article.status == "published":
        raise Forbidden("Only the author or an administrator of their organisation may change this article.")
    raise NotFound("No such article.")


def _record(session: Session, principal: Principal, action: str, article: Article) -> None:
    audit.record(
        session,
        principal,
        action,
        resource_type="Article",
        resource_id=article.id,
        detail={"slug": article.slug, "status": article.status},
    )


# --- writing ------------------------------------------------------------------------------------------------


def create(session: Session, principal: Principal, data: ArticleInput, *, publish: bool = False) -> Article:
    """A new article by the principal (a draft unless ``publish``)."""
    require(session, principal, Perm.ARTICLE_WRITE, "article.create")
    assert principal.user_id is not None  # articles have a person as author; system actors write none
    article = Article(
        title=check_title(data.title or ""),
        summary=check_summary(data.summary or ""),
        body_markdown=check_body(data.body_markdown or ""),
        topics=check_topics(data.topics or ()),
        keywords=normalise_keywords(data.keywords or ()),
        status="draft",
        author_id=principal.user_id,
    )
    if publish:
        _publish_fields(article)
    _save_with_slug(session, article)
    _record(session, principal, "article.create", article)
    return article


def update(session: Session, principal: Principal, article_id: uuid.UUID, data: ArticleInput) -> Article:
    """Change the given fields. The slug follows a new title until the article was first published."""
    article = _editable(session, principal, article_id, "article.update")
    if data.title is not None:
        article.title = check_title(data.title)
    if data.summary is not None:
        article.summary = check_summary(data.summary)
    if data.body_markdown is not None:
        article.body_markdown = check_body(data.body_markdown)
    if data.topics is not None:
        article.topics = check_topics(data.topics)
    if data.keywords is not None:
        article.keywords = normalise_keywords(data.keywords)
    _save_with_slug(session, article)
    _record(session, principal, "article.update", article)
    return article


def publish(session: Session, principal: Principal, article_id: uuid.UUID) -> Article:
    """Make a draft (or an archived article) visible to readers. Publishing twice changes nothing."""
    article = _editable(session, principal, article_id, "article.publish")
    if article.status != "published":
        _publish_fields(article)
        _save_with_slug(session, article)
        _record(session, principal, "article.publish", article)
    return article


def archive(session: Session, principal: Principal, article_id: uuid.UUID) -> Article:
    """Withdraw an article from readers (it can be published again). Archiving twice changes nothing."""
    article = _editable(session, principal, article_id, "article.archive")
    if article.status != "archived":
        article.status = "archived"
        session.flush()
        _record(session, principal, "article.archive", article)
    return article


def _publish_fields(article: Article) -> None:
    article.status = "published"
    if article.published_at is None:  # first publication; publishing again keeps the original date
        article.published_at = utcnow()


def _save_with_slug(session: Session, article: Article) -> None:
    """Flush the article, choosing its slug from the title while it has never been published. (Should a
    concurrent writer take the same slug first, the unique constraint refuses ours: 409, save again.)"""
    if article.published_at is None or not article.slug:
        article.slug = _free_slug(session, slugify(article.title), article.id)
    session.add(article)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict("Another article took this address a moment ago; save again.") from None


# --- reading ------------------------------------------------------------------------------------------------


def _editable_by(principal: Principal) -> ColumnElement[bool]:
    """The condition for the articles the principal may edit (see :func:`may_edit`)."""
    if principal.role == "admin" and principal.organisation_id is not None:
        authors = select(User.id).where(User.organisation_id == principal.organisation_id)
        return Article.author_id.in_(authors)
    return Article.author_id == principal.user_id


def search(
    session: Session, principal: Principal, query: ArticleQuery, *, limit: int = 20, cursor: str | None = None
) -> Page[Article]:
    """Articles matching ``query``, newest first: published ones by publication time; a writer's drafts or
    archived articles (``status``) by their last change."""
    require(session, principal, Perm.ARTICLE_READ, "article.list")
    if query.status not in ARTICLE_STATUSES:
        raise ValidationFailed(
            f"Unknown status {query.status!r}; choose from {', '.join(ARTICLE_STATUSES)}.",
            extra={"field": "status"},
        )
    statement = select(Article).where(Article.status == query.status)
    if query.status != "published":
        if not has_perm(principal, Perm.ARTICLE_WRITE):
            raise Forbidden("Only article writers see drafts and archived articles.")
        statement = statement.where(_editable_by(principal))
    if query.topic:
        if query.topic not in TOPICS:
            raise ValidationFailed(f"Unknown topic {query.topic!r}.", extra={"field": "topic"})
        statement = statement.where(cast(Article.topics, String).like(f'%"{query.topic}"%'))
    text = clean_line(query.q).lower()[:100]
    if text:
        statement = statement.where(
            or_(
                *(
                    func.lower(column).contains(text, autoescape=True)
                    for column in (Article.title, Article.summary, Article.body_markdown)
                ),
                func.lower(cast(Article.keywords, String)).contains(text, autoescape=True),
            )
        )
    sort = Article.published_at if query.status == "published" else Article.updated_at
    return paginate(
        session,
        statement,
        sort_column=sort,
        id_column=Article.id,
        descending=True,
        limit=limit,
        cursor=cursor,
    )


def get_by_slug(session: Session, principal: Principal, slug: str) -> Article:
    """A published article, or a draft or archived one for those who may edit it (404 otherwise)."""
    require(session, principal, Perm.ARTICLE_READ, "article.read")
    if not _SLUG.fullmatch(slug):  # not one of ours (and nothing odd reaches the database)
        raise NotFound("No such article.")
    article = session.execute(select(Article).where(Article.slug == slug)).scalar_one_or_none()
    if article is None or (article.status != "published" and not may_edit(principal, article)):
        raise NotFound("No such article.")
    return article


def get_for_edit(session: Session, principal: Principal, article_id: uuid.UUID) -> Article:
    """An article the principal may edit (403/404, audited, otherwise)."""
    return _editable(session, principal, article_id, "article.edit")


# --- the patient's feed -------------------------------------------------------------------------------------

_ICD10 = re.compile(r"^[A-TV-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")
_ICD10_KEYWORD = re.compile(r"^[a-tv-z][0-9][0-9a-z](\.?[0-9a-z]{1,4})?$")
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Mention:
    """Something the patient's record mentions: a condition or a medication, as shown to the patient."""

    label: str  # "Metformin", "Type 2 diabetes mellitus without complications"
    words: str  # the text's lower-case words, space-separated and space-padded, for whole-word matching
    code: str = ""  # the ICD-10 code without its dot, lower case ("e119"), for conditions


@dataclass(frozen=True)
class Suggestion:
    """An article suggested to the patient and the parts of their record it matches (none: a general pick
    because nothing matched)."""

    article: Article
    matches: tuple[str, ...] = ()

    @property
    def why(self) -> str:
        """Why it was suggested, for the patient."""
        if not self.matches:
            return f"New in {TOPICS[FEED_TOPIC].lower()}"
        names = list(self.matches)
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        return f"Because your record mentions {listed}"


def _words(text: str) -> str:
    return " " + " ".join(_WORD.findall(text.lower())) + " "


def condition_mention(title: str) -> Mention:
    """A diagnosis record's title ("E11.9 Type 2 diabetes mellitus …") as a mention."""
    first, _, rest = title.strip().partition(" ")
    if _ICD10.match(first.upper()):
        name = rest.strip() or first
        return Mention(label=name, words=_words(name), code=first.lower().replace(".", ""))
    return Mention(label=title.strip(), words=_words(title))


def medication_mention(title: str) -> Mention:
    """A medication (a prescription's drug name, or a medication record's title such as "Metformin 1000 mg
    tablets (started)") as a mention labelled with the drug's name: the words before the strength."""
    name_words: list[str] = []
    for word in title.split():
        if any(c.isdigit() for c in word) or word.startswith("("):
            break
        name_words.append(word)
    label = " ".join(name_words) or title.strip()
    return Mention(label=label, words=_words(title))


def keyword_matches(keyword: str, mention: Mention) -> bool:
    """Whether an article keyword matches a mention: an ICD-10 code prefix ("e11" matches E11.9), or whole
    words of its text ("metformin" matches "Metformin 1000 mg tablets", "heart failure" a phrase)."""
    if mention.code and _ICD10_KEYWORD.match(keyword) and mention.code.startswith(keyword.replace(".", "")):
        return True
    phrase = " ".join(_WORD.findall(keyword))
    return len(phrase) >= MIN_WORD_KEYWORD and f" {phrase} " in mention.words


def match(keywords: Iterable[str], mentions: Iterable[Mention]) -> tuple[str, ...]:
    """The labels of the mentions any keyword matches, each once (ignoring case), in mention order."""
    keywords = list(keywords)
    found: dict[str, str] = {}
    for mention in mentions:
        if mention.label.lower() not in found and any(keyword_matches(k, mention) for k in keywords):
            found[mention.label.lower()] = mention.label
    return tuple(found.values())


@dataclass(frozen=True)
class Candidate:
    """A published article's place in the feed: how much of the record it matches, and how new it is."""

    article_id: uuid.UUID
    published_at: datetime
    matches: tuple[str, ...]


def rank(candidates: Iterable[Candidate], limit: int) -> list[Candidate]:
    """The candidates with matches, most matches first, then the most recently published."""
    matched = [c for c in candidates if c.matches]
    matched.sort(key=lambda c: (len(c.matches), c.published_at, c.article_id.hex), reverse=True)
    return matched[:limit]


def _record_mentions(session: Session, patient_id: uuid.UUID) -> list[Mention]:
    """The patient's conditions and medications: current (not superseded) diagnosis and medication
    records, and active prescriptions."""
    successor = aliased(HealthRecord)
    current = ~exists().where(successor.supersedes_id == HealthRecord.id)
    records = session.execute(
        select(HealthRecord.category, HealthRecord.title)
        .where(
            HealthRecord.patient_id == patient_id,
            HealthRecord.category.in_(("diagnosis", "medication")),
            current,
        )
        .order_by(HealthRecord.recorded_on.desc(), HealthRecord.created_at.desc(), HealthRecord.id)
    ).all()
    drugs = session.execute(
        select(Prescription.medication_name).where(
            Prescription.patient_id == patient_id, Prescription.status == PrescriptionStatus.ACTIVE.value
        )
    ).scalars()
    mentions = [medication_mention(name) for name in drugs]
    for category, title in records:
        mentions.append(condition_mention(title) if category == "diagnosis" else medication_mention(title))
    return mentions


def feed(session: Session, principal: Principal, limit: int = 3) -> list[Suggestion]:
    """Published articles suggested to the signed-in reader. For a patient: those matching the conditions
    and medications of their own record, most matches first, then the newest; topped up (or, when nothing
    matches, replaced) by the newest wellness articles. Other readers get the newest wellness articles."""
    require(session, principal, Perm.ARTICLE_READ, "article.feed")
    if not 1 <= limit <= FEED_MAX:
        raise ValidationFailed(f"limit must be between 1 and {FEED_MAX}.", extra={"field": "limit"})
    suggestions: list[Suggestion] = []
    if principal.role == "patient" and principal.patient_id is not None:
        scope = read_scope(session, principal, principal.patient_id, "article.feed")
        mentions = _record_mentions(session, principal.patient_id)
        published = session.execute(  # only what ranking needs, not the articles' text
            select(Article.id, Article.published_at, Article.keywords).where(Article.status == "published")
        )
        chosen = rank(
            (Candidate(row.id, row.published_at, match(row.keywords, mentions)) for row in published), limit
        )
        articles = {
            a.id: a
            for a in session.execute(
                select(Article).where(Article.id.in_([c.article_id for c in chosen]))
            ).scalars()
        }
        suggestions = [Suggestion(articles[c.article_id], c.matches) for c in chosen]
        audit.record(
            session,
            principal,
            "article.feed",
            patient_id=principal.patient_id,
            resource_type="Article",
            detail={"mentions": len(mentions), "matched": len(suggestions)},
            flagged=scope.break_glass,
        )
    if len(suggestions) < limit:
        suggestions += _newest_wellness(
            session, {s.article.id for s in suggestions}, limit - len(suggestions)
        )
    return suggestions


def _newest_wellness(session: Session, excluding: set[uuid.UUID], limit: int) -> list[Suggestion]:
    statement = (
        select(Article)
        .where(Article.status == "published", cast(Article.topics, String).like(f'%"{FEED_TOPIC}"%'))
        .order_by(Article.published_at.desc(), Article.id.desc())
        .limit(limit + len(excluding))
    )
    fresh = [a for a in session.execute(statement).scalars() if a.id not in excluding]
    return [Suggestion(article) for article in fresh[:limit]]
