"""broker_accounts: users' linked broker accounts (secrets as Fernet ciphertext only), at most one
active per user and broker; broker_account_events: who linked, replaced or unlinked what, when

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25

Never imports tradingapp.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "broker_accounts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "user_id", sa.Uuid(), sa.ForeignKey("users.id", name="fk_broker_accounts_user_id_users"), nullable=False
        ),
        sa.Column("broker", sa.String(16), nullable=False),
        sa.Column("label", sa.String(64), nullable=False, server_default=""),
        sa.Column("app_key", sa.String(128), nullable=False),
        sa.Column("secret_key_encrypted", sa.Text(), nullable=True),
        sa.Column("client_id", sa.String(64), nullable=True),
        sa.Column("md_app_key", sa.String(128), nullable=True),
        sa.Column("md_secret_key_encrypted", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unlinked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("broker IN ('xts')", name=op.f("ck_broker_accounts_broker")),
    )
    op.create_index(
        "uq_broker_accounts_user_broker_active",
        "broker_accounts",
        ["user_id", "broker"],
        unique=True,
        postgresql_where=sa.text("active"),
        sqlite_where=sa.text("active"),
    )
    op.create_table(
        "broker_account_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "account_id",
            sa.Uuid(),
            sa.ForeignKey("broker_accounts.id", name="fk_broker_account_events_account_id_broker_accounts"),
            nullable=False,
        ),
        sa.Column(
            "actor_id",
            sa.Uuid(),
            sa.ForeignKey("users.id", name="fk_broker_account_events_actor_id_users"),
            nullable=False,
        ),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
    )
    op.create_index("ix_broker_account_events_account_id", "broker_account_events", ["account_id"])


def downgrade():
    op.drop_table("broker_account_events")
    op.drop_index("uq_broker_accounts_user_broker_active", table_name="broker_accounts")
    op.drop_table("broker_accounts")
