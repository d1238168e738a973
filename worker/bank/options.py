"""How the union's bank writes its statements: the format keys of ``[bank]``.

The integration builds one :class:`BankFormat` from the configuration (``spec/payments.md``
section 2: ``account``, ``format``, ``encoding``, ``subfield_mark``, ``virtual_account_from``,
``unique_ref``); the parsers take nothing else. Values are checked here, so a wrong key
stops the worker at start-up with a one-line :class:`ValueError`.

>>> f = BankFormat(account="PL61109010140000071219812874", format="mt940", virtual_account_from="mt940-86-subfield:38")
>>> f.account, f.va_source, f.va_argument
('61109010140000071219812874', 'mt940-86-subfield', '38')
>>> BankFormat(account="61109010140000071219812874", format="camt053", virtual_account_from="mt940-61-bank-ref")
Traceback (most recent call last):
...
ValueError: virtual_account_from 'mt940-61-bank-ref' is not a place in camt053 statements
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from worker.bank.model import CAMT053, MT940
from worker.domain.accounts import nrb_is_valid

ENCODINGS = {"cp852": "cp852", "windows-1250": "cp1250", "iso-8859-2": "iso8859_2", "utf-8": "utf-8"}
SUBFIELD_MARKS = ("~", "<", "^", "+")
UNIQUE_REFS = ("mbank-tnr", "61-bank-ref", "none")
_VA_SOURCES = {
    "camt-cdtracct": CAMT053,
    "camt-ustrd": CAMT053,
    "mt940-61-bank-ref": MT940,
    "mt940-86-subfield": MT940,
    "mt940-86-label": MT940,
}


def normalise_account(value: str) -> str:
    """An account as written in a statement or the configuration → its 26 digits when it
    is a Polish NRB/IBAN (blanks, a leading ``/`` and ``PL`` removed); otherwise the
    text without blanks.

    >>> normalise_account("/PL30 1020 1055 0000 9102 0000 0000")
    '30102010550000910200000000'
    """
    text = re.sub(r"\s+", "", value).lstrip("/")
    if text[:2].upper() == "PL" and text[2:].isdigit():
        text = text[2:]
    return text


@dataclass(frozen=True)
class BankFormat:
    account: str  # the collection account (NRB or IBAN); stored as its 26 digits
    format: str  # mt940 | camt053
    virtual_account_from: str  # where the bank writes the virtual account paid to (no default: the bank's description says)
    encoding: str = "cp852"  # MT940 only
    subfield_mark: str = "~"  # MT940 only
    unique_ref: str = "none"  # MT940 only

    def __post_init__(self) -> None:
        account = normalise_account(self.account)
        if not nrb_is_valid(account):
            raise ValueError("account is not a valid Polish account number (NRB, 26 digits with IBAN check digits)")
        object.__setattr__(self, "account", account)
        if self.format not in (MT940, CAMT053):
            raise ValueError(f"format must be {MT940!r} or {CAMT053!r}, not {self.format!r}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, not {self.encoding!r}")
        if self.subfield_mark not in SUBFIELD_MARKS:
            raise ValueError(f"subfield_mark must be one of {' '.join(SUBFIELD_MARKS)}, not {self.subfield_mark!r}")
        if self.unique_ref not in UNIQUE_REFS:
            raise ValueError(f"unique_ref must be one of {', '.join(UNIQUE_REFS)}, not {self.unique_ref!r}")
        source = self.va_source
        if source not in _VA_SOURCES:
            raise ValueError(f"virtual_account_from {self.virtual_account_from!r} is not one of {', '.join(sorted(_VA_SOURCES))}")
        if _VA_SOURCES[source] != self.format:
            raise ValueError(f"virtual_account_from {self.virtual_account_from!r} is not a place in {self.format} statements")
        argument = self.va_argument
        if source == "mt940-86-subfield" and not re.fullmatch(r"[0-9]{2}", argument or ""):
            raise ValueError("virtual_account_from mt940-86-subfield:NN needs a two-digit subfield number")
        if source == "mt940-86-label" and not argument:
            raise ValueError("virtual_account_from mt940-86-label:LABEL needs the label (e.g. 'ID IPH')")
        if source not in ("mt940-86-subfield", "mt940-86-label") and argument is not None:
            raise ValueError(f"virtual_account_from {source} takes no argument")

    @property
    def va_source(self) -> str:
        return self.virtual_account_from.split(":", 1)[0].strip()

    @property
    def va_argument(self) -> str | None:
        parts = self.virtual_account_from.split(":", 1)
        return parts[1].strip() if len(parts) == 2 else None

    @property
    def codec(self) -> str:
        """The Python codec of ``encoding``."""
        return ENCODINGS[self.encoding]


__all__ = ["ENCODINGS", "SUBFIELD_MARKS", "UNIQUE_REFS", "BankFormat", "normalise_account"]
