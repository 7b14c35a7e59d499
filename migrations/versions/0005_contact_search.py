"""Trigram indexes for contains-search on contact names and phones (PostgreSQL only).

FAB's "Contains" filter is ILIKE '%term%', which a b-tree cannot serve; on 1M contacts a
sequential scan takes seconds. SQLite (the embedded run) has no pg_trgm and keeps scanning.

Revision ID: 0005_contact_search
Revises: 0004_campaigns
"""
from alembic import op

revision = "0005_contact_search"
down_revision = "0004_campaigns"
branch_labels = None
depends_on = None

COLUMNS = ("first_name", "last_name", "phone", "email")


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in COLUMNS:
        op.execute(f"CREATE INDEX IF NOT EXISTS ix_contacts_{column}_trgm ON contacts "
                   f"USING gin ({column} gin_trgm_ops)")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.execute(f"DROP INDEX IF EXISTS ix_contacts_{column}_trgm")
