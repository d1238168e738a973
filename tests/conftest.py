"""Shared test fixtures.

``shared_dir`` is the union's read-only ``../shared`` folder. Tests that need it skip with
a reason when it is absent, but fail when ``EBOK_REQUIRE_SHARED=1`` (CI sets it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("EBOK_SHARED_DIR", PROJECT_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED_DIR / "README.md").is_file():
        if os.environ.get("EBOK_REQUIRE_SHARED") == "1":
            pytest.fail(f"EBOK_REQUIRE_SHARED=1 but the shared folder is missing: {SHARED_DIR}")
        pytest.skip(f"the union's shared folder is not present at {SHARED_DIR}")
    return SHARED_DIR
