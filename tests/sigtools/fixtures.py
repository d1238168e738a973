"""Session fixtures for the signature tests (import them into a test module)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.sigtools.pki import TestPKI
from worker.signatures import TrustConfig

#: when the generated test documents are signed, and filed a little later
SIGNED_AT = datetime(2025, 3, 10, 8, 30, tzinfo=UTC)
FILED_AT = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def pki() -> TestPKI:
    return TestPKI()


@pytest.fixture(scope="session")
def trust_files(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return pki.write_trust(tmp_path_factory.mktemp("trust"))


@pytest.fixture(scope="session")
def trust(trust_files: tuple[Path, Path]) -> TrustConfig:
    anchors, seal = trust_files
    return TrustConfig.from_files(anchors, [seal])
