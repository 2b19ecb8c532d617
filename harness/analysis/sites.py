"""Allocation sites: stacks -> the line of the service's own code that caused them. Pure, no I/O.

A stack comes innermost frame first, as (file, line, function). Its *site* is the first frame in
the service's own code, so a reviewer reads ``reference_app/optimized/store.py:111`` rather than
``json/decoder.py:353``; the innermost frame is kept as ``via`` when it is elsewhere (a library or
the standard library did the allocating on that line's behalf). A stack with no frame of the
service's own falls back to its innermost frame.

"Own code" is every file outside the library directories the caller names (the interpreter's
standard library and site-packages) and outside the harness's own measuring code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Frame = tuple[str, int, str]  # file, line, function
TOP_SITES = 10
# The probe's own frames are never a request's site: what they allocate is bookkeeping (the
# pytest plugin's in-process client included).
HARNESS_MEASURING_FILES = ("harness/sampling/", "harness/pytest_plugin/", "tracemalloc.py")


@dataclass(frozen=True)
class Site:
    """Bytes and blocks charged to one line of the service's code (per request, or in total)."""

    location: str  # file:line, relative to the service's directory when inside it
    function: str
    bytes: float
    count: float
    via: str = ""  # the innermost frame's file:line when it is not the site itself

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "location": self.location,
            "function": self.function,
            "bytes": self.bytes,
            "count": self.count,
        }
        if self.via:
            out["via"] = self.via
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Site:
        return cls(
            location=str(raw["location"]),
            function=str(raw.get("function", "")),
            bytes=float(raw["bytes"]),
            count=float(raw.get("count", 0)),
            via=str(raw.get("via", "")),
        )


@dataclass(frozen=True)
class SiteChange:
    """How much one site grew between two measurements of the same series."""

    location: str
    function: str
    baseline_bytes: float
    current_bytes: float
    via: str = ""

    @property
    def change(self) -> float:
        return self.current_bytes - self.baseline_bytes


def is_library(path: str, library_dirs: Sequence[str]) -> bool:
    return any(path.startswith(d) for d in library_dirs if d) or path.startswith("<")


def is_measuring_code(path: str) -> bool:
    return any(part in path for part in HARNESS_MEASURING_FILES)


Roots = str | Sequence[str]


def display_path(path: str, root: Roots) -> str:
    """`path` relative to the longest of `root` (one directory or several) that contains it,
    else unchanged. With the import path as roots, a file reads as its module does:
    reference_app/planted.py, json/decoder.py."""
    roots = [root] if isinstance(root, str) else list(root)
    prefixes = [r.rstrip("/") + "/" for r in roots if r]
    inside = [p for p in prefixes if path.startswith(p)]
    return path[len(max(inside, key=len)) :] if inside else path


def attribute(
    frames: Sequence[Frame], library_dirs: Sequence[str], root: Roots = ""
) -> tuple[str, str, str] | None:
    """(location, function, via) of a stack, innermost frame first; None for the probe's own."""
    frames = [f for f in frames if not is_measuring_code(f[0])]
    if not frames:
        return None
    innermost = frames[0]
    own = next((f for f in frames if not is_library(f[0], library_dirs)), innermost)
    location = f"{display_path(own[0], root)}:{own[1]}"
    via = "" if own is innermost else f"{display_path(innermost[0], root)}:{innermost[1]}"
    return location, own[2], via


def aggregate(
    stacks: Iterable[tuple[Sequence[Frame], float, float]],
    library_dirs: Sequence[str],
    root: Roots = "",
    *,
    per: float = 1.0,
    top: int = TOP_SITES,
    positive_only: bool = False,
) -> list[Site]:
    """Sum (stack, bytes, count) per site, divide by `per`, keep the `top` largest by bytes.

    The `via` of a site is that of its largest contributing stack. Ties go by location, so the
    list is deterministic. positive_only drops sites whose total is <= 0 (a diff's freed lines).
    """
    if per <= 0:
        raise ValueError("per must be positive")
    totals: dict[tuple[str, str], list[float]] = {}
    best_via: dict[tuple[str, str], tuple[float, str]] = {}
    for frames, size, count in stacks:
        where = attribute(frames, library_dirs, root)
        if where is None:
            continue
        location, function, via = where
        key = (location, function)
        acc = totals.setdefault(key, [0.0, 0.0])
        acc[0] += size
        acc[1] += count
        if size > best_via.get(key, (float("-inf"), ""))[0]:
            best_via[key] = (size, via)
    sites = [
        Site(loc, fn, b / per, c / per, best_via[(loc, fn)][1])
        for (loc, fn), (b, c) in totals.items()
        if not positive_only or b > 0
    ]
    sites.sort(key=lambda s: (-s.bytes, s.location, s.function))
    return sites[:top]


def growth(baseline: Iterable[Site], current: Iterable[Site], top: int = 3) -> list[SiteChange]:
    """The sites that grew the most from baseline to current (only growths), largest first."""
    base = {(s.location, s.function): s for s in baseline}
    cur = {(s.location, s.function): s for s in current}
    changes = [
        SiteChange(
            location=loc,
            function=fn,
            baseline_bytes=base[(loc, fn)].bytes if (loc, fn) in base else 0.0,
            current_bytes=cur[(loc, fn)].bytes if (loc, fn) in cur else 0.0,
            via=(cur.get((loc, fn)) or base[(loc, fn)]).via,
        )
        for loc, fn in base.keys() | cur.keys()
    ]
    grown = [c for c in changes if c.change > 0]
    grown.sort(key=lambda c: (-c.change, c.location))
    return grown[:top]


def step_site(records: Iterable[Mapping[str, Any]], endpoint: str, history_len: int) -> Site | None:
    """Where an endpoint's one-time growth was allocated: of the step sites of its leak run
    (records ``{"endpoint", "history_len", "location", "bytes", ...}``, bytes in total over the
    run, from its first request in the process), the line that grew the most; None without
    one that grew. A cache that fills once is one line (the rendering whose result it keeps), so
    the largest line names it."""
    mine = [
        Site.from_json(r)
        for r in records
        if str(r.get("endpoint")) == endpoint
        and str(r.get("history_len")) == str(history_len)
        and r.get("location")
        and isinstance(r.get("bytes"), int | float)
    ]
    grown = [s for s in mine if s.bytes > 0]
    return min(grown, key=lambda s: (-s.bytes, s.location), default=None)
