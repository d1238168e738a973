"""Paper declarations: the capture station's scan export, its mapping and the PAPER stages.

* :mod:`worker.scans.export` — parse, validate and read a scan export (``Skan``);
* :mod:`worker.scans.mapper` — the recognised fields → the declaration model;
* :mod:`worker.scans.stages` — the PAPER pipeline (:data:`~worker.scans.stages.PAPER_STAGES`).

The inbox itself (files in, archive, quarantine) is the adapter :mod:`adapters.scans`.
"""
