"""Data queries and electronic signatures.

* ``data_queries``: manual (monitor) and automatic (validation rule) queries on a field;
* ``patients.signed_by/signed_at/signature_meaning``: the investigator's signature of a
  locked record (21 CFR Part 11 §11.50, §11.200).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("patients", sa.Column("signed_by", sa.String(length=80), nullable=True))
    op.add_column("patients", sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("patients", sa.Column("signature_meaning", sa.Text(), nullable=True))
    op.create_table(
        "data_queries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("table_name", sa.String(length=40), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("field", sa.String(length=40), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("rule", sa.String(length=80), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("raised_by", sa.String(length=80), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("answered_by", sa.String(length=80), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=80), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.patient_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_data_queries_patient_id", "data_queries", ["patient_id"])
    op.create_index("ix_data_queries_status", "data_queries", ["status"])


def downgrade() -> None:
    op.drop_index("ix_data_queries_status", table_name="data_queries")
    op.drop_index("ix_data_queries_patient_id", table_name="data_queries")
    op.drop_table("data_queries")
    # plain DROP COLUMN (SQLite >= 3.35), not a batch rebuild: rebuilding ``patients`` drops
    # the table, and with foreign keys on that deletes every child record (ON DELETE CASCADE)
    for column in ("signature_meaning", "signed_at", "signed_by"):
        op.drop_column("patients", column)
