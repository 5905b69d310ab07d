"""merge the paper exchange and risk branches of issue 3

Revision ID: 0004
Revises: 0003_paper, 0003_risk
Create Date: 2026-11-24
"""

revision = "0004"
down_revision = ("0003_paper", "0003_risk")
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
