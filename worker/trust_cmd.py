"""``trust update`` / ``trust show``, the daemon's refresh of the trusted lists, and what
monitoring reads about them (``spec/operations.md``).

* :func:`update` — fetch and verify the configured lists now (``worker.signatures.trusted_lists``):
  one Polish line per list (adopted, unchanged, or not adopted with why and which copy stays
  in use); exit 0, or 1 when a list could not be fetched or did not verify.
* :func:`show` — the lists in use (territory, sequence number, issue and next-update dates,
  digest, source), the CA/QC services granted now, the anchors and the revocation settings;
  ``--json`` with English keys.
* :func:`refresh` — the daemon's ``trust.refresh`` job and ``run --once`` (when due).
* :func:`snapshot` — for ``status`` and monitoring: the lists in use, failed updates, stale
  lists, failing revocation responders (read from the cache folder; no network).

Times are ISO UTC in ``--json`` and Polish local time for people.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from worker import fmt, logs
from worker.app import App, trusted_list_config
from worker.config import Config
from worker.output import EXIT_FAILURE, EXIT_OK, print_json
from worker.signatures import revocation as rv
from worker.signatures import trusted_lists as tl

log = logging.getLogger("worker.trust")

PROBLEMS = {
    tl.PROBLEM_FETCH: "nie można jej pobrać",
    tl.PROBLEM_SIGNATURE: "jej podpis nie zgadza się z przypiętymi certyfikatami podpisujących (trusted_list_signers albo wskazanymi w LOTL)",
    tl.PROBLEM_STALE: "jest przeterminowana (minęła data jej następnej aktualizacji NextUpdate, z zapasem trusted_list_grace_s)",
    tl.PROBLEM_ROLLBACK: "ma niższy numer kolejny niż przechowywana kopia (ponownie podana stara lista)",
    tl.PROBLEM_CONTENT: "nie jest poprawną listą zaufanych usług ETSI TS 119 612",
}


def _kind(kind: str | None) -> str:
    return "lista list (LOTL)" if kind == tl.KIND_LOTL else "lista krajowa"


def _copy_line(copy: tl.ListCopy) -> str:
    nxt = fmt.datetime_local(copy.next_update) if copy.next_update else "—"
    return f"nr {copy.sequence}, wydana {fmt.datetime_local(copy.issued) if copy.issued else '—'}, następna aktualizacja {nxt}, SHA-256 {copy.sha256[:16]}…"


def _no_lists() -> None:
    print("Nie skonfigurowano zaufanych list (signatures.trusted_lists): o podpisie kwalifikowanym decydują "
          "tylko zaufane certyfikaty (signatures.trust_anchors).")  # fmt: skip


# --- trust update ---------------------------------------------------------------------------


def refresh(config: Config, *, only_when_due: bool = False) -> list[tl.ListOutcome] | None:
    """Fetch the lists (``None`` when none are configured, or not due yet with ``only_when_due``)."""
    cfg = trusted_list_config(config)
    if cfg is None or (only_when_due and not tl.due(cfg)):
        return None
    return tl.update(cfg)


def update(app: App) -> int:
    logs.reported_by_the_command("trust.list_failed")  # each list's outcome is a line of the output
    outcomes = refresh(app.config)
    if outcomes is None:
        _no_lists()
        return EXIT_OK
    print("Zaufane listy (ETSI TS 119 612):")
    for o in outcomes:
        where = f"{o.territory or '??'} ({_kind(o.kind)}) {o.location}"
        if o.adopted and o.copy is not None:
            print(f"  {where}: zweryfikowana, przyjęta nowa wersja — {_copy_line(o.copy)}")
        elif o.ok and o.copy is not None:
            print(f"  {where}: zweryfikowana, bez zmian — {_copy_line(o.copy)}")
        else:
            kept = f"w użyciu pozostaje ostatnia poprawna kopia: {_copy_line(o.copy)}" if o.copy else "brak poprawnej kopii — lista nie jest używana"
            print(f"  {where}: NIE przyjęta — {PROBLEMS.get(o.problem or '', 'błąd')} ({o.reason}); {kept}")
    failed = sum(not o.ok for o in outcomes)
    print(f"Listy zweryfikowane: {len(outcomes) - failed}, nieprzyjęte: {failed}.")
    return EXIT_OK if failed == 0 else EXIT_FAILURE


# --- trust show -----------------------------------------------------------------------------


def show(app: App, *, as_json: bool) -> int:
    trust = app.settings.trust
    snap = snapshot(app.config)
    lists = trust.trusted_lists if trust is not None else None
    granted = lists.granted_now() if lists is not None else None
    sig = app.config.signatures
    data = {
        **snap,
        "granted_services_now": granted,
        "trust_anchors": len(trust.anchors) if trust is not None else 0,
        "profile_seals": len(trust.profile_seals) if trust is not None else 0,
        "revocation": sig.revocation,
        "revocation_fetch": sig.revocation_fetch,
        "cache": str(sig.cache),
    }
    if as_json:
        print_json(data)
        return EXIT_OK
    if not snap["configured"]:
        _no_lists()
    else:
        print("Zaufane listy w użyciu (ETSI TS 119 612):")
        if not snap["lists"]:
            print("  brak — żadna lista nie została jeszcze pobrana i zweryfikowana (uruchom `ebok-worker trust update`)")
        for c in snap["lists"]:
            stale = " — PRZETERMINOWANA" if c["stale"] else ""
            print(f"  {c['territory']} ({_kind(c['kind'])}): {_copy_line(tl.ListCopy(**{k: c[k] for k in _COPY_KEYS}))}{stale}")
            print(f"      źródło: {c['location']}" + (f" (wskazana w {c['via']})" if c.get("via") else "") + f"; przyjęta {fmt.datetime_local(c['adopted_at'])}")
        if granted is not None:
            print(f"Usługi CA/QC (wystawcy certyfikatów kwalifikowanych) ze statusem „udzielony” teraz: {granted}")
        print(f"Ostatnia aktualizacja list: {fmt.datetime_local(snap['updated_at']) if snap['updated_at'] else 'nigdy'} "
              f"(odświeżane co {fmt.duration(sig.trusted_list_refresh_s)})")  # fmt: skip
        for f in snap["failed"]:
            print(f"  UWAGA: {f['territory'] or '??'} {f['location']}: ostatnia próba {fmt.datetime_local(f['at'])} nieudana — "
                  f"{PROBLEMS.get(f['problem'] or '', 'błąd')} ({f['reason']})")  # fmt: skip
    print(f"Zaufane certyfikaty (signatures.trust_anchors): {data['trust_anchors']}; pieczęci podpisu zaufanego: {data['profile_seals']}")
    fetch = "pobierane przez sieć (OCSP z AIA, inaczej CRL z CDP)" if sig.revocation_fetch else "tylko z plików signatures.crls"
    print(f"Sprawdzanie unieważnień: {'wymagane' if sig.revocation == 'required' else 'wyłączone'}" + (f", {fetch}" if sig.revocation == "required" else ""))
    for r in snap["responders_failing"]:
        print(f"  UWAGA: serwer unieważnień {r['url']} nie odpowiada poprawnie od {fmt.datetime_local(r['failing_since'])}: {r['reason']}")
    print("Daty i godziny: czas polski (Europe/Warsaw).")
    return EXIT_OK


_COPY_KEYS = ("location", "kind", "territory", "sequence", "issued", "next_update", "sha256", "adopted_at", "via")


# --- for status and monitoring ---------------------------------------------------------------


def snapshot(config: Config, now: datetime | None = None) -> dict[str, Any]:
    """The trusted lists and revocation responders as the cache folder records them."""
    now = now or datetime.now(UTC)
    sig = config.signatures
    responders = rv.read_responders(sig.cache) if sig.revocation_fetch else {}
    failing = [{"url": url, "reason": e.get("reason"), "failing_since": e.get("failing_since")}
               for url, e in sorted(responders.items()) if e.get("ok") is False]  # fmt: skip
    out: dict[str, Any] = {"configured": bool(sig.trusted_lists), "revocation_fetch": sig.revocation_fetch, "lists": [], "failed": [],
                           "missing": [], "updated_at": None, "responders_failing": failing}  # fmt: skip
    if not sig.trusted_lists:
        return out
    from worker.signatures.trusted_lists import TrustedListConfig

    cfg = TrustedListConfig(sources=sig.trusted_lists, signers=(), cache=sig.cache, grace_s=sig.trusted_list_grace_s)
    state = tl.read_state(cfg)
    out["updated_at"] = state.get("updated_at")
    kept = tl.copies(state)
    for c in kept:
        nxt = datetime.fromisoformat(c.next_update) if c.next_update else None
        out["lists"].append({**{k: getattr(c, k) for k in _COPY_KEYS}, "stale": nxt is not None and nxt < now})
    for location, attempt in sorted(state.get("attempts", {}).items()):
        if not attempt.get("ok"):
            out["failed"].append({"location": location, **{k: attempt.get(k) for k in ("territory", "problem", "reason", "at")}})
    have = {c.location for c in kept}
    out["missing"] = [s for s in sig.trusted_lists if s not in have]
    return out
