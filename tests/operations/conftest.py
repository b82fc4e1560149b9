"""Operations tests start with no stored files: other tests of the same worker leave encrypted blobs behind
(their rows are cleaned, their files are not), some damaged on purpose to test tamper detection, and a
backup's verification would rightly report those."""

from __future__ import annotations

import shutil

import pytest

from caresync.config import get_settings


@pytest.fixture(autouse=True)
def _no_stored_files_left_by_other_tests() -> None:
    files = get_settings().var_dir / "files"
    if files.is_dir():
        for entry in files.iterdir():
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
