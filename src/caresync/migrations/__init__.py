"""Alembic migrations for the CareSync schema."""
