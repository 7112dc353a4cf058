"""Server-side sessions, the audit hash chain, forced password change.

* ``web_sessions``: log-in sessions kept in the database (log-out and the idle time-out
  revoke them);
* ``audit_log.prev_hash``/``row_hash`` and the chain head in ``settings``: existing rows
  are chained in id order (the append-only triggers are suspended for this one update,
  inside the migration's transaction);
* ``users.must_change_password``;
* the session-signing secret is removed from ``settings`` (it now lives outside the
  database: ``$CARTRIAL_SECRET_KEY`` or a 0600 file).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("audit_log", sa.Column("prev_hash", sa.String(length=64), nullable=True))
    op.add_column("audit_log", sa.Column("row_hash", sa.String(length=64), nullable=True))
    op.create_index("ix_audit_user_action", "audit_log", ["username", "action"])
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])
    op.execute("DELETE FROM settings WHERE key = 'session_secret'")
    _chain_existing_rows()


def _chain_existing_rows() -> None:
    from cartrial.store.chain import GENESIS, HEAD_KEY, row_digest

    bind = op.get_bind()
    audit = sa.table(
        "audit_log",
        sa.column("id"),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("username"),
        sa.column("action"),
        sa.column("table_name"),
        sa.column("record_id"),
        sa.column("patient_id"),
        sa.column("old_values", sa.JSON()),
        sa.column("new_values", sa.JSON()),
        sa.column("reason"),
        sa.column("prev_hash"),
        sa.column("row_hash"),
    )
    rows = bind.execute(sa.select(audit).order_by(audit.c.id)).mappings().all()
    prev, last_id = GENESIS, 0
    if rows:
        _suspend_triggers(bind.dialect.name)
        for row in rows:
            digest = row_digest(prev, row, None)  # unkeyed: sealed by chain.seal
            bind.execute(
                sa.update(audit)
                .where(audit.c.id == row["id"])
                .values(prev_hash=prev, row_hash=digest)
            )
            prev, last_id = digest, row["id"]
        _restore_triggers(bind.dialect.name)
    settings = sa.table("settings", sa.column("key"), sa.column("value"))
    bind.execute(sa.insert(settings).values(key=HEAD_KEY, value=f"{last_id} {len(rows)} {prev}"))


def _suspend_triggers(dialect: str) -> None:
    if dialect == "sqlite":
        op.execute("DROP TRIGGER audit_log_no_update")
    elif dialect == "postgresql":
        op.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")


def _restore_triggers(dialect: str) -> None:
    if dialect == "sqlite":
        op.execute(
            "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
        )
    elif dialect == "postgresql":
        op.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")


def downgrade() -> None:
    op.execute("DELETE FROM settings WHERE key = 'audit_head'")
    op.drop_index("ix_web_sessions_user_id", table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_index("ix_audit_user_action", table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("row_hash")
        batch.drop_column("prev_hash")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("must_change_password")
