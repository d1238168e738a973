"""Run the command line in this process and kill it (os._exit) at a named checkpoint of
fetching attachments by reference (``adapters.epuap.referenced``): the crash tests' way of
stopping a pull "between any two steps".

    python tests/crash_cli.py CHECKPOINT --config PATH COMMAND…
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.epuap import referenced  # noqa: E402
from worker import cli  # noqa: E402


def main(checkpoint: str, *argv: str) -> int:
    def die(name: str) -> None:
        if name == checkpoint:
            sys.stdout.flush()
            os._exit(137)

    referenced._checkpoint = die
    return cli.main(list(argv))


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
