"""The payer's individual bank account number (NRB) for fee payments.

The union's bank gives it a range of virtual accounts under one branch number: the NRB is
``CC`` (IBAN check digits for ``PL``) + the 8-digit branch number + a 16-digit account
number made of the union's prefix and the payer's id. It is assigned once, when the payer
is created, and never changes.

>>> nrb = payer_account("10901014", "4000", 123)
>>> nrb
'98109010144000000000000123'
>>> from stdnum import iban
>>> iban.is_valid("PL" + nrb)
True
>>> branch_is_valid("10901014"), branch_is_valid("10901015")
(True, False)
"""

from __future__ import annotations

from stdnum.iso7064 import mod_97_10

_BRANCH_WEIGHTS = (3, 9, 7, 1, 3, 9, 7)


def branch_is_valid(branch: str) -> bool:
    """Check the 8-digit bank branch number (its last digit is a weighted check digit)."""
    if len(branch) != 8 or not branch.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(branch[:7], _BRANCH_WEIGHTS, strict=False))
    return (10 - total % 10) % 10 == int(branch[7])


def payer_account(branch: str, prefix: str, payer_id: int) -> str:
    """The NRB (26 digits) of payer ``payer_id`` in the union's virtual-account range."""
    if not branch_is_valid(branch):
        raise ValueError("invalid bank branch number")
    width = 16 - len(prefix)
    number = f"{prefix}{payer_id:0{width}d}"
    if len(number) != 16 or not number.isdigit():
        raise ValueError("payer id does not fit the account range")
    bban = branch + number
    # IBAN check digits: ISO 7064 mod 97-10 over BBAN + "PL" as digits (P=25, L=21) + "00"
    check = mod_97_10.calc_check_digits(bban + "2521")
    return check + bban
