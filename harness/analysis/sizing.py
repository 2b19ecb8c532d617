"""Container sizing: a memory request and limit added up, term by term, from measured figures.

The memory reviews this project answers guess a limit ("base 128-256 MB, plus 1-5 MB per
active user"). Every term of that guess is measured by some phase; this module adds them up:

    request = workers x (idle RSS + data growth at max_units     ("workers", "data")
                         + retained beyond one request's peak)     ("retained")
            + in flight x peak per request at max_units             ("in_flight")
    limit   = request x (1 + headroom)

- idle RSS: one worker process, started on the seeded store, before any request;
- data growth: what that worker's RSS gains when its data is set to `max_units` (the probe
  recipe's setup request, where the service serves it outside probe mode);
- retained: what the worker's RSS keeps after it has served the probe recipe's requests at
  `max_units` (freed memory the allocator does not give back: fragmented arenas), beyond the
  peak of one request, which the in-flight term counts already; tracemalloc cannot see it;
- in flight: the stated `concurrency`, else Little's law, rate x latency, taken at the 99th
  percentile of a Poisson count of that mean (requests in service under random arrivals,
  M/G/inf), so a burst above the mean is covered, not only the mean;
- peak per request: the probe's (tracemalloc) peak of the worst endpoint at `max_units`,
  measured there or read off its least-squares line.

Pure: figures in, a `Sizing` out; the `[size]` table is parsed here too (ConfigError naming
the file and the key). docs/sizing.md has the assumptions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from harness._errors import ConfigError
from harness.results import SummaryRow

PHASE = "size"
MIB = 2**20
IN_FLIGHT_QUANTILE = 0.99
LOW_LIMIT_FRACTION = 0.6  # the second proof run: this fraction of the recommended limit
DEFAULT_HEADROOM = 0.25
DEFAULT_PROOF_S = 30.0
RUNTIMES = ("auto", "docker", "cgroup")  # the proof's limit: docker where it answers, else cgroup


@dataclass(frozen=True)
class SizeTable:
    """The keys of a `[size]` (or `[target.size]`) table, as given; None where not set."""

    workers: int | None = None
    rate: float | None = None  # req/s the container must hold
    concurrency: float | None = None  # requests in flight, instead of rate x latency (with
    # a rate as well: the in-flight term from this, the proof's load at the rate)
    latency_ms: float | None = None  # for Little's law, when no capacity search measured it
    max_units: int | None = None  # the largest data size (the probe's unit)
    headroom: float | None = None  # a fraction: 0.25 = 25%
    proof_s: float | None = None  # seconds of load per proof run
    prove: bool | None = None  # false: size only, no run under a kernel limit
    runtime: str | None = None  # the proof's limit: auto (docker, else a cgroup) | docker | cgroup

    def over(self, base: SizeTable) -> SizeTable:
        """This table's keys where set, `base`'s elsewhere."""
        given = {f.name: getattr(self, f.name) for f in fields(self)}
        return replace(base, **{k: v for k, v in given.items() if v is not None})


SIZE_KEYS = tuple(f.name for f in fields(SizeTable))


def parse_size_table(raw: object, path: Path | str, prefix: str = "size") -> SizeTable:
    """A `[size]` table; an error names the file and the key."""
    if not isinstance(raw, Mapping):
        raise ConfigError(path, prefix, "must be a table")
    table: Mapping[str, Any] = raw
    for key in table:
        if key not in SIZE_KEYS:
            raise ConfigError(
                path, f"{prefix}.{key}", f"unknown key (allowed: {', '.join(sorted(SIZE_KEYS))})"
            )

    def number(key: str, zero_ok: bool = False, integer: bool = False) -> Any:
        if key not in table:
            return None
        value: Any = table[key]
        wrong_kind = integer and not isinstance(value, int)
        if isinstance(value, bool) or not isinstance(value, int | float) or wrong_kind:
            kind = "an integer" if integer else "a number"
            raise ConfigError(path, f"{prefix}.{key}", f"must be {kind}, got {value!r}")
        if value < 0 or (value == 0 and not zero_ok):
            raise ConfigError(
                path, f"{prefix}.{key}", f"must be {'>= 0' if zero_ok else '> 0'}, got {value!r}"
            )
        return value if integer else float(value)

    runtime = table.get("runtime")
    if runtime is not None and runtime not in RUNTIMES:
        raise ConfigError(
            path, f"{prefix}.runtime", f"one of {', '.join(RUNTIMES)}, got {runtime!r}"
        )
    headroom = number("headroom", zero_ok=True)
    if headroom is not None and headroom > 10:
        raise ConfigError(path, f"{prefix}.headroom", f"a fraction (0.25 = 25%), got {headroom!r}")
    prove = table.get("prove")
    if prove is not None and not isinstance(prove, bool):
        raise ConfigError(path, f"{prefix}.prove", f"must be true or false, got {prove!r}")
    return SizeTable(
        workers=number("workers", integer=True),
        rate=number("rate"),
        concurrency=number("concurrency"),
        latency_ms=number("latency_ms"),
        max_units=number("max_units", integer=True),
        headroom=headroom,
        proof_s=number("proof_s"),
        prove=prove,
        runtime=runtime,
    )


# --- the inputs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbePoint:
    endpoint: str
    size: float  # the probe's data size (history_len label)
    peak_bytes: float


@dataclass(frozen=True)
class PeakAtUnits:
    endpoint: str
    bytes: float
    measured: bool  # True: probed at max_units; False: read off the least-squares line


def peak_at_units(points: Iterable[ProbePoint], max_units: float) -> PeakAtUnits:
    """The worst endpoint's peak per request at max_units: its median probed there, else its
    least-squares line at max_units (never below its largest probed peak when extrapolating
    up, never below 0)."""
    by_endpoint: dict[str, list[ProbePoint]] = {}
    for p in points:
        by_endpoint.setdefault(p.endpoint, []).append(p)
    if not by_endpoint:
        raise ValueError("no probe points")
    candidates = []
    for endpoint, pts in by_endpoint.items():
        exact = [p.peak_bytes for p in pts if p.size == max_units]
        if exact:
            candidates.append(PeakAtUnits(endpoint, float(np.median(exact)), True))
            continue
        sizes = np.array([p.size for p in pts], dtype=float)
        peaks = np.array([p.peak_bytes for p in pts], dtype=float)
        if np.unique(sizes).size < 2:
            value = float(peaks.max())
        else:
            slope, intercept = np.polyfit(sizes, peaks, 1)
            value = float(slope * max_units + intercept)
            if max_units > sizes.max():
                value = max(value, float(peaks[sizes == sizes.max()].max()))
        candidates.append(PeakAtUnits(endpoint, max(0.0, value), False))
    return max(candidates, key=lambda c: c.bytes)


def poisson_quantile(mean: float, q: float = IN_FLIGHT_QUANTILE) -> int:
    """The smallest n with P(N <= n) >= q for N ~ Poisson(mean)."""
    if mean <= 0:
        return 0
    term = math.exp(-mean) if mean < 700 else 0.0
    if term == 0.0:  # a large mean: the normal approximation
        return math.ceil(mean + 2.3263 * math.sqrt(mean))
    total, n = term, 0
    while total < q:
        n += 1
        term *= mean / n
        total += term
    return n


@dataclass(frozen=True)
class InFlight:
    requests: float  # the figure the in-flight term multiplies
    mean: float  # rate x latency (or the stated concurrency)
    source: str  # how it was obtained, for the report


def in_flight(rate: float | None, latency_s: float | None, concurrency: float | None) -> InFlight:
    """The stated concurrency, else Little's law at its Poisson 99th percentile (at least 1)."""
    if concurrency is not None:
        return InFlight(concurrency, concurrency, f"stated concurrency {concurrency:g}")
    if rate is None or latency_s is None:
        raise ValueError("in flight needs a concurrency, or a rate and a latency")
    mean = rate * latency_s
    n = max(1, poisson_quantile(mean))
    return InFlight(
        float(n),
        mean,
        f"Little's law: {rate:g} req/s x {latency_s * 1000:.0f} ms = {mean:.2f} in flight on "
        f"average; {n} at the 99th percentile of a Poisson count",
    )


# --- the sum --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    name: str  # workers | data | retained | in_flight
    bytes: float
    formula: str


@dataclass(frozen=True)
class Sizing:
    terms: tuple[Term, ...]
    headroom: float
    workers: int
    max_units: float
    idle_rss_bytes: float
    data_growth_bytes: float
    peak: PeakAtUnits
    in_flight: InFlight
    retained_bytes: float = 0.0  # the retained term per worker (past one request's peak)

    @property
    def request_bytes(self) -> int:
        return mib_ceil(sum(t.bytes for t in self.terms))

    @property
    def limit_bytes(self) -> int:
        return mib_ceil(sum(t.bytes for t in self.terms) * (1 + self.headroom))

    @property
    def headroom_bytes(self) -> float:
        return sum(t.bytes for t in self.terms) * self.headroom

    @property
    def dominant(self) -> Term:
        return max(self.terms, key=lambda t: t.bytes)

    @property
    def per_worker_bytes(self) -> int:
        """What one more worker adds to the limit: its idle RSS, its data and what it
        retains, with headroom."""
        own = self.idle_rss_bytes + self.data_growth_bytes + self.retained_bytes
        return mib_ceil(own * (1 + self.headroom))


def mib_ceil(value: float) -> int:
    """Bytes rounded up to a whole MiB (what a limit is written in)."""
    return int(math.ceil(max(0.0, value) / MIB) * MIB)


def size_container(
    *,
    workers: int,
    idle_rss_bytes: float,
    data_growth_bytes: float,
    peak: PeakAtUnits,
    flight: InFlight,
    max_units: float,
    headroom: float = DEFAULT_HEADROOM,
    retained_rss_bytes: float | None = None,
) -> Sizing:
    """The request and limit, term by term (see the module docstring). `retained_rss_bytes`:
    what a worker's RSS kept after serving the heaviest requests at max_units (None: not
    measured, no such term)."""
    retained = max(0.0, (retained_rss_bytes or 0.0) - peak.bytes)
    terms = (
        Term(
            "workers",
            workers * idle_rss_bytes,
            f"{workers} worker(s) x {idle_rss_bytes / MIB:.1f} MiB idle RSS",
        ),
        Term(
            "data",
            workers * max(0.0, data_growth_bytes),
            f"{workers} worker(s) x {max(0.0, data_growth_bytes) / MIB:.1f} MiB data growth "
            f"at {max_units:g} units",
        ),
        *(
            ()
            if retained_rss_bytes is None
            else (
                Term(
                    "retained",
                    workers * retained,
                    f"{workers} worker(s) x ({retained_rss_bytes / MIB:.1f} MiB RSS kept after "
                    f"the requests at {max_units:g} units - {peak.bytes / MIB:.2f} MiB peak of "
                    "one, counted in flight)",
                ),
            )
        ),
        Term(
            "in_flight",
            flight.requests * peak.bytes,
            f"{flight.requests:g} in flight x {peak.bytes / MIB:.2f} MiB peak per request "
            f"({peak.endpoint} at {max_units:g} units"
            f"{'' if peak.measured else ', from the probe line'})",
        ),
    )
    return Sizing(
        terms=terms,
        headroom=headroom,
        workers=workers,
        max_units=max_units,
        idle_rss_bytes=idle_rss_bytes,
        data_growth_bytes=max(0.0, data_growth_bytes),
        peak=peak,
        in_flight=flight,
        retained_bytes=retained,
    )


# --- what people paste ----------------------------------------------------------------------


def mib_text(value: float) -> str:
    return f"{math.ceil(value / MIB)}Mi"


def kubernetes_resources(sizing: Sizing) -> str:
    return (
        "resources:\n"
        "  requests:\n"
        f"    memory: {mib_text(sizing.request_bytes)}\n"
        "  limits:\n"
        f"    memory: {mib_text(sizing.limit_bytes)}\n"
    )


def docker_flag(sizing: Sizing) -> str:
    return f"docker run --memory={math.ceil(sizing.limit_bytes / MIB)}m"


def worker_note(sizing: Sizing) -> str:
    return (
        f"each added worker: +{sizing.per_worker_bytes // MIB} MiB on the limit (its idle RSS, "
        f"its data and what it retains, with {sizing.headroom:.0%} headroom); requests in "
        "flight are shared by the workers, so that term does not grow with them"
    )


# --- the proof, as figures ------------------------------------------------------------------


@dataclass(frozen=True)
class Proof:
    """One run of the load under a kernel memory limit."""

    label: str  # "limit" | "60pct"
    limit_bytes: int
    oom_kills: int = 0
    requests: int = 0
    failures: int = 0
    p95_ms: float = math.nan
    peak_usage_bytes: float = math.nan  # the cgroup's own high-water mark
    app_exit: int | None = None  # the app's exit status at the end (None: still running)
    problem: str = ""  # e.g. "the app could not start under the limit"
    runtime: str = ""  # the limit it ran under: "docker" (a container) or "cgroup"

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else math.nan

    @property
    def held(self) -> bool:
        """No OOM kill, the app alive, at most 1% failures."""
        return (
            self.oom_kills == 0
            and self.app_exit is None
            and not self.problem
            and self.requests > 0
            and self.failure_ratio <= 0.01
        )


def sizing_rows(
    design: str, sizing: Sizing, proofs: Sequence[Proof] = (), rate: float | None = None
) -> list[SummaryRow]:
    rows = [
        SummaryRow(design, PHASE, "memory_request_bytes", float(sizing.request_bytes), "bytes"),
        SummaryRow(design, PHASE, "memory_limit_bytes", float(sizing.limit_bytes), "bytes"),
        SummaryRow(
            design, PHASE, "memory_per_worker_bytes", float(sizing.per_worker_bytes), "bytes"
        ),
        SummaryRow(design, PHASE, "size_in_flight", sizing.in_flight.requests, "count"),
        SummaryRow(design, PHASE, "size_workers", float(sizing.workers), "count"),
    ]
    if rate is not None:
        rows.append(SummaryRow(design, PHASE, "size_rate_rps", rate, "req/s"))
    for term in sizing.terms:
        rows.append(
            SummaryRow(design, PHASE, "size_term_bytes", term.bytes, "bytes", {"term": term.name})
        )
    names = {"limit": "at_limit", "60pct": "at_60pct"}
    for proof in proofs:
        suffix = names.get(proof.label, proof.label)
        rows += [
            SummaryRow(design, PHASE, f"oom_kills_{suffix}", float(proof.oom_kills), "count"),
            SummaryRow(design, PHASE, f"failures_{suffix}", float(proof.failures), "count"),
            SummaryRow(design, PHASE, f"requests_{suffix}", float(proof.requests), "count"),
        ]
        if not math.isnan(proof.p95_ms):
            rows.append(SummaryRow(design, PHASE, f"p95_{suffix}_ms", proof.p95_ms, "ms"))
        if not math.isnan(proof.peak_usage_bytes):
            rows.append(
                SummaryRow(
                    design, PHASE, f"cgroup_peak_{suffix}_bytes", proof.peak_usage_bytes, "bytes"
                )
            )
    return rows


def to_json(sizing: Sizing) -> dict[str, Any]:
    return {
        "request_bytes": sizing.request_bytes,
        "limit_bytes": sizing.limit_bytes,
        "headroom": sizing.headroom,
        "headroom_bytes": sizing.headroom_bytes,
        "workers": sizing.workers,
        "max_units": sizing.max_units,
        "idle_rss_bytes": sizing.idle_rss_bytes,
        "data_growth_bytes": sizing.data_growth_bytes,
        "retained_bytes": sizing.retained_bytes,
        "peak_endpoint": sizing.peak.endpoint,
        "peak_bytes": sizing.peak.bytes,
        "peak_measured": sizing.peak.measured,
        "in_flight": sizing.in_flight.requests,
        "in_flight_mean": sizing.in_flight.mean,
        "in_flight_source": sizing.in_flight.source,
        "terms": [{"name": t.name, "bytes": t.bytes, "formula": t.formula} for t in sizing.terms],
        "dominant": sizing.dominant.name,
        "per_worker_bytes": sizing.per_worker_bytes,
        "kubernetes": kubernetes_resources(sizing),
        "docker": docker_flag(sizing),
        "worker_note": worker_note(sizing),
    }
