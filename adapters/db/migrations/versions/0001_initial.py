"""Initial schema: the eBOK contract tables and the worker's own tables.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ebok_payer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('pesel', sa.String(length=11), nullable=True),
    sa.Column('nip', sa.String(length=10), nullable=True),
    sa.Column('regon', sa.String(length=14), nullable=True),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=True),
    sa.Column('last_name', sa.String(length=100), nullable=True),
    sa.Column('postal_code', sa.String(length=6), nullable=True),
    sa.Column('town', sa.String(length=100), nullable=True),
    sa.Column('street', sa.String(length=100), nullable=True),
    sa.Column('building', sa.String(length=20), nullable=True),
    sa.Column('flat', sa.String(length=20), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('e_correspondence', sa.Boolean(), nullable=False),
    sa.Column('bank_account', sa.String(length=26), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ebok_payer')),
    sa.UniqueConstraint('bank_account', name=op.f('uq_ebok_payer_bank_account')),
    sa.UniqueConstraint('nip', name=op.f('uq_ebok_payer_nip')),
    sa.UniqueConstraint('pesel', name=op.f('uq_ebok_payer_pesel'))
    )
    op.create_table('ebok_property',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('gmina', sa.String(length=100), nullable=False),
    sa.Column('postal_code', sa.String(length=6), nullable=True),
    sa.Column('town', sa.String(length=100), nullable=False),
    sa.Column('street', sa.String(length=100), nullable=True),
    sa.Column('building', sa.String(length=20), nullable=False),
    sa.Column('flat', sa.String(length=20), nullable=True),
    sa.Column('parcel', sa.String(length=50), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('building_type', sa.String(length=20), nullable=True),
    sa.Column('match_key', sa.String(length=400), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ebok_property')),
    sa.UniqueConstraint('match_key', name=op.f('uq_ebok_property_match_key'))
    )
    op.create_table('worker_document',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('source_ref', sa.String(length=400), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('storage_key', sa.String(length=200), nullable=False),
    sa.Column('filed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claim_token', sa.String(length=36), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('evidence', sa.JSON(), nullable=True),
    sa.Column('findings', sa.JSON(), nullable=True),
    sa.Column('declaration', sa.JSON(), nullable=True),
    sa.Column('review_decision', sa.String(length=16), nullable=True),
    sa.Column('reviewed_by', sa.String(length=100), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('review_note', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_worker_document')),
    sa.UniqueConstraint('channel', 'source_ref', name='uq_worker_document_channel_source_ref')
    )
    op.create_index('ix_worker_document_sha', 'worker_document', ['channel', 'source', 'sha256'], unique=False)
    op.create_index('ix_worker_document_state', 'worker_document', ['state', 'next_attempt_at'], unique=False)
    op.create_table('worker_mailbox',
    sa.Column('address', sa.String(length=210), nullable=False),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('address', name=op.f('pk_worker_mailbox'))
    )
    op.create_table('ebok_declaration',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('payer_id', sa.Integer(), nullable=True),
    sa.Column('property_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('source_ref', sa.String(length=400), nullable=False),
    sa.Column('document_sha256', sa.String(length=64), nullable=False),
    sa.Column('form', sa.String(length=20), nullable=True),
    sa.Column('purpose', sa.String(length=12), nullable=True),
    sa.Column('applies_from', sa.Date(), nullable=True),
    sa.Column('filed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('residents', sa.Integer(), nullable=True),
    sa.Column('composting', sa.Boolean(), nullable=True),
    sa.Column('declared_fee', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('computed_fee', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('signature', sa.String(length=20), nullable=True),
    sa.Column('signature_status', sa.String(length=16), nullable=True),
    sa.Column('signer', sa.String(length=300), nullable=True),
    sa.Column('findings', sa.JSON(), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=True),
    sa.Column('corrects_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['corrects_id'], ['ebok_declaration.id'], name=op.f('fk_ebok_declaration_corrects_id_ebok_declaration')),
    sa.ForeignKeyConstraint(['document_id'], ['worker_document.id'], name=op.f('fk_ebok_declaration_document_id_worker_document')),
    sa.ForeignKeyConstraint(['payer_id'], ['ebok_payer.id'], name=op.f('fk_ebok_declaration_payer_id_ebok_payer')),
    sa.ForeignKeyConstraint(['property_id'], ['ebok_property.id'], name=op.f('fk_ebok_declaration_property_id_ebok_property')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ebok_declaration')),
    sa.UniqueConstraint('channel', 'source_ref', name='uq_ebok_declaration_channel_source_ref'),
    sa.UniqueConstraint('document_id', name=op.f('uq_ebok_declaration_document_id'))
    )
    op.create_index('ix_ebok_declaration_property_status', 'ebok_declaration', ['property_id', 'status'], unique=False)
    op.create_table('worker_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('result', sa.String(length=12), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['document_id'], ['worker_document.id'], name=op.f('fk_worker_attempt_document_id_worker_document')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_worker_attempt'))
    )
    op.create_index(op.f('ix_worker_attempt_document_id'), 'worker_attempt', ['document_id'], unique=False)
    op.create_table('ebok_fee_period',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('property_id', sa.Integer(), nullable=False),
    sa.Column('payer_id', sa.Integer(), nullable=False),
    sa.Column('declaration_id', sa.Integer(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('monthly_fee', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.ForeignKeyConstraint(['declaration_id'], ['ebok_declaration.id'], name=op.f('fk_ebok_fee_period_declaration_id_ebok_declaration')),
    sa.ForeignKeyConstraint(['payer_id'], ['ebok_payer.id'], name=op.f('fk_ebok_fee_period_payer_id_ebok_payer')),
    sa.ForeignKeyConstraint(['property_id'], ['ebok_property.id'], name=op.f('fk_ebok_fee_period_property_id_ebok_property')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ebok_fee_period'))
    )
    op.create_index('ix_ebok_fee_period_property', 'ebok_fee_period', ['property_id', 'valid_from'], unique=False)
    op.create_table('worker_audit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=True),
    sa.Column('declaration_id', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=30), nullable=False),
    sa.Column('old_status', sa.String(length=16), nullable=True),
    sa.Column('new_status', sa.String(length=16), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['declaration_id'], ['ebok_declaration.id'], name=op.f('fk_worker_audit_declaration_id_ebok_declaration')),
    sa.ForeignKeyConstraint(['document_id'], ['worker_document.id'], name=op.f('fk_worker_audit_document_id_worker_document')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_worker_audit'))
    )
    op.create_index(op.f('ix_worker_audit_declaration_id'), 'worker_audit', ['declaration_id'], unique=False)
    op.create_index(op.f('ix_worker_audit_document_id'), 'worker_audit', ['document_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_worker_audit_document_id'), table_name='worker_audit')
    op.drop_index(op.f('ix_worker_audit_declaration_id'), table_name='worker_audit')
    op.drop_table('worker_audit')
    op.drop_index('ix_ebok_fee_period_property', table_name='ebok_fee_period')
    op.drop_table('ebok_fee_period')
    op.drop_index(op.f('ix_worker_attempt_document_id'), table_name='worker_attempt')
    op.drop_table('worker_attempt')
    op.drop_index('ix_ebok_declaration_property_status', table_name='ebok_declaration')
    op.drop_table('ebok_declaration')
    op.drop_table('worker_mailbox')
    op.drop_index('ix_worker_document_state', table_name='worker_document')
    op.drop_index('ix_worker_document_sha', table_name='worker_document')
    op.drop_table('worker_document')
    op.drop_table('ebok_property')
    op.drop_table('ebok_payer')

