"""Trust as Europe publishes it: the trusted lists of ETSI TS 119 612 (``spec/signatures.md``).

**Updating** (:func:`update`: ``trust update``, the daemon's ``trust.refresh`` job): every
configured list (``signatures.trusted_lists``: a URL or a file) is read with bounded time
and size (:mod:`.fetch`) and its enveloped XAdES signature verified against the pinned
signers (``trusted_list_signers``) with pyHanko (``eutl_parse``: signxml's XAdES verifier;
what is kept and read afterwards is only the **signed content** it returns). A list of the
lists (LOTL) points to national lists with the certificates allowed to sign each of them:
those are fetched and verified the same way with those certificates (optionally only the
territories of ``trusted_list_territories``). A list that verifies is **adopted** — kept in
the cache folder by its SHA-256, as fetched and as signed, with its territory, sequence
number, issue and next-update dates (``lists/state.json``) — unless it is past its
``NextUpdate`` by more than ``trusted_list_grace_s`` (stale), carries a lower sequence
number than the copy already kept (an old list replayed), or names another territory than
the LOTL says. Otherwise the **last good copy** stays in use and the attempt is recorded
with its reason (``trust show``, monitoring). Copies are never deleted: a decision can be
explained later from the digest in its evidence; ``lists/generations.jsonl`` records which
set of copies was in use from when.

**Using** (:class:`TrustedLists`, held by :class:`~worker.signatures.trust.TrustConfig`):
each process reads the adopted copies of the national lists from the cache (again when
``state.json`` changes: a refresh by the daemon reaches the forked analysis processes and
other commands without a restart) into a pyHanko ``TSPRegistry``: the CA/QC services with
their ``ServiceHistory`` (a service is registered for each period in which it was
*granted*), their ``Qualifications`` and ``AdditionalServiceInformation``. The CA
certificates of those services are trust anchors for qualified signatures (next to the
configured ``trust_anchors``), and :meth:`TrustedLists.assess` decides, with pyHanko's
``QualificationAssessor`` at the validation time, whether the issuing CA was a CA/QC service
granted **at that time** for the right purpose: signatures (``QC_ESIGN``) for a person,
seals (``QC_ESEAL``) for an institution.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import verification as xv

from worker.signatures.cache import locked, write_private
from worker.signatures.fetch import Fetcher, FetchError, is_url, read_source

log = logging.getLogger(__name__)

TSL_NS = "http://uri.etsi.org/02231/v2#"
LOTL_TYPE = "http://uri.etsi.org/TrstSvc/TrustedList/TSLType/EUlistofthelists"
KIND_LOTL, KIND_TL = "lotl", "tl"

# why a fetched list was not adopted (ListOutcome.problem; monitoring and trust show name them)
PROBLEM_FETCH = "fetch"  # could not be read (network, HTTP status, size, time)
PROBLEM_SIGNATURE = "signature"  # does not verify against its pinned signers
PROBLEM_STALE = "stale"  # past its NextUpdate by more than the grace
PROBLEM_ROLLBACK = "rollback"  # a lower sequence number than the copy kept
PROBLEM_CONTENT = "content"  # not a trusted list the worker can read (or another territory)

# the outcome of an assessment (Qualification.status)
GRANTED = "granted"
NOT_GRANTED = "not_granted"  # no CA of the path was a granted CA/QC service at that time
WRONG_PURPOSE = "wrong_purpose"  # a qualified service then, but not for this kind of certificate
UNAVAILABLE = "unavailable"  # no verified trusted list to decide with


def _iso(t: datetime | None) -> str | None:
    return t.astimezone(UTC).isoformat() if t is not None else None


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    t = datetime.fromisoformat(text)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@dataclass(frozen=True)
class TrustedListConfig:
    """``[signatures]`` keys of the trusted lists, loaded (certificates read)."""

    sources: tuple[str, ...]  # URLs or absolute file paths
    signers: tuple[x509.Certificate, ...]  # who may sign the configured lists
    cache: Path  # the cache folder (lists/ and revocation/ under it)
    refresh_s: float = 86400.0
    grace_s: float = 7 * 86400.0
    territories: frozenset[str] = frozenset()  # empty: every list the LOTL points to
    fetcher: Fetcher = field(default_factory=Fetcher)

    @property
    def folder(self) -> Path:
        return self.cache / "lists"


@dataclass(frozen=True)
class ListCopy:
    """A verified list kept in the cache (the last good copy of its location)."""

    location: str
    kind: str  # KIND_LOTL / KIND_TL
    territory: str
    sequence: int
    issued: str | None  # ISO UTC
    next_update: str | None
    sha256: str  # of the bytes as fetched (the file lists/<sha256>.xml; the signed content: .signed.xml)
    adopted_at: str
    via: str | None = None  # the LOTL it was found in

    def stale_at(self, grace_s: float) -> datetime | None:
        nxt = _time(self.next_update)
        return nxt + timedelta(seconds=grace_s) if nxt is not None else None

    def summary(self) -> dict[str, Any]:
        return {"territory": self.territory, "sequence": self.sequence, "sha256": self.sha256, "location": self.location}


@dataclass
class ListOutcome:
    """What became of one list in an update."""

    location: str
    territory: str | None
    kind: str | None
    ok: bool
    adopted: bool = False
    problem: str | None = None
    reason: str = ""  # Polish, for the administrator (trust update, trust show, the log)
    copy: ListCopy | None = None  # the copy in use after the update (the last good one when not adopted)


# --- the cache folder ---------------------------------------------------------------------


def _state_path(cfg: TrustedListConfig) -> Path:
    return cfg.folder / "state.json"


def read_state(cfg: TrustedListConfig) -> dict[str, Any]:
    """The cache's record: ``lists`` (location → copy), ``attempts`` (location → the last
    attempt), ``updated_at``; empty when nothing was ever fetched."""
    try:
        data = json.loads(_state_path(cfg).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"lists": {}, "attempts": {}, "updated_at": None}
    data.setdefault("lists", {})
    data.setdefault("attempts", {})
    data.setdefault("updated_at", None)
    return data


def copies(state: dict[str, Any]) -> list[ListCopy]:
    return [ListCopy(**c) for c in state.get("lists", {}).values()]


# --- reading and verifying a list -----------------------------------------------------------


def _asn1(certs: Sequence[x509.Certificate]) -> list[Any]:
    from asn1crypto import x509 as ax

    return [ax.Certificate.load(c.public_bytes(Encoding.DER)) for c in certs]


def verified_content(raw: bytes, signers: Sequence[x509.Certificate], now: datetime) -> str:
    """The signed content of a trusted list (its enveloped XAdES signature verified with
    one of ``signers`` at ``now``). Raises ``ValueError`` with the reason."""
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko.sign.validation.qualified import eutl_parse

    if not signers:
        raise ValueError("brak certyfikatów, którymi można sprawdzić podpis listy")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("lista nie jest dokumentem XML w UTF-8") from None
    try:
        # pyHanko's verification of a TL signature (signxml XAdESVerifier, every candidate
        # certificate, newest first), returning what the signature covers
        return eutl_parse._validate_and_extract_tl_data_multiple_certs(text, _asn1(signers), validation_time=now)
    except SignatureValidationError as exc:
        raise SignatureFailure("podpis listy nie weryfikuje się żadnym z przypiętych certyfikatów",
                               (exc.failure_message or str(exc)).splitlines()[0][:300]) from None
    except Exception as exc:  # noqa: BLE001 - hostile input: a reason, never a traceback
        raise SignatureFailure(f"podpisu listy nie da się sprawdzić ({type(exc).__name__})", str(exc)[:300]) from None


class SignatureFailure(ValueError):
    """A list's signature that does not verify: ``str()`` the reason in Polish, ``detail``
    what the verifier said (English, for the log)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.detail = detail


@dataclass(frozen=True)
class Header:
    kind: str
    territory: str
    sequence: int
    issued: datetime | None
    next_update: datetime | None


def read_header(signed: str) -> Header:
    """The scheme information of a verified list (its signed content)."""
    from worker.signatures.xmlparse import parse_untrusted

    root = parse_untrusted(signed.encode("utf-8"))
    info = root.find(f"{{{TSL_NS}}}SchemeInformation")
    if root.tag != f"{{{TSL_NS}}}TrustServiceStatusList" or info is None:
        raise ValueError("not an ETSI TS 119 612 trusted list")

    def text(path: str) -> str | None:
        el = info.find(path.replace("t:", f"{{{TSL_NS}}}"))
        return "".join(el.itertext()).strip() if el is not None else None

    def when(path: str) -> datetime | None:
        value = text(path)
        return _time(value.replace("Z", "+00:00")) if value else None

    sequence = text("t:TSLSequenceNumber")
    if not sequence or not sequence.isdigit():
        raise ValueError("the list has no TSLSequenceNumber")
    tsl_type = text("t:TSLType") or ""
    return Header(
        kind=KIND_LOTL if tsl_type == LOTL_TYPE else KIND_TL,
        territory=(text("t:SchemeTerritory") or "").upper(),
        sequence=int(sequence),
        issued=when("t:ListIssueDateTime"),
        next_update=when("t:NextUpdate/t:dateTime"),
    )


@dataclass(frozen=True)
class Pointer:
    location: str
    territory: str
    signers: tuple[x509.Certificate, ...]


def lotl_pointers(signed: str) -> list[Pointer]:
    """The national lists a verified LOTL points to (XML ones), with their signers."""
    from pyhanko.sign.validation.qualified import eutl_parse

    parsed = eutl_parse.parse_lotl_unsafe(signed)  # the content was verified by verified_content
    out = []
    for ref in parsed.references:
        certs = []
        for c in ref.tlso_certs:
            with contextlib.suppress(ValueError):
                certs.append(x509.load_der_x509_certificate(c.dump()))
        out.append(Pointer(ref.location_uri, (ref.territory or "").upper(), tuple(certs)))
    return out


# --- updating -------------------------------------------------------------------------------


class _Updater:
    def __init__(self, cfg: TrustedListConfig, now: datetime) -> None:
        self.cfg, self.now = cfg, now
        self.state = read_state(cfg)
        self.outcomes: list[ListOutcome] = []

    def run(self) -> list[ListOutcome]:
        wanted: set[str] = set()
        for source in self.cfg.sources:
            wanted.add(source)
            outcome = self.refresh(source, self.cfg.signers)
            copy = outcome.copy
            if copy is None or copy.kind != KIND_LOTL:
                continue
            try:
                pointers = lotl_pointers(self._signed(copy))
            except (OSError, ValueError, Exception) as exc:  # noqa: BLE001 - a kept copy that cannot be read
                outcome.ok, outcome.problem, outcome.reason = False, PROBLEM_CONTENT, f"pointers not readable ({type(exc).__name__})"
                continue
            for p in pointers:
                if p.territory == copy.territory or p.location == source or not p.location:
                    continue  # the LOTL's pointer to itself
                if self.cfg.territories and p.territory not in self.cfg.territories:
                    continue
                wanted.add(p.location)
                self.refresh(p.location, p.signers, via=source, territory=p.territory)
        before = json.dumps(sorted(self.state["lists"].items()), sort_keys=True)
        self.state["lists"] = {k: v for k, v in self.state["lists"].items() if k in wanted}
        self.state["attempts"] = {k: v for k, v in self.state["attempts"].items() if k in wanted}
        self.state["updated_at"] = _iso(self.now)
        changed = before != json.dumps(sorted(self.state["lists"].items()), sort_keys=True)
        write_private(_state_path(self.cfg), json.dumps(self.state, indent=1, sort_keys=True).encode())
        if changed:
            line = {"from": _iso(self.now), "generation": generation(copies(self.state)), "lists": [c.summary() for c in copies(self.state)]}
            with open(self.cfg.folder / "generations.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(line, sort_keys=True) + "\n")
        return self.outcomes

    def _signed(self, copy: ListCopy) -> str:
        return (self.cfg.folder / f"{copy.sha256}.signed.xml").read_text(encoding="utf-8")

    def refresh(self, location: str, signers: Sequence[x509.Certificate], *, via: str | None = None, territory: str | None = None) -> ListOutcome:
        kept = self.state["lists"].get(location)
        copy = ListCopy(**kept) if kept else None
        outcome = self._refresh(location, signers, copy, via, territory)
        if outcome.copy is None:
            outcome.copy = copy
        self.state["attempts"][location] = {
            "at": _iso(self.now), "ok": outcome.ok, "problem": outcome.problem, "reason": outcome.reason,
            "territory": outcome.territory, "via": via,
        }  # fmt: skip
        if outcome.adopted and outcome.copy is not None:
            self.state["lists"][location] = asdict(outcome.copy)
        level = logging.INFO if outcome.ok else logging.WARNING
        log.log(level, "trusted list %s", "adopted" if outcome.adopted else ("checked" if outcome.ok else "not adopted"),
                extra={"event": "trust.list_adopted" if outcome.adopted else ("trust.list_checked" if outcome.ok else "trust.list_failed"),
                       "location": location, "territory": outcome.territory, "problem": outcome.problem, "reason": outcome.reason,
                       "sequence": outcome.copy.sequence if outcome.copy else None, "sha256": outcome.copy.sha256 if outcome.copy else None})
        self.outcomes.append(outcome)
        return outcome

    def _refresh(self, location: str, signers: Sequence[x509.Certificate], kept: ListCopy | None, via: str | None, territory: str | None) -> ListOutcome:
        def fail(problem: str, reason: str, kind: str | None = None) -> ListOutcome:
            return ListOutcome(location, territory or (kept.territory if kept else None), kind or (kept.kind if kept else None), False, problem=problem, reason=reason)

        try:
            raw = read_source(location, self.cfg.fetcher)
        except FetchError as exc:
            return fail(PROBLEM_FETCH, str(exc))
        digest = hashlib.sha256(raw).hexdigest()
        try:
            signed = verified_content(raw, signers, self.now)
        except ValueError as exc:
            _detail(location, getattr(exc, "detail", ""))
            return fail(PROBLEM_SIGNATURE, str(exc))
        try:
            header = read_header(signed)
            if header.kind == KIND_LOTL:
                lotl_pointers(signed)
            else:
                _services_of(signed)
        except Exception as exc:  # noqa: BLE001 - hostile input: a reason, never a traceback
            _detail(location, f"{type(exc).__name__}: {str(exc)[:200]}")
            return fail(PROBLEM_CONTENT, f"treść listy jest nieczytelna ({type(exc).__name__})")
        if territory and header.territory != territory:
            return fail(PROBLEM_CONTENT, f"lista jest listą terytorium {header.territory!r}, a LOTL wskazuje {territory!r}", header.kind)
        if header.next_update is not None and header.next_update + timedelta(seconds=self.cfg.grace_s) < self.now:
            return fail(PROBLEM_STALE, f"jej NextUpdate {_iso(header.next_update)} minęła ponad trusted_list_grace_s temu", header.kind)
        if kept is not None and header.sequence < kept.sequence:
            return fail(PROBLEM_ROLLBACK, f"numer kolejny {header.sequence} jest niższy niż przechowywanej kopii ({kept.sequence})", header.kind)
        if kept is not None and kept.sha256 == digest:
            return ListOutcome(location, header.territory, header.kind, True, copy=kept, reason="bez zmian")
        write_private(self.cfg.folder / f"{digest}.xml", raw)
        write_private(self.cfg.folder / f"{digest}.signed.xml", signed.encode("utf-8"))
        copy = ListCopy(location, header.kind, header.territory, header.sequence, _iso(header.issued), _iso(header.next_update),
                        digest, _iso(self.now) or "", via)  # fmt: skip
        return ListOutcome(location, header.territory, header.kind, True, adopted=True, copy=copy, reason="zweryfikowana i przyjęta")


def _detail(location: str, detail: str) -> None:
    """What a verifier or parser said about a refused list (English, for the log only; the
    outcome's reason says it in Polish)."""
    if detail:
        log.info("trusted list refused: the verifier's words", extra={"event": "trust.list_detail", "location": location, "detail": detail})


def update(cfg: TrustedListConfig, now: datetime | None = None) -> list[ListOutcome]:
    """Fetch and verify every configured list now (one updater at a time per cache)."""
    now = now or datetime.now(UTC)
    with locked(cfg.folder):
        outcomes = _Updater(cfg, now).run()
    log.info("trusted lists updated", extra={"event": "trust.updated", "lists": len(outcomes),
                                             "adopted": sum(o.adopted for o in outcomes), "failed": sum(not o.ok for o in outcomes)})
    return outcomes


def due(cfg: TrustedListConfig, now: datetime | None = None) -> bool:
    """Whether the lists should be refreshed now (never fetched, or ``refresh_s`` ago)."""
    now = now or datetime.now(UTC)
    last = _time(read_state(cfg).get("updated_at"))
    return last is None or (now - last).total_seconds() >= cfg.refresh_s


def generation(in_use: Sequence[ListCopy]) -> str:
    """A digest naming a set of list copies (recorded in the evidence)."""
    return hashlib.sha256("\n".join(sorted(c.sha256 for c in in_use)).encode()).hexdigest()


# --- using ----------------------------------------------------------------------------------


def _services_of(signed: str) -> list[Any]:
    from pyhanko.sign.validation.qualified import eutl_parse, tsp

    found = []
    gen = eutl_parse.read_qualified_service_definitions(signed)
    while True:
        try:
            sd = next(gen)
        except StopIteration:
            break
        if isinstance(sd, tsp.CAServiceInformation):
            found.append(sd)
    return found


@dataclass(frozen=True)
class Qualification:
    """What the trusted lists say about a certificate's path at the validation time."""

    status: str  # GRANTED / NOT_GRANTED / WRONG_PURPOSE / UNAVAILABLE
    reason: str  # English
    service: str | None = None
    qc_type: str | None = None
    listed_in: ListCopy | None = None
    generation: str | None = None

    def evidence(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "service": self.service,
            "qc_type": self.qc_type,
            "list": self.listed_in.summary() if self.listed_in else None,
            "generation": self.generation,
        }


class _Loaded:
    def __init__(self, in_use: list[ListCopy], registry: Any, origin: dict[int, ListCopy], anchors: tuple[x509.Certificate, ...], errors: list[str]):
        self.in_use, self.registry, self.origin, self.anchors, self.errors = in_use, registry, origin, anchors, errors
        self.generation = generation(in_use)
        self.stores: dict[int, xv.Store] = {}


class TrustedLists:
    """The trusted lists in use in this process (see the module docstring)."""

    def __init__(self, cfg: TrustedListConfig) -> None:
        self.cfg = cfg
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._loaded: _Loaded | None = None

    def current(self) -> _Loaded:
        """The registry of the adopted national lists (read again when the cache changed)."""
        path = _state_path(self.cfg)
        try:
            st = path.stat()
            seen = (st.st_mtime_ns, st.st_size)
        except OSError:
            seen = (0, 0)
        with self._lock:
            if self._loaded is None or seen != self._seen:
                self._loaded = self._load()
                self._seen = seen
            return self._loaded

    def _load(self) -> _Loaded:
        from pyhanko.sign.validation.qualified.tsp import TSPRegistry
        from pyhanko_certvalidator.authority import AuthorityWithCert

        registry = TSPRegistry()
        origin: dict[int, ListCopy] = {}
        in_use: list[ListCopy] = []
        errors: list[str] = []
        for copy in copies(read_state(self.cfg)):
            if copy.kind != KIND_TL:
                continue
            try:
                signed = (self.cfg.folder / f"{copy.sha256}.signed.xml").read_text(encoding="utf-8")
                services = _services_of(signed)
            except Exception as exc:  # noqa: BLE001 - a damaged cache file: that list is not used
                errors.append(f"{copy.location}: {type(exc).__name__}")
                log.warning("trusted list copy not readable", extra={"event": "trust.copy_unreadable", "location": copy.location, "sha256": copy.sha256})
                continue
            for sd in services:
                registry.register_ca(sd)
                origin[id(sd)] = copy
            in_use.append(copy)
        anchors = tuple(
            x509.load_der_x509_certificate(a.certificate.dump())
            for a in registry.known_certificate_authorities
            if isinstance(a, AuthorityWithCert)
        )
        return _Loaded(in_use, registry, origin, anchors, errors)

    def available(self) -> bool:
        """Whether a verified national list is in use."""
        return bool(self.current().in_use)

    def store(self, anchors: Sequence[x509.Certificate]) -> tuple[xv.Store, str]:
        """A path-building store: ``anchors`` and the CA certificates of the listed
        CA/QC services; with the generation of the lists it was made from."""
        loaded = self.current()
        key = hash(tuple(anchors))
        store = loaded.stores.get(key)
        if store is None:
            store = loaded.stores[key] = xv.Store(list(anchors) + list(loaded.anchors))
        return store, loaded.generation

    def assess(self, chain: Sequence[x509.Certificate], at: datetime, *, natural_person: bool | None) -> Qualification:
        """Whether a CA of ``chain`` (leaf first, anchor last) was a CA/QC service granted at
        ``at`` for the leaf's purpose: signatures for a person, seals for an institution
        (``natural_person`` None: either)."""
        from asn1crypto import x509 as ax
        from pyhanko.sign.validation.qualified.assess import QualificationAssessor
        from pyhanko.sign.validation.qualified.tsp import CA_QC_URI, QcCertType
        from pyhanko_certvalidator.authority import AuthorityWithCert, TrustAnchor
        from pyhanko_certvalidator.path import ValidationPath

        loaded = self.current()
        if not loaded.in_use:
            return Qualification(UNAVAILABLE, "no verified trusted list is available", generation=loaded.generation)
        if len(chain) < 2:
            return Qualification(NOT_GRANTED, "no issuing CA", generation=loaded.generation)
        certs = [ax.Certificate.load(c.public_bytes(Encoding.DER)) for c in chain]
        path = ValidationPath(TrustAnchor(AuthorityWithCert(certs[-1])), list(reversed(certs[1:-1])), certs[0])
        at = at.astimezone(UTC)
        services = [sd for sd in loaded.registry.applicable_tsps_on_path(path, at) if sd.base_info.service_type == CA_QC_URI]
        if not services:
            return Qualification(NOT_GRANTED, "no CA of the path is a CA/QC service granted at the validation time", generation=loaded.generation)
        service = services[0]
        try:
            result = QualificationAssessor(loaded.registry).check_entity_cert_qualified(path, moment=at)
        except Exception as exc:  # noqa: BLE001 - e.g. a QcType with several types: not confirmed
            return Qualification(WRONG_PURPOSE, f"qualification not assessable ({type(exc).__name__})", service.base_info.service_name,
                                 listed_in=loaded.origin.get(id(service)), generation=loaded.generation)  # fmt: skip
        sd = result.service_definition or service
        name, copy = sd.base_info.service_name, loaded.origin.get(id(sd))
        qc_type = result.status.qc_type.value if result.status.qualified else None
        if natural_person is None:
            wanted = {QcCertType.QC_ESIGN, QcCertType.QC_ESEAL}
        else:
            wanted = {QcCertType.QC_ESIGN} if natural_person else {QcCertType.QC_ESEAL}
        if not result.status.qualified:
            return Qualification(WRONG_PURPOSE, "a CA/QC service at the validation time, but the list does not confirm this certificate "
                                 "as qualified for its purpose", name, None, copy, loaded.generation)  # fmt: skip
        if result.status.qc_type not in wanted:
            return Qualification(WRONG_PURPOSE, f"qualified as {qc_type}, not for this signer", name, qc_type, copy, loaded.generation)
        return Qualification(GRANTED, "issuing CA granted as a CA/QC service at the validation time", name, qc_type, copy, loaded.generation)

    def granted_now(self, now: datetime | None = None) -> int:
        """The number of CA/QC services granted now in the lists in use."""
        now = (now or datetime.now(UTC)).astimezone(UTC)
        loaded = self.current()
        count = 0
        for authority in loaded.registry.known_certificate_authorities:
            if any(True for _ in loaded.registry.applicable_service_definitions(authority, now)):
                count += 1
        return count


def location_of(entry: str, base: Path | None) -> str:
    """A ``trusted_lists`` entry as a location: a URL as it is, a file relative to ``base``."""
    if is_url(entry) or base is None:
        return entry
    path = Path(entry).expanduser()
    return str(path if path.is_absolute() else base / path)
