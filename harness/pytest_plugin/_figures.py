"""What the plugin reports and checks: per-request figures, run results, limits. Pure, no I/O.

The limits of ``@pytest.mark.memload(peak=..., retained=..., slope=...)`` are read with the
gate's own size parser (harness.gate.parse_size: ``"64 KiB"``, ``"1MB"``, ``"512"``), so a size
means the same in a test as in ``[gate.thresholds]``. A retained limit may carry ``/request``
(``"32 B/request"``); a slope limit names its unit (``"16 B/item"``), which must be the unit
the test's :func:`peak_growth` run used, so that a limit per item is never checked against a
slope per note.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.analysis.sites import Site
from harness.gate import format_size, parse_size

LIMIT_KEYS = ("peak", "retained", "slope")
TOP_SITES_SHOWN = 5


@dataclass(frozen=True)
class RequestMemory:
    """One measured request, as the probe middleware recorded it.

    ``peak_bytes``: tracemalloc's peak during the request above the level at its start;
    ``net_bytes``: what it left allocated (after a collection); ``blocks``: net pymalloc blocks;
    ``sites``: what it left allocated, per line of the code under test (largest first).
    """

    method: str
    path: str
    status: int
    peak_bytes: int
    net_bytes: int
    blocks: int
    duration_s: float
    sites_of: Callable[[], tuple[Site, ...]] = field(default=tuple, repr=False, compare=False)

    @functools.cached_property
    def sites(self) -> tuple[Site, ...]:
        """What the request left allocated, per line of the code under test, largest first
        (folded from its stacks when first asked for)."""
        return self.sites_of()

    @property
    def request(self) -> str:
        return f"{self.method} {self.path}"

    def __str__(self) -> str:
        return (
            f"{self.request} -> {self.status}: peak {format_size(self.peak_bytes)}, "
            f"net {format_size(self.net_bytes)}"
        )


@dataclass(frozen=True)
class Retained:
    """What a run of identical requests kept for good (harness.analysis.leak's estimate).

    ``bytes_per_request`` is the leak rate; ``one_time_bytes`` what grew once (during the
    warm-up, or as one step inside the run: a cache filling) and is not a leak.
    """

    request: str
    bytes_per_request: float
    stderr_bytes: float
    requests: int
    warmup_requests: int
    steady: bool
    one_time_bytes: float
    sites: tuple[Site, ...] = ()  # per request, the lines that grew over the run

    def __str__(self) -> str:
        return (
            f"{self.request}: {format_size(self.bytes_per_request)}/request retained "
            f"(± {format_size(self.stderr_bytes)}, {self.requests} requests after "
            f"{self.warmup_requests} of warm-up; one-time growth "
            f"{format_size(self.one_time_bytes)})"
        )


@dataclass(frozen=True)
class PeakGrowth:
    """The peak of one request at several sizes of the data, and its slope per unit."""

    request: str
    unit: str
    sizes: tuple[int, ...]
    peaks: tuple[float, ...]  # median peak per size
    spreads: tuple[float, ...]  # robust spread of the reps per size
    bytes_per_unit: float
    largest: RequestMemory | None = None  # one measured request at the largest size

    def peak_at(self, size: int) -> float:
        return self.peaks[self.sizes.index(size)]

    def __str__(self) -> str:
        points = ", ".join(
            f"{s}: {format_size(p)}" for s, p in zip(self.sizes, self.peaks, strict=True)
        )
        return f"{self.request}: {format_size(self.bytes_per_unit)}/{self.unit} (peaks {points})"


@dataclass(frozen=True)
class Limits:
    peak: float | None = None  # bytes
    retained: float | None = None  # bytes per request
    slope: float | None = None  # bytes per slope_unit
    slope_unit: str = ""
    given: Mapping[str, str] = field(default_factory=dict)  # as written, for messages

    @property
    def empty(self) -> bool:
        return self.peak is None and self.retained is None and self.slope is None


def parse_limits(kwargs: Mapping[str, Any], args: Sequence[Any] = ()) -> Limits:
    """The marker's keyword arguments -> Limits; ValueError naming the bad key."""
    if args:
        raise ValueError("memload marker: limits are keywords: peak=, retained=, slope=")
    unknown = sorted(set(kwargs) - set(LIMIT_KEYS))
    if unknown:
        raise ValueError(
            f"memload marker: unknown limit {', '.join(unknown)} (limits: {', '.join(LIMIT_KEYS)})"
        )
    given = {k: str(v) for k, v in kwargs.items()}
    peak = _size("peak", given["peak"]) if "peak" in given else None
    retained = None
    if "retained" in given:
        text, _, per = given["retained"].partition("/")
        if per and per.strip() not in ("request", "req"):
            raise ValueError(f"memload marker: retained={given['retained']!r}: per request only")
        retained = _size("retained", text)
    slope, unit = None, ""
    if "slope" in given:
        text, _, unit = given["slope"].partition("/")
        unit = unit.strip()
        if not unit:
            raise ValueError(
                f"memload marker: slope={given['slope']!r} needs its unit, like '16 B/item'"
            )
        slope = _size("slope", text)
    return Limits(peak, retained, slope, unit, given)


def _size(key: str, text: str) -> float:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise ValueError(f"memload marker: {key}={text.strip()!r}: {exc}") from None


def sites_lines(sites: Sequence[Site], per: str = "", top: int = TOP_SITES_SHOWN) -> list[str]:
    """'  +256 B/req at app.py:12 in handler (via json/decoder.py:353)', largest first."""
    out = []
    for s in sites[:top]:
        via = f" (via {s.via})" if s.via else ""
        name = f" in {s.function}" if s.function else ""
        out.append(f"    {format_size(s.bytes)}{per} at {s.location}{name}{via}")
    return out


def peak_violation(memory: RequestMemory, limits: Limits) -> str | None:
    """The failure message when the request's peak is above the limit, else None."""
    if limits.peak is None or memory.peak_bytes <= limits.peak:
        return None
    lines = [
        f"memload: {memory.request} (status {memory.status}): peak "
        f"{format_size(memory.peak_bytes)} > limit peak={limits.given['peak']!r}",
    ]
    if memory.sites:
        lines.append("  held at its end, by line (the peak's transient objects are gone):")
        lines += sites_lines(memory.sites)
    return "\n".join(lines)


def retained_violation(result: Retained, limits: Limits) -> str | None:
    if limits.retained is None or result.bytes_per_request <= limits.retained:
        return None
    lines = [
        f"memload: {result.request}: retained {format_size(result.bytes_per_request)}/request "
        f"> limit retained={limits.given['retained']!r} (± {format_size(result.stderr_bytes)}, "
        f"{result.requests} requests after {result.warmup_requests} of warm-up)",
    ]
    if result.sites:
        lines.append("  grew over the run, per request, by line:")
        lines += sites_lines(result.sites, "/req")
    return "\n".join(lines)


def slope_violation(result: PeakGrowth, limits: Limits) -> str | None:
    if limits.slope is None:
        return None
    if limits.slope_unit != result.unit:
        return (
            f"memload: slope={limits.given['slope']!r} is per {limits.slope_unit}, but "
            f"peak_growth(...) measured {result.request} per {result.unit} (unit=...)"
        )
    if result.bytes_per_unit <= limits.slope:
        return None
    lines = [f"memload: {result}: slope > limit slope={limits.given['slope']!r}"]
    if result.largest is not None and result.largest.sites:
        lines.append(f"  at size {result.sizes[-1]}, held at its end, by line:")
        lines += sites_lines(result.largest.sites)
    return "\n".join(lines)
