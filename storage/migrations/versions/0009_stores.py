"""Stores (issue 19): a cashier belongs to a store, and every ledger movement, operation, survey,
alert and support request records the store it happened in. Every existing row is put in the
implicit store `main`, which is the one store of a business whose file names none (and, for a
business that names stores later, part of its first store): nothing is lost, nothing changes for
a one-shop business.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLES = ("staff", "staff_invites", "ledger_entries", "operations", "surveys", "alerts", "tickets")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("store", sa.String(length=16), nullable=False, server_default="main"))
    # The reports group by store and period; these keep a store's figures an index range away.
    op.create_index("ix_ledger_entries_store_created_at", "ledger_entries", ["store", "created_at"])
    op.create_index("ix_surveys_store_answered_at", "surveys", ["store", "answered_at"])


def downgrade() -> None:
    op.drop_index("ix_surveys_store_answered_at", table_name="surveys")
    op.drop_index("ix_ledger_entries_store_created_at", table_name="ledger_entries")
    for table in reversed(TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("store")
