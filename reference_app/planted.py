"""Regressions planted on purpose, to test the memory gate (never set them in production).

Two test-only knobs, each `ENDPOINT:BYTES[,ENDPOINT:BYTES...]` with ENDPOINT one of chat,
chat_stream, history (the probe's endpoints):

- REFAPP_PLANT_LEAK: every request of ENDPOINT appends an object of BYTES bytes
  (``sys.getsizeof``) to a module-level list that is never emptied: a leak of BYTES per request,
  plus the list's own slot (8 bytes per entry, amortised);
- REFAPP_PLANT_TRANSIENT: every request of ENDPOINT holds an extra BYTES-byte object for as long
  as its handler runs, then drops it: BYTES more at the request's peak, nothing retained.

The gate's sensitivity study (scripts/gate_sensitivity.py, docs/gate.md) plants both at known
sizes and counts how often the gate catches them.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

ENDPOINTS = ("chat", "chat_stream", "history")
_EMPTY_BYTES = sys.getsizeof(b"")
_KEPT_FOR_EVER: list[bytes] = []


def parse_plan(text: str, name: str) -> dict[str, int]:
    """'chat:1024,history:256' -> {'chat': 1024, 'history': 256}; ValueError naming `name`."""
    plan: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        endpoint, _, size = part.partition(":")
        if endpoint not in ENDPOINTS:
            raise ValueError(
                f"{name}: unknown endpoint {endpoint!r} (one of {', '.join(ENDPOINTS)})"
            )
        try:
            nbytes = int(size)
        except ValueError:
            raise ValueError(f"{name}: {part!r} is not ENDPOINT:BYTES") from None
        if nbytes <= _EMPTY_BYTES:
            raise ValueError(f"{name}: {part!r}: BYTES must be more than {_EMPTY_BYTES}")
        plan[endpoint] = nbytes
    return plan


def block(nbytes: int) -> bytes:
    """A fresh object whose sys.getsizeof is exactly `nbytes`."""
    return bytes(nbytes - _EMPTY_BYTES)


def on_request(
    endpoint: str, leak: Mapping[str, int], transient: Mapping[str, int]
) -> bytes | None:
    """Plant what the plans ask for this request; the caller holds the returned transient."""
    if endpoint in leak:
        _KEPT_FOR_EVER.append(block(leak[endpoint]))
    return block(transient[endpoint]) if endpoint in transient else None
