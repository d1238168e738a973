"""Configuration: one TOML file, typed and validated at start-up.

Every key is declared here with its type, constraints and default; ``config.example.toml``
documents them. The sections are frozen dataclasses that pydantic validates (one
:class:`pydantic.TypeAdapter` of :class:`Config`): unknown keys are refused, types are strict
(no ``"5"`` for 5, no ``true`` for 1), and every error becomes one :class:`ConfigError` line
``<dotted.key>: <Polish message>`` (the CLI prints it and exits with status 2). Tables in
arrays are counted from 0: ``epuap.mailboxes[1].podmiot``. Secrets are never in the file: a
key ending in ``_env`` names the environment variable that holds them. Relative paths are
relative to the config file's folder.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, Strict, TypeAdapter, ValidationError, ValidationInfo

DEFAULT_CONFIG = "config.toml"
CONFIG_ENV = "EBOK_WORKER_CONFIG"


class ConfigError(Exception):
    """A configuration problem; ``str()`` is one line naming the key. ``problems``: every
    problem found (``config check`` lists them all; the first is ``str()``)."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


# --- value types ------------------------------------------------------------------------


def _resolve(value: Path, info: ValidationInfo) -> Path:
    """A relative path is relative to the config file's folder (``context["base"]``)."""
    value = value.expanduser()
    base = (info.context or {}).get("base")
    return value if value.is_absolute() or base is None else base / value


def _non_empty(value: Any) -> Any:
    if value == "":
        raise ValueError("musi być ścieżką (niepustym tekstem)")
    return value


def _box_name(value: str) -> str:
    if not value or "/" in value or len(value) > 100:
        raise ValueError("musi być niepustą nazwą bez '/' (najwyżej 100 znaków)")
    return value


def _database_url(value: str) -> str:
    if not value.split(":", 1)[0].startswith(("sqlite", "postgresql")):
        raise ValueError("musi być adresem sqlite:/// albo postgresql+psycopg://")
    return value


def _bank_branch(value: str | None) -> str | None:
    from worker.domain.accounts import branch_is_valid

    if value is not None and not branch_is_valid(value):
        raise ValueError("niepoprawny 8-cyfrowy numer rozliczeniowy oddziału banku")
    return value


def _territory(value: str) -> str:
    if not re.fullmatch(r"[A-Z]{2}", value):
        raise ValueError("kod kraju z dwóch wielkich liter, np. PL")
    return value


def _account_prefix(value: str) -> str:
    if not re.fullmatch(r"[0-9]{0,8}", value):
        raise ValueError("najwyżej 8 cyfr")
    return value


Text = Annotated[str, Strict()]
Flag = Annotated[bool, Strict()]
Count = Annotated[int, Strict(), Field(gt=0)]
Seconds = Annotated[float, Strict(), Field(gt=0)]  # an int is taken too (120 → 120.0)
Delay = Annotated[float, Strict(), Field(ge=0)]
ConfigPath = Annotated[Path, BeforeValidator(_non_empty), AfterValidator(_resolve)]


# --- sections -------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseConfig:
    url: Annotated[Text, AfterValidator(_database_url)] = "sqlite:///var/ebok.sqlite3"
    password_env: Text | None = None  # the database password, when the URL has none
    echo: Flag = False


@dataclass(frozen=True)
class StorageConfig:
    path: ConfigPath = Path("var/documents")


@dataclass(frozen=True)
class Mailbox:
    podmiot: Annotated[Text, AfterValidator(_box_name)]
    skrytka: Annotated[Text, AfterValidator(_box_name)]

    @property
    def address(self) -> str:
        return f"/{self.podmiot}/{self.skrytka}"


@dataclass(frozen=True)
class EpuapConfig:
    enabled: Flag = False
    endpoint: Text = ""
    certificate: ConfigPath | None = None
    private_key: ConfigPath | None = None
    private_key_password_env: Text | None = None
    response_certificate: ConfigPath | None = None
    timeout_s: Seconds = 120.0
    connect_timeout_s: Seconds = 30.0
    poll_interval_s: Seconds = 300.0
    batch_limit: Count = 100
    max_attempts: Count = 5
    backoff_initial_s: Delay = 1.0
    backoff_max_s: Seconds = 60.0
    sign_timestamp: Flag = True
    max_response_bytes: Count = 64 * 1024 * 1024  # a SOAP answer, after any decompression
    # ePUAP's file repository: attachments sent by reference (kodowanie="URI")
    filerepo_endpoint: Text = ""
    filerepo_max_file_bytes: Count = 100 * 1024 * 1024  # one file; a larger one is ATTACHMENT_UNAVAILABLE
    filerepo_max_passes: Count = 3  # passes with the repository unreachable before a file is given up
    # the mailbox export package (import-package): limits against a hostile ZIP
    package_max_entries: Count = 10000
    package_max_entry_bytes: Count = 64 * 1024 * 1024  # one unpacked file
    package_max_total_bytes: Count = 2 * 1024 * 1024 * 1024  # everything unpacked
    package_max_ratio: Count = 200  # unpacked size / compressed size of one entry
    mailboxes: tuple[Mailbox, ...] = ()


@dataclass(frozen=True)
class SignaturesConfig:
    trust_anchors: ConfigPath | None = None
    trusted_profile_seals: tuple[ConfigPath, ...] = ()
    revocation: Literal["off", "required"] = "off"
    crls: tuple[ConfigPath, ...] = ()  # revocation lists (DER or PEM) for revocation = "required"
    tsa_anchors: ConfigPath | None = None  # roots of trusted time-stamping authorities (optional)
    # ETSI TS 119 612 trusted lists: a LOTL and/or national TLs, URLs or files (relative to the config file)
    trusted_lists: tuple[Annotated[Text, BeforeValidator(_non_empty)], ...] = ()
    trusted_list_signers: ConfigPath | None = None  # who may sign the lists of trusted_lists (PEM bundle or folder)
    trusted_list_refresh_s: Seconds = 86400.0  # how often the daemon fetches them again
    trusted_list_grace_s: Delay = 7 * 86400.0  # how far past its NextUpdate a fetched list is still adopted
    trusted_list_territories: tuple[Annotated[Text, AfterValidator(_territory)], ...] = ()  # LOTL pointers followed (empty: all)
    revocation_fetch: Flag = False  # revocation = "required": ask OCSP (AIA), else fetch CRLs (CDP)
    fetch_timeout_s: Seconds = 30.0  # the whole exchange of one fetch (list, OCSP, CRL)
    fetch_max_bytes: Count = 32 * 1024 * 1024  # the largest list or CRL read
    cache: ConfigPath = Path("var/trust-cache")  # the lists and revocation answers kept between runs


@dataclass(frozen=True)
class ScansConfig:
    enabled: Flag = False
    inbox: ConfigPath = Path("var/scans/inbox")
    archive: ConfigPath = Path("var/scans/archive")
    quarantine: ConfigPath = Path("var/scans/quarantine")
    poll_interval_s: Seconds = 30.0
    # TOML's 0.90 is a float; pydantic makes the Decimal from its text (0.9, not 0.8999…)
    min_confidence: Annotated[Decimal, Field(ge=0, le=1)] = Decimal("0.90")
    incomplete_grace_s: Delay = 3600.0
    max_image_bytes: Count = 50 * 1024 * 1024  # a larger scan image is quarantined (image_too_large), never read whole


@dataclass(frozen=True)
class RulesConfig:
    path: ConfigPath | None = None  # None: the rule set shipped with the worker


@dataclass(frozen=True)
class ProcessingConfig:
    max_document_bytes: Count = 16 * 1024 * 1024  # the largest honest declaration is 12 MB (spec/signatures.md)
    # the structural limits of a document, checked before anything is canonicalised (worker/forms/structure.py)
    max_elements: Count = 10_000
    max_attributes: Count = 20_000
    max_namespace_declarations: Count = 128
    max_depth: Count = 64
    max_text_chars: Count = 10_000_000  # one text node or attribute value (libxml2 refuses longer ones anyway)
    max_document_seconds: Seconds = 5.0  # CPU budget of checking one document (DOCUMENT_TOO_COMPLEX past it)
    max_attempts: Count = 8  # technical failures before a document is parked as FAILED
    retry_initial_s: Delay = 30.0
    retry_max_s: Seconds = 3600.0
    interval_s: Seconds = 10.0  # how often the daemon processes what is pending
    # processes analysing documents (parse, signature, XSD, rules); 1: in the worker's own process
    workers: Count = field(default_factory=lambda: os.cpu_count() or 1)
    batch_size: Count = 50  # documents claimed and committed together (one transaction per batch)


@dataclass(frozen=True)
class PaymentsConfig:
    bank_branch: Annotated[Text | None, AfterValidator(_bank_branch)] = None  # 8-digit branch number of the union's bank
    account_prefix: Annotated[Text, AfterValidator(_account_prefix)] = ""  # the union's virtual-account prefix (digits)


@dataclass(frozen=True)
class CorrespondenceConfig:
    outbox: ConfigPath = Path("var/outbox")  # one folder per handed-over item, for the office's EZD
    include_test_documents: Flag = False  # hand over ePUAP test submissions (czyTestowe) too
    max_attachment_bytes: Count = 20 * 1024 * 1024  # one decoded attachment; larger ones are findings
    outbox_group_readable: Flag = False  # the handed-over folders readable by the outbox folder's group (else the worker's user only)


@dataclass(frozen=True)
class LoggingConfig:
    format: Literal["json", "text"] = "json"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    file: ConfigPath | None = None  # the log's destination (appended); omitted: stdout (the daemon), stderr (the office's commands)


@dataclass(frozen=True)
class MonitoringConfig:
    metrics_file: ConfigPath | None = None  # Prometheus textfile, written after every daemon pass
    pending_warn_s: Seconds = 3600.0  # oldest pending document older than this: WARNING
    pull_stale_s: Seconds = 3600.0  # a mailbox without a successful pull for this long: CRITICAL
    metrics_stale_s: Seconds = 900.0  # the metrics file older than this: the daemon stopped publishing (CRITICAL)
    min_free_bytes: Annotated[int, Strict(), Field(ge=0)] = 16 * 1024 * 1024  # less free on a folder's disk: disk_full (CRITICAL)


@dataclass(frozen=True)
class Config:
    __pydantic_config__ = ConfigDict(extra="forbid")  # the sections, without a config of their own, inherit it
    path: Path | None = None  # the file it was loaded from (set by load(), never a key in it)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    epuap: EpuapConfig = field(default_factory=EpuapConfig)
    signatures: SignaturesConfig = field(default_factory=SignaturesConfig)
    scans: ScansConfig = field(default_factory=ScansConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    processing: ProcessingConfig = field(default_factory=ProcessingConfig)
    payments: PaymentsConfig = field(default_factory=PaymentsConfig)
    correspondence: CorrespondenceConfig = field(default_factory=CorrespondenceConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)

    def database_url(self) -> str:
        """The URL with the password from the environment variable, when one is named."""
        url = self.database.url
        env = self.database.password_env
        if env:
            from sqlalchemy.engine import make_url

            password = os.environ.get(env)
            if password is None:
                raise ConfigError(f"database.password_env: zmienna środowiskowa {env} nie jest ustawiona")
            url = make_url(url).set(password=password).render_as_string(hide_password=False)
        return url


_SECTIONS: dict[str, type] = {f.name: globals()[str(f.type)] for f in fields(Config) if f.name != "path"}
_ADAPTER = TypeAdapter(Config)

# pydantic's error types → the administrator's Polish text ({…}: the error's context)
_MESSAGES: dict[str, str] = {
    "missing": "brak wymaganego klucza",
    "unexpected_keyword_argument": "nieznany klucz",
    "extra_forbidden": "nieznany klucz",
    "greater_than": "musi być większe od {gt}",
    "greater_than_equal": "nie może być mniejsze od {ge}",
    "less_than_equal": "nie może być większe od {le}",
    "literal_error": "dozwolone wartości: {choices} (podano {input!r})",
    "int_type": "musi być liczbą całkowitą",
    "int_from_float": "musi być liczbą całkowitą",
    "float_type": "musi być liczbą",
    "decimal_type": "musi być liczbą",
    "decimal_parsing": "musi być liczbą",
    "finite_number": "musi być liczbą",
    "bool_type": "musi być true albo false",
    "string_type": "musi być tekstem",
    "path_type": "musi być ścieżką (niepustym tekstem)",
    "tuple_type": "musi być listą",
    "dataclass_type": "musi być tabelą",
    "value_error": "{error}",
}


def dotted(loc: tuple[str | int, ...]) -> str:
    """pydantic's error location as the key is written: ``epuap.mailboxes[1].podmiot``.

    >>> dotted(("epuap", "mailboxes", 1, "podmiot")), dotted(("containers", 0, "rates", "x1", "[key]"))
    ('epuap.mailboxes[1].podmiot', 'containers[0].rates.x1')
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.startswith("["):  # pydantic's own markers such as "[key]"
            out += f".{part}" if out else part
    return out


def describe(err: Any, messages: dict[str, str], fallback: str) -> str:
    """One pydantic error (``ValidationError.errors()[i]``) in the words of ``messages``: a
    template per error type, filled with the error's context, ``input``, ``msg`` and ``key``
    (the last name in the location)."""
    ctx = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in (err.get("ctx") or {}).items()}
    if "expected" in ctx:  # literal_error: "'json' or 'text'" → "json, text"
        ctx["choices"] = ", ".join(re.findall(r"'([^']*)'", str(ctx["expected"])))
    key = next((part for part in reversed(err["loc"]) if isinstance(part, str) and not part.startswith("[")), "")
    template = messages.get(err["type"], fallback)
    return template.format(**ctx, input=err.get("input"), msg=err["msg"], key=key)


def _line(err: Any) -> str:
    key = dotted(err["loc"])
    if err["type"] == "unexpected_keyword_argument" and len(err["loc"]) == 1:
        return f"{key}: nieznana sekcja konfiguracji"
    return f"{key}: {describe(err, _MESSAGES, 'niepoprawna wartość ({msg})')}"


def _one_line(exc: ValidationError) -> ConfigError:
    lines = list(dict.fromkeys(_line(err) for err in exc.errors()))
    return ConfigError(lines[0], lines)


# --- loading --------------------------------------------------------------------------


def resolve_path(explicit: str | os.PathLike | None) -> Path:
    """``--config``, else ``$EBOK_WORKER_CONFIG``, else ``./config.toml``."""
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load(path: str | os.PathLike) -> Config:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"nie znaleziono pliku konfiguracji: {p}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"nie można odczytać pliku konfiguracji: {p}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"plik konfiguracji nie jest poprawnym TOML: {p}: {exc}") from None
    return from_dict(data, base=p.resolve().parent, path=p.resolve())


def from_dict(data: dict[str, Any], *, base: Path, path: Path | None = None) -> Config:
    if "path" in data:  # Config.path is where the file is, not a section of it
        raise ConfigError("path: nieznana sekcja konfiguracji")
    try:
        cfg = _ADAPTER.validate_python(data, context={"base": base})
    except ValidationError as exc:
        raise _one_line(exc) from None
    _check_epuap(cfg.epuap)
    _check_signatures(cfg.signatures)
    outbox = cfg.correspondence.outbox  # the default, too, is relative to the config file
    cache = cfg.signatures.cache
    lists = tuple(e if e.startswith(("http://", "https://")) else str(base / Path(e).expanduser()) for e in cfg.signatures.trusted_lists)
    return replace(
        cfg,
        path=path,
        database=replace(cfg.database, url=_sqlite_relative_to(cfg.database.url, base)),
        correspondence=replace(cfg.correspondence, outbox=outbox if outbox.is_absolute() else base / outbox),
        signatures=replace(cfg.signatures, cache=cache if cache.is_absolute() else base / cache, trusted_lists=lists),
    )


def _sqlite_relative_to(url: str, base: Path) -> str:
    """A relative SQLite file path is relative to the config file's folder, like every path.

    >>> _sqlite_relative_to("sqlite:///var/ebok.sqlite3", Path("/etc/ebok"))
    'sqlite:////etc/ebok/var/ebok.sqlite3'
    >>> _sqlite_relative_to("sqlite:////abs/x.db", Path("/etc")), _sqlite_relative_to("sqlite://", Path("/etc"))
    ('sqlite:////abs/x.db', 'sqlite://')
    """
    prefix, sep, rest = url.partition(":///")
    if not sep or not prefix.startswith("sqlite") or not rest or rest.startswith("/") or rest.startswith(":memory:"):
        return url
    return f"{prefix}:///{base / rest}"


def _check_signatures(sig: SignaturesConfig) -> None:
    """Keys of [signatures] that depend on another key's value; a trusted list is a URL
    (http/https) or a file, nothing else."""
    for i, entry in enumerate(sig.trusted_lists):
        if "://" in entry and not entry.startswith(("http://", "https://")):
            raise ConfigError(f"signatures.trusted_lists[{i}]: {entry[:200]} — lista to adres http:// lub https:// albo ścieżka do pliku")
    if sig.trusted_lists and sig.trusted_list_signers is None:
        raise ConfigError("signatures.trusted_list_signers: wymagane, gdy podano signatures.trusted_lists "
                          "(certyfikaty, którymi mogą być podpisane listy)")
    if sig.revocation_fetch and sig.revocation != "required":
        raise ConfigError('signatures.revocation_fetch: działa tylko z signatures.revocation = "required"')


def _check_epuap(epuap: EpuapConfig) -> None:
    """What ePUAP needs when it is enabled (keys that depend on another key's value)."""
    if not epuap.enabled:
        return
    for name in ("endpoint", "certificate", "private_key", "response_certificate", "filerepo_endpoint"):
        if not getattr(epuap, name):
            raise ConfigError(f"epuap.{name}: wymagane, gdy epuap.enabled = true")
    for name in ("endpoint", "filerepo_endpoint"):
        if not getattr(epuap, name).startswith(("http://", "https://")):
            raise ConfigError(f"epuap.{name}: musi być adresem http:// lub https://")
    if not epuap.mailboxes:
        raise ConfigError("epuap.mailboxes: gdy epuap.enabled = true, potrzebna jest co najmniej jedna [[epuap.mailboxes]]")
    _check_mailboxes(epuap.mailboxes)


def _check_mailboxes(mailboxes: tuple[Mailbox, ...]) -> None:
    """A mailbox configured twice would be pulled twice per pass.

    >>> _check_mailboxes((Mailbox("cr", "a"), Mailbox("cr", "b"), Mailbox("cr", "a")))
    Traceback (most recent call last):
    ...
    worker.config.ConfigError: epuap.mailboxes[2]: skrytka /cr/a jest już skonfigurowana (epuap.mailboxes[0])
    """
    first: dict[str, int] = {}
    for i, m in enumerate(mailboxes):
        if m.address in first:
            raise ConfigError(f"epuap.mailboxes[{i}]: skrytka {m.address} jest już skonfigurowana (epuap.mailboxes[{first[m.address]}])")
        first[m.address] = i
