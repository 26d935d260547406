"""The customer's ledger index holds every column the owner's report sums (kind, points, amount,
spend, store), so /report reads the index alone in the customer's order, with no sort and no row
lookups. The index keeps its name and its leading columns, so every lookup of a customer's history
uses it as before.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

COLUMNS = ["customer_id", "created_at", "kind", "points", "amount", "spend", "store"]


def upgrade() -> None:
    op.drop_index("ix_ledger_customer_created", table_name="ledger_entries")
    op.create_index("ix_ledger_customer_created", "ledger_entries", COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_ledger_customer_created", table_name="ledger_entries")
    op.create_index("ix_ledger_customer_created", "ledger_entries", ["customer_id", "created_at"])
