"""Index every sortable field of items, for owners' lists and admins' lists.

Revision ID: 0004_items_indexes
Revises: 0002_items
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004_items_indexes"
down_revision: str | Sequence[str] | None = "0002_items"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each ends in `id`, the tie-breaker of every sort, so a keyset page is one index range scan.
INDEXES = {
    "ix_items_owner_id_created_at_id": ["owner_id", "created_at", "id"],
    "ix_items_owner_id_updated_at_id": ["owner_id", "updated_at", "id"],
    "ix_items_owner_id_title_id": ["owner_id", "title", "id"],
    "ix_items_created_at_id": ["created_at", "id"],
    "ix_items_updated_at_id": ["updated_at", "id"],
    "ix_items_title_id": ["title", "id"],
}


def upgrade() -> None:
    # Superseded by ix_items_owner_id_created_at_id, which also orders ties.
    op.drop_index("ix_items_owner_id_created_at", table_name="items")
    for name, columns in INDEXES.items():
        op.create_index(name, "items", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="items")
    op.create_index("ix_items_owner_id_created_at", "items", ["owner_id", "created_at"])
