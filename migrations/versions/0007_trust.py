"""Security stamps, encrypted integration secrets, erasable opt-outs, reply classification.

Revision ID: 0007_trust
Revises: 0006_import_rows_log
"""
import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0007_trust"
down_revision = "0006_import_rows_log"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "user_security",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("stamp", sa.String(length=32), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["ab_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "integration_secrets",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["updated_by_id"], ["ab_user.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("opt_outs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone_hash", sa.String(length=64), nullable=True))
        batch_op.alter_column("phone", existing_type=sa.String(length=20), nullable=True)
        batch_op.create_unique_constraint("uq_opt_outs_phone_hash", ["phone_hash"])
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, phone FROM opt_outs WHERE phone IS NOT NULL")).fetchall()
    for row_id, phone in rows:
        connection.execute(sa.text("UPDATE opt_outs SET phone_hash = :h WHERE id = :id"),
                           {"h": hashlib.sha256(phone.encode()).hexdigest(), "id": row_id})
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("opt_out_class", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("opt_out_reviewed_at", sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_messages_opt_out_class"), ["opt_out_class"], unique=False)


def downgrade():
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_opt_out_class"))
        batch_op.drop_column("opt_out_reviewed_at")
        batch_op.drop_column("opt_out_class")
    op.execute("DELETE FROM opt_outs WHERE phone IS NULL")
    with op.batch_alter_table("opt_outs", schema=None) as batch_op:
        batch_op.drop_constraint("uq_opt_outs_phone_hash", type_="unique")
        batch_op.alter_column("phone", existing_type=sa.String(length=20), nullable=False)
        batch_op.drop_column("phone_hash")
    op.drop_table("integration_secrets")
    op.drop_table("user_security")
