"""Settings: every knob is a ``CARESYNC_*`` environment variable with a safe laptop default."""

from __future__ import annotations

import secrets
from functools import cached_property, lru_cache
from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration. Read from the environment (prefix ``CARESYNC_``) or a ``.env`` file."""

    model_config = SettingsConfigDict(env_prefix="CARESYNC_", env_file=".env", extra="ignore")

    var_dir: Path = Field(
        default=Path("var"), description="Runtime data: database, files, job queue, secrets"
    )
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite under var_dir")
    redis_url: str = Field(default="", description="Redis URL for the job queue and pub/sub; empty = none")
    secret_key: str = Field(default="", description="Signing key; generated into var_dir if empty")
    storage_key: str = Field(default="", description="Base64 AES-256 key for files; generated if empty")
    base_url: str = "http://127.0.0.1:8000"

    session_hours: int = Field(default=12, ge=1, le=24 * 30)
    api_token_hours: int = Field(default=24, ge=1, le=24 * 90)
    lockout_threshold: int = Field(default=5, ge=1, le=100)
    lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)
    password_reset_minutes: int = Field(default=30, ge=5, le=24 * 60)
    break_glass_hours: int = Field(default=4, ge=1, le=72)
    password_min_length: int = Field(default=10, ge=8, le=128)
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    cookie_secure: bool = False

    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = "CareSync <no-reply@caresync.local>"
    smtp_starttls: bool = True

    backup_dir: Path | None = Field(default=None, description="Where backups go; empty means var_dir/backups")
    backup_keep_daily: int = Field(default=7, ge=1, le=366, description="Daily backups kept")
    backup_keep_weekly: int = Field(default=4, ge=0, le=520, description="Weekly backups kept (Sundays)")
    backup_hour_utc: int = Field(default=2, ge=0, le=23, description="Hour (UTC) of the scheduled backup")

    rate_limit_enabled: bool = Field(default=True, description="Answer 429 past the limits below")
    rate_limit_api: str = Field(default="600/minute", description="Requests per client address, all of /api")
    rate_limit_login: str = Field(default="10/minute", description="Sign-in attempts per address and account")
    rate_limit_register: str = Field(default="10/hour", description="Registrations per address and per email")
    rate_limit_password_reset: str = Field(
        default="5/hour", description="Reset requests per address and account"
    )
    rate_limit_otp: str = Field(default="10/minute", description="MFA code attempts per address and account")

    log_format: str = Field(default="text", pattern="^(text|json)$", description="text, or json (structured)")

    jobs_immediate: bool = Field(default=False, description="Run jobs in-process at once (tests)")
    argon2_fast: bool = Field(default=False, description="Cheap argon2 parameters (tests only)")

    @field_validator(
        "rate_limit_api",
        "rate_limit_login",
        "rate_limit_register",
        "rate_limit_password_reset",
        "rate_limit_otp",
    )
    @classmethod
    def _valid_rate(cls, value: str, info: ValidationInfo) -> str:
        """A malformed limit fails when the settings load (server, worker and CLI alike), naming it."""
        from caresync.core.ratelimit import parse_rate  # imported here: ratelimit reads the settings

        parse_rate(value, f"CARESYNC_{str(info.field_name).upper()}")
        return value

    @cached_property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file under ``var_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'caresync.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        """Whether the configured database is SQLite."""
        return self.resolved_database_url.startswith("sqlite")

    def ensure_var_dir(self) -> Path:
        """Create ``var_dir`` (and its subfolders) if missing and return it."""
        for sub in ("", "files", "outbox"):
            (self.var_dir / sub).mkdir(parents=True, exist_ok=True)
        return self.var_dir

    def secret(self, name: str) -> str:
        """Return the named secret: from settings if given, else from ``var_dir/<name>`` (created once)."""
        explicit = getattr(self, name, "")
        if explicit:
            return str(explicit)
        if name not in self._secrets:
            self._secrets[name] = self._secret_from_file(name)
        return self._secrets[name]

    @cached_property
    def _secrets(self) -> dict[str, str]:
        return {}

    def _secret_from_file(self, name: str) -> str:
        path = self.ensure_var_dir() / name
        if not path.exists():
            value = secrets.token_urlsafe(32) if name != "storage_key" else _new_aes_key()
            path.write_text(value)
            path.chmod(0o600)
        return path.read_text().strip()


def _new_aes_key() -> str:
    import base64

    return base64.b64encode(secrets.token_bytes(32)).decode()


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests clear the cache with ``get_settings.cache_clear()``)."""
    return Settings()
