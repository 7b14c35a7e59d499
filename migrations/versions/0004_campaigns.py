"""campaigns: planning state, recipient state, recipients without a phone

Revision ID: 0004_campaigns
Revises: 0003_messaging
Create Date: 2026-11-26 07:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004_campaigns'
down_revision = '0003_messaging'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('planned_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('plan_error', sa.Text(), nullable=True))

    with op.batch_alter_table('campaign_recipients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state', sa.String(length=2), nullable=True))
        batch_op.alter_column('phone', existing_type=sa.String(length=20), nullable=True)


def downgrade():
    op.execute("DELETE FROM campaign_recipients WHERE phone IS NULL")
    with op.batch_alter_table('campaign_recipients', schema=None) as batch_op:
        batch_op.alter_column('phone', existing_type=sa.String(length=20), nullable=False)
        batch_op.drop_column('state')

    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('plan_error')
        batch_op.drop_column('planned_at')
