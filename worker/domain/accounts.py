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

Numbers that survive a rebuild (:func:`derived_payer_account`): the 16-digit part after the
prefix is the payer's identity (PESEL or NIP) encrypted with a key of the union under
NIST SP 800-38G FF1 — a keyed permutation, so two identities never get the same number,
the same identity always gets the same one whatever order documents are loaded in, and the
number reveals nothing of the PESEL to whoever lacks the key.

>>> key = bytes(range(16))
>>> a = derived_payer_account("10901014", "4000", "pesel", "44051401359", key)
>>> a == derived_payer_account("10901014", "4000", "pesel", "44051401359", key), iban.is_valid("PL" + a)
(True, True)
>>> a[2:14], "44051401359" in a
('109010144000', False)
"""

from __future__ import annotations

import datetime as _dt
import re

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from stdnum.iso7064 import mod_97_10
from stdnum.pl import nip as _nip
from stdnum.pl import pesel as _pesel

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
    return with_check_digits(branch + number)


def with_check_digits(bban: str) -> str:
    """The NRB of a 24-digit BBAN (branch + account number): the IBAN check digits first.

    >>> with_check_digits("109010144000000000000123")
    '98109010144000000000000123'
    """
    # IBAN check digits: ISO 7064 mod 97-10 over BBAN + "PL" as digits (P=25, L=21) + "00"
    return mod_97_10.calc_check_digits(bban + "2521") + bban


def nrb_is_valid(nrb: str) -> bool:
    """26 digits whose IBAN check digits (as ``PL`` + NRB) are right.

    >>> nrb_is_valid("98109010144000000000000123"), nrb_is_valid("99109010144000000000000123")
    (True, False)
    """
    return bool(re.fullmatch(r"[0-9]{26}", nrb)) and mod_97_10.is_valid(nrb[2:] + "2521" + nrb[:2])


def in_union_range(nrb: str, branch: str, prefix: str) -> bool:
    """A valid NRB under the union's branch and virtual-account prefix.

    >>> in_union_range("98109010144000000000000123", "10901014", "4000"), in_union_range("98109010144000000000000123", "10901014", "4001")
    (True, False)
    """
    return nrb_is_valid(nrb) and nrb[2:10] == branch and nrb[10:].startswith(prefix)


# --------------------------------------------------------------------------- derived numbers
# The identity as a number: a PESEL by its birth date (1800-2299, the dates a PESEL can
# encode) and its 4-digit serial, a NIP by its 9 digits before the check digit. Below
# IDENTITY_SPACE; encrypted with FF1 over 10 decimal digits and cycle-walked back into the
# space, then placed at the top of the payer range (id-based numbers stay at its bottom).

_PESEL_FIRST_DAY = _dt.date(1800, 1, 1)
_PESEL_DAYS = (_dt.date(2300, 1, 1) - _PESEL_FIRST_DAY).days
_PESEL_SPACE = _PESEL_DAYS * 10_000
IDENTITY_SPACE = _PESEL_SPACE + 10**9
_DIGITS = 10  # the FF1 domain: 10**10 >= IDENTITY_SPACE
MIN_DERIVED_WIDTH = _DIGITS  # payer digits after the prefix needed for derived numbers (prefix <= 6 digits)


def identity_index(kind: str, identifier: str) -> int:
    """The payer's identity as an integer below :data:`IDENTITY_SPACE`, one-to-one.

    >>> identity_index("pesel", "44051401359"), identity_index("nip", "1234563218")
    (527280135, 1949666321)
    """
    if kind == "pesel":
        if not _pesel.is_valid(identifier):
            raise ValueError("not a valid PESEL")
        born = _pesel.get_birth_date(identifier)
        return (born - _PESEL_FIRST_DAY).days * 10_000 + int(identifier[6:10])
    if kind == "nip":
        if not _nip.is_valid(identifier):
            raise ValueError("not a valid NIP")
        return _PESEL_SPACE + int(_nip.compact(identifier)[:9])
    raise ValueError(f"unknown identity kind {kind!r}")


def _aes_cbc_mac(key: bytes, data: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.CBC(bytes(16))).encryptor()
    return (enc.update(data) + enc.finalize())[-16:]


def _aes_block(key: bytes, block: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def ff1_encrypt(key: bytes, tweak: bytes, digits: str) -> str:
    """NIST SP 800-38G FF1 over decimal digits (radix 10), AES with ``key`` (16, 24 or 32
    bytes). Checked against the standard's sample vectors in the tests.

    >>> ff1_encrypt(bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C"), b"", "0123456789")
    '2433477484'
    """
    radix, n, t = 10, len(digits), len(tweak)
    if len(key) not in (16, 24, 32):
        raise ValueError("the key must have 16, 24 or 32 bytes")
    if n < 6 or not digits.isdigit():  # radix**n >= 10**6 (the standard's minimum domain)
        raise ValueError("FF1 needs at least 6 decimal digits")
    u = n // 2
    v = n - u
    a, b = digits[:u], digits[u:]
    b_len = -(-_bits_for(v) // 8)  # ceil(ceil(v * log2(radix)) / 8)
    d = 4 * (-(-b_len // 4)) + 4
    p = bytes([1, 2, 1]) + radix.to_bytes(3, "big") + bytes([10, u % 256]) + n.to_bytes(4, "big") + t.to_bytes(4, "big")
    for i in range(10):
        q = tweak + bytes((-t - b_len - 1) % 16) + bytes([i]) + int(b or "0").to_bytes(b_len, "big")
        r = _aes_cbc_mac(key, p + q)
        s = r
        j = 1
        while len(s) < d:
            s += _aes_block(key, bytes(x ^ y for x, y in zip(r, j.to_bytes(16, "big"), strict=True)))
            j += 1
        y = int.from_bytes(s[:d], "big")
        m = u if i % 2 == 0 else v
        c = (int(a) + y) % radix**m
        a, b = b, str(c).zfill(m)
    return a + b


def _bits_for(v: int) -> int:
    """ceil(v * log2(10)), exactly: the bits of the largest v-digit number."""
    largest: int = 10**v - 1
    return largest.bit_length()


def derived_payer_account(branch: str, prefix: str, kind: str, identifier: str, key: bytes) -> str:
    """The payer's NRB derived from its identity (``kind`` ``pesel`` or ``nip``) and the
    union's ``key``: deterministic, one-to-one (no two payers collide), above every
    number :func:`payer_account` gives to a payer id, and never showing the identifier.

    The range after the prefix must have at least :data:`MIN_DERIVED_WIDTH` digits (a
    prefix of at most 6 digits): a narrower range cannot hold every identity without
    collisions, and :class:`ValueError` says so.
    """
    if not branch_is_valid(branch):
        raise ValueError("invalid bank branch number")
    if not re.fullmatch(r"[0-9]{0,8}", prefix):
        raise ValueError("the prefix must be at most 8 digits")
    width = 16 - len(prefix)
    if width < MIN_DERIVED_WIDTH:
        raise ValueError(f"the account prefix leaves {width} digits for payers; derived numbers need {MIN_DERIVED_WIDTH}")
    tweak = (branch + prefix).encode("ascii")
    value = identity_index(kind, identifier)
    while True:  # cycle-walking: a permutation of 0..10**10-1 restricted to 0..IDENTITY_SPACE-1
        value = int(ff1_encrypt(key, tweak, str(value).zfill(_DIGITS)))
        if value < IDENTITY_SPACE:
            break
    number = 10**width - IDENTITY_SPACE + value
    return with_check_digits(branch + prefix + str(number).zfill(width))
