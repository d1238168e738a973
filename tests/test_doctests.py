"""The examples in the modules' docstrings are tests: pytest runs every one of them
(``--doctest-modules`` over ``worker``, ``adapters`` and ``rules``, pyproject.toml). This file
keeps the modules documented by their examples from losing them unnoticed."""

from __future__ import annotations

import doctest
import importlib

import pytest

DOCUMENTED_BY_EXAMPLES = [
    "worker.fmt",
    "worker.domain.attachments",
    "worker.domain.checks",
    "worker.domain.identifiers",
    "worker.forms.do1",
    "worker.forms.registry",
    "worker.forms.safe_xml",
    "worker.forms.stages",
    "worker.scans.export",
    "worker.scans.mapper",
    "worker.scans.stages",
    "worker.signatures.identity",
    "worker.signatures.trust",
    "worker.signatures.xmlparse",
    "adapters.scans",
]


@pytest.mark.parametrize("name", DOCUMENTED_BY_EXAMPLES)
def test_the_module_keeps_its_examples(name):
    module = importlib.import_module(name)
    examples = sum(len(t.examples) for t in doctest.DocTestFinder().find(module))
    assert examples > 0


def test_the_examples_run_under_pytest(pytestconfig):
    assert pytestconfig.getoption("doctestmodules")
    assert {"worker", "adapters", "rules"} <= set(pytestconfig.getini("testpaths"))
