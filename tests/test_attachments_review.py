"""A declaration's attachments (a notarial deed as base64 PDF inside the signed
``str:Zalaczniki``) are listed by ``review show`` with size and type, and written out by
``review export-attachments``; a broken one is an informational finding, not a crash."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from adapters.db.tables import ebok_declaration, worker_document
from tests.sigtools import xmlsig
from tests.sigtools.pki import ALICJA
from tests.test_e2e_declarations import FIRST_FILED, app, deliver  # noqa: F401  (the fixture)
from worker import review
from worker.correspondence_cmd import export_declaration_attachments
from worker.errors import UsageError

DEED = b"%PDF-1.7\n% akt notarialny\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(32)


def zalacznik(name: str, fmt: str, data: bytes, opis: str) -> str:
    return (f'<str:Zalacznik nazwaPliku="{name}" kodowanie="base64" format="{fmt}">'
            f"<str:DaneZalacznika>{base64.b64encode(data).decode()}</str:DaneZalacznika>"
            f"<str:OpisZalacznika>{opis}</str:OpisZalacznika></str:Zalacznik>")


def signed_with_attachments(pki) -> bytes:
    doc = xmlsig.declaration(ALICJA, fee="80.00", residents=2)  # 76.00 computed: FEE_MISMATCH, review
    parts = zalacznik("akt-notarialny.pdf", "application/pdf", DEED, "Akt notarialny") + zalacznik("../zdjecie.jpg", "image/jpeg", PNG, "Zdjęcie")
    doc = doc.replace("</wnio:Deklaracja>", f"</wnio:Deklaracja><str:Zalaczniki>{parts}</str:Zalaczniki>")
    return xmlsig.sign(doc, xmlsig.pz_signature(pki.seal, FIRST_FILED - timedelta(minutes=20), xmlsig.ep_signature(ALICJA)), pki.seal)


def test_review_shows_and_exports_the_attachments(app, pki, capsys, tmp_path):  # noqa: F811
    doc_id = deliver(app, signed_with_attachments(pki), "deed", FIRST_FILED)
    app.processor.run_pending()
    with app.engine.connect() as conn:
        decl = conn.execute(select(ebok_declaration).where(ebok_declaration.c.document_id == doc_id)).mappings().one()
        evidence = conn.execute(select(worker_document.c.evidence).where(worker_document.c.id == doc_id)).scalar_one()
    codes = {f["code"]: f for f in decl["findings"]}
    assert decl["status"] == "NEEDS_REVIEW" and set(codes) == {"FEE_MISMATCH", "ATTACHMENT_UNREADABLE"}
    assert codes["ATTACHMENT_UNREADABLE"]["severity"] == "info" and codes["ATTACHMENT_UNREADABLE"]["field"] == "Zalaczniki/Zalacznik[2]"
    assert [(a["file"], a["size"], a["detected_type"]) for a in evidence["attachments"]] == [
        ("akt-notarialny.pdf", len(DEED), "application/pdf"), ("zdjecie.png", len(PNG), "image/png")]

    capsys.readouterr()
    review.show(app, decl["id"])
    shown = capsys.readouterr().out
    assert "Załączniki: 2" in shown
    assert "1. akt-notarialny.pdf — application/pdf, 2,0 KiB — Akt notarialny" in shown
    assert "2. zdjecie.png — image/png, 40 B" in shown and "nie zgadza się" in shown

    assert export_declaration_attachments(app, decl["id"], tmp_path / "out") == 0
    folder = tmp_path / "out" / f"deklaracja-{decl['id']}"
    assert (folder / "zalaczniki" / "akt-notarialny.pdf").read_bytes() == DEED
    assert (folder / "zalaczniki" / "zdjecie.png").read_bytes() == PNG
    assert [a["original_name"] for a in json.loads((folder / "zalaczniki.json").read_text(encoding="utf-8"))] == ["akt-notarialny.pdf", "../zdjecie.jpg"]
    with pytest.raises(UsageError, match="niczego nie nadpisano"):
        export_declaration_attachments(app, decl["id"], tmp_path / "out")
    assert (folder / "zalaczniki" / "akt-notarialny.pdf").read_bytes() == DEED


def test_attachments_added_after_signing_are_not_read(app, pki, capsys):  # noqa: F811
    raw = signed_with_attachments(pki).replace(b"Akt notarialny", b"Akt notarialny (zmieniony)")
    doc_id = deliver(app, raw, "tampered", FIRST_FILED)
    app.processor.run_pending()
    with app.engine.connect() as conn:
        evidence = conn.execute(select(worker_document.c.evidence).where(worker_document.c.id == doc_id)).scalar_one()
        decl = conn.execute(select(ebok_declaration).where(ebok_declaration.c.document_id == doc_id)).mappings().one()
    assert decl["status"] == "REJECTED" and "attachments" not in evidence
    capsys.readouterr()
    review.show(app, decl["id"])
    assert "Załączniki: brak" in capsys.readouterr().out


def test_the_command_line_names_the_new_actions():
    from worker import commands
    from worker.cli import _parser

    args = _parser().parse_args(["review", "export-attachments", "5", "--to", "/tmp/x"])
    assert (args.review_command, args.id, args.to) == ("export-attachments", 5, "/tmp/x")
    assert args.func is commands.review_export_attachments
    args = _parser().parse_args(["correspondence", "list", "--since", "2025-09-01", "--json"])
    assert (args.correspondence_command, str(args.since), args.json) == ("list", "2025-09-01", True)
    assert args.func is commands.correspondence_list
