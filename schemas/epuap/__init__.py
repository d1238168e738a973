"""The project's own WSDL/XSD of ePUAP: the pull service (interface rev 1.10 of
``obiektypk.xsd``), the file repository (``downloadFile`` of attachments sent by reference)
and the descriptor of the mailbox export package."""

from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parent
PULL_WSDL = SCHEMA_DIR / "pull.wsdl"
OBJECTS_XSD = SCHEMA_DIR / "obiektypk.xsd"
FILEREPO_WSDL = SCHEMA_DIR / "filerepo.wsdl"
FILEREPO_XSD = SCHEMA_DIR / "filerepocore.xsd"
PACKAGE_XSD = SCHEMA_DIR / "EmergencyDownload.xsd"
