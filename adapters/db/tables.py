"""Database tables: the four eBOK contract tables and the worker's own.

The ``ebok_*`` tables are the interface the eBOK reads (``spec/ebok-contract.md``): their
names and columns are fixed; new columns may be added, always through a migration. The
``worker_*`` tables are the worker's own bookkeeping: documents as received, their state,
processing attempts, the audit trail of outcome changes, and per-mailbox pull state.

The schema is created only by Alembic migrations (``adapters/db/migrations``); this module
describes it for queries, and a test checks that the two agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

Money = Numeric(12, 2, asdecimal=True)


class UtcDateTime(TypeDecorator):
    """Timestamps stored in UTC and always returned timezone-aware (SQLite keeps none)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

# --- eBOK contract tables --------------------------------------------------------------

ebok_payer = Table(
    "ebok_payer",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),  # PERSON / INSTITUTION
    Column("pesel", String(11), unique=True),
    Column("nip", String(10), unique=True),
    Column("regon", String(14)),
    Column("name", String(300), nullable=False),
    Column("first_name", String(100)),
    Column("last_name", String(100)),
    Column("postal_code", String(6)),
    Column("town", String(100)),
    Column("street", String(100)),
    Column("building", String(20)),
    Column("flat", String(20)),
    Column("email", String(254)),
    Column("phone", String(20)),
    Column("e_correspondence", Boolean, nullable=False, default=False),
    Column("bank_account", String(26), unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

ebok_property = Table(
    "ebok_property",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("gmina", String(100), nullable=False),
    Column("postal_code", String(6)),
    Column("town", String(100), nullable=False),
    Column("street", String(100)),
    Column("building", String(20), nullable=False),
    Column("flat", String(20)),
    Column("parcel", String(50)),
    Column("kind", String(20), nullable=False),  # RESIDENTIAL / NON_RESIDENTIAL / MIXED
    Column("building_type", String(20)),  # SINGLE_FAMILY / MULTI_FLAT / null
    # added by the worker: the normalised address the property is identified by
    Column("match_key", String(400), nullable=False, unique=True),
)

ebok_declaration = Table(
    "ebok_declaration",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("payer_id", Integer, ForeignKey("ebok_payer.id")),
    Column("property_id", Integer, ForeignKey("ebok_property.id")),
    Column("channel", String(8), nullable=False),  # EPUAP / PAPER
    Column("source_ref", String(400), nullable=False),
    Column("document_sha256", String(64), nullable=False),
    Column("form", String(20)),
    Column("purpose", String(12)),
    Column("applies_from", Date),
    Column("filed_at", UtcDateTime()),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("residents", Integer),
    Column("composting", Boolean),
    Column("declared_fee", Money),
    Column("computed_fee", Money),
    Column("signature", String(20)),
    Column("signature_status", String(16)),
    Column("signer", String(300)),
    Column("findings", JSON, nullable=False),
    Column("processed_at", UtcDateTime(), nullable=False),
    # added by the worker
    Column("document_id", Integer, ForeignKey("worker_document.id"), unique=True),
    Column("corrects_id", Integer, ForeignKey("ebok_declaration.id")),
    UniqueConstraint("channel", "source_ref", name="uq_ebok_declaration_channel_source_ref"),
)
Index("ix_ebok_declaration_property_status", ebok_declaration.c.property_id, ebok_declaration.c.status)

ebok_fee_period = Table(
    "ebok_fee_period",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("property_id", Integer, ForeignKey("ebok_property.id"), nullable=False),
    Column("payer_id", Integer, ForeignKey("ebok_payer.id"), nullable=False),
    Column("declaration_id", Integer, ForeignKey("ebok_declaration.id"), nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date),
    Column("monthly_fee", Money, nullable=False),
)
Index("ix_ebok_fee_period_property", ebok_fee_period.c.property_id, ebok_fee_period.c.valid_from)

# --- the worker's own tables -----------------------------------------------------------

worker_document = Table(
    "worker_document",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("channel", String(8), nullable=False),
    Column("source_ref", String(400), nullable=False),
    Column("source", String(200)),  # the mailbox address, or the scan inbox
    Column("sha256", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("storage_key", String(200), nullable=False),  # path under storage.path
    Column("filed_at", UtcDateTime()),
    Column("received_at", UtcDateTime(), nullable=False),
    # channel metadata as received (no content); for ePUAP also the fileIds its attachments by
    # reference link ("files_by_reference") and, once fetched, what each was stored as
    # ("referenced_files": adapters.epuap.referenced)
    Column("meta", JSON, nullable=False),
    # [FETCHING ->] RECEIVED -> PROCESSING -> DONE | FAILED (technical; retried) ; see worker.states
    Column("state", String(12), nullable=False),
    Column("kind", String(16)),  # DECLARATION / CORRESPONDENCE / UNREADABLE / TEST
    Column("outcome", String(16)),  # the ebok_declaration status, when there is one
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime()),
    Column("claim_token", String(36)),  # who holds the PROCESSING claim
    Column("lease_until", UtcDateTime()),
    Column("last_error", Text),
    Column("processed_at", UtcDateTime()),
    Column("evidence", JSON),  # signature verification evidence and other processing facts
    Column("findings", JSON),  # findings of the last processing (also for non-declarations)
    Column("declaration", JSON),  # the mapped declaration (worker.domain.serialize), for recomputing fees
    # the office's decision on a NEEDS_REVIEW declaration (kept across reprocessing)
    Column("review_decision", String(16)),
    Column("reviewed_by", String(100)),
    Column("reviewed_at", UtcDateTime()),
    Column("review_note", Text),
    UniqueConstraint("channel", "source_ref", name="uq_worker_document_channel_source_ref"),
)
Index("ix_worker_document_state", worker_document.c.state, worker_document.c.next_attempt_at)
Index("ix_worker_document_sha", worker_document.c.channel, worker_document.c.source, worker_document.c.sha256)

worker_attempt = Table(
    "worker_attempt",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("document_id", Integer, ForeignKey("worker_document.id"), nullable=False, index=True),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime()),
    Column("result", String(12)),  # DONE / FAILED / INTERRUPTED (its process gone: no failure)
    Column("error", Text),
    Column("duration_s", Float),
)

worker_audit = Table(
    "worker_audit",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("document_id", Integer, ForeignKey("worker_document.id"), index=True),
    Column("declaration_id", Integer, ForeignKey("ebok_declaration.id"), index=True),
    Column("actor", String(100), nullable=False),  # "worker" or the office user
    Column("action", String(30), nullable=False),  # PROCESSED / REPROCESSED / REVIEW_ACCEPT / …
    Column("old_status", String(16)),
    Column("new_status", String(16)),
    Column("note", Text),
)

worker_mailbox = Table(
    "worker_mailbox",
    metadata,
    Column("address", String(210), primary_key=True),
    Column("last_success_at", UtcDateTime()),
    Column("last_attempt_at", UtcDateTime()),
    Column("last_error", Text),
    Column("blocked_since", UtcDateTime()),  # the head document could not be taken in since then
    Column("blocked_reason", Text),
    Column("error_kind", String(16)),  # what the last error was: epuap / storage / database / config
)

worker_setting = Table(
    "worker_setting",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# one signature, one filing (spec/signatures.md): the SHA-256 of every verified
# ds:SignatureValue, per document; see adapters/db/signature_digests.py
worker_signature_digest = Table(
    "worker_signature_digest",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("digest", String(64), nullable=False, index=True),
    Column("document_id", Integer, ForeignKey("worker_document.id"), nullable=False, index=True),
    Column("recorded_at", UtcDateTime(), nullable=False),
    UniqueConstraint("digest", "document_id", name="uq_worker_signature_digest_digest_document_id"),
)

# the hand-over of correspondence to the office's outbox (``worker.correspondence``): a row
# is written when a document's folder is in the outbox; attempts that failed (an
# unwritable outbox) leave a row without ``handed_over_at`` and with the error
worker_correspondence = Table(
    "worker_correspondence",
    metadata,
    Column("document_id", Integer, ForeignKey("worker_document.id"), primary_key=True),
    Column("folder", String(300)),  # <YYYY-MM-DD>/<document id>, relative to the outbox
    Column("handed_over_at", UtcDateTime()),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_attempt_at", UtcDateTime()),
    Column("last_error", Text),
)

# attachments sent by reference (``kodowanie="URI"``), fetched from ePUAP's file repository
# (``adapters.epuap.referenced``): one row per fileId, since a file can be downloaded once —
# PENDING until its bytes are stored (FETCHED) or it is known that they cannot be had
# (UNAVAILABLE, with the reason); a file linked by a second document is never asked for again
worker_remote_file = Table(
    "worker_remote_file",
    metadata,
    Column("file_id", String(200), primary_key=True),
    Column("subject", String(100), nullable=False),  # the podmiot it was (to be) downloaded as
    Column("state", String(12), nullable=False, index=True),  # PENDING / FETCHED / UNAVAILABLE
    Column("reason", String(20)),  # why UNAVAILABLE: fault, too_large, unreachable, invalid, disabled
    Column("sha256", String(64)),
    Column("size", BigInteger),
    Column("storage_key", String(200)),  # under storage.path, like a document
    Column("filename", String(300)),  # as the repository named it (never used as a path)
    Column("mime_type", String(200)),
    Column("encoding", String(50)),
    Column("detected_type", String(100)),  # what its first bytes show (worker.domain.attachments.sniff)
    Column("attempts", Integer, nullable=False, default=0),  # downloadFile requests sent
    Column("failed_passes", Integer, nullable=False, default=0),  # passes that ended with the repository unreachable
    Column("first_document_id", Integer, ForeignKey("worker_document.id")),
    Column("first_seen_at", UtcDateTime(), nullable=False),
    Column("last_attempt_at", UtcDateTime()),
    Column("settled_at", UtcDateTime()),
    Column("last_error", Text),  # Polish, for the administrator (no personal data)
)

# the worker's counters for monitoring (``adapters/db/counters.py``): documents processed by
# outcome, errors by kind — counted in the transactions that do the work, shared by every
# process on the database, never decreasing
worker_counter = Table(
    "worker_counter",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("label", String(40), primary_key=True),
    Column("value", Float, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
