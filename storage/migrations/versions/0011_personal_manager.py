"""A personal manager (issue 19): the manager who last helped a customer is theirs; their next
request is offered to that manager first, and the customer sees the name.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("manager_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("manager_name", sa.String(length=256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("manager_name")
        batch.drop_column("manager_id")
