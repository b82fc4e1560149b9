"""docs/fhir.md stays true to the registry: every offered type, interaction and search parameter is listed."""

from __future__ import annotations

from pathlib import Path

import pytest

from caresync.fhir.registry import resource_types

DOC = Path(__file__).resolve().parents[2] / "docs" / "fhir.md"
pytestmark = pytest.mark.no_db


def _rows() -> dict[str, list[str]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 5 and cells[0] in resource_types():
            rows[cells[0]] = cells
    return rows


def test_the_resource_table_lists_every_type_with_its_interactions_and_parameters() -> None:
    rows = _rows()
    assert set(rows) == set(resource_types())
    for name, resource in resource_types().items():
        _, interactions, params, includes, everything = rows[name]
        offered = [
            word
            for word, handler in (
                ("read", resource.read),
                ("search", resource.search),
                ("create", resource.create),
                ("update", resource.update),
            )
            if handler is not None
        ]
        assert interactions == ", ".join(offered), name
        assert {p.strip(" `") for p in params.split(",") if p.strip() != "—"} == resource.param_names, name
        listed = {i.strip(" `") for i in includes.split(",") if i.strip() != "—"}
        assert listed == set(resource.includes), name
        assert (everything == "yes") == (resource.everything is not None), name
