"""Filing documents through the local ePUAP double and reading back what the eBOK got:
the helpers of the command-line tests that file many documents (``run --once``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import create_engine, select

from adapters.db.tables import ebok_declaration, worker_document


def file_document(server, mailbox: str, name: str, raw: bytes, filed: datetime, *, order: int | None = None) -> None:
    """Queue ``raw`` in ``mailbox`` of the double as ``NAME.xml`` filed at ``filed``
    (``order``: its place in the queue, else by filing time and name)."""
    meta = {"dataNadania": filed.isoformat(timespec="milliseconds"), "nazwaPliku": f"{name}.xml", "czyTestowe": False}
    server.enqueue(mailbox, raw, meta, name=f"{order:02d}-{name}.xml" if order is not None else f"{name}.xml")


def declarations_by_file(db_url: str, *, suffix: bool = False) -> dict[str, dict[str, Any]]:
    """Every ``ebok_declaration`` row with its document's metadata, by the file name
    ePUAP gave (without ``.xml`` unless ``suffix``; the source reference when there is no
    file name)."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(ebok_declaration, worker_document.c.meta).join(worker_document, worker_document.c.id == ebok_declaration.c.document_id)
            ).mappings().all()
    finally:
        engine.dispose()
    names = {row["id"]: str(row["meta"].get("nazwaPliku") or row["source_ref"]) for row in rows}
    return {(names[row["id"]] if suffix else names[row["id"]].removesuffix(".xml")): dict(row) for row in rows}
