"""Bank statements of the union's collection account and matching their movements to payers.

Pure, no I/O (the intake, the tables and the commands use these):

- :mod:`worker.bank.options` — ``BankFormat``: the ``[bank]`` keys that say how the bank writes
- :mod:`worker.bank.statement` — ``read_statements(raw, fmt) -> tuple[Statement, ...]`` or
  ``StatementRefused`` (quarantine reason and position); ``detect(raw)``
- :mod:`worker.bank.mt940` (with :mod:`~worker.bank.codepage`, :mod:`~worker.bank.zbp`,
  :mod:`~worker.bank.mbank`), :mod:`worker.bank.camt053` — the two formats
- :mod:`worker.bank.model` — ``Statement``, ``Movement``, the reasons, re-sent statements, gaps
- :mod:`worker.bank.matching` — ``match(...)``: status, reason and payer of every movement
"""
