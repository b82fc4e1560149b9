"""The demo's risk model: trained on the demo's synthetic encounters and made the default for everyone."""

from __future__ import annotations

from sqlalchemy.orm import Session

from caresync.analytics.data import encounter_frame
from caresync.analytics.risk import service, store

DEMO_TRAINING_ROWS = 6_000  # a stratified sample: the demo trains in seconds


def train_demo_model(session: Session) -> str:
    """Train a shared model on every encounter in the database (the demo's synthetic ones), store it with
    the "demonstration only" label and activate it as the default; returns its version."""
    frame = encounter_frame(session, organisation_ids=None)
    card = service.train_and_store(
        frame,
        organisation_id=None,
        synthetic=service.has_synthetic(session, None),
        max_rows=DEMO_TRAINING_ROWS,
    )
    version = str(card["version"])
    store.set_active(version, store.DEFAULT_SCOPE)
    return version
