"""Imports every table so that ``metadata`` is complete (for Alembic and test set-up)."""

from __future__ import annotations

from caresync.analytics import models as analytics_models  # noqa: F401
from caresync.bloodbank import models as bloodbank_models  # noqa: F401
from caresync.core import audit, jobs, notify, signing, storage  # noqa: F401
from caresync.db import Base
from caresync.documents import models as documents_models  # noqa: F401
from caresync.documents.search import models as document_search_models  # noqa: F401
from caresync.engagement import models as engagement_models  # noqa: F401
from caresync.identity import models as identity_models  # noqa: F401
from caresync.identity.credentials import models as credential_models  # noqa: F401
from caresync.imaging import models as imaging_models  # noqa: F401
from caresync.prescriptions import models as prescriptions_models  # noqa: F401
from caresync.records import models as records_models  # noqa: F401
from caresync.scheduling import models as scheduling_models  # noqa: F401

metadata = Base.metadata
