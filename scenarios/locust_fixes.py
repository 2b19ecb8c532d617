"""Work-arounds for Locust's own costs that would otherwise be charged to the server.

`default_args_dict`: every `spawn` message a Locust worker receives (one per change of the
user count: each step of the capacity staircase) filters the master's options with
`k not in argument_parser.default_args_dict()`, evaluated once per option, and each call
builds and runs a whole argparse parser (locust 2.47, runners.py, WorkerRunner
.handle_message). That is ~60 parsers per message: 0.2 s of CPU on a quiet core, 1-1.5 s on
a contended one, during which the worker's event loop sends nothing. py-spy on a worker of
the ceiling's search showed it as 40% of the worker's samples, and the stall as sends more
than 0.2 s late (dropped) right after every step change, at 170 req/s on two processes
(docs/capacity-measured.md, "What limited the ceiling"). The defaults do not change while a
process runs, so one parse is enough: the first result is kept, and each caller gets a
copy (a caller may change what it gets).
"""

from __future__ import annotations

import functools
from typing import Any

from locust import argument_parser

__all__ = ["cache_default_args"]


def cache_default_args() -> None:
    """Make `locust.argument_parser.default_args_dict` parse once per process (idempotent)."""
    current = argument_parser.default_args_dict
    if getattr(current, "harness_cached", False):
        return
    parsed_once = functools.cache(current)

    def default_args_dict() -> dict[str, Any]:
        return dict(parsed_once())

    default_args_dict.harness_cached = True  # type: ignore[attr-defined]
    argument_parser.default_args_dict = default_args_dict


cache_default_args()
