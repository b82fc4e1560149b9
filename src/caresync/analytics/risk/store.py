"""Versioned risk models on disk, and which one is active.

Layout under ``<var_dir>/models/risk/`` (:func:`models_root`)::

    <version>/model.joblib   the fitted RiskModel (joblib)
    <version>/card.json      the model card: version, trained_at, data fingerprint, metrics, features,
                             intended use, and the "demonstration only" label when trained on synthetic data
    active                   JSON {"default": version, "<organisation id>": version, ...}

A version is ``YYYYMMDD-HHMMSS-xxxxxx`` (UTC time of training and a random suffix): never reused, and safe as
a folder name (anything else is refused before touching the disk). An organisation uses its own active
version, else the ``default`` one (set by the demo). The pointer file is re-read whenever it changes on
disk and models are loaded once per version, so switching takes effect at once in every process, with no
restart.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import threading
import uuid
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Any

import joblib

from caresync.analytics.risk.model import RiskModel
from caresync.config import get_settings

VERSION_PATTERN = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")
DEFAULT_SCOPE = "default"
MODEL_FILE, CARD_FILE, ACTIVE_FILE = "model.joblib", "card.json", "active"
LOADED_MAX = 4  # models kept in memory per process


def models_root() -> Path:
    """Where risk models live: ``<var_dir>/models/risk``."""
    return get_settings().var_dir / "models" / "risk"


def new_version(trained_at: datetime) -> str:
    """A fresh version name for a model trained at ``trained_at`` (UTC)."""
    return f"{trained_at:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def is_version(text: str) -> bool:
    """Whether ``text`` has the shape of a version name."""
    return bool(VERSION_PATTERN.match(text))


def save(model: RiskModel, card: dict[str, Any], root: Path | None = None) -> str:
    """Write a model and its card (``card["version"]`` names it) atomically; returns the version."""
    root = root or models_root()
    version = str(card["version"])
    if not is_version(version):
        raise ValueError(f"not a version name: {version!r}")
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=root))
    joblib.dump(model, staging / MODEL_FILE, compress=3)
    (staging / CARD_FILE).write_text(json.dumps(card, indent=2, default=str), encoding="utf-8")
    staging.rename(root / version)
    return version


def cards(root: Path | None = None) -> list[dict[str, Any]]:
    """Every stored model's card, newest first."""
    root = root or models_root()
    if not root.is_dir():
        return []
    found = [card(path.name, root) for path in root.iterdir() if path.is_dir() and is_version(path.name)]
    return sorted((c for c in found if c is not None), key=lambda c: str(c["version"]), reverse=True)


def card(version: str, root: Path | None = None) -> dict[str, Any] | None:
    """One model's card, or ``None`` when there is no such version."""
    path = (root or models_root()) / version / CARD_FILE
    if not is_version(version) or not path.is_file():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


class _Pointers:
    """The ``active`` file, re-read when it is replaced or changes (inode, modification time, size)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: tuple[str, int, int, int] | None = None
        self._value: dict[str, str] = {}

    def read(self, root: Path) -> dict[str, str]:
        path = root / ACTIVE_FILE
        try:
            stat = path.stat()
        except FileNotFoundError:
            return {}
        stamp = (str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._seen:
                self._value = json.loads(path.read_text(encoding="utf-8"))
                self._seen = stamp
            return dict(self._value)


_pointers = _Pointers()


def active_versions(root: Path | None = None) -> dict[str, str]:
    """The whole pointer: scope (``default`` or an organisation id) -> version."""
    return _pointers.read(root or models_root())


def active_version(organisation_id: uuid.UUID | None, root: Path | None = None) -> str | None:
    """The version an organisation uses: its own choice, else the default; ``None`` when neither is set."""
    pointer = active_versions(root)
    own = pointer.get(str(organisation_id)) if organisation_id else None
    return own or pointer.get(DEFAULT_SCOPE)


def set_active(version: str, scope: str, root: Path | None = None) -> None:
    """Make ``version`` the active model of ``scope`` (an organisation id, or ``default``), atomically."""
    root = root or models_root()
    if card(version, root) is None:
        raise ValueError(f"no model version {version!r}")
    pointer = active_versions(root)
    pointer[scope] = version
    root.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".active-", dir=root)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(pointer, out, indent=2, sort_keys=True)
    os.replace(temporary, root / ACTIVE_FILE)


class _Loaded:
    """Models loaded from disk, a few per process (least recently used dropped first)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: OrderedDict[Path, RiskModel] = OrderedDict()

    def get(self, path: Path) -> RiskModel:
        with self._lock:
            if path in self._models:
                self._models.move_to_end(path)
                return self._models[path]
        model = joblib.load(path)
        if not isinstance(model, RiskModel):
            raise TypeError(f"{path} does not hold a risk model")
        with self._lock:
            self._models[path] = model
            while len(self._models) > LOADED_MAX:
                self._models.popitem(last=False)
        return model


_loaded = _Loaded()


def load(version: str, root: Path | None = None) -> RiskModel:
    """The fitted model of a version (loaded once per process). Raises KeyError when there is none."""
    path = (root or models_root()) / version / MODEL_FILE
    if not is_version(version) or not path.is_file():
        raise KeyError(version)
    return _loaded.get(path)
