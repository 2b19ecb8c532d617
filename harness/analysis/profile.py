"""Profile figures: memray capture totals and allocation sites -> tidy rows. Pure, no I/O.

A *site* is the innermost Python frame of an allocation's stack (function, file, line); with
``--trace-python-allocators`` an allocation made inside C code (``json.loads``, ``bytes.join``)
is charged to the Python line that called it. Two rankings go to ``top_sites.csv``:

- ``hwm``: bytes held at the high-water mark (the moment the heap was largest), per site;
- ``allocated``: bytes allocated over the whole capture, per site (churn, not residency).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from harness.results import SummaryRow

PHASE = "profile"
TOP_N = 20
SITE_COLUMNS = ("kind", "function", "location", "bytes", "count")
SITE_KINDS = ("hwm", "allocated")


@dataclass(frozen=True)
class SiteRecord:
    """Bytes and allocation count charged to one stack (or one site) in a capture."""

    function: str
    file: str
    line: int
    bytes: int
    count: int


def top_sites(records: Iterable[SiteRecord], kind: str, n: int = TOP_N) -> pd.DataFrame:
    """Sum records per site (function, file:line) and keep the n largest by bytes.

    Ties are broken by count, then by location, so the table is deterministic.
    """
    if kind not in SITE_KINDS:
        raise ValueError(f"unknown site kind {kind!r} (known: {', '.join(SITE_KINDS)})")
    frame = pd.DataFrame(
        [(r.function, f"{r.file}:{r.line}", int(r.bytes), int(r.count)) for r in records],
        columns=["function", "location", "bytes", "count"],
    )
    if frame.empty:
        return pd.DataFrame(columns=list(SITE_COLUMNS))
    grouped = frame.groupby(["function", "location"], as_index=False, sort=False)[
        ["bytes", "count"]
    ].sum()
    grouped = grouped.sort_values(
        ["bytes", "count", "location", "function"], ascending=[False, False, True, True]
    ).head(n)
    grouped.insert(0, "kind", kind)
    return grouped.reset_index(drop=True)[list(SITE_COLUMNS)]


def sites_table(
    hwm: Iterable[SiteRecord], allocated: Iterable[SiteRecord], n: int = TOP_N
) -> pd.DataFrame:
    """The rows of top_sites.csv: the n top hwm sites, then the n top allocated sites."""
    return pd.concat(
        [top_sites(hwm, "hwm", n), top_sites(allocated, "allocated", n)], ignore_index=True
    )


def summary_rows(
    design: str,
    *,
    heap_peak_bytes: int,
    bytes_allocated: int,
    allocations: int,
    requests: int,
) -> list[SummaryRow]:
    """heap_peak_bytes, bytes_allocated, allocations, requests and bytes_allocated_per_request.

    bytes_allocated covers the whole capture (start-up and idle time too), so the per-request
    figure slightly overstates the cost of a request; it is left out when no request completed.
    """
    rows = [
        SummaryRow(design, PHASE, "heap_peak_bytes", float(heap_peak_bytes), "bytes"),
        SummaryRow(design, PHASE, "bytes_allocated", float(bytes_allocated), "bytes"),
        SummaryRow(design, PHASE, "allocations", float(allocations), "count"),
        SummaryRow(design, PHASE, "requests", float(requests), "count"),
    ]
    if requests > 0:
        rows.append(
            SummaryRow(
                design,
                PHASE,
                "bytes_allocated_per_request",
                bytes_allocated / requests,
                "bytes",
            )
        )
    return rows
