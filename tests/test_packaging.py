"""`pip install .` (not editable) gives a worker that finds its schemas, rules and migrations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow  # a real pip install into a scratch folder

PROBE = r"""
import sys, tempfile
from importlib import resources
import worker, adapters, rules, schemas
assert str(worker.__file__).startswith(sys.argv[1]), worker.__file__
from worker.forms.registry import DEFAULT_REGISTRY
DEFAULT_REGISTRY.warm_up()  # compiles every form's XSD from the installed package
from rules.ruleset import load_ruleset
load_ruleset()
assert (resources.files("schemas") / "epuap").is_dir()
from adapters.db.migrate import make_engine, upgrade, current_revision, head_revision
e = make_engine("sqlite:///" + tempfile.mktemp(suffix=".db"))
upgrade(e)
assert head_revision() >= "0003" and current_revision(e) == head_revision()
print("ok")
"""


def test_non_editable_install_finds_its_data(tmp_path):
    target = tmp_path / "site"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(ROOT)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert not (target / "tests").exists()
    env = dict(os.environ, PYTHONPATH=str(target))
    probe = subprocess.run([sys.executable, "-c", PROBE, str(target)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert probe.returncode == 0 and probe.stdout.strip() == "ok", probe.stderr
