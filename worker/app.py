"""The composition root: builds the worker's parts from the configuration, once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from adapters.db.locks import PassLocks
from adapters.db.migrate import make_engine, upgrade
from adapters.epuap.errors import EpuapConfigError
from adapters.scans import ensure_folders
from adapters.storage import DocumentStore
from rules.ruleset import RuleSetError, load_ruleset
from worker.config import Config, ConfigError
from worker.errors import file_error_text
from worker.forms.structure import StructureLimits
from worker.intake import Intake
from worker.pipeline import ProcessingSettings
from worker.processing import Processor
from worker.signatures import TrustConfig
from worker.signatures.fetch import Fetcher
from worker.signatures.revocation import RevocationConfig, RevocationFetcher
from worker.signatures.trust import load_certificates
from worker.signatures.trusted_lists import TrustedListConfig, TrustedLists

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = logging.getLogger(__name__)


@dataclass
class App:
    config: Config

    @cached_property
    def engine(self) -> Engine:
        url = self.config.database_url()
        return make_engine(url, echo=self.config.database.echo)

    @cached_property
    def store(self) -> DocumentStore:
        return DocumentStore(self.config.storage.path)

    @cached_property
    def intake(self) -> Intake:
        return Intake(self.engine, self.store)

    @cached_property
    def settings(self) -> ProcessingSettings:
        return build_settings(self.config)

    @cached_property
    def processor(self) -> Processor:
        return Processor(self.engine, self.store, self.settings, self.config.processing, self.config.payments)

    @cached_property
    def locks(self):
        return PassLocks(self.engine)

    def referenced_files(self, client: Callable[[], Any] | None, *, stop: threading.Event | None = None) -> Any:
        """What fetches attachments sent by reference (``adapters.epuap.referenced``) for one
        pass or command, with the file repository's client made by ``client`` when needed."""
        from adapters.db.remote_files import RemoteFiles
        from adapters.epuap.referenced import ReferencedFiles  # the SOAP client's libraries only where it is used

        return ReferencedFiles.for_config(self.config.epuap, RemoteFiles(self.engine), self.store, client, stop=stop,
                                          lock=self.locks.hold)

    def upgrade_db(self) -> None:
        upgrade(self.engine)

    def close(self) -> None:
        """Close the database connections (when the engine was made)."""
        if "engine" in self.__dict__:
            self.engine.dispose()


def check_epuap(config: Config) -> None:
    """Start-up check of the ePUAP key material (files readable, password right): a
    problem is a configuration error naming the key, before anything runs."""
    if not config.epuap.enabled:
        return
    try:
        from adapters.epuap.pull import check_config  # the SOAP client's libraries only where it is used

        check_config(config.epuap)
    except EpuapConfigError as exc:
        raise ConfigError(f"{exc.key}: {exc}") from None
    for key, endpoint in (("epuap.endpoint", config.epuap.endpoint), ("epuap.filerepo_endpoint", config.epuap.filerepo_endpoint)):
        if endpoint and endpoint.startswith("http://"):  # production and integration are HTTPS (spec/epuap.md)
            log.warning(
                "an ePUAP endpoint is plain http://: only a local double is reached so, never ePUAP itself",
                extra={"event": "epuap.insecure_endpoint", "key": key, "endpoint": endpoint[:300]},
            )


def check_scans(config: Config) -> None:
    """Start-up check of the scan inbox: when scans are enabled, the inbox, archive and
    quarantine folders are created if missing; a path that is not a folder is a
    configuration error naming the key."""
    if not config.scans.enabled:
        return
    try:
        ensure_folders(config.scans)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def structure_limits(config: Config) -> StructureLimits:
    """The structural limits of a document from ``[processing]``."""
    p = config.processing
    return StructureLimits(
        max_elements=p.max_elements, max_attributes=p.max_attributes, max_namespace_declarations=p.max_namespace_declarations,
        max_depth=p.max_depth, max_text_chars=p.max_text_chars,
    )


def trusted_list_config(config: Config) -> TrustedListConfig | None:
    """The trusted lists' configuration (signers read), ``None`` when none are configured."""
    sig = config.signatures
    if not sig.trusted_lists or sig.trusted_list_signers is None:
        return None
    from worker import config_check  # the file named by the key, checked under the key (in Polish)

    config_check.refuse(config_check.certificates("signatures.trusted_list_signers", sig.trusted_list_signers))
    try:
        signers = tuple(load_certificates(sig.trusted_list_signers, "trusted_list_signers"))
    except (ValueError, OSError) as exc:
        raise ConfigError(f"signatures.trusted_list_signers: {exc}") from None
    return TrustedListConfig(
        sources=sig.trusted_lists, signers=signers, cache=sig.cache, refresh_s=sig.trusted_list_refresh_s,
        grace_s=sig.trusted_list_grace_s, territories=frozenset(sig.trusted_list_territories), fetcher=fetcher_of(config),
    )


def fetcher_of(config: Config) -> Fetcher:
    return Fetcher(timeout_s=config.signatures.fetch_timeout_s, max_bytes=config.signatures.fetch_max_bytes)


def with_fetched_trust(trust: TrustConfig, config: Config) -> TrustConfig:
    """``trust`` with the trusted lists and the revocation fetcher the configuration asks for."""
    from dataclasses import replace as _replace

    lists = trusted_list_config(config)
    fetcher = None
    if config.signatures.revocation_fetch:
        fetcher = RevocationFetcher(RevocationConfig(cache=config.signatures.cache, fetcher=fetcher_of(config), clock_skew=trust.clock_skew))
    if lists is None and fetcher is None:
        return trust
    return _replace(trust, trusted_lists=TrustedLists(lists) if lists is not None else None, revocation_fetcher=fetcher)


def build_settings(config: Config) -> ProcessingSettings:
    """Load and validate the rule set and the trust configuration (start-up checks:
    a problem here is a configuration error naming the key)."""
    from worker import config_check  # the files named by the keys, checked under the right key

    config_check.refuse(config_check.rules(config, config_check.Options()))
    try:
        ruleset = load_ruleset(config.rules.path)
    except RuleSetError as exc:
        raise ConfigError(f"rules.path: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"rules.path: nie można odczytać zasad opłat: {file_error_text(exc)}") from None
    trust = None
    sig = config.signatures
    if sig.trust_anchors is not None or sig.trusted_profile_seals:
        config_check.refuse(config_check.signatures(config, config_check.Options()))
        assert sig.trust_anchors is not None  # the check above refuses seals without anchors
        try:
            trust = TrustConfig.from_files(sig.trust_anchors, list(sig.trusted_profile_seals), revocation=sig.revocation, crls=list(sig.crls))
        except (ValueError, OSError) as exc:
            raise ConfigError(f"signatures.trust_anchors: {exc}") from None
        if sig.tsa_anchors is not None:
            from dataclasses import replace as _replace

            try:
                trust = _replace(trust, tsa_anchors=tuple(load_certificates(sig.tsa_anchors, "tsa_anchors")))
            except (ValueError, OSError) as exc:
                raise ConfigError(f"signatures.tsa_anchors: {exc}") from None
        trust = with_fetched_trust(trust, config)
    p = config.processing
    return ProcessingSettings(
        max_document_bytes=p.max_document_bytes,
        limits=structure_limits(config),
        max_document_seconds=p.max_document_seconds,
        max_image_bytes=config.scans.max_image_bytes,
        ruleset=ruleset,
        trust=trust,
        min_confidence=config.scans.min_confidence,
        max_attachment_bytes=config.correspondence.max_attachment_bytes,
    )
