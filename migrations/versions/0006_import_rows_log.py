"""Import outcomes are a log: no foreign keys on import_rows.

Each outcome row used to run two foreign-key checks (its import, its contact) as it was
written, ~40% of writing an import's outcomes. Imports are never deleted, and an outcome
keeps the id of the contact it made even after that contact is deleted, as a log should.

Revision ID: 0006_import_rows_log
Revises: 0005_contact_search
"""
from alembic import op

revision = "0006_import_rows_log"
down_revision = "0005_contact_search"
branch_labels = None
depends_on = None

NAMES = {"fk": "%(table_name)s_%(column_0_name)s_fkey"}  # PostgreSQL's own names, given to SQLite's unnamed ones


def upgrade():
    with op.batch_alter_table("import_rows", naming_convention=NAMES) as batch:
        batch.drop_constraint("import_rows_import_id_fkey", type_="foreignkey")
        batch.drop_constraint("import_rows_contact_id_fkey", type_="foreignkey")


def downgrade():
    op.execute("DELETE FROM import_rows WHERE import_id NOT IN (SELECT id FROM imports)")
    op.execute("UPDATE import_rows SET contact_id = NULL WHERE contact_id NOT IN (SELECT id FROM contacts)")
    with op.batch_alter_table("import_rows", naming_convention=NAMES) as batch:
        batch.create_foreign_key("import_rows_import_id_fkey", "imports", ["import_id"], ["id"], ondelete="CASCADE")
        batch.create_foreign_key("import_rows_contact_id_fkey", "contacts", ["contact_id"], ["id"],
                                 ondelete="SET NULL")
