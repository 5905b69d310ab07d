"""risk: accounts (cash, trading state, limit overrides), global risk settings, the admin audit
table, today's activity on positions, and an index of each user's open orders

Revision ID: 0003_risk
Revises: 0002
Create Date: 2026-11-25

Never imports tradingapp.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_risk"
down_revision = "0002"
branch_labels = None
depends_on = None

# The risk engine reads a user's working orders on every order: index just those.
OPEN_ORDERS = "status NOT IN ('FILLED', 'CANCELLED', 'REJECTED', 'EXPIRED')"
DAY_COLUMNS = ("day", "day_buy_quantity", "day_buy_value", "day_sell_quantity", "day_sell_value", "day_realized_pnl")


def price(precision=18, scale=4):
    return sa.Numeric(precision, scale).with_variant(sa.BigInteger(), "sqlite")


def ts():
    return sa.DateTime(timezone=True)


def big_id():
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "accounts",
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id", name="fk_accounts_user_id_users"), primary_key=True),
        sa.Column("cash", price(20, 4), nullable=False),
        sa.Column("trading_state", sa.String(10), nullable=False, server_default="ACTIVE"),
        sa.Column("state_reason", sa.String(255), nullable=True),
        sa.Column("limit_overrides", sa.JSON(), nullable=False),
        sa.Column("day", sa.Date(), nullable=True),
        sa.Column("orders_today", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated_at", ts(), nullable=False),
        sa.CheckConstraint("trading_state IN ('ACTIVE', 'REDUCING', 'HALTED')", name="ck_accounts_trading_state"),
    )
    op.create_table(
        "risk_settings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("trading_state", sa.String(10), nullable=False, server_default="ACTIVE"),
        sa.Column("state_reason", sa.String(255), nullable=True),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("updated_at", ts(), nullable=False),
        sa.Column(
            "updated_by", sa.Uuid(), sa.ForeignKey("users.id", name="fk_risk_settings_updated_by_users"), nullable=True
        ),
        sa.CheckConstraint("trading_state IN ('ACTIVE', 'REDUCING', 'HALTED')", name="ck_risk_settings_trading_state"),
    )
    op.create_table(
        "admin_actions",
        sa.Column("id", big_id(), primary_key=True, autoincrement=True),
        sa.Column("ts", ts(), nullable=False),
        sa.Column(
            "admin_id", sa.Uuid(), sa.ForeignKey("users.id", name="fk_admin_actions_admin_id_users"), nullable=False
        ),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
    )
    op.create_index("ix_admin_actions_admin_id", "admin_actions", ["admin_id"])
    with op.batch_alter_table("positions") as batch:
        batch.add_column(sa.Column("day", sa.Date(), nullable=True))
        batch.add_column(sa.Column("day_buy_quantity", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("day_buy_value", price(20, 4), nullable=False, server_default="0"))
        batch.add_column(sa.Column("day_sell_quantity", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("day_sell_value", price(20, 4), nullable=False, server_default="0"))
        batch.add_column(sa.Column("day_realized_pnl", price(20, 4), nullable=False, server_default="0"))
    op.create_index(
        "ix_orders_user_open",
        "orders",
        ["user_id"],
        postgresql_where=sa.text(OPEN_ORDERS),
        sqlite_where=sa.text(OPEN_ORDERS),
    )


def downgrade():
    op.drop_index("ix_orders_user_open", table_name="orders")
    with op.batch_alter_table("positions") as batch:
        for column in reversed(DAY_COLUMNS):
            batch.drop_column(column)
    op.drop_index("ix_admin_actions_admin_id", table_name="admin_actions")
    op.drop_table("admin_actions")
    op.drop_table("risk_settings")
    op.drop_table("accounts")
