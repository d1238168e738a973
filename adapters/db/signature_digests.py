"""One signature, one filing (``spec/signatures.md``): recording the digests of verified
signature values and refusing the same signature in another document.

:func:`apply_batch` is called for the processed documents of a batch, inside the
transaction that loads them, **before** ``ebok.load_batch`` (:func:`apply`: one document):

1. The SHA-256 of every cryptographically verified ``ds:SignatureValue`` of the document
   (``SignatureCheck.value_digest``, VALID or INDETERMINATE signatures only) is recorded
   in ``worker_signature_digest`` (replacing what an earlier processing of the same
   document recorded). Nothing is recorded for an unverified signature, a paper
   document or a document that is not a declaration.
2. Every other document that carried one of those values is looked up. The copy that
   counts is the one **filed first**: earliest ``worker_document.filed_at`` (ePUAP's
   ``dataNadania``; a document without one comes after every document with one), a tie
   broken by the lowest document id. Arrival order does not matter.
3. When another document counts, this one gets ``DUPLICATE_SIGNATURE`` (REJECTED, naming
   that document): ``ebok.load`` then changes no payer data and no fee period.
4. When this document counts and a later-filed copy was already loaded, that copy is
   **re-decided** here: its ``ebok_declaration`` becomes REJECTED with
   ``DUPLICATE_SIGNATURE`` (no longer a correction's base), its document's outcome and
   findings follow, an audit row ``DUPLICATE_SIGNATURE`` records the change, and its
   property is reconciled as a whole (``ebok.reconcile_property``: a correction that
   named the copy as its base finds its base again, supersession and fee periods
   follow).

On PostgreSQL a transaction-scoped advisory lock per digest serialises two workers
deciding documents with the same signature at the same time; SQLite has one writer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, text, update

from adapters.db.ebok import reconcile_property
from adapters.db.tables import ebok_declaration, worker_audit, worker_document, worker_signature_digest
from worker.domain.findings import REJECTED, Finding, finding
from worker.pipeline import DECLARATION

log = logging.getLogger(__name__)

DUPLICATE_SIGNATURE = "DUPLICATE_SIGNATURE"
AUDIT_ACTION = "DUPLICATE_SIGNATURE"


@dataclass
class Decision:
    """What :func:`apply` decided for one document."""

    digests: list[str] = field(default_factory=list)
    first_document_id: int | None = None  # set when this document is a duplicate
    redecided_document_ids: list[int] = field(default_factory=list)  # later copies now REJECTED


def verified_digests(signature: Any) -> list[str]:
    """The digests of the verified signature values of a ``SignatureResult``."""
    checks = getattr(signature, "checks", ()) or ()
    return sorted({c.value_digest for c in checks if c.signed_root is not None and c.value_digest})


def duplicate_finding(first_id: int, first_filed_at: datetime | None) -> Finding:
    when = f" złożonym {first_filed_at.strftime('%Y-%m-%d %H:%M UTC')}" if first_filed_at else ""
    return finding(
        DUPLICATE_SIGNATURE,
        None,
        f"Ten sam podpis elektroniczny (ta sama wartość podpisu) wpłynął już w dokumencie nr {first_id}{when}. "
        "Ponownie przesłana kopia podpisanego dokumentu nie zmienia danych w eBOK.",
    )


def _key(filed_at: datetime | None, document_id: int) -> tuple:
    # documents with a filing time first (by time), then those without; ties: lowest id
    return (0, filed_at, document_id) if filed_at is not None else (1, document_id)


def _lock(conn: Connection, digests: list[str]) -> None:
    if conn.dialect.name != "postgresql" or not digests:
        return
    # in key order (no deadlock between two workers), one statement for all
    keys = sorted({int(digest[:15], 16) for digest in digests})
    conn.execute(
        text("SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY 1) AS s"), {"keys": keys}
    )


def apply(conn: Connection, doc: Any, ctx: Any, *, ruleset: Any, now: datetime, actor: str) -> Decision:
    """Record this document's signature digests and apply the duplicate rule (see the
    module docstring). Adds ``DUPLICATE_SIGNATURE`` to ``ctx.findings`` when this
    document is a copy."""
    return apply_batch(conn, [(doc, ctx)], ruleset=ruleset, now=now, actor=actor)[0]


def apply_batch(conn: Connection, docs: Sequence[tuple[Any, Any]], *, ruleset: Any, now: datetime, actor: str) -> list[Decision]:
    """:func:`apply` for the documents of a batch, before any of them is loaded: their
    digests recorded and looked up with one statement each. Every copy of a signature is
    judged against all the documents that carry it, those of the batch included, so the
    copy that counts is the one filed first whichever of them arrived first."""
    s = worker_signature_digest.c
    w = worker_document.c
    ids = [doc["id"] for doc, _ in docs]
    decisions = [Decision(digests=verified_digests(ctx.signature) if ctx.kind == DECLARATION else []) for _, ctx in docs]
    conn.execute(delete(worker_signature_digest).where(s.document_id.in_(ids)))
    wanted = sorted({digest for decision in decisions for digest in decision.digests})
    if not wanted:
        return decisions
    _lock(conn, wanted)
    conn.execute(insert(worker_signature_digest), [
        {"digest": digest, "document_id": doc["id"], "recorded_at": now}
        for (doc, _), decision in zip(docs, decisions, strict=True) for digest in decision.digests
    ])
    # who carries each digest: the documents before this batch, and the batch's own
    carriers: dict[str, dict[int, datetime | None]] = {}
    for r in conn.execute(
        select(s.digest, w.id, w.filed_at).join(worker_document, s.document_id == w.id).where(s.digest.in_(wanted), w.id.not_in(ids))
    ):
        carriers.setdefault(r.digest, {})[r.id] = r.filed_at
    for (doc, _), decision in zip(docs, decisions, strict=True):
        for digest in decision.digests:
            carriers.setdefault(digest, {})[doc["id"]] = doc["filed_at"]
    redecided: set[int] = set()
    batch = set(ids)
    for (doc, ctx), decision in zip(docs, decisions, strict=True):
        everyone: dict[int, datetime | None] = {}
        for digest in decision.digests:
            everyone.update(carriers[digest])
        if len(everyone) < 2:
            continue
        first_id, first_filed = min(everyone.items(), key=lambda e: _key(e[1], e[0]))
        if first_id != doc["id"]:
            decision.first_document_id = first_id
            ctx.add(duplicate_finding(first_id, first_filed))
            log.warning(
                "signature already filed in another document",
                extra={"event": "signature.duplicate", "document_id": doc["id"], "first_document_id": first_id},
            )
        dup = duplicate_finding(first_id, first_filed)
        for other_id in sorted(everyone):
            # a copy of this batch gets its finding before it is loaded (above); one
            # loaded before is decided again, once
            if other_id in (doc["id"], first_id) or other_id in batch or other_id in redecided:
                continue
            if _redecide(conn, other_id, first_id, dup, ruleset=ruleset, now=now, actor=actor):
                redecided.add(other_id)
                decision.redecided_document_ids.append(other_id)
                log.warning(
                    "a later-filed copy re-decided as a duplicate",
                    extra={"event": "signature.duplicate_redecided", "document_id": other_id, "first_document_id": first_id},
                )
    return decisions


def _redecide(conn: Connection, document_id: int, first_id: int, dup: Finding, *, ruleset: Any, now: datetime, actor: str) -> bool:
    """Make the loaded declaration of a later copy REJECTED / DUPLICATE_SIGNATURE and
    decide its property again. False when nothing changed (not loaded yet — it will find
    the first copy itself — or already decided so)."""
    d = ebok_declaration.c
    row = conn.execute(select(d.id, d.status, d.property_id, d.findings).where(d.document_id == document_id)).first()
    if row is None:
        return False
    old_findings = list(row.findings or [])
    findings = [f for f in old_findings if f.get("code") != DUPLICATE_SIGNATURE] + [dup.to_dict()]
    if row.status == REJECTED and findings == old_findings:
        return False
    conn.execute(update(ebok_declaration).where(d.id == row.id).values(status=REJECTED, corrects_id=None, findings=findings, processed_at=now))
    conn.execute(update(worker_document).where(worker_document.c.id == document_id).values(outcome=REJECTED, findings=findings))
    conn.execute(
        insert(worker_audit).values(
            at=now, document_id=document_id, declaration_id=row.id, actor=actor, action=AUDIT_ACTION,
            old_status=row.status, new_status=REJECTED, note=f"signature first filed in document {first_id}",
        )
    )  # fmt: skip
    if row.property_id is not None:
        reason = f"po wczytaniu dokumentu nr {first_id} z tym samym podpisem, złożonego wcześniej"
        reconcile_property(conn, row.property_id, ruleset, now, actor, loaded=None, reason=reason)
    return True
