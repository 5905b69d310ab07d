"""Token revocation kept in PostgreSQL (Redis only caches it): users.token_generation, which every
token carries and deactivation raises, and revoked_sessions, the logged-out sessions until their
tokens would have expired

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

Never imports tradingapp.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("users", sa.Column("token_generation", sa.Integer(), nullable=False, server_default="0"))
    # Tokens issued before this revision carry no generation (read as 0), and the logouts and
    # deactivations behind them lived only in Redis keys no longer read: start every existing user
    # at 1 so those tokens are refused (one new login each) rather than working again.
    op.execute("UPDATE users SET token_generation = 1")
    op.create_table(
        "revoked_sessions",
        sa.Column("sid", sa.String(64), nullable=False),
        sa.Column(
            "user_id",
            sa.Uuid(),
            sa.ForeignKey("users.id", name="fk_revoked_sessions_user_id_users", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sid", name="pk_revoked_sessions"),
    )
    op.create_index("ix_revoked_sessions_expires_at", "revoked_sessions", ["expires_at"])


def downgrade():
    op.drop_index("ix_revoked_sessions_expires_at", table_name="revoked_sessions")
    op.drop_table("revoked_sessions")
    op.drop_column("users", "token_generation")
