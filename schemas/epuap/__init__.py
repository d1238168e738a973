"""The project's own WSDL/XSD of ePUAP's pull service (interface rev 1.10 of ``obiektypk.xsd``)."""

from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parent
PULL_WSDL = SCHEMA_DIR / "pull.wsdl"
OBJECTS_XSD = SCHEMA_DIR / "obiektypk.xsd"
