"""Configuration: one TOML file, typed and validated at start-up.

Every key is declared here with its type and default; ``config.example.toml`` documents
them. Unknown keys and bad values raise :class:`ConfigError` naming the key, in Polish (the
administrator reads it) (the CLI turns
it into exit status 2). Secrets are never in the file: a key names the environment
variable that holds them. Relative paths are relative to the config file's folder.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = "config.toml"
CONFIG_ENV = "EBOK_WORKER_CONFIG"


class ConfigError(Exception):
    """A configuration problem; ``str()`` is one line naming the key."""


# --- sections -------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = "sqlite:///var/ebok.sqlite3"
    password_env: str | None = None  # the database password, when the URL has none
    echo: bool = False


@dataclass(frozen=True)
class StorageConfig:
    path: Path = Path("var/documents")


@dataclass(frozen=True)
class Mailbox:
    podmiot: str
    skrytka: str

    @property
    def address(self) -> str:
        return f"/{self.podmiot}/{self.skrytka}"


@dataclass(frozen=True)
class EpuapConfig:
    enabled: bool = False
    endpoint: str = ""
    certificate: Path | None = None
    private_key: Path | None = None
    private_key_password_env: str | None = None
    response_certificate: Path | None = None
    timeout_s: float = 120.0
    connect_timeout_s: float = 30.0
    poll_interval_s: float = 300.0
    batch_limit: int = 100
    max_attempts: int = 5
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    sign_timestamp: bool = True
    max_response_bytes: int = 64 * 1024 * 1024  # a SOAP answer, after any decompression
    mailboxes: tuple[Mailbox, ...] = ()


@dataclass(frozen=True)
class SignaturesConfig:
    trust_anchors: Path | None = None
    trusted_profile_seals: tuple[Path, ...] = ()
    revocation: str = "off"  # off | required
    crls: tuple[Path, ...] = ()  # revocation lists (DER or PEM) for revocation = "required"
    tsa_anchors: Path | None = None  # roots of trusted time-stamping authorities (optional)


@dataclass(frozen=True)
class ScansConfig:
    enabled: bool = False
    inbox: Path = Path("var/scans/inbox")
    archive: Path = Path("var/scans/archive")
    quarantine: Path = Path("var/scans/quarantine")
    poll_interval_s: float = 30.0
    min_confidence: Decimal = Decimal("0.90")
    incomplete_grace_s: float = 3600.0


@dataclass(frozen=True)
class RulesConfig:
    path: Path | None = None  # None: the rule set shipped with the worker


@dataclass(frozen=True)
class ProcessingConfig:
    max_document_bytes: int = 10 * 1024 * 1024
    max_attempts: int = 8  # technical failures before a document is parked as FAILED
    retry_initial_s: float = 30.0
    retry_max_s: float = 3600.0
    interval_s: float = 10.0  # how often the daemon processes what is pending


@dataclass(frozen=True)
class PaymentsConfig:
    bank_branch: str | None = None  # 8-digit branch number of the union's bank
    account_prefix: str = ""  # the union's virtual-account prefix (digits)


@dataclass(frozen=True)
class CorrespondenceConfig:
    outbox: Path = Path("var/outbox")  # one folder per handed-over item, for the office's EZD
    include_test_documents: bool = False  # hand over ePUAP test submissions (czyTestowe) too
    max_attachment_bytes: int = 20 * 1024 * 1024  # one decoded attachment; larger ones are findings


@dataclass(frozen=True)
class LoggingConfig:
    format: str = "json"
    level: str = "INFO"


@dataclass(frozen=True)
class MonitoringConfig:
    metrics_file: Path | None = None  # Prometheus textfile, written after every daemon pass
    pending_warn_s: float = 3600.0  # oldest pending document older than this: WARNING
    pull_stale_s: float = 3600.0  # a mailbox without a successful pull for this long: CRITICAL


@dataclass(frozen=True)
class Config:
    path: Path | None = None
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


_SECTIONS: dict[str, type] = {
    "database": DatabaseConfig,
    "storage": StorageConfig,
    "epuap": EpuapConfig,
    "signatures": SignaturesConfig,
    "scans": ScansConfig,
    "rules": RulesConfig,
    "processing": ProcessingConfig,
    "payments": PaymentsConfig,
    "correspondence": CorrespondenceConfig,
    "logging": LoggingConfig,
    "monitoring": MonitoringConfig,
}

_CHOICES: dict[str, tuple[str, ...]] = {
    "logging.format": ("json", "text"),
    "logging.level": ("DEBUG", "INFO", "WARNING", "ERROR"),
    "signatures.revocation": ("off", "required"),
}

_POSITIVE = {
    "epuap.timeout_s", "epuap.connect_timeout_s", "epuap.poll_interval_s", "epuap.batch_limit",
    "epuap.max_attempts", "epuap.backoff_max_s", "epuap.max_response_bytes", "scans.poll_interval_s",
    "processing.max_document_bytes", "processing.max_attempts", "processing.retry_max_s",
    "processing.interval_s", "monitoring.pending_warn_s", "monitoring.pull_stale_s",
    "correspondence.max_attachment_bytes",
}


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
    sections: dict[str, Any] = {}
    for name, value in data.items():
        if name not in _SECTIONS:
            raise ConfigError(f"{name}: nieznana sekcja konfiguracji")
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: musi być tabelą [{name}]")
        sections[name] = _build(_SECTIONS[name], value, name, base)
    db = sections.get("database", DatabaseConfig())
    sections["database"] = replace(db, url=_sqlite_relative_to(db.url, base))
    corr = sections.get("correspondence", CorrespondenceConfig())
    if not corr.outbox.is_absolute():  # the default, too, is relative to the config file
        sections["correspondence"] = replace(corr, outbox=base / corr.outbox)
    return Config(path=path, **sections)


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


def _build(cls: type, values: dict[str, Any], prefix: str, base: Path) -> Any:
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{prefix}.{key}"
        if key not in known:
            raise ConfigError(f"{dotted}: nieznany klucz")
        kwargs[key] = _convert(dotted, known[key].type, value, base)
    obj = cls(**kwargs)
    _check(prefix, obj)
    return obj


def _convert(key: str, typ: Any, value: Any, base: Path) -> Any:
    t = str(typ)
    if key == "epuap.mailboxes":
        if not isinstance(value, list):
            raise ConfigError(f"{key}: musi być listą tabel [[epuap.mailboxes]]")
        boxes = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise ConfigError(f"{key}[{i}]: musi być tabelą z kluczami podmiot i skrytka")
            unknown = set(item) - {"podmiot", "skrytka"}
            if unknown:
                raise ConfigError(f"{key}[{i}].{sorted(unknown)[0]}: nieznany klucz")
            for k in ("podmiot", "skrytka"):
                v = item.get(k)
                if not isinstance(v, str) or not v or "/" in v or len(v) > 100:
                    raise ConfigError(f"{key}[{i}].{k}: musi być niepustą nazwą bez '/' (najwyżej 100 znaków)")
            boxes.append(Mailbox(item["podmiot"], item["skrytka"]))
        return tuple(boxes)
    if "tuple[Path" in t:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key}: musi być listą ścieżek")
        return tuple(_path(base, v) for v in value)
    if "Path" in t:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{key}: musi być ścieżką (niepustym tekstem)")
        return _path(base, value)
    if t == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: musi być true albo false")
        return value
    if t == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: musi być liczbą całkowitą")
        return value
    if t == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: musi być liczbą")
        return float(value)
    if t == "Decimal":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{key}: musi być liczbą")
        try:
            return Decimal(str(value))
        except InvalidOperation:
            raise ConfigError(f"{key}: musi być liczbą") from None
    if "str" in t:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: musi być tekstem")
        return value
    raise ConfigError(f"{key}: nieobsługiwana wartość")  # pragma: no cover - schema error


def _path(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def _check(prefix: str, obj: Any) -> None:
    for f in fields(obj):
        key = f"{prefix}.{f.name}"
        value = getattr(obj, f.name)
        if key in _CHOICES and value not in _CHOICES[key]:
            raise ConfigError(f"{key}: dozwolone wartości: {', '.join(_CHOICES[key])} (podano {value!r})")
        if key in _POSITIVE and value <= 0:
            raise ConfigError(f"{key}: musi być większe od 0")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise ConfigError(f"{key}: nie może być ujemne")
    if prefix == "scans" and not (Decimal(0) <= obj.min_confidence <= Decimal(1)):
        raise ConfigError("scans.min_confidence: musi być między 0 a 1")
    if prefix == "database" and not obj.url.split(":", 1)[0].startswith(("sqlite", "postgresql")):
        raise ConfigError("database.url: musi być adresem sqlite:/// albo postgresql+psycopg://")
    if prefix == "payments":
        from worker.domain.accounts import branch_is_valid

        if obj.bank_branch is not None and not branch_is_valid(obj.bank_branch):
            raise ConfigError("payments.bank_branch: niepoprawny 8-cyfrowy numer rozliczeniowy oddziału banku")
        if not obj.account_prefix.isdigit() and obj.account_prefix != "" or len(obj.account_prefix) > 8:
            raise ConfigError("payments.account_prefix: najwyżej 8 cyfr")
    if prefix == "epuap" and obj.enabled:
        for name in ("endpoint", "certificate", "private_key", "response_certificate"):
            if not getattr(obj, name):
                raise ConfigError(f"epuap.{name}: wymagane, gdy epuap.enabled = true")
        if not obj.endpoint.startswith(("http://", "https://")):
            raise ConfigError("epuap.endpoint: musi być adresem http:// lub https://")
        if not obj.mailboxes:
            raise ConfigError("epuap.mailboxes: gdy epuap.enabled = true, potrzebna jest co najmniej jedna [[epuap.mailboxes]]")
