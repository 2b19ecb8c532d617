"""Reading a memray capture: totals, top allocation sites, and the flamegraph.

The capture comes from ``memray run --trace-python-allocators`` (not aggregated: ``memray stats``
and allocation records refuse aggregated captures). Three readers go over it, concurrently since
each is a full scan of a file that can hold tens of millions of records:

- ``python -m memray stats --json`` (subprocess): total bytes allocated, the number of
  allocations (frees excluded), the heap peak, and bytes and counts per site over the whole
  capture. Its aggregation runs in C++; streaming ``FileReader.get_allocation_records()`` through
  Python instead took about 2x as long on a 26M-record capture (24 s vs 12 s).
- ``memray.FileReader.get_high_watermark_allocation_records()`` (``python -m
  harness.sampling.memray_capture hwm``, a subprocess too): what was held at the high-water
  mark, one aggregated record per stack, folded to sites. Not in this process: the scan holds
  the GIL for its whole length (35 s on the naive design's 140 MB capture), and `harness
  loadtest` reads the capture on a thread while its main thread runs the probe.
- ``python -m memray flamegraph`` (subprocess): the high-water-mark flamegraph HTML.

A site is the innermost Python frame of the stack (see harness.analysis.profile).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness._errors import PhaseFailed
from harness.analysis.profile import SiteRecord
from harness.results import read_json, write_json_atomic
from harness.stack.processes import ManagedProcess, ProcessGroup, tail

UNKNOWN = "<unknown>"
STATS_SITES = 100_000  # ask `memray stats` for every site, so sizes and counts can be joined
STATS_KEEP = 100  # sites per ranking kept in memray_stats.json
READ_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class CaptureStats:
    """What `memray stats --json` says about a whole capture."""

    bytes_allocated: int
    allocations: int
    heap_peak_bytes: int
    sites: list[SiteRecord]


@dataclass(frozen=True)
class CaptureSummary:
    heap_peak_bytes: int
    bytes_allocated: int
    allocations: int
    hwm_sites: list[SiteRecord]
    allocated_sites: list[SiteRecord]
    capture_bytes: int
    read_seconds: float
    timings: dict[str, float] = field(default_factory=dict)


def _memray(*args: str) -> list[str]:
    return [sys.executable, "-m", "memray", *args]


def stats_argv(capture: Path, out_json: Path, num_largest: int = STATS_SITES) -> list[str]:
    return _memray(
        "stats", "--json", "--force", "-n", str(num_largest), "-o", str(out_json), str(capture)
    )


def flamegraph_argv(capture: Path, out_html: Path) -> list[str]:
    return _memray("flamegraph", "--force", "-o", str(out_html), str(capture))


def hwm_argv(capture: Path, out_json: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "harness.sampling.memray_capture",
        "hwm",
        str(capture),
        str(out_json),
    ]


def write_hwm_sites(capture: Path, out_json: Path) -> None:
    """`high_watermark_sites` of capture, written to out_json (what the hwm subprocess does)."""
    peak, records = high_watermark_sites(capture)
    write_json_atomic(
        out_json, {"peak_memory": peak, "sites": [dataclasses.asdict(r) for r in records]}
    )


def read_hwm_sites(path: Path) -> tuple[int, list[SiteRecord]]:
    raw = read_json(path)
    return int(raw["peak_memory"]), [SiteRecord(**site) for site in raw["sites"]]


def parse_location(text: str) -> tuple[str, str, int]:
    """'function:file:line' as `memray stats --json` writes it -> (function, file, line)."""
    if text.startswith("<stack trace unavailable>"):
        return (UNKNOWN, UNKNOWN, 0)
    rest, _, line = text.rpartition(":")
    function, _, file = rest.partition(":")
    try:
        return (function, file, int(line))
    except ValueError:
        return (text, UNKNOWN, 0)


def parse_stats(raw: Mapping[str, Any]) -> CaptureStats:
    """The figures and per-site (bytes, count) of a `memray stats --json` document."""
    counts: dict[str, int] = {
        str(e["location"]): int(e["count"]) for e in raw.get("top_allocations_by_count", [])
    }
    sites = []
    for entry in raw.get("top_allocations_by_size", []):
        location = str(entry["location"])
        function, file, line = parse_location(location)
        sites.append(SiteRecord(function, file, line, int(entry["size"]), counts.get(location, 0)))
    metadata = raw.get("metadata", {})
    return CaptureStats(
        bytes_allocated=int(raw["total_bytes_allocated"]),
        allocations=int(raw["total_num_allocations"]),
        heap_peak_bytes=int(metadata.get("peak_memory", 0)),
        sites=sites,
    )


def high_watermark_sites(capture: Path) -> tuple[int, list[SiteRecord]]:
    """(heap peak, records held at the high-water mark) read with memray.FileReader."""
    import memray

    records = []
    with memray.FileReader(str(capture)) as reader:
        peak = int(reader.metadata.peak_memory)
        for record in reader.get_high_watermark_allocation_records(merge_threads=True):
            frames = record.stack_trace(max_stacks=1)
            function, file, line = frames[0] if frames else (UNKNOWN, UNKNOWN, 0)
            records.append(
                SiteRecord(
                    str(function), str(file), int(line), int(record.size), int(record.n_allocations)
                )
            )
    return peak, records


def _finish(name: str, proc: ManagedProcess, deadline: float) -> None:
    code = proc.wait(max(1.0, deadline - time.monotonic()))
    if code is None:
        proc.stop(timeout=1.0)
        code = -9
    if code != 0:
        log = "\n".join(t for t in (tail(proc.stdout_path, 10), proc.stderr_tail(10)) if t)
        raise PhaseFailed("profile", f"memray {name} exited {code}:\n{log}")


def read_capture(
    capture: Path,
    out_dir: Path,
    *,
    flamegraph: Path | None = None,
    timeout: float = READ_TIMEOUT_S,
    log_dir: Path | None = None,
    on_readers: Callable[[ProcessGroup], None] | None = None,
) -> CaptureSummary:
    """Read a finished capture: stats, high-water mark and flamegraph, each in a subprocess.

    Writes ``memray_stats.json`` (its site rankings cut to STATS_KEEP) and ``flamegraph`` if
    given into out_dir; the subprocesses' output goes to log_dir (default out_dir/logs).
    They run inside a ProcessGroup, so an error or Ctrl-C stops them; `on_readers` gets that
    group as soon as it exists, for a caller on another thread to stop them (stop_all_now).
    """
    if not capture.is_file() or capture.stat().st_size == 0:
        raise PhaseFailed("profile", f"memray capture {capture} is missing or empty")
    t0 = time.monotonic()
    deadline = t0 + timeout
    stats_json = out_dir / "memray_stats.json"
    hwm_json = out_dir / "memray_hwm_sites.json"
    timings: dict[str, float] = {}
    with ProcessGroup(log_dir or out_dir / "logs") as group:
        if on_readers is not None:
            on_readers(group)
        stats_proc = group.start("memray-stats", stats_argv(capture, stats_json))
        hwm_proc = group.start("memray-hwm", hwm_argv(capture, hwm_json))
        flame = (
            group.start("memray-flamegraph", flamegraph_argv(capture, flamegraph))
            if flamegraph is not None
            else None
        )
        _finish("high-water mark", hwm_proc, deadline)
        timings["high_watermark_s"] = time.monotonic() - t0
        _finish("stats", stats_proc, deadline)
        timings["stats_s"] = time.monotonic() - t0
        if flame is not None:
            _finish("flamegraph", flame, deadline)
            timings["flamegraph_s"] = time.monotonic() - t0
    peak, hwm = read_hwm_sites(hwm_json)
    hwm_json.unlink()
    raw = read_json(stats_json)
    stats = parse_stats(raw)
    # Every site was asked for (to join sizes and counts); keep the file readable.
    for key in ("top_allocations_by_size", "top_allocations_by_count"):
        raw[key] = raw.get(key, [])[:STATS_KEEP]
    write_json_atomic(stats_json, raw)
    return CaptureSummary(
        heap_peak_bytes=peak or stats.heap_peak_bytes,
        bytes_allocated=stats.bytes_allocated,
        allocations=stats.allocations,
        hwm_sites=hwm,
        allocated_sites=stats.sites,
        capture_bytes=capture.stat().st_size,
        read_seconds=time.monotonic() - t0,
        timings=timings,
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m harness.sampling.memray_capture hwm CAPTURE OUT_JSON` (read_capture's)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] != "hwm":
        print(
            "usage: python -m harness.sampling.memray_capture hwm CAPTURE OUT_JSON", file=sys.stderr
        )
        return 2
    write_hwm_sites(Path(args[1]), Path(args[2]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
