"""The form registry: which e-forms the worker knows, and everything it needs about each.

A :class:`FormSpec` is data: the form's namespace and root element, its code and version,
its XSD inside the installed ``schemas`` package, the window of *filing* dates it is in
force for, and the mapper that turns a valid document into a
:class:`~worker.domain.model.Declaration`. Adding a form version is adding one
``FormSpec`` (its XSD under ``schemas/`` and, if the layout changed, a mapper) to
:data:`FORMS` — the pipeline stages never change.

Schemas are compiled once and cached (the lxml validator once per thread, as it keeps
its error log on itself; the xmlschema explainer, used only for invalid documents, once
per process); they are read from the installed package with
:mod:`importlib.resources`, never from the union's ``shared`` folder, and compiling them
never touches the network.
"""

from __future__ import annotations

import functools
import importlib.resources
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from lxml import etree

from worker.domain.model import Declaration
from worker.forms import do1

DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"

Mapper = Callable[[Any, "FormSpec"], Declaration]


@dataclass(frozen=True)
class FormSpec:
    """One version of one e-form."""

    code: str  # "DO-1"
    version: str  # "2025"
    namespace: str  # the form's target namespace
    xsd: str  # the XSD inside the ``schemas`` package, e.g. "forms/do1/DO1_2025.xsd" (or an absolute path)
    mapper: Mapper = field(compare=False, repr=False)
    filed_from: date | None = None  # first filing day the version is accepted on
    filed_until: date | None = None  # last filing day (inclusive); None while in force
    root_element: str = "Dokument"
    title: str = ""

    @property
    def form(self) -> str:
        """The contract's form name: ``DO-1/2025``."""
        return f"{self.code}/{self.version}"

    @property
    def root_tag(self) -> str:
        return f"{{{self.namespace}}}{self.root_element}"

    def in_force_on(self, day: date) -> bool:
        """Whether a filing on ``day`` may use this version.

        >>> spec = FormSpec("X", "1", "urn:x", "x.xsd", mapper=None, filed_from=date(2023, 1, 1),
        ...                 filed_until=date(2024, 12, 31))
        >>> spec.in_force_on(date(2024, 12, 31)), spec.in_force_on(date(2025, 1, 1))
        (True, False)
        """
        if self.filed_from is not None and day < self.filed_from:
            return False
        if self.filed_until is not None and day > self.filed_until:
            return False
        return True

    def xsd_path(self) -> Path:
        return schema_path(self.xsd)

    def lxml_schema(self) -> etree.XMLSchema:
        """The compiled libxml2 validator (cached per process)."""
        return _lxml_schema(self.xsd)

    def xmlschema_schema(self) -> Any:
        """The compiled xmlschema schema, used to explain errors (cached per process)."""
        return _xmlschema_schema(self.xsd)

    def map(self, root: Any) -> Declaration:
        return self.mapper(root, self)


def schema_path(resource: str) -> Path:
    """Absolute path of an XSD shipped in the ``schemas`` package.

    The imports between the XSDs are relative, so the package must be installed as files
    (a normal install or an editable one), not zipped. An absolute path is taken as it is
    (a form kept outside the package, e.g. while a new version is being prepared).
    """
    if Path(resource).is_absolute():
        return Path(resource)
    base = importlib.resources.files("schemas")
    target = base.joinpath(*resource.split("/"))
    path = Path(str(target))
    if not isinstance(target, Path) and not path.is_file():
        raise RuntimeError("the 'schemas' package must be installed as files to resolve XSD imports")
    if not path.is_file():
        raise FileNotFoundError(f"schema {resource!r} is not in the installed 'schemas' package")
    return path


_per_thread = threading.local()


def _lxml_schema(resource: str) -> etree.XMLSchema:
    # An lxml validator keeps its error log on itself, so each thread gets its own
    # (compiling one takes a few milliseconds; it happens once per thread and form).
    cache = getattr(_per_thread, "schemas", None)
    if cache is None:
        cache = _per_thread.schemas = {}
    schema = cache.get(resource)
    if schema is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
        schema = cache[resource] = etree.XMLSchema(etree.parse(str(schema_path(resource)), parser))
    return schema


@functools.cache
def _xmlschema_schema(resource: str) -> Any:
    import xmlschema

    return xmlschema.XMLSchema(str(schema_path(resource)), allow="local", defuse="always")


class FormRegistry:
    """The known forms, found by namespace (documents) or by name (``DO-1/2025``)."""

    def __init__(self, forms: Iterable[FormSpec] = ()) -> None:
        self._by_namespace: dict[str, FormSpec] = {}
        self._by_form: dict[str, FormSpec] = {}
        for spec in forms:
            self.register(spec)

    def register(self, spec: FormSpec) -> None:
        if spec.namespace in self._by_namespace:
            raise ValueError(f"namespace already registered: {spec.namespace}")
        if spec.form in self._by_form:
            raise ValueError(f"form already registered: {spec.form}")
        self._by_namespace[spec.namespace] = spec
        self._by_form[spec.form] = spec

    def __iter__(self) -> Iterator[FormSpec]:
        return iter(self._by_form.values())

    def __len__(self) -> int:
        return len(self._by_form)

    def by_namespace(self, namespace: str | None) -> FormSpec | None:
        return self._by_namespace.get(namespace or "")

    def by_form(self, form: str | None) -> FormSpec | None:
        """``"DO-1/2025"`` → its spec (used for paper declarations and the version check)."""
        return self._by_form.get(form or "")

    def get(self, code: str, version: str) -> FormSpec | None:
        return self.by_form(f"{code}/{version}")

    def identify(self, root: Any) -> FormSpec | None:
        """The form of a parsed document, by the namespace of its root element.

        An *enveloping* signature (root ``ds:Signature`` with the form inside a
        ``ds:Object``) is looked through, so the form is known before the signature is
        verified; the declaration itself is still read only from the verified content.
        """
        tag = getattr(root, "tag", None)
        if not isinstance(tag, str):
            return None
        spec = self.by_namespace(etree.QName(tag).namespace)
        if spec is not None:
            return spec
        if tag == f"{{{DSIG_NS}}}Signature":
            for obj in root.iterchildren(f"{{{DSIG_NS}}}Object"):
                for child in obj.iterchildren(tag=etree.Element):
                    inner = self.by_namespace(etree.QName(child).namespace)
                    if inner is not None and child.tag == inner.root_tag:
                        return inner
        return None

    def warm_up(self) -> None:
        """Compile every schema now (at start-up) rather than on the first document."""
        for spec in self:
            spec.lxml_schema()


DO1_2023 = FormSpec(
    code="DO-1",
    version="2023",
    namespace="http://epuap.gov.pl/FeResourceServlet/wzor_lokalny/czysty_region/DO1_2023/",
    xsd="forms/do1/DO1_2023.xsd",
    mapper=do1.map_do1,
    filed_from=date(2023, 1, 1),
    filed_until=date(2024, 12, 31),
    title="Deklaracja o wysokości opłaty za gospodarowanie odpadami komunalnymi (DO-1, wersja 2023)",
)

DO1_2025 = FormSpec(
    code="DO-1",
    version="2025",
    namespace="http://epuap.gov.pl/FeResourceServlet/wzor_lokalny/czysty_region/DO1_2025/",
    xsd="forms/do1/DO1_2025.xsd",
    mapper=do1.map_do1,
    filed_from=date(2025, 1, 1),
    filed_until=None,
    title="Deklaracja o wysokości opłaty za gospodarowanie odpadami komunalnymi (DO-1, wersja 2025)",
)

#: every form version the union has published: add new versions here
FORMS: tuple[FormSpec, ...] = (DO1_2023, DO1_2025)

#: the registry the stages use unless given another
DEFAULT_REGISTRY = FormRegistry(FORMS)

__all__ = ["DEFAULT_REGISTRY", "DO1_2023", "DO1_2025", "FORMS", "FormRegistry", "FormSpec", "schema_path"]
