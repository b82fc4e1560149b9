"""The encounter frame: what :func:`encounter_frame` loads (against a plain ORM reading), the scopes' frames
held in memory (compact columns, period slices, new encounters appended, a full reload when the count does
not add up), the cheap data state, and that every analysis answers the same on a compact frame."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency
from sqlalchemy import delete, select

from caresync.analytics import cache, data, synthetic
from caresync.analytics.data import FRAMES, appended, compacted, encounter_frame, shared_encounter_frame
from caresync.analytics.forecasting import service as forecasting
from caresync.analytics.forecasting import surge
from caresync.analytics.models import Encounter, EncounterDiagnosis
from caresync.analytics.statistics.associations import associations, chi_squares
from caresync.analytics.statistics.demographics import demographics
from caresync.analytics.statistics.trends import seasonal_profile, weekly_top
from caresync.core.auth import system_principal
from caresync.db import session_factory, transaction
from caresync.identity.models import Patient
from tests.conftest import Factory

AddEncounter = Callable[..., uuid.UUID]
T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_memory() -> Iterator[None]:
    cache.results.clear()
    FRAMES.clear()
    yield
    cache.results.clear()
    FRAMES.clear()


def _reference(organisation_ids: list[uuid.UUID] | None) -> pd.DataFrame:
    """The frame read the plain way: ORM objects, one by one."""
    rows = []
    with transaction(session_factory()) as s:
        query = select(Encounter)
        if organisation_ids is not None:
            query = query.where(Encounter.organisation_id.in_(organisation_ids))
        for e in s.execute(query).scalars():
            patient = s.get(Patient, e.patient_id)
            assert patient is not None
            for d in e.diagnoses:
                rows.append(
                    {
                        "encounter_id": str(e.id),
                        "patient_id": str(e.patient_id),
                        "organisation_id": str(e.organisation_id),
                        "department": e.department,
                        "started_at": pd.Timestamp(e.started_at),
                        "outcome": e.outcome,
                        "sex": patient.sex,
                        "age": int(
                            data.ages_at(pd.Series([patient.birth_date]), pd.Series([e.started_at]))[0]
                        ),
                        "code": d.code,
                        "principal": d.principal,
                        "systolic_mmhg": e.systolic_mmhg,
                        "heart_rate_bpm": e.heart_rate_bpm,
                        "temperature_c": e.temperature_c,
                        "spo2_pct": e.spo2_pct,
                    }
                )
    return pd.DataFrame(rows, columns=list(data.FRAME_COLUMNS))


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Labels as text, encounters numbered by first appearance after sorting, rows in a fixed order."""
    text = frame.astype(dict.fromkeys(data.LABEL_COLUMNS, "str"))
    text["started_at"] = text["started_at"].astype("datetime64[us, UTC]")
    ordered = text.assign(key=text["encounter_id"].astype(str)).sort_values(["started_at", "key", "code"])
    ordered["encounter_id"] = pd.factorize(ordered["key"])[0]
    for column in data.VITAL_SIGNS:
        ordered[column] = ordered[column].astype("float64")
    return ordered.drop(columns="key").reset_index(drop=True)


@pytest.fixture
def two_hospitals(make: Factory, encounter: AddEncounter) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """Two organisations and two patients with a few encounters (several diagnoses, some vitals)."""
    north, south = make.org().id, make.org().id
    ana = make.patient(sex="female", birth_date=date(1980, 3, 5)).id
    rui = make.patient(sex="male", birth_date=date(2010, 12, 31)).id
    encounter(ana, north, T0, ("J11", "I10"), systolic_mmhg=141, temperature_c=38.4)
    encounter(ana, north, T0 + timedelta(days=3), ("J11",), outcome="admitted", department="emergency")
    encounter(rui, north, T0 + timedelta(days=9), ("J45.9",), heart_rate_bpm=98, spo2_pct=94)
    encounter(rui, south, T0 + timedelta(days=10), ("A09", "J06.9"))
    return north, south, ana


def test_encounter_frame_equals_the_orm_reading(
    two_hospitals: tuple[uuid.UUID, uuid.UUID, uuid.UUID],
) -> None:
    north, _, _ = two_hospitals
    for scope in ([north], None):
        with transaction(session_factory()) as s:
            frame = encounter_frame(s, organisation_ids=scope)
        assert list(frame.columns) == list(data.FRAME_COLUMNS)
        assert frame["started_at"].dt.tz is not None
        reference = _reference(scope)
        frame = frame.assign(encounter_id=[str(uuid.UUID(str(v))) for v in frame["encounter_id"]])
        pd.testing.assert_frame_equal(_comparable(frame), _comparable(reference), check_dtype=False)
    assert len(reference) == 6
    assert sorted(reference["age"].unique()) == [15, 45, 46]  # Ana turns 46 on 5 March


def test_held_frame_is_compact_and_slices_like_a_period_load(
    two_hospitals: tuple[uuid.UUID, uuid.UUID, uuid.UUID],
) -> None:
    north, _, _ = two_hospitals
    start, end = T0 + timedelta(days=1), T0 + timedelta(days=9, hours=1)
    with transaction(session_factory()) as s:
        period = encounter_frame(s, organisation_ids=[north], start=start, end=end)
        shared = shared_encounter_frame(s, organisation_ids=[north], start=start, end=end)
        whole = shared_encounter_frame(s, organisation_ids=[north])
    assert shared["encounter_id"].dtype == np.int64
    assert all(isinstance(shared[c].dtype, pd.CategoricalDtype) for c in data.LABEL_COLUMNS)
    pd.testing.assert_frame_equal(_comparable(shared), _comparable(period), check_dtype=False)
    assert len(period) == 2
    assert len(whole) == 4
    whole["code"] = "changed"  # a caller's copy: the held frame is untouched
    with transaction(session_factory()) as s:
        assert set(shared_encounter_frame(s, organisation_ids=[north])["code"]) == {"J11", "I10", "J45.9"}


def test_new_encounters_are_appended_and_a_broken_count_reloads(
    two_hospitals: tuple[uuid.UUID, uuid.UUID, uuid.UUID], encounter: AddEncounter
) -> None:
    north, _, ana = two_hospitals
    with transaction(session_factory()) as s:
        first = FRAMES.held(s, [north])
    added = encounter(ana, north, T0 + timedelta(days=20), ("M54.5", "J11"))
    with transaction(session_factory()) as s:
        grown = FRAMES.held(s, [north])
    assert grown.generation == first.generation  # appended, not reloaded
    assert grown.state.count == first.state.count + 1
    assert len(grown.frame) == len(first.frame) + 2
    pd.testing.assert_frame_equal(
        _comparable(grown.frame), _comparable(_reference([north])), check_dtype=False
    )
    with transaction(session_factory()) as s:  # one gone, one new: the count does not add up
        s.execute(delete(EncounterDiagnosis).where(EncounterDiagnosis.encounter_id == added))
        s.execute(delete(Encounter).where(Encounter.id == added))
    encounter(ana, north, T0 + timedelta(days=21), ("R51",))
    cache.results.clear()  # forget the remembered count (it is read again within seconds anyway)
    with transaction(session_factory()) as s:
        reloaded = FRAMES.held(s, [north])
    assert reloaded.generation != first.generation
    pd.testing.assert_frame_equal(
        _comparable(reloaded.frame), _comparable(_reference([north])), check_dtype=False
    )


def test_data_state_counts_again_when_the_newest_changes(
    two_hospitals: tuple[uuid.UUID, uuid.UUID, uuid.UUID], encounter: AddEncounter
) -> None:
    north, _, ana = two_hospitals
    with transaction(session_factory()) as s:
        before = cache.data_state(s, [north])
    encounter(ana, north, T0, ("J11",))
    with transaction(session_factory()) as s:
        after = cache.data_state(s, [north])
    assert (before.count, after.count) == (3, 4)
    assert after.newest is not None
    assert after.newest > before.newest if before.newest else False
    assert cache.data_version(s, [north]) == after.version


@pytest.mark.no_db
def test_every_analysis_answers_the_same_on_a_compact_frame() -> None:
    frame = synthetic.generate(
        5, 2, organisations=2, patients=120, end=date(2026, 3, 1), visits_per_day=4
    ).frame()
    half = frame["started_at"] < pd.Timestamp("2025-06-01", tz="UTC")
    compact = appended(compacted(frame[half]), compacted(frame[~half]))  # two loads, as held frames grow
    as_of = pd.Timestamp("2026-02-23", tz="UTC")
    for analysis in (
        lambda f: weekly_top(f, date(2026, 1, 5), date(2026, 2, 23)),
        seasonal_profile,
        demographics,
        associations,
        lambda f: surge.surges(f, as_of=as_of),
    ):
        assert repr(analysis(compact)) == repr(analysis(frame))


@pytest.mark.no_db
def test_chi_squares_equal_scipy_for_a_stack() -> None:
    tables = np.array([[[10, 20], [30, 40]], [[3, 97], [9, 91]], [[50, 50], [50, 50]]])
    for table, result in zip(tables, chi_squares(tables), strict=True):
        statistic, p_value, dof, expected = chi2_contingency(table)
        assert result.statistic == pytest.approx(statistic, rel=1e-12, abs=1e-300)
        assert result.p_value == pytest.approx(p_value, rel=1e-12)
        assert result.dof == dof == 1
        assert result.yates
        np.testing.assert_allclose(result.expected, expected)
    larger = np.array([[[12, 88], [30, 70], [45, 55]], [[5, 5], [6, 4], [1, 9]]])
    for table, result in zip(larger, chi_squares(larger), strict=True):
        statistic, p_value, dof, _ = chi2_contingency(table)
        assert (result.statistic, result.dof, result.yates) == (
            pytest.approx(statistic, rel=1e-12),
            dof,
            False,
        )
        assert result.p_value == pytest.approx(p_value, rel=1e-12)


def test_surges_recompute_only_when_a_whole_week_changes(
    two_hospitals: tuple[uuid.UUID, uuid.UUID, uuid.UUID], encounter: AddEncounter
) -> None:
    north, _, ana = two_hospitals
    robot = system_principal("test")

    def surges() -> dict[str, Any]:
        with transaction(session_factory()) as s:
            return forecasting.surges(s, robot, north, None)

    first = surges()
    now = datetime.now(UTC)
    encounter(ana, north, now - timedelta(minutes=5), ("J11",))  # the week in progress: not counted yet
    same = surges()
    assert same["rules"] is first["rules"]
    assert same["data_version"] != first["data_version"]
    encounter(ana, north, now - timedelta(days=8), ("J11",))  # a whole week changed
    assert surges()["rules"] is not first["rules"]
