"""What a command hands back to the shell: exit codes and ``--json`` output.

Exit status: 0 success, 2 usage or configuration error (one line, no traceback),
1 runtime failure; ``status --monitor`` uses the Nagios plugin codes (3 = UNKNOWN).
Every command module takes these from here, never from :mod:`worker.cli`.
"""

from __future__ import annotations

import json
from typing import Any

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
EXIT_MONITOR_UNKNOWN = 3  # `status --monitor`: the Nagios plugin convention


def print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=1, default=str))


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
