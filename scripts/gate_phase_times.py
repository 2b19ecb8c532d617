"""Where one design's gate probe spends its time: wall and CPU-seconds per phase.

    python scripts/gate_phase_times.py [--config loadtest.toml] --design naive --out DIR
                                       [--processes N] [--reps N]

Runs `harness.phases.probe.run_probe` with the [gate] settings of the config (or the given
processes/reps) and prints, per phase (each process's seed, server start, leak runs per
endpoint, reps per size, warm-up, peak sites, stop), the wall time and the CPU-seconds of this
process and every process it started (the server, the LLM emulator): the probe sends one
request at a time, so on a free core a design's wall time follows its CPU-seconds, and the
CPU-seconds stay meaningful on a busy machine where wall times do not (docs/gate.md, "How long
`make gate` takes"). Load goes to 127.0.0.1 only; the run is bounded by the probe's own plan.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

import harness.phases.probe as probe
from harness import config as config_mod
from harness.results import RunDir


class PhaseClock:
    """Splits wall time and CPU-seconds (this process and its descendants) at each mark."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.rows: list[tuple[str, float, float]] = []
        self.name = "start"
        self.wall = time.monotonic()
        self.cpu = self.cpu_now()

    def cpu_now(self) -> float:
        t = os.times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in self.me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                c = child.cpu_times()
                total += c.user + c.system + c.children_user + c.children_system
        return total

    def mark(self, name: str) -> None:
        if name == self.name:
            return
        wall, cpu = time.monotonic(), self.cpu_now()
        self.rows.append((self.name, wall - self.wall, cpu - self.cpu))
        self.name, self.wall, self.cpu = name, wall, cpu


def phase_of(text: str) -> str:
    """'process 2/3: leak run: chat x 40 ...' -> 'process 2/3 | leak chat'."""
    process, _, rest = text.partition(": ") if text.startswith("process ") else ("", "", text)
    if rest.startswith("leak run"):
        kind = "leak " + rest.split(":")[1].split(" x ")[0].strip()
    elif rest.startswith(("retained sites", "peak sites")):
        kind = " ".join(rest.split()[:2]).rstrip(":")
    elif rest.startswith("warming"):
        kind = "warm-up"
    else:
        kind = "reps " + rest.split()[-1]
    return f"{process or 'process 1/1'} | {kind}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=Path("loadtest.toml"))
    parser.add_argument("--design", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--processes", type=int)
    parser.add_argument("--reps", type=int)
    args = parser.parse_args()
    cfg = config_mod.load(args.config, {"out": args.out})
    g = cfg.gate
    clock = PhaseClock()
    # run_probe calls these through its module's globals: wrapping them there marks the phases
    seed, stack = getattr(probe, "seed_store"), getattr(probe, "running_stack")  # noqa: B009

    def timed_seed(*a: Any, **kw: Any) -> Any:
        clock.mark("seed")
        return seed(*a, **kw)

    @contextlib.contextmanager
    def timed_stack(*a: Any, **kw: Any) -> Iterator[Any]:
        clock.mark("server start")
        with stack(*a, **kw) as running:
            clock.mark("first request")
            yield running
            clock.mark("server stop")

    setattr(probe, "seed_store", timed_seed)  # noqa: B010
    setattr(probe, "running_stack", timed_stack)  # noqa: B010
    run = RunDir.create(args.out)
    run.start_run("gate", cfg.to_json())
    t0, c0 = time.monotonic(), clock.cpu_now()
    probe.run_probe(
        run,
        args.design,
        cfg,
        history_lens=g.history_lens,
        reps=args.reps or g.reps,
        warmup=g.warmup,
        progress=lambda done, total, text: clock.mark(phase_of(text)),
        leak_requests=g.leak_requests,
        processes=args.processes or g.processes,
        leak_processes=g.leak_processes,
    )
    clock.mark("end")
    for name, wall, cpu in clock.rows:
        print(f"{name:40s} wall {wall:7.1f} s   cpu {cpu:7.1f} s")
    print(
        f"total {args.design}: wall {time.monotonic() - t0:.1f} s, "
        f"cpu {clock.cpu_now() - c0:.1f} s, load average {os.getloadavg()}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
