"""Risk use cases: train a model on an organisation's encounters, list and activate versions, and a
patient's risk now.

Who may do what: administrators (``analytics:manage``) train and activate models for their organisation;
anyone with ``analytics:view`` lists the model cards (figures about a model, no patient); a patient's risk
goes through the patient access rule (``authorize_patient`` with ``analytics:view``: the doctors and nurses
caring for the patient), is audited with the patient's id, and is 404 for everyone else. An organisation
uses its own active version, else the default one (the demo's); models trained by one organisation are seen
and chosen only by it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import String, bindparam, exists, select, type_coerce
from sqlalchemy.orm import Session

from caresync.analytics.data import encounter_frame
from caresync.analytics.models import Encounter, EncounterDiagnosis
from caresync.analytics.risk import store
from caresync.analytics.risk.features import (
    CONDITION_GROUPS,
    FEATURE_NAMES,
    VITAL_DEFAULTS,
    age_at,
    encounter_table,
    features_at,
    patient_features,
    patient_history,
    training_set,
)
from caresync.analytics.risk.model import (
    CV_FOLDS,
    DISAGREEMENT,
    HIDDEN_LAYERS,
    LEVEL_THRESHOLDS,
    MAX_DEPTH,
    MLP_ALPHA,
    SEED,
    TEST_SIZE,
    TREES,
    Progress,
    RiskModel,
    RiskResult,
    cap_rows,
    predict,
    train,
)
from caresync.core import audit
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, Forbidden, NotFound
from caresync.core.rbac import (
    CLINICIANS,
    Perm,
    authorize_patient,
    cared_for_patient_ids,
    patient_access,
    require,
)
from caresync.db import utcnow
from caresync.identity.models import Patient

DEMO_LABEL = "demonstration only - not for clinical use"
INTENDED_USE = (
    "Estimates the probability that a patient's next encounter ends in admission or death, from their age, "
    "sex, earlier diagnoses, visits, adverse outcomes and last vital signs, to help clinicians decide whom "
    "to review first. Decision support only: it never replaces clinical judgement, and it is only as good "
    "as the encounters it was trained on."
)
MAX_TRAINING_ROWS = 20_000  # encounters sampled (stratified) for training, to keep a training run short


@dataclass(frozen=True)
class PatientRisk:
    """A patient's risk now, with the model version and card label that produced it."""

    patient_id: uuid.UUID
    computed_at: datetime
    version: str
    label: str | None  # the card's "demonstration only" label, when trained on synthetic data
    result: RiskResult


RISK_ACTION = "analytics.risk.patient"
# One patient's encounter rows (features.ROW_COLUMNS): the rows encounter_frame gives (encounters with their
# diagnoses), through the (patient_id, started_at) index; built once, so SQLAlchemy's compiled cache hits.
HISTORY_QUERY = (
    select(
        type_coerce(Encounter.id, String),
        Encounter.started_at,
        Encounter.outcome,
        EncounterDiagnosis.code,
        *(getattr(Encounter, vital) for vital in VITAL_DEFAULTS),
    )
    .join(EncounterDiagnosis, EncounterDiagnosis.encounter_id == Encounter.id)
    .where(Encounter.patient_id == bindparam("patient_id", type_=Encounter.patient_id.type))
)


def fingerprint(features: pd.DataFrame, labels: pd.Series) -> str:
    """SHA-256 of the training matrix and labels: the same data gives the same fingerprint."""
    digest = hashlib.sha256()
    digest.update(",".join(features.columns).encode())
    digest.update(np.ascontiguousarray(features.to_numpy(dtype=float)).tobytes())
    digest.update(np.ascontiguousarray(labels.to_numpy(dtype=np.int64)).tobytes())
    return digest.hexdigest()


def train_and_store(
    frame: pd.DataFrame,
    *,
    organisation_id: uuid.UUID | None,
    synthetic: bool,
    progress: Progress | None = None,
    max_rows: int = MAX_TRAINING_ROWS,
) -> dict[str, Any]:
    """Train both models on a frame's encounters, store them as a new version and return its card.
    ``organisation_id`` ``None`` makes a shared model (the demo's)."""
    report = progress or (lambda _percent, _message: None)
    report(2, "Computing features")
    features, labels = training_set(frame)
    features, labels = cap_rows(features, labels, max_rows)
    model, metrics = train(features, labels, progress=report)
    trained_at = utcnow()
    started = frame["started_at"]
    card: dict[str, Any] = {
        "version": store.new_version(trained_at),
        "trained_at": trained_at.isoformat(),
        "organisation_id": str(organisation_id) if organisation_id else None,
        "synthetic": synthetic,
        "label": DEMO_LABEL if synthetic else None,
        "intended_use": INTENDED_USE,
        "data": {
            "fingerprint": fingerprint(features, labels),
            "encounters": int(frame["encounter_id"].nunique()),
            "rows_used": len(labels),
            "patients": int(frame["patient_id"].nunique()),
            "from": started.min().isoformat(),
            "to": started.max().isoformat(),
            "adverse_rate": metrics["rows"]["adverse_rate"],
            "label": "the encounter ended in admission or death; features from the history before it",
        },
        "metrics": {"mlp": metrics["mlp"], "forest": metrics["forest"], "split": metrics["rows"]},
        "features": list(features.columns),
        "models": {
            "mlp": {
                "hidden_layers": list(HIDDEN_LAYERS),
                "alpha": MLP_ALPHA,
                "regularisation": "L2 penalty (alpha) and early stopping; scikit-learn has no dropout",
            },
            "forest": {"trees": TREES, "max_depth": MAX_DEPTH, "class_weight": None},
            "seed": SEED,
            "evaluation": f"stratified {round((1 - TEST_SIZE) * 100)}/{round(TEST_SIZE * 100)} split, "
            f"{CV_FOLDS}-fold stratified cross-validation on the training part",
        },
        "consensus": {
            "rule": "mean of the two probabilities; the higher one if they differ by `disagreement` or more",
            "disagreement": DISAGREEMENT,
            "levels": [{"below": bound, "level": level.value} for bound, level in LEVEL_THRESHOLDS[:-1]]
            + [{"below": None, "level": LEVEL_THRESHOLDS[-1][1].value}],
        },
        "condition_groups": {group: list(codes) for group, codes in CONDITION_GROUPS.items()},
        "vital_defaults": dict(VITAL_DEFAULTS),
    }
    store.save(model, card)
    report(100, f"Stored model {card['version']}")
    return card


def has_synthetic(session: Session, organisation_ids: Collection[uuid.UUID] | None) -> bool:
    """Whether any encounter of these organisations (``None``: all) is synthetic (demo data)."""
    query = select(Encounter.id).where(Encounter.source == "synthetic")
    if organisation_ids is not None:
        query = query.where(Encounter.organisation_id.in_(list(organisation_ids)))
    return bool(session.execute(select(exists(query))).scalar())


def authorize_training(session: Session, principal: Principal) -> uuid.UUID:
    """The organisation whose encounters the caller may train a model on (403, audited, otherwise); the
    request is audited."""
    action = "analytics.risk.train"
    require(session, principal, Perm.ANALYTICS_MANAGE, action)
    if principal.organisation_id is None:
        audit.record_and_commit(session, principal, action, outcome="denied", detail={"reason": "no org"})
        raise Forbidden("Models are trained on an organisation's encounters; you belong to none.")
    audit.record(session, principal, action, resource_type="RiskModel", detail={"organisation": "own"})
    return principal.organisation_id


def _visible(principal: Principal, model_card: dict[str, Any]) -> bool:
    owner = model_card.get("organisation_id")
    return principal.is_system or owner is None or owner == str(principal.organisation_id)


def _scope(principal: Principal) -> str:
    return str(principal.organisation_id) if principal.organisation_id else store.DEFAULT_SCOPE


def list_models(session: Session, principal: Principal) -> tuple[list[dict[str, Any]], str | None]:
    """The model cards the caller may see (their organisation's and the shared ones), newest first, and the
    version their organisation uses now."""
    require(session, principal, Perm.ANALYTICS_VIEW, "analytics.risk.models")
    visible = [c for c in store.cards() if _visible(principal, c)]
    audit.record(session, principal, "analytics.risk.models", resource_type="RiskModel")
    return visible, store.active_version(principal.organisation_id)


def activate(session: Session, principal: Principal, version: str) -> dict[str, Any]:
    """Make a version the one the caller's organisation uses (at once, in every process); returns its
    card. 404 for a version the caller cannot see."""
    action = "analytics.risk.activate"
    require(session, principal, Perm.ANALYTICS_MANAGE, action)
    model_card = store.card(version) if store.is_version(version) else None
    if model_card is None or not _visible(principal, model_card):
        audit.record_and_commit(
            session, principal, action, outcome="denied", detail={"version": version[:40]}
        )
        raise NotFound("No such model version.")
    store.set_active(version, _scope(principal))
    audit.record(session, principal, action, resource_type="RiskModel", resource_id=version)
    return model_card


def patient_risk(
    session: Session, principal: Principal, patient_id: uuid.UUID, *, now: datetime | None = None
) -> PatientRisk:
    """The patient's risk now from the organisation's active model (audited with the patient's id). 404
    for a patient the caller may not see; 409 when no model is active. One indexed query for the patient's
    encounters, features in NumPy (:func:`~caresync.analytics.risk.features.patient_features`), no pandas."""
    authorize_patient(session, principal, patient_id, Perm.ANALYTICS_VIEW, RISK_ACTION)
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise NotFound("No such patient.")
    version, model_card, model = _active_model(principal)
    at = now or utcnow()
    features = patient_features(
        patient_history(session.connection().execute(HISTORY_QUERY, {"patient_id": patient.id})),
        at,
        age_at(patient.birth_date, at),
        patient.sex,
    )
    return _audited(session, principal, patient.id, at, version, model_card, predict_named(model, features))


def visible_patients_risk(
    session: Session, principal: Principal, patients: Sequence[Patient], *, now: datetime | None = None
) -> list[PatientRisk]:
    """The risk of those of ``patients`` the caller may see (others are left out, not refused), e.g. a
    clinician's care list: one query for the patients in the caller's care (those the access rule grants
    first), the access rule for the others, then one load of their encounters and one feature matrix."""
    cared = (
        set(session.execute(cared_for_patient_ids(principal)).scalars())
        if principal.role in CLINICIANS and principal.user_id is not None
        else set()
    )
    visible = [p for p in patients if p.id in cared or patient_access(session, principal, p.id) is not None]
    return patients_risk(session, principal, visible, now=now) if visible else []


def patients_risk(
    session: Session, principal: Principal, patients: Sequence[Patient], *, now: datetime | None = None
) -> list[PatientRisk]:
    """The risk now of patients the caller was checked to see (each audited with its id), in order;
    409 when no model is active."""
    require(session, principal, Perm.ANALYTICS_VIEW, RISK_ACTION)
    version, model_card, model = _active_model(principal)
    if not patients:
        return []
    at = now or utcnow()
    moment = pd.Timestamp(at)
    refs = pd.DataFrame(
        {
            "patient_id": [str(p.id) for p in patients],
            "at": [moment] * len(patients),
            "age": [age_at(p.birth_date, at) for p in patients],
            "sex": [p.sex for p in patients],
        }
    )
    frame = encounter_frame(session, organisation_ids=None, patient_ids=[p.id for p in patients])
    features = features_at(encounter_table(frame), refs).to_numpy()
    return [
        _audited(session, principal, patient.id, at, version, model_card, predict_named(model, row))
        for patient, row in zip(patients, features, strict=True)
    ]


def _active_model(principal: Principal) -> tuple[str, dict[str, Any], RiskModel]:
    """The version, card and model the caller's organisation uses (409 when none is active)."""
    version = store.active_version(principal.organisation_id)
    model_card = store.card(version) if version else None
    if version is None or model_card is None:
        raise Conflict(
            "No risk model is active yet: an administrator trains one or activates a version on the "
            "Risk models page (/analytics/risk/models)."
        )
    return version, model_card, store.load(version)


def predict_named(model: RiskModel, features: np.ndarray) -> RiskResult:
    """:func:`~caresync.analytics.risk.model.predict` of a feature vector in :data:`FEATURE_NAMES` order,
    whatever order the model was trained in."""
    return predict(model, dict(zip(FEATURE_NAMES, features.tolist(), strict=True)))


def _audited(
    session: Session,
    principal: Principal,
    patient_id: uuid.UUID,
    at: datetime,
    version: str,
    model_card: dict[str, Any],
    result: RiskResult,
) -> PatientRisk:
    """Audit one patient's risk (with their id) and wrap it."""
    audit.record(
        session,
        principal,
        RISK_ACTION,
        patient_id=patient_id,
        resource_type="Patient",
        resource_id=patient_id,
        detail={"version": version, "level": result.level.value},
    )
    return PatientRisk(patient_id, at, version, model_card.get("label"), result)
