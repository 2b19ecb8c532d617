"""The pytest plugin's peaks and slopes next to `harness probe` runs of the same target.

    .venv/bin/harness probe --config examples/items_service/loadtest.toml --design items \\
        --reps 5 --warmup 10          # two or three times: the probe's own spread
    .venv/bin/python scripts/pytest_plugin_agreement.py --run reports/<run-id> [--run ...]

Each run directory says which target it probed (items, notes or optimized); the plugin measures
the same requests at the same sizes in this process (peak_growth: `--reps` after `--warmup`
and its warm-up until steady), the optimized design with the LLM emulator in its own process
on loopback. Prints one line per request and size: the median of the probe runs' medians, the
plugin's figure and their difference, and the probe runs' own range (max - min over runs, in
% of their median); then the slopes the same way. A point agrees when the difference is within
2% or within the probe's own range; a slope also when it is within `slope_floor` (a slope near
zero). docs/pytest-plugin.md has the results.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
MESSAGE = "How much memory does one request of mine cost?"
NOTE = "probe note 10 at size 1000"  # as the recipe's "probe note {i} at size {size}"
Requests = dict[str, tuple[Callable[[], Any], bool]]  # name -> (send, reset_after)


@contextmanager
def items_target(memload: Any) -> Iterator[tuple[Callable[[int], Any], Requests]]:
    sys.path.insert(0, str(ROOT / "examples/items_service"))
    from items_app import app

    client = memload.client(app)
    yield (
        lambda n: client.put("/__probe/size", json={"n": n}),
        {
            "list": (lambda: client.get("/items"), False),
            "get": (lambda: client.get("/items/1"), False),
            "add": (
                lambda: client.post(
                    "/items", json={"name": "item 1", "size": 1}, headers={"x-user": "probe-user"}
                ),
                True,
            ),
        },
    )


@contextmanager
def notes_target(memload: Any) -> Iterator[tuple[Callable[[int], Any], Requests]]:
    sys.path.insert(0, str(ROOT / "examples/flask_service"))
    database = Path(tempfile.mkdtemp()) / "notes.db"
    os.environ["NOTES_DB"] = str(database)
    import notes_app
    from seed import seed

    client = memload.client(notes_app.app)
    yield (
        lambda n: seed(database, n),
        {
            "list": (lambda: client.get("/notes"), False),
            "get": (lambda: client.get("/notes/1"), False),
            "add": (
                lambda: client.post("/notes", json={"text": "probe note 10 at size 1000"}),
                True,
            ),
        },
    )


@contextmanager
def optimized_target(memload: Any) -> Iterator[tuple[Callable[[int], Any], Requests]]:
    from harness.stack.processes import ProcessGroup
    from reference_app.api import create_app
    from reference_app.seed import SeedSpec, seed_store
    from reference_app.settings import Settings

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import Launcher

    data = Path(tempfile.mkdtemp())
    with ProcessGroup(data / "logs") as group:
        upstream = Launcher(group).upstream(first_token_ms=0, tokens_per_s=0, reply_tokens=120)
        seed_store("optimized", data, SeedSpec(users=10, whales=0, seed=1))
        settings = Settings(
            design="optimized", data_dir=data, upstream_url=upstream.url, probe=True
        )
        client = memload.client(create_app("optimized", settings))

        def chat(stream: bool) -> Callable[[], Any]:
            body = {"user_id": "probe-user", "message": MESSAGE, "stream": stream}
            return lambda: client.post("/chat", json=body)

        yield (
            lambda n: client.put("/__probe/history/probe-user", json={"length": n}),
            {
                "chat": (chat(False), True),
                "chat_stream": (chat(True), True),
                "history": (lambda: client.get("/history/probe-user"), False),
            },
        )


TARGETS = {"items": items_target, "notes": notes_target, "optimized": optimized_target}


UNITS = {"items": "item", "notes": "note", "optimized": "message"}
TOLERANCE = 0.02


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--run", type=Path, action="append", required=True, help="a harness probe run directory"
    )
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    found: dict[str, list[Path]] = {}
    for run in args.run:
        for csv in sorted(run.glob("*/probe/probe_requests.csv")):
            found.setdefault(csv.parent.parent.name, []).append(csv)
    if not found:
        parser.error(f"{args.run}: no */probe/probe_requests.csv")
    from harness.analysis.probe import per_point, slopes
    from harness.pytest_plugin._client import Tracing
    from harness.pytest_plugin._figures import Limits
    from harness.pytest_plugin._probe import MemoryProbe

    for target, csvs in found.items():
        runs = [per_point(pd.read_csv(csv)) for csv in csvs]
        run_slopes = [slopes(points) for points in runs]
        sizes = sorted(int(s) for s in runs[0]["history_len"].unique())
        memload = MemoryProbe(Limits(), Tracing())
        print(f"{target}: {len(runs)} probe run(s): {', '.join(str(c.parents[2]) for c in csvs)}")
        try:
            with TARGETS[target](memload) as (setup, requests):
                for name, (send, reset_after) in requests.items():
                    growth = memload.peak_growth(
                        setup, send, sizes, reps=args.reps, warmup=args.warmup,
                        reset_after=reset_after, unit=UNITS[target],
                    )  # fmt: skip
                    for size, peak in zip(growth.sizes, growth.peaks, strict=True):
                        theirs = [
                            float(
                                points[
                                    (points["endpoint"] == name) & (points["history_len"] == size)
                                ]["alloc_peak_bytes"].iloc[0]
                            )
                            for points in runs
                        ]
                        print(_line(f"{target} {name} size {size}", theirs, peak, "B"))
                    theirs = [s.get(name, float("nan")) for s in run_slopes]
                    floor = slope_floor(growth.sizes, growth.peaks)
                    print(
                        _line(f"{target} {name} slope", theirs, growth.bytes_per_unit,
                              f"B/{growth.unit}", digits=4, floor=floor)
                        + f" (floor {floor:.4f})"
                    )  # fmt: skip
        finally:
            memload.close()
    return 0


def slope_floor(sizes: tuple[int, ...], peaks: tuple[float, ...]) -> float:
    """The slope difference that moves the peak across the measured sizes by TOLERANCE of the
    smallest size's peak: two slopes closer than this predict the same peaks within the peak
    tolerance, so a near-zero slope (a fraction of a byte per unit) is compared with it, not
    with 2% of itself."""
    return TOLERANCE * min(peaks) / (max(sizes) - min(sizes))


def _line(
    label: str, theirs: list[float], ours: float, unit: str, digits: int = 0, floor: float = 0.0
) -> str:
    """The probe runs' median, the plugin's figure, the difference, the probe's own range."""
    median = float(pd.Series(theirs).median())
    spread = max(theirs) - min(theirs)
    diff = ours - median
    relative = diff / abs(median) if median else float("inf")
    within = abs(relative) <= TOLERANCE or abs(diff) <= max(spread, floor)
    verdict = "ok" if within else "OUTSIDE"
    return (
        f"{label}: probe {median:.{digits}f} {unit} (runs {min(theirs):.{digits}f}.."
        f"{max(theirs):.{digits}f}, range {spread:.{digits}f}), plugin {ours:.{digits}f}, "
        f"{diff:+.{digits}f} ({relative:+.2%}) {verdict}"
    )


if __name__ == "__main__":
    sys.exit(main())
