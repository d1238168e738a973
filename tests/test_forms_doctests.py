"""The examples in the forms and checks modules' docstrings are tests too."""

from __future__ import annotations

import doctest

import pytest

from worker.domain import checks, identifiers
from worker.forms import do1, registry, safe_xml, stages


@pytest.mark.parametrize("module", [checks, identifiers, do1, registry, safe_xml, stages], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
