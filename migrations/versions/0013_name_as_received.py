"""Contacts keep their name as it came in when the contact rules put it in proper case.

Revision ID: 0013_name_as_received
Revises: 0012_lists_exports
"""
import sqlalchemy as sa
from alembic import op

revision = "0013_name_as_received"
down_revision = "0012_lists_exports"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("name_as_received", sa.String(length=201), nullable=True))


def downgrade():
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("name_as_received")
