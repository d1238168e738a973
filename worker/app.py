"""The composition root: builds the worker's parts from the configuration, once."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from adapters.db.locks import PassLocks
from adapters.db.migrate import make_engine, upgrade
from adapters.epuap.errors import EpuapConfigError
from adapters.scans import ensure_folders
from adapters.storage import DocumentStore
from rules.ruleset import RuleSetError, load_ruleset
from worker.config import Config, ConfigError
from worker.errors import file_error_text
from worker.intake import Intake
from worker.pipeline import ProcessingSettings
from worker.processing import Processor
from worker.signatures import TrustConfig
from worker.signatures.trust import load_certificates

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = logging.getLogger(__name__)


@dataclass
class App:
    config: Config

    @cached_property
    def engine(self) -> Engine:
        url = self.config.database_url()
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            from pathlib import Path

            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
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
    return ProcessingSettings(
        max_document_bytes=config.processing.max_document_bytes,
        ruleset=ruleset,
        trust=trust,
        min_confidence=config.scans.min_confidence,
        max_attachment_bytes=config.correspondence.max_attachment_bytes,
    )
