"""watchlists: a user's named lists (names unique per user ignoring case); watchlist_items: the
instruments of each list in the user's order

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27

Never imports tradingapp.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "watchlists",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id", name="fk_watchlists_user_id_users"), nullable=False),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_watchlists_user_id", "watchlists", ["user_id"])
    op.create_index("uq_watchlists_user_id_name", "watchlists", ["user_id", sa.text("lower(name)")], unique=True)
    op.create_table(
        "watchlist_items",
        sa.Column(
            "watchlist_id",
            sa.Uuid(),
            sa.ForeignKey("watchlists.id", name="fk_watchlist_items_watchlist_id_watchlists", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "instrument_id",
            sa.Integer(),
            sa.ForeignKey("instruments.id", name="fk_watchlist_items_instrument_id_instruments"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
    )


def downgrade():
    op.drop_table("watchlist_items")
    op.drop_index("uq_watchlists_user_id_name", table_name="watchlists")
    op.drop_index("ix_watchlists_user_id", table_name="watchlists")
    op.drop_table("watchlists")
