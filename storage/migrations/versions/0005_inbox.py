"""The update inbox: processed_updates keeps each update's payload while it is handled, so a
failed or interrupted update is replayed instead of lost.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("processed_updates") as batch:
        batch.add_column(sa.Column("payload", sa.Text(), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("error", sa.String(length=1024), nullable=True))
        batch.create_index("ix_processed_updates_retry_at", ["retry_at"], unique=False)
    # Updates recorded before this revision were all handled.
    op.execute("UPDATE processed_updates SET finished_at = processed_at")


def downgrade() -> None:
    with op.batch_alter_table("processed_updates") as batch:
        batch.drop_index("ix_processed_updates_retry_at")
        batch.drop_column("error")
        batch.drop_column("finished_at")
        batch.drop_column("retry_at")
        batch.drop_column("attempts")
        batch.drop_column("payload")
