"""Signature verification for ePUAP documents: Profil Zaufany, qualified and personal
XAdES signatures, offline, reading only what the signature covers.

Entry points (see each module):

* :class:`TrustConfig` (``trust.py``): ``TrustConfig.from_files(trust_anchors,
  trusted_profile_seals, revocation="off", crls=(), tsa_anchors=None)``;
* :func:`verify_document` (``verify.py``): ``verify_document(raw, trust, *, filed_at=None,
  now=None) -> SignatureResult`` — validated at the proof of existence (an earlier verified
  signature time-stamp, ``timestamps.py``; the filing time; else ``now``);
* the pipeline stages ``verify_signature`` and ``check_signer`` (``stages.py``);
* trust fetched from the network, put into ``TrustConfig`` by the composition root:
  the trusted lists of ETSI TS 119 612 (``trusted_lists.py``: ``update``, ``TrustedLists``)
  and revocation answers (``revocation.py``: ``RevocationFetcher``), both over ``fetch.py``
  and kept in the cache folder (``cache.py``).
"""

from worker.signatures.trust import TrustConfig
from worker.signatures.verify import (
    INDETERMINATE,
    INVALID,
    NONE,
    PERSONAL,
    QUALIFIED,
    TRUSTED_PROFILE,
    VALID,
    SignatureCheck,
    SignatureResult,
    verify_document,
)

__all__ = [
    "INDETERMINATE",
    "INVALID",
    "NONE",
    "PERSONAL",
    "QUALIFIED",
    "TRUSTED_PROFILE",
    "VALID",
    "SignatureCheck",
    "SignatureResult",
    "TrustConfig",
    "verify_document",
]
