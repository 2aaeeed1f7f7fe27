"""Record the trace context an outbox event was written in.

Revision ID: 0010_outbox_trace_context
Revises: 0009_feature_flags
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_outbox_trace_context"
down_revision: str | Sequence[str] | None = "0009_feature_flags"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: events written before (or with tracing off) have none.
    op.add_column("outbox", sa.Column("trace_context", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("outbox", "trace_context")
