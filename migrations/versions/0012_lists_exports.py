"""Lists that belong to one campaign ("Text selected", hidden from Lists), exports made by a job,
and trigram indexes for the global search by street address (PostgreSQL only).

Revision ID: 0012_lists_exports
Revises: 0011_inbox
"""
import sqlalchemy as sa
from alembic import op

revision = '0012_lists_exports'
down_revision = '0011_inbox'
branch_labels = None
depends_on = None

TRIGRAM = (("properties", "address"), ("contacts", "mail_address"))


def upgrade():
    with op.batch_alter_table('lists') as batch:
        batch.add_column(sa.Column('campaign_id', sa.Integer(), nullable=True))
        batch.create_index('ix_lists_campaign_id', ['campaign_id'], unique=False)
        batch.create_foreign_key('fk_lists_campaign_id_campaigns', 'campaigns', ['campaign_id'], ['id'],
                                 ondelete='CASCADE')
    op.create_table('exports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('selection', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('total_rows', sa.Integer(), nullable=True),
    sa.Column('rows_done', sa.Integer(), nullable=False),
    sa.Column('stored_path', sa.String(length=500), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_exports_created_at', 'exports', ['created_at'], unique=False)
    op.create_index('ix_exports_created_by_id', 'exports', ['created_by_id'], unique=False)
    op.create_index('ix_exports_status', 'exports', ['status'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        for table, column in TRIGRAM:
            op.execute(f"CREATE INDEX IF NOT EXISTS ix_{table}_{column}_trgm ON {table} "
                       f"USING gin ({column} gin_trgm_ops)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for table, column in TRIGRAM:
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_{column}_trgm")
    op.drop_index('ix_exports_status', table_name='exports')
    op.drop_index('ix_exports_created_by_id', table_name='exports')
    op.drop_index('ix_exports_created_at', table_name='exports')
    op.drop_table('exports')
    with op.batch_alter_table('lists') as batch:
        batch.drop_constraint('fk_lists_campaign_id_campaigns', type_='foreignkey')
        batch.drop_index('ix_lists_campaign_id')
        batch.drop_column('campaign_id')
