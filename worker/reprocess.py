"""``reprocess``: run stored documents again from their raw bytes.

Selection: ``--id`` (document ids, as in the logs and ``status``) and ``--declaration``
(eBOK declaration ids, as in ``review list``) name documents — both together select the
union; then every other given filter must match: ``--status`` (an eBOK outcome,
``FAILED``, or a kind: ``CORRESPONDENCE``, ``TEST``, ``UNREADABLE``), ``--code`` (a finding
code), ``--since``/``--until`` (received date, Polish calendar days), ``--filed-since``/
``--filed-until`` (filing date) and ``--channel``. A filter that cannot match is a usage
error (exit 2), not an empty run.
``--dry-run`` computes each document's new outcome inside a transaction that is rolled
back; without it the documents go back to RECEIVED and are processed at once, in batches
(one transaction per batch), shared by ``[processing] workers`` processes. Output: one Polish line per document (old → new outcome, fee change,
findings added and gone) with a progress bar on a terminal, then a summary; ``--json``
for scripts.
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from adapters.db import documents
from worker import fmt, parallel, states
from worker.app import App
from worker.domain.clock import utcnow
from worker.domain.findings import CODES
from worker.errors import UsageError
from worker.output import EXIT_FAILURE, EXIT_OK, print_json
from worker.processing import Processor, requeue
from worker.progress import progress_bar

log = logging.getLogger("worker.reprocess")

_KINDS = {"CORRESPONDENCE", "TEST", "UNREADABLE", "DECLARATION"}


@dataclass(frozen=True)
class Selection:
    """Which stored documents to run again (the command's filters; see the module text)."""

    ids: list[int] = field(default_factory=list)
    declarations: list[int] = field(default_factory=list)
    status: str | None = None
    code: str | None = None
    since: date | None = None
    until: date | None = None
    channel: str | None = None
    filed_since: date | None = None
    filed_until: date | None = None


def _documents_of_declarations(app: App, decl_ids: list[int]) -> list[int]:
    with app.engine.connect() as conn:
        found = documents.documents_of_declarations(conn, decl_ids)
    missing = sorted(set(decl_ids) - set(found))
    if missing:
        raise UsageError(f"--declaration: nie ma deklaracji o id {', '.join(map(str, missing))} (id deklaracji z „review list”; id dokumentu podaje się w --id)")
    return sorted(set(found.values()))


def select_documents(app: App, sel: Selection) -> list[int]:
    """The documents the filters select. A filter that cannot match anything — an id that
    does not exist, an unknown status or finding code, a day range that ends before it
    begins — is a usage error naming it (``spec/operations.md``, "What a clerk sees"); a
    valid selection that happens to match nothing is an empty list."""
    declarations = sel.declarations
    if not (sel.ids or declarations or sel.status or sel.code or sel.since or sel.until or sel.channel or sel.filed_since or sel.filed_until):
        raise UsageError("reprocess: podaj co najmniej jedno z --id, --declaration, --status, --code, --since, --until, "
                         "--filed-since, --filed-until, --channel")
    check_day_range(sel.since, sel.until, "--since", "--until")
    check_day_range(sel.filed_since, sel.filed_until, "--filed-since", "--filed-until")
    code = None
    if sel.code:
        code = sel.code.strip().upper()
        if code not in CODES:
            raise UsageError(f"--code: nie ma kodu ustalenia {sel.code!r} (kody i ich znaczenie: docs/obsluga.md, rozdział 3; "
                             "np. FEE_MISMATCH, LOW_CONFIDENCE, SIGNATURE_UNTRUSTED)")
    named = None
    if sel.ids or declarations:
        if sel.ids:
            with app.engine.connect() as conn:
                missing = sorted(set(sel.ids) - documents.existing_ids(conn, sel.ids))
            if missing:
                raise UsageError(f"--id: nie ma dokumentu o id {', '.join(map(str, missing))} (id dokumentu z logów i „status”; "
                                 "id deklaracji z „review list” podaje się w --declaration)")
        named = set(sel.ids) | set(_documents_of_declarations(app, declarations) if declarations else [])
    failed, kind, status = False, None, None
    if sel.status:
        s = sel.status.strip().upper()
        if s == states.FAILED:
            failed = True
        elif s in _KINDS:
            kind = s
        elif s in documents.DECLARATION_STATUSES:
            status = s
        else:
            allowed = ", ".join([*documents.DECLARATION_STATUSES, states.FAILED, *sorted(_KINDS)])
            raise UsageError(f"--status: nie ma statusu {sel.status!r} (dozwolone: {allowed})")
    with app.engine.connect() as conn:
        return documents.select_for_reprocessing(conn, ids=None if named is None else sorted(named), failed=failed, kind=kind,
                                                 declaration_status=status, channel=sel.channel, since=sel.since, until=sel.until,
                                                 code=code, filed_since=sel.filed_since, filed_until=sel.filed_until)


def check_day_range(since: date | None, until: date | None, since_name: str, until_name: str) -> None:
    """``since`` after ``until`` selects nothing: a usage error.

    >>> check_day_range(date(2025, 9, 10), date(2025, 9, 1), "--since", "--until")
    Traceback (most recent call last):
    ...
    worker.errors.UsageError: --since 2025-09-10 jest później niż --until 2025-09-01: żaden dokument nie może pasować (zamień daty miejscami?)
    """
    if since is not None and until is not None and since > until:
        raise UsageError(f"{since_name} {since:%Y-%m-%d} jest później niż {until_name} {until:%Y-%m-%d}: "
                         "żaden dokument nie może pasować (zamień daty miejscami?)")


def _current(app: App, doc_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The documents' outcome, findings and eBOK declaration (id, computed fee) as stored now."""
    with app.engine.connect() as conn:
        found = documents.outcomes(conn, doc_ids)
    return {
        i: {
            "outcome": (r.declaration_status or r.outcome) if r.state == states.DONE else r.state,
            "codes": sorted({f["code"] for f in r.findings}),
            "declaration_id": r.declaration_id,
            "computed_fee": None if r.computed_fee is None else f"{r.computed_fee:.2f}",
        }
        for i, r in found.items()
    }


def _line(doc_id: int, item: dict[str, Any]) -> str:
    who = f"dokument {doc_id}" + (f" (deklaracja #{item['declaration_id']})" if item.get("declaration_id") else "")
    line = f"{who}: {fmt.status(item['old_outcome'])} → {fmt.status(item['new_outcome'])}"
    old_fee, new_fee = item.get("old_computed_fee"), item.get("computed_fee")
    if old_fee != new_fee:
        line += f"; opłata wyliczona {fmt.money(old_fee)} → {fmt.money(new_fee)}"
    elif new_fee is not None:
        line += f"; opłata wyliczona bez zmian ({fmt.money(new_fee)})"
    added = sorted(set(item["new_codes"]) - set(item["old_codes"]))
    gone = sorted(set(item["old_codes"]) - set(item["new_codes"]))
    if added:
        line += f"; nowe ustalenia: {', '.join(added)}"
    if gone:
        line += f"; ustąpiły: {', '.join(gone)}"
    return line


def _changed(item: dict[str, Any]) -> bool:
    return item["old_outcome"] != item["new_outcome"] or item["old_codes"] != item["new_codes"] or item.get("old_computed_fee") != item.get("computed_fee")


def _reprocess_chunk(app: App, processor: Processor, chunk: list[int], before: dict[int, dict[str, Any]],
                     advance: Callable[[int], None], *, requeued: Callable[[], None] = lambda: None,
                     rest_only: bool = False) -> list[dict[str, Any]]:
    """Put a chunk of documents back to RECEIVED (``requeued`` is called once that is
    committed) and process them; each document's line (``before``: what was stored before).
    ``rest_only``: the chunk was put back already, by a process that died while processing
    it — only what it left unsettled is processed."""
    todo = chunk
    if rest_only:
        todo = [i for i, now in _current(app, chunk).items() if now["outcome"] in (states.RECEIVED, states.PROCESSING)]
        advance(len(chunk) - len(todo))
    else:
        with app.engine.begin() as conn:
            requeue(conn, chunk, utcnow())
        requeued()
    outcomes = processor.process_ids(todo, force=True, actor="reprocess", progress=advance)
    after = _current(app, chunk)
    lines = []
    for i in chunk:
        old, new = before[i], after[i]
        lines.append({"document_id": i, "declaration_id": new["declaration_id"] or old["declaration_id"],
                      "outcome": outcomes.get(i, new["outcome"]), "old_outcome": old["outcome"], "new_outcome": new["outcome"],
                      "old_codes": old["codes"], "new_codes": new["codes"], "old_computed_fee": old["computed_fee"],
                      "computed_fee": new["computed_fee"]})
    return lines


def _reprocess_shared(app: App, chunks: list[list[int]], processes: int, advance: Callable[[int], None],
                      done: Callable[[list[dict[str, Any]]], None]) -> None:
    """The chunks shared by ``processes`` forked processes, each taking the next chunk
    when it has finished one. What a process that died left of its chunk (and any chunk
    none took) is done here afterwards, with the analysis in a pool, from what was stored
    before: every document is processed again once."""
    following = multiprocessing.get_context("fork").Value("q", 0)  # the next chunk to take

    def work(own: Processor, send: parallel.Send, stop: threading.Event) -> None:
        while not stop.is_set():
            with following.get_lock():
                k = following.value
                following.value += 1
            if k >= len(chunks):
                return
            before = _current(app, chunks[k])
            send("chunk", (k, before))

            def put_back(k: int = k) -> None:
                send("requeued", k)

            lines = _reprocess_chunk(app, own, chunks[k], before, lambda n: send("progress", n), requeued=put_back)
            send("lines", (k, lines))

    before_of: dict[int, dict[int, dict[str, Any]]] = {}  # chunk → what was stored before it
    requeued: set[int] = set()
    finished: set[int] = set()
    with app.processor.fork_siblings(processes, work) as children:
        for _number, kind, payload in children.messages():
            if kind == "progress":
                advance(payload)
            elif kind == "chunk":
                before_of[payload[0]] = payload[1]
            elif kind == "requeued":
                requeued.add(payload)
            elif kind == "lines":
                finished.add(payload[0])
                before_of.pop(payload[0], None)
                done(payload[1])
    left = [k for k in range(len(chunks)) if k not in finished]
    if left:
        app.processor.recover_stale()  # the claims of the process that died
        with app.processor.command_pool():
            for k in left:
                before = before_of[k] if k in before_of else _current(app, chunks[k])
                done(_reprocess_chunk(app, app.processor, chunks[k], before, advance, rest_only=k in requeued))


def reprocess(app: App, selection: Selection, *, dry_run: bool = False, as_json: bool = False) -> int:
    ids = select_documents(app, selection)
    if not ids and not as_json:
        print("Żaden zapisany dokument nie spełnia podanych warunków; nic nie zrobiono.")
        return EXIT_OK
    interactive = not as_json and sys.stdout.isatty()
    items: list[dict[str, Any]] = []  # kept for --json only: the summary is counted as it goes
    seen = changed = fees = failed = 0

    with progress_bar(len(ids), interactive, "próba" if dry_run else "przetwarzanie") as (advance, emit):

        def done(chunk_items: list[dict[str, Any]]) -> None:
            nonlocal seen, changed, fees, failed
            for item in chunk_items:
                seen += 1
                changed += _changed(item)
                fees += item.get("old_computed_fee") != item.get("computed_fee")
                failed += item.get("outcome") == states.FAILED
                if as_json:
                    items.append(item)
                else:
                    emit(_line(item["document_id"], item))

        if dry_run:
            for i in ids:
                old = _current(app, [i])[i]
                done([dict(app.processor.preview(i), declaration_id=old["declaration_id"], old_computed_fee=old["computed_fee"])])
                advance(1)
        else:
            cfg = app.config.processing
            # in chunks of a few batches: the documents of a chunk are processed in batches,
            # then their lines are printed; with several workers, each chunk by one of
            # ``workers`` forked processes (one per core), otherwise here with the analysis
            # in a pool
            shared = cfg.workers > 1 and len(ids) > cfg.batch_size and parallel.can_fork()
            size = (2 if shared else 10) * cfg.batch_size
            chunks = [ids[k:k + size] for k in range(0, len(ids), size)]
            if shared:
                _reprocess_shared(app, chunks, min(cfg.workers, len(chunks)), advance, done)
            else:
                with app.processor.command_pool(len(chunks) > 1):
                    for chunk in chunks:
                        done(_reprocess_chunk(app, app.processor, chunk, _current(app, chunk), advance))
    items.sort(key=lambda item: item["document_id"])
    if not dry_run:
        log.info("reprocess done", extra={"event": "reprocess.done", "count": len(ids), "failed": failed, "changed": changed})
    if as_json:
        if dry_run:
            print_json({"dry_run": True, "documents": items, "would_change": changed})
        else:
            print_json({"reprocessed": items, "changed": changed, "failed": failed})
    else:
        n = fmt.count(seen, "dokument", "dokumenty", "dokumentów")
        if dry_run:
            print(f"Próba, nic nie zapisano: {n}; zmieniłby się wynik lub ustalenia: {changed}, w tym opłata: {fees}.")
        else:
            print(f"Przetworzono ponownie: {n}; zmiana wyniku lub ustaleń: {changed}, w tym opłaty: {fees}; błędy techniczne: {failed}.")
    return EXIT_OK if not failed else EXIT_FAILURE
