"""Headline figures: summary rows -> a tidy frame -> the headline and comparison tables.

Pure pandas, no I/O: the report (harness.report) reads the run directory and renders;
this module only computes. Metric names and units are those of docs/internals.md.

- `summary_frame(rows)`: one row per summary row, labels as a canonical string plus one
  column per label key.
- `headline_table(frame, designs)`: one row per headline metric (and label set), one column
  per design, ratio columns `<design> / <base design>`, and the phase each figure comes from.
- `compare_table(frame_a, frame_b, designs)`: the headline of two runs, absolute and percent
  change per metric and design (long format); `compare_wide` pivots it for display.
- `phase_status(...)` and `run_warnings(...)`: what ran, what did not, and what to distrust.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from harness.analysis.bounds import CEILING as CEILING
from harness.analysis.bounds import QUALIFIERS_COLUMN, bounds, combine, shown
from harness.analysis.scale import scale_notes as scale_notes
from harness.results import SummaryRow

PHASES = ("load", "capacity", "profile", "probe", "integrity", "size")
ENDPOINT_ORDER = ("chat", "chat_stream", "history")
LOADGEN_CPU_LIMIT = 90.0  # percent; above it the load generator, not the server, is the limit
PROBE_CV_LIMIT = 0.05  # 5 % coefficient of variation across probe repetitions
# Retained memory per request below this is too small to tell designs apart: the gate's floor for
# the figure (loadtest.toml [gate.thresholds]) and the probe's threshold for looking for retained
# sites (harness.phases.probe SITES_TRIGGER_BYTES) are the same 128 B. A ratio of two such
# figures means nothing.
RETAINED_NOISE_BYTES = 128.0

FRAME_COLUMNS = ["design", "phase", "metric", "labels", "value", "unit"]


@dataclass(frozen=True)
class HeadlineMetric:
    """One line (or one line per label set) of the headline table."""

    metric: str
    phase: str
    title: str
    better: Literal["lower", "higher"]
    # "none": only the row without labels (a total); "each": one line per label set
    labels: Literal["none", "each"] = "each"
    # keep only the largest value of this label (per value of the other labels)
    at_max: str | None = None
    # no ratio between designs when either figure is below this in absolute value: a ratio of
    # two figures that are noise is meaningless
    ratio_floor: float = 0.0


HEADLINE: tuple[HeadlineMetric, ...] = (
    HeadlineMetric(
        "capacity_rps", "capacity", "Capacity at the latency objective", "higher", labels="none"
    ),
    HeadlineMetric(
        "capacity_ceiling_fraction", "capacity", "Capacity / ceiling", "higher", labels="none"
    ),
    HeadlineMetric("rss_at_capacity_bytes", "capacity", "RSS at capacity", "lower", labels="none"),
    HeadlineMetric("memory_limit_bytes", "size", "Memory limit (sized)", "lower", labels="none"),
    HeadlineMetric("rps", "load", "Throughput (closed load)", "higher", labels="none"),
    HeadlineMetric(
        "rps_ceiling_fraction", "load", "Closed-load RPS / ceiling", "higher", labels="none"
    ),
    HeadlineMetric("failure_ratio", "load", "Failed requests", "lower", labels="none"),
    HeadlineMetric("latency_p95_ms", "load", "Latency p95", "lower"),
    HeadlineMetric("ttft_p95_ms", "load", "Time to first token p95", "lower"),
    HeadlineMetric("rss_peak_bytes", "load", "RSS peak", "lower"),
    # the two figures the peak is the larger of (harness.analysis.load.rss_peak_rows)
    HeadlineMetric("rss_peak_sampled_bytes", "load", "RSS peak, sampled", "lower"),
    HeadlineMetric("rss_hwm_bytes", "load", "RSS high-water mark (kernel VmHWM)", "lower"),
    HeadlineMetric("uss_peak_bytes", "load", "USS peak", "lower"),
    HeadlineMetric("rss_growth_bytes", "load", "RSS growth after warm-up", "lower"),
    HeadlineMetric("fds_max", "load", "Open files, max", "lower"),
    HeadlineMetric("threads_max", "load", "Threads, max", "lower"),
    HeadlineMetric("connections_max", "load", "Connections, max", "lower"),
    # what the harness's own parts cost during the load phase
    HeadlineMetric("sampler_cpu_mean", "load", "Sampler CPU, mean (of a core)", "lower"),
    HeadlineMetric("loadgen_cpu_mean", "load", "Load generator CPU, mean (of a core)", "lower"),
    HeadlineMetric("heap_peak_bytes", "profile", "Heap peak (memray)", "lower"),
    HeadlineMetric(
        "bytes_allocated_per_request", "profile", "Allocated per request (memray)", "lower"
    ),
    HeadlineMetric("alloc_peak_bytes", "probe", "Peak per request", "lower", at_max="history_len"),
    HeadlineMetric(
        "alloc_slope_bytes_per_unit", "probe", "Peak growth per history message", "lower"
    ),
    HeadlineMetric(
        "alloc_net_bytes", "probe", "Still held after a request", "lower", at_max="history_len"
    ),
    HeadlineMetric(
        "retained_bytes_per_request",
        "probe",
        "Retained per request",
        "lower",
        at_max="history_len",
        ratio_floor=RETAINED_NOISE_BYTES,
    ),
    HeadlineMetric("lost", "integrity", "Lost messages", "lower"),
    HeadlineMetric("unexpected", "integrity", "Unexpected messages", "lower"),
)


# --- the tidy frame --------------------------------------------------------------------------


def labels_key(labels: Mapping[str, str]) -> str:
    """Canonical text of a label set: 'endpoint=chat,history_len=100' (keys sorted)."""
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def parse_labels(key: str) -> dict[str, str]:
    """The inverse of `labels_key`."""
    if not key:
        return {}
    return dict(part.split("=", 1) for part in key.split(","))


def describe_labels(key: str) -> str:
    """Labels for a reader: 'chat, history 5,000'."""
    parts: list[str] = []
    for name, value in parse_labels(key).items():
        if name == "endpoint":
            parts.insert(0, value)
        elif name == "history_len":
            parts.append(f"history {int(value):,}" if value.isdigit() else f"history {value}")
        else:
            parts.append(f"{name}={value}")
    return ", ".join(parts)


def summary_frame(rows: Iterable[SummaryRow | Mapping[str, Any]]) -> pd.DataFrame:
    """Summary rows (objects or their JSON) -> a tidy frame.

    Columns: design, phase, metric, labels (canonical text), value, unit, then one column
    per label key found (empty text where a row has no such label).
    """
    records: list[dict[str, Any]] = []
    for raw in rows:
        row = raw if isinstance(raw, SummaryRow) else SummaryRow.from_json(raw)
        record: dict[str, Any] = {
            "design": row.design,
            "phase": row.phase,
            "metric": row.metric,
            "labels": labels_key(row.labels),
            "value": float(row.value),
            "unit": row.unit,
        }
        for key, value in row.labels.items():
            record[f"label_{key}"] = str(value)
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FRAME_COLUMNS}).astype(
            {"value": float}
        )
    label_cols = sorted(c for c in frame.columns if c.startswith("label_"))
    frame[label_cols] = frame[label_cols].fillna("")
    frame = frame.rename(columns={c: c.removeprefix("label_") for c in label_cols})
    return frame[FRAME_COLUMNS + [c.removeprefix("label_") for c in label_cols]].reset_index(
        drop=True
    )


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The frame's rows as plain dicts (string keys)."""
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def designs_in(frame: pd.DataFrame, preferred: Sequence[str] = ()) -> list[str]:
    """Designs in `preferred` order first, then any others in order of appearance.

    The ceiling run is a reference for the machine, not a design: it is left out."""
    seen = [str(d) for d in pd.unique(frame["design"])] if not frame.empty else []
    seen = [d for d in seen if d != CEILING]
    preferred = [d for d in preferred if d != CEILING]
    ordered = [d for d in preferred if d in seen or not seen]
    return ordered + [d for d in seen if d not in ordered]


def value_of(
    frame: pd.DataFrame, design: str, metric: str, labels: Mapping[str, str] | None = None
) -> float | None:
    """One value from the tidy frame, or None."""
    if frame.empty:
        return None
    key = labels_key(labels or {})
    hit = frame[(frame["design"] == design) & (frame["metric"] == metric)]
    hit = hit[hit["labels"] == key]
    if hit.empty:
        return None
    return float(hit["value"].iloc[-1])


# --- the headline table ----------------------------------------------------------------------


def ratio_column(design: str, base: str) -> str:
    return f"{design} / {base}"


def ratio_base(designs: Sequence[str]) -> str:
    """The design every other design is divided by: 'optimized' when 'naive' is there too
    (so the ratio reads 'naive costs N times optimized', as the console's does), else the first.
    """
    if "naive" in designs and "optimized" in designs:
        return "optimized"
    return designs[0] if designs else ""


def _endpoint_rank(key: str) -> tuple[int, str, int]:
    labels = parse_labels(key)
    endpoint = labels.get("endpoint", "")
    if not endpoint:
        rank = -1  # a total before its parts
    elif endpoint in ENDPOINT_ORDER:
        rank = ENDPOINT_ORDER.index(endpoint)
    else:
        rank = len(ENDPOINT_ORDER)
    history = labels.get("history_len", "")
    return rank, endpoint, int(history) if history.isdigit() else -1


def _keep_at_max(sub: pd.DataFrame, label: str) -> pd.DataFrame:
    """Rows whose `label` is the largest value seen for their other labels."""
    if sub.empty or label not in sub.columns:
        return sub
    numeric = pd.to_numeric(sub[label], errors="coerce")
    others = [parse_labels(k) | {label: ""} for k in sub["labels"]]  # the label set without `label`
    group = pd.Series([labels_key(o) for o in others], index=sub.index)
    largest = numeric.groupby(group).transform("max")
    return sub[numeric == largest]


def ratio(value: float | None, base: float | None, floor: float = 0.0) -> float:
    """value / base; NaN when either is missing or base is 0 (1.0 when both are 0).

    With a `floor` > 0, NaN as well when either is below it in absolute value (noise)."""
    if value is None or base is None or math.isnan(value) or math.isnan(base):
        return math.nan
    if floor > 0 and (abs(value) < floor or abs(base) < floor):
        return math.nan
    if base == 0:
        return 1.0 if value == 0 else math.nan
    return value / base


def headline_table(
    frame: pd.DataFrame,
    designs: Sequence[str] = (),
    specs: Sequence[HeadlineMetric] = HEADLINE,
) -> pd.DataFrame:
    """One row per headline metric and label set present in `frame`.

    Columns: key, metric, labels, title, phase, unit, better, one column per design (value or
    NaN), a `<design> / <base>` ratio column for every other design (`ratio_base`), and
    `qualifiers`: {design or ratio column: "at least" | "at most" | "two bounds"} for the
    figures that are bounds (`bounds`; the others are exact).
    """
    order = designs_in(frame, designs)
    bounded = bounds(frame)
    frame = shown(frame)
    base = ratio_base(order)
    others = [d for d in order if d != base]
    ratio_cols = [ratio_column(d, base) for d in others]
    rows: list[dict[str, Any]] = []
    for spec in specs:
        if frame.empty:
            break
        sub = frame[(frame["metric"] == spec.metric) & (frame["phase"] == spec.phase)]
        if spec.labels == "none":
            sub = sub[sub["labels"] == ""]
        if spec.at_max:
            sub = _keep_at_max(sub, spec.at_max)
        if sub.empty:
            continue
        for key in sorted(pd.unique(sub["labels"]), key=_endpoint_rank):
            lines = sub[sub["labels"] == key]
            described = describe_labels(str(key))
            row: dict[str, Any] = {
                "key": f"{spec.metric}{{{key}}}" if key else spec.metric,
                "metric": spec.metric,
                "labels": str(key),
                "title": f"{spec.title} ({described})" if described else spec.title,
                "phase": spec.phase,
                "unit": str(lines["unit"].iloc[0]),
                "better": spec.better,
            }
            for design in order:
                hit = lines[lines["design"] == design]
                row[design] = float(hit["value"].iloc[-1]) if not hit.empty else math.nan
            qualifiers = {
                d: bounded[(d, spec.metric)] for d in order if (d, spec.metric) in bounded
            }
            for design, column in zip(others, ratio_cols, strict=True):
                row[column] = ratio(row[design], row[base], spec.ratio_floor)
                both = combine(qualifiers.get(design, ""), qualifiers.get(base, ""))
                if both:
                    qualifiers[column] = both
            row[QUALIFIERS_COLUMN] = qualifiers
            rows.append(row)
    columns = ["key", "metric", "labels", "title", "phase", "unit", "better"]
    columns += [*order, *ratio_cols, QUALIFIERS_COLUMN]
    return pd.DataFrame(rows, columns=columns)


# --- two runs --------------------------------------------------------------------------------


def change(a: float, b: float) -> tuple[float, float]:
    """(b - a, percent change from a); percent is NaN when a is 0 (0 when both are 0)."""
    if math.isnan(a) or math.isnan(b):
        return math.nan, math.nan
    delta = b - a
    if a == 0:
        return delta, 0.0 if b == 0 else math.nan
    return delta, delta / abs(a) * 100.0


COMPARE_COLUMNS = [
    "key",
    "title",
    "phase",
    "unit",
    "better",
    "design",
    "a",
    "b",
    "delta",
    "delta_pct",
    "a_qualifier",
    "b_qualifier",
]


def compare_table(
    frame_a: pd.DataFrame,
    frame_b: pd.DataFrame,
    designs: Sequence[str] = (),
    specs: Sequence[HeadlineMetric] = HEADLINE,
) -> pd.DataFrame:
    """Headline metrics of run A and run B, long format: one row per (metric line, design).

    Columns: key, title, phase, unit, better, design, a, b, delta (b - a), delta_pct
    (percent of |a|). A metric present in only one run has NaN on the other side.
    """
    order = list(designs)
    for frame in (frame_a, frame_b):
        order += [d for d in designs_in(frame) if d not in order]
    head_a = headline_table(frame_a, order, specs)
    head_b = headline_table(frame_b, order, specs)
    keys: list[str] = []
    meta: dict[str, dict[str, Any]] = {}
    spec_rank = {(s.metric, s.phase): i for i, s in enumerate(specs)}
    for head in (head_a, head_b):
        for record in records(head):
            key = str(record["key"])
            if key not in meta:
                keys.append(key)
                meta[key] = record
    keys.sort(
        key=lambda k: (
            spec_rank.get((str(meta[k]["metric"]), str(meta[k]["phase"])), len(spec_rank)),
            _endpoint_rank(str(meta[k]["labels"])),
        )
    )
    lookup_a = head_a.set_index("key") if not head_a.empty else head_a
    lookup_b = head_b.set_index("key") if not head_b.empty else head_b
    rows: list[dict[str, Any]] = []
    for key in keys:
        m = meta[key]
        for design in order:
            a = _cell(lookup_a, key, design)
            b = _cell(lookup_b, key, design)
            if math.isnan(a) and math.isnan(b):
                continue
            delta, pct = change(a, b)
            qualifier_a = _qualifier(lookup_a, key, design)
            qualifier_b = _qualifier(lookup_b, key, design)
            rows.append(
                {
                    "key": key,
                    "title": m["title"],
                    "phase": m["phase"],
                    "unit": m["unit"],
                    "better": m["better"],
                    "design": design,
                    "a": a,
                    "b": b,
                    "delta": delta,
                    "delta_pct": pct,
                    "a_qualifier": qualifier_a,
                    "b_qualifier": qualifier_b,
                }
            )
    return pd.DataFrame(rows, columns=COMPARE_COLUMNS)


def _qualifier(table: pd.DataFrame, key: str, design: str) -> str:
    if table.empty or key not in table.index or QUALIFIERS_COLUMN not in table.columns:
        return ""
    qualifiers: Any = table.at[key, QUALIFIERS_COLUMN]
    return str(qualifiers.get(design, "")) if isinstance(qualifiers, Mapping) else ""


def _cell(table: pd.DataFrame, key: str, design: str) -> float:
    if table.empty or key not in table.index or design not in table.columns:
        return math.nan
    value: Any = table.at[key, design]
    return float(value)


def verdict(better: str, delta: float, delta_pct: float, tolerance_pct: float = 5.0) -> str:
    """'better' | 'worse' | 'same' for a change; within ±tolerance_pct it is 'same'."""
    if math.isnan(delta) or delta == 0:
        return "same"
    if not math.isnan(delta_pct) and abs(delta_pct) <= tolerance_pct:
        return "same"
    improved = delta < 0 if better == "lower" else delta > 0
    return "better" if improved else "worse"


# --- what ran, and what to distrust ----------------------------------------------------------


@dataclass(frozen=True)
class PhaseState:
    design: str
    phase: str
    status: str  # passed | failed | skipped | interrupted | not run
    detail: str
    duration_s: float | None
    has_results: bool

    @property
    def short_detail(self) -> str:
        """The detail's first line ('…' when there is more), '' when it only repeats the status."""
        lines = [line.strip() for line in self.detail.strip().splitlines() if line.strip()]
        if not lines or (len(lines) == 1 and lines[0].lower() == self.status):
            return ""
        first = lines[0].rstrip(":;,")
        return f"{first} …" if len(lines) > 1 else first

    @property
    def ran(self) -> bool:
        return self.status == "passed" or (self.status == "no record" and self.has_results)

    def sentence(self) -> str:
        """'probe: not run (skipped: --phases load)' for the report."""
        if self.status == "no record" and self.has_results:
            return f"{self.phase}: results present (no record in run.json)"
        if self.ran:
            took = f" in {self.duration_s:.1f} s" if self.duration_s is not None else ""
            return f"{self.phase}: passed{took}"
        detail = f": {self.short_detail}" if self.short_detail else ""
        if self.status in ("failed", "interrupted"):
            partial = "; partial results shown" if self.has_results else ""
            return f"{self.phase}: {self.status}{detail}{partial}"
        if self.status == "skipped":
            return f"{self.phase}: not run (skipped{detail})"
        if self.status == "not run":
            return f"{self.phase}: not run ({self.detail or 'no record in run.json'})"
        return f"{self.phase}: not run ({self.status}{detail})"


def phase_status(
    phases: Sequence[Mapping[str, Any]],
    frame: pd.DataFrame,
    designs: Sequence[str],
    expected: Sequence[str] = PHASES,
    configured: Sequence[str] | None = None,
    profile: str = "",
) -> list[PhaseState]:
    """One state per (design, phase): from run.json's phase records and the summary rows.

    Every phase in `expected` gets a state, then any other phase run.json records (e.g. seed).
    A phase with neither a record nor results is 'not run': 'not in the phases of profile
    <profile>' when `configured` (the profile's phase list) leaves it out, else 'no record
    in run.json'.
    """
    records = {(str(p.get("design")), str(p.get("phase"))): p for p in phases}
    with_results = (
        set(zip(frame["design"].astype(str), frame["phase"].astype(str), strict=True))
        if not frame.empty
        else set()
    )
    # phases run.json records beyond the expected ones (seeding the store) come first
    wanted = [ph for (_d, ph) in records if ph not in expected] + list(expected)
    wanted = list(dict.fromkeys(wanted))
    states: list[PhaseState] = []
    for design in designs:
        for phase in wanted:
            record = records.get((design, phase))
            has = (design, phase) in with_results
            if record is None:
                if has:
                    status, detail = "no record", "results present"
                elif configured is not None and phase not in configured:
                    named = f" {profile}" if profile else ""
                    status, detail = "not run", f"not in the phases of profile{named}"
                else:
                    status, detail = "not run", "no record in run.json"
                took = None
            else:
                status = str(record.get("status") or "unknown")
                detail = str(record.get("detail") or "")
                raw = record.get("duration_s")
                took = float(raw) if isinstance(raw, int | float) else None
            states.append(PhaseState(design, phase, status, detail, took, has))
    return states


def warning_text(raw: object) -> str:
    """A run.json warning (text, or {design, phase, message}) as one line."""
    if isinstance(raw, Mapping):
        where = " ".join(str(raw.get(k) or "") for k in ("design", "phase")).strip()
        message = str(raw.get("message") or "")
        return f"{where}: {message}" if where else message
    return str(raw)


def run_warnings(
    frame: pd.DataFrame,
    states: Sequence[PhaseState],
    extra: Sequence[object] = (),
) -> list[str]:
    """Warnings a reader must see before trusting the figures.

    `extra`: run.json's own warnings (text or {design, phase, message}); they come first, and
    a computed warning the run already gave (same design, same subject) is not repeated.
    """
    out: list[str] = list(dict.fromkeys(warning_text(w) for w in extra))
    said = [w.lower() for w in out]
    for state in states:
        if state.status in ("failed", "interrupted"):
            out.append(f"{state.design} {state.sentence()}")
    if frame.empty:
        return out
    for row in records(frame[frame["metric"] == "loadgen_cpu_max"]):
        value = float(row["value"])
        design = str(row["design"]).lower()
        if value > LOADGEN_CPU_LIMIT and not any(
            design in w and "load generator" in w for w in said
        ):
            out.append(
                f"{row['design']} {row['phase']}: the load generator reached {value:.0f}% CPU "
                f"(> {LOADGEN_CPU_LIMIT:.0f}%): it, not the server, may have set the pace; "
                "throughput and latency are suspect"
            )
    for row in records(frame[frame["metric"] == "alloc_cv"]):
        value = float(row["value"])
        percent = row["unit"] == "percent"
        limit = PROBE_CV_LIMIT * 100 if percent else PROBE_CV_LIMIT
        if value > limit:
            shown = value if percent else value * 100
            out.append(
                f"{row['design']} probe: allocation varies {shown:.1f}% across repetitions "
                f"({describe_labels(str(row['labels']))}; limit {PROBE_CV_LIMIT * 100:.0f}%): "
                "the per-request figure is not stable"
            )
    for row in records(frame[frame["metric"].isin(["lost", "unexpected"])]):
        count = float(row["value"])
        if count <= 0:
            continue
        if row["metric"] == "lost":
            out.append(
                f"{row['design']} integrity: {count:,.0f} acknowledged messages lost "
                "(the client saw them succeed; the store does not hold them)"
            )
        else:
            out.append(
                f"{row['design']} integrity: {count:,.0f} unexpected messages (stored but never "
                "acknowledged to the client, e.g. requests in flight when Locust stopped)"
            )
    for row in records(frame[(frame["metric"] == "failures") & (frame["labels"] == "")]):
        if float(row["value"]) > 0:
            out.append(
                f"{row['design']} {row['phase']}: {float(row['value']):,.0f} failed requests"
            )
    return out
