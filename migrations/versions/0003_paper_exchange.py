"""paper exchange v2: stop orders, time in force, partial fills, modifications, the event journal

Revision ID: 0003_paper
Revises: 0002
Create Date: 2026-11-25

paper_orders gains the terms and running state of a faithful exchange simulator; paper_events is
its journal (every event sent about an order, fills included, in order, with the time of the
fact). Existing book rows get the journal their events had: accepted, the one fill, the final
cancel or reject.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_paper"
down_revision = "0002"
branch_labels = None
depends_on = None


def price():
    return sa.Numeric(18, 4).with_variant(sa.BigInteger(), "sqlite")


def ts():
    return sa.DateTime(timezone=True)


NEW_COLUMNS = (
    "stop_price", "time_in_force", "triggered_at", "effective_at", "matched_through", "modify_seq", "fill_count",
    "event_count", "published_pos", "version",
)  # fmt: skip


def upgrade():
    with op.batch_alter_table("paper_orders") as batch:
        batch.add_column(sa.Column("stop_price", price(), nullable=True))
        batch.add_column(sa.Column("time_in_force", sa.String(8), nullable=False, server_default="DAY"))
        batch.add_column(sa.Column("triggered_at", ts(), nullable=True))
        batch.add_column(sa.Column("effective_at", ts(), nullable=True))
        batch.add_column(sa.Column("matched_through", ts(), nullable=True))
        for name, default in (("modify_seq", "0"), ("fill_count", "0"), ("event_count", "0"),
                              ("published_pos", "0"), ("version", "1")):  # fmt: skip
            batch.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default=default))
    op.execute("UPDATE paper_orders SET effective_at = created_at")
    with op.batch_alter_table("paper_orders") as batch:
        batch.alter_column("effective_at", existing_type=ts(), nullable=False)
    op.create_index("ix_paper_orders_status_created", "paper_orders", ["status", "created_at"])
    op.create_table(
        "paper_events",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("pos", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(100), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("ts", ts(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=True),
        sa.Column("price", price(), nullable=True),
        sa.Column("limit_price", price(), nullable=True),
        sa.Column("stop_price", price(), nullable=True),
        sa.Column("reason", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("order_id", "pos", name="pk_paper_events"),
        sa.ForeignKeyConstraint(
            ["order_id"], ["paper_orders.order_id"], ondelete="CASCADE", name="fk_paper_events_order_id_paper_orders"
        ),
        sa.UniqueConstraint("event_id", name="uq_paper_events_event_id"),
    )
    backfill_journal()


ORDERS = sa.table(
    "paper_orders",
    sa.column("order_id", sa.Uuid()), sa.column("quantity", sa.Integer()), sa.column("filled_quantity", sa.Integer()),
    sa.column("fill_price", price()), sa.column("status", sa.String()), sa.column("reason", sa.String()),
    sa.column("created_at", ts()), sa.column("updated_at", ts()), sa.column("fill_count", sa.Integer()),
    sa.column("event_count", sa.Integer()), sa.column("published_pos", sa.Integer()),
)  # fmt: skip
EVENTS = sa.table(
    "paper_events",
    sa.column("order_id", sa.Uuid()), sa.column("pos", sa.Integer()), sa.column("event_id", sa.String()),
    sa.column("type", sa.String()), sa.column("ts", ts()), sa.column("n", sa.Integer()),
    sa.column("quantity", sa.Integer()), sa.column("price", price()), sa.column("reason", sa.String()),
)  # fmt: skip


BLANK = {"n": None, "quantity": None, "price": None, "reason": None}


def journal_of(row) -> list[dict]:
    """The events the first paper exchange sent for a row (it filled orders whole, once)."""
    if row.status == "rejected":
        return [{"type": "order.rejected", "suffix": "rejected", "ts": row.created_at, "reason": row.reason}]
    if row.quantity == 0:  # a tombstone: cancelled before the order arrived
        return [{"type": "order.cancelled", "suffix": "cancelled", "ts": row.created_at, "reason": row.reason}]
    events = [{"type": "order.accepted", "suffix": "accepted", "ts": row.created_at}]
    if row.filled_quantity:
        events.append({"type": "order.fill", "suffix": "fill:1", "ts": row.updated_at, "n": 1,
                       "quantity": row.filled_quantity, "price": row.fill_price})  # fmt: skip
    if row.status == "cancelled":
        events.append({"type": "order.cancelled", "suffix": "cancelled", "ts": row.updated_at, "reason": row.reason})
    return events


def backfill_journal():
    bind = op.get_bind()
    for row in bind.execute(sa.select(ORDERS)).all():
        events = journal_of(row)
        bind.execute(sa.insert(EVENTS), [
            {**BLANK, "order_id": row.order_id, "pos": pos, "event_id": f"paper:{row.order_id}:{e.pop('suffix')}", **e}
            for pos, e in enumerate(events, start=1)
        ])  # fmt: skip
        bind.execute(
            sa.update(ORDERS)
            .where(ORDERS.c.order_id == row.order_id)
            .values(event_count=len(events), published_pos=len(events), fill_count=1 if row.filled_quantity else 0)
        )


def downgrade():
    op.drop_table("paper_events")
    op.drop_index("ix_paper_orders_status_created", table_name="paper_orders")
    with op.batch_alter_table("paper_orders") as batch:
        for name in reversed(NEW_COLUMNS):
            batch.drop_column(name)
