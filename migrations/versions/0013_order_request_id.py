"""orders.request_id: the X-Request-ID of the HTTP request that placed the order, so the worker and
the consumer can put it on their log lines about the order (README "Tracing an order"). Nullable:
orders placed before this revision, or not through the API, have none.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

Never imports tradingapp.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    # A nullable column without a default: no table rewrite on PostgreSQL, a plain ADD COLUMN on SQLite.
    op.add_column("orders", sa.Column("request_id", sa.String(64), nullable=True))


def downgrade():
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("request_id")
