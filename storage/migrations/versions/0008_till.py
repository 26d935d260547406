"""The till and the desk as people use them (issue 18): a sale typed into an open card is one step,
so an operation carries the key of the cashier's message (a redelivered message sells once); the
customer's newest card message is remembered, so it can be kept current and older ones retired; a
request remembers the messages in its topic that carry Take / Close, so their buttons can go.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(length=64), nullable=True))
        batch.create_unique_constraint("uq_operations_idempotency_key", ["idempotency_key"])
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("card_message_id", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("buttons_on", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("buttons_on")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("card_message_id")
    with op.batch_alter_table("operations") as batch:
        batch.drop_constraint("uq_operations_idempotency_key", type_="unique")
        batch.drop_column("idempotency_key")
