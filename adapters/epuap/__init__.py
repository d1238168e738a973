"""ePUAP intake: the pull-service client (zeep + WS-Security), the pull loop and a local double.

Entry points:

- :func:`adapters.epuap.pull.pull_mailboxes` — one pass over the configured mailboxes;
- :class:`adapters.epuap.client.PullClient` — the three pull operations;
- :func:`adapters.epuap.double.serve` / :func:`adapters.epuap.double.main` — the ePUAP double;
- :func:`adapters.epuap.devkeys.ensure` — a development PKI for the double.
"""
