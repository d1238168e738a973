"""``config check``: the configuration and everything it names, one Polish line per problem.

The configuration file itself is validated when it is loaded (:mod:`worker.config`: types,
unknown keys, duplicate mailboxes). The checks here look at what its values point to:
files readable and what they should be (certificates, keys with their password from the
environment, trust anchors and seals, revocation lists, the trusted lists and their
signers, the rule set), folders writable where the worker writes (and not full), limits
that contradict each other, the database reachable and at the current schema
(``spec/operations.md``, the ``config check`` command).

Each check is a small function ``(config, options) -> problems`` registered with
:func:`check`; a new key gets its own check next to the others. ``run`` refuses to start on
the same problems (without the database ones: the daemon waits for its database), and
``status --monitor`` reports them as CRITICAL (without the database ones, and without
loading keys whose password variable the checker's environment does not carry).
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from worker import fmt
from worker.config import Config, ConfigError
from worker.errors import errno_text, file_error_text
from worker.output import EXIT_OK, EXIT_USAGE

#: below this many free bytes a folder's file system counts as full (the configuration's
#: ``monitoring.min_free_bytes`` where the check knows it)
MIN_FREE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Problem:
    key: str  # the configuration key, as written in the file
    text: str  # Polish, for the administrator

    def line(self) -> str:
        return f"{self.key}: {self.text}"


@dataclass(frozen=True)
class Options:
    database: bool = True  # reach the database and read its schema version
    secrets: bool = True  # False: keys whose password variable is not set are not loaded (status --monitor)
    free_space: bool = True  # a full disk is a problem here (not for `run`: it is a state the daemon reports, not a mistake)


def _min_free(config: Config, options: Options) -> int:
    return config.monitoring.min_free_bytes if options.free_space else 0


Check = Callable[[Config, Options], Iterable[Problem]]
CHECKS: list[Check] = []


def check(func: Check) -> Check:
    """Register a check (in the order of the configuration file's sections)."""
    CHECKS.append(func)
    return func


def collect(config: Config, options: Options = Options()) -> list[Problem]:
    """Every problem the registered checks find."""
    found: list[Problem] = []
    for func in CHECKS:
        found.extend(func(config, options))
    return found


def refuse(problems: Iterable[Problem]) -> None:
    """A start-up check: any problem stops the command (exit 2, one line per problem)."""
    lines = [p.line() for p in problems]
    if lines:
        raise ConfigError(lines[0], lines)


def run(app: Any) -> int:
    """``ebok-worker config check``: exit 0 when all is well, 2 otherwise."""
    problems = collect(app.config)
    for p in problems:
        print(p.line())
    where = app.config.path or "?"
    if problems:
        print(f"Konfiguracja {where}: {fmt.count(len(problems), 'problem', 'problemy', 'problemów')} do poprawienia.")
        return EXIT_USAGE
    print(f"Konfiguracja {where} jest poprawna: pliki, klucze, foldery i baza danych sprawdzone.")
    return EXIT_OK


# --- helpers ---------------------------------------------------------------------------------


def readable_file(key: str, path: Path | None) -> Problem | None:
    """The file is there and can be read."""
    if path is None:
        return None
    try:
        if path.is_dir():
            return Problem(key, f"{path} jest folderem, a powinien być plikiem")
        with open(path, "rb") as fh:
            fh.read(1)
    except FileNotFoundError:
        return Problem(key, f"nie ma pliku {path}")
    except OSError as exc:
        return Problem(key, f"nie można odczytać pliku {path}: {errno_text(exc.errno)}")
    return None


def readable(key: str, path: Path | None) -> Problem | None:
    """A file or a folder that is there (trust anchors may be either)."""
    if path is not None and path.is_dir():
        try:
            next(iter(path.iterdir()), None)
        except OSError as exc:
            return Problem(key, f"nie można odczytać folderu {path}: {errno_text(exc.errno)}")
        return None
    return readable_file(key, path)


def free_bytes(path: Path) -> int | None:
    """Free space for the worker on the file system of ``path`` (its nearest existing
    folder); None when it cannot be told."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        st = os.statvfs(p)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def writable_folder(key: str, path: Path | None, *, min_free: int | None = None) -> Problem | None:
    """The folder can be written (a file created and removed there) and is not full; a
    folder that does not exist yet must be creatable (the worker creates it at start)."""
    if path is None:
        return None
    p = Path(path)
    if p.exists() and not p.is_dir():
        return Problem(key, f"{p} nie jest folderem")
    probe_in = p
    while not probe_in.exists():
        if probe_in == probe_in.parent:
            return Problem(key, f"nie można utworzyć folderu {p}")
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        return Problem(key, f"nie można utworzyć folderu {p}: {probe_in} nie jest folderem")
    try:
        fd, name = tempfile.mkstemp(prefix=".ebok-config-check-", dir=probe_in)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        what = f"folderu {p}" if probe_in == p else f"folderu {p} (nie można go utworzyć w {probe_in})"
        return Problem(key, f"brak prawa zapisu {what}: {errno_text(exc.errno)}")
    free = free_bytes(probe_in)
    if free is not None and free < (MIN_FREE_BYTES if min_free is None else min_free):
        return Problem(key, f"{errno_text(errno.ENOSPC)}: w {probe_in} wolne {fmt.size(free)}")
    return None


def certificates(key: str, path: Path | None, *, own: bool = False) -> Iterator[Problem]:
    """X.509 certificates (PEM or DER; a folder of them); ``own``: the worker's own
    certificate, which must also be valid now."""
    if path is None:
        return
    problem = readable(key, path)
    if problem is not None:
        yield problem
        return
    from worker.signatures.trust import load_certificates

    try:
        certs = load_certificates(path, key)
    except (ValueError, OSError):
        yield Problem(key, f"{path} nie zawiera certyfikatów X.509 (PEM albo DER)")
        return
    if own:
        now = datetime.now(UTC)
        for cert in certs[:1]:
            if cert.not_valid_after_utc < now:
                yield Problem(key, f"certyfikat {path} wygasł {fmt.datetime_local(cert.not_valid_after_utc)}")
            elif cert.not_valid_before_utc > now:
                yield Problem(key, f"certyfikat {path} jest ważny dopiero od {fmt.datetime_local(cert.not_valid_before_utc)}")


# --- the checks, section by section ------------------------------------------------------------


@check
def database(config: Config, options: Options) -> Iterator[Problem]:
    env = config.database.password_env
    if env and os.environ.get(env) is None:
        yield Problem("database.password_env", f"zmienna środowiskowa {env} (hasło bazy danych) nie jest ustawiona")
        return
    url = config.database.url
    sqlite_file = _sqlite_file(url)
    if sqlite_file is not None:
        problem = writable_folder("database.url", sqlite_file.parent, min_free=_min_free(config, options))
        if problem is not None:
            yield problem
            return
    if not options.database:
        return
    if sqlite_file is not None and not sqlite_file.exists():
        yield Problem("database.url", f"plik bazy {sqlite_file} jeszcze nie istnieje: uruchom `ebok-worker db upgrade`")
        return
    from adapters.db.errors import connection_problem, where
    from adapters.db.migrate import SCHEMA_REVISION, current_revision, make_engine

    engine = make_engine(config.database_url())
    try:
        try:
            revision = current_revision(engine)
        except Exception as exc:  # noqa: BLE001 - any failure to reach it is the problem reported
            yield Problem("database.url", f"nie można połączyć się z bazą danych ({where(url)}): {connection_problem(exc)}")
            return
        if revision != SCHEMA_REVISION:
            now = f"w wersji {revision}" if revision else "bez schematu"
            yield Problem("database.url", f"baza danych jest {now}, a ta wersja workera potrzebuje {SCHEMA_REVISION}: uruchom `ebok-worker db upgrade`")
    finally:
        engine.dispose()


def _sqlite_file(url: str) -> Path | None:
    if not url.startswith("sqlite:///") or url.startswith("sqlite:///:memory:"):
        return None
    return Path(url.removeprefix("sqlite:///").split("?", 1)[0])


@check
def folders(config: Config, options: Options) -> Iterator[Problem]:
    """The folders the worker always writes to: the document storage, the office's outbox."""
    for key, path in (("storage.path", config.storage.path), ("correspondence.outbox", config.correspondence.outbox)):
        problem = writable_folder(key, path, min_free=_min_free(config, options))
        if problem is not None:
            yield problem


@check
def epuap(config: Config, options: Options) -> Iterator[Problem]:
    e = config.epuap
    if not e.enabled:
        return
    yield from certificates("epuap.certificate", e.certificate, own=True)
    yield from certificates("epuap.response_certificate", e.response_certificate)
    key_problem = readable_file("epuap.private_key", e.private_key)
    if key_problem is not None:
        yield key_problem
        return
    password = None
    if e.private_key_password_env:
        password = os.environ.get(e.private_key_password_env)
        if password is None:
            if options.secrets:
                yield Problem("epuap.private_key_password_env",
                              f"zmienna środowiskowa {e.private_key_password_env} (hasło klucza epuap.private_key) nie jest ustawiona")
            return
    if e.certificate is None or e.private_key is None or readable_file("epuap.certificate", e.certificate) is not None:
        return
    from adapters.epuap.wssec import load_identity

    try:
        load_identity(e.certificate, e.private_key, password)
    except (ValueError, TypeError) as exc:
        yield _key_problem(exc, e.private_key_password_env)
    except OSError as exc:
        yield Problem("epuap.private_key", f"nie można odczytać klucza: {file_error_text(exc)}")


@check
def epuap_files_and_packages(config: Config, options: Options) -> Iterator[Problem]:
    """ePUAP's file repository (attachments by reference) and the limits of the mailbox
    export package (``import-package``, which needs no ``epuap.enabled``)."""
    e = config.epuap
    if e.enabled:
        if not urlsplit(e.filerepo_endpoint).hostname:
            yield Problem("epuap.filerepo_endpoint", f"adres {e.filerepo_endpoint} nie wskazuje serwera")
        elif _same_address(e.filerepo_endpoint, e.endpoint):
            yield Problem("epuap.filerepo_endpoint", "to ten sam adres co epuap.endpoint (usługa pobierania dokumentów): repozytorium plików "
                                                     "ePUAP ma własny adres (…/FileRepoService) — usługa pobierania odmówiłaby wydania pliku "
                                                     "i każdy załącznik przekazany przez odniesienie zostałby uznany za niedostępny")
        memory = _physical_memory()
        if memory is not None and FILEREPO_MEMORY_FACTOR * e.filerepo_max_file_bytes > memory:
            yield Problem("epuap.filerepo_max_file_bytes",
                          f"pobranie pliku {fmt.size(e.filerepo_max_file_bytes)} potrzebuje do {FILEREPO_MEMORY_FACTOR} razy tyle pamięci, "
                          f"a ten komputer ma {fmt.size(memory)}: proces workera zostałby zabity przy każdej próbie pobrania")
    if e.package_max_total_bytes < e.package_max_entry_bytes:
        yield Problem("epuap.package_max_total_bytes",
                      f"{fmt.size(e.package_max_total_bytes)} to mniej niż epuap.package_max_entry_bytes ({fmt.size(e.package_max_entry_bytes)})")


#: a file's answer from the repository is held whole several times over while it is read
#: (the HTTP body, the tree with its base64 text, the signed Body's canonical form, the bytes):
#: 5–7 × its size at the peak (docs/performance.md, bench/bench_filerepo.py)
FILEREPO_MEMORY_FACTOR = 7


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _same_address(a: str, b: str) -> bool:
    """The same service address (scheme and host case-insensitive, a trailing ``/`` and
    the default port ignored)."""

    def norm(url: str) -> tuple[str, str, int | None, str]:
        u = urlsplit(url.strip())
        try:
            port = u.port
        except ValueError:  # not a port number: compared as written
            return u.scheme.lower(), u.netloc.lower(), None, u.path.rstrip("/")
        if port == {"http": 80, "https": 443}.get(u.scheme.lower()):
            port = None
        return u.scheme.lower(), (u.hostname or "").lower(), port, u.path.rstrip("/")

    return norm(a) == norm(b)


def _key_problem(exc: BaseException, password_env: str | None) -> Problem:
    """What loading the WS-Security key said, in the administrator's words and under the
    key at fault."""
    text = str(exc).lower()
    if "does not belong to the certificate" in text:
        return Problem("epuap.private_key", "klucz prywatny nie pasuje do certyfikatu epuap.certificate")
    if "rsa" in text:
        return Problem("epuap.private_key", "klucz musi być kluczem RSA")
    if "password was not given" in text or "encrypted" in text and not password_env:
        return Problem("epuap.private_key_password_env", "klucz epuap.private_key jest zaszyfrowany, a nie wskazano zmiennej z jego hasłem")
    if "password" in text or "decrypt" in text:
        where = f" (zmienna {password_env})" if password_env else ""
        return Problem("epuap.private_key_password_env", f"hasło klucza epuap.private_key jest błędne{where}")
    return Problem("epuap.private_key", "nie można wczytać klucza prywatnego (oczekiwany PEM, DER albo PKCS#12)")


@check
def signatures(config: Config, options: Options) -> Iterator[Problem]:
    s = config.signatures
    if s.trusted_profile_seals and s.trust_anchors is None:
        yield Problem("signatures.trust_anchors", "wymagane, gdy podano signatures.trusted_profile_seals")
    elif config.epuap.enabled and s.trust_anchors is None:
        yield Problem("signatures.trust_anchors", "wymagane, gdy epuap.enabled = true (bez kotwic zaufania nie da się sprawdzić podpisu żadnej deklaracji z ePUAP)")
    yield from certificates("signatures.trust_anchors", s.trust_anchors)
    for i, seal in enumerate(s.trusted_profile_seals):
        yield from certificates(f"signatures.trusted_profile_seals[{i}]", seal)
    yield from certificates("signatures.tsa_anchors", s.tsa_anchors)
    for i, crl in enumerate(s.crls):
        key = f"signatures.crls[{i}]"
        problem = readable(key, crl)
        if problem is not None:
            yield problem
            continue
        from worker.signatures.trust import load_crls

        try:
            load_crls([crl])
        except (ValueError, OSError):
            yield Problem(key, f"{crl} nie zawiera list odwołanych certyfikatów (CRL, PEM albo DER)")


@check
def trusted_lists(config: Config, options: Options) -> Iterator[Problem]:
    """The trusted lists (ETSI TS 119 612) and fetched revocation: each list a URL with a
    host or a readable file within ``fetch_max_bytes`` (named once), their signers'
    certificates parseable, the cache folder writable where it is used, revocation
    ``required`` with something to answer it. Whether a list verifies is not a
    configuration problem: ``trust update`` says so, and monitoring (the last good copy
    stays in use)."""
    from worker.signatures.fetch import is_url

    s = config.signatures
    seen: dict[str, int] = {}
    for i, entry in enumerate(s.trusted_lists):
        key = f"signatures.trusted_lists[{i}]"
        if entry in seen:
            yield Problem(key, f"ta sama lista co signatures.trusted_lists[{seen[entry]}] ({entry})")
            continue
        seen[entry] = i
        if is_url(entry):
            if not urlsplit(entry).hostname:
                yield Problem(key, f"adres {entry} nie wskazuje serwera")
            continue
        problem = readable_file(key, Path(entry))
        if problem is not None:
            yield problem
            continue
        size = Path(entry).stat().st_size
        if size > s.fetch_max_bytes:
            yield Problem(key, f"plik {entry} ma {fmt.size(size)}, więcej niż signatures.fetch_max_bytes ({fmt.size(s.fetch_max_bytes)})")
    if s.trusted_lists:
        yield from certificates("signatures.trusted_list_signers", s.trusted_list_signers)
    if s.trusted_lists or s.revocation_fetch:
        problem = writable_folder("signatures.cache", s.cache, min_free=_min_free(config, options))
        if problem is not None:
            yield problem
    if s.revocation == "required" and not s.crls and not s.revocation_fetch:
        yield Problem("signatures.revocation", 'ustawiono "required", ale nie podano signatures.crls ani signatures.revocation_fetch = true: '
                                               "nie byłoby czym sprawdzić unieważnienia i każdy podpis trafiłby do weryfikacji")


@check
def scans(config: Config, options: Options) -> Iterator[Problem]:
    s = config.scans
    if not s.enabled:
        return
    seen: dict[Path, str] = {}
    for name in ("inbox", "archive", "quarantine"):
        path = Path(getattr(s, name))
        key = f"scans.{name}"
        if path.resolve() in seen:
            yield Problem(key, f"ten sam folder co {seen[path.resolve()]} ({path})")
            continue
        seen[path.resolve()] = key
        problem = writable_folder(key, path, min_free=_min_free(config, options))
        if problem is not None:
            yield problem


@check
def rules(config: Config, options: Options) -> Iterator[Problem]:
    if config.rules.path is None:
        return
    problem = readable_file("rules.path", config.rules.path)
    if problem is not None:
        yield problem
        return
    from rules.ruleset import RuleSetError, load_ruleset

    try:
        load_ruleset(config.rules.path)
    except RuleSetError as exc:
        yield Problem("rules.path", f"zasady opłat są niepoprawne: {exc}")


@check
def written_files(config: Config, options: Options) -> Iterator[Problem]:
    """Files the worker writes: the metrics textfile, the log file."""
    for key, path in (("monitoring.metrics_file", config.monitoring.metrics_file), ("logging.file", config.logging.file)):
        if path is None:
            continue
        if Path(path).is_dir():
            yield Problem(key, f"{path} jest folderem, a powinien być plikiem")
            continue
        problem = writable_folder(key, Path(path).parent, min_free=0)
        if problem is not None:
            yield problem
