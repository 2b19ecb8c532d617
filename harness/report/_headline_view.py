"""The report's headline table (at most 15 rows) and the per-phase tables that take the rest.

`harness.analysis.headline.HEADLINE` has a line per figure and label set (39 on a full run of
the reference designs); `harness loadtest`'s console prints them all. The report's headline
keeps what a reviewer compares designs on, and each phase's section lists every figure of
that phase, so no figure is lost:

- `IN_SECTIONS`: metrics shown only in their phase's section (the figures the RSS peak is the
  larger of, USS, open files, the harness's own CPU, memray's heap peak, the probe's slope and
  net);
- `WORST_ONLY`: per-endpoint metrics of which the headline keeps the one endpoint with the
  worst figure ("worst of 3"); the section lists every endpoint;
- any row past `MAX_HEADLINE_ROWS` goes to its section too. A metric not named here (one a
  new phase adds) is a headline row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from harness.analysis.bounds import QUALIFIERS_COLUMN, qualified
from harness.analysis.headline import ratio_base, ratio_column, records
from harness.report._page import _metric_title, _num
from harness.report._plot import design_colour
from harness.report._units import format_ratio, format_value

MAX_HEADLINE_ROWS = 15
IN_SECTIONS = frozenset(
    {
        "capacity_ceiling_fraction",
        "rps_ceiling_fraction",
        "rss_peak_sampled_bytes",
        "rss_hwm_bytes",
        "uss_peak_bytes",
        "fds_max",
        "threads_max",
        "connections_max",
        "sampler_cpu_mean",
        "loadgen_cpu_mean",
        "heap_peak_bytes",
        "alloc_slope_bytes_per_unit",
        "alloc_net_bytes",
        "unexpected",
    }
)
WORST_ONLY = frozenset(
    {"latency_p95_ms", "ttft_p95_ms", "alloc_peak_bytes", "retained_bytes_per_request"}
)


def split_headline(
    table: pd.DataFrame, designs: Sequence[str], phases_with_a_section: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the report's headline rows, the rows for the per-phase sections).

    `table` is `headline_table`'s. A row whose phase has no section stays in the headline.
    The headline rows of a `WORST_ONLY` metric say "worst of N" in their title.
    """
    if table.empty:
        return table, table
    columns = [d for d in designs if d in table.columns]
    keep: list[int] = []
    titles: dict[int, str] = {}
    for metric, group in table.groupby("metric", sort=False):
        idx = list(group.index)
        if metric in IN_SECTIONS:
            keep += [i for i in idx if table.at[i, "phase"] not in phases_with_a_section]
        elif metric in WORST_ONLY and len(idx) > 1:
            values = (
                group[columns].astype(float).max(axis=1, skipna=True).fillna(-math.inf)
                if columns
                else pd.Series(0.0, index=group.index)
            )
            worst = int(str(values.idxmax()))  # all four are lower-is-better
            keep.append(worst)
            title = str(table.at[worst, "title"])
            titles[worst] = (
                f"{title.removesuffix(')')}; worst of {len(idx)})"
                if title.endswith(")")
                else f"{title} (worst of {len(idx)})"
            )
        else:
            keep += idx
    keep.sort()
    placeable = [i for i in keep if table.at[i, "phase"] in phases_with_a_section]
    over = len(keep) - MAX_HEADLINE_ROWS
    if over > 0:  # the last placeable rows go to their sections
        dropped = set(placeable[-over:])
        keep = [i for i in keep if i not in dropped]
    head = table.loc[keep].copy()
    for i, title in titles.items():
        if i in head.index:
            head.at[i, "title"] = title
    shown_whole = {i for i in keep if i not in titles}
    rest = table.loc[[i for i in table.index if i not in shown_whole]]
    return head.reset_index(drop=True), rest.reset_index(drop=True)


def table_view(table: pd.DataFrame, designs: Sequence[str]) -> dict[str, Any]:
    """A headline-shaped table for the templates: formatted figures and ratios per row."""
    shown = [d for d in designs if d in table.columns]
    base = ratio_base(shown)
    ratios = [ratio_column(d, base) for d in shown if d != base]
    rows = []
    for rec in records(table):
        bound = rec.get(QUALIFIERS_COLUMN) or {}  # "at least" where a figure is a bound
        unit = str(rec["unit"])
        rows.append(
            {
                "title": _metric_title(str(rec["title"]), str(rec["better"])),
                "figures": [
                    qualified(format_value(_num(rec.get(d)), unit), bound.get(d, "")) for d in shown
                ],
                "ratios": [
                    qualified(format_ratio(_num(rec.get(r))), bound.get(r, "")) for r in ratios
                ],
                "phase": str(rec["phase"]),
            }
        )
    return {
        "designs": [{"name": d, "colour": design_colour(d)} for d in shown],
        "ratios": ratios,
        "ratio_base": base,
        "rows": rows,
    }


def phase_rows(rest: pd.DataFrame, phase: str) -> pd.DataFrame:
    """The section's share of the rows the headline left out."""
    if rest.empty:
        return rest
    return rest[rest["phase"] == phase].reset_index(drop=True)
