"""The union's fee rules: data (``czysty-region.toml``) and the code that applies them.

- :mod:`rules.ruleset` — ``load_ruleset(path=None) -> RuleSet`` (validated; ``RuleSetError``)
- :mod:`rules.fees` — ``compute_fee(declaration, ruleset, on=None) -> FeeComputation``
- :mod:`rules.checks` — the ``fee_rules`` pipeline stage and ``check_fee_rules(...)``
- :mod:`rules.deadlines`, :mod:`rules.workdays`, :mod:`rules.daysoff` — filing deadlines, Polish days off (data: ``days-off.toml``)
- :mod:`rules.duedates`, :mod:`rules.charges`, :mod:`rules.ledger` — due dates, charges from fee periods, allocation and the account state
- :mod:`rules.periods` — fee periods, correction base, retroactive decrease
"""
