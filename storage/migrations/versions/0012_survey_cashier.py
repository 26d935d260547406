"""A survey about a visit records the visit's cashier, so /stats counts answers by cashier without
reading the ledger (issue 19: 365 days of a chain's answers in under 2 s). Existing surveys take
their purchase's cashier.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("surveys") as batch:
        batch.add_column(sa.Column("staff_telegram_id", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE surveys SET staff_telegram_id = "
        "(SELECT ledger_entries.staff_telegram_id FROM ledger_entries WHERE ledger_entries.id = surveys.entry_id) "
        "WHERE entry_id IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("surveys") as batch:
        batch.drop_column("staff_telegram_id")
