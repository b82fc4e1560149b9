"""scoped app tokens (SMART-on-FHIR style scopes on auth sessions)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 20:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("auth_sessions") as batch:
        batch.add_column(sa.Column("scope", sa.String(length=1000), nullable=True))
        batch.add_column(sa.Column("label", sa.String(length=120), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("auth_sessions") as batch:
        batch.drop_column("label")
        batch.drop_column("scope")
