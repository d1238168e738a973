"""Errors of the ePUAP channel.

Every error raised by the client is an :class:`EpuapError`; its ``str()`` is a short Polish
sentence fit for the operator (pull report, ``status``), without personal data. ``retryable``
says whether the pull loop may try the same call again after a back-off.
"""

from __future__ import annotations


class EpuapError(Exception):
    """Base class: something went wrong talking to ePUAP."""

    retryable = True


class EpuapConfigError(EpuapError):
    """The channel cannot start: a key, certificate or password is missing or unreadable.
    ``key`` names the configuration key at fault (``epuap.private_key``…)."""

    retryable = False

    def __init__(self, message: str, key: str = "epuap") -> None:
        super().__init__(message)
        self.key = key


class EpuapTransportError(EpuapError):
    """No usable HTTP answer: connection refused or dropped, timeout, HTTP error, not XML."""


class EpuapFault(EpuapError):
    """ePUAP answered with a SOAP Fault (``Wyjatek{kod, komunikat}``)."""

    def __init__(self, operation: str, kod: int | None, komunikat: str, http_status: int | None = None) -> None:
        self.operation = operation
        self.kod = kod
        self.komunikat = komunikat
        self.http_status = http_status
        super().__init__(
            f"ePUAP zgłosił błąd w operacji {operation} (Wyjatek kod={kod}"
            + (f", HTTP {http_status}" if http_status is not None else "")
            + f"): {komunikat}"
        )


class EpuapStatusError(EpuapError):
    """A regular response whose ``status/kod`` is not a success."""

    def __init__(self, operation: str, kod: int | None, komunikat: str | None, *, signed: bool = True) -> None:
        self.operation = operation
        self.kod = kod
        self.komunikat = komunikat
        self.signed = signed
        note = "" if signed else " (odpowiedź bez ważnego podpisu ePUAP)"
        super().__init__(f"ePUAP zwrócił status kod={kod} w operacji {operation}: {komunikat or 'brak komunikatu'}{note}")


class EpuapSignatureError(EpuapError):
    """A response (or, in the double, a request) whose WS-Security signature is missing or invalid."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"Podpis WS-Security odpowiedzi ePUAP jest nieprawidłowy: {reason}")


class EpuapResponseError(EpuapError):
    """A signed response that does not have the content the interface promises."""

    def __init__(self, operation: str, reason: str) -> None:
        self.operation = operation
        self.reason = reason
        super().__init__(f"Niepoprawna odpowiedź ePUAP w operacji {operation}: {reason}")
