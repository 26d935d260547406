"""Hardening (issue 15): an approved FAQ entry shows the reviewer's own wording, never the
customer's question; notices owed to people are committed with what they tell; staff card
openings are recorded; a customer's unhappy answers while their alert is open fold into it.

Drafts approved before this revision showed the customer's words: they go back to review, so an
owner words them before customers see them again.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("faq_drafts") as batch:
        batch.add_column(sa.Column("title", sa.String(length=120), nullable=True))
    op.execute("UPDATE faq_drafts SET status = 'draft', reviewed_at = NULL WHERE status = 'approved'")
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("repeats", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("last_survey_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_alerts_last_survey", "surveys", ["last_survey_id"], ["id"])
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(length=160), nullable=False, unique=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(length=256), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_notices_next_try_at", "notices", ["next_try_at"])
    op.create_table(
        "card_openings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("staff_telegram_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_card_openings_staff", "card_openings", ["staff_telegram_id", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_constraint("fk_alerts_last_survey", type_="foreignkey")
        batch.drop_column("last_survey_id")
        batch.drop_column("repeats")
    op.drop_index("ix_card_openings_staff", table_name="card_openings")
    op.drop_table("card_openings")
    op.drop_index("ix_notices_next_try_at", table_name="notices")
    op.drop_table("notices")
    with op.batch_alter_table("faq_drafts") as batch:
        batch.drop_column("title")
