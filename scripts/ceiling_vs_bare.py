"""The ceiling phase alone, as `make loadtest` runs it: the open-model search on the ceiling
target's health path, then the bare Locust on the same server with the same processes.

Prints the load average before and after, the ceiling's rows (capacity_rps, bare_locust_rps,
ceiling_bare_fraction, ...) and its steps (offered and achieved rates, dropped and held
sends, p95, verdict). The run directory is kept under --out.

    .venv/bin/python scripts/ceiling_vs_bare.py [--profile quick] [--load-workers N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd

from harness._errors import HarnessError
from harness.config import load
from harness.phases import FailedWithResults
from harness.phases.ceiling import ceiling_dir, run_ceiling
from harness.results import RunDir

COLUMNS = ["stage", "offered_rps", "achieved_rps", "dropped", "held", "p95_ms", "verdict"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("loadtest.toml"))
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--load-workers", type=int, default=None, help="default: the profile's")
    parser.add_argument("--out", type=Path, default=Path("reports/ceiling"))
    args = parser.parse_args()
    overrides: dict[str, object] = {"profile": args.profile}
    if args.load_workers is not None:
        overrides["ceiling_load_workers"] = args.load_workers
    cfg = load(args.config, overrides)
    run = RunDir.create(args.out)
    print(f"run {run.root}; load average {os.getloadavg()}", flush=True)
    started = time.monotonic()
    try:
        rows = run_ceiling(run, cfg, target=cfg.ceiling_target)
    except FailedWithResults as failed:
        print(f"failed: {failed}")
        rows = failed.rows
    except HarnessError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for row in rows:
        print(f"{row.metric} {row.value:.4g}")
    print(f"wall {time.monotonic() - started:.0f} s; load average {os.getloadavg()}")
    steps = ceiling_dir(run) / "capacity_steps.csv"
    if steps.exists():
        print(pd.read_csv(steps).reindex(columns=COLUMNS).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
