"""``patients.enrollment_date``: day 0 of a patient never infused, a column of the cohort
contract (``cartrial.cohort.model.COLUMNS``) the store kept only in the JSON ``extra``.

Existing values move from ``extra`` into the column (an ISO date; anything else stays in
``extra``, nothing is lost); the downgrade moves them back. One transaction with the
other migrations (``cartrial.store.database.upgrade``): all or nothing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 14:45:00
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMN = "enrollment_date"


def _patients() -> Any:
    return sa.table(
        "patients",
        sa.column("id"),
        sa.column("extra", sa.JSON()),
        sa.column(COLUMN, sa.Date()),
    )


def _iso_date(value: object) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def upgrade() -> None:
    op.add_column("patients", sa.Column(COLUMN, sa.Date(), nullable=True))
    bind = op.get_bind()
    patients = _patients()
    rows = bind.execute(
        sa.select(patients.c.id, patients.c.extra).where(patients.c.extra.is_not(None))
    ).all()
    for pk, extra in rows:  # migration time only: patients with extra columns
        if not isinstance(extra, dict) or COLUMN not in extra:
            continue
        date = _iso_date(extra[COLUMN])
        if date is None:
            continue
        rest = {k: v for k, v in extra.items() if k != COLUMN}
        bind.execute(
            sa.update(patients)
            .where(patients.c.id == pk)
            .values({COLUMN: date, "extra": rest or sa.null()})  # SQL NULL, not JSON null
        )


def downgrade() -> None:
    bind = op.get_bind()
    patients = _patients()
    rows = bind.execute(
        sa.select(patients.c.id, patients.c.extra, patients.c[COLUMN]).where(
            patients.c[COLUMN].is_not(None)
        )
    ).all()
    for pk, extra, date in rows:
        kept = {**(extra if isinstance(extra, dict) else {}), COLUMN: date.isoformat()}
        bind.execute(sa.update(patients).where(patients.c.id == pk).values(extra=kept))
    # a plain DROP COLUMN (SQLite >= 3.35): a batch rebuild of ``patients`` would drop the
    # table, and with foreign keys on that deletes every child record (ON DELETE CASCADE)
    op.drop_column("patients", COLUMN)
