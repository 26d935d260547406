"""A line straight to the owner (issue 19): what a customer writes to the owners, with its status,
and where each owner was shown it (their reply to that message answers the customer).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "owner_letters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("store", sa.String(length=16), nullable=False, server_default="main"),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.BigInteger(), nullable=True),
        sa.Column("answered_by_name", sa.String(length=256), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by_name", sa.String(length=256), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_owner_letters_customer", "owner_letters", ["customer_id", "created_at"])
    op.create_index("ix_owner_letters_status", "owner_letters", ["status"])
    op.create_table(
        "owner_letter_posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("letter_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["letter_id"], ["owner_letters.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_owner_letter_posts_letter_id", "owner_letter_posts", ["letter_id"])
    op.create_index("uq_owner_letter_posts_message", "owner_letter_posts", ["chat_id", "message_id"], unique=True)


def downgrade() -> None:
    op.drop_table("owner_letter_posts")
    op.drop_table("owner_letters")
