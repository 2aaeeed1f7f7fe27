"""Third test revision: CREATE INDEX CONCURRENTLY, which cannot run inside a transaction.

Revision ID: l3
Revises: l2
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import Connection
from tests.integration.db.lock_scripts.steps import BIG_TABLE, audited, prefix

revision: str = "l3"
down_revision: str | Sequence[str] | None = "l2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    def work(_: Connection) -> None:
        with op.get_context().autocommit_block():
            op.execute(f"CREATE INDEX CONCURRENTLY ix_{prefix()}_big ON {BIG_TABLE} (value)")

    audited(revision, work)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY ix_{prefix()}_big")
