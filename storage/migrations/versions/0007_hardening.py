"""Hardening (issue 15): an approved FAQ entry shows the reviewer's own wording, never the
customer's question.

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


def downgrade() -> None:
    with op.batch_alter_table("faq_drafts") as batch:
        batch.drop_column("title")
