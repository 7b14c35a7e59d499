"""The Inbox reads the inbound texts among the many sent: a partial index on them.

Revision ID: 0014_inbox_index
Revises: 0013_name_as_received
"""
import sqlalchemy as sa
from alembic import op

revision = '0014_inbox_index'
down_revision = '0013_name_as_received'
branch_labels = None
depends_on = None

INCOMING = "direction = 'incoming'"


def upgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_incoming_contact', ['contact_id', 'created_at'], unique=False,
                              postgresql_where=sa.text(INCOMING), sqlite_where=sa.text(INCOMING))


def downgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_incoming_contact')
