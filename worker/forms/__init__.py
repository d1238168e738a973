"""The union's e-forms: safe parsing, identification, XSD validation and mapping to the model.

Entry points for the pipeline (see :mod:`worker.forms.stages`)::

    from worker.forms import FORM_STAGES_BEFORE_SIGNATURE, FORM_STAGES_AFTER_SIGNATURE
    stages = FORM_STAGES_BEFORE_SIGNATURE + [signature_stage] + FORM_STAGES_AFTER_SIGNATURE

``FORM_STAGES_BEFORE_SIGNATURE`` = ``parse``, ``identify``;
``FORM_STAGES_AFTER_SIGNATURE`` = ``validate``, ``map_declaration``, ``declaration_checks``.
The known forms are :data:`worker.forms.registry.FORMS`.
"""

from worker.forms.registry import DEFAULT_REGISTRY, FORMS, FormRegistry, FormSpec
from worker.forms.stages import (
    declaration_checks,
    form_stages,
    identify,
    map_declaration,
    parse,
    validate,
)

FORM_STAGES_BEFORE_SIGNATURE = [parse, identify]
FORM_STAGES_AFTER_SIGNATURE = [validate, map_declaration, declaration_checks]

__all__ = [
    "DEFAULT_REGISTRY",
    "FORMS",
    "FORM_STAGES_AFTER_SIGNATURE",
    "FORM_STAGES_BEFORE_SIGNATURE",
    "FormRegistry",
    "FormSpec",
    "declaration_checks",
    "form_stages",
    "identify",
    "map_declaration",
    "parse",
    "validate",
]
