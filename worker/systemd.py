"""systemd's notify protocol (``Type=notify``, ``WatchdogSec=``), without a dependency.

A datagram to the unix socket named by ``$NOTIFY_SOCKET`` (a leading ``@`` is the abstract
namespace); nothing happens when the variable is absent (not run by systemd). The daemon
sends ``READY=1`` once its scheduler runs, ``WATCHDOG=1`` while its loops are alive,
``STATUS=…`` after every pass and ``STOPPING=1`` on a stop.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("worker.systemd")


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None):
        env = os.environ if environ is None else environ
        addr = env.get("NOTIFY_SOCKET") or None
        if addr and addr.startswith("@"):
            addr = "\0" + addr[1:]
        self.address = addr
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog_s = int(usec) / 1_000_000 if usec.isdigit() and int(usec) > 0 and mine else None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str) -> bool:
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto("\n".join(lines).encode("utf-8"), self.address)
            return True
        except OSError as exc:  # systemd gone or the socket unusable: never stops the worker
            log.warning("systemd notification failed", extra={"event": "systemd.notify_failed", "error": str(exc)})
            return False

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.send("STOPPING=1", "STATUS=zatrzymywanie")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={' '.join(text.split())}")
