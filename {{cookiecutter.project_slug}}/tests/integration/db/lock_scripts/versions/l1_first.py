"""First test revision: a table.

Revision ID: l1
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Connection
from tests.integration.db.lock_scripts.steps import audited, prefix

revision: str = "l1"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    def work(_: Connection) -> None:
        op.create_table(f"{prefix()}_one", sa.Column("id", sa.Integer(), primary_key=True))

    audited(revision, work)


def downgrade() -> None:
    op.drop_table(f"{prefix()}_one")
