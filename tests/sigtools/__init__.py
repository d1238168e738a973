"""Test helpers for signature verification: a generated test PKI (``pki``) and documents
signed by the independent ``xmlsec1`` tool (``xmlsig``)."""
