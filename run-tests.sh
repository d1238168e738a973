#!/usr/bin/env bash
# The whole test suite. Sets up what it needs first (virtualenv, the project with its test
# extras, the xmlsec1 tool that makes the independent signatures), runs the static checks
# (ruff, mypy, import-linter: configured in pyproject.toml; any finding fails the run), then
# runs pytest.
# SQLite by default; set EBOK_TEST_DATABASE_URL=postgresql+psycopg://… to run it against
# PostgreSQL. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' > .venv/pip-install.log 2>&1 \
    || { cat .venv/pip-install.log >&2; exit 1; }

if ! command -v xmlsec1 >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing xmlsec1 (signs the test documents independently of the worker)…" >&2
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xmlsec1 >/dev/null
    else
        echo "run-tests.sh: the xmlsec1 tool is needed (Debian/Ubuntu: apt-get install xmlsec1)" >&2
        exit 1
    fi
fi

echo "static checks: ruff, mypy, import-linter" >&2
.venv/bin/ruff check --quiet .
.venv/bin/mypy
.venv/bin/lint-imports --no-cache > .venv/lint-imports.log 2>&1 || { cat .venv/lint-imports.log >&2; exit 1; }

exec .venv/bin/python -m pytest "$@"
