"""QuickBooks mirror (customers, estimates, invoices, payments), jobs, the sync state row,
automatic to-dos (kind + key) and the campaign switch for existing customers.

Revision ID: 0008_quickbooks
Revises: 0007_trust
"""
import sqlalchemy as sa
from alembic import op

revision = '0008_quickbooks'
down_revision = '0007_trust'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('quickbooks_sync',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('last_full_sync_at', sa.DateTime(), nullable=True),
    sa.Column('last_cdc_at', sa.DateTime(), nullable=True),
    sa.Column('last_finished_at', sa.DateTime(), nullable=True),
    sa.Column('running_since', sa.DateTime(), nullable=True),
    sa.Column('paused_reason', sa.Text(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('counts', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('qb_id', sa.String(length=32), nullable=False),
    sa.Column('sync_token', sa.Integer(), nullable=False),
    sa.Column('txn_date', sa.Date(), nullable=True),
    sa.Column('amount', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('unapplied', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('customer_qb_id', sa.String(length=32), nullable=True),
    sa.Column('customer_name', sa.String(length=255), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('last_updated', sa.DateTime(), nullable=True),
    sa.Column('synced_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('qb_id')
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payments_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payments_customer_qb_id'), ['customer_qb_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payments_deleted'), ['deleted'], unique=False)
        batch_op.create_index(batch_op.f('ix_payments_txn_date'), ['txn_date'], unique=False)

    op.create_table('qb_customers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('qb_id', sa.String(length=32), nullable=False),
    sa.Column('sync_token', sa.Integer(), nullable=False),
    sa.Column('display_name', sa.String(length=255), nullable=True),
    sa.Column('given_name', sa.String(length=100), nullable=True),
    sa.Column('family_name', sa.String(length=100), nullable=True),
    sa.Column('company_name', sa.String(length=255), nullable=True),
    sa.Column('primary_phone', sa.String(length=100), nullable=True),
    sa.Column('mobile', sa.String(length=100), nullable=True),
    sa.Column('alternate_phone', sa.String(length=100), nullable=True),
    sa.Column('email', sa.String(length=255), nullable=True),
    sa.Column('bill_line1', sa.String(length=255), nullable=True),
    sa.Column('bill_city', sa.String(length=100), nullable=True),
    sa.Column('bill_state', sa.String(length=30), nullable=True),
    sa.Column('bill_zip', sa.String(length=20), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('balance', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('match', sa.String(length=20), nullable=True),
    sa.Column('match_detail', sa.Text(), nullable=True),
    sa.Column('candidates', sa.JSON(), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('last_updated', sa.DateTime(), nullable=True),
    sa.Column('synced_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('qb_id')
    )
    with op.batch_alter_table('qb_customers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_qb_customers_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_qb_customers_deleted'), ['deleted'], unique=False)
        batch_op.create_index(batch_op.f('ix_qb_customers_match'), ['match'], unique=False)

    op.create_table('estimates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('qb_id', sa.String(length=32), nullable=False),
    sa.Column('sync_token', sa.Integer(), nullable=False),
    sa.Column('doc_number', sa.String(length=30), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=True),
    sa.Column('txn_date', sa.Date(), nullable=True),
    sa.Column('accepted_date', sa.Date(), nullable=True),
    sa.Column('expiration_date', sa.Date(), nullable=True),
    sa.Column('total', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('customer_qb_id', sa.String(length=32), nullable=True),
    sa.Column('customer_name', sa.String(length=255), nullable=True),
    sa.Column('qb_customer_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('property_id', sa.Integer(), nullable=True),
    sa.Column('address_line1', sa.String(length=255), nullable=True),
    sa.Column('address_zip', sa.String(length=20), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('last_updated', sa.DateTime(), nullable=True),
    sa.Column('synced_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['property_id'], ['properties.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['qb_customer_id'], ['qb_customers.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('qb_id')
    )
    with op.batch_alter_table('estimates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_estimates_accepted_date'), ['accepted_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_estimates_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_estimates_customer_qb_id'), ['customer_qb_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_estimates_deleted'), ['deleted'], unique=False)
        batch_op.create_index(batch_op.f('ix_estimates_doc_number'), ['doc_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_estimates_property_id'), ['property_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_estimates_qb_customer_id'), ['qb_customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_estimates_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_estimates_txn_date'), ['txn_date'], unique=False)

    op.create_table('invoices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('qb_id', sa.String(length=32), nullable=False),
    sa.Column('sync_token', sa.Integer(), nullable=False),
    sa.Column('doc_number', sa.String(length=30), nullable=True),
    sa.Column('txn_date', sa.Date(), nullable=True),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('total', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('balance', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('customer_qb_id', sa.String(length=32), nullable=True),
    sa.Column('customer_name', sa.String(length=255), nullable=True),
    sa.Column('estimate_qb_id', sa.String(length=32), nullable=True),
    sa.Column('estimate_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('last_updated', sa.DateTime(), nullable=True),
    sa.Column('synced_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['estimate_id'], ['estimates.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('qb_id')
    )
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoices_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoices_customer_qb_id'), ['customer_qb_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoices_deleted'), ['deleted'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoices_doc_number'), ['doc_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoices_due_date'), ['due_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoices_estimate_id'), ['estimate_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoices_estimate_qb_id'), ['estimate_qb_id'], unique=False)

    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('estimate_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('property_id', sa.Integer(), nullable=True),
    sa.Column('scheduled_for', sa.Date(), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('paid_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['estimate_id'], ['estimates.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['property_id'], ['properties.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('estimate_id')
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_jobs_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobs_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobs_property_id'), ['property_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobs_scheduled_for'), ['scheduled_for'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobs_status'), ['status'], unique=False)

    op.create_table('payment_invoices',
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('invoice_qb_id', sa.String(length=32), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('amount', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('payment_id', 'invoice_qb_id')
    )
    with op.batch_alter_table('payment_invoices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_invoices_invoice_id'), ['invoice_id'], unique=False)

    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('include_existing_customers', sa.Boolean(), server_default='0', nullable=False))

    with op.batch_alter_table('todos', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column('key', sa.String(length=100), nullable=True))
        batch_op.create_index('ux_todos_kind_key', ['kind', 'key'], unique=True)



def downgrade():
    with op.batch_alter_table('todos', schema=None) as batch_op:
        batch_op.drop_index('ux_todos_kind_key')
        batch_op.drop_column('key')
        batch_op.drop_column('kind')

    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('include_existing_customers')

    with op.batch_alter_table('payment_invoices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_invoices_invoice_id'))

    op.drop_table('payment_invoices')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jobs_status'))
        batch_op.drop_index(batch_op.f('ix_jobs_scheduled_for'))
        batch_op.drop_index(batch_op.f('ix_jobs_property_id'))
        batch_op.drop_index(batch_op.f('ix_jobs_created_at'))
        batch_op.drop_index(batch_op.f('ix_jobs_contact_id'))

    op.drop_table('jobs')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoices_estimate_qb_id'))
        batch_op.drop_index(batch_op.f('ix_invoices_estimate_id'))
        batch_op.drop_index(batch_op.f('ix_invoices_due_date'))
        batch_op.drop_index(batch_op.f('ix_invoices_doc_number'))
        batch_op.drop_index(batch_op.f('ix_invoices_deleted'))
        batch_op.drop_index(batch_op.f('ix_invoices_customer_qb_id'))
        batch_op.drop_index(batch_op.f('ix_invoices_contact_id'))

    op.drop_table('invoices')
    with op.batch_alter_table('estimates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_estimates_txn_date'))
        batch_op.drop_index(batch_op.f('ix_estimates_status'))
        batch_op.drop_index(batch_op.f('ix_estimates_qb_customer_id'))
        batch_op.drop_index(batch_op.f('ix_estimates_property_id'))
        batch_op.drop_index(batch_op.f('ix_estimates_doc_number'))
        batch_op.drop_index(batch_op.f('ix_estimates_deleted'))
        batch_op.drop_index(batch_op.f('ix_estimates_customer_qb_id'))
        batch_op.drop_index(batch_op.f('ix_estimates_contact_id'))
        batch_op.drop_index(batch_op.f('ix_estimates_accepted_date'))

    op.drop_table('estimates')
    with op.batch_alter_table('qb_customers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_qb_customers_match'))
        batch_op.drop_index(batch_op.f('ix_qb_customers_deleted'))
        batch_op.drop_index(batch_op.f('ix_qb_customers_contact_id'))

    op.drop_table('qb_customers')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_txn_date'))
        batch_op.drop_index(batch_op.f('ix_payments_deleted'))
        batch_op.drop_index(batch_op.f('ix_payments_customer_qb_id'))
        batch_op.drop_index(batch_op.f('ix_payments_contact_id'))

    op.drop_table('payments')
    op.drop_table('quickbooks_sync')
